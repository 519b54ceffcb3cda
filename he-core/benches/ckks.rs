//! CKKS benchmarks (issue #3): key generation, encryption, decryption, addition,
//! multiplication with relinearization, rescaling, rotation and hoisted rotations, at
//! N = 2^14, 2^15 and 2^16 with the stated levels and key-switching digits:
//!
//! | preset          | N    | Q (bits)        | P (bits) | dnum |
//! |-----------------|------|-----------------|----------|------|
//! | N14Depth6       | 2^14 | 60 + 40 x 6     | 60       | 7    |
//! | N15Depth14      | 2^15 | 60 + 40 x 14    | 60       | 15   |
//! | N16Depth24Fast  | 2^16 | 60 + 50 x 24    | 61 x 3   | 9    |
//!
//! All operations at the top level. Thread count: rayon's default (set RAYON_NUM_THREADS).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use he_core::ckks::{Decryptor, Encoder, Encryptor, Evaluator};
use he_core::rlwe::{EvalKeySet, KeyGenerator, Preset, PublicKey, SecretKey};
use std::hint::black_box;
use std::sync::Arc;

fn bench_ckks(c: &mut Criterion) {
    for preset in [
        Preset::N14Depth6,
        Preset::N15Depth14,
        Preset::N16Depth24Fast,
    ] {
        let params = preset.parameters().unwrap();
        let id = format!(
            "N=2^{}/L={}/dnum={}",
            params.literal().log_n,
            params.max_level(),
            params.dnum()
        );
        let mut g = c.benchmark_group("ckks");
        g.sample_size(10);
        let sk = SecretKey::generate(&params).unwrap();
        let pk = PublicKey::generate(&sk).unwrap();
        let kg = KeyGenerator::new(&sk);
        let hoist: Vec<i64> = (1..=8).collect();
        let keys = EvalKeySet::generate(&sk, true, &hoist, false).unwrap();
        let eval = Evaluator::with_keys(&params, Arc::new(keys)).unwrap();
        let ecd = Encoder::new(&params).unwrap();
        let enc = Encryptor::new(&params, pk.clone()).unwrap();
        let dec = Decryptor::new(&sk);
        let v: Vec<f64> = (0..params.slots()).map(|i| (i as f64).cos()).collect();
        let pt = ecd
            .encode(&v, params.max_level(), params.default_scale())
            .unwrap();
        let a = enc.encrypt(&pt).unwrap();
        let b = enc.encrypt(&pt).unwrap();
        let prod = eval.mul_relin(&a, &b).unwrap();
        g.bench_function(BenchmarkId::new("keygen_relin", &id), |x| {
            x.iter(|| kg.relinearization_key().unwrap())
        });
        g.bench_function(BenchmarkId::new("keygen_galois", &id), |x| {
            x.iter(|| kg.galois_key(5).unwrap())
        });
        g.bench_function(BenchmarkId::new("encrypt_pk", &id), |x| {
            x.iter(|| enc.encrypt(black_box(&pt)).unwrap())
        });
        g.bench_function(BenchmarkId::new("decrypt", &id), |x| {
            x.iter(|| dec.decrypt(black_box(&a)).unwrap())
        });
        g.bench_function(BenchmarkId::new("encode", &id), |x| {
            x.iter(|| {
                ecd.encode(black_box(&v), params.max_level(), params.default_scale())
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("add", &id), |x| {
            x.iter(|| eval.add(black_box(&a), black_box(&b)).unwrap())
        });
        g.bench_function(BenchmarkId::new("mul_relin", &id), |x| {
            x.iter(|| eval.mul_relin(black_box(&a), black_box(&b)).unwrap())
        });
        g.bench_function(BenchmarkId::new("rescale", &id), |x| {
            x.iter(|| eval.rescale(black_box(&prod)).unwrap())
        });
        g.bench_function(BenchmarkId::new("rotate", &id), |x| {
            x.iter(|| eval.rotate(black_box(&a), 1).unwrap())
        });
        g.bench_function(BenchmarkId::new("rotate_x8_one_by_one", &id), |x| {
            x.iter(|| {
                hoist
                    .iter()
                    .map(|s| eval.rotate(black_box(&a), *s).unwrap())
                    .collect::<Vec<_>>()
            })
        });
        g.bench_function(BenchmarkId::new("rotate_x8_hoisted", &id), |x| {
            x.iter(|| eval.rotate_hoisted(black_box(&a), &hoist).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, bench_ckks);
criterion_main!(benches);
