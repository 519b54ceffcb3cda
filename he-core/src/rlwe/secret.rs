//! Secret and public keys.

use super::params::{Parameters, SecretDistribution};
use crate::math::Prng;
use crate::ring::keyswitch::PolyQP;
use crate::ring::{Eval, Poly};
use crate::{Error, Result};
use std::num::NonZeroU64;
use std::sync::Arc;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Identifier of a secret key: 64 random bits from the OS CSPRNG drawn when the secret key is
/// made (not derived from the secret, so it reveals nothing about it), carried by the public
/// key, the key-switching keys and every ciphertext under that secret (as SEAL's `parms_id`
/// ties objects to their parameters).
///
/// Checked where keys meet: decryption (a ciphertext under another key is
/// [`Error::KeyMismatch`], not garbage), operations combining two ciphertexts, and key
/// switching. It is a guard against mistakes, not an authenticator: anyone can relabel an
/// object. Objects built without one (`Ciphertext::from_parts`, `KeySwitchKey::from_storage`)
/// carry `None` and fail closed at those checks until given one with `with_key_id`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(NonZeroU64);

impl KeyId {
    /// A fresh identifier from the operating system's CSPRNG.
    pub fn random() -> Result<Self> {
        loop {
            let mut b = [0u8; 8];
            getrandom::fill(&mut b).map_err(|e| Error::Randomness(e.to_string()))?;
            if let Some(id) = NonZeroU64::new(u64::from_le_bytes(b)) {
                return Ok(Self(id));
            }
        }
    }
    /// The identifier with value `v`; `None` for 0 (the serialized form of "no identifier").
    pub fn from_u64(v: u64) -> Option<Self> {
        NonZeroU64::new(v).map(Self)
    }
    /// The value (never 0).
    pub fn get(self) -> u64 {
        self.0.get()
    }
    /// The serialized word of an optional identifier: 0 for `None`.
    pub fn to_word(id: Option<Self>) -> u64 {
        id.map_or(0, Self::get)
    }
    /// `"0123456789abcdef"`, or `"none"` for an object without an identifier.
    pub fn describe(id: Option<Self>) -> String {
        match id {
            Some(k) => format!("{k}"),
            None => "none".into(),
        }
    }
    /// `Ok` when `found` is `expected` and both are present; otherwise
    /// [`Error::KeyMismatch`] naming both.
    pub fn check(
        operation: &'static str,
        expected: Option<Self>,
        found_what: &'static str,
        found: Option<Self>,
    ) -> Result<()> {
        match (expected, found) {
            (Some(a), Some(b)) if a == b => Ok(()),
            _ => Err(Error::KeyMismatch {
                operation,
                expected,
                found_what,
                found,
            }),
        }
    }
    /// `Ok` when two operands carry the same identifier (both `None` included: the result
    /// stays unbound and fails closed at decryption); otherwise [`Error::KeyMismatch`].
    pub fn check_same(
        operation: &'static str,
        left: Option<Self>,
        right: Option<Self>,
    ) -> Result<()> {
        if left == right {
            Ok(())
        } else {
            Err(Error::KeyMismatch {
                operation,
                expected: left,
                found_what: "the other operand",
                found: right,
            })
        }
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0.get())
    }
}
impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({:016x})", self.0.get())
    }
}

/// A polynomial derived from the secret (`s²`, `σ(s)`, `a·s`, encryption randomness),
/// zeroized when dropped.
pub(crate) struct SecretPoly(pub(crate) Poly<Eval>);

impl Drop for SecretPoly {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}
impl ZeroizeOnDrop for SecretPoly {}
impl std::ops::Deref for SecretPoly {
    type Target = Poly<Eval>;
    fn deref(&self) -> &Poly<Eval> {
        &self.0
    }
}

/// The secret key `s ∈ {-1,0,1}^N`, kept in evaluation form over `Q` and `P`.
///
/// Zeroized on drop; `Debug` prints nothing of it; it has no serialization by accident — the
/// only way out is the explicitly named [`SecretKey::to_ternary_coefficients`].
pub struct SecretKey {
    params: Arc<Parameters>,
    key_id: KeyId,
    coeffs: Vec<i8>,
    /// s mod Q_L, evaluation form.
    pub(crate) s_q: Poly<Eval>,
    /// s mod P, evaluation form.
    pub(crate) s_p: Poly<Eval>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SecretKey(params {:016x}, key {}, hidden)",
            self.params.hash(),
            self.key_id
        )
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.coeffs.zeroize();
        self.s_q.as_mut_slice().zeroize();
        self.s_p.as_mut_slice().zeroize();
    }
}
impl ZeroizeOnDrop for SecretKey {}

