//! Per-layer tests: the encrypted output equals the cleartext layer (and the simulator) within
//! a stated error, for random weights and shapes, in both packing modes. Parameters are small
//! and insecure (`Security::InsecureForTesting`, N = 2^10 or 2^11, Δ = 2^40); the observed
//! errors are ~1e-8..1e-6, the bound asserted is 1e-6 (values of size ~1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{max_abs_diff, random_vec, run_encrypted, test_params};
use he_nn::network::Linear;
use he_nn::sim::Gaussian;
use he_nn::{Activation, Conv2dSpec, Mode, Network, PolyFunction};

const TOL: f64 = 1e-6;

fn exact(net: &Network, inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    inputs.iter().map(|x| net.forward(x).unwrap()).collect()
}

fn check(net: &Network, log_n: u32, depth: usize, inputs: &[Vec<f64>], what: &str) {
    for mode in [Mode::Throughput, Mode::Latency] {
        let (enc, sim, plan) = run_encrypted(net, mode, test_params(log_n, depth), inputs);
        assert_eq!(plan.depth, depth, "{what}: planned depth");
        let want = exact(net, inputs);
        let e_sim = max_abs_diff(&sim, &want);
        let e_enc = max_abs_diff(&enc, &want);
        println!("{what} {mode:?} (N=2^{log_n}): |sim - exact| = {e_sim:.2e}, |encrypted - exact| = {e_enc:.2e}");
        assert!(
            e_sim < 1e-9,
            "{what} {mode:?}: simulator differs from the network by {e_sim}"
        );
        assert!(
            e_enc < TOL,
            "{what} {mode:?}: encrypted output differs by {e_enc}"
        );
    }
}

fn inputs(g: &mut Gaussian, count: usize, len: usize) -> Vec<Vec<f64>> {
    (0..count).map(|_| random_vec(g, len, 1.0)).collect()
}

#[test]
fn dense_layer() {
    let mut g = Gaussian::new(1);
    let mut net = Network::new(&[20]);
    net.dense(
        &random_vec(&mut g, 7 * 20, 0.3),
        7,
        Some(&random_vec(&mut g, 7, 1.0)),
    )
    .unwrap();
    check(&net, 10, 1, &inputs(&mut g, 3, 20), "Dense(20->7)");
}

#[test]
fn conv2d_stride2_padding_multichannel_then_square() {
    let mut g = Gaussian::new(2);
    let mut net = Network::new(&[3, 9, 9]);
    let spec = Conv2dSpec::new(4, 3, 2, 1);
    net.conv2d(
        &random_vec(&mut g, 4 * 3 * 9, 0.3),
        &spec,
        Some(&random_vec(&mut g, 4, 0.5)),
    )
    .unwrap();
    assert_eq!(net.nodes[1].shape, vec![4, 5, 5]);
    net.activation(Activation::Square).unwrap();
    check(
        &net,
        10,
        2,
        &inputs(&mut g, 2, 243),
        "Conv2d(3->4, k3, s2, p1) + square",
    );
}

#[test]
fn conv2d_grouped_dilated() {
    let mut g = Gaussian::new(3);
    let mut net = Network::new(&[4, 8, 8]);
    let spec = Conv2dSpec {
        out_channels: 4,
        kernel: [3, 3],
        stride: [1, 1],
        pads: [2, 1, 2, 1],
        dilation: [2, 1],
        groups: 2,
    };
    net.conv2d(&random_vec(&mut g, 4 * 2 * 9, 0.3), &spec, None)
        .unwrap();
    check(
        &net,
        10,
        1,
        &inputs(&mut g, 2, 256),
        "Conv2d(4->4, groups 2, dilation 2x1, asymmetric pads)",
    );
}

#[test]
fn conv1d_and_pools() {
    let mut g = Gaussian::new(4);
    let mut net = Network::new(&[2, 20]);
    let (l, [o, ol]) = Linear::conv1d(
        [2, 20],
        &random_vec(&mut g, 3 * 2 * 5, 0.3),
        3,
        5,
        2,
        [1, 1],
        1,
        1,
        Some(&[0.1, -0.2, 0.3]),
    )
    .unwrap();
    net.linear(l, vec![o, ol]).unwrap();
    assert_eq!((o, ol), (3, 9));
    let (p, out) = Linear::avg_pool2d([3, 1, 9], [1, 3], [1, 2], [0, 1, 0, 1], false).unwrap();
    net.push("reshape", he_nn::Op::Reshape, vec![1], vec![3, 1, 9])
        .unwrap();
    net.linear(p, out.to_vec()).unwrap();
    let spatial = out[1] * out[2];
    net.linear(Linear::global_avg_pool(3, spatial).unwrap(), vec![3])
        .unwrap();
    check(
        &net,
        10,
        3,
        &inputs(&mut g, 2, 40),
        "Conv1d(2->3, k5, s2, p1) + AvgPool + GlobalAvgPool",
    );
}

#[test]
fn residual_add_across_levels_and_batchnorm_affine() {
    let mut g = Gaussian::new(5);
    let mut net = Network::new(&[16]);
    let a = net
        .dense(&random_vec(&mut g, 16 * 16, 0.25), 16, None)
        .unwrap();
    net.activation(Activation::Square).unwrap();
    let c = net
        .dense(
            &random_vec(&mut g, 16 * 16, 0.25),
            16,
            Some(&random_vec(&mut g, 16, 0.1)),
        )
        .unwrap();
    net.add(a, c).unwrap(); // a is two levels above c
    let bn = Linear::channel_affine(
        16,
        1,
        &random_vec(&mut g, 16, 1.0),
        &random_vec(&mut g, 16, 1.0),
    )
    .unwrap();
    net.linear(bn, vec![16]).unwrap();
    check(
        &net,
        10,
        4,
        &inputs(&mut g, 3, 16),
        "residual Add (levels 4 and 2) + channel affine",
    );
}

