//! Secret and public keys.

use super::params::{Parameters, SecretDistribution};
use crate::math::Prng;
use crate::ring::keyswitch::PolyQP;
use crate::ring::{Eval, Poly};
use crate::Result;
use std::sync::Arc;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The secret key `s ∈ {-1,0,1}^N`, kept in evaluation form over `Q` and `P`.
///
/// Zeroized on drop; `Debug` prints nothing of it; it has no serialization by accident — the
/// only way out is the explicitly named [`SecretKey::to_ternary_coefficients`].
pub struct SecretKey {
    params: Arc<Parameters>,
    coeffs: Vec<i8>,
    /// s mod Q_L, evaluation form.
    pub(crate) s_q: Poly<Eval>,
    /// s mod P, evaluation form.
    pub(crate) s_p: Poly<Eval>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(params {:016x}, hidden)", self.params.hash())
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
    /// importing keys); entries outside `{-1, 0, 1}` are an error.
    pub fn from_ternary(params: &Arc<Parameters>, coeffs: &[i64]) -> Result<Self> {
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
            coeffs: coeffs.iter().map(|c| *c as i8).collect(),
            s_q,
            s_p,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<Parameters> {
        &self.params
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
        let e = prng.gaussian(params.degree());
        let mut bq = rq.mul(&a.q, &sk.s_q)?;
        rq.neg_assign(&mut bq)?;
        rq.add_assign(&mut bq, &rq.to_eval(rq.from_signed(&e, rq.max_limbs())?)?)?;
        let mut bp = rp.mul(&a.p, &sk.s_p)?;
        rp.neg_assign(&mut bp)?;
        rp.add_assign(&mut bp, &rp.to_eval(rp.from_signed(&e, rp.max_limbs())?)?)?;
        Ok(Self {
            params_hash: params.hash(),
            b: PolyQP { q: bq, p: bp },
            a,
            seed: Some(seed),
        })
    }

    /// Reassembles a public key from its parts (deserialization).
    pub fn from_parts(params_hash: u64, b: PolyQP, a: PolyQP, seed: Option<[u8; 32]>) -> Self {
        Self {
            params_hash,
            b,
            a,
            seed,
        }
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
