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

/// N = 2^10, 7 Q-primes, 2 P-primes, alpha 2 (insecure, for tests).
fn params() -> Arc<Parameters> {
    Parameters::new(ParametersLiteral {
        log_n: 10,
        log_q: vec![55, 45, 45, 45, 45, 45, 45],
        log_p: vec![60, 60],
        alpha: Some(2),
        log_scale: 45.0,
        secret: SecretDistribution::UniformTernary,
        security: Security::InsecureForTesting,
    })
    .unwrap()
}

#[test]
fn level_limited_keys_round_trip_and_serve_their_levels() {
    let params = params();
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

/// A full key with a level-limited variant beside it (`insert_level_variant`): a use at a
/// level the variant covers fetches the variant (fewer bytes), a use above it the full key;
/// the announcements with levels name the same objects; rotations through the store equal
/// the in-memory evaluator's at every level. A key that is not a Galois key is refused as a
/// variant.
#[test]
fn level_variants_serve_the_levels_they_cover() {
    let params = params();
    let steps = [1i64, -3];
    let sk = SecretKey::generate(&params).unwrap();
    let kg = KeyGenerator::new(&sk);
    let full = kg.rotation_keys(&steps, false).unwrap();
    let (low, high) = (1usize, 3usize);
    let dir = fresh_dir("level-variants");
    let store = Arc::new(Store::create(&dir, StoreConfig::new(Some(params.hash()))).unwrap());
    let pks = PmemKeyStore::new(Arc::clone(&store), "keys/");
    let mut dram = EvalKeySet::new();
    for k in &full {
        pks.insert(k).unwrap();
        // Two variants; the smaller one that covers a level wins.
        for l in [high, low] {
            pks.insert_level_variant(&k.restricted(&params, MaxLevel::new(l)).unwrap())
                .unwrap();
        }
        dram.insert(k.clone());
    }
    let top = params.max_level();
    let elts: Vec<u64> = steps
        .iter()
        .map(|&s| galois_element_for_rotation(params.degree(), s))
        .collect();
    // The Galois elements are listed once each, variants or not.
    let mut want = elts.clone();
    want.sort_unstable();
    assert_eq!(pks.galois_elements(), want);
    for &g in &elts {
        for level in 0..=top {
            let name = pks.galois_name_at(g, level);
            let expected = if level <= low {
                pks.galois_variant_name(g, low)
            } else if level <= high {
                pks.galois_variant_name(g, high)
            } else {
                pks.galois_name(g)
            };
            assert_eq!(name, expected, "level {level}");
            let k = pks.galois_key_at(g, level).unwrap();
            assert!(k.max_level().get() >= level);
            assert_eq!(
                k.shape(),
                store.get_key(&expected).unwrap().shape(),
                "level {level}"
            );
        }
        assert_eq!(pks.galois_name_at(g, top + 5), pks.galois_name(g));
    }
    // Announced with levels: the store's schedule names the variants, so they are read
    // ahead and then hit (in a fresh reader, where nothing is resident yet).
    let reader =
        Arc::new(Store::open(&dir, StoreConfig::new(Some(params.hash())).read_only(true)).unwrap());
    let fresh = PmemKeyStore::new(Arc::clone(&reader), "keys/");
    let uses: Vec<he_core::rlwe::KeyUse> = elts
        .iter()
        .map(|&g| he_core::rlwe::KeyUse {
            kind: he_core::rlwe::KeyKind::Galois(g),
            level: low,
        })
        .collect();
    let before = reader.stats();
    fresh.prefetch_uses(&uses);
    let t = std::time::Instant::now();
    while reader.stats().prefetched < before.prefetched + uses.len() as u64
        && t.elapsed() < std::time::Duration::from_secs(20)
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for &g in &elts {
        let k = fresh.galois_key_at(g, low).unwrap();
        assert_eq!(k.max_level().get(), low);
    }
    let after = reader.stats();
    assert_eq!(after.prefetched, before.prefetched + uses.len() as u64);
    assert_eq!(
        (after.misses, after.hits),
        (before.misses, before.hits + uses.len() as u64),
        "announced variants are read ahead, then hit"
    );

    let ev_dram = Evaluator::with_keys(&params, Arc::new(dram)).unwrap();
    let ev_pmem = Evaluator::with_keys(&params, Arc::new(pks.clone())).unwrap();
    let enc = Encryptor::new(&params, PublicKey::generate(&sk).unwrap()).unwrap();
    let values: Vec<f64> = (0..params.slots()).map(|i| (i % 5) as f64 / 5.0).collect();
    for level in 0..=top {
        let pt = ev_dram
            .encoder()
            .encode(&values, level, params.default_scale())
            .unwrap();
        let ct = enc.encrypt(&pt).unwrap();
        for &s in &steps {
            assert_eq!(
                ev_pmem.rotate(&ct, s).unwrap().parts(),
                ev_dram.rotate(&ct, s).unwrap().parts(),
                "level {level}, step {s}"
            );
        }
    }
    // Only Galois keys have variants.
    let relin = kg.relinearization_key().unwrap();
    assert!(matches!(
        pks.insert_level_variant(&relin),
        Err(pmem_store::StoreError::InvalidObject { .. })
    ));
}
