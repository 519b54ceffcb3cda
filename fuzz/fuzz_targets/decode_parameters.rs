//! Fuzzes the parameters decoder: any input must give Ok or a typed error, never a panic,
//! never an allocation beyond the (bounded) prime lists.
//!
//! The first byte selects the mode. Bit 0: the rest is taken raw (header parsing) or wrapped
//! in a valid header with a correct checksum (so that the payload parser, the prime checks and
//! the security table behind the checksum are reached); in the wrapped mode the parameter hash
//! is taken from the input, and the degree field is mapped into `2^4..=2^10` so that a
//! well-formed blob builds small rings (bounded time and memory per execution). Bit 1: the
//! plain loader (`from_bytes`, which refuses insecure blobs) or the named opt-in
//! (`from_bytes_allow_insecure`).
#![no_main]
use he_core::rlwe::Parameters;
use he_core::serialize::{seal, ObjectType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let wrapped;
    let bytes: &[u8] = if sel & 1 == 1 {
        // rest = hash (8 bytes) ‖ payload; the payload's log N word is kept small.
        let (hash, payload) = rest.split_at(rest.len().min(8));
        let mut h = [0u8; 8];
        h[..hash.len()].copy_from_slice(hash);
        let mut payload = payload.to_vec();
        if let Some(b) = payload.first_mut() {
            *b = 4 + *b % 7;
            for x in payload.iter_mut().take(4).skip(1) {
                *x = 0;
            }
        }
        wrapped = seal(ObjectType::Parameters, 0, u64::from_le_bytes(h), &payload);
        &wrapped
    } else {
        rest
    };
    let _ = if sel & 2 == 0 {
        Parameters::from_bytes(bytes)
    } else {
        Parameters::from_bytes_allow_insecure(bytes)
    };
});
