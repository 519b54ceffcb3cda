//! Level-limited key-switching keys against full keys: bit-identical results for a full key's
//! restriction (plain, hoisted rotations, linear transforms, relinearization), the same
//! decryptions for freshly generated level-limited keys, typed refusals above the key's
//! level, sizes at the bootstrapping chain's shape, and serialization (round trips and
//! hostile digit counts).

use super::*;
use crate::circuits::lintrans::{BabySteps, Diagonals, LinearTransform};
use crate::ckks::{Ciphertext, Decryptor, Encoder, Encryptor, Evaluator};
use crate::math::Prng;
use crate::serialize::{seal, ObjectKind, Serializable, HEADER_LEN};
use crate::Error;
use num_complex::Complex64;
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};

/// N = 2^10, 12 primes in Q, 3 in P, α = 3: dnum = 4.
fn params() -> Arc<Parameters> {
    let mut log_q = vec![55];
    log_q.extend([45; 11]);
    Parameters::new(ParametersLiteral {
        log_n: 10,
        log_q,
        log_p: vec![60; 3],
        alpha: Some(3),
        log_scale: 45.0,
        secret: SecretDistribution::UniformTernary,
        security: Security::InsecureForTesting,
    })
    .unwrap()
}

const STEPS: [i64; 3] = [1, 3, -2];

struct Fix {
    params: Arc<Parameters>,
    sk: SecretKey,
    enc: Encryptor,
    ecd: Encoder,
    /// Full relinearization key, Galois keys for `STEPS` and conjugation.
    full: Vec<KeySwitchKey>,
}

fn fix() -> &'static Fix {
    static F: OnceLock<Fix> = OnceLock::new();
    F.get_or_init(|| {
        let params = params();
        let sk = SecretKey::generate_with(&params, &mut Prng::from_seed([7; 32])).unwrap();
        let pk = PublicKey::generate(&sk).unwrap();
        let kg = KeyGenerator::new(&sk);
        let mut full = kg.rotation_keys(&STEPS, true).unwrap();
        full.push(kg.relinearization_key().unwrap());
        Fix {
            enc: Encryptor::new(&params, pk).unwrap(),
            ecd: Encoder::new(&params).unwrap(),
            params,
            sk,
            full,
        }
    })
}

fn set(keys: impl IntoIterator<Item = KeySwitchKey>) -> Arc<EvalKeySet> {
    let mut s = EvalKeySet::new();
    for k in keys {
        s.insert(k);
    }
    Arc::new(s)
}

