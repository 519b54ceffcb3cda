//! Round trips, zero-copy views, the key provider, locking and compaction.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;
use he_core::rlwe::{EvalKeyProvider, KeyKind, KeyShape, KeySwitchKey};
use pmem_store::{
    ObjectMeta, ObjectType, PmemKeyStore, Store, StoreConfig, StoreError, PAYLOAD_ALIGN,
};
use std::sync::Arc;

const P: u64 = 0x1234_5678_9abc_def0;

fn bytes_meta() -> ObjectMeta {
    ObjectMeta::new(ObjectType::Bytes, P)
}

#[test]
fn put_get_delete_reopen() {
    let dir = fresh_dir("basic");
    let s = Store::create(&dir, StoreConfig::new(Some(P)).segment_size(256 * 1024)).unwrap();
    let keys: Vec<String> = (0..20).map(|i| format!("obj/{i}")).collect();
    for k in &keys {
        let info = s
            .put(
                k,
                &bytes_meta().with_user(k.as_bytes().to_vec()),
                &content(k),
            )
            .unwrap();
        assert_eq!(info.offset % PAYLOAD_ALIGN, 0);
    }
    for k in &keys {
        let h = s.get(k).unwrap();
        assert_eq!(h.bytes(), &content(k)[..]);
        assert_eq!(
            h.bytes().as_ptr() as usize % 4096,
            0,
            "payload mapping must be page-aligned"
        );
        assert_eq!(h.info().meta.user, k.as_bytes());
    }
    s.delete("obj/3").unwrap();
    assert!(matches!(
        s.delete("obj/3"),
        Err(StoreError::NotFound { .. })
    ));
    s.put("obj/4", &bytes_meta(), b"replaced").unwrap();
    assert!(s.stats().segments > 1, "small segments roll over");
    drop(s);

    let s = Store::open(&dir, StoreConfig::new(Some(P))).unwrap();
    assert_eq!(s.list().len(), 19);
    assert!(matches!(s.get("obj/3"), Err(StoreError::NotFound { .. })));
    assert_eq!(s.get("obj/4").unwrap().bytes(), b"replaced");
    assert_eq!(s.get("obj/5").unwrap().bytes(), &content("obj/5")[..]);
    let before = s.stats().segment_file_bytes;
    let reclaimed = s.compact().unwrap();
    assert!(reclaimed > 0 && s.stats().segment_file_bytes < before);
    for k in keys.iter().filter(|k| *k != "obj/3" && *k != "obj/4") {
        assert_eq!(s.get(k).unwrap().bytes(), &content(k)[..]);
    }
    assert!(s.verify().failures.is_empty());
    drop(s);
    let s = Store::open(&dir, StoreConfig::new(Some(P))).unwrap();
    assert_eq!(s.list().len(), 19);
    assert_eq!(s.get("obj/4").unwrap().bytes(), b"replaced");
    assert!(s.verify().failures.is_empty());
}

#[test]
fn one_writer_many_readers() {
    let dir = fresh_dir("lock");
    let w = Store::create(&dir, StoreConfig::new(None)).unwrap();
    w.put("a", &bytes_meta(), b"hello").unwrap();
    let e = Store::open(&dir, StoreConfig::new(None)).unwrap_err();
    assert!(matches!(e, StoreError::Locked { .. }), "{e}");
    assert!(e.to_string().contains("locked by another writer"), "{e}");
    let r = Store::open(&dir, StoreConfig::new(None).read_only(true)).unwrap();
    assert_eq!(r.get("a").unwrap().bytes(), b"hello");
    assert!(matches!(
        r.put("b", &bytes_meta(), b"x"),
        Err(StoreError::ReadOnly { .. })
    ));
    drop(w);
    let w2 = Store::open(&dir, StoreConfig::new(None)).unwrap();
    assert_eq!(w2.get("a").unwrap().bytes(), b"hello");
}

fn synthetic_key(shape: KeyShape, kind: KeyKind, seed: u64) -> KeySwitchKey {
    let mut w = vec![0u64; shape.words()];
    fill_words(seed, &mut w);
    KeySwitchKey::from_storage(shape, kind, P, Arc::new(w)).unwrap()
}

