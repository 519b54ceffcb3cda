//! Exact composition of RNS coefficients for decoding, at any level.
//!
//! A decrypted coefficient `x` is known by its residues modulo `q_0..q_l`. Decoding needs
//! `x / Δ` for the centred representative `x ∈ (-Q_l/2, Q_l/2]`. When `Q_l < 2^120` the encoder
//! composes `x` through two auxiliary 61-bit primes into an `i128` (exact, fast). Above that,
//! an `i128` cannot hold every `x`, and composing modulo the auxiliary primes alone would
//! silently wrap a coefficient of more than `2^121`; this module composes `x` exactly in
//! multi-word arithmetic instead (`x = Σ y_i·Q̂_i − v·Q`, `y_i = [r_i·Q̂_i^{-1}]_{q_i}`,
//! `v = ⌊Σ y_i/q_i⌋` estimated in `f64` and corrected exactly), `O(l²)` word products per
//! coefficient.
//!
//! Both paths refuse a coefficient of magnitude `≥ Q_l/4`: a correctly decryptable value sits
//! far below the modulus, and a coefficient within two bits of `Q_l/2` means the value has
//! wrapped modulo `Q_l` (a scale grown past the modulus, or a value too large for it).

use crate::math::Modulus;
use crate::{Error, Result};

/// Multi-word composition tables for one level (`Q_l ≥ 2^120`).
#[derive(Debug, Clone)]
pub(crate) struct WideComposer {
    moduli: Vec<Modulus>,
    /// `Q̂_i^{-1} mod q_i`.
    qhat_inv: Vec<u64>,
    /// `Q̂_i = Q_l / q_i`, little-endian words, each `words` long.
    qhat: Vec<Vec<u64>>,
    /// `Q_l`, `words` long.
    q: Vec<u64>,
    /// `⌊Q_l/2⌋`.
    q_half: Vec<u64>,
    /// `⌊Q_l/4⌋`.
    q_quarter: Vec<u64>,
    /// `log2(Q_l)`.
    log2_q: f64,
    words: usize,
}

/// Little-endian multi-word helpers (all slices the same length).
fn mul_word(a: &[u64], w: u64, out: &mut [u64]) {
    let mut carry = 0u128;
    for (o, x) in out.iter_mut().zip(a) {
        let t = (*x as u128) * (w as u128) + carry;
        *o = t as u64;
        carry = t >> 64;
    }
}

/// `acc += a·w` (acc one word longer than needed; overflow beyond `acc` is dropped).
fn mul_add_word(acc: &mut [u64], a: &[u64], w: u64) {
    let mut carry = 0u128;
    let mut it = acc.iter_mut();
    for x in a {
        let Some(o) = it.next() else { return };
        let t = (*x as u128) * (w as u128) + (*o as u128) + carry;
        *o = t as u64;
        carry = t >> 64;
    }
    for o in it {
        if carry == 0 {
            break;
        }
        let t = (*o as u128) + carry;
        *o = t as u64;
        carry = t >> 64;
    }
}

/// `a -= b`, returns the borrow.
fn sub_in_place(a: &mut [u64], b: &[u64]) -> bool {
    let mut borrow = false;
    for (x, y) in a.iter_mut().zip(b) {
        let (d1, b1) = x.overflowing_sub(*y);
        let (d2, b2) = d1.overflowing_sub(borrow as u64);
        *x = d2;
        borrow = b1 || b2;
    }
    borrow
}

/// `a += b`, returns the carry.
fn add_in_place(a: &mut [u64], b: &[u64]) -> bool {
    let mut carry = false;
    for (x, y) in a.iter_mut().zip(b) {
        let (s1, c1) = x.overflowing_add(*y);
        let (s2, c2) = s1.overflowing_add(carry as u64);
        *x = s2;
        carry = c1 || c2;
    }
    carry
}

/// `a > b` as unsigned numbers.
fn greater(a: &[u64], b: &[u64]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x > y;
        }
    }
    false
}

fn shr(a: &[u64], k: u32) -> Vec<u64> {
    let mut out = vec![0u64; a.len()];
    for (i, o) in out.iter_mut().enumerate() {
        let lo = a.get(i).copied().unwrap_or(0) >> k;
        let hi = a.get(i + 1).copied().unwrap_or(0);
        *o = if k == 0 { lo } else { lo | (hi << (64 - k)) };
    }
    out
}

/// `2^e` for any `e` in f64's exponent range, without the overflow of `powi` in one step.
fn scale_by_pow2(x: f64, e: i32) -> f64 {
    let mut r = x;
    let mut e = e;
    while e > 1000 {
        r *= 2f64.powi(1000);
        e -= 1000;
    }
    r * 2f64.powi(e)
}

