//! NTT benchmarks (issue #2): forward and inverse per prime size at N = 2^12 … 2^16, through
//! HomE's `NttBackend` wrapper, through `tfhe-ntt`'s plan called directly, and through
//! `concrete-ntt` (the crate named in the design card), in the same run, so the wrapper's
//! overhead and the backend choice are visible as ratios. Throughput is in butterflies
//! (`N/2 · log2 N` per transform); a summary table of ns per butterfly (median of 31 batches)
//! is printed at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use he_core::math::ntt::{plan, NttBackend, ReferenceNtt, TfheNtt};
use he_core::math::primes::ntt_primes;
use he_core::math::Prng;
use std::hint::black_box;
use std::time::Instant;

const LOG_NS: [u32; 5] = [12, 13, 14, 15, 16];
const BITS: [u32; 3] = [40, 49, 61];

fn butterflies(n: usize) -> u64 {
    (n as u64 / 2) * n.trailing_zeros() as u64
}

fn input(n: usize, q: u64) -> Vec<u64> {
    let mut p = Prng::from_seed([1; 32]);
    (0..n).map(|_| p.uniform_below(q)).collect()
}

fn bench_ntt(c: &mut Criterion) {
    for bits in BITS {
        let mut g = c.benchmark_group(format!("ntt_forward/{bits}-bit"));
        for log_n in LOG_NS {
            let n = 1usize << log_n;
            let q = ntt_primes(bits, 1, n, &[]).unwrap()[0];
            let ours = TfheNtt::new(n, q).unwrap();
            let direct = tfhe_ntt::prime64::Plan::try_new(n, q).unwrap();
            let concrete = concrete_ntt::prime64::Plan::try_new(n, q).unwrap();
            let default = plan(n, q).unwrap();
            let mut a = input(n, q);
            g.throughput(Throughput::Elements(butterflies(n)));
            g.bench_with_input(BenchmarkId::new("home", n), &n, |b, _| {
                b.iter(|| ours.forward_unchecked(black_box(&mut a)))
            });
            g.bench_with_input(
                BenchmarkId::new(format!("home-default ({})", default.name()), n),
                &n,
                |b, _| b.iter(|| default.forward_unchecked(black_box(&mut a))),
            );
            g.bench_with_input(BenchmarkId::new("tfhe-ntt-direct", n), &n, |b, _| {
                b.iter(|| direct.fwd(black_box(&mut a)))
            });
            g.bench_with_input(BenchmarkId::new("concrete-ntt", n), &n, |b, _| {
                b.iter(|| concrete.fwd(black_box(&mut a)))
            });
        }
        g.finish();
        let mut g = c.benchmark_group(format!("ntt_inverse/{bits}-bit"));
        for log_n in LOG_NS {
            let n = 1usize << log_n;
            let q = ntt_primes(bits, 1, n, &[]).unwrap()[0];
            let ours = TfheNtt::new(n, q).unwrap();
            let default = plan(n, q).unwrap();
            let mut a = input(n, q);
            g.throughput(Throughput::Elements(butterflies(n)));
            g.bench_with_input(
                BenchmarkId::new("home (incl. N^-1 scaling)", n),
                &n,
                |b, _| b.iter(|| ours.inverse_unchecked(black_box(&mut a))),
            );
            g.bench_with_input(
                BenchmarkId::new(format!("home-default ({})", default.name()), n),
                &n,
                |b, _| b.iter(|| default.inverse_unchecked(black_box(&mut a))),
            );
        }
        g.finish();
    }
    let n = 1 << 12;
    let q = ntt_primes(49, 1, n, &[]).unwrap()[0];
    let r = ReferenceNtt::new(n, q, None).unwrap();
    let mut a = input(n, q);
    c.bench_function("ntt_forward/reference-scalar/49-bit/4096", |b| {
        b.iter(|| r.forward_unchecked(black_box(&mut a)))
    });
}

/// Median ns per butterfly over 31 batches.
fn ns_per_butterfly(n: usize, mut f: impl FnMut()) -> f64 {
    let reps = ((1 << 22) / n).max(8);
    for _ in 0..reps {
        f();
    }
    let mut v: Vec<f64> = (0..31)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_nanos() as f64 / reps as f64 / butterflies(n) as f64
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[15]
}

fn summary() {
    println!("\nNTT forward, ns per butterfly (median of 31 batches), same process:");
    println!("| N | prime | HomE (TfheNtt) | tfhe-ntt direct | HomE / direct | concrete-ntt 0.2 | concrete / tfhe | HomE default plan | backend | default / direct |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for bits in BITS {
        for log_n in LOG_NS {
            let n = 1usize << log_n;
            let q = ntt_primes(bits, 1, n, &[]).unwrap()[0];
            let ours = TfheNtt::new(n, q).unwrap();
            let direct = tfhe_ntt::prime64::Plan::try_new(n, q).unwrap();
            let concrete = concrete_ntt::prime64::Plan::try_new(n, q).unwrap();
            let mut a = input(n, q);
            let h = ns_per_butterfly(n, || ours.forward_unchecked(black_box(&mut a)));
            let d = ns_per_butterfly(n, || direct.fwd(black_box(&mut a)));
            let c = ns_per_butterfly(n, || concrete.fwd(black_box(&mut a)));
            let default = plan(n, q).unwrap();
            let f = ns_per_butterfly(n, || default.forward_unchecked(black_box(&mut a)));
            println!(
                "| 2^{log_n} | {bits}-bit | {h:.3} | {d:.3} | {:.3} | {c:.3} | {:.2} | {f:.3} | {} | {:.2} |",
                h / d,
                c / d,
                default.name(),
                f / d
            );
        }
    }
}

criterion_group!(benches, bench_ntt);

/// `cargo bench -p he-core --bench math` runs the criterion groups and then the summary table;
/// `cargo bench -p he-core --bench math -- summary` prints the summary table only.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "summary") {
        summary();
        return;
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    let filtered = args.iter().any(|a| !a.starts_with('-'));
    if !filtered {
        summary();
    }
}
