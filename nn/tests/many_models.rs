//! Many models at once: one server process holds eight different models' evaluation keys
//! (each model its own secret key) and pre-encoded weights in one pmem-store, under a DRAM
//! budget smaller than any two models together, and answers interleaved requests; every
//! prediction is checked against the cleartext network, the store's resident bytes never pass
//! the budget, and the throughput is printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_core::ckks::{Decryptor, Encoder, Encryptor};
use he_core::rlwe::{EvalKeyProvider, Parameters, ParametersLiteral, SecretDistribution, Security};
use he_nn::data::argmax;
use he_nn::exec::EncodedWeight;
use he_nn::network::{Activation, Network};
use he_nn::sim::Gaussian;
use he_nn::{Engine, Keys, Mode, Plan, PlanOptions};
use pmem_store::{PmemKeyStore, PmemWeightStore, Store, StoreConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const MODELS: usize = 8;

fn fresh_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("nn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Model `m`: 48 inputs, two hidden layers (widths differ per model), 10 outputs.
fn model(m: usize) -> Network {
    let mut g = Gaussian::new(100 + m as u64);
    let mut w = |n: usize| (0..n).map(|_| 0.2 * g.normal()).collect::<Vec<f64>>();
    let h = 32 + 8 * (m % 3);
    let mut net = Network::new(&[48]);
    net.dense(&w(h * 48), h, Some(&w(h))).unwrap();
    net.activation(Activation::Square).unwrap();
    net.dense(&w(h * h), h, Some(&w(h))).unwrap();
    net.activation(Activation::Square).unwrap();
    net.dense(&w(10 * h), 10, Some(&w(10))).unwrap();
    net
}

#[test]
fn eight_models_in_one_store_under_a_budget_answer_interleaved_requests() {
    let params = Parameters::new(ParametersLiteral {
        log_n: 11,
        log_q: vec![55, 40, 40, 40, 40, 40],
        log_p: vec![61],
        alpha: None,
        log_scale: 40.0,
        secret: SecretDistribution::UniformTernary,
        security: Security::InsecureForTesting,
    })
    .unwrap();
    let nets: Vec<Network> = (0..MODELS).map(model).collect();
    let plans: Vec<Plan> = nets
        .iter()
        .map(|n| {
            let mut o = PlanOptions::new(Mode::Latency);
            o.parameters = Some(params.clone());
            o.flooding = None;
            Plan::new(n, &o).unwrap()
        })
        .collect();
    let keys: Vec<Keys> = plans.iter().map(|p| p.generate_keys().unwrap()).collect();
    let encoder = Encoder::new(&params).unwrap();

    // The client side publishes each model's evaluation keys and the model owner its weights.
    let dir = fresh_dir("many-models");
    let mut sizes = vec![0u64; MODELS];
    {
        let store = Arc::new(Store::create(&dir, StoreConfig::new(Some(params.hash()))).unwrap());
        for m in 0..MODELS {
            let ks = PmemKeyStore::new(Arc::clone(&store), format!("m{m}/keys/"));
            let set = &keys[m].eval;
            ks.insert(&set.relinearization_key().unwrap()).unwrap();
            for g in set.galois_elements() {
                ks.insert(&set.galois_key(g).unwrap()).unwrap();
            }
            let ws = PmemWeightStore::new(Arc::clone(&store), &params, format!("m{m}/w/")).unwrap();
            plans[m]
                .encode_weights(&encoder, &mut |name, obj| {
                    match obj {
                        EncodedWeight::Transform(t) => ws.insert_transform(name, &t),
                        EncodedWeight::Plaintext(p) => ws.insert_plaintext(name, &p),
                    }
                    .map_err(|e| he_nn::NnError::Invalid(e.to_string()))
                })
                .unwrap();
        }
        for o in store.list() {
            let m: usize = o.key[1..o.key.find('/').unwrap()].parse().unwrap();
            sizes[m] += o.len;
        }
    }
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    // Smaller than any two models together (the two smallest), larger than one model.
    let budget = sorted[0] + sorted[1] - 1;
    assert!(budget >= sorted[MODELS - 1], "{sizes:?}");
    let store = Arc::new(
        Store::open(
            &dir,
            StoreConfig::new(Some(params.hash()))
                .budget(budget)
                .read_only(true),
        )
        .unwrap(),
    );
    let engines: Vec<Engine> = (0..MODELS)
        .map(|m| {
            let k = Arc::new(PmemKeyStore::new(Arc::clone(&store), format!("m{m}/keys/")));
            let w = Arc::new(
                PmemWeightStore::new(Arc::clone(&store), &params, format!("m{m}/w/")).unwrap(),
            );
            Engine::with_weights(&plans[m], k, None, w).unwrap()
        })
        .collect();

    // Interleaved requests: every model three times, in a shuffled order.
    let mut g = Gaussian::new(9);
    let mut order: Vec<usize> = (0..3 * MODELS).map(|r| r % MODELS).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (g.next_u64() % (i as u64 + 1)) as usize);
    }
    let t = Instant::now();
    let mut max_resident = 0;
    for (r, &m) in order.iter().enumerate() {
        let x: Vec<f64> = (0..48).map(|_| g.uniform() - 0.5).collect();
        let enc = Encryptor::new(&params, keys[m].public.clone()).unwrap();
        let ct = plans[m]
            .encrypt(&encoder, &enc, std::slice::from_ref(&x))
            .unwrap();
        let out = engines[m].run(ct).unwrap();
        max_resident = max_resident.max(store.stats().resident_bytes);
        let got = plans[m]
            .decrypt_unflooded(&encoder, &Decryptor::new(&keys[m].secret), &out)
            .unwrap()
            .remove(0);
        let want = nets[m].forward(&x).unwrap();
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-4, "request {r} (model {m}): error {err:.2e}");
        assert_eq!(argmax(&got), argmax(&want), "request {r} (model {m})");
    }
    let secs = t.elapsed().as_secs_f64();
    let stats = store.stats();
    println!(
        "{} requests over {MODELS} models in {secs:.2} s ({:.1} requests/s, client encryption and \
         decryption included); models {sizes:?} bytes, budget {budget}, max resident {max_resident}, \
         {stats:?}",
        order.len(),
        order.len() as f64 / secs
    );
    assert!(max_resident <= budget && stats.evictions > 0);
    // A model's engine cannot use another model's keys: its ciphertexts carry another key id.
    let x = vec![0.1; 48];
    let enc = Encryptor::new(&params, keys[0].public.clone()).unwrap();
    let ct = plans[1].encrypt(&encoder, &enc, std::slice::from_ref(&x));
    if let Ok(ct) = ct {
        assert!(
            engines[1].run(ct).is_err(),
            "model 1's keys accepted model 0's ciphertext"
        );
    }
    drop((engines, store));
    let _ = std::fs::remove_dir_all(&dir);
}
