//! Structured mutations of the committed ONNX models (the two shipped CNNs and the tiny and
//! micro test models): every single mutation of a dimension, attribute, initializer, op type,
//! input or output name, node or opset to edge values (0, ±1, 2^31, 2^63 - 1, ...), then
//! random pairs and triples of them, up to `NN_MUTATIONS` imports in all (default 100,000),
//! spread over the available cores. Each import
//! must return `Ok` or a typed error: no panic (counted with `catch_unwind`) and no allocation
//! over a bound (a counting global allocator; requests over 2 GiB are refused, which aborts).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hostile;

use he_nn::onnx::{import_onnx, ImportOptions, ModelProto};
use hostile::{apply, single_mutations, Counting, Mutation, Rng};
use prost::Message;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak live memory one import may use (the 70 kB models import in well under 1 MiB;
/// the defaults of `ImportLimits` would allow more only for a model that is valid and large).
const PEAK_BOUND: usize = 256 << 20;

#[test]
fn structured_onnx_mutations_never_panic_or_overallocate() {
    let total: usize = std::env::var("NN_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let models: Vec<(String, ModelProto)> = [
        ("tiny", hostile::tiny_model()),
        ("micro", hostile::micro_model()),
        (
            "mnist",
            std::fs::read(root.join("models/mnist_cnn.onnx")).unwrap(),
        ),
        (
            "fashion",
            std::fs::read(root.join("models/fashion_cnn.onnx")).unwrap(),
        ),
    ]
    .into_iter()
    .map(|(n, b)| (n.to_string(), ModelProto::decode(b.as_slice()).unwrap()))
    .collect();
    let singles: Vec<Vec<Mutation>> = models.iter().map(|(_, m)| single_mutations(m)).collect();
    // Every single mutation of every model, then pairs/triples until `total`.
    let mut jobs: Vec<(usize, Vec<Mutation>)> = singles
        .iter()
        .enumerate()
        .flat_map(|(mi, s)| s.iter().map(move |mu| (mi, vec![mu.clone()])))
        .take(total)
        .collect();
    let n_singles = jobs.len();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    while jobs.len() < total {
        // Mostly the tiny and micro models (fast); the CNNs one time in sixteen.
        let mi = if rng.below(16) == 0 {
            2 + rng.below(2)
        } else {
            rng.below(2)
        };
        let k = 2 + rng.below(2);
        let mus: Vec<Mutation> = (0..k)
            .map(|_| singles[mi][rng.below(singles[mi].len())].clone())
            .collect();
        jobs.push((mi, mus));
    }
    // In parallel (the allocator counts per thread); the outcome does not depend on it.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let opts = ImportOptions::default();
    let parts: Vec<Stats> = std::thread::scope(|sc| {
        let handles: Vec<_> = jobs
            .chunks(jobs.len().div_ceil(threads).max(1))
            .map(|chunk| {
                let (models, opts) = (&models, &opts);
                sc.spawn(move || {
                    let mut st = Stats::default();
                    for (mi, mus) in chunk {
                        run(models, opts, &mut st, *mi, mus);
                    }
                    st
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut st = Stats::default();
    for p in parts {
        for (k, v) in p.outcome {
            *st.outcome.entry(k).or_default() += v;
        }
        st.panics += p.panics;
        st.done += p.done;
        if p.max_peak > st.max_peak {
            st.max_peak = p.max_peak;
            st.worst = p.worst;
        }
        st.max_single = st.max_single.max(p.max_single);
    }
    assert_eq!(st.done, total);
    println!(
        "{} structured mutations ({n_singles} single, {} combined): {:?}",
        st.done,
        st.done - n_singles,
        st.outcome
    );
    println!(
        "largest peak of live memory in one import: {} bytes ({}); largest single \
         allocation: {} bytes",
        st.max_peak, st.worst, st.max_single
    );
    assert_eq!(st.panics, 0, "{} mutations panicked", st.panics);
    assert!(st.outcome.get("Ok").copied().unwrap_or(0) > 0);
}

#[derive(Default)]
struct Stats {
    outcome: BTreeMap<String, usize>,
    panics: usize,
    done: usize,
    max_peak: usize,
    max_single: usize,
    worst: String,
}

fn run(
    models: &[(String, ModelProto)],
    opts: &ImportOptions,
    st: &mut Stats,
    mi: usize,
    mus: &[Mutation],
) {
    let (name, model) = &models[mi];
    let mut m = model.clone();
    for mu in mus {
        apply(&mut m, mu);
    }
    let bytes = m.encode_to_vec();
    hostile::reset();
    let r = catch_unwind(AssertUnwindSafe(|| import_onnx(&bytes, opts)));
    let (peak, single) = (hostile::peak(), hostile::biggest());
    if peak > st.max_peak {
        st.max_peak = peak;
        st.worst = format!("{name} {mus:?}");
    }
    st.max_single = st.max_single.max(single);
    assert!(
        peak <= PEAK_BOUND,
        "{name} {mus:?}: peak {peak} bytes > {PEAK_BOUND}"
    );
    let key = match r {
        Err(_) => {
            st.panics += 1;
            eprintln!("PANIC: {name} {mus:?}");
            "panic".to_string()
        }
        Ok(Ok(_)) => "Ok".to_string(),
        Ok(Err(e)) => {
            let s = format!("{e:?}");
            format!("Err::{}", s.split(['(', ' ', '{']).next().unwrap_or(""))
        }
    };
    *st.outcome.entry(key).or_default() += 1;
    st.done += 1;
}
