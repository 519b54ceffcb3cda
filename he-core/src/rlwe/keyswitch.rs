//! Hybrid key switching (Han–Ki 2020) and hoisting (Halevi–Shoup, CRYPTO 2018, §5).
//!
//! `key_switch(d, K)` returns `(c0, c1)` over `Q_l` with `c0 + c1·s ≈ d·s'` for the key `K`
//! from `s'` to `s`: ModUp of every digit of `d`, an inner product with the key's parts over
//! `Q_l P`, and ModDown. Hoisting splits this at the ModUp: the extended digits of `c1` are
//! computed once and permuted by each Galois automorphism, which commutes with ModUp.

use super::keys::KeySwitchKey;
use super::params::Parameters;
use crate::ring::keyswitch::PolyQP;
use crate::ring::{Eval, Poly};
use crate::{Error, Result};
use rayon::prelude::*;

/// The digits of `d` extended to `Q_l ∪ P`, evaluation form (the hoistable part).
#[derive(Debug, Clone)]
pub struct Decomposed {
    /// One extended polynomial per digit.
    pub digits: Vec<PolyQP>,
}

/// ModUp of every digit of `d` (evaluation form, level `l`).
pub fn decompose(params: &Parameters, d: &Poly<Eval>) -> Result<Decomposed> {
    let rq = params.ring_q();
    let ks = params.key_switch_basis();
    let mut copy = ks.pool().poly_for_overwrite::<Eval>(d.degree(), d.limbs());
    copy.as_mut_slice().copy_from_slice(d.as_slice());
    let d_coeff = rq.to_coeff(copy)?;
    let digits = (0..ks.digits(d.level()))
        .into_par_iter()
        .map(|j| ks.mod_up(&d_coeff, d, j))
        .collect::<Result<Vec<_>>>();
    ks.pool().give_poly(d_coeff);
    Ok(Decomposed { digits: digits? })
}

/// Checks that `key` belongs to `params` (hash and shape: a full key or a level-limited one,
/// [`KeyShape::check`](super::KeyShape::check)) and serves `level`
/// ([`Error::KeyLevelExceeded`](crate::Error::KeyLevelExceeded) naming the key's maximum level
/// otherwise).
fn check_key(params: &Parameters, key: &KeySwitchKey, level: usize) -> Result<()> {
    params.check_hash(key.params_hash())?;
    key.shape().check(params)?;
    key.check_level(level)
}

/// Inner product of (possibly permuted) extended digits with the key, before ModDown:
/// `(Σ_j d̃_j · b_j, Σ_j d̃_j · a_j)` over `Q_l ∪ P`, i.e. `P` times the key-switched pair. Double
/// hoisting (Bossuat et al., Eurocrypt 2021, §5) sums such pairs and divides by `P` once.
pub fn key_switch_decomposed_qp(
    params: &Parameters,
    dec: &Decomposed,
    key: &KeySwitchKey,
    perm: Option<&[u32]>,
) -> Result<[PolyQP; 2]> {
    let Some(first) = dec.digits.first() else {
        return Err(Error::InvalidParameters("no digits to key-switch".into()));
    };
    let level = first.q.level();
    check_key(params, key, level)?;
    let ql = level + 1;
    let keys = (0..dec.digits.len())
        .map(|j| Ok([key.part(j, 0, ql)?, key.part(j, 1, ql)?]))
        .collect::<Result<Vec<_>>>()?;
    params
        .key_switch_basis()
        .inner_product(&dec.digits, &keys, perm)
}

/// Inner product of (possibly permuted) extended digits with the key, then ModDown:
/// `(Σ_j d̃_j · b_j, Σ_j d̃_j · a_j) / P`. `perm` applies an evaluation-form automorphism to
/// each digit on the fly (hoisted rotations).
pub fn key_switch_decomposed(
    params: &Parameters,
    dec: &Decomposed,
    key: &KeySwitchKey,
    perm: Option<&[u32]>,
) -> Result<(Poly<Eval>, Poly<Eval>)> {
    let [a0, a1] = key_switch_decomposed_qp(params, dec, key, perm)?;
    let ks = params.key_switch_basis();
    let (r0, r1) = rayon::join(|| ks.mod_down(a0), || ks.mod_down(a1));
    Ok((r0?, r1?))
}
/// Key switching of `d` (evaluation form) with `key`: `(c0, c1)` with `c0 + c1·s ≈ d·s'`.
pub fn key_switch(
    params: &Parameters,
    d: &Poly<Eval>,
    key: &KeySwitchKey,
) -> Result<(Poly<Eval>, Poly<Eval>)> {
    check_key(params, key, d.level())?;
    let dec = decompose(params, d)?;
    let out = key_switch_decomposed(params, &dec, key, None);
    dec.recycle(params);
    out
}

impl Decomposed {
    /// Gives the digits' buffers back to the key-switching pool of `params` (after the last
    /// key switch that uses them).
    pub fn recycle(self, params: &Parameters) {
        let ks = params.key_switch_basis();
        for d in self.digits {
            ks.recycle(d);
        }
    }
}
