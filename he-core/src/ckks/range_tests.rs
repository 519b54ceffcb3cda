//! Regression tests for values and scales that cannot round-trip (issue #16, finding 2): each
//! is either decoded exactly or refused with a typed error naming the bound, never wrapped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use crate::math::Prng;
use crate::rlwe::{
    EvalKeySet, Parameters, ParametersLiteral, PublicKey, SecretDistribution, SecretKey, Security,
};
use crate::Error;
use std::sync::Arc;

struct Kit {
    params: Arc<Parameters>,
    sk: SecretKey,
    enc: Encryptor,
    ecd: Encoder,
    eval: Evaluator,
}

fn kit(log_q: Vec<u32>) -> Kit {
    let params = Parameters::new(ParametersLiteral {
        log_n: 11,
        log_q,
        log_p: vec![61],
        alpha: None,
        log_scale: 40.0,
        secret: SecretDistribution::UniformTernary,
        security: Security::InsecureForTesting,
    })
    .unwrap();
    let mut prng = Prng::from_seed([3; 32]);
    let sk = SecretKey::generate_with(&params, &mut prng).unwrap();
    let pk = PublicKey::generate(&sk).unwrap();
    let keys = EvalKeySet::generate(&sk, true, &[], false).unwrap();
    Kit {
        enc: Encryptor::new(&params, pk).unwrap(),
        ecd: Encoder::new(&params).unwrap(),
        eval: Evaluator::with_keys(&params, Arc::new(keys)).unwrap(),
        params,
        sk,
    }
}

fn out_of_range(e: &Error) -> bool {
    matches!(e, Error::OutOfRange { .. })
}

/// Encoding 2^62 at scale 2^60 decoded as 6.9e5: the coefficient 2^122 was composed modulo the
/// decoder's two auxiliary primes (2^122) and wrapped. Now exact at any level.
#[test]
fn large_values_decode_exactly() {
    let k = kit(vec![60, 60, 60, 60]);
    let top = k.params.max_level();
    for (v, log_scale) in [
        (2f64.powi(62), 60),
        (-3.0 * 2f64.powi(70), 50),
        (2f64.powi(100), 20),
    ] {
        let scale = 2f64.powi(log_scale);
        // A constant vector: coefficient 0 is v·Δ, the largest a value can make.
        let pt = k
            .ecd
            .encode(&vec![v; k.params.slots()], top, scale)
            .unwrap();
        let got = k.ecd.decode(&pt).unwrap();
        assert!(
            (got[0] / v - 1.0).abs() < 1e-12,
            "{v:e} at 2^{log_scale} decoded as {:e}",
            got[0]
        );
        let ct = k.enc.encrypt(&pt).unwrap();
        let got = k
            .ecd
            .decode(&Decryptor::new(&k.sk).decrypt(&ct).unwrap())
            .unwrap();
        assert!(
            (got[0] / v - 1.0).abs() < 1e-9,
            "{v:e} decrypted as {:e}",
            got[0]
        );
    }
}

/// A value whose coefficients do not fit the level's modulus is refused at encoding, naming
/// the bound (it used to be accepted up to 2^126 and decode wrong).
#[test]
fn values_beyond_the_level_modulus_are_refused() {
    let k = kit(vec![60, 60, 60]);
    // Level 1: Q_1 ≈ 2^120, so a 2^119 coefficient cannot be represented with room to spare.
    let v = vec![2f64.powi(80); k.params.slots()];
    let e = k.ecd.encode(&v, 1, 2f64.powi(40)).unwrap_err();
    assert!(out_of_range(&e) && e.to_string().contains("Q_l/4"), "{e}");
    // Level 2 holds it.
    let pt = k.ecd.encode(&v, 2, 2f64.powi(40)).unwrap();
    assert!((k.ecd.decode(&pt).unwrap()[0] / 2f64.powi(80) - 1.0).abs() < 1e-12);
}

