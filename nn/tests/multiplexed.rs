//! Multiplexed packing (Lee et al., ICML 2022) in latency mode: diagonal counts of the ResNet-20
//! layer shapes in the contiguous and the multiplexed layouts, exact cleartext evaluation of
//! the packed stride-2 convolution in both, and an encrypted residual network whose planner
//! picks the multiplexed layout for its stride-2 layers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{max_abs_diff, random_vec, run_encrypted, test_params};
use he_nn::network::Linear;
use he_nn::plan::{Multiplexed, PackedLayout, PackedLinear, StepOp};
use he_nn::sim::{packed_linear_f64, Gaussian};
use he_nn::{Activation, Conv2dSpec, Mode, Network, Op};

const SLOTS: usize = 32768;

fn layout(shape: [usize; 3], gap: usize) -> PackedLayout {
    if gap == 1 {
        PackedLayout::new(shape.iter().product(), SLOTS)
    } else {
        PackedLayout::multiplexed(Multiplexed::new(shape, gap).unwrap(), SLOTS).unwrap()
    }
}

fn conv(g: &mut Gaussian, input: [usize; 3], spec: &Conv2dSpec) -> (Linear, [usize; 3]) {
    let [c, ..] = input;
    let [kh, kw] = spec.kernel;
    let w = random_vec(g, spec.out_channels * c * kh * kw, 0.1);
    let b = random_vec(g, spec.out_channels, 0.1);
    Linear::conv2d(input, &w, spec, Some(&b)).unwrap()
}

/// `y = M x` through the packing: pack, the simulator's packed evaluation, unpack.
fn packed_apply(l: &Linear, input: &PackedLayout, output: &PackedLayout, x: &[f64]) -> Vec<f64> {
    let p = PackedLinear::new(l, input, output, SLOTS).unwrap();
    let y = packed_linear_f64(&p, &input.pack(x, SLOTS), SLOTS, None).unwrap();
    output.unpack(&y, SLOTS)
}

/// The ResNet-20 downsampling convolution 16×32×32 → 32×16×16 (3×3, stride 2, pad 1) at 2^15
/// slots. Multiplexed (gap 1 → 2): input (ic, y, x) at ic·1024 + y·32 + x, output (oc, oy, ox)
/// at (oc/4)·1024 + (2oy + iy)·32 + 2ox + ix with oc mod 4 = 2iy + ix; an input read
/// (ic, 2oy + ky − 1, 2ox + kx − 1) is at offset (ic − oc/4)·1024 + (ky − 1 − iy)·32 + (kx − 1 − ix)
/// from its output. The output period is 8192 (8 channel blocks), so offsets count mod 8192:
/// 8 block differences × 4 row offsets (−2..1) × 4 column offsets = at most 128 diagonals.
#[test]
fn stride2_conv_multiplexed_has_few_diagonals_and_is_exact() {
    let mut g = Gaussian::new(11);
    let (l, out) = conv(&mut g, [16, 32, 32], &Conv2dSpec::new(32, 3, 2, 1));
    assert_eq!(out, [32, 16, 16]);
    let inp = layout([16, 32, 32], 1);
    let (contiguous, mux) = (layout(out, 1), layout(out, 2));
    let c = PackedLinear::estimate(&l, &inp, &contiguous).unwrap();
    let m = PackedLinear::estimate(&l, &inp, &mux).unwrap();
    println!("16x32x32 -> 32x16x16 s2: contiguous {c:?}, multiplexed gap 2 {m:?}");
    assert!(m.diagonals <= 128, "{m:?}");
    assert!(c.diagonals >= 8 * m.diagonals, "{c:?} vs {m:?}");
    let x = random_vec(&mut g, l.in_len, 1.0);
    let want = l.apply(&x).unwrap();
    for (name, o) in [("multiplexed", mux), ("contiguous", contiguous)] {
        let p = PackedLinear::new(&l, &inp, &o, SLOTS).unwrap();
        let est = if o.is_contiguous() { c } else { m };
        assert_eq!(p.diagonal_count(), est.diagonals, "{name}");
        assert_eq!(p.rotation_steps().unwrap().len(), est.rotations, "{name}");
        let got = packed_apply(&l, &inp, &o, &x);
        let e = max_abs_diff(&[got], std::slice::from_ref(&want));
        println!("{name}: |packed - dense| = {e:.2e}");
        assert!(e < 1e-9, "{name}: {e}");
    }
}

