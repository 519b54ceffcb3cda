//! Bootstrap placement on a small deep network (N = 2^12, the insecure test preset with two
//! levels after each bootstrap): the planner places exactly the bootstraps the levels force,
//! the cleartext simulator runs the same lowered function, and the encrypted run agrees with
//! it within the measured bootstrapping precision.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_core::circuits::bootstrapping::{BootstrapConfig, BootstrapPreset};
use he_core::ckks::{Decryptor, Encoder, Encryptor};
use he_core::rlwe::{EvalKeyProvider, EvalKeySet, KeyKind, KeySwitchKey, KeyUse};
use he_nn::network::{Activation, Network};
use he_nn::plan::{Bootstrapping, StepOp};
use he_nn::poly::PolyFunction;
use he_nn::sim::Gaussian;
use he_nn::{Engine, Mode, Plan, PlanOptions};
use std::sync::{Arc, Mutex};

/// `in(32) -> d1 -> relu(d1) -> d2 -> (+ d1) -> x² -> d3(8)`: a residual block whose skip
/// connection meets the branch at a different level, an activation whose `1/B` cannot be
/// folded (d1 has two readers), and a depth of 8 against 2 levels per bootstrap.
fn residual_net(g: &mut Gaussian) -> (Network, [usize; 1]) {
    let mut w = |n: usize, s: f64| (0..n).map(|_| s * g.normal()).collect::<Vec<f64>>();
    let mut net = Network::new(&[32]);
    let d1 = net.dense(&w(32 * 32, 0.18), 32, Some(&w(32, 0.1))).unwrap();
    net.activation(Activation::Poly {
        function: PolyFunction::Relu,
        degree: 3,
        bound: None,
    })
    .unwrap();
    net.dense(&w(32 * 32, 0.18), 32, Some(&w(32, 0.1))).unwrap();
    let last = net.last();
    net.add(last, d1).unwrap();
    net.activation(Activation::Square).unwrap();
    net.dense(&w(8 * 32, 0.18), 8, None).unwrap();
    (net, [d1])
}

fn inputs(g: &mut Gaussian, n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|_| (0..32).map(|_| 2.0 * g.uniform() - 1.0).collect())
        .collect()
}

fn options(calibration: Vec<Vec<f64>>) -> PlanOptions {
    let mut opts = PlanOptions::new(Mode::Latency);
    opts.bootstrapping = Bootstrapping::With(BootstrapConfig::preset(
        BootstrapPreset::N12InsecureForTesting,
    ));
    opts.flooding = None;
    opts.calibration = calibration;
    opts
}

#[test]
fn planner_places_the_bootstraps_the_levels_force() {
    let mut g = Gaussian::new(7);
    let (net, _) = residual_net(&mut g);
    let plan = Plan::new(&net, &options(inputs(&mut g, 16))).unwrap();
    println!("{}", plan.describe());
    assert_eq!(plan.top_level, 2);
    // relu: its dedicated bootstrap divides by B (the 1/B could not be folded: d1 has two
    // readers); d2 needs a level the relu left at 0; d3 one the square left at 0.
    let boots: Vec<(&str, f64, u64)> = plan
        .steps
        .iter()
        .filter_map(|s| match s.op {
            StepOp::Bootstrap { divide, multiply } => Some((s.name.as_str(), divide, multiply)),
            _ => None,
        })
        .collect();
    assert_eq!(boots.len(), 3, "{boots:?}");
    assert_eq!(plan.bootstrap_count(), 3);
    assert!(
        boots[0].1 > 1.0 && boots[0].2 == 1,
        "absorbed 1/B: {boots:?}"
    );
    for s in &plan.steps {
        assert!(s.level <= plan.top_level);
        for &j in &s.inputs {
            assert!(j < plan.steps.len());
            if !matches!(s.op, StepOp::Bootstrap { .. }) {
                let c = he_nn::plan::cost(&s.op);
                assert!(
                    plan.steps[j].level >= c,
                    "step {} runs out of levels",
                    s.name
                );
            }
        }
        if matches!(s.op, StepOp::Poly { .. }) {
            assert!(!matches!(s.op, StepOp::Poly { prescale: true, .. }));
        }
    }
    // The Galois keys cover bootstrapping's rotations as well as the layers'.
    let boot_rot = he_core::circuits::bootstrapping::Bootstrapper::rotations(
        &plan.params,
        plan.bootstrap.as_ref().unwrap(),
    )
    .unwrap();
    assert!(boot_rot.iter().all(|r| plan.rotation_steps.contains(r)));
    // The approximation report says where the 1/B went.
    assert!(
        plan.approximations[0].contains("applied by the bootstrap"),
        "{:?}",
        plan.approximations
    );
}