/// x² with x = 2^22 and no rescale decoded to 2.63. With a modulus that holds the product it
/// is now exact; with one that does not, decryption refuses instead of returning garbage; and
/// a product whose scale alone exceeds the modulus is refused when it is formed.
#[test]
fn unrescaled_products_are_exact_or_refused() {
    let x = 2f64.powi(22);
    // Q = 2^60·2^40·2^40·2^40 = 2^180 > 2^(44 + 80): the product decodes exactly.
    let k = kit(vec![60, 40, 40, 40]);
    let top = k.params.max_level();
    let xs = vec![x; k.params.slots()];
    let ct = k
        .enc
        .encrypt(&k.ecd.encode(&xs, top, 2f64.powi(40)).unwrap())
        .unwrap();
    let sq = k.eval.mul_relin(&ct, &ct).unwrap();
    let got = k
        .ecd
        .decode(&Decryptor::new(&k.sk).decrypt(&sq).unwrap())
        .unwrap();
    assert!(
        (got[0] / (x * x) - 1.0).abs() < 1e-6,
        "x² decoded as {}",
        got[0]
    );

    // Q_1 = 2^100: the scale 2^80 fits, the value 2^124 does not — decryption says so.
    let k = kit(vec![60, 40]);
    let xs = vec![x; k.params.slots()];
    let ct = k
        .enc
        .encrypt(&k.ecd.encode(&xs, 1, 2f64.powi(40)).unwrap())
        .unwrap();
    let sq = k.eval.mul_relin(&ct, &ct).unwrap();
    let e = k
        .ecd
        .decode(&Decryptor::new(&k.sk).decrypt(&sq).unwrap())
        .unwrap_err();
    assert!(out_of_range(&e) && e.to_string().contains("wrapped"), "{e}");

    // Scale 2^80 · 2^40 at Q_1 = 2^100: refused by the multiplication, naming the bound.
    let small = k
        .enc
        .encrypt(&k.ecd.encode(&[0.5], 1, 2f64.powi(40)).unwrap())
        .unwrap();
    let e = k.eval.mul(&sq, &small).unwrap_err();
    assert!(out_of_range(&e) && e.to_string().contains("Q_l"), "{e}");
    let e = k.eval.square(&sq).unwrap_err();
    assert!(out_of_range(&e), "{e}");
    let mut t = sq.clone();
    let e = k.eval.mul_const_assign(&mut t, 2.0).unwrap_err();
    assert!(out_of_range(&e), "{e}");
    let pt = k.ecd.encode(&[1.0], 1, 2f64.powi(40)).unwrap();
    let mut t = sq.clone();
    let e = k.eval.mul_plain_assign(&mut t, &pt).unwrap_err();
    assert!(out_of_range(&e), "{e}");
}

/// Property: for random values and scales that fit, decode(encode(v)) = v to the scale's
/// precision at every level, including levels whose modulus exceeds 2^121.
#[test]
fn round_trip_at_every_level() {
    let k = kit(vec![60, 50, 50, 50, 50]);
    let mut prng = Prng::from_seed([9; 32]);
    for level in 0..=k.params.max_level() {
        for _ in 0..8 {
            let log_v = (prng.next_u64() % 40) as i32;
            let log_scale = 20 + (prng.next_u64() % 30) as i32;
            let v = 2f64.powi(log_v) * if prng.next_u64() & 1 == 1 { -1.0 } else { 1.0 };
            match k
                .ecd
                .encode(&vec![v; k.params.slots()], level, 2f64.powi(log_scale))
            {
                Ok(pt) => {
                    let got = k.ecd.decode(&pt).unwrap()[0];
                    let tol = 2f64.powi(-log_scale + 12) + v.abs() * 1e-12;
                    assert!((got - v).abs() <= tol, "level {level}: {v} -> {got}");
                }
                Err(e) => {
                    assert!(out_of_range(&e), "{e}");
                    // Refused only where the coefficient really reaches Q_l/4.
                    let log_q: f64 = k.params.q()[..=level]
                        .iter()
                        .map(|q| (*q as f64).log2())
                        .sum();
                    assert!(
                        log_v as f64 + log_scale as f64 + 1.0 > log_q - 2.0 - 12.0,
                        "{e}"
                    );
                }
            }
        }
    }
}
