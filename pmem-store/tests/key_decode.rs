//! Key objects with hostile shapes give typed errors, never an overflow panic or a key whose
//! shape disagrees with its words.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;
use pmem_store::{decode_key, ObjectMeta, ObjectType, Store, StoreConfig, StoreError};
use std::sync::Arc;

const P: u64 = 0x4b45_5953;

#[test]
fn put_of_a_key_whose_shape_overflows_is_refused() {
    let dir = fresh_dir("key-overflow");
    let s = Store::create(&dir, StoreConfig::new(Some(P)).prefetch(false)).unwrap();
    let meta = ObjectMeta::new(ObjectType::GaloisKey, P)
        .with_dims([1 << 40, 1 << 20, 1, 1 << 10])
        .with_aux(5);
    let e = s.put("galois/5", &meta, &[0u8; 64]).unwrap_err();
    assert!(matches!(e, StoreError::InvalidObject { .. }), "{e}");
    assert!(e.to_string().contains("more than usize::MAX"), "{e}");
}

#[test]
fn decode_key_checks_type_shape_and_length() {
    let words: Arc<Vec<u64>> = Arc::new(vec![7; 2 * 2 * (2 + 1) * 16]);
    let meta = ObjectMeta::new(ObjectType::GaloisKey, P)
        .with_dims([16, 2, 1, 2])
        .with_aux(3);
    let k = decode_key("g", &meta, words.clone()).unwrap();
    assert_eq!(k.words().len(), words.len());
    let short = ObjectMeta::new(ObjectType::GaloisKey, P)
        .with_dims([16, 2, 1, 3])
        .with_aux(3);
    let e = decode_key("g", &short, words.clone()).unwrap_err();
    assert!(
        e.to_string().contains("needs 288 words, payload has 192"),
        "{e}"
    );
    let huge = ObjectMeta::new(ObjectType::RelinKey, P).with_dims([u64::MAX, 3, 3, 3]);
    assert!(matches!(
        decode_key("r", &huge, words.clone()),
        Err(StoreError::InvalidObject { .. })
    ));
    // Found by the store_get_key fuzz target: n = 0 makes the product 0, but 2·dnum overflows.
    let zero_n = ObjectMeta::new(ObjectType::GaloisKey, P).with_dims([0, 1, 1, u64::MAX / 2 + 1]);
    assert!(matches!(
        decode_key("z", &zero_n, Arc::new(Vec::new())),
        Err(StoreError::InvalidObject { .. })
    ));
    let bytes = ObjectMeta::new(ObjectType::Bytes, P);
    assert!(matches!(
        decode_key("b", &bytes, words),
        Err(StoreError::TypeMismatch { .. })
    ));
}
