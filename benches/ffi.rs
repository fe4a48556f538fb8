//! The cost of the C ABI: `msc_session_get` (what a C, Go or Node host
//! calls per request) against the Rust lookup, in the same run.
//!
//! `msc_session_get` is called through its `extern "C"` symbol, exactly as
//! a C caller does (same ABI, same argument conversions: a NUL-terminated
//! id string, a NULL principal, an out-pointer). `ffi/c/bench/bench_get.c`
//! measures the same call from a C program.
//!
//! Run: `cargo bench -p mcp-session-core-benches --bench ffi`

use std::ffi::CString;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_session_core::ffi::{
    msc_config_default, msc_registry, msc_registry_free, msc_registry_new, msc_session_create,
    msc_session_get, msc_status,
};
use mcp_session_core::{SessionId, SessionRegistry};

const SESSIONS: usize = 10_000;

fn ffi_vs_rust(c: &mut Criterion) {
    let mut group = c.benchmark_group("ffi_get");

    // The C side: a registry made and filled through the C ABI.
    let config = msc_config_default();
    let mut registry: *mut msc_registry = std::ptr::null_mut();
    // SAFETY: valid config and out pointers.
    let status = unsafe { msc_registry_new(&config, &mut registry) };
    assert_eq!(status, msc_status::MSC_OK);
    let ids: Vec<CString> = (0..SESSIONS as u64)
        .map(|tag| {
            let mut buf = [0 as std::ffi::c_char; 37];
            // SAFETY: live registry, 37-byte out buffer.
            let status =
                unsafe { msc_session_create(registry, tag, std::ptr::null(), buf.as_mut_ptr()) };
            assert_eq!(status, msc_status::MSC_OK);
            // SAFETY: msc_session_create wrote a NUL-terminated id.
            unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_owned()
        })
        .collect();
    let mut i = 0usize;
    group.bench_function("msc_session_get", |b| {
        b.iter(|| {
            i = (i + 7919) % SESSIONS;
            let mut tag = 0u64;
            // SAFETY: live registry, NUL-terminated id, valid out pointer.
            let status =
                unsafe { msc_session_get(registry, ids[i].as_ptr(), std::ptr::null(), &mut tag) };
            black_box((status, tag))
        })
    });

    // The Rust side: the same sessions and id strings, the same lookup.
    let rust = SessionRegistry::<u64>::new(SESSIONS).expect("valid config");
    let texts: Vec<String> = (0..SESSIONS as u64)
        .map(|tag| rust.create(tag).expect("below capacity").id().to_string())
        .collect();
    let parsed: Vec<SessionId> = texts.iter().map(|t| SessionId::parse(t).unwrap()).collect();
    group.bench_function("rust_get_str", |b| {
        b.iter(|| {
            i = (i + 7919) % SESSIONS;
            black_box(rust.with_session(&SessionId::parse(&texts[i]).unwrap(), None, |v| *v))
        })
    });
    group.bench_function("rust_with_session_by_id", |b| {
        b.iter(|| {
            i = (i + 7919) % SESSIONS;
            black_box(rust.with_session(&parsed[i], None, |v| *v))
        })
    });
    group.finish();
    // SAFETY: made by msc_registry_new, freed once.
    unsafe { msc_registry_free(registry) };
}

criterion_group!(benches, ffi_vs_rust);
criterion_main!(benches);
