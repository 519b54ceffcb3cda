//! Round trips of every object, and typed errors on hostile input.

use super::*;
use crate::ckks::{Decryptor, Encoder, Encryptor, Evaluator};
use crate::rlwe::{EvalKeySet, KeyGenerator, KeyKind, KeySwitchKey, ParametersLiteral, Preset};
use proptest::prelude::*;
use std::sync::OnceLock;

struct Fixture {
    params: Arc<Parameters>,
    sk: SecretKey,
    pk: PublicKey,
    ct: Ciphertext,
    ct_seeded: Ciphertext,
    ct3: Ciphertext,
    pt: Plaintext,
    rlk: KeySwitchKey,
    gk: KeySwitchKey,
}

fn small_params() -> Arc<Parameters> {
    Parameters::new(ParametersLiteral {
        log_n: 10,
        log_q: vec![50, 40, 40],
        log_p: vec![55, 55],
        alpha: Some(2),
        log_scale: 40.0,
        secret: SecretDistribution::UniformTernary,
        security: Security::InsecureForTesting,
    })
    .unwrap()
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let params = small_params();
        let sk = SecretKey::generate(&params).unwrap();
        let pk = PublicKey::generate(&sk).unwrap();
        let ecd = Encoder::new(&params).unwrap();
        let pt = ecd
            .encode(
                &[1.0, -2.5, 3.25],
                params.max_level(),
                params.default_scale(),
            )
            .unwrap();
        let ct = Encryptor::new(&params, pk.clone())
            .unwrap()
            .encrypt(&pt)
            .unwrap();
        let ct_seeded = Decryptor::new(&sk).encrypt_symmetric(&pt).unwrap();
        let ct3 = Evaluator::new(&params).unwrap().mul(&ct, &ct).unwrap();
        let kg = KeyGenerator::new(&sk);
        let rlk = kg.relinearization_key().unwrap();
        let gk = kg.galois_key(5).unwrap();
        Fixture {
            params,
            sk,
            pk,
            ct,
            ct_seeded,
            ct3,
            pt,
            rlk,
            gk,
        }
    })
}

fn blobs() -> Vec<(&'static str, Vec<u8>)> {
    let f = fixture();
    vec![
        ("params", f.params.to_bytes()),
        ("plaintext", f.pt.to_bytes()),
        ("ciphertext", f.ct.to_bytes()),
        ("seeded ciphertext", f.ct_seeded.to_bytes()),
        ("3-component ciphertext", f.ct3.to_bytes()),
        ("public key", f.pk.to_bytes()),
        ("relin key", f.rlk.to_bytes()),
        ("galois key", f.gk.to_bytes()),
        ("secret key", secret_key_to_bytes(&f.sk).to_vec()),
    ]
}

/// Decodes a blob as the object its name says; Ok(()) when it decodes.
fn decode(name: &str, params: &Arc<Parameters>, b: &[u8]) -> Result<()> {
    match name {
        "params" => Parameters::from_bytes_allow_insecure(b).map(|_| ()),
        "plaintext" => Plaintext::from_bytes(params, b).map(|_| ()),
        "ciphertext" | "seeded ciphertext" | "3-component ciphertext" => {
            Ciphertext::from_bytes(params, b).map(|_| ())
        }
        "public key" => PublicKey::from_bytes(params, b).map(|_| ()),
        "relin key" | "galois key" => KeySwitchKey::from_bytes(params, b).map(|_| ()),
        "secret key" => secret_key_from_bytes(params, b).map(|_| ()),
        _ => unreachable!(),
    }
}

#[test]
fn round_trips_are_exact() {
    let f = fixture();
    let p = &f.params;
    let q = Parameters::from_bytes_allow_insecure(&p.to_bytes()).unwrap();
    assert_eq!((q.hash(), q.q(), q.p()), (p.hash(), p.q(), p.p()));
    assert_eq!(Plaintext::from_bytes(p, &f.pt.to_bytes()).unwrap(), f.pt);
    for ct in [&f.ct, &f.ct_seeded, &f.ct3] {
        assert_eq!(&Ciphertext::from_bytes(p, &ct.to_bytes()).unwrap(), ct);
    }
    assert_eq!(PublicKey::from_bytes(p, &f.pk.to_bytes()).unwrap(), f.pk);
    for k in [&f.rlk, &f.gk] {
        let back = KeySwitchKey::from_bytes(p, &k.to_bytes()).unwrap();
        assert_eq!(
            (back.kind(), back.shape(), back.words()),
            (k.kind(), k.shape(), k.words())
        );
    }
    let sk = secret_key_from_bytes(p, &secret_key_to_bytes(&f.sk)).unwrap();
    assert_eq!(sk.to_ternary_coefficients(), f.sk.to_ternary_coefficients());
    // A reloaded key set still works: relinearize with a deserialized key.
    let mut set = EvalKeySet::new();
    set.insert(KeySwitchKey::from_bytes(p, &f.rlk.to_bytes()).unwrap());
    let ev = Evaluator::with_keys(p, Arc::new(set)).unwrap();
    let r = ev.relinearize(&f.ct3).unwrap();
    let ecd = Encoder::new(p).unwrap();
    let got = ecd
        .decode(&Decryptor::new(&sk).decrypt(&r).unwrap())
        .unwrap();
    for (g, w) in got.iter().zip([1.0, 6.25, 10.5625]) {
        assert!((g - w).abs() < 1e-4, "{g} vs {w}");
    }
}