impl SecretKey {
    /// Samples a secret key from the OS-seeded CSPRNG, with the parameters' distribution.
    pub fn generate(params: &Arc<Parameters>) -> Result<Self> {
        let mut prng = Prng::from_os()?;
        Self::generate_with(params, &mut prng)
    }

    /// Samples with a given generator (tests use a seeded one; never do so in production).
    /// The [`KeyId`] is drawn from the OS either way (so the generator's stream, and seeded
    /// known answers, are unchanged).
    pub fn generate_with(params: &Arc<Parameters>, prng: &mut Prng) -> Result<Self> {
        let n = params.degree();
        let mut c = match params.literal().secret {
            SecretDistribution::UniformTernary => prng.ternary(n),
            SecretDistribution::HammingWeight(h) => prng.ternary_hamming(n, h)?,
        };
        let key = Self::from_ternary(params, &c);
        c.zeroize();
        key
    }

    /// Builds a key from explicit ternary coefficients (for known-answer tests and for
    /// importing keys), under a fresh [`KeyId`]; entries outside `{-1, 0, 1}` are an error.
    pub fn from_ternary(params: &Arc<Parameters>, coeffs: &[i64]) -> Result<Self> {
        Self::from_ternary_with_id(params, coeffs, KeyId::random()?)
    }

