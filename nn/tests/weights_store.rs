//! A latency-mode network whose weights live in a pmem-store under a DRAM budget smaller than
//! the weights: the engine fetches each step's weights from the store (announcing the next
//! steps' ahead), the result is bit-identical to the engine holding them in memory, the
//! store's resident bytes never exceed the budget, and a store for other weights is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_core::ckks::{Decryptor, Encoder, Encryptor};
use he_core::rlwe::{Parameters, ParametersLiteral, SecretDistribution, Security};
use he_nn::exec::{EncodeOnDemand, EncodedWeight};
use he_nn::network::{Activation, Network};
use he_nn::sim::Gaussian;
use he_nn::{Engine, Mode, Plan, PlanOptions};
use pmem_store::{PmemWeightStore, Store, StoreConfig};
use std::path::PathBuf;
use std::sync::Arc;

fn fresh_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("nn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn weights_served_from_a_store_under_a_budget_give_identical_results() {
    let params = Parameters::new(ParametersLiteral {
        log_n: 11,
        log_q: [vec![55], vec![40; 13]].concat(),
        log_p: vec![61],
        alpha: None,
        log_scale: 40.0,
        secret: SecretDistribution::UniformTernary,
        security: Security::InsecureForTesting,
    })
    .unwrap();
    let mut g = Gaussian::new(5);
    let mut w = |n: usize| (0..n).map(|_| 0.15 * g.normal()).collect::<Vec<f64>>();
    // Ten layers, so that a quarter of the weights still holds the largest object.
    let mut net = Network::new(&[64]);
    for i in 0..9 {
        net.dense(&w(64 * 64), 64, Some(&w(64))).unwrap();
        if i % 3 == 2 {
            net.activation(Activation::Square).unwrap();
        }
    }
    net.dense(&w(10 * 64), 10, Some(&w(10))).unwrap();
    let mut opts = PlanOptions::new(Mode::Latency);
    opts.parameters = Some(params.clone());
    opts.flooding = None;
    // One giant step per weight part: served layers are applied part by part.
    opts.weight_part_bytes = 1;
    let plan = Plan::new(&net, &opts).unwrap();
    let most_parts = (0..plan.steps.len())
        .map(|i| plan.weight_parts(i).len())
        .max()
        .unwrap();
    assert!(most_parts >= 4, "{most_parts} parts");
    let keys = plan.generate_keys().unwrap();
    let encoder = Encoder::new(&plan.params).unwrap();

    // Fill the store, one weight at a time.
    let dir = fresh_dir("weights");
    let mut names = Vec::new();
    {
        let s = Store::create(&dir, StoreConfig::new(Some(params.hash()))).unwrap();
        let ws = PmemWeightStore::new(Arc::new(s), &params, "mlp/").unwrap();
        plan.encode_weights(&encoder, &mut |name, obj| {
            names.push(name.to_string());
            match obj {
                EncodedWeight::Transform(t) => ws.insert_transform(name, &t),
                EncodedWeight::Plaintext(p) => ws.insert_plaintext(name, &p),
            }
            .map_err(|e| he_nn::NnError::Invalid(e.to_string()))
        })
        .unwrap();
    }
    let expected: Vec<String> = (0..plan.steps.len())
        .flat_map(|i| plan.weight_names(i))
        .collect();
    assert_eq!(names, expected);
    assert!(
        names.iter().any(|n| n.ends_with("block0.3")) && names.iter().any(|n| n.contains("bias"))
    );

    let resident = Engine::new(&plan, keys.eval.clone()).unwrap();
    let (total, largest) = {
        let s = Store::open(&dir, StoreConfig::new(Some(params.hash())).read_only(true)).unwrap();
        let sizes: Vec<u64> = s.list().iter().map(|o| o.len).collect();
        (
            sizes.iter().sum::<u64>(),
            sizes.iter().copied().max().unwrap(),
        )
    };
    // A quarter of the weights: each object fits, the whole set does not.
    let budget = total / 4;
    assert!(largest <= budget, "largest {largest} over budget {budget}");
    let s = Arc::new(
        Store::open(
            &dir,
            StoreConfig::new(Some(params.hash()))
                .budget(budget)
                .read_only(true),
        )
        .unwrap(),
    );
    let provider = Arc::new(PmemWeightStore::new(Arc::clone(&s), &params, "mlp/").unwrap());
    let streamed = Engine::with_weights(&plan, keys.eval.clone(), None, provider).unwrap();
    assert_eq!(streamed.weight_bytes(), 0);

    let encryptor = Encryptor::new(&plan.params, keys.public.clone()).unwrap();
    let x: Vec<f64> = (0..64)
        .map(|i| ((i * 7) % 13) as f64 / 13.0 - 0.5)
        .collect();
    let ct = plan
        .encrypt(&encoder, &encryptor, std::slice::from_ref(&x))
        .unwrap();
    // Weights encoded when asked, none held: the same ciphertexts too.
    let on_demand = Engine::with_weights(
        &plan,
        keys.eval.clone(),
        None,
        Arc::new(EncodeOnDemand::new(&plan).unwrap()),
    )
    .unwrap();
    let a = resident.run(ct.clone()).unwrap();
    let c = on_demand.run(ct.clone()).unwrap();
    let b = streamed.run(ct).unwrap();
    for ((ca, cb), cc) in a.cts.iter().zip(&b.cts).zip(&c.cts) {
        assert_eq!(ca.parts(), cb.parts(), "bit-identical ciphertexts");
        assert_eq!(ca.parts(), cc.parts(), "bit-identical ciphertexts");
    }
    let stats = s.stats();
    assert!(
        stats.resident_bytes <= budget,
        "resident {} > budget {budget}",
        stats.resident_bytes
    );
    let got = plan
        .decrypt_unflooded(&encoder, &Decryptor::new(&keys.secret), &b)
        .unwrap()
        .remove(0);
    let want = net.forward(&x).unwrap();
    let err = got
        .iter()
        .zip(&want)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max);
    println!("weights {total} B, budget {budget} B, stats {stats:?}, max error {err:.2e}");
    assert!(err < 1e-5);

    // Weights of another plan (other parameters) are refused with a typed error.
    let other = Parameters::new(ParametersLiteral {
        log_q: [vec![55], vec![40; 12], vec![41]].concat(),
        ..params.literal().clone()
    })
    .unwrap();
    assert!(PmemWeightStore::new(Arc::clone(&s), &other, "mlp/").is_err());
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