#[test]
fn seeded_forms_are_about_half_size() {
    let f = fixture();
    let full_ct = {
        let mut c = f.ct_seeded.clone();
        c.seed = None;
        c.to_bytes().len()
    };
    let seeded = f.ct_seeded.to_bytes().len();
    assert!(
        (seeded as f64) < 0.51 * full_ct as f64,
        "{seeded} vs {full_ct}"
    );
    let k = f.rlk.clone();
    let full_key =
        KeySwitchKey::from_storage(k.shape(), k.kind(), k.params_hash(), k.storage().clone())
            .unwrap()
            .to_bytes()
            .len();
    assert!((k.to_bytes().len() as f64) < 0.51 * full_key as f64);
    println!(
        "ciphertext {full_ct} -> {seeded} bytes; relin key {full_key} -> {} bytes",
        k.to_bytes().len()
    );
}

#[test]
fn hostile_inputs_give_typed_errors() {
    let f = fixture();
    let other = Preset::N14Depth6.parameters().unwrap();
    for (name, b) in blobs() {
        // truncated at several places
        for cut in [0, 7, HEADER_LEN - 1, HEADER_LEN, b.len() / 2, b.len() - 1] {
            let e = decode(name, &f.params, &b[..cut]).unwrap_err();
            assert!(
                matches!(e, Error::Decode { .. }),
                "{name} cut at {cut}: {e}"
            );
        }
        // a flipped payload byte breaks the checksum
        let mut c = b.clone();
        let last = c.len() - 1;
        c[last] ^= 0x40;
        let e = decode(name, &f.params, &c).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{name}: {e}");
        // bad magic, bad version
        let mut c = b.clone();
        c[0] = b'X';
        assert!(decode(name, &f.params, &c)
            .unwrap_err()
            .to_string()
            .contains("magic"));
        let mut c = b.clone();
        c[8] = 9;
        assert!(decode(name, &f.params, &c)
            .unwrap_err()
            .to_string()
            .contains("version"));
        // wrong parameters
        if name != "params" {
            let e = decode(name, &other, &b).unwrap_err();
            assert!(matches!(e, Error::ParameterMismatch { .. }), "{name}: {e}");
        }
    }
    // wrong type: a ciphertext blob read as a plaintext
    let e = Plaintext::from_bytes(&f.params, &f.ct.to_bytes()).unwrap_err();
    assert!(e.to_string().contains("expected Plaintext"), "{e}");
    // a residue >= modulus, with a valid checksum, is refused
    let mut payload = f.pt.to_bytes()[HEADER_LEN..].to_vec();
    payload[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    let forged = seal(ObjectKind::Plaintext, 0, f.params.hash(), &payload);
    let e = Plaintext::from_bytes(&f.params, &forged).unwrap_err();
    assert!(e.to_string().contains("residue"), "{e}");
    // a header claiming a huge level is refused before allocating
    let mut payload = f.ct.to_bytes()[HEADER_LEN..].to_vec();
    payload[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let forged = seal(ObjectKind::Ciphertext, 0, f.params.hash(), &payload);
    assert!(Ciphertext::from_bytes(&f.params, &forged).is_err());
}

/// The parameter payload with explicit fields (the layout of `Parameters::to_bytes`).
fn params_payload(
    log_n: u32,
    q: &[u64],
    p: &[u64],
    alpha: u32,
    log_scale: f64,
    secret: (u8, u64),
    security: u8,
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&log_n.to_le_bytes());
    b.extend_from_slice(&(q.len() as u32).to_le_bytes());
    q.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
    b.extend_from_slice(&(p.len() as u32).to_le_bytes());
    p.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
    b.extend_from_slice(&alpha.to_le_bytes());
    b.extend_from_slice(&log_scale.to_bits().to_le_bytes());
    b.push(secret.0);
    b.extend_from_slice(&secret.1.to_le_bytes());
    b.push(security);
    b
}

/// Finding 6: the blob's own "insecure" flag is not trusted: `from_bytes` refuses it, only the
/// named opt-in loads it.
#[test]
fn insecure_parameter_blob_needs_the_named_opt_in() {
    let f = fixture();
    let blob = f.params.to_bytes();
    let e = Parameters::from_bytes(&blob).unwrap_err();
    assert!(e.to_string().contains("from_bytes_allow_insecure"), "{e}");
    assert_eq!(
        Parameters::from_bytes_allow_insecure(&blob).unwrap().hash(),
        f.params.hash()
    );
    // A 128-bit preset loads with the plain function.
    let secure = Preset::N14Depth6.parameters().unwrap();
    assert_eq!(
        Parameters::from_bytes(&secure.to_bytes()).unwrap().hash(),
        secure.hash()
    );
}

/// Finding 6: a forged blob (valid checksum) whose scale is NaN, or differs from the one the
/// hash was made with, or whose secret has Hamming weight 0, is refused.
#[test]
fn forged_parameter_fields_are_refused() {
    let p = &fixture().params;
    let a = p.literal().alpha.unwrap() as u32;
    let forge = |log_scale: f64, secret: (u8, u64), security: u8, hash: u64| {
        let payload = params_payload(10, p.q(), p.p(), a, log_scale, secret, security);
        seal(ObjectKind::Parameters, 0, hash, &payload)
    };
    // Sanity: the honest fields load.
    assert!(Parameters::from_bytes_allow_insecure(&forge(40.0, (0, 0), 1, p.hash())).is_ok());
    for bad in [f64::NAN, f64::INFINITY, -3.0, 0.0, 1e300] {
        let e =
            Parameters::from_bytes_allow_insecure(&forge(bad, (0, 0), 1, p.hash())).unwrap_err();
        assert!(e.to_string().contains("log_scale"), "{bad}: {e}");
    }
    // Another valid scale under the old hash: the hash covers log_scale now.
    let e = Parameters::from_bytes_allow_insecure(&forge(30.0, (0, 0), 1, p.hash())).unwrap_err();
    assert!(matches!(e, Error::ParameterMismatch { .. }), "{e}");
    // Hamming weight 0: the all-zero secret.
    let e = Parameters::from_bytes_allow_insecure(&forge(40.0, (1, 0), 1, p.hash())).unwrap_err();
    assert!(e.to_string().contains("Hamming weight 0"), "{e}");
    // Flipping the flag to "128-bit" does not make a weak set load: the table is checked.
    let e = Parameters::from_bytes(&forge(40.0, (0, 0), 0, p.hash())).unwrap_err();
    assert!(matches!(e, Error::Insecure { .. }), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Arbitrary mutations of valid blobs (with the checksum recomputed, so that the parsers
    /// behind it are exercised) never panic.
    #[test]
    fn mutated_blobs_never_panic(which in 0usize..9, edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), trunc in any::<prop::sample::Index>()) {
        let f = fixture();
        let (name, b) = blobs().swap_remove(which);
        let mut payload = b[HEADER_LEN..].to_vec();
        if payload.is_empty() { return Ok(()); }
        for (i, v) in edits {
            let i = i.index(payload.len());
            payload[i] = v;
        }
        let cut = trunc.index(payload.len() + 1);
        payload.truncate(cut.max(payload.len() * 3 / 4));
        let flags = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        let hash = u64::from_le_bytes(b[16..24].try_into().unwrap());
        let object = ObjectKind::from_tag(u16::from_le_bytes([b[10], b[11]])).unwrap();
        let forged = seal(object, flags, hash, &payload);
        let _ = decode(name, &f.params, &forged);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let f = fixture();
        for (name, _) in blobs() {
            prop_assert!(decode(name, &f.params, &bytes).is_err());
        }
    }
}

/// Key identifiers survive every round trip (ciphertexts, public key, switching keys, and
/// the secret key itself).
#[test]
fn key_ids_round_trip() {
    let f = fixture();
    let p = &f.params;
    let id = Some(f.sk.key_id());
    for ct in [&f.ct, &f.ct_seeded, &f.ct3] {
        assert_eq!(ct.key_id(), id);
        assert_eq!(
            Ciphertext::from_bytes(p, &ct.to_bytes()).unwrap().key_id(),
            id
        );
    }
    assert_eq!(f.pk.key_id(), id);
    assert_eq!(
        PublicKey::from_bytes(p, &f.pk.to_bytes()).unwrap().key_id(),
        id
    );
    for k in [&f.rlk, &f.gk] {
        assert_eq!(k.key_id(), id);
        assert_eq!(
            KeySwitchKey::from_bytes(p, &k.to_bytes()).unwrap().key_id(),
            id
        );
    }
    let sk = secret_key_from_bytes(p, &secret_key_to_bytes(&f.sk)).unwrap();
    assert_eq!(sk.key_id(), f.sk.key_id());
    // The reloaded secret decrypts the original ciphertexts.
    assert!(Decryptor::new(&sk).decrypt(&f.ct).is_ok());
}

/// Version-1 blobs (before key identifiers) are refused with a message saying why.
#[test]
fn version_1_blobs_are_refused_clearly() {
    for (name, b) in blobs() {
        let mut c = b.clone();
        c[8..10].copy_from_slice(&1u16.to_le_bytes());
        let e = decode(name, &fixture().params, &c).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("format version 1") && msg.contains("key identifiers"),
            "{name}: {msg}"
        );
    }
}

/// Finding 6: the key kind must match its use — a relinearization key decoded as a Galois
/// key is an error.
#[test]
fn key_kind_must_match_its_use() {
    let f = fixture();
    let p = &f.params;
    let e = KeySwitchKey::from_bytes_as(p, &f.rlk.to_bytes(), KeyKind::Galois(5)).unwrap_err();
    assert!(e.to_string().contains("expected a Galois(5) key"), "{e}");
    let e = KeySwitchKey::from_bytes_as(p, &f.gk.to_bytes(), KeyKind::Relinearization).unwrap_err();
    assert!(e.to_string().contains("Relinearization"), "{e}");
    assert!(KeySwitchKey::from_bytes_as(p, &f.gk.to_bytes(), KeyKind::Galois(5)).is_ok());
    // A relinearization key served by a provider as a Galois key is refused at use.
    struct Liar(Arc<KeySwitchKey>);
    impl crate::rlwe::EvalKeyProvider for Liar {
        fn relinearization_key(&self) -> Result<Arc<KeySwitchKey>> {
            Ok(self.0.clone())
        }
        fn galois_key(&self, _: u64) -> Result<Arc<KeySwitchKey>> {
            Ok(self.0.clone())
        }
        fn galois_elements(&self) -> Vec<u64> {
            vec![5]
        }
    }
    let ev = Evaluator::with_keys(p, Arc::new(Liar(Arc::new(f.rlk.clone())))).unwrap();
    let e = ev.rotate(&f.ct, 1).unwrap_err();
    assert!(
        e.to_string().contains("Relinearization key was supplied"),
        "{e}"
    );
}

/// Re-seals `payload` edited by `edit` under the header of `blob`.
fn forge(blob: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut payload = blob[HEADER_LEN..].to_vec();
    edit(&mut payload);
    let flags = u32::from_le_bytes(blob[12..16].try_into().unwrap());
    let hash = u64::from_le_bytes(blob[16..24].try_into().unwrap());
    let object = ObjectKind::from_tag(u16::from_le_bytes([blob[10], blob[11]])).unwrap();
    seal(object, flags, hash, &payload)
}

/// Finding 6: decoded objects are validated semantically, not only by their checksum:
/// scales must be finite, >= 1 and below Q_level.
#[test]
fn forged_scales_are_refused() {
    let f = fixture();
    let p = &f.params;
    let q_bits: f64 = p.q().iter().map(|q| (*q as f64).log2()).sum();
    for bad in [
        f64::NAN,
        f64::INFINITY,
        0.0,
        0.5,
        -1.0,
        (q_bits + 1.0).exp2(),
    ] {
        let ct = forge(&f.ct.to_bytes(), |b| {
            b[8..16].copy_from_slice(&bad.to_bits().to_le_bytes())
        });
        let e = Ciphertext::from_bytes(p, &ct).unwrap_err();
        assert!(e.to_string().contains("scale"), "{bad}: {e}");
        let pt = forge(&f.pt.to_bytes(), |b| {
            b[4..12].copy_from_slice(&bad.to_bits().to_le_bytes())
        });
        let e = Plaintext::from_bytes(p, &pt).unwrap_err();
        assert!(e.to_string().contains("scale"), "{bad}: {e}");
    }
    // A scale that fits the top level but not level 0: refused once the level says 0.
    let at_top = (q_bits - 1.0).exp2();
    let ct = forge(&f.ct.to_bytes(), |b| {
        b[8..16].copy_from_slice(&at_top.to_bits().to_le_bytes())
    });
    assert!(Ciphertext::from_bytes(p, &ct).is_ok());
    // Keys with identifier 0 are refused; ciphertexts may have none (they fail closed later).
    let k = forge(&f.rlk.to_bytes(), |b| b[16..24].copy_from_slice(&[0; 8]));
    assert!(KeySwitchKey::from_bytes(p, &k)
        .unwrap_err()
        .to_string()
        .contains("key identifier 0"));
    let ct = forge(&f.ct.to_bytes(), |b| b[16..24].copy_from_slice(&[0; 8]));
    let ct = Ciphertext::from_bytes(p, &ct).unwrap();
    assert_eq!(ct.key_id(), None);
    assert!(matches!(
        Decryptor::new(&f.sk).decrypt(&ct),
        Err(Error::KeyMismatch { .. })
    ));
    // A Galois element that is not a group element, a kind with a stray element.
    let k = forge(&f.gk.to_bytes(), |b| {
        b[8..16].copy_from_slice(&4u64.to_le_bytes())
    });
    assert!(KeySwitchKey::from_bytes(p, &k).is_err());
    let k = forge(&f.rlk.to_bytes(), |b| {
        b[8..16].copy_from_slice(&5u64.to_le_bytes())
    });
    assert!(KeySwitchKey::from_bytes(p, &k).is_err());
}

/// Finding 6: LinearTransform (object type 7) fields are validated: duplicate or
/// out-of-range diagonals and bad scales are refused even with a valid checksum.
#[test]
fn linear_transform_fields_are_validated() {
    use crate::circuits::lintrans::{BabySteps, Diagonals, LinearTransform};
    use num_complex::Complex64;
    let f = fixture();
    let p = &f.params;
    let n = 8;
    let mut d = Diagonals::new(n).unwrap();
    d.insert(0, vec![Complex64::new(2.0, 0.0); n]).unwrap();
    d.insert(3, vec![Complex64::new(1.0, 0.0); n]).unwrap();
    let ecd = Encoder::new(p).unwrap();
    let level = p.max_level();
    let lt =
        LinearTransform::encode(&ecd, &d, level, p.q()[level] as f64, BabySteps::Fixed(2)).unwrap();
    let blob = lt.to_bytes();
    let back = LinearTransform::from_bytes(p, &blob).unwrap();
    assert_eq!(back.to_bytes(), blob);
    // Header: slots, level, scale, n1, E; then E index pairs.
    let e = u32::from_le_bytes(blob[HEADER_LEN + 20..HEADER_LEN + 24].try_into().unwrap());
    assert_eq!(e, 2);
    let idx = 24;
    // Duplicate diagonal: the second index pair made equal to the first.
    let dup = forge(&blob, |b| {
        let first: [u8; 8] = b[idx..idx + 8].try_into().unwrap();
        b[idx + 8..idx + 16].copy_from_slice(&first);
    });
    assert!(LinearTransform::from_bytes(p, &dup)
        .unwrap_err()
        .to_string()
        .contains("twice"));
    // Baby index >= n1.
    let bad = forge(&blob, |b| {
        b[idx + 4..idx + 8].copy_from_slice(&7u32.to_le_bytes())
    });
    assert!(LinearTransform::from_bytes(p, &bad).is_err());
    // Giant index beyond the slots.
    let bad = forge(&blob, |b| {
        b[idx..idx + 4].copy_from_slice(&u32::MAX.to_le_bytes())
    });
    assert!(LinearTransform::from_bytes(p, &bad).is_err());
    // NaN scale, scale above Q_level.
    for s in [f64::NAN, 1e300] {
        let bad = forge(&blob, |b| {
            b[8..16].copy_from_slice(&s.to_bits().to_le_bytes())
        });
        assert!(LinearTransform::from_bytes(p, &bad)
            .unwrap_err()
            .to_string()
            .contains("scale"));
    }
    // n1 = 0, slots = 0.
    let bad = forge(&blob, |b| b[16..20].copy_from_slice(&0u32.to_le_bytes()));
    assert!(LinearTransform::from_bytes(p, &bad).is_err());
    let bad = forge(&blob, |b| b[0..4].copy_from_slice(&0u32.to_le_bytes()));
    assert!(LinearTransform::from_bytes(p, &bad).is_err());
}