    /// [`from_ternary`](Self::from_ternary) keeping a known identifier (loading a saved key).
    pub fn from_ternary_with_id(
        params: &Arc<Parameters>,
        coeffs: &[i64],
        key_id: KeyId,
    ) -> Result<Self> {
        if let Some(bad) = coeffs.iter().find(|c| c.abs() > 1) {
            return Err(crate::Error::OutOfRange {
                what: "secret coefficient",
                found: bad.to_string(),
                allowed: "-1..=1".into(),
            });
        }
        let rq = params.ring_q();
        let rp = params.ring_p();
        let s_q = rq.to_eval(rq.from_signed(coeffs, rq.max_limbs())?)?;
        let s_p = rp.to_eval(rp.from_signed(coeffs, rp.max_limbs())?)?;
        Ok(Self {
            params: params.clone(),
            key_id,
            coeffs: coeffs.iter().map(|c| *c as i8).collect(),
            s_q,
            s_p,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<Parameters> {
        &self.params
    }

    /// The identifier every object under this secret carries.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The secret's coefficients. Named explicitly so that exporting a secret is never an
    /// accident; the caller is responsible for zeroizing the copy.
    pub fn to_ternary_coefficients(&self) -> Vec<i8> {
        self.coeffs.clone()
    }
}

/// A public key `(b, a) = (-a·s + e, a)` over `Q_L P`, evaluation form. Encryption works over
/// `Q_l P` and divides by `P` (ModDown), so fresh noise is only the rounding error (as in SEAL
/// and Lattigo). `a` can be regenerated from `seed` (seeded form for compact storage).
#[derive(Debug, Clone, PartialEq)]
pub struct PublicKey {
    pub(crate) params_hash: u64,
    pub(crate) key_id: Option<KeyId>,
    pub(crate) b: PolyQP,
    pub(crate) a: PolyQP,
    pub(crate) seed: Option<[u8; 32]>,
}

impl PublicKey {
    /// Generates a public key for `sk` with OS randomness.
    pub fn generate(sk: &SecretKey) -> Result<Self> {
        let mut prng = Prng::from_os()?;
        let seed = prng.seed();
        let params = sk.params();
        let (rq, rp) = (params.ring_q(), params.ring_p());
        let mut a_prng = Prng::from_seed(seed);
        let a = PolyQP {
            q: rq.uniform::<Eval>(&mut a_prng, rq.max_limbs())?,
            p: rp.uniform::<Eval>(&mut a_prng, rp.max_limbs())?,
        };
        let e = zeroize::Zeroizing::new(prng.gaussian(params.degree()));
        let mut bq = rq.mul(&a.q, &sk.s_q)?;
        rq.neg_assign(&mut bq)?;
        let eq = SecretPoly(rq.to_eval(rq.from_signed(&e, rq.max_limbs())?)?);
        rq.add_assign(&mut bq, &eq)?;
        let mut bp = rp.mul(&a.p, &sk.s_p)?;
        rp.neg_assign(&mut bp)?;
        let ep = SecretPoly(rp.to_eval(rp.from_signed(&e, rp.max_limbs())?)?);
        rp.add_assign(&mut bp, &ep)?;
        Ok(Self {
            params_hash: params.hash(),
            key_id: Some(sk.key_id),
            b: PolyQP { q: bq, p: bp },
            a,
            seed: Some(seed),
        })
    }

    /// Reassembles a public key from its parts, without a key identifier: give it one with
    /// [`with_key_id`](Self::with_key_id) (an [`Encryptor`](crate::ckks::Encryptor) refuses a
    /// key without one).
    pub fn from_parts(params_hash: u64, b: PolyQP, a: PolyQP, seed: Option<[u8; 32]>) -> Self {
        Self {
            params_hash,
            key_id: None,
            b,
            a,
            seed,
        }
    }

    /// Sets the identifier of the secret key this public key belongs to.
    pub fn with_key_id(mut self, key_id: impl Into<Option<KeyId>>) -> Self {
        self.key_id = key_id.into();
        self
    }

    /// The identifier of the secret key this public key belongs to.
    pub fn key_id(&self) -> Option<KeyId> {
        self.key_id
    }

    /// Hash of the parameters the key belongs to.
    pub fn params_hash(&self) -> u64 {
        self.params_hash
    }
    /// `b` component over `Q_L P`.
    pub fn b(&self) -> &PolyQP {
        &self.b
    }
    /// `a` component over `Q_L P`.
    pub fn a(&self) -> &PolyQP {
        &self.a
    }
    /// Seed of `a`, when it was generated from one.
    pub fn seed(&self) -> Option<[u8; 32]> {
        self.seed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::{Ciphertext, Decryptor, Encoder, Encryptor, Evaluator};
    use crate::rlwe::{EvalKeySet, KeyGenerator, ParametersLiteral, Security};
    use crate::Error;

    fn params() -> Arc<Parameters> {
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

    struct Party {
        sk: SecretKey,
        ct: Ciphertext,
        keys: EvalKeySet,
    }

    fn party(params: &Arc<Parameters>) -> Party {
        let sk = SecretKey::generate(params).unwrap();
        let ecd = Encoder::new(params).unwrap();
        let pt = ecd
            .encode(&[1.0, 2.0], params.max_level(), params.default_scale())
            .unwrap();
        let ct = Encryptor::new(params, PublicKey::generate(&sk).unwrap())
            .unwrap()
            .encrypt(&pt)
            .unwrap();
        let keys = EvalKeySet::generate(&sk, true, &[1], false).unwrap();
        Party { sk, ct, keys }
    }

    fn is_mismatch(r: Result<impl std::fmt::Debug>) -> Error {
        match r {
            Err(e @ Error::KeyMismatch { .. }) => e,
            other => panic!("expected KeyMismatch, got {other:?}"),
        }
    }

    /// Decrypting with the wrong secret key is a typed error naming both identifiers
    /// (it returned garbage before key identifiers).
    #[test]
    fn wrong_secret_key_is_a_typed_error() {
        let p = params();
        let (a, b) = (party(&p), party(&p));
        assert_ne!(a.sk.key_id(), b.sk.key_id());
        assert!(Decryptor::new(&a.sk).decrypt(&a.ct).is_ok());
        let e = is_mismatch(Decryptor::new(&b.sk).decrypt(&a.ct));
        let msg = e.to_string();
        assert!(msg.contains(&a.sk.key_id().to_string()), "{msg}");
        assert!(msg.contains(&b.sk.key_id().to_string()), "{msg}");
        // Symmetric encryption and seeded keys carry the id too.
        let pt = Decryptor::new(&a.sk).decrypt(&a.ct).unwrap();
        let sym = Decryptor::new(&a.sk).encrypt_symmetric(&pt).unwrap();
        assert_eq!(sym.key_id(), Some(a.sk.key_id()));
        is_mismatch(Decryptor::new(&b.sk).decrypt(&sym));
    }

    /// Combining ciphertexts under two keys, or key switching with another key's switching
    /// key, is refused.
    #[test]
    fn mixing_keys_in_the_evaluator_is_refused() {
        let p = params();
        let (a, b) = (party(&p), party(&p));
        let plain = Evaluator::new(&p).unwrap();
        is_mismatch(plain.add(&a.ct, &b.ct));
        is_mismatch(plain.sub(&a.ct, &b.ct));
        is_mismatch(plain.mul(&a.ct, &b.ct));
        assert!(plain.add(&a.ct, &a.ct).is_ok());
        // a's ciphertext with b's keys.
        let ev_b = Evaluator::with_keys(&p, Arc::new(b.keys.clone())).unwrap();
        let sq = plain.mul(&a.ct, &a.ct).unwrap();
        is_mismatch(ev_b.relinearize(&sq));
        is_mismatch(ev_b.rotate(&a.ct, 1));
        is_mismatch(ev_b.rotate_hoisted(&a.ct, &[1]));
        // With its own keys everything goes through and keeps the id.
        let ev_a = Evaluator::with_keys(&p, Arc::new(a.keys.clone())).unwrap();
        let r = ev_a.rotate(&ev_a.relinearize(&sq).unwrap(), 1).unwrap();
        assert_eq!(r.key_id(), Some(a.sk.key_id()));
        assert!(Decryptor::new(&a.sk).decrypt(&r).is_ok());
        // A key without an identifier (e.g. from raw storage) fails closed.
        let k = KeyGenerator::new(&a.sk).galois_key(5).unwrap();
        let bare = crate::rlwe::KeySwitchKey::from_storage(
            k.shape(),
            k.kind(),
            k.params_hash(),
            k.storage().clone(),
        )
        .unwrap();
        let mut set = EvalKeySet::new();
        set.insert(bare);
        let ev = Evaluator::with_keys(&p, Arc::new(set)).unwrap();
        is_mismatch(ev.rotate(&a.ct, 1));
    }

    /// Ciphertexts rebuilt from parts have no identifier: they cannot be decrypted or mixed
    /// with identified ones until `with_key_id` gives them one.
    #[test]
    fn ciphertexts_without_id_fail_closed() {
        let p = params();
        let a = party(&p);
        let bare = Ciphertext::from_parts(a.ct.parts().to_vec(), a.ct.scale(), p.hash()).unwrap();
        assert_eq!(bare.key_id(), None);
        is_mismatch(Decryptor::new(&a.sk).decrypt(&bare));
        is_mismatch(Evaluator::new(&p).unwrap().add(&a.ct, &bare));
        let bound = bare.with_key_id(a.ct.key_id());
        assert!(Decryptor::new(&a.sk).decrypt(&bound).is_ok());
        // A public key rebuilt from parts has none: the encryptor refuses it.
        let pk = PublicKey::generate(&a.sk).unwrap();
        let bare_pk = PublicKey::from_parts(pk.params_hash(), pk.b().clone(), pk.a().clone(), None);
        is_mismatch(Encryptor::new(&p, bare_pk.clone()));
        assert!(Encryptor::new(&p, bare_pk.with_key_id(a.sk.key_id())).is_ok());
    }

    /// Identifiers are random, not derived from the secret: the same seeded secret gets a
    /// fresh identifier each time.
    #[test]
    fn key_ids_are_random_and_nonzero() {
        let p = params();
        let a = SecretKey::generate_with(&p, &mut Prng::from_seed([9; 32])).unwrap();
        let b = SecretKey::generate_with(&p, &mut Prng::from_seed([9; 32])).unwrap();
        assert_eq!(a.to_ternary_coefficients(), b.to_ternary_coefficients());
        assert_ne!(a.key_id(), b.key_id());
        assert_eq!(KeyId::from_u64(0), None);
        assert_eq!(KeyId::from_u64(7).map(KeyId::get), Some(7));
    }

    /// Task 4: the secret-derived temporaries are of types that zeroize on drop.
    #[test]
    fn secret_temporaries_zeroize_on_drop() {
        fn zod<T: ZeroizeOnDrop>() {}
        zod::<SecretPoly>();
        zod::<SecretKey>();
        zod::<crate::math::Prng>();
        zod::<zeroize::Zeroizing<Vec<i64>>>();
    }
}
