//! Helpers shared by the integration tests: deterministic content derived from a key.
#![allow(dead_code)]

use std::path::PathBuf;

/// A fresh, empty directory under the workspace `target/` (CARGO_TARGET_TMPDIR).
pub fn fresh_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("pmem-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// SplitMix64 step.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit seed from a string.
pub fn seed_of(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_bytes())
}

/// Length (1 B .. 128 KiB, often not a multiple of 8) of the object stored under `key`.
pub fn content_len(key: &str) -> usize {
    let mut s = seed_of(key) ^ 0x5555;
    1 + (splitmix(&mut s) % (128 * 1024)) as usize
}

/// The deterministic bytes stored under `key`.
pub fn content(key: &str) -> Vec<u8> {
    let n = content_len(key);
    let mut s = seed_of(key);
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        out.extend_from_slice(&splitmix(&mut s).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Deterministic words for synthetic keys (value `i` of the stream seeded by `seed`).
pub fn fill_words(seed: u64, out: &mut [u64]) {
    let mut s = seed;
    for w in out.iter_mut() {
        *w = splitmix(&mut s) >> 4;
    }
}
