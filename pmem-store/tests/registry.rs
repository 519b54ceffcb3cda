//! The store's object types are he-core's one registry: raw key kinds have their own tags
//! (the sparse-to-dense key no longer hides as a relinearization key), and secret keys cannot
//! be stored, by type, by payload, or by a forged index record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;
use he_core::rlwe::{
    KeyKind, KeyShape, KeySwitchKey, Parameters, ParametersLiteral, SecretDistribution, SecretKey,
    Security,
};
use he_core::serialize::{secret_key_to_bytes, ObjectKind};
use pmem_store::format::Record;
use pmem_store::{ObjectInfo, ObjectMeta, ObjectType, Store, StoreConfig, StoreError};
use std::sync::Arc;

const P: u64 = 0x005E_C2E7;

#[test]
fn store_types_are_the_registry() {
    // The same type, not a parallel enum: a record's tag is a blob's tag.
    let t: ObjectKind = ObjectType::LinearTransform;
    assert_eq!(t.tag(), 7);
    assert_eq!(ObjectType::from_tag(11), Some(ObjectType::Tensor));
}

#[test]
fn raw_keys_are_stored_under_their_own_kind() {
    let dir = fresh_dir("registry-keys");
    let s = Store::create(&dir, StoreConfig::new(Some(P)).prefetch(false)).unwrap();
    let shape = KeyShape {
        n: 16,
        q_limbs: 2,
        p_limbs: 1,
        dnum: 2,
    };
    for (name, kind, ty) in [
        ("relin", KeyKind::Relinearization, ObjectType::RelinKey),
        ("g5", KeyKind::Galois(5), ObjectType::GaloisKey),
        ("s2d", KeyKind::SparseToDense, ObjectType::SparseToDenseKey),
    ] {
        let mut w = vec![0u64; shape.words()];
        fill_words(seed_of(name), &mut w);
        let key = KeySwitchKey::from_storage(shape, kind, P, Arc::new(w)).unwrap();
        let info = s.put_key(name, &key).unwrap();
        assert_eq!(info.meta.ty, ty, "{name}");
        let back = s.get_key(name).unwrap();
        assert_eq!((back.kind(), back.words()), (kind, key.words()));
    }
    drop(s);
    // And after a reopen (through the index records).
    let s = Store::open(&dir, StoreConfig::new(Some(P)).read_only(true)).unwrap();
    assert_eq!(s.info("s2d").unwrap().meta.ty, ObjectType::SparseToDenseKey);
    assert_eq!(s.get_key("s2d").unwrap().kind(), KeyKind::SparseToDense);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn secret_keys_are_refused() {
    let params = Parameters::new(ParametersLiteral {
        log_n: 4,
        log_q: vec![40, 30],
        log_p: vec![45],
        alpha: Some(1),
        log_scale: 30.0,
        secret: SecretDistribution::UniformTernary,
        security: Security::InsecureForTesting,
    })
    .unwrap();
    let sk = SecretKey::generate(&params).unwrap();
    let blob = secret_key_to_bytes(&sk);
    let dir = fresh_dir("registry-secret");
    let s = Store::create(&dir, StoreConfig::new(Some(params.hash())).prefetch(false)).unwrap();
    // By its type.
    let e = s
        .put(
            "sk",
            &ObjectMeta::new(ObjectType::SecretKey, params.hash()),
            &blob,
        )
        .unwrap_err();
    assert!(matches!(e, StoreError::SecretKeyRefused { .. }), "{e}");
    // By its payload, whatever type it is declared as.
    for ty in [ObjectType::Bytes, ObjectType::Tensor, ObjectType::Plaintext] {
        let e = s
            .put("sk", &ObjectMeta::new(ty, params.hash()), &blob)
            .unwrap_err();
        assert!(
            matches!(e, StoreError::SecretKeyRefused { .. }),
            "{ty}: {e}"
        );
        assert!(e.to_string().contains("secret key"), "{e}");
    }
    assert!(s.list().is_empty());
    assert!(!s.contains("sk"));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);

    // An index record claiming a secret key does not decode (the index is corrupt).
    let info = ObjectInfo {
        key: "sk".into(),
        meta: ObjectMeta::new(ObjectType::SecretKey, params.hash()),
        segment: 1,
        offset: 4096,
        len: blob.len() as u64,
        checksum: 0,
        generation: 1,
    };
    let e = Record::decode(&Record::Put(info).encode(1)).unwrap_err();
    assert!(e.contains("never holds secret keys"), "{e}");
}
