//! Fuzzes every object decoder against small fixed parameters. The first byte picks the
//! decoder; the rest is wrapped in a valid header (correct checksum and parameter hash) half of
//! the time, so that the payload parsers behind the checksum are reached.
#![no_main]
use he_core::ckks::{Ciphertext, Plaintext};
use he_core::rlwe::{KeySwitchKey, Parameters, ParametersLiteral, PublicKey, SecretDistribution, Security};
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
    let Some((&sel, rest)) = data.split_first() else { return };
    let p = params();
    let objects = [ObjectType::Plaintext, ObjectType::Ciphertext, ObjectType::PublicKey, ObjectType::KeySwitchKey, ObjectType::SecretKey];
    let obj = objects[(sel as usize >> 1) % objects.len()];
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
        ObjectType::KeySwitchKey => KeySwitchKey::from_bytes(p, bytes).map(|_| ()),
        _ => secret_key_from_bytes(p, bytes).map(|_| ()),
    };
});