/// `Bootstrapping::Auto` (the default) leaves a network that fits one secure chain alone and
/// bootstraps one that does not, with the `N = 2^16` preset; `Off` refuses the deep one.
#[test]
fn auto_bootstraps_only_networks_too_deep_for_one_chain() {
    let mut g = Gaussian::new(3);
    let calib = inputs(&mut g, 8);
    let mut deep = Network::new(&[32]);
    // 160 levels: more than a 128-bit chain holds at any degree up to 2^17 (30-bit scales).
    for _ in 0..80 {
        let w: Vec<f64> = (0..32 * 32).map(|_| 0.1 * g.normal()).collect();
        deep.dense(&w, 32, None).unwrap();
        deep.activation(Activation::Square).unwrap();
    }
    let mut opts = PlanOptions::new(Mode::Latency);
    opts.flooding = None;
    opts.calibration = calib;
    let shallow_net = {
        let mut n = Network::new(&[32]);
        let w: Vec<f64> = (0..32 * 32).map(|_| 0.17 * g.normal()).collect();
        n.dense(&w, 32, None).unwrap();
        n.activation(Activation::Square).unwrap();
        n
    };
    let shallow = Plan::new(&shallow_net, &opts).unwrap();
    assert!(shallow.bootstrap.is_none() && shallow.bootstrap_count() == 0);
    let plan = Plan::new(&deep, &opts).unwrap();
    assert_eq!(
        plan.bootstrap,
        Some(BootstrapConfig::preset(BootstrapPreset::N16Levels9))
    );
    assert_eq!(plan.depth, 160);
    // 9 levels per bootstrap, one per operation: 9 operations before the first bootstrap,
    // then one bootstrap per 9 operations: ceil(151 / 9) = 17.
    assert_eq!(plan.bootstrap_count(), 17, "{}", plan.describe());
    opts.bootstrapping = Bootstrapping::Off;
    assert!(matches!(
        Plan::new(&deep, &opts),
        Err(he_nn::NnError::DepthExceeded { .. })
    ));
}

