//! Key-switching digits and special primes chosen by the planner (`PlanOptions::key_switching`):
//! he-core's cost model under a key budget, and an explicitly requested digit count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{max_abs_diff, random_vec};
use he_core::ckks::{Decryptor, Encoder, Encryptor};
use he_core::rlwe::ks_cost::KsModel;
use he_nn::sim::Gaussian;
use he_nn::{Activation, KeySwitchingChoice, Mode, Network, Plan, PlanOptions};

/// A latency-mode network with many rotation keys: three dense 64 × 64 layers (each a
/// baby-step giant-step transform) with squares between them, depth 5.
fn net(g: &mut Gaussian) -> Network {
    let mut net = Network::new(&[64]);
    for out in [64, 64, 10] {
        let inp = net.nodes.last().unwrap().len();
        net.dense(
            &random_vec(g, out * inp, 0.15),
            out,
            Some(&random_vec(g, out, 0.1)),
        )
        .unwrap();
        if out != 10 {
            net.activation(Activation::Square).unwrap();
        }
    }
    net
}

fn opts(xs: &[Vec<f64>], ks: KeySwitchingChoice) -> PlanOptions {
    let mut o = PlanOptions::new(Mode::Latency);
    o.log_n = Some(14);
    o.flooding = None;
    o.calibration = xs.to_vec();
    o.key_switching = ks;
    o
}

fn key_line(p: &Plan) -> String {
    p.describe()
        .lines()
        .find(|l| l.starts_with("key switching"))
        .unwrap()
        .to_string()
}

/// Under a key budget below what the fewest 60-bit-prime digits take, the planner picks fewer
/// digits (the cost model's tight special primes, a smaller scale where needed): keys within
/// the budget, each key the model's bytes, the chosen digit count one of the model's secure
/// candidates for that chain; the default (`Fewest`) is today's choice.
#[test]
fn key_budget_gives_fewer_digits_as_the_model_predicts() {
    let mut g = Gaussian::new(3);
    let n = net(&mut g);
    let xs: Vec<Vec<f64>> = (0..4).map(|_| random_vec(&mut g, 64, 1.0)).collect();
    let fewest = Plan::new(&n, &opts(&xs, KeySwitchingChoice::Fewest)).unwrap();
    let free = Plan::new(
        &n,
        &opts(
            &xs,
            KeySwitchingChoice::Auto {
                key_budget_bytes: None,
            },
        ),
    )
    .unwrap();
    let keys = fewest.key_count();
    assert!(keys >= 10, "{keys} keys");
    println!(
        "fewest: {}\n  {}",
        fewest.params.describe(),
        key_line(&fewest)
    );
    println!("auto:   {}\n  {}", free.params.describe(), key_line(&free));
    // A budget 10% under the fewest digits' keys.
    let budget = (fewest.memory.keys as f64 * 0.9) as u64;
    let tight = Plan::new(
        &n,
        &opts(
            &xs,
            KeySwitchingChoice::Auto {
                key_budget_bytes: Some(budget),
            },
        ),
    )
    .unwrap();
    println!(
        "auto, budget {budget}: {}\n  {}",
        tight.params.describe(),
        key_line(&tight)
    );
    assert_eq!(tight.key_count(), keys);
    assert!(tight.memory.keys as u64 <= budget);
    assert!(tight.params.dnum() < fewest.params.dnum());
    let lit = tight.params.literal();
    let model = KsModel::new(lit.log_n, &lit.log_q).unwrap();
    let c = model.candidate(tight.params.dnum()).unwrap();
    assert!(c.secure);
    assert_eq!(c.log_p, lit.log_p);
    assert_eq!(c.key_bytes, tight.key_bytes() as u64);
    assert_eq!(tight.memory.keys, keys * tight.key_bytes());
    assert!(key_line(&tight).contains(&format!("dnum {}", tight.params.dnum())));
    // A budget no scale meets at this degree is an error.
    let e = Plan::new(
        &n,
        &opts(
            &xs,
            KeySwitchingChoice::Auto {
                key_budget_bytes: Some(1 << 20),
            },
        ),
    );
    assert!(e.is_err());
}

/// A requested digit count is honoured, and the encrypted run agrees with the simulator.
#[test]
fn requested_digits_are_honoured_encrypted() {
    let mut g = Gaussian::new(4);
    let n = net(&mut g);
    let xs: Vec<Vec<f64>> = (0..2).map(|_| random_vec(&mut g, 64, 1.0)).collect();
    let fewest = Plan::new(&n, &opts(&xs, KeySwitchingChoice::Fewest)).unwrap();
    let want = fewest.params.max_level() + 1;
    let plan = Plan::new(&n, &opts(&xs, KeySwitchingChoice::Digits(want))).unwrap();
    println!("{}\n  {}", plan.params.describe(), key_line(&plan));
    assert_eq!(plan.params.dnum(), want);
    assert_eq!(plan.params.q(), fewest.params.q());
    let sim = plan.simulate(&xs[..1], None).unwrap();
    let keys = plan.generate_keys().unwrap();
    assert_eq!(keys.eval.bytes(), plan.memory.keys);
    let encoder = Encoder::new(&plan.params).unwrap();
    let encryptor = Encryptor::new(&plan.params, keys.public.clone()).unwrap();
    let decryptor = Decryptor::new(&keys.secret);
    let ct = plan.encrypt(&encoder, &encryptor, &xs[..1]).unwrap();
    let engine = he_nn::Engine::new(&plan, keys.eval.clone()).unwrap();
    let y = engine.run(ct).unwrap();
    let got = plan.decrypt(&encoder, &decryptor, &y).unwrap();
    let e = max_abs_diff(&got, &sim);
    println!("|encrypted - simulated| = {e:.2e}");
    assert!(e < 1e-3, "{e}");
    // Out of range: a typed error from he-core, not a panic.
    assert!(Plan::new(&n, &opts(&xs, KeySwitchingChoice::Digits(want + 1))).is_err());
}
