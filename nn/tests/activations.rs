//! ReLU approximations chosen per layer by the planner ([`he_nn::activation`]): the choice
//! at low and high precision, per-layer overrides, typed refusals, the stated error bound
//! under random intervals and precisions, and a composite ReLU run encrypted at N = 2^12
//! against the simulator and the exact model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{max_abs_diff, random_vec, test_params};
use he_core::circuits::bootstrapping::{BootstrapConfig, BootstrapPreset};
use he_core::ckks::{Decryptor, Encoder, Encryptor};
use he_core::rlwe::{Parameters, ParametersLiteral, SecretDistribution, Security};
use he_nn::activation::{choose_relu, Approximation, ReluApproximation};
use he_nn::network::{Activation, Network};
use he_nn::plan::{cost, Bootstrapping, StepOp};
use he_nn::poly::PolyFunction;
use he_nn::sim::Gaussian;
use he_nn::{Engine, Mode, NnError, Plan, PlanOptions};
use proptest::prelude::*;

/// `in(n) -> dense(h) -> relu -> dense(o)` (with `relus = 2`, a second dense(h) + relu).
fn mlp(g: &mut Gaussian, n: usize, h: usize, o: usize, relus: usize) -> Network {
    let mut net = Network::new(&[n]);
    let mut width = n;
    for _ in 0..relus {
        net.dense(
            &random_vec(g, h * width, 1.0 / (width as f64).sqrt()),
            h,
            Some(&random_vec(g, h, 0.1)),
        )
        .unwrap();
        net.activation(Activation::Poly {
            function: PolyFunction::Relu,
            degree: 7,
            bound: None,
        })
        .unwrap();
        width = h;
    }
    net.dense(&random_vec(g, o * h, 0.5), o, None).unwrap();
    net
}

fn inputs(g: &mut Gaussian, count: usize, len: usize) -> Vec<Vec<f64>> {
    (0..count)
        .map(|_| (0..len).map(|_| 2.0 * g.uniform() - 1.0).collect())
        .collect()
}

/// The plan's activation steps, in order.
fn activations(plan: &Plan) -> Vec<(&str, &Approximation, bool)> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.op {
            StepOp::Poly { poly, prescale } => Some((s.name.as_str(), poly, *prescale)),
            _ => None,
        })
        .collect()
}

#[test]
fn auto_choice_by_precision_table() {
    // The relative criterion makes the choice independent of B (ReLU is homogeneous).
    println!("bits | chosen | degrees | depth | products | max error / B");
    let mut kinds = Vec::new();
    for bits in [4u32, 6, 8, 10, 12, 14, 16] {
        let a = choose_relu(&ReluApproximation::auto(bits), 7, 3.0).unwrap();
        let rel = a.max_error() / 3.0;
        println!(
            "{bits} | {} | {:?} | {} | {} | 2^{:.2}",
            match a {
                Approximation::Interpolant(_) => "interpolant",
                Approximation::CompositeRelu(_) => "composite",
            },
            a.degrees(),
            a.depth(),
            a.multiplications().unwrap(),
            rel.log2()
        );
        assert!(rel <= 2f64.powi(-(bits as i32)), "{bits} bits: {rel:e}");
        kinds.push(matches!(a, Approximation::CompositeRelu(_)));
    }
    // Low precision: interpolants; high: composites (the interpolant would need a degree
    // above the search's limit of 1023).
    assert!(!kinds[1], "6 bits: interpolant");
    assert!(kinds[5], "14 bits: composite");
}

