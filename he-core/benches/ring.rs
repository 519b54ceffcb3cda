//! Ring-layer benchmarks (issue #2): RNS polynomial multiply (evaluation form), forward NTT of
//! all limbs, automorphism in both forms, rescale, fast base conversion, and hybrid
//! key-switching ModUp/ModDown — at N = 2^14 and 2^16 with 8 limbs of ~50 bits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use he_core::math::primes::ntt_primes;
use he_core::math::{BaseConverter, Modulus, Prng, RnsBasis};
use he_core::ring::keyswitch::PolyQP;
use he_core::ring::{Coeff, Eval, KeySwitchBasis, RingContext};
use std::hint::black_box;

fn bench_ring(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring");
    g.sample_size(20);
    for log_n in [14u32, 16] {
        let n = 1usize << log_n;
        let limbs = 8;
        let primes = ntt_primes(49, limbs + 2, n, &[]).unwrap();
        let ring = RingContext::new(n, &primes[..limbs]).unwrap();
        let ring_p = RingContext::new(n, &primes[limbs..]).unwrap();
        let mut prng = Prng::from_seed([3; 32]);
        let a = ring.uniform::<Eval>(&mut prng, limbs).unwrap();
        let b = ring.uniform::<Eval>(&mut prng, limbs).unwrap();
        let ac = ring.uniform::<Coeff>(&mut prng, limbs).unwrap();
        let id = format!("N=2^{log_n}/limbs={limbs}");
        g.bench_function(BenchmarkId::new("mul", &id), |bch| {
            bch.iter(|| ring.mul(black_box(&a), black_box(&b)).unwrap())
        });
        g.bench_function(BenchmarkId::new("ntt_all_limbs", &id), |bch| {
            bch.iter(|| ring.to_eval(black_box(ac.clone())).unwrap())
        });
        g.bench_function(BenchmarkId::new("automorphism_eval", &id), |bch| {
            bch.iter(|| ring.automorphism_eval(black_box(&a), 5).unwrap())
        });
        g.bench_function(BenchmarkId::new("automorphism_coeff", &id), |bch| {
            bch.iter(|| ring.automorphism_coeff(black_box(&ac), 5).unwrap())
        });
        g.bench_function(BenchmarkId::new("rescale_eval", &id), |bch| {
            bch.iter(|| ring.rescale_eval(black_box(a.clone())).unwrap())
        });
        let from = RnsBasis::new(&primes[..4]).unwrap();
        let to: Vec<Modulus> = primes[4..limbs]
            .iter()
            .map(|q| Modulus::new(*q).unwrap())
            .collect();
        let conv = BaseConverter::new(&from, &to).unwrap();
        let mut out = vec![0u64; 4 * n];
        g.bench_function(BenchmarkId::new("base_conversion_4to4", &id), |bch| {
            bch.iter(|| {
                conv.convert_approx(black_box(&ac.as_slice()[..4 * n]), &mut out, n)
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("base_conversion_exact_4to4", &id), |bch| {
            bch.iter(|| {
                conv.convert_exact(black_box(&ac.as_slice()[..4 * n]), &mut out, n)
                    .unwrap()
            })
        });
        let ks = KeySwitchBasis::new(ring.clone(), ring_p.clone(), 2).unwrap();
        g.bench_function(BenchmarkId::new("mod_up_digit(alpha=2)", &id), |bch| {
            bch.iter(|| ks.mod_up(black_box(&ac), black_box(&a), 0).unwrap())
        });
        let x = PolyQP {
            q: a.clone(),
            p: ring_p.uniform::<Eval>(&mut prng, 2).unwrap(),
        };
        g.bench_function(BenchmarkId::new("mod_down(k=2)", &id), |bch| {
            bch.iter(|| ks.mod_down(black_box(x.clone())).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench_ring);
criterion_main!(benches);
