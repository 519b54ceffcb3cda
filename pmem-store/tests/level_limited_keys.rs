//! Level-limited key-switching keys in the store: the index records their whole shape
//! (`[n, q_limbs, p_limbs, dnum]`), so they round-trip through `put_key`/`get_key` and serve
//! rotations at their levels exactly as the full keys they were restricted from, and are
//! refused above them with he-core's typed error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;
use he_core::ckks::{Encryptor, Evaluator};
use he_core::rlwe::{
    galois_element_for_rotation, EvalKeyProvider, EvalKeySet, KeyGenerator, KeyShape, MaxLevel,
    Parameters, ParametersLiteral, PublicKey, SecretDistribution, SecretKey, Security,
};
use he_core::Error;
use pmem_store::{PmemKeyStore, Store, StoreConfig};
use std::sync::Arc;

#[test]
fn level_limited_keys_round_trip_and_serve_their_levels() {
    let params = Parameters::new(ParametersLiteral {
        log_n: 10,
        log_q: vec![55, 45, 45, 45, 45, 45, 45],
        log_p: vec![60, 60],
        alpha: Some(2),
        log_scale: 45.0,
        secret: SecretDistribution::UniformTernary,
        security: Security::InsecureForTesting,
    })
    .unwrap();
    let steps = [1i64, 2, -3];
    let sk = SecretKey::generate(&params).unwrap();
    let full = KeyGenerator::new(&sk).rotation_keys(&steps, false).unwrap();
    let max_level = 2;
    let lim = MaxLevel::new(max_level);

    let dir = fresh_dir("level-limited");
    let store = Arc::new(Store::create(&dir, StoreConfig::new(Some(params.hash()))).unwrap());
    let pks = PmemKeyStore::new(Arc::clone(&store), "keys/");
    let mut dram = EvalKeySet::new();
    for k in &full {
        let r = k.restricted(&params, lim).unwrap();
        assert_eq!(r.shape(), KeyShape::for_level(&params, lim).unwrap());
        pks.insert(&r).unwrap();
        dram.insert(k.clone());
    }
    // Round trip: shape, words and key identifier as put; the index records the shape.
    for k in &full {
        let he_core::rlwe::KeyKind::Galois(g) = k.kind() else {
            panic!("not a Galois key")
        };
        let back = store.get_key(&pks.galois_name(g)).unwrap();
        let r = k.restricted(&params, lim).unwrap();
        assert_eq!(
            (back.shape(), back.words(), back.key_id(), back.max_level()),
            (r.shape(), r.words(), r.key_id(), lim)
        );
        let dims = store.info(&pks.galois_name(g)).unwrap().meta.dims;
        assert_eq!(dims, [1024, 3, 2, 2]);
    }

    let ev_dram = Evaluator::with_keys(&params, Arc::new(dram)).unwrap();
    let ev_pmem = Evaluator::with_keys(&params, Arc::new(pks.clone())).unwrap();
    let enc = Encryptor::new(&params, PublicKey::generate(&sk).unwrap()).unwrap();
    let values: Vec<f64> = (0..params.slots()).map(|i| (i % 7) as f64 / 7.0).collect();
    let elts: Vec<u64> = steps
        .iter()
        .map(|&s| galois_element_for_rotation(params.degree(), s))
        .collect();
    pks.prefetch(&elts);
    for level in 0..=max_level + 1 {
        let pt = ev_dram
            .encoder()
            .encode(&values, level, params.default_scale())
            .unwrap();
        let ct = enc.encrypt(&pt).unwrap();
        for &s in &steps {
            let got = ev_pmem.rotate(&ct, s);
            if level <= max_level {
                assert_eq!(
                    got.unwrap().parts(),
                    ev_dram.rotate(&ct, s).unwrap().parts()
                );
            } else {
                match got {
                    Err(Error::KeyLevelExceeded {
                        level: l,
                        max_level: m,
                        ..
                    }) => assert_eq!((l, m), (level, max_level)),
                    other => panic!("expected KeyLevelExceeded, got {other:?}"),
                }
            }
        }
    }
    // A store holds level-limited keys at their real size.
    let one = KeyShape::for_level(&params, lim).unwrap().bytes();
    let stored: u64 = store
        .list()
        .iter()
        .filter(|o| o.key.starts_with("keys/"))
        .map(|o| o.len)
        .sum();
    assert_eq!(stored, (steps.len() * one) as u64);
}
