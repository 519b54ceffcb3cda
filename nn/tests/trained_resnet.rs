//! The trained ResNet-20 (nn/models/resnet20_fashion.onnx: Fashion-MNIST padded to 32x32, made
//! by nn/scripts/train_resnet20.py): imported from ONNX with BatchNormalization folded and the
//! pooling fused into the classifier, planned as the encrypted run would be (latency mode,
//! `Bootstrapping::Auto` at the secure N = 2^16 parameters), and its 16 sidecar samples (the
//! first 16 test images) simulated in cleartext with the CKKS noise model: the classes agree
//! with onnxruntime's. Calibration uses the same 16 samples (the full data in nn/data/full is
//! not committed).
//!
//! ReLU is replaced by degree-127 Chebyshev interpolants (depth 7): this network's 19 ReLUs
//! at degree 7 (the importer's default, error up to 0.45 on its ±7 intervals) agree with
//! onnxruntime on 3 of the 16 samples only (nn/models/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_nn::data::{argmax, read_samples_json, Samples};
use he_nn::onnx::{load_onnx, ImportOptions};
use he_nn::plan::StepOp;
use he_nn::{Mode, Plan, PlanOptions};
use rayon::prelude::*;
use std::path::PathBuf;

/// Degree of the ReLU approximations.
const DEGREE: usize = 127;

#[test]
fn trained_resnet20_plans_and_simulates_like_onnxruntime() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let Samples {
        inputs: samples,
        reference: ort,
    } = read_samples_json(&root.join("resnet20_fashion.json")).unwrap();
    assert_eq!(samples.len(), 16);
    let m = load_onnx(
        &root.join("resnet20_fashion.onnx"),
        &ImportOptions {
            activation_degree: DEGREE,
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(m.network.input_shape(), &[1, 32, 32]);
    let count = |op: &str, what: &str| {
        m.notes
            .iter()
            .filter(|n| n.op == op && n.became.contains(what))
            .count()
    };
    // 21 BatchNormalizations folded into their convolutions, 19 ReLUs approximated, the
    // global average pooling fused into the classifier.
    assert_eq!(count("BatchNormalization", "folded"), 21, "{:#?}", m.notes);
    assert_eq!(count("Relu", "polynomial"), 19, "{:#?}", m.notes);
    assert_eq!(count("Gemm", "fused"), 1, "{:#?}", m.notes);

    let mut opts = PlanOptions::new(Mode::Latency);
    opts.calibration = samples.clone();
    opts.flooding = None;
    let t = std::time::Instant::now();
    let plan = Plan::new(&m.network, &opts).unwrap();
    println!("{}", plan.describe());
    println!("planned in {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(plan.params.degree(), 1 << 16);
    assert!(plan.bootstrap_count() > 0, "{}", plan.bootstrap_count());
    assert!(plan.depth > 9, "depth {}", plan.depth);
    assert_eq!(
        plan.steps
            .iter()
            .filter(|s| matches!(s.op, StepOp::Poly { .. }))
            .count(),
        19
    );
    assert_eq!(plan.approximations.len(), 19);
    assert!(plan
        .approximations
        .iter()
        .all(|a| a.contains(&format!("degree-{DEGREE} "))));

    let t = std::time::Instant::now();
    let sim: Vec<Vec<f64>> = samples
        .par_iter()
        .enumerate()
        .map(|(i, x)| {
            plan.simulate(std::slice::from_ref(x), Some(1 + i as u64))
                .unwrap()
                .remove(0)
        })
        .collect();
    let agree = sim
        .iter()
        .zip(&ort)
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    println!(
        "simulator with noise vs onnxruntime: {agree}/{} classes agree ({:.1} s)",
        sim.len(),
        t.elapsed().as_secs_f64()
    );
    assert_eq!(agree, samples.len());
}
