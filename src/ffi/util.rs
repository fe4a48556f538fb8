//! Reading C arguments and writing C results, without trusting either.

use std::ffi::{CStr, c_char};

use super::status::msc_status;
use crate::{SESSION_ID_LEN, SessionId};

/// Reads a session id from a NUL-terminated string, looking at no more than
/// `SESSION_ID_LEN + 1` bytes: an unterminated or over-long string is
/// malformed, and nothing past its first 37 bytes is read.
///
/// # Safety
///
/// `text` is non-NULL and readable up to its NUL or its 37th byte,
/// whichever comes first.
pub(crate) unsafe fn read_id(text: *const c_char) -> Result<SessionId, msc_status> {
    let mut buf = [0u8; SESSION_ID_LEN + 1];
    let mut len = 0;
    while len < buf.len() {
        // SAFETY: the caller guarantees bytes up to the NUL (or the 37th)
        // are readable, and we stop at the first NUL.
        let byte = unsafe { *text.add(len) } as u8;
        if byte == 0 {
            break;
        }
        buf[len] = byte;
        len += 1;
    }
    SessionId::parse_bytes(&buf[..len]).map_err(|_| msc_status::MSC_ERR_MALFORMED_ID)
}

/// Borrows a NUL-terminated principal; NULL means "no principal".
///
/// # Safety
///
/// `text` is NULL or a valid NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn read_principal<'a>(text: *const c_char) -> Option<&'a [u8]> {
    if text.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    Some(unsafe { CStr::from_ptr(text) }.to_bytes())
}

/// Borrows a principal given as bytes and a length: NULL means "no
/// principal" (then `len` must be 0); a non-NULL pointer with `len` 0 is the
/// empty principal.
///
/// # Safety
///
/// If non-NULL, `bytes` is readable for `len` bytes for `'a`.
pub(crate) unsafe fn read_principal_bytes<'a>(
    bytes: *const u8,
    len: usize,
) -> Result<Option<&'a [u8]>, msc_status> {
    if bytes.is_null() {
        return if len == 0 {
            Ok(None)
        } else {
            Err(msc_status::MSC_ERR_NULL_ARGUMENT)
        };
    }
    // SAFETY: non-NULL and readable for `len` bytes by the caller's
    // contract; `len` bytes of u8 are always initialised values.
    Ok(Some(unsafe { std::slice::from_raw_parts(bytes, len) }))
}

/// Writes `id`'s 36 characters and a NUL into `out`.
///
/// # Safety
///
/// `out` is non-NULL and writable for `SESSION_ID_LEN + 1` bytes.
pub(crate) unsafe fn write_id(id: SessionId, out: *mut c_char) {
    let mut text = [0u8; SESSION_ID_LEN];
    id.encode(&mut text);
    // SAFETY: `out` is writable for 37 bytes (caller's contract) and cannot
    // overlap our stack buffer; the NUL goes in the 37th.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), out, SESSION_ID_LEN);
        out.add(SESSION_ID_LEN).write(0);
    }
}
