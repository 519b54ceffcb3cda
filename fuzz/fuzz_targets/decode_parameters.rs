//! Fuzzes the parameters decoder: any input must give Ok or a typed error, never a panic,
//! never an allocation beyond the (bounded) prime lists.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = he_core::rlwe::Parameters::from_bytes(data);
});
