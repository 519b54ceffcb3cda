//! A CKKS rotation chain with Galois keys served from the store (lazily, through
//! `EvalKeyProvider`) gives exactly the ciphertexts the in-memory key set gives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;
use he_core::ckks::{Decryptor, Encryptor, Evaluator};
use he_core::rlwe::{
    EvalKeyProvider, EvalKeySet, Parameters, ParametersIntent, PublicKey, SecretKey,
};
use pmem_store::{PmemKeyStore, Store, StoreConfig};
use std::sync::Arc;

#[test]
fn rotation_chain_from_the_store_matches_dram_keys() {
    let params = Parameters::from_intent(&ParametersIntent::new(2, 40)).unwrap();
    let steps: Vec<i64> = (1..=6).collect();
    let sk = SecretKey::generate(&params).unwrap();
    let keys = EvalKeySet::generate(&sk, true, &steps, false).unwrap();
    let one_key = keys.bytes() / (steps.len() + 1);

    let dir = fresh_dir("ckks");
    // Budget of two keys: the chain of six must evict and re-map.
    let store = Arc::new(
        Store::create(
            &dir,
            StoreConfig::new(Some(params.hash())).budget(2 * one_key as u64),
        )
        .unwrap(),
    );
    let pks = PmemKeyStore::new(Arc::clone(&store), "model/");
    pks.insert(&keys.relinearization_key().unwrap()).unwrap();
    for g in keys.galois_elements() {
        pks.insert(&keys.galois_key(g).unwrap()).unwrap();
    }
    assert_eq!(pks.galois_elements(), keys.galois_elements());

    let dram = Evaluator::with_keys(&params, Arc::new(keys)).unwrap();
    let pmem = Evaluator::with_keys(&params, Arc::new(pks.clone())).unwrap();
    let enc = Encryptor::new(&params, PublicKey::generate(&sk).unwrap()).unwrap();
    let values: Vec<f64> = (0..params.slots())
        .map(|i| (i % 17) as f64 / 17.0)
        .collect();
    let pt = dram
        .encoder()
        .encode(&values, params.max_level(), params.default_scale())
        .unwrap();
    let ct = enc.encrypt(&pt).unwrap();

    let elts: Vec<u64> = steps
        .iter()
        .map(|&s| he_core::rlwe::galois_element_for_rotation(params.degree(), s))
        .collect();
    pks.prefetch(&elts);
    let (mut a, mut b) = (ct.clone(), ct);
    for &s in &steps {
        a = dram.rotate(&a, s).unwrap();
        b = pmem.rotate(&b, s).unwrap();
        assert_eq!(
            a.parts(),
            b.parts(),
            "rotation by {s} differs between DRAM and store keys"
        );
    }
    let total: usize = steps.iter().map(|&s| s as usize).sum();
    let out = dram
        .encoder()
        .decode(&Decryptor::new(&sk).decrypt(&b).unwrap())
        .unwrap();
    for i in 0..16 {
        let want = values[(i + total) % values.len()];
        assert!(
            (out[i] - want).abs() < 1e-3,
            "slot {i}: {} vs {want}",
            out[i]
        );
    }
    assert!(store.stats().resident_bytes <= store.budget());
    // The relinearization key also comes from the store.
    let sq = pmem.mul_relin(&a, &a).unwrap();
    assert_eq!(sq, dram.mul_relin(&a, &a).unwrap());
}