/// Diagonal counts (and modelled rotations) of the ResNet-20 layer shapes at 2^15 slots,
/// contiguous vs multiplexed (each layer reading the gap the previous stage writes).
#[test]
fn resnet20_layer_shapes_diagonal_counts() {
    let mut g = Gaussian::new(12);
    // (name, input shape, input gap, conv, multiplexed output gap)
    let cases = [
        (
            "16x32x32 3x3",
            [16, 32, 32],
            1,
            Conv2dSpec::new(16, 3, 1, 1),
            1,
        ),
        (
            "16x32x32 -> 32x16x16 s2",
            [16, 32, 32],
            1,
            Conv2dSpec::new(32, 3, 2, 1),
            2,
        ),
        (
            "shortcut 1x1 s2 16 -> 32",
            [16, 32, 32],
            1,
            Conv2dSpec::new(32, 1, 2, 0),
            2,
        ),
        (
            "32x16x16 3x3",
            [32, 16, 16],
            2,
            Conv2dSpec::new(32, 3, 1, 1),
            2,
        ),
        (
            "32x16x16 -> 64x8x8 s2",
            [32, 16, 16],
            2,
            Conv2dSpec::new(64, 3, 2, 1),
            4,
        ),
        (
            "shortcut 1x1 s2 32 -> 64",
            [32, 16, 16],
            2,
            Conv2dSpec::new(64, 1, 2, 0),
            4,
        ),
        ("64x8x8 3x3", [64, 8, 8], 4, Conv2dSpec::new(64, 3, 1, 1), 4),
    ];
    println!("layer                        contiguous (diag, rot)   multiplexed (diag, rot)");
    for (name, shape, gap, spec, out_gap) in cases {
        let (l, out) = conv(&mut g, shape, &spec);
        let c = PackedLinear::estimate(&l, &layout(shape, 1), &layout(out, 1)).unwrap();
        let m = PackedLinear::estimate(&l, &layout(shape, gap), &layout(out, out_gap)).unwrap();
        println!(
            "{name:<28} ({:>5}, {:>3})              ({:>5}, {:>3}) gap {gap} -> {out_gap}",
            c.diagonals, c.rotations, m.diagonals, m.rotations
        );
        if spec.stride[0] == 2 {
            assert!(m.weighted() < c.weighted(), "{name}: {m:?} vs {c:?}");
        }
    }
    let l = Linear::global_avg_pool(64, 64).unwrap();
    let c = PackedLinear::estimate(&l, &layout([64, 8, 8], 1), &PackedLayout::new(64, SLOTS));
    let m = PackedLinear::estimate(&l, &layout([64, 8, 8], 4), &PackedLayout::new(64, SLOTS));
    let (c, m) = (c.unwrap(), m.unwrap());
    println!(
        "{:<28} ({:>5}, {:>3})              ({:>5}, {:>3}) gap 4 -> contiguous",
        "global avg pool 64x8x8 -> 64", c.diagonals, c.rotations, m.diagonals, m.rotations
    );
    assert!(m.diagonals <= 64 && c.diagonals <= 64);
}

/// A small residual network: conv 3×3 (4×8×8), square, then a block whose main branch is a
/// 3×3 stride-2 conv to 8×4×4, square, 3×3 conv, and whose shortcut is a 1×1 stride-2 conv;
/// the sum, global average pooling and a dense layer. Encrypted at N = 2^11 (insecure).
fn residual_net(g: &mut Gaussian) -> Network {
    let mut net = Network::new(&[4, 8, 8]);
    let w = |g: &mut Gaussian, n: usize, std: f64| random_vec(g, n, std);
    net.conv2d(
        &w(g, 4 * 4 * 9, 0.2),
        &Conv2dSpec::new(4, 3, 1, 1),
        Some(&w(g, 4, 0.1)),
    )
    .unwrap();
    let a = net.activation(Activation::Square).unwrap();
    net.conv2d(
        &w(g, 8 * 4 * 9, 0.15),
        &Conv2dSpec::new(8, 3, 2, 1),
        Some(&w(g, 8, 0.1)),
    )
    .unwrap();
    net.activation(Activation::Square).unwrap();
    let m = net
        .conv2d(&w(g, 8 * 8 * 9, 0.15), &Conv2dSpec::new(8, 3, 1, 1), None)
        .unwrap();
    let (s, shape) = Linear::conv2d(
        [4, 8, 8],
        &w(g, 8 * 4, 0.3),
        &Conv2dSpec::new(8, 1, 2, 0),
        None,
    )
    .unwrap();
    let s = net
        .push("shortcut", Op::Linear(s), vec![a], shape.to_vec())
        .unwrap();
    net.add(m, s).unwrap();
    net.linear(Linear::global_avg_pool(8, 16).unwrap(), vec![8])
        .unwrap();
    net.dense(&w(g, 3 * 8, 0.5), 3, Some(&w(g, 3, 0.1)))
        .unwrap();
    net
}