/// An unsigned multi-word number `a` times `factor`, as `f64` (rounded), without overflowing
/// on the way when `a` itself is beyond f64's range; also `log2(a)`.
fn to_f64_scaled(a: &[u64], factor: f64) -> (f64, f64) {
    let Some(top) = a.iter().rposition(|w| *w != 0) else {
        return (0.0, f64::NEG_INFINITY);
    };
    if top == 0 {
        let v = a.first().copied().unwrap_or(0) as f64;
        return (v * factor, v.log2());
    }
    let hi = a.get(top).copied().unwrap_or(0) as u128;
    let lo = a.get(top - 1).copied().unwrap_or(0) as u128;
    let m = ((hi << 64) | lo) as f64;
    let e = 64 * (top as i32 - 1);
    (scale_by_pow2(m * factor, e), m.log2() + e as f64)
}

impl WideComposer {
    /// Tables for the moduli of one level.
    pub(crate) fn new(moduli: &[Modulus]) -> Result<Self> {
        let bits: u32 = moduli.iter().map(|m| 64 - m.value().leading_zeros()).sum();
        let words = (bits as usize).div_ceil(64) + 1;
        let mut q = vec![0u64; words];
        if let Some(w) = q.first_mut() {
            *w = 1;
        }
        let mut tmp = vec![0u64; words];
        for m in moduli {
            mul_word(&q, m.value(), &mut tmp);
            std::mem::swap(&mut q, &mut tmp);
        }
        let mut qhat = Vec::with_capacity(moduli.len());
        let mut qhat_inv = Vec::with_capacity(moduli.len());
        for (i, mi) in moduli.iter().enumerate() {
            let mut h = vec![0u64; words];
            if let Some(w) = h.first_mut() {
                *w = 1;
            }
            let mut inv = 1u64;
            for (j, mj) in moduli.iter().enumerate() {
                if i != j {
                    mul_word(&h, mj.value(), &mut tmp);
                    std::mem::swap(&mut h, &mut tmp);
                    inv = mi.mul(inv, mi.reduce(mj.value()));
                }
            }
            qhat.push(h);
            qhat_inv.push(mi.inv(inv)?);
        }
        let log2_q = moduli.iter().map(|m| (m.value() as f64).log2()).sum();
        Ok(Self {
            moduli: moduli.to_vec(),
            qhat_inv,
            q_half: shr(&q, 1),
            q_quarter: shr(&q, 2),
            qhat,
            q,
            log2_q,
            words,
        })
    }

    /// `x·inv_scale` for each coefficient, `x` the centred representative of the residues
    /// (`residues[i·n + c]` is coefficient `c` modulo `q_i`).
    pub(crate) fn compose_scaled(
        &self,
        residues: &[u64],
        n: usize,
        inv_scale: f64,
    ) -> Result<Vec<f64>> {
        let l = self.moduli.len();
        if residues.len() != l * n {
            return Err(Error::LengthMismatch {
                what: "residues to compose",
                expected: l * n,
                found: residues.len(),
            });
        }
        let mut out = Vec::with_capacity(n);
        let mut acc = vec![0u64; self.words];
        let mut vq = vec![0u64; self.words];
        let mut y = vec![0u64; l];
        for c in 0..n {
            acc.iter_mut().for_each(|w| *w = 0);
            let mut frac = 0f64;
            for (i, ((m, inv), h)) in self
                .moduli
                .iter()
                .zip(&self.qhat_inv)
                .zip(&self.qhat)
                .enumerate()
            {
                let r = residues.get(i * n + c).copied().unwrap_or(0);
                let yi = m.mul(m.reduce(r), *inv);
                if let Some(s) = y.get_mut(i) {
                    *s = yi;
                }
                frac += yi as f64 / m.value() as f64;
                mul_add_word(&mut acc, h, yi);
            }
            // acc = x + v·Q with 0 <= v < l; subtract the estimate and correct by one step.
            let v = frac.floor().max(0.0) as u64;
            mul_word(&self.q, v, &mut vq);
            if sub_in_place(&mut acc, &vq) {
                add_in_place(&mut acc, &self.q);
            }
            while !greater(&self.q, &acc) {
                sub_in_place(&mut acc, &self.q);
            }
            // Centre: x > Q/2 stands for x - Q.
            let negative = greater(&acc, &self.q_half);
            if negative {
                let mut m = self.q.clone();
                sub_in_place(&mut m, &acc);
                acc.copy_from_slice(&m);
            }
            let (mag, log2_mag) = to_f64_scaled(&acc, inv_scale);
            if !greater(&self.q_quarter, &acc) {
                return Err(wrapped(log2_mag, self.log2_q));
            }
            let v = if negative { -mag } else { mag };
            if !v.is_finite() {
                return Err(Error::OutOfRange {
                    what: "decoded coefficient",
                    found: format!("2^{:.1}", log2_mag + inv_scale.log2()),
                    allowed: "a finite f64 (the scale is too small for this value)".into(),
                });
            }
            out.push(v);
        }
        Ok(out)
    }
}

