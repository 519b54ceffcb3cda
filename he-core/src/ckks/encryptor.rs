//! Encryption (public key, or secret key in seeded form) and decryption.

use super::ciphertext::{Ciphertext, Plaintext};
use crate::math::Prng;
use crate::ring::keyswitch::PolyQP;
use crate::ring::{Eval, Poly};
use crate::rlwe::secret::SecretPoly;
use crate::rlwe::{KeyId, Parameters, PublicKey, SecretKey};
use crate::{Error, Result};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Public-key encryption: `(b·u + e_0 + m, a·u + e_1)`, `u` ternary, `e_i` Gaussian
/// (the RLWE encryption of Lyubashevsky–Peikert–Regev as used by CKKS).
#[derive(Debug, Clone)]
pub struct Encryptor {
    params: Arc<Parameters>,
    pk: PublicKey,
}

impl Encryptor {
    /// An encryptor for `pk` (checked against `params`; a key without a [`KeyId`] is refused,
    /// its ciphertexts would carry none).
    pub fn new(params: &Arc<Parameters>, pk: PublicKey) -> Result<Self> {
        params.check_hash(pk.params_hash())?;
        if pk.key_id().is_none() {
            return Err(Error::KeyMismatch {
                operation: "public-key encryption",
                expected: None,
                found_what: "a public key rebuilt from parts (use PublicKey::with_key_id)",
                found: None,
            });
        }
        Ok(Self {
            params: params.clone(),
            pk,
        })
    }

    /// Encrypts `pt` at its level.
    pub fn encrypt(&self, pt: &Plaintext) -> Result<Ciphertext> {
        let mut prng = Prng::from_os()?;
        self.encrypt_with(pt, &mut prng)
    }

    /// Encrypts with a given generator (tests only).
    pub fn encrypt_with(&self, pt: &Plaintext, prng: &mut Prng) -> Result<Ciphertext> {
        self.params.check_hash(pt.params_hash())?;
        let (rq, rp) = (self.params.ring_q(), self.params.ring_p());
        let n = self.params.degree();
        let (lq, lp) = (pt.level() + 1, rp.max_limbs());
        // The randomness (u, e_0, e_1) is zeroized when dropped.
        let u = Zeroizing::new(prng.ternary(n));
        let (uq, up) = (
            SecretPoly(rq.to_eval(rq.from_signed(&u, lq)?)?),
            SecretPoly(rp.to_eval(rp.from_signed(&u, lp)?)?),
        );
        let ks = self.params.key_switch_basis();
        // c_i = round((pk_i·u + e_i) / P) over Q_l: the encryption noise is divided by P.
        let mut comps = Vec::with_capacity(2);
        for (pk, e) in [
            (&self.pk.b, Zeroizing::new(prng.gaussian(n))),
            (&self.pk.a, Zeroizing::new(prng.gaussian(n))),
        ] {
            let mut cq = rq.to_eval(rq.from_signed(&e, lq)?)?;
            let mut cp = rp.to_eval(rp.from_signed(&e, lp)?)?;
            rq.mul_add_assign(&mut cq, &pk.q.view_limbs(lq)?, &uq)?;
            rp.mul_add_assign(&mut cp, &pk.p, &up)?;
            comps.push(ks.mod_down(PolyQP { q: cq, p: cp })?);
        }
        rq.add_assign(&mut comps[0], pt.poly())?;
        Ok(
            Ciphertext::from_parts(comps, pt.scale(), self.params.hash())?
                .with_key_id(self.pk.key_id()),
        )
    }
}

/// Decryption `m = Σ c_i s^i`, and secret-key encryption.
#[derive(Debug)]
pub struct Decryptor<'a> {
    sk: &'a SecretKey,
}

impl<'a> Decryptor<'a> {
    /// A decryptor for `sk`.
    pub fn new(sk: &'a SecretKey) -> Self {
        Self { sk }
    }

    /// The secret key.
    pub(crate) fn secret_key(&self) -> &SecretKey {
        self.sk
    }

    /// Decrypts to a plaintext at the ciphertext's level and scale. A ciphertext under another
    /// secret key, or without a key identifier, is [`Error::KeyMismatch`].
    ///
    /// The raw decryption: `m + e` with the error `e` a function of the secret key. Results
    /// that may be shown to anyone else (in particular the evaluating party) must be decrypted
    /// with [`decrypt_flooded`](Self::decrypt_flooded) instead (IND-CPA-D; see
    /// [`crate::ckks::flooding`]).
    pub fn decrypt(&self, ct: &Ciphertext) -> Result<Plaintext> {
        let params = self.sk.params();
        params.check_hash(ct.params_hash())?;
        KeyId::check(
            "decryption",
            Some(self.sk.key_id()),
            "the ciphertext",
            ct.key_id(),
        )?;
        let rq = params.ring_q();
        let limbs = ct.level() + 1;
        let s = self.sk.s_q.view_limbs(limbs)?;
        // Horner: ((c_k s + c_{k-1}) s + ...) + c_0.
        let mut acc: Poly<Eval> = ct.c[ct.size() - 1].clone();
        for c in ct.c[..ct.size() - 1].iter().rev() {
            rq.mul_assign(&mut acc, &s)?;
            rq.add_assign(&mut acc, c)?;
        }
        Ok(Plaintext::new(acc, ct.scale(), params.hash()))
    }

    /// Secret-key encryption in seeded form: `c_1 = a` expanded from a fresh 32-byte seed,
    /// `c_0 = -a·s + e + m`.
    pub fn encrypt_symmetric(&self, pt: &Plaintext) -> Result<Ciphertext> {
        let params = self.sk.params();
        params.check_hash(pt.params_hash())?;
        let mut os = Prng::from_os()?;
        let seed = os.seed();
        let rq = params.ring_q();
        let limbs = pt.level() + 1;
        let a = rq.uniform::<Eval>(&mut Prng::from_seed(seed), limbs)?;
        let e = Zeroizing::new(os.gaussian(params.degree()));
        let mut c0 = rq.to_eval(rq.from_signed(&e, limbs)?)?;
        rq.add_assign(&mut c0, pt.poly())?;
        // a·s is secret-derived: zeroized on drop.
        let mut as_ = SecretPoly(rq.mul(&a, &self.sk.s_q.view_limbs(limbs)?)?);
        rq.neg_assign(&mut as_.0)?;
        rq.add_assign(&mut c0, &as_)?;
        let mut ct = Ciphertext::from_parts(vec![c0, a], pt.scale(), params.hash())?
            .with_key_id(self.sk.key_id());
        ct.seed = Some(seed);
        Ok(ct)
    }
}