#[test]
fn planner_chooses_per_layer_and_accounts_levels() {
    let mut g = Gaussian::new(3);
    let net = mlp(&mut g, 8, 12, 4, 2);
    let xs = inputs(&mut g, 16, 8);
    let mut opts = PlanOptions::new(Mode::Throughput);
    opts.flooding = None;
    opts.calibration = xs.clone();
    // Insecure, with a 60-bit q_0: a 21-level chain of 40-bit primes drifts 8 bits upward.
    opts.parameters = Some(
        Parameters::new(ParametersLiteral {
            log_n: 12,
            log_q: std::iter::once(60)
                .chain(std::iter::repeat_n(40, 24))
                .collect(),
            log_p: vec![61],
            alpha: None,
            log_scale: 40.0,
            secret: SecretDistribution::UniformTernary,
            security: Security::InsecureForTesting,
        })
        .unwrap(),
    );
    opts.relu = ReluApproximation::auto(12);
    let names: Vec<String> = net
        .nodes
        .iter()
        .filter(|n| matches!(n.op, he_nn::Op::Activation(_)))
        .map(|n| n.name.clone())
        .collect();
    opts.relu_layers
        .insert(names[0].clone(), ReluApproximation::auto(6));
    let plan = Plan::new(&net, &opts).unwrap();
    println!("{}", plan.describe());
    let acts = activations(&plan);
    assert_eq!(acts.len(), 2);
    assert!(matches!(acts[0].1, Approximation::Interpolant(_)));
    assert!(matches!(acts[1].1, Approximation::CompositeRelu(_)));
    for (name, a, prescale) in &acts {
        assert!(!prescale, "{name}: 1/B folds into the dense layer before");
        assert!(a.max_error() <= a.bound() * 2f64.powi(if name == &names[0] { -6 } else { -12 }));
    }
    // Levels: three dense layers and each activation's own depth (the composite's product
    // included).
    assert_eq!(plan.depth, 3 + acts[0].1.depth() + acts[1].1.depth());
    for (i, s) in plan.steps.iter().enumerate().skip(1) {
        assert_eq!(
            plan.steps[s.inputs[0]].level,
            s.level + cost(&s.op),
            "step {i}"
        );
    }
    // The report names each layer's choice.
    let lines: Vec<&String> = plan.approximations.iter().collect();
    assert!(lines[0].contains("Chebyshev interpolant") && lines[0].contains("chosen by Auto"));
    assert!(lines[1].contains("composite minimax sign") && lines[1].contains("B·2^-12"));
    assert!(plan.describe().contains("composite ["));
    // The default is unchanged: the declared degree-7 interpolant.
    let mut default = opts.clone();
    default.relu = ReluApproximation::Declared;
    default.relu_layers.clear();
    let plan = Plan::new(&net, &default).unwrap();
    for (_, a, _) in activations(&plan) {
        assert_eq!(a.degrees(), vec![7]);
        assert!(matches!(a, Approximation::Interpolant(_)));
    }
    assert_eq!(plan.depth, 3 + 2 * 3);
}

#[test]
fn unreachable_precision_is_a_typed_error() {
    let mut g = Gaussian::new(4);
    let net = mlp(&mut g, 8, 8, 2, 1);
    let mut opts = PlanOptions::new(Mode::Throughput);
    opts.flooding = None;
    opts.calibration = inputs(&mut g, 4, 8);
    opts.relu = ReluApproximation::Auto {
        precision_bits: 14,
        max_depth: 8,
    };
    match Plan::new(&net, &opts) {
        Err(NnError::NoApproximation { function, .. }) => {
            assert!(function.contains("layer"), "{function}")
        }
        r => panic!("expected NoApproximation, got {:?}", r.map(|p| p.depth)),
    }
    for setting in [
        ReluApproximation::composite(50),
        ReluApproximation::Composite {
            precision_bits: 10,
            max_depth: 6,
        },
    ] {
        assert!(matches!(
            choose_relu(&setting, 7, 2.0),
            Err(NnError::NoApproximation { .. })
        ));
    }
}

