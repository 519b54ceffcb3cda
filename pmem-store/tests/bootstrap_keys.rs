//! Bootstrapping with its keys served from a store whose DRAM budget holds a fraction of the
//! key set: the result is bit-identical to bootstrapping with the keys in memory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;
use he_core::circuits::bootstrapping::{
    BootstrapConfig, BootstrapKeys, BootstrapPreset, Bootstrapper,
};
use he_core::ckks::{Decryptor, Encoder, Encryptor, PrecisionStats};
use he_core::rlwe::{EvalKeyProvider, KeyKind, PublicKey, SecretKey};
use pmem_store::{PmemKeyStore, Store, StoreConfig};
use std::sync::Arc;

#[test]
fn bootstrap_with_keys_from_a_store_under_a_small_budget() {
    let config = BootstrapConfig::preset(BootstrapPreset::N12InsecureForTesting);
    let params = config.parameters().unwrap();
    let sk = SecretKey::generate(&params).unwrap();
    let keys = BootstrapKeys::generate(&sk, &config).unwrap();
    let total = keys.eval_keys.bytes();

    let dir = fresh_dir("bootstrap");
    // A quarter of the key set fits in DRAM: every bootstrap evicts and re-maps keys.
    let budget = (total / 4) as u64;
    let store = Arc::new(
        Store::create(&dir, StoreConfig::new(Some(params.hash())).budget(budget)).unwrap(),
    );
    let pks = PmemKeyStore::new(Arc::clone(&store), "boot/");
    pks.insert(&keys.eval_keys.relinearization_key().unwrap())
        .unwrap();
    pks.insert(
        &keys
            .eval_keys
            .switching_key(KeyKind::SparseToDense)
            .unwrap(),
    )
    .unwrap();
    for g in keys.eval_keys.galois_elements() {
        pks.insert(&keys.eval_keys.galois_key(g).unwrap()).unwrap();
    }
    assert_eq!(pks.galois_elements(), keys.eval_keys.galois_elements());
    // The encapsulation's switching key is its own object type, not a relinearization key.
    assert_eq!(
        store.info(&pks.sparse_to_dense_name()).unwrap().meta.ty,
        pmem_store::ObjectType::SparseToDenseKey
    );

    let enc_key = keys.encapsulation.clone();
    let dram =
        Bootstrapper::new(&params, &config, Arc::new(keys.eval_keys), enc_key.clone()).unwrap();
    let pmem = Bootstrapper::new(&params, &config, Arc::new(pks), enc_key).unwrap();

    let ecd = Encoder::new(&params).unwrap();
    let enc = Encryptor::new(&params, PublicKey::generate(&sk).unwrap()).unwrap();
    let values: Vec<f64> = (0..params.slots())
        .map(|i| ((i % 29) as f64 / 14.5) - 1.0)
        .collect();
    let ct = enc
        .encrypt(&ecd.encode(&values, 0, params.default_scale()).unwrap())
        .unwrap();
    let a = dram.bootstrap(&ct).unwrap();
    let b = pmem.bootstrap(&ct).unwrap();
    assert_eq!(a, b, "store-served keys must give the identical ciphertext");
    let st = store.stats();
    println!("bootstrap from the store: {st:?}");
    assert!(st.resident_bytes <= store.budget());
    // The bootstrap announced its whole key sequence: the prefetch thread mapped keys ahead.
    assert!(st.prefetched > 0 && st.hits > 0, "{st:?}");
    let got = ecd
        .decode(&Decryptor::new(&sk).decrypt(&b).unwrap())
        .unwrap();
    let p = PrecisionStats::compare(&values, &got);
    println!(
        "keys {:.1} MiB, budget {:.1} MiB: {p:?}",
        total as f64 / 1048576.0,
        budget as f64 / 1048576.0
    );
    assert!(p.mean_bits > 22.0, "{p:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bootstrapping_dft_factors_served_from_the_store() {
    // The pre-encoded CoeffToSlot/SlotToCoeff factors are linear transforms: stored once as
    // their blobs under the LinearTransform type, memory-mapped back, decoded and checked
    // against the parameters.
    use he_core::circuits::lintrans::{BabySteps, LinearTransform};
    use he_core::ckks::Complex64;
    use pmem_store::ObjectType;
    let config = BootstrapConfig::preset(BootstrapPreset::N12InsecureForTesting);
    let params = config.parameters().unwrap();
    let ecd = Encoder::new(&params).unwrap();
    let factors = he_core::circuits::bootstrapping::dft::slot_to_coeff_factors(
        params.degree(),
        params.slots(),
        2,
        Complex64::new(1.0, 0.0),
    )
    .unwrap();
    let dir = fresh_dir("lintrans");
    let store = Store::create(&dir, StoreConfig::new(Some(params.hash())).budget(1 << 26)).unwrap();
    let mut lts = Vec::new();
    for (f, d) in factors.iter().enumerate() {
        let l = 3 - f;
        let lt: LinearTransform =
            LinearTransform::encode(&ecd, d, l, params.q()[l] as f64, BabySteps::Auto).unwrap();
        let info = store.put_transform(&format!("stc/{f}"), &lt).unwrap();
        assert_eq!(info.meta.ty, ObjectType::LinearTransform);
        lts.push(lt);
    }
    for (f, lt) in lts.iter().enumerate() {
        let back = store.get_transform(&format!("stc/{f}"), &params).unwrap();
        assert_eq!(&back, lt);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