#[test]
fn key_provider_serves_keys_in_place() {
    let dir = fresh_dir("keys");
    let shape = KeyShape {
        n: 1 << 10,
        q_limbs: 3,
        p_limbs: 1,
        dnum: 3,
    };
    let store = Arc::new(
        Store::create(
            &dir,
            StoreConfig::new(Some(P)).budget(4 * shape.bytes() as u64),
        )
        .unwrap(),
    );
    let ks = PmemKeyStore::new(Arc::clone(&store), "k/");
    let elts = [3u64, 5, 25, 2047];
    for &g in &elts {
        ks.insert(&synthetic_key(shape, KeyKind::Galois(g), g))
            .unwrap();
    }
    ks.insert(&synthetic_key(shape, KeyKind::Relinearization, 1))
        .unwrap();
    assert_eq!(ks.galois_elements(), elts.to_vec());
    ks.prefetch(&elts);
    for &g in &elts {
        let k = ks.galois_key(g).unwrap();
        let want = synthetic_key(shape, KeyKind::Galois(g), g);
        assert_eq!(k.words(), want.words());
        assert_eq!(
            (k.shape(), k.kind(), k.params_hash()),
            (shape, KeyKind::Galois(g), P)
        );
        let (q, p) = k.part(2, 1, 3).unwrap();
        assert_eq!(q.limbs() + p.limbs(), 4);
    }
    assert_eq!(
        ks.relinearization_key().unwrap().kind(),
        KeyKind::Relinearization
    );
    assert!(matches!(
        ks.galois_key(7),
        Err(he_core::Error::MissingKey(_))
    ));
    // Budget: 4 keys fit; a fifth mapping evicts (nothing held) rather than failing.
    let held: Vec<_> = elts.iter().map(|&g| ks.galois_key(g).unwrap()).collect();
    assert!(store.stats().resident_bytes <= store.budget());
    let e = ks.relinearization_key().unwrap_err();
    assert!(e.to_string().contains("budget"), "{e}");
    drop(held);
    assert!(ks.relinearization_key().is_ok());
    assert!(store.stats().resident_bytes <= store.budget());
}

#[test]
fn budget_too_small_for_one_object() {
    let dir = fresh_dir("budget");
    let s = Store::create(&dir, StoreConfig::new(None).budget(1000)).unwrap();
    s.put("big", &bytes_meta(), &[7u8; 5000]).unwrap();
    let e = s.get("big").unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::BudgetTooSmall {
                needed: 5000,
                budget: 1000,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("expected a budget of at least 5000 bytes, found 1000"),
        "{e}"
    );
}

#[test]
fn invalid_keys_and_shapes_are_refused() {
    let dir = fresh_dir("invalid");
    let s = Store::create(&dir, StoreConfig::new(Some(P))).unwrap();
    assert!(matches!(
        s.put("", &bytes_meta(), b"x"),
        Err(StoreError::InvalidKey { .. })
    ));
    let long = "x".repeat(5000);
    assert!(matches!(
        s.put(&long, &bytes_meta(), b"x"),
        Err(StoreError::InvalidKey { .. })
    ));
    let bad = ObjectMeta::new(ObjectType::GaloisKey, P)
        .with_dims([1024, 1, 1, 1])
        .with_aux(3);
    assert!(matches!(
        s.put("g", &bad, &[0u8; 16]),
        Err(StoreError::InvalidObject { .. })
    ));
    let other = ObjectMeta::new(ObjectType::Bytes, P + 1);
    let e = s.put("o", &other, b"x").unwrap_err();
    assert!(matches!(e, StoreError::ParamsMismatch { .. }), "{e}");
    s.put("empty", &bytes_meta(), b"").unwrap();
    assert_eq!(s.get("empty").unwrap().bytes(), b"");
    assert!(matches!(
        s.get_typed("empty", ObjectType::Tensor),
        Err(StoreError::TypeMismatch { .. })
    ));
}