#[test]
fn encrypted_residual_net_with_multiplexed_stride2_layers() {
    let mut g = Gaussian::new(13);
    let net = residual_net(&mut g);
    let xs: Vec<Vec<f64>> = (0..2).map(|_| random_vec(&mut g, 256, 1.0)).collect();
    let (enc, sim, plan) = run_encrypted(&net, Mode::Latency, test_params(11, 7), &xs);
    print!("{}", plan.describe());
    for s in &plan.steps {
        println!("{:<16} {}", s.name, s.layout.describe());
    }
    let want: Vec<Vec<f64>> = xs.iter().map(|x| net.forward(x).unwrap()).collect();
    let (e_sim, e_enc) = (max_abs_diff(&sim, &want), max_abs_diff(&enc, &want));
    println!(
        "|sim - exact| = {e_sim:.2e}, |encrypted - exact| = {e_enc:.2e} ({:.1} bits)",
        -e_enc.log2()
    );
    assert!(e_sim < 1e-9, "simulator: {e_sim}");
    assert!(e_enc < 1e-5, "encrypted: {e_enc}");
    // Both stride-2 layers (main branch and shortcut) write the multiplexed gap-2 layout, the
    // residual sum's operands agree, and the output is contiguous.
    let stride2: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| matches!(&s.op, StepOp::Linear(l) if l.kind.contains("s2x2")))
        .collect();
    assert_eq!(stride2.len(), 2);
    for s in &stride2 {
        assert_eq!(s.layout.gap(), 2, "{}: {}", s.name, s.layout.describe());
    }
    for s in plan.steps.iter().filter(|s| matches!(s.op, StepOp::Add)) {
        assert_eq!(
            plan.steps[s.inputs[0]].layout,
            plan.steps[s.inputs[1]].layout
        );
    }
    assert!(plan.steps.last().unwrap().layout.is_contiguous());
}

/// A network ending in a stride-2 conv and a square: the conv alone would pick the
/// multiplexed layout, the output constraint forces it back to contiguous.
#[test]
fn network_output_is_contiguous() {
    let mut g = Gaussian::new(14);
    let mut net = Network::new(&[4, 8, 8]);
    net.conv2d(
        &random_vec(&mut g, 8 * 4 * 9, 0.2),
        &Conv2dSpec::new(8, 3, 2, 1),
        None,
    )
    .unwrap();
    net.activation(Activation::Square).unwrap();
    let mut opts = he_nn::PlanOptions::new(Mode::Latency);
    opts.parameters = Some(test_params(11, 2));
    opts.flooding = None;
    let plan = he_nn::Plan::new(&net, &opts).unwrap();
    assert!(plan.steps.iter().all(|s| s.layout.is_contiguous()));
    let xs = vec![random_vec(&mut g, 256, 1.0)];
    let sim = plan.simulate(&xs, None).unwrap();
    let want = vec![net.forward(&xs[0]).unwrap()];
    assert!(max_abs_diff(&sim, &want) < 1e-9);
    // Without the square and with a dense layer after it, the conv is multiplexed.
    let mut net = Network::new(&[4, 8, 8]);
    net.conv2d(
        &random_vec(&mut g, 8 * 4 * 9, 0.2),
        &Conv2dSpec::new(8, 3, 2, 1),
        None,
    )
    .unwrap();
    net.flatten().unwrap();
    net.dense(&random_vec(&mut g, 5 * 128, 0.1), 5, None)
        .unwrap();
    let plan = he_nn::Plan::new(&net, &opts).unwrap();
    assert_eq!(
        plan.steps[1].layout.gap(),
        2,
        "{}",
        plan.steps[1].layout.describe()
    );
    assert_eq!(
        plan.steps[2].layout, plan.steps[1].layout,
        "a flatten keeps the slots"
    );
    let sim = plan.simulate(&xs, None).unwrap();
    let want = vec![net.forward(&xs[0]).unwrap()];
    assert!(max_abs_diff(&sim, &want) < 1e-9);
}

