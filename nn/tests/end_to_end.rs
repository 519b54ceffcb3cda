//! End to end on the 64 committed MNIST sample images, throughput mode, 128-bit-secure
//! parameters derived by the planner: predictions agree with onnxruntime on all 64 images and
//! accuracy is within 0.5 points of the plaintext accuracy; and the simulator's noise model
//! predicts the encrypted error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_core::ckks::{Decryptor, Encoder, Encryptor};
use he_nn::data::{argmax, read_idx1, read_images, read_logits_json};
use he_nn::onnx::{load_onnx, ImportOptions};
use he_nn::{Engine, Mode, Plan, PlanOptions};
use std::path::PathBuf;

#[test]
fn mnist_sample_throughput_mode_agrees_with_onnxruntime() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let xs = read_images(&root.join("data/mnist_sample.idx3"), 1.0 / 255.0, 0.0).unwrap();
    let labels = read_idx1(&root.join("data/mnist_sample_labels.idx1")).unwrap();
    let ort = read_logits_json(&root.join("data/mnist_sample_logits.json")).unwrap();
    assert_eq!((xs.len(), labels.len(), ort.len()), (64, 64, 64));
    let m = load_onnx(
        &root.join("models/mnist_cnn.onnx"),
        &ImportOptions::default(),
    )
    .unwrap();
    let mut opts = PlanOptions::new(Mode::Throughput);
    opts.calibration = xs.clone();
    let plan = Plan::new(&m.network, &opts).unwrap();
    assert_eq!(
        plan.params.literal().security,
        he_core::rlwe::Security::Bits128
    );
    let keys = plan.generate_keys().unwrap();
    let encoder = Encoder::new(&plan.params).unwrap();
    let encryptor = Encryptor::new(&plan.params, keys.public.clone()).unwrap();
    let ct = plan.encrypt(&encoder, &encryptor, &xs).unwrap();
    let out = Engine::new(&plan, keys.eval.clone())
        .unwrap()
        .run(ct)
        .unwrap();
    let got = plan
        .decrypt(&encoder, &Decryptor::new(&keys.secret), &out)
        .unwrap();
    let agree = got
        .iter()
        .zip(&ort)
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    let acc = |v: &[Vec<f64>]| {
        v.iter()
            .zip(&labels)
            .filter(|(a, l)| argmax(a) == **l as usize)
            .count() as f64
            / 64.0
    };
    let err = got
        .iter()
        .zip(&ort)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f64::max);
    println!(
        "{}: agreement {agree}/64, accuracy {} vs {}, max |logit error| {err:.2e}",
        plan.params.describe(),
        acc(&got),
        acc(&ort)
    );
    // Decrypted with noise flooding (the default): the stated flooding noise plus the
    // approximation error, and the raw decryption for the precision before.
    let f = plan.flooding.expect("flooding is the default");
    let raw = plan
        .decrypt_unflooded(&encoder, &Decryptor::new(&keys.secret), &out)
        .unwrap();
    let err_raw = raw
        .iter()
        .zip(&ort)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f64::max);
    println!(
        "noise flooding s = {}: max |logit error| 2^{:.1} before, 2^{:.1} after (stated σ 2^{:.1})",
        f.config.statistical_security,
        err_raw.log2(),
        err.log2(),
        f.log2_sigma
    );
    assert_eq!(agree, 64);
    assert!((acc(&got) - acc(&ort)).abs() <= 0.005);
    assert!(err_raw < 1e-3);
    assert!(f.log2_sigma <= -6.0);
    assert!(err < 1e-3 + 6.0 * 2f64.powf(f.log2_sigma), "{err}");
    // The flooding noise is there: the flooded logits differ from the raw ones by about σ.
    let moved = raw
        .iter()
        .zip(&got)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)))
        .sum::<f64>()
        / (64.0 * raw[0].len() as f64);
    let ratio = moved.sqrt().log2() - f.log2_sigma;
    assert!(
        ratio.abs() < 1.0,
        "flooded - raw rms 2^{:.1} vs σ 2^{:.1}",
        moved.sqrt().log2(),
        f.log2_sigma
    );
}

#[test]
fn simulated_noise_predicts_the_encrypted_error() {
    // N = 2^13, Δ = 2^24 (128-bit): errors ~1e-3, large enough to compare with the noise model.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let xs = read_images(&root.join("data/fashion_sample.idx3"), 1.0 / 255.0, 0.0).unwrap();
    let m = load_onnx(
        &root.join("models/fashion_cnn.onnx"),
        &ImportOptions::default(),
    )
    .unwrap();
    let mut opts = PlanOptions::new(Mode::Throughput);
    opts.log_n = Some(13);
    opts.min_scale_bits = 24;
    opts.max_scale_bits = 40;
    // This test measures the raw CKKS error against the noise model: no flooding.
    opts.flooding = None;
    opts.calibration = xs.clone();
    let plan = Plan::new(&m.network, &opts).unwrap();
    assert_eq!(plan.params.degree(), 1 << 13);
    let exact = plan.simulate(&xs, None).unwrap();
    let noisy = plan.simulate(&xs, Some(3)).unwrap();
    let keys = plan.generate_keys().unwrap();
    let encoder = Encoder::new(&plan.params).unwrap();
    let decryptor = Decryptor::new(&keys.secret);
    let ct = plan.encrypt_symmetric(&encoder, &decryptor, &xs).unwrap();
    let out = Engine::new(&plan, keys.eval.clone())
        .unwrap()
        .run(ct)
        .unwrap();
    let got = plan.decrypt(&encoder, &decryptor, &out).unwrap();
    let rms = |a: &[Vec<f64>]| {
        let (s, n) = a
            .iter()
            .zip(&exact)
            .flat_map(|(x, y)| x.iter().zip(y))
            .fold((0.0, 0.0), |(s, n), (p, q)| {
                (s + (p - q) * (p - q), n + 1.0)
            });
        (s / n).sqrt()
    };
    let (predicted, measured) = (rms(&noisy), rms(&got));
    println!("rms logit error: simulated {predicted:.3e}, encrypted {measured:.3e}");
    assert!(measured < 2.0 * predicted && predicted < 2.0 * measured);
}
