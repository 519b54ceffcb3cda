//! Memory bound: sweeping twice through 24 key-switching keys of real N = 2^14 shape
//! (12 MiB each, 288 MiB in all) with a 64 MiB DRAM budget keeps the process's peak resident
//! memory (VmHWM) within baseline + budget + a fixed overhead. The sweep runs in a child
//! process so that its VmHWM is not inflated by the parent having written the keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;
use he_core::rlwe::{EvalKeyProvider, KeyKind, KeyShape, KeySwitchKey};
use pmem_store::{sys::resident_memory, PmemKeyStore, Store, StoreConfig};
use std::process::Command;
use std::sync::Arc;

const CHILD_DIR: &str = "PMEM_MEM_CHILD_DIR";
const P: u64 = 0x004D_454D;
const SHAPE: KeyShape = KeyShape {
    n: 1 << 14,
    q_limbs: 12,
    p_limbs: 4,
    dnum: 3,
};
const KEYS: u64 = 24;
const BUDGET: u64 = 64 << 20;
/// Fixed overhead allowed above baseline + budget: the sweep's own stack and heap, the
/// prefetch thread's stack, allocator arenas.
const OVERHEAD: u64 = 8 << 20;

fn elt(i: u64) -> u64 {
    2 * i + 3
}

fn expected_sum(seed: u64) -> u64 {
    let mut s = seed;
    (0..SHAPE.words()).fold(0u64, |acc, _| acc.wrapping_add(splitmix(&mut s) >> 4))
}

/// The sweep (runs only as the child).
#[test]
fn memory_child_sweep() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let store = Arc::new(
        Store::open(
            &dir,
            StoreConfig::new(Some(P)).budget(BUDGET).read_only(true),
        )
        .unwrap(),
    );
    let keys = PmemKeyStore::new(Arc::clone(&store), "");
    let elts: Vec<u64> = (0..KEYS).map(elt).collect();
    let expected: Vec<u64> = elts.iter().map(|&g| expected_sum(g)).collect();
    let (base, _) = resident_memory().unwrap();
    let mut max_resident = 0;
    for _sweep in 0..2 {
        keys.prefetch(&elts);
        for (i, &g) in elts.iter().enumerate() {
            let k = keys.galois_key(g).unwrap();
            // Touch every word through he-core's zero-copy views of the mapped key.
            let mut sum = 0u64;
            for j in 0..SHAPE.dnum {
                for c in 0..2 {
                    let (q, p) = k.part(j, c, SHAPE.q_limbs).unwrap();
                    for w in q.as_slice().iter().chain(p.as_slice()) {
                        sum = sum.wrapping_add(*w);
                    }
                }
            }
            assert_eq!(sum, expected[i], "key {g}");
            max_resident = max_resident.max(store.stats().resident_bytes);
        }
    }
    let (hwm, rss) = resident_memory().unwrap();
    let st = store.stats();
    println!("\nRESULT base={base} hwm={hwm} rss={rss} max_resident={max_resident} hits={} misses={} prefetched={} evictions={}", st.hits, st.misses, st.prefetched, st.evictions);
}

#[test]
fn memory_stays_within_budget() {
    if std::env::var(CHILD_DIR).is_ok() {
        return;
    }
    let dir = fresh_dir("memory");
    {
        let store = Store::create(&dir, StoreConfig::new(Some(P)).segment_size(128 << 20)).unwrap();
        let ks = PmemKeyStore::new(Arc::new(store), "");
        let mut w = vec![0u64; SHAPE.words()];
        for i in 0..KEYS {
            fill_words(elt(i), &mut w);
            let key =
                KeySwitchKey::from_storage(SHAPE, KeyKind::Galois(elt(i)), P, Arc::new(w.clone()))
                    .unwrap();
            ks.insert(&key).unwrap();
        }
    }
    let total = KEYS * SHAPE.bytes() as u64;
    assert!(total >= 4 * BUDGET);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "memory_child_sweep",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().find(|l| l.starts_with("RESULT")).unwrap();
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (base, hwm, max_resident) = (field("base"), field("hwm"), field("max_resident"));
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "memory bound: {} keys x {:.1} MiB = {:.0} MiB swept twice, budget {:.0} MiB: baseline VmHWM {:.1} MiB, peak VmHWM {:.1} MiB (+{:.1} MiB), peak mapped {:.1} MiB; {line}",
        KEYS,
        mib(SHAPE.bytes() as u64),
        mib(total),
        mib(BUDGET),
        mib(base),
        mib(hwm),
        mib(hwm.saturating_sub(base)),
        mib(max_resident)
    );
    assert!(max_resident <= BUDGET);
    assert!(
        hwm <= base + BUDGET + OVERHEAD,
        "peak VmHWM {hwm} exceeds baseline {base} + budget {BUDGET} + overhead {OVERHEAD}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
