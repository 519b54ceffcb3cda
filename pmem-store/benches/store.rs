//! Rotation-heavy workload: a chain of CKKS rotations at N = 2^14, each with a different Galois
//! key, with all keys in DRAM (`EvalKeySet`) versus keys in the store with a DRAM budget of a
//! quarter of their total size and the schedule handed to the prefetcher.
//!
//! Store files go under the workspace `target/` (or `$CARGO_TARGET_DIR`). Prints the measured
//! throughput ratio (store / DRAM) after the criterion groups.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use criterion::{criterion_group, Criterion};
use he_core::ckks::{Ciphertext, Encryptor, Evaluator};
use he_core::rlwe::{
    galois_element_for_rotation, EvalKeyProvider, EvalKeySet, Parameters, ParametersIntent,
    PublicKey, SecretKey,
};
use pmem_store::{PmemKeyStore, Store, StoreConfig};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const ROTATIONS: i64 = 16;

struct Setup {
    dram: Evaluator,
    pmem: Evaluator,
    pks: PmemKeyStore,
    ct: Ciphertext,
    steps: Vec<i64>,
    elts: Vec<u64>,
    total_key_bytes: usize,
}

fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("pmem-bench-store")
}

#[allow(clippy::unwrap_used)]
fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let mut intent = ParametersIntent::new(6, 40);
        intent.log_n = Some(14);
        let params = Parameters::from_intent(&intent).unwrap();
        let steps: Vec<i64> = (1..=ROTATIONS).collect();
        let sk = SecretKey::generate(&params).unwrap();
        let keys = EvalKeySet::generate(&sk, false, &steps, false).unwrap();
        let total_key_bytes = keys.bytes();
        let dir = bench_dir();
        let _ = std::fs::remove_dir_all(&dir);
        // PMEM_BENCH_KEEP_PAGE_CACHE=1: evicted keys stay in the OS page cache (the "fast tier"
        // analogue of PMEM); PMEM_BENCH_VERIFY=first: checksum on first map only.
        let mut cfg = StoreConfig::new(Some(params.hash())).budget(total_key_bytes as u64 / 4);
        if std::env::var_os("PMEM_BENCH_KEEP_PAGE_CACHE").is_some() {
            cfg = cfg.drop_page_cache(false);
        }
        if std::env::var("PMEM_BENCH_VERIFY").is_ok_and(|v| v == "first") {
            cfg = cfg.verify(pmem_store::Verify::FirstMap);
        }
        eprintln!("store config: {cfg:?}");
        let store = Arc::new(Store::create(&dir, cfg).unwrap());
        let pks = PmemKeyStore::new(Arc::clone(&store), "");
        for g in keys.galois_elements() {
            pks.insert(&keys.galois_key(g).unwrap()).unwrap();
        }
        let elts = steps
            .iter()
            .map(|&s| galois_element_for_rotation(params.degree(), s))
            .collect();
        let dram = Evaluator::with_keys(&params, Arc::new(keys)).unwrap();
        let pmem = Evaluator::with_keys(&params, Arc::new(pks.clone())).unwrap();
        let enc = Encryptor::new(&params, PublicKey::generate(&sk).unwrap()).unwrap();
        let values: Vec<f64> = (0..params.slots()).map(|i| (i % 7) as f64).collect();
        let ct = enc
            .encrypt(
                &dram
                    .encoder()
                    .encode(&values, params.max_level(), params.default_scale())
                    .unwrap(),
            )
            .unwrap();
        eprintln!(
            "setup: {}; {} Galois keys, {:.1} MiB each, {:.1} MiB total; store budget {:.1} MiB",
            params.describe(),
            steps.len(),
            total_key_bytes as f64 / steps.len() as f64 / 1048576.0,
            total_key_bytes as f64 / 1048576.0,
            total_key_bytes as f64 / 4.0 / 1048576.0
        );
        Setup {
            dram,
            pmem,
            pks,
            ct,
            steps,
            elts,
            total_key_bytes,
        }
    })
}

#[allow(clippy::unwrap_used)]
fn chain(ev: &Evaluator, s: &Setup, prefetch: Option<&PmemKeyStore>) -> Ciphertext {
    if let Some(p) = prefetch {
        p.prefetch(&s.elts);
    }
    let mut c = s.ct.clone();
    for &st in &s.steps {
        c = ev.rotate(&c, st).unwrap();
    }
    c
}

fn rotations(c: &mut Criterion) {
    let s = setup();
    let mut g = c.benchmark_group(format!("rotation-chain-{ROTATIONS}-keys-N2^14"));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("keys-in-dram", |b| b.iter(|| chain(&s.dram, s, None)));
    g.bench_function("keys-in-store-budget-quarter-prefetch", |b| {
        b.iter(|| chain(&s.pmem, s, Some(&s.pks)))
    });
    g.finish();
}

criterion_group!(benches, rotations);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    // Interleaved repeated measurement for the ratio.
    let s = setup();
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(chain(&s.dram, s, None));
        d.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(chain(&s.pmem, s, Some(&s.pks)));
        p.push(t.elapsed().as_secs_f64());
    }
    d.sort_by(f64::total_cmp);
    p.sort_by(f64::total_cmp);
    let (dm, pm) = (d[2], p[2]);
    let st = s.pks.store().stats();
    println!(
        "ratio: store throughput / DRAM throughput = {:.3} (median chain of {} rotations: DRAM {:.1} ms, store {:.1} ms; keys {:.1} MiB, budget {:.1} MiB; store hits {} misses {} prefetched {} evictions {})",
        dm / pm,
        s.steps.len(),
        dm * 1e3,
        pm * 1e3,
        s.total_key_bytes as f64 / 1048576.0,
        st.budget_bytes as f64 / 1048576.0,
        st.hits,
        st.misses,
        st.prefetched,
        st.evictions
    );
}