#[test]
fn tiling_across_ciphertexts() {
    // N = 2^10: 512 slots. The 784-pixel input takes 2 ciphertexts, the 600-wide hidden layer 2.
    let mut g = Gaussian::new(6);
    let mut net = Network::new(&[1, 28, 28]);
    net.conv2d(
        &random_vec(&mut g, 4 * 49, 0.2),
        &Conv2dSpec::new(4, 7, 3, 0),
        Some(&[0.1, 0.2, -0.1, 0.0]),
    )
    .unwrap();
    net.flatten().unwrap();
    net.dense(&random_vec(&mut g, 600 * 256, 0.06), 600, None)
        .unwrap();
    net.activation(Activation::Square).unwrap();
    net.dense(&random_vec(&mut g, 10 * 600, 0.05), 10, None)
        .unwrap();
    let xs: Vec<Vec<f64>> = (0..2)
        .map(|_| (0..784).map(|_| g.uniform()).collect())
        .collect();
    let (enc, sim, plan) = run_encrypted(&net, Mode::Latency, test_params(10, 4), &xs);
    assert_eq!(plan.steps[0].layout.tiles, 2);
    assert_eq!(plan.steps[3].layout.tiles, 2);
    let want = exact(&net, &xs);
    let (e_sim, e_enc) = (max_abs_diff(&sim, &want), max_abs_diff(&enc, &want));
    println!("tiled latency: |sim - exact| = {e_sim:.2e}, |encrypted - exact| = {e_enc:.2e}; rotations {:?}", plan.rotation_steps);
    assert!(
        e_sim < 1e-9 && e_enc < TOL,
        "tiled: sim {e_sim}, encrypted {e_enc}"
    );
}

#[test]
fn polynomial_relu_and_gelu() {
    let mut g = Gaussian::new(7);
    for (function, degree, bound) in [
        (PolyFunction::Relu, 7, Some(4.0)),
        (PolyFunction::Gelu, 6, None),
        (PolyFunction::Silu, 3, Some(3.0)),
    ] {
        let mut net = Network::new(&[12]);
        net.dense(&random_vec(&mut g, 12 * 12, 0.3), 12, None)
            .unwrap();
        net.activation(Activation::Poly {
            function,
            degree,
            bound,
        })
        .unwrap();
        let depth = 1 + he_nn::poly::poly_depth(degree);
        let xs = inputs(&mut g, 3, 12);
        for mode in [Mode::Throughput, Mode::Latency] {
            let (enc, sim, plan) = run_encrypted(&net, mode, test_params(10, depth), &xs);
            let want = exact(&net, &xs);
            let fit = match &plan.steps[2].op {
                he_nn::plan::StepOp::Poly { poly, prescale } => {
                    assert!(!prescale, "1/B folds into the dense layer");
                    poly.clone()
                }
                op => panic!("expected a polynomial step, got {op:?}"),
            };
            let (e_enc, e_approx) = (max_abs_diff(&enc, &sim), max_abs_diff(&sim, &want));
            println!("{} {mode:?}: {}; |encrypted - simulated| {e_enc:.2e}, |simulated - exact| {e_approx:.2e}", function.name(), fit.describe());
            assert_eq!(plan.depth, depth);
            assert!(e_enc < TOL, "{e_enc}");
            assert!(
                e_approx <= fit.max_error() * 1.01 + 1e-12,
                "{e_approx} > {}",
                fit.max_error()
            );
        }
    }
}

#[test]
fn unfolded_polynomial_prescale() {
    // A polynomial after a residual add cannot fold 1/B: one extra level, still exact.
    let mut g = Gaussian::new(8);
    let mut net = Network::new(&[8]);
    let a = net.dense(&random_vec(&mut g, 64, 0.3), 8, None).unwrap();
    let b = net.dense(&random_vec(&mut g, 64, 0.3), 8, None).unwrap(); // reads a
    net.add(a, b).unwrap();
    net.activation(Activation::Poly {
        function: PolyFunction::Relu,
        degree: 3,
        bound: Some(5.0),
    })
    .unwrap();
    let xs = inputs(&mut g, 2, 8);
    let (enc, sim, plan) = run_encrypted(&net, Mode::Throughput, test_params(10, 5), &xs);
    assert_eq!(plan.depth, 2 + 1 + 2);
    assert!(max_abs_diff(&enc, &sim) < TOL);
}

#[test]
fn constant_addition_after_square() {
    // An `x + c` node the importer could not fold (after an activation): in latency mode its
    // packed constant is encoded once by the engine, not per run.
    let mut g = Gaussian::new(9);
    let mut net = Network::new(&[24]);
    net.dense(&random_vec(&mut g, 12 * 24, 0.3), 12, None)
        .unwrap();
    let sq = net.activation(Activation::Square).unwrap();
    net.push(
        "add_c",
        he_nn::Op::AddConst(random_vec(&mut g, 12, 1.0)),
        vec![sq],
        vec![12],
    )
    .unwrap();
    net.dense(&random_vec(&mut g, 5 * 12, 0.3), 5, None)
        .unwrap();
    check(&net, 10, 3, &inputs(&mut g, 3, 24), "Dense, x², +c, Dense");
}
