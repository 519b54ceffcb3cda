//! Pre-encoded weights (linear transforms, plaintexts) in the store and served through
//! `PmemWeightStore` (he-core's `WeightProvider`): bit-identical round trips, typed refusals
//! (other parameters, other type, truncated or mislabelled blob, truncated segment), service
//! under a DRAM budget smaller than the weights, and the prefetch hint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;
use he_core::circuits::lintrans::{BabySteps, Diagonals, LinearTransform};
use he_core::circuits::weights::WeightProvider;
use he_core::ckks::{Complex64, Encoder, Plaintext};
use he_core::rlwe::{Parameters, ParametersLiteral, SecretDistribution, Security};
use he_core::serialize::Serializable;
use pmem_store::{ObjectMeta, ObjectType, PmemWeightStore, Store, StoreConfig, StoreError};
use std::fs::{self, OpenOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn params(log_scale: f64) -> Arc<Parameters> {
    Parameters::new(ParametersLiteral {
        log_n: 10,
        log_q: vec![50, 40],
        log_p: vec![55],
        alpha: None,
        log_scale,
        secret: SecretDistribution::UniformTernary,
        security: Security::InsecureForTesting,
    })
    .unwrap()
}

/// A transform with `diagonals` nonzero diagonals (values derived from `seed`) at level 1.
fn transform(p: &Arc<Parameters>, diagonals: usize, seed: u64) -> LinearTransform {
    let ecd = Encoder::new(p).unwrap();
    let n = p.slots();
    let mut d = Diagonals::new(n).unwrap();
    let mut s = seed;
    for k in 0..diagonals {
        let v: Vec<Complex64> = (0..n)
            .map(|_| Complex64::new((splitmix(&mut s) % 1000) as f64 / 1000.0, 0.0))
            .collect();
        d.insert(3 * k as i64, v).unwrap();
    }
    LinearTransform::encode(&ecd, &d, 1, p.q()[1] as f64, BabySteps::Auto).unwrap()
}

fn plaintext(p: &Arc<Parameters>, seed: u64) -> Plaintext {
    let ecd = Encoder::new(p).unwrap();
    let mut s = seed;
    let v: Vec<f64> = (0..p.slots())
        .map(|_| (splitmix(&mut s) % 1000) as f64 / 500.0 - 1.0)
        .collect();
    ecd.encode(&v, 1, p.default_scale()).unwrap()
}

#[test]
fn transforms_and_plaintexts_round_trip_bit_identical() {
    let p = params(40.0);
    let dir = fresh_dir("weights-rt");
    let lt = transform(&p, 5, 1);
    let pt = plaintext(&p, 2);
    {
        let s = Store::create(&dir, StoreConfig::new(Some(p.hash()))).unwrap();
        let info = s.put_transform("fc1/w", &lt).unwrap();
        assert_eq!(info.meta.ty, ObjectType::LinearTransform);
        assert_eq!(
            info.meta.dims,
            [1, p.slots() as u64, lt.n1() as u64, 5],
            "level, slots, n1, diagonals"
        );
        assert_eq!(info.meta.aux, lt.scale().to_bits());
        s.put_plaintext("fc1/b", &pt).unwrap();
    }
    // Reopened read-only: what comes back is bit-identical, and the stored payload is the
    // he-core blob itself, whose header tag is the record's type tag (one registry).
    let s = Store::open(&dir, StoreConfig::new(Some(p.hash())).read_only(true)).unwrap();
    let back = s.get_transform("fc1/w", &p).unwrap();
    assert_eq!(back, lt);
    assert_eq!(back.to_bytes(), lt.to_bytes());
    let back = s.get_plaintext("fc1/b", &p).unwrap();
    assert_eq!(back, pt);
    assert_eq!(back.to_bytes(), pt.to_bytes());
    for (key, ty) in [
        ("fc1/w", ObjectType::LinearTransform),
        ("fc1/b", ObjectType::Plaintext),
    ] {
        let h = s.get(key).unwrap();
        let blob_tag = u16::from_le_bytes([h.bytes()[10], h.bytes()[11]]);
        assert_eq!(h.info().meta.ty, ty);
        assert_eq!(blob_tag, ty.tag());
    }
    let w = PmemWeightStore::new(Arc::new(s), &p, "fc1/").unwrap();
    assert_eq!(*w.transform("w").unwrap(), lt);
    assert_eq!(*w.plaintext("b").unwrap(), pt);
    drop(w);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn wrong_parameters_type_and_truncation_are_refused_with_typed_errors() {
    let p = params(40.0);
    let other = params(39.0);
    assert_ne!(p.hash(), other.hash());
    let dir = fresh_dir("weights-bad");
    // Unbound store: the per-object parameter check is the one that refuses.
    let s = Store::create(&dir, StoreConfig::new(None).prefetch(false)).unwrap();
    let lt = transform(&p, 3, 7);
    let pt = plaintext(&p, 8);
    s.put_transform("lt", &lt).unwrap();
    s.put_plaintext("pt", &pt).unwrap();

    // Other parameters.
    let e = s.get_transform("lt", &other).unwrap_err();
    assert!(
        matches!(e, StoreError::ParamsMismatch { expected, found, .. }
            if expected == other.hash() && found == p.hash()),
        "{e}"
    );
    // Other type, both ways, and raw bytes holding a transform's blob.
    let e = s.get_transform("pt", &p).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TypeMismatch {
                expected: ObjectType::LinearTransform,
                found: ObjectType::Plaintext,
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        s.get_plaintext("lt", &p),
        Err(StoreError::TypeMismatch { .. })
    ));
    s.put(
        "raw",
        &ObjectMeta::new(ObjectType::Bytes, p.hash()),
        &lt.to_bytes(),
    )
    .unwrap();
    assert!(matches!(
        s.get_transform("raw", &p),
        Err(StoreError::TypeMismatch {
            found: ObjectType::Bytes,
            ..
        })
    ));
    // A truncated blob, intact per the store's checksum, under the transform type.
    let blob = lt.to_bytes();
    let meta = ObjectMeta::new(ObjectType::LinearTransform, p.hash());
    s.put("short", &meta, &blob[..blob.len() - 100]).unwrap();
    let e = s.get_transform("short", &p).unwrap_err();
    assert!(
        matches!(
            &e,
            StoreError::Undecodable {
                ty: ObjectType::LinearTransform,
                source: he_core::Error::Decode { .. },
                ..
            }
        ),
        "{e}"
    );
    // A plaintext's blob labelled as a transform: the blob's own header tag disagrees.
    s.put("mislabelled", &meta, &pt.to_bytes()).unwrap();
    let e = s.get_transform("mislabelled", &p).unwrap_err();
    assert!(matches!(e, StoreError::Undecodable { .. }), "{e}");
    assert!(e.to_string().contains("expected LinearTransform"), "{e}");
    // The generic put types an object by its own kind.
    assert!(matches!(
        s.put_object("missing", &pt).map(|i| i.meta.ty),
        Ok(ObjectType::Plaintext)
    ));
    // Through the provider, the same failures arrive as he-core's typed errors.
    let s = Arc::new(s);
    let w = PmemWeightStore::new(Arc::clone(&s), &p, "").unwrap();
    assert!(matches!(
        w.transform("nothing"),
        Err(he_core::Error::MissingObject {
            kind: ObjectType::LinearTransform,
            ..
        })
    ));
    assert!(matches!(
        w.transform("raw"),
        Err(he_core::Error::ObjectKindMismatch {
            expected: ObjectType::LinearTransform,
            found: ObjectType::Bytes,
            ..
        })
    ));
    assert!(matches!(
        w.transform("short"),
        Err(he_core::Error::Decode { .. })
    ));
    let wrong = PmemWeightStore::new(Arc::clone(&s), &other, "").unwrap();
    assert!(matches!(
        wrong.transform("lt"),
        Err(he_core::Error::ParameterMismatch { .. })
    ));
    drop((w, wrong));
    let s = Arc::try_unwrap(s).unwrap();
    let n = s.list().len();
    drop(s);

    // A truncated segment file: the object is cut short on disk.
    let s = Store::open(&dir, StoreConfig::new(None).prefetch(false)).unwrap();
    let info = s.info("pt").unwrap();
    drop(s);
    let seg = dir.join(format!("seg-{:08}.dat", info.segment));
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(info.offset + info.len / 2)
        .unwrap();
    let s = Store::open(&dir, StoreConfig::new(None).read_only(true)).unwrap();
    assert_eq!(s.list().len(), n);
    let e = s.get_plaintext("pt", &p).unwrap_err();
    assert!(matches!(e, StoreError::TruncatedSegment { .. }), "{e}");
    assert_eq!(s.get_transform("lt", &p).unwrap(), lt);
    let w = PmemWeightStore::new(Arc::new(s), &p, "").unwrap();
    assert!(matches!(w.plaintext("pt"), Err(he_core::Error::Storage(_))));
    drop(w);

    // A store bound to parameters refuses a provider for others up front.
    let dir2 = fresh_dir("weights-bound");
    let s = Arc::new(Store::create(&dir2, StoreConfig::new(Some(p.hash()))).unwrap());
    assert!(matches!(
        PmemWeightStore::new(Arc::clone(&s), &other, ""),
        Err(StoreError::ParamsMismatch { .. })
    ));
    drop(s);
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_dir_all(&dir2);
}

/// Six transforms (and their biases) served in layer order from a store whose budget holds
/// less than half of them; the prefetch hint makes the store map ahead. Measured as the key
/// tests measure it: the store's resident bytes after every get never exceed the budget, and
/// the budget being smaller than the total forces evictions.
#[test]
fn served_under_a_budget_smaller_than_the_weights_with_prefetch() {
    let p = params(40.0);
    let dir = fresh_dir("weights-budget");
    let layers = 6;
    let lts: Vec<LinearTransform> = (0..layers)
        .map(|i| transform(&p, 4 + i, i as u64))
        .collect();
    let pts: Vec<Plaintext> = (0..layers).map(|i| plaintext(&p, 100 + i as u64)).collect();
    let total: u64;
    let largest: u64;
    {
        let s = Store::create(&dir, StoreConfig::new(Some(p.hash()))).unwrap();
        let w = PmemWeightStore::new(Arc::new(s), &p, "net/").unwrap();
        for i in 0..layers {
            w.insert_transform(&format!("l{i}/w"), &lts[i]).unwrap();
            w.insert_plaintext(&format!("l{i}/b"), &pts[i]).unwrap();
        }
        let sizes: Vec<u64> = w.store().list().iter().map(|o| o.len).collect();
        total = sizes.iter().sum();
        largest = *sizes.iter().max().unwrap();
    }
    // Room for the largest weight twice over, well under half of the whole set.
    let budget = 2 * largest;
    assert!(2 * budget <= total, "budget {budget}, weights {total}");
    let names: Vec<String> = (0..layers)
        .flat_map(|i| [format!("l{i}/w"), format!("l{i}/b")])
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();

    let sweep = |announce: bool| -> (u64, pmem_store::StoreStats) {
        let s = Arc::new(
            Store::open(
                &dir,
                StoreConfig::new(Some(p.hash()))
                    .budget(budget)
                    .read_only(true),
            )
            .unwrap(),
        );
        let w = PmemWeightStore::new(Arc::clone(&s), &p, "net/").unwrap();
        if announce {
            w.prefetch(&names);
            // Wait for the prefetch thread to map the head of the schedule.
            let t = Instant::now();
            while s.stats().prefetched == 0 && t.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let mut max_resident = 0;
        for i in 0..layers {
            let lt = w.transform(names[2 * i]).unwrap();
            assert_eq!(*lt, lts[i], "layer {i} weights");
            max_resident = max_resident.max(s.stats().resident_bytes);
            let pt = w.plaintext(names[2 * i + 1]).unwrap();
            assert_eq!(*pt, pts[i], "layer {i} bias");
            max_resident = max_resident.max(s.stats().resident_bytes);
        }
        (max_resident, s.stats())
    };

    let (cold_max, cold) = sweep(false);
    assert!(cold_max <= budget, "{cold_max} > {budget}");
    assert_eq!((cold.hits, cold.prefetched), (0, 0), "{cold:?}");
    assert_eq!(cold.misses, 2 * layers as u64);
    assert!(
        cold.evictions > 0,
        "a budget below the total must evict: {cold:?}"
    );

    let (warm_max, warm) = sweep(true);
    eprintln!(
        "weights {total} B, budget {budget} B: cold {cold:?}; prefetched {warm:?}, peak mapped {warm_max} B"
    );
    assert!(warm_max <= budget, "{warm_max} > {budget}");
    assert!(warm.prefetched >= 1, "{warm:?}");
    assert!(
        warm.hits >= 1,
        "the announced first weight is served from the prefetch: {warm:?}"
    );
    assert!(warm.evictions > 0, "{warm:?}");
    let _ = fs::remove_dir_all(&dir);
}
