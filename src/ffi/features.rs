//! `msc_features`: what this build of the library contains.

use super::panic::ffi_boundary;

/// `msc_features()` bit: the fleet-mode functions (`msc_fleet_*`) are in
/// this library (it was built with the `redis` feature). Without it,
/// calling them fails to link (C, Go) or to load (Node).
pub const MSC_FEATURE_FLEET: u32 = 1;

/// The optional parts this library was built with: a bit mask of
/// `MSC_FEATURE_*` values (`MSC_FEATURE_FLEET`).
#[unsafe(no_mangle)]
pub extern "C" fn msc_features() -> u32 {
    ffi_boundary(|| {
        let mut features = 0;
        if cfg!(feature = "redis") {
            features |= MSC_FEATURE_FLEET;
        }
        features
    })
}