/// A residual sum of the (contiguous) input and a stride-2 conv that alone would be
/// multiplexed: the input cannot move, so the planner forces the conv to contiguous.
#[test]
fn residual_operands_share_a_layout() {
    let mut g = Gaussian::new(15);
    let mut net = Network::new(&[4, 4, 4]);
    net.dense(&random_vec(&mut g, 256 * 64, 0.1), 256, None)
        .unwrap();
    let r = net.push("r", Op::Reshape, vec![1], vec![4, 8, 8]).unwrap();
    let spec = Conv2dSpec::new(4, 3, 2, 1);
    let (l, shape) =
        Linear::conv2d([4, 8, 8], &random_vec(&mut g, 4 * 4 * 9, 0.2), &spec, None).unwrap();
    let alone = PackedLinear::estimate(&l, &layout([4, 8, 8], 1), &layout(shape, 2)).unwrap();
    let forced = PackedLinear::estimate(&l, &layout([4, 8, 8], 1), &layout(shape, 1)).unwrap();
    assert!(
        alone.weighted() < forced.weighted(),
        "{alone:?} vs {forced:?}"
    );
    let c = net
        .push("conv", Op::Linear(l), vec![r], shape.to_vec())
        .unwrap();
    net.add(0, c).unwrap();
    net.dense(&random_vec(&mut g, 3 * 64, 0.1), 3, None)
        .unwrap();
    let mut opts = he_nn::PlanOptions::new(Mode::Latency);
    opts.parameters = Some(test_params(11, 3));
    opts.flooding = None;
    let plan = he_nn::Plan::new(&net, &opts).unwrap();
    assert!(plan.steps.iter().all(|s| s.layout.is_contiguous()));
    let xs = vec![random_vec(&mut g, 64, 1.0)];
    let sim = plan.simulate(&xs, None).unwrap();
    assert!(max_abs_diff(&sim, &[net.forward(&xs[0]).unwrap()]) < 1e-9);
}

/// ResNet-20's three stages (one conv per stage and the downsamplings) planned at N = 2^16:
/// the planner keeps stage 1 contiguous and moves to gap 2 and gap 4 at the stride-2 layers;
/// the simulator's packed run equals the network.
#[test]
fn resnet20_stages_planned_at_2_16() {
    let mut g = Gaussian::new(16);
    let mut net = Network::new(&[16, 32, 32]);
    let mut conv = |net: &mut Network, c: usize, o: usize, s: usize| {
        let w = random_vec(&mut g, o * c * 9, 1.0 / (3.0 * (c as f64).sqrt()));
        net.conv2d(&w, &Conv2dSpec::new(o, 3, s, 1), None).unwrap();
    };
    conv(&mut net, 16, 16, 1);
    net.activation(Activation::Square).unwrap();
    conv(&mut net, 16, 32, 2);
    net.activation(Activation::Square).unwrap();
    conv(&mut net, 32, 32, 1);
    conv(&mut net, 32, 64, 2);
    net.activation(Activation::Square).unwrap();
    conv(&mut net, 64, 64, 1);
    net.linear(Linear::global_avg_pool(64, 64).unwrap(), vec![64])
        .unwrap();
    net.dense(&random_vec(&mut g, 640, 0.1), 10, None).unwrap();
    let mut opts = he_nn::PlanOptions::new(Mode::Latency);
    opts.parameters = Some(test_params(16, 10));
    opts.flooding = None;
    let plan = he_nn::Plan::new(&net, &opts).unwrap();
    print!("{}", plan.describe());
    let gaps: Vec<usize> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.op, StepOp::Linear(_)))
        .map(|s| s.layout.gap())
        .collect();
    assert_eq!(gaps, [1, 2, 2, 4, 4, 1, 1]);
    let xs = vec![random_vec(&mut g, 16 * 1024, 1.0)];
    let sim = plan.simulate(&xs, None).unwrap();
    let want = net.forward(&xs[0]).unwrap();
    let top = want.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    let e = max_abs_diff(&sim, &[want]);
    println!("|sim - exact| = {e:.2e} (outputs up to {top:.2})");
    assert!(top > 0.1 && e < 1e-9 * top, "{e} at {top}");
}
