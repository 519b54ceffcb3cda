//! Criterion benches: the shipped MNIST CNN in both packing modes at N = 2^13 (TenSEAL's
//! ring degree), per inference and per layer kind.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use he_core::ckks::{Encoder, Encryptor};
use he_nn::data::read_images;
use he_nn::onnx::{load_onnx, ImportOptions};
use he_nn::{Engine, Mode, Plan, PlanOptions};
use std::path::PathBuf;

fn setup(mode: Mode) -> (Plan, Engine, Encoder, Encryptor, Vec<Vec<f64>>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let xs = read_images(&root.join("data/mnist_sample.idx3"), 1.0 / 255.0, 0.0).unwrap();
    let m = load_onnx(
        &root.join("models/mnist_cnn.onnx"),
        &ImportOptions::default(),
    )
    .unwrap();
    let mut opts = PlanOptions::new(mode);
    opts.log_n = Some(13);
    opts.min_scale_bits = 24;
    // Timing of the encrypted evaluation at N = 2^13, which cannot absorb noise flooding.
    opts.flooding = None;
    opts.calibration = xs.clone();
    let plan = Plan::new(&m.network, &opts).unwrap();
    let keys = plan.generate_keys().unwrap();
    let engine = Engine::new(&plan, keys.eval.clone()).unwrap();
    let encoder = Encoder::new(&plan.params).unwrap();
    let encryptor = Encryptor::new(&plan.params, keys.public.clone()).unwrap();
    (plan, engine, encoder, encryptor, xs)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("mnist_cnn/N=2^13");
    g.sample_size(10);
    let (plan, engine, encoder, encryptor, xs) = setup(Mode::Latency);
    let ct = plan.encrypt(&encoder, &encryptor, &xs[..1]).unwrap();
    g.bench_function("latency/one image", |b| {
        b.iter_batched(
            || ct.clone(),
            |ct| engine.run(ct).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("latency/encrypt one image", |b| {
        b.iter(|| plan.encrypt(&encoder, &encryptor, &xs[..1]).unwrap())
    });
    let (plan, engine, encoder, encryptor, xs) = setup(Mode::Throughput);
    let ct = plan.encrypt(&encoder, &encryptor, &xs).unwrap();
    g.bench_function("throughput/64 images (one batch)", |b| {
        b.iter_batched(
            || ct.clone(),
            |ct| engine.run(ct).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
