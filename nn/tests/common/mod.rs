//! Shared helpers for the he-nn tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_core::ckks::{Decryptor, Encoder, Encryptor};
use he_core::rlwe::{Parameters, ParametersLiteral, SecretDistribution, Security};
use he_nn::sim::Gaussian;
use he_nn::{Engine, Mode, Network, Plan, PlanOptions};
use std::sync::Arc;

/// Small, insecure parameters: `N = 2^log_n`, `depth` 40-bit primes over a 50-bit `q_0`.
pub fn test_params(log_n: u32, depth: usize) -> Arc<Parameters> {
    let mut log_q = vec![50];
    log_q.extend(std::iter::repeat_n(40, depth));
    Parameters::new(ParametersLiteral {
        log_n,
        log_q,
        log_p: vec![61],
        alpha: None,
        log_scale: 40.0,
        secret: SecretDistribution::UniformTernary,
        security: Security::InsecureForTesting,
    })
    .unwrap()
}

pub fn random_vec(g: &mut Gaussian, n: usize, std: f64) -> Vec<f64> {
    (0..n).map(|_| g.normal() * std).collect()
}

pub fn max_abs_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f64::max)
}

/// Plans `net` with explicit parameters, encrypts `inputs`, runs, decrypts; returns
/// (encrypted outputs, simulated outputs, plan).
pub fn run_encrypted(
    net: &Network,
    mode: Mode,
    params: Arc<Parameters>,
    inputs: &[Vec<f64>],
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, Plan) {
    let mut opts = PlanOptions::new(mode);
    opts.parameters = Some(params);
    // These tests compare raw CKKS results with the cleartext run at small, insecure
    // parameters: flooding is opted out by name (tests/end_to_end.rs covers it).
    opts.flooding = None;
    opts.calibration = inputs.to_vec();
    let plan = Plan::new(net, &opts).unwrap();
    let sim = plan.simulate(inputs, None).unwrap();
    let keys = plan.generate_keys().unwrap();
    let encoder = Encoder::new(&plan.params).unwrap();
    let encryptor = Encryptor::new(&plan.params, keys.public.clone()).unwrap();
    let decryptor = Decryptor::new(&keys.secret);
    let engine = Engine::new(&plan, keys.eval.clone()).unwrap();
    // The planner's estimate of the pre-encoded plaintexts is exact (diagonals over Q_l ∪ P).
    assert_eq!(engine.weight_bytes(), plan.memory.plaintexts);
    let mut out = Vec::new();
    let batches: Vec<&[Vec<f64>]> = match mode {
        Mode::Throughput => vec![inputs],
        Mode::Latency => inputs.chunks(1).collect(),
    };
    for b in batches {
        let ct = plan.encrypt(&encoder, &encryptor, b).unwrap();
        let y = engine.run(ct).unwrap();
        out.extend(plan.decrypt(&encoder, &decryptor, &y).unwrap());
    }
    (out, sim, plan)
}
