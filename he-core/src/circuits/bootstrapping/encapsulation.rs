//! Sparse-secret encapsulation (Bossuat, Troncoso-Pastoriza, Hubaux, "Bootstrapping for
//! approximate homomorphic encryption with negligible failure-probability by using sparse-secret
//! encapsulation", ACNS 2022).
//!
//! After ModRaise, a ciphertext decrypts to `m + q_0·I(X)` where `I` grows with the secret's
//! Hamming weight: for a dense ternary secret at `N = 2^16`, `|I|` reaches several hundred, and
//! EvalMod would need a very wide interval. Instead, the level-0 ciphertext is first switched to
//! an ephemeral sparse secret `s'` (weight `h`, e.g. 32), so that `|I| ≤ K` with `K ≈ 16` and a
//! negligible failure probability; after ModRaise it is switched back to the dense `s` with an
//! ordinary key over `Q_L·P` ([`KeyKind::SparseToDense`](crate::rlwe::KeyKind)).
//!
//! The dense-to-sparse key lives only modulo `q_0·p_0` (one ciphertext prime, one special
//! prime): an RLWE sample under a sparse secret must have a small modulus to stay secure, and
//! this key is only ever used at level 0. It is held here, not in the evaluation-key provider.

use crate::math::Prng;
use crate::ring::{Coeff, Eval, Poly, RingContext};
use crate::rlwe::{Parameters, SecretKey};
use crate::{Error, Result};
use std::sync::Arc;
use zeroize::Zeroize;

/// The dense-to-sparse switching key modulo `q_0·p_0`: `b = −a·s' + e + p_0·s`, in evaluation
/// form over the two-prime ring.
#[derive(Debug, Clone)]
pub struct EncapsulationKey {
    params_hash: u64,
    /// The dense secret's identifier.
    key_id: crate::rlwe::KeyId,
    ring: Arc<RingContext>,
    b: Poly<Eval>,
    a: Poly<Eval>,
}

/// The two-prime ring `Z_{q_0 p_0}[X]/(X^N + 1)`.
fn small_ring(params: &Parameters) -> Result<Arc<RingContext>> {
    let (Some(q0), Some(p0)) = (params.q().first(), params.p().first()) else {
        return Err(Error::InvalidParameters(
            "encapsulation needs a ciphertext prime and a special prime".into(),
        ));
    };
    RingContext::new(params.degree(), &[*q0, *p0])
}

/// Samples the ephemeral sparse secret `s'` of Hamming weight `h`.
pub fn sparse_secret(params: &Arc<Parameters>, h: usize) -> Result<SecretKey> {
    let mut prng = Prng::from_os()?;
    let mut c = prng.ternary_hamming(params.degree(), h)?;
    let key = SecretKey::from_ternary(params, &c);
    c.zeroize();
    key
}

impl EncapsulationKey {
    /// The key from `s` (dense) to `s_sparse`, modulo `q_0·p_0`.
    pub fn generate(sk: &SecretKey, s_sparse: &SecretKey) -> Result<Self> {
        let params = sk.params();
        let ring = small_ring(params)?;
        let n = params.degree();
        let mut prng = Prng::from_os()?;
        let a = ring.uniform::<Eval>(&mut prng, 2)?;
        let mut dense = sk.to_ternary_coefficients();
        let mut sparse = s_sparse.to_ternary_coefficients();
        let to_i64 = |v: &[i8]| v.iter().map(|x| *x as i64).collect::<Vec<i64>>();
        let (mut d64, mut s64) = (to_i64(&dense), to_i64(&sparse));
        dense.zeroize();
        sparse.zeroize();
        let mut ps = ring.to_eval(ring.from_signed(&d64, 2)?)?;
        let mut s_sp = ring.to_eval(ring.from_signed(&s64, 2)?)?;
        d64.zeroize();
        s64.zeroize();
        // b = -a·s' + e + p0·s; p0·s vanishes mod p0.
        let mut b = ring.mul(&a, &s_sp)?;
        ring.neg_assign(&mut b)?;
        let e = ring.to_eval(ring.from_signed(&prng.gaussian(n), 2)?)?;
        ring.add_assign(&mut b, &e)?;
        let p0 = ring.moduli()[1].value();
        let q0m = ring.moduli()[0];
        // p0·s in place of s (secret-derived: zeroized like the secrets).
        ring.mul_rns_scalar_assign(&mut ps, &[q0m.reduce(p0), 0])?;
        ring.add_assign(&mut b, &ps)?;
        s_sp.as_mut_slice().zeroize();
        ps.as_mut_slice().zeroize();
        Ok(Self {
            params_hash: params.hash(),
            key_id: sk.key_id(),
            ring,
            b,
            a,
        })
    }

    /// Identifier of the dense secret key the ciphertexts it switches are under.
    pub fn key_id(&self) -> crate::rlwe::KeyId {
        self.key_id
    }

    /// Bytes of the key.
    pub fn bytes(&self) -> usize {
        8 * (self.a.as_slice().len() + self.b.as_slice().len())
    }

    /// Switches a level-0 ciphertext `(c_0, c_1)` (evaluation form mod `q_0`) from `s` to `s'`:
    /// `(c_0 + ⌊c_1·b/p_0⌉, ⌊c_1·a/p_0⌉)`, the ModUp of `c_1` to `p_0` lifting its centred
    /// representative.
    pub fn switch(
        &self,
        params: &Parameters,
        c0: &Poly<Eval>,
        c1: &Poly<Eval>,
    ) -> Result<(Poly<Eval>, Poly<Eval>)> {
        params.check_hash(self.params_hash)?;
        if c0.limbs() != 1 || c1.limbs() != 1 {
            return Err(Error::LevelMismatch {
                left_what: "ciphertext to encapsulate",
                left: c1.level(),
                right_what: "encapsulation (level 0)",
                right: 0,
            });
        }
        let rq = params.ring_q();
        let ring = &self.ring;
        let [q0, p0] = [ring.moduli()[0], ring.moduli()[1]];
        let c1c: Poly<Coeff> = rq.to_coeff(c1.clone())?;
        let centred: Vec<i64> = c1c.as_slice().iter().map(|x| q0.center(*x)).collect();
        let d = ring.to_eval(ring.from_signed(&centred, 2)?)?;
        let u0 = ring.to_coeff(ring.mul(&d, &self.b)?)?;
        let u1 = ring.to_coeff(ring.mul(&d, &self.a)?)?;
        let p0_inv = q0.inv(q0.reduce(p0.value()))?;
        let n = params.degree();
        // ModDown by p0: (x_q0 − [x]_p0 centred) · p0^{-1} mod q0.
        let down = |u: &Poly<Coeff>| -> Result<Poly<Eval>> {
            let s = u.as_slice();
            let vals: Vec<i64> = (0..n)
                .map(|i| {
                    let xq = s[i];
                    let xp = p0.center(s[n + i]);
                    q0.center(q0.mul(q0.sub(xq, q0.reduce_i64(xp)), p0_inv))
                })
                .collect();
            rq.to_eval(rq.from_signed(&vals, 1)?)
        };
        let mut out0 = down(&u0)?;
        rq.add_assign(&mut out0, c0)?;
        Ok((out0, down(&u1)?))
    }
}