#[test]
fn composite_depth_drives_bootstrap_placement() {
    // The insecure N = 2^12 bootstrapping preset leaves 2 levels: a composite ReLU (depth
    // > 2) cannot run between two bootstraps, and the planner says so with its real depth.
    let mut g = Gaussian::new(5);
    let net = mlp(&mut g, 8, 8, 2, 1);
    let mut opts = PlanOptions::new(Mode::Latency);
    opts.flooding = None;
    opts.calibration = inputs(&mut g, 4, 8);
    opts.bootstrapping = Bootstrapping::With(BootstrapConfig::preset(
        BootstrapPreset::N12InsecureForTesting,
    ));
    opts.relu = ReluApproximation::composite(8);
    let depth = choose_relu(&opts.relu, 7, 1.0).unwrap().depth();
    match Plan::new(&net, &opts) {
        Err(NnError::DepthExceeded { needed, available }) => {
            assert_eq!((needed, available), (depth, 2))
        }
        r => panic!("expected DepthExceeded, got {:?}", r.map(|p| p.depth)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]
    #[test]
    fn chosen_approximation_meets_its_bound(
        log_b in -3.0f64..7.0,
        bits in 3u32..=13,
        composite in any::<bool>(),
        xs in prop::collection::vec(-1.0f64..1.0, 200),
    ) {
        let b = 2f64.powf(log_b);
        let setting = if composite {
            ReluApproximation::composite(bits)
        } else {
            ReluApproximation::auto(bits)
        };
        let a = choose_relu(&setting, 7, b).unwrap();
        let bound = b * 2f64.powi(-(bits as i32));
        prop_assert!(a.max_error() <= bound);
        // Random points (and some near the kink), beyond the measuring grid.
        for u in xs.iter().copied().chain(xs.iter().map(|u| u * 1e-3)) {
            let x = u * b;
            let e = (a.eval(x) - x.max(0.0)).abs();
            prop_assert!(e <= bound * 1.02 + 1e-12, "x = {x}: error {e:e} > {bound:e} ({})", a.describe());
        }
    }
}

/// Plans `net` under `opts`, runs `xs` encrypted (one batch, or one input at a time in
/// latency mode) and simulated; returns (encrypted, simulated, plan).
fn run(net: &Network, opts: &PlanOptions, xs: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, Plan) {
    let plan = Plan::new(net, opts).unwrap();
    let sim = plan.simulate(xs, None).unwrap();
    let keys = plan.generate_keys().unwrap();
    let encoder = Encoder::new(&plan.params).unwrap();
    let encryptor = Encryptor::new(&plan.params, keys.public.clone()).unwrap();
    let decryptor = Decryptor::new(&keys.secret);
    let engine = Engine::new(&plan, keys.eval.clone()).unwrap();
    let batches: Vec<&[Vec<f64>]> = match opts.mode {
        Mode::Throughput => vec![xs],
        Mode::Latency => xs.chunks(1).collect(),
    };
    let mut enc = Vec::new();
    for b in batches {
        let ct = plan.encrypt(&encoder, &encryptor, b).unwrap();
        let y = engine.run(ct).unwrap();
        enc.extend(plan.decrypt(&encoder, &decryptor, &y).unwrap());
    }
    (enc, sim, plan)
}

#[test]
fn unfolded_composite_relu_encrypted() {
    // After a residual addition 1/B cannot fold: the composite takes one level more for x/B,
    // in the engine and the simulator alike (throughput mode, 8 ciphertexts).
    let mut g = Gaussian::new(10);
    let mut net = Network::new(&[8]);
    let a = net.dense(&random_vec(&mut g, 64, 0.3), 8, None).unwrap();
    let b = net.dense(&random_vec(&mut g, 64, 0.3), 8, None).unwrap();
    net.add(a, b).unwrap();
    net.activation(Activation::Poly {
        function: PolyFunction::Relu,
        degree: 3,
        bound: Some(2.0),
    })
    .unwrap();
    let xs = inputs(&mut g, 4, 8);
    let mut opts = PlanOptions::new(Mode::Throughput);
    opts.flooding = None;
    opts.calibration = xs.clone();
    opts.relu = ReluApproximation::composite(8);
    let relu = choose_relu(&opts.relu, 3, 2.0).unwrap();
    let depth = 2 + 1 + relu.depth();
    opts.parameters = Some(test_params(12, depth));
    let (enc, sim, plan) = run(&net, &opts, &xs);
    assert_eq!(plan.depth, depth);
    assert!(activations(&plan)[0].2, "prescaled");
    assert!(plan.approximations[0].contains("+1 level for x/B"));
    let exact: Vec<Vec<f64>> = xs.iter().map(|x| net.forward(x).unwrap()).collect();
    let (e_enc, e_sim) = (max_abs_diff(&enc, &sim), max_abs_diff(&sim, &exact));
    println!("unfolded composite ReLU (depth {depth}): |encrypted - simulated| {e_enc:.2e}, |simulated - exact| {e_sim:.2e} (max error {:.2e})", relu.max_error());
    assert!(e_enc < 1e-6, "{e_enc}");
    assert!(e_sim <= relu.max_error() * 1.01 + 1e-9, "{e_sim}");
}

#[test]
fn composite_relu_encrypted_matches_simulator_and_exact_relu() {
    let mut g = Gaussian::new(9);
    let net = mlp(&mut g, 16, 16, 4, 1);
    let xs = inputs(&mut g, 3, 16);
    let bits = 10;
    let mut opts = PlanOptions::new(Mode::Latency);
    opts.flooding = None;
    opts.calibration = xs.clone();
    opts.relu = ReluApproximation::composite(bits);
    let depth = 2 + choose_relu(&opts.relu, 7, 1.0).unwrap().depth();
    opts.parameters = Some(test_params(12, depth));
    let (enc, sim, plan) = run(&net, &opts, &xs);
    println!("{}", plan.describe());
    assert_eq!(plan.depth, depth);
    let acts = activations(&plan);
    let (_, relu, _) = acts[0];
    assert!(matches!(relu, Approximation::CompositeRelu(_)));
    let exact: Vec<Vec<f64>> = xs.iter().map(|x| net.forward(x).unwrap()).collect();
    let out_max = exact.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    let (e_enc, e_sim) = (max_abs_diff(&enc, &sim), max_abs_diff(&sim, &exact));
    let bits_vs_sim = -(e_enc / out_max).log2();
    let bits_vs_exact = -(max_abs_diff(&enc, &exact) / out_max).log2();
    println!(
        "composite ReLU at 2^-{bits}·B ({}), N = 2^12, depth {depth}: |encrypted - simulated| \
         {e_enc:.2e} ({bits_vs_sim:.1} bits of the output range {out_max:.2}), |simulated - \
         exact| {e_sim:.2e}, encrypted vs exact {bits_vs_exact:.1} bits",
        relu.describe()
    );
    // The encrypted run is the simulated one up to CKKS noise.
    assert!(bits_vs_sim >= 20.0, "{bits_vs_sim:.1} bits");
    // The simulated approximation error is that of the ReLU, carried by the last layer:
    // at most Σ_j |w_ij| · max_error per output.
    let last = match &plan.steps.last().unwrap().op {
        StepOp::Linear(l) => l.clone(),
        op => panic!("last step {op:?}"),
    };
    let gain = last
        .rows
        .iter()
        .map(|r| r.iter().map(|(_, w)| w.abs()).sum::<f64>())
        .fold(0.0, f64::max);
    assert!(
        e_sim <= gain * relu.max_error() * 1.01 + 1e-9,
        "{e_sim:e} > {gain} · {:e}",
        relu.max_error()
    );
    assert!(
        bits_vs_exact >= bits as f64 - 3.0,
        "{bits_vs_exact:.1} bits"
    );
}

#[test]
fn interpolants_beyond_the_degree_limit() {
    // What the degree limit (1023) excludes. At 12 bits: the smallest interpolant meeting
    // 2^-12·B (bisection) against the composite Auto chooses: two levels fewer, four times
    // the ciphertext products. At 14 bits even degree 8191 (depth 13) misses the bound.
    use he_nn::activation::measured_error;
    use he_nn::poly::FittedPoly;
    let meets = |d: usize, bits: u32| {
        let p = FittedPoly::fit(PolyFunction::Relu, d, 1.0).unwrap();
        let e = measured_error(PolyFunction::Relu, 1.0, |x| p.eval(x)).max(p.max_error);
        (e <= 2f64.powi(-(bits as i32))).then_some(p)
    };
    let (mut bad, mut good) = (1023usize, 4095usize);
    assert!(meets(bad, 12).is_none() && meets(good, 12).is_some());
    while good - bad > 1 {
        let mid = (good + bad) / 2;
        if meets(mid, 12).is_some() {
            good = mid
        } else {
            bad = mid
        }
    }
    let p = Approximation::Interpolant(meets(good, 12).unwrap());
    let c = choose_relu(&ReluApproximation::auto(12), 7, 1.0).unwrap();
    let (pm, cm) = (p.multiplications().unwrap(), c.multiplications().unwrap());
    println!(
        "12 bits: interpolant degree {good} depth {} with {pm} products; chosen {} depth {} with {cm} products",
        p.depth(),
        c.label(),
        c.depth()
    );
    assert!(matches!(c, Approximation::CompositeRelu(_)));
    assert!(p.depth() < c.depth() && 2 * cm < pm);
    assert!(
        meets(8191, 14).is_none(),
        "14 bits need an interpolant of depth >= 14"
    );
}