fn values(n: usize, seed: u8) -> Vec<Complex64> {
    let mut p = Prng::from_seed([seed; 32]);
    let mut u = || (p.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
    (0..n).map(|_| Complex64::new(u(), u())).collect()
}

fn encrypt_at(f: &Fix, level: usize, seed: u8) -> Ciphertext {
    let v = values(f.params.slots(), seed);
    let pt = f
        .ecd
        .encode_complex(&v, level, f.params.default_scale())
        .unwrap();
    f.enc.encrypt(&pt).unwrap()
}

fn decrypt(f: &Fix, ct: &Ciphertext) -> Vec<Complex64> {
    let pt = Decryptor::new(&f.sk).decrypt(ct).unwrap();
    f.ecd.decode_complex(&pt).unwrap()
}

fn assert_level_refused(r: crate::Result<Ciphertext>, level: usize, max_level: usize) {
    match r {
        Err(Error::KeyLevelExceeded {
            level: l,
            max_level: m,
            ..
        }) => assert_eq!((l, m), (level, max_level)),
        other => panic!("expected KeyLevelExceeded at level {level}, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// A full key restricted to `max_level` gives bit-identical rotations (plain and hoisted),
    /// conjugations and relinearizations at every level up to `max_level`, and a typed refusal
    /// just above it.
    #[test]
    fn restricted_keys_are_bit_identical(max_level in 0usize..11, seed in any::<u8>()) {
        let f = fix();
        let p = &f.params;
        let lim = MaxLevel::new(max_level);
        let restricted: Vec<KeySwitchKey> =
            f.full.iter().map(|k| k.restricted(p, lim).unwrap()).collect();
        for k in &restricted {
            prop_assert_eq!(k.shape(), KeyShape::for_level(p, lim).unwrap());
            prop_assert_eq!(k.max_level(), lim);
        }
        let ev_full = Evaluator::with_keys(p, set(f.full.iter().cloned())).unwrap();
        let ev_lim = Evaluator::with_keys(p, set(restricted)).unwrap();
        for level in 0..=max_level {
            let ct = encrypt_at(f, level, seed);
            for s in STEPS {
                prop_assert_eq!(ev_lim.rotate(&ct, s).unwrap(), ev_full.rotate(&ct, s).unwrap());
            }
            prop_assert_eq!(ev_lim.conjugate(&ct).unwrap(), ev_full.conjugate(&ct).unwrap());
            prop_assert_eq!(
                ev_lim.rotate_hoisted(&ct, &STEPS).unwrap(),
                ev_full.rotate_hoisted(&ct, &STEPS).unwrap()
            );
            // A product's scale Δ² needs two primes: relinearize from level 1 up.
            if level > 0 {
                prop_assert_eq!(
                    ev_lim.mul_relin(&ct, &ct).unwrap(),
                    ev_full.mul_relin(&ct, &ct).unwrap()
                );
            }
        }
        let above = max_level + 1;
        let ct = encrypt_at(f, above, seed);
        assert_level_refused(ev_lim.rotate(&ct, 1), above, max_level);
        assert_level_refused(ev_lim.conjugate(&ct), above, max_level);
        assert_level_refused(ev_lim.mul_relin(&ct, &ct), above, max_level);
        match ev_lim.rotate_hoisted(&ct, &STEPS) {
            Err(Error::KeyLevelExceeded { level, max_level: m, .. }) => {
                prop_assert_eq!((level, m), (above, max_level));
            }
            other => prop_assert!(false, "expected KeyLevelExceeded, got {:?}", other),
        }
    }
}

/// `apply_linear_transform` (hoisted baby steps, the inner-product kernel in `Q_l ∪ P`) with
/// restricted keys is bit-identical to full keys at the transform's level, and refused above.
#[test]
fn linear_transform_with_restricted_keys_is_bit_identical() {
    let f = fix();
    let p = &f.params;
    let slots = p.slots();
    let mut prng = Prng::from_seed([3; 32]);
    let mut d = Diagonals::new(slots).unwrap();
    for k in [0i64, 1, 2, 5, 9, 17] {
        let v = (0..slots)
            .map(|_| Complex64::new((prng.next_u64() >> 40) as f64 / (1u64 << 24) as f64, 0.0))
            .collect();
        d.insert(k, v).unwrap();
    }
    let max_level = 4;
    let lim = MaxLevel::new(max_level);
    for level in [2, max_level, max_level + 1] {
        let lt = LinearTransform::encode(&f.ecd, &d, level, p.q()[level] as f64, BabySteps::Auto)
            .unwrap();
        let kg = KeyGenerator::new(&f.sk);
        let full = kg.rotation_keys(&lt.rotations(), false).unwrap();
        let restricted: Vec<_> = full.iter().map(|k| k.restricted(p, lim).unwrap()).collect();
        let ev_full = Evaluator::with_keys(p, set(full)).unwrap();
        let ev_lim = Evaluator::with_keys(p, set(restricted)).unwrap();
        let ct = encrypt_at(f, level, 11);
        let want = ev_full.apply_linear_transform(&ct, &lt).unwrap();
        if level <= max_level {
            assert_eq!(ev_lim.apply_linear_transform(&ct, &lt).unwrap(), want);
        } else {
            assert_level_refused(ev_lim.apply_linear_transform(&ct, &lt), level, max_level);
        }
    }
}

/// Freshly generated level-limited keys (their own samples) decrypt to the full keys'
/// results within CKKS noise at every level up to theirs, and the seeded serialized form
/// reproduces them.
#[test]
fn generated_level_limited_keys_match_full_keys() {
    let f = fix();
    let p = &f.params;
    let max_level = 5;
    let lim = MaxLevel::new(max_level);
    let kg = KeyGenerator::new(&f.sk);
    let mut keys = kg.rotation_keys_up_to(&STEPS, lim).unwrap();
    keys.push(kg.conjugation_key_up_to(lim).unwrap());
    keys.push(kg.relinearization_key_up_to(lim).unwrap());
    for k in &keys {
        assert_eq!(
            (k.shape().q_limbs, k.shape().dnum, k.max_level()),
            (6, 2, lim)
        );
        assert!(k.seed().is_some());
    }
    let ev_full = Evaluator::with_keys(p, set(f.full.iter().cloned())).unwrap();
    let ev_lim = Evaluator::with_keys(p, set(keys)).unwrap();
    let close = |a: &Ciphertext, b: &Ciphertext| {
        let (x, y) = (decrypt(f, a), decrypt(f, b));
        let err = x
            .iter()
            .zip(&y)
            .map(|(u, v)| (u - v).norm())
            .fold(0.0, f64::max);
        assert!(err < 1e-7, "max |error| {err:e}");
    };
    for level in 0..=max_level {
        let ct = encrypt_at(f, level, 5);
        for s in STEPS {
            close(
                &ev_lim.rotate(&ct, s).unwrap(),
                &ev_full.rotate(&ct, s).unwrap(),
            );
        }
        close(
            &ev_lim.conjugate(&ct).unwrap(),
            &ev_full.conjugate(&ct).unwrap(),
        );
        for (a, b) in ev_lim
            .rotate_hoisted(&ct, &STEPS)
            .unwrap()
            .iter()
            .zip(&ev_full.rotate_hoisted(&ct, &STEPS).unwrap())
        {
            close(a, b);
        }
        if level > 0 {
            let (a, b) = (ev_lim.mul_relin(&ct, &ct), ev_full.mul_relin(&ct, &ct));
            let (mut a, mut b) = (a.unwrap(), b.unwrap());
            ev_lim.rescale_assign(&mut a).unwrap();
            ev_full.rescale_assign(&mut b).unwrap();
            close(&a, &b);
        }
    }
    let ct = encrypt_at(f, max_level + 1, 5);
    assert_level_refused(ev_lim.rotate(&ct, 1), max_level + 1, max_level);
    // Above the chain: refused at generation.
    let top = MaxLevel::new(p.max_level() + 1);
    assert!(matches!(
        kg.galois_key_up_to(5, top),
        Err(Error::OutOfRange { .. })
    ));
    // A restriction cannot raise the level.
    let k = kg.galois_key_up_to(5, MaxLevel::new(2)).unwrap();
    assert!(matches!(
        k.restricted(p, MaxLevel::new(3)),
        Err(Error::OutOfRange { .. })
    ));
}

/// At the shape of `BootstrapPreset::N16Levels9` (N = 2^16, 27 primes in Q, 6 in P, α = 6,
/// dnum = 5), a key up to level 9 (the levels left after bootstrapping) is 2 digits over
/// 10 + 6 limbs: 32 MiB instead of 165 MiB. The chain is built at N = 2^12 (cheap, insecure)
/// and the shapes scaled to N = 2^16: sizes are computed, no key is generated.
#[test]
fn sizes_at_the_bootstrapping_chain_shape() {
    use crate::circuits::bootstrapping::{BootstrapConfig, BootstrapPreset};
    let cfg = BootstrapConfig::preset(BootstrapPreset::N16Levels9);
    let mut lit = cfg.literal();
    lit.log_n = 12;
    lit.security = Security::InsecureForTesting;
    let p = Parameters::new(lit).unwrap();
    assert_eq!((p.q().len(), p.p().len(), p.dnum()), (27, 6, 5));
    let at_n16 = |s: KeyShape| KeyShape { n: 1 << 16, ..s };
    let full = at_n16(KeyShape::for_level(&p, MaxLevel::top(&p)).unwrap());
    let low = at_n16(KeyShape::for_level(&p, MaxLevel::new(cfg.levels_after())).unwrap());
    assert_eq!((full.q_limbs, full.p_limbs, full.dnum), (27, 6, 5));
    assert_eq!((low.q_limbs, low.p_limbs, low.dnum), (10, 6, 2));
    assert_eq!(full.bytes(), 2 * 5 * 33 * (1 << 16) * 8); // 173_015_040 B = 165 MiB
    assert_eq!(low.bytes(), 2 * 2 * 16 * (1 << 16) * 8); // 33_554_432 B = 32 MiB
    assert!(full.bytes() > 5 * low.bytes());
    // ResNet-20's ~80 Galois keys: 12.9 GiB full, 2.5 GiB up to level 9.
    println!(
        "N16Levels9 key: full {} B, up to level 9 {} B ({:.2}x); 80 keys: {:.1} GiB vs {:.1} GiB",
        full.bytes(),
        low.bytes(),
        full.bytes() as f64 / low.bytes() as f64,
        80.0 * full.bytes() as f64 / (1u64 << 30) as f64,
        80.0 * low.bytes() as f64 / (1u64 << 30) as f64,
    );
    // EvalKeySet::bytes reports the real sizes (here at the small test chain).
    let f = fix();
    let lim = MaxLevel::new(3);
    let kg = KeyGenerator::new(&f.sk);
    let keys = kg.rotation_keys_up_to(&STEPS, lim).unwrap();
    let want = STEPS.len() * KeyShape::for_level(&f.params, lim).unwrap().bytes();
    assert_eq!(set(keys).bytes(), want);
    assert!(want < set(f.full.iter().take(STEPS.len()).cloned()).bytes());
}

/// Level-limited keys round-trip through `to_bytes`/`from_bytes`, seeded (generated) and
/// unseeded (restricted); full keys' blobs are unchanged; blobs claiming more (or fewer)
/// digits than their limbs need, or a payload that is no key, are refused.
#[test]
fn serialization_of_level_limited_keys() {
    let f = fix();
    let p = &f.params;
    let kg = KeyGenerator::new(&f.sk);
    let g = galois_element_for_rotation(p.degree(), 1);
    let generated = kg.galois_key_up_to(g, MaxLevel::new(4)).unwrap();
    let restricted = f.full[0].restricted(p, MaxLevel::new(7)).unwrap();
    assert!(restricted.seed().is_none());
    for k in [&generated, &restricted, &f.full[0]] {
        let back = KeySwitchKey::from_bytes(p, &k.to_bytes()).unwrap();
        assert_eq!(
            (
                back.kind(),
                back.shape(),
                back.words(),
                back.key_id(),
                back.seed()
            ),
            (k.kind(), k.shape(), k.words(), k.key_id(), k.seed())
        );
    }
    // A full key's unseeded blob has the full key's length (nothing added to the format).
    let full = f.full[0].restricted(p, MaxLevel::top(p)).unwrap();
    assert_eq!(
        full.to_bytes().len(),
        HEADER_LEN + 24 + full.shape().bytes()
    );
    // Hostile digit counts: the dnum field at payload bytes 4..8.
    let forge = |blob: &[u8], dnum: u32| {
        let mut payload = blob[HEADER_LEN..].to_vec();
        payload[4..8].copy_from_slice(&dnum.to_le_bytes());
        let flags = u32::from_le_bytes(blob[12..16].try_into().unwrap());
        seal(ObjectKind::KeySwitchKey, flags, p.hash(), &payload)
    };
    // 5 Q-limbs need 2 digits: 3 or 1 claimed are refused (whatever the payload's length).
    for (key, bad) in [
        (&generated, 3),
        (&generated, 1),
        (&restricted, 4),
        (&restricted, 2),
    ] {
        let e = KeySwitchKey::from_bytes(p, &forge(&key.to_bytes(), bad)).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
    }
    // The exact case: 3 Q-limbs (one digit) with 2 digits claimed and a payload of 2 digits
    // over 3 + 3 limbs — the length fits, the digit count does not.
    let one_digit = f.full[0].restricted(p, MaxLevel::new(2)).unwrap();
    let blob = one_digit.to_bytes();
    let mut payload = blob[HEADER_LEN..].to_vec();
    payload[4..8].copy_from_slice(&2u32.to_le_bytes());
    payload.extend_from_slice(&blob[HEADER_LEN + 24..]);
    let e = KeySwitchKey::from_bytes(p, &seal(ObjectKind::KeySwitchKey, 0, p.hash(), &payload))
        .unwrap_err();
    assert!(e.to_string().contains("2 digits over 3 Q-limbs"), "{e}");
    // More digits than the parameters have, and zero digits.
    for bad in [5, 0, u32::MAX] {
        let e = KeySwitchKey::from_bytes(p, &forge(&full.to_bytes(), bad)).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
    }
    // A payload one limb short of any key: refused before allocation.
    let blob = restricted.to_bytes();
    let mut payload = blob[HEADER_LEN..].to_vec();
    payload.truncate(payload.len() - 8);
    let e = KeySwitchKey::from_bytes(p, &seal(ObjectKind::KeySwitchKey, 0, p.hash(), &payload))
        .unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
}

/// A key whose shape claims more digits than its limbs need (built from raw storage, as a
/// store would) is refused by key switching with a typed error, never used.
#[test]
fn inconsistent_shapes_are_refused_by_key_switching() {
    let f = fix();
    let p = &f.params;
    let g = galois_element_for_rotation(p.degree(), 1);
    let k = f
        .full
        .iter()
        .find(|k| k.kind() == KeyKind::Galois(g))
        .unwrap()
        .restricted(p, MaxLevel::new(2))
        .unwrap();
    // 3 Q-limbs cover one digit (α = 3); claim two over the same limbs.
    let bad_shape = KeyShape {
        dnum: 2,
        ..k.shape()
    };
    let mut words = k.words().to_vec();
    words.extend_from_slice(k.words());
    let bad = KeySwitchKey::from_storage(bad_shape, k.kind(), k.params_hash(), Arc::new(words))
        .unwrap()
        .with_key_id(k.key_id());
    assert!(bad_shape.check(p).is_err());
    let ev = Evaluator::with_keys(p, set([bad])).unwrap();
    let e = ev.rotate(&encrypt_at(f, 1, 1), 1).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
}
