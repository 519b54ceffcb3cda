//! Fuzzes every object decoder against small fixed parameters. The first byte picks the
//! decoder; the rest is wrapped in a valid header (correct checksum and parameter hash) half of
//! the time, so that the payload parsers behind the checksum are reached. Covers the format-2
//! key-identifier fields (ciphertexts, public and switching keys, secret keys), the kind check
//! of `KeySwitchKey::from_bytes_as`, and `LinearTransform` (object type 7).
#![no_main]
use he_core::circuits::lintrans::LinearTransform;
use he_core::ckks::{Ciphertext, Plaintext};
use he_core::rlwe::{
    KeyKind, KeySwitchKey, Parameters, ParametersLiteral, PublicKey, SecretDistribution, Security,
};
use he_core::serialize::{seal, secret_key_from_bytes, ObjectType, Serializable};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

fn params() -> &'static Arc<Parameters> {
    static P: OnceLock<Arc<Parameters>> = OnceLock::new();
    P.get_or_init(|| {
        Parameters::new(ParametersLiteral {
            log_n: 4,
            log_q: vec![40, 30],
            log_p: vec![45],
            alpha: Some(1),
            log_scale: 30.0,
            secret: SecretDistribution::UniformTernary,
            security: Security::InsecureForTesting,
        })
        .expect("fixed fuzzing parameters are valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let p = params();
    let objects = [
        ObjectType::Plaintext,
        ObjectType::Ciphertext,
        ObjectType::PublicKey,
        ObjectType::KeySwitchKey,
        ObjectType::SecretKey,
        ObjectType::LinearTransform,
    ];
    let obj = objects[(sel as usize >> 1) % objects.len()];
    // Bits above the selector: which kind a key-switching key is expected to be.
    let want = match (sel >> 4) % 4 {
        0 => None,
        1 => Some(KeyKind::Relinearization),
        2 => Some(KeyKind::Galois(5)),
        _ => Some(KeyKind::SparseToDense),
    };
    let wrapped;
    let bytes: &[u8] = if sel & 1 == 1 {
        let flags = rest.first().copied().unwrap_or(0) as u32 & 1;
        wrapped = seal(obj, flags, p.hash(), rest.get(1..).unwrap_or(&[]));
        &wrapped
    } else {
        rest
    };
    let _ = match obj {
        ObjectType::Plaintext => Plaintext::from_bytes(p, bytes).map(|_| ()),
        ObjectType::Ciphertext => Ciphertext::from_bytes(p, bytes).map(|_| ()),
        ObjectType::PublicKey => PublicKey::from_bytes(p, bytes).map(|_| ()),
        ObjectType::KeySwitchKey => match want {
            None => KeySwitchKey::from_bytes(p, bytes).map(|_| ()),
            Some(k) => KeySwitchKey::from_bytes_as(p, bytes, k).map(|_| ()),
        },
        ObjectType::LinearTransform => LinearTransform::from_bytes(p, bytes).map(|_| ()),
        _ => secret_key_from_bytes(p, bytes).map(|_| ()),
    };
});