/// The error for a coefficient within two bits of the modulus.
pub(crate) fn wrapped(log2_found: f64, log2_q: f64) -> Error {
    Error::OutOfRange {
        what: "decrypted coefficient",
        found: format!("2^{log2_found:.1}"),
        allowed: format!(
            "< Q_l/4 = 2^{:.1}; a larger coefficient means the value wrapped modulo Q_l \
             (scale grown past the modulus without rescaling, or a value too large for it)",
            log2_q - 2.0
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::math::primes::ntt_primes;
    use crate::math::RnsBasis;
    use num_bigint::{BigInt, BigUint, Sign};
    use num_traits::{One, ToPrimitive, Zero};
    use proptest::prelude::*;

    fn basis(count: usize, bits: u32) -> Vec<Modulus> {
        ntt_primes(bits, count, 1 << 10, &[])
            .unwrap()
            .into_iter()
            .map(|q| Modulus::new(q).unwrap())
            .collect()
    }

    fn residues_of(xs: &[BigInt], moduli: &[Modulus]) -> Vec<u64> {
        let n = xs.len();
        let mut r = vec![0u64; moduli.len() * n];
        for (i, m) in moduli.iter().enumerate() {
            let q = BigInt::from(m.value());
            for (c, x) in xs.iter().enumerate() {
                let v = ((x % &q) + &q) % &q;
                r[i * n + c] = v.to_u64().unwrap();
            }
        }
        r
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Against a big-integer reference, for magnitudes up to just below Q/4.
        #[test]
        fn composes_exactly(limbs in 2usize..12, bits in prop::sample::select(vec![40u32, 50, 60]),
                            seed in any::<u64>(), log_frac in 0u32..200) {
            let moduli = basis(limbs, bits);
            let q: BigUint = moduli.iter().fold(BigUint::one(), |a, m| a * m.value());
            let wc = WideComposer::new(&moduli).unwrap();
            let mut rng = crate::math::Prng::from_seed([seed as u8; 32]);
            let _ = seed;
            let bound = (&q >> 2u32) >> (log_frac as usize % (q.bits() as usize - 2));
            let bound = if bound.is_zero() { BigUint::one() } else { bound };
            let xs: Vec<BigInt> = (0..16)
                .map(|k| {
                    let bytes: Vec<u8> = (0..(bound.bits() as usize / 8 + 8))
                        .map(|_| rng.next_u64() as u8)
                        .collect();
                    let m = BigUint::from_bytes_le(&bytes) % &bound;
                    BigInt::from_biguint(if k % 2 == 0 { Sign::Plus } else { Sign::Minus }, m)
                })
                .collect();
            let r = residues_of(&xs, &moduli);
            let inv = 2f64.powi(-40);
            let got = wc.compose_scaled(&r, xs.len(), inv).unwrap();
            for (g, x) in got.iter().zip(&xs) {
                let want = x.to_f64().unwrap() * inv;
                prop_assert!((g - want).abs() <= want.abs() * 1e-15 + 1e-300, "{g} vs {want}");
            }
        }
    }

    #[test]
    fn refuses_wrapped_coefficients() {
        let moduli = basis(4, 60);
        let q: BigUint = moduli.iter().fold(BigUint::one(), |a, m| a * m.value());
        let wc = WideComposer::new(&moduli).unwrap();
        let at_quarter = BigInt::from_biguint(Sign::Plus, (&q >> 2u32) + 1u32);
        let r = residues_of(&[at_quarter], &moduli);
        let e = wc.compose_scaled(&r, 1, 1.0).unwrap_err();
        assert!(e.to_string().contains("wrapped"), "{e}");
        let below = BigInt::from_biguint(Sign::Minus, (&q >> 2u32) - 1u32);
        let r = residues_of(std::slice::from_ref(&below), &moduli);
        let got = wc.compose_scaled(&r, 1, 1.0).unwrap();
        assert!((got[0] - below.to_f64().unwrap()).abs() < got[0].abs() * 1e-15);
    }

    #[test]
    fn very_large_moduli_stay_finite_or_refuse() {
        // 30 primes of 60 bits: Q ≈ 2^1800, beyond f64's range.
        let moduli = basis(30, 60);
        let wc = WideComposer::new(&moduli).unwrap();
        let x = BigInt::from(1u8) << 1500u32;
        let r = residues_of(&[x, BigInt::from(-12345)], &moduli);
        let got = wc.compose_scaled(&r, 2, 2f64.powi(-1000)).unwrap();
        assert!((got[0] - 2f64.powi(500)).abs() < 2f64.powi(450));
        assert!((got[1] + 12345.0 * 2f64.powi(-1000)).abs() < 1e-300);
        let e = wc.compose_scaled(&r, 2, 1.0).unwrap_err();
        assert!(e.to_string().contains("finite"), "{e}");
        let _ = RnsBasis::new(&[moduli[0].value()]).unwrap();
    }
}