#[test]
fn bootstrapped_network_agrees_with_the_simulator() {
    let mut g = Gaussian::new(11);
    let (net, _) = residual_net(&mut g);
    let calib = inputs(&mut g, 16);
    let plan = Plan::new(&net, &options(calib)).unwrap();
    let keys = plan.generate_keys().unwrap();
    assert!(keys.encapsulation.is_some());
    // The network-only rotations got keys up to the top level only, and the estimate knows.
    assert!(!plan.level_limited_rotations.is_empty());
    assert!(plan.level_limited_key_bytes() < plan.key_bytes() / 2);
    assert_eq!(keys.eval.bytes(), plan.memory.keys);
    // A bootstrapping plan refuses an engine without the encapsulation key.
    assert!(Engine::new(&plan, keys.eval.clone()).is_err());
    let engine =
        Engine::with_encapsulation(&plan, keys.eval.clone(), keys.encapsulation.clone()).unwrap();
    let encoder = Encoder::new(&plan.params).unwrap();
    let encryptor = Encryptor::new(&plan.params, keys.public.clone()).unwrap();
    let decryptor = Decryptor::new(&keys.secret);
    let xs = inputs(&mut g, 2);
    let mut worst = 0.0f64;
    for x in &xs {
        let want = plan
            .simulate(std::slice::from_ref(x), None)
            .unwrap()
            .remove(0);
        let exact = net.forward(x).unwrap();
        let ct = plan
            .encrypt(&encoder, &encryptor, std::slice::from_ref(x))
            .unwrap();
        let out = engine.run(ct).unwrap();
        let got = plan
            .decrypt_unflooded(&encoder, &decryptor, &out)
            .unwrap()
            .remove(0);
        assert_eq!(got.len(), 8);
        let scale = want.iter().fold(1.0f64, |a, v| a.max(v.abs()));
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let approx = want
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!(
            "max |encrypted - simulated| = 2^{:.1} (outputs up to {scale:.2}); \
             |simulated - exact ReLU network| = {approx:.3}",
            err.log2()
        );
        worst = worst.max(err / scale);
    }
    // Three bootstraps at the insecure N = 2^12 preset (about 20 bits each, amplified by the
    // layers after them): at least 12 bits relative to the output range.
    assert!(
        worst < 2f64.powi(-12),
        "relative error 2^{:.1}",
        worst.log2()
    );
    // The simulator's noise model says the same order of error.
    let noisy = plan.simulate(&xs, Some(5)).unwrap();
    let clean = plan.simulate(&xs, None).unwrap();
    let sim_err = noisy
        .iter()
        .flatten()
        .zip(clean.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!("simulated noise: max 2^{:.1}", sim_err.log2());
    assert!(sim_err > 0.0 && sim_err < 2f64.powi(-8));
}

/// Records what the engine fetches (a Galois key with the level asked for) and the orders
/// announced with levels (the engine's per-step look-ahead and the bootstraps' schedules; the
/// linear transforms' own last-moment announcements, through `prefetch_at`, are left out).
struct Recording {
    inner: Arc<EvalKeySet>,
    events: Mutex<Vec<Event>>,
}

enum Event {
    Fetch(KeyKind, Option<usize>),
    Announce(Vec<KeyUse>),
}

impl EvalKeyProvider for Recording {
    fn relinearization_key(&self) -> he_core::Result<Arc<KeySwitchKey>> {
        self.switching_key(KeyKind::Relinearization)
    }
    fn galois_key(&self, g: u64) -> he_core::Result<Arc<KeySwitchKey>> {
        self.switching_key(KeyKind::Galois(g))
    }
    fn galois_elements(&self) -> Vec<u64> {
        self.inner.galois_elements()
    }
    fn galois_key_at(&self, g: u64, level: usize) -> he_core::Result<Arc<KeySwitchKey>> {
        self.events
            .lock()
            .unwrap()
            .push(Event::Fetch(KeyKind::Galois(g), Some(level)));
        self.inner.galois_key(g)
    }
    fn switching_key(&self, kind: KeyKind) -> he_core::Result<Arc<KeySwitchKey>> {
        self.events.lock().unwrap().push(Event::Fetch(kind, None));
        self.inner.switching_key(kind)
    }
    fn prefetch_uses(&self, uses: &[KeyUse]) {
        self.events
            .lock()
            .unwrap()
            .push(Event::Announce(uses.to_vec()));
    }
}

/// The engine announces every key ahead of the step that fetches it: replaying the run
/// against a store's schedule semantics (an announcement replaces the schedule unless all its
/// keys are pending; a fetch marks the key's first pending entry done), every fetch but the
/// relinearization key's repeats finds its key pending, a Galois key at the level it is
/// fetched for (what a store with level-limited variants reads ahead) — the first linear
/// layer's and the layers' after each bootstrap included, which the bootstraps' own
/// schedules do not cover.
#[test]
fn every_key_is_announced_before_its_step() {
    let mut g = Gaussian::new(12);
    let (net, _) = residual_net(&mut g);
    let plan = Plan::new(&net, &options(inputs(&mut g, 16))).unwrap();
    let keys = plan.generate_keys().unwrap();
    let rec = Arc::new(Recording {
        inner: keys.eval.clone(),
        events: Mutex::new(Vec::new()),
    });
    let engine =
        Engine::with_encapsulation(&plan, rec.clone(), keys.encapsulation.clone()).unwrap();
    assert!(!engine.key_look_ahead(1).is_empty());
    let encoder = Encoder::new(&plan.params).unwrap();
    let encryptor = Encryptor::new(&plan.params, keys.public.clone()).unwrap();
    let x = inputs(&mut g, 1);
    engine
        .run(plan.encrypt(&encoder, &encryptor, &x).unwrap())
        .unwrap();
    let mut schedule: Vec<(KeyUse, bool)> = Vec::new();
    let (mut fetched, mut unannounced) = (0usize, Vec::new());
    for e in rec.events.lock().unwrap().iter() {
        match e {
            Event::Announce(list) => {
                let covered = list
                    .iter()
                    .all(|k| schedule.iter().any(|(s, done)| s == k && !done));
                if !covered {
                    schedule = list.iter().map(|k| (*k, false)).collect();
                }
            }
            Event::Fetch(k, level) => {
                fetched += 1;
                let entry = schedule
                    .iter_mut()
                    .find(|(s, done)| s.kind == *k && level.is_none_or(|l| l == s.level) && !*done);
                match entry {
                    Some(entry) => entry.1 = true,
                    None if *k == KeyKind::Relinearization => {}
                    None => unannounced.push((*k, *level)),
                }
            }
        }
    }
    assert!(fetched > 20, "{fetched} fetches");
    assert!(
        unannounced.is_empty(),
        "fetched unannounced: {unannounced:?}"
    );
}
