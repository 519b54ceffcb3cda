//! Arithmetic modulo a word-sized prime `q < 2^62`.
//!
//! Two reductions, as in SEAL and Harvey's NTT paper:
//! - **Barrett** (Barrett 1986; the two-word variant of SEAL's `barrett_reduce_128`): reduces any
//!   128-bit product with a precomputed `floor(2^128 / q)`;
//! - **Shoup** (Shoup's NTL trick, Harvey 2014 "Faster arithmetic for number-theoretic
//!   transforms", Alg. 2): multiplication by a *fixed* operand `w` with the precomputed
//!   `w' = floor(w * 2^64 / q)`, one high product and one low product, result in `[0, 2q)` before
//!   the final correction (the lazy form that the NTT and key switching accumulate on).

use crate::{Error, Result};

/// Largest modulus bit size supported: products of two residues plus lazy sums must fit in
/// 128 bits, and Shoup's lazy results in `[0, 2q)` must fit in 63 bits.
pub const MAX_MODULUS_BITS: u32 = 62;

/// A prime modulus `q` with its Barrett constants.
///
/// Construct with [`Modulus::new`], which checks `2 <= q < 2^62`; every method then assumes
/// its residue arguments are `< q` (or `< 2q`, `< 4q` where stated for lazy variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Modulus {
    q: u64,
    /// floor(2^128 / q), low word.
    ratio_lo: u64,
    /// floor(2^128 / q), high word.
    ratio_hi: u64,
    /// `q^{-1} mod 2^64` for odd `q` (Montgomery reduction), 0 for even `q`.
    q_inv64: u64,
    bits: u32,
}

impl Modulus {
    /// Wraps `q`, checking `2 <= q < 2^62`. Primality is checked by the callers that need it
    /// (prime generation, parameter validation), so that this stays cheap.
    pub fn new(q: u64) -> Result<Self> {
        if q < 2 || q >> MAX_MODULUS_BITS != 0 {
            return Err(Error::InvalidModulus {
                modulus: q,
                reason: format!("expected 2 <= q < 2^{MAX_MODULUS_BITS}"),
            });
        }
        // floor(2^128 / q) = floor((2^128 - 1) / q) as q is not a power of two dividing 2^128,
        // except q = 2^k, where the difference does not matter for Barrett's error bound.
        let ratio = u128::MAX / q as u128;
        // Newton's iteration for the inverse mod 2^64: q·q ≡ 1 (mod 8) for odd q, and each
        // step doubles the number of correct low bits (3 → 96).
        let mut inv = q;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(q.wrapping_mul(inv)));
        }
        Ok(Self {
            q,
            ratio_lo: ratio as u64,
            ratio_hi: (ratio >> 64) as u64,
            q_inv64: if q & 1 == 1 { inv } else { 0 },
            bits: 64 - q.leading_zeros(),
        })
    }

    /// The modulus value.
    #[inline(always)]
    pub fn value(&self) -> u64 {
        self.q
    }

    /// Bit length of `q`.
    #[inline(always)]
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// `(a + b) mod q` for `a, b < q`.
    #[inline(always)]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        let s = a + b;
        std::hint::select_unpredictable(s >= self.q, s.wrapping_sub(self.q), s)
    }

    /// `(a - b) mod q` for `a, b < q`.
    #[inline(always)]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        // Branch-free (residues are uniform, so a branch would be a coin flip).
        let d = a.wrapping_sub(b);
        std::hint::select_unpredictable(a < b, d.wrapping_add(self.q), d)
    }

    /// `-a mod q` for `a < q`.
    #[inline(always)]
    pub fn neg(&self, a: u64) -> u64 {
        if a == 0 {
            0
        } else {
            self.q - a
        }
    }

    /// Barrett reduction of a 128-bit value to `[0, q)`.
    #[inline(always)]
    pub fn reduce_u128(&self, x: u128) -> u64 {
        let x_lo = x as u64;
        let x_hi = (x >> 64) as u64;
        // Estimate floor(x * ratio / 2^128) with the three partial products that matter.
        let carry = ((x_lo as u128 * self.ratio_lo as u128) >> 64) as u64;
        let mid = x_lo as u128 * self.ratio_hi as u128;
        let mid2 = x_hi as u128 * self.ratio_lo as u128;
        let (sum, c1) = (mid as u64).overflowing_add(carry);
        let (_, c2) = sum.overflowing_add(mid2 as u64);
        let quot = (mid >> 64) as u64 + (mid2 >> 64) as u64 + c1 as u64 + c2 as u64;
        let quot = quot.wrapping_add(x_hi.wrapping_mul(self.ratio_hi));
        let r = x_lo.wrapping_sub(quot.wrapping_mul(self.q));
        std::hint::select_unpredictable(r >= self.q, r.wrapping_sub(self.q), r)
    }

    /// Montgomery reduction (Montgomery, Math. Comp. 1985, "REDC"): `x·2^{-64} mod q` in
    /// `[0, q)` for odd `q` and `x < q·2^64`. Two multiplications instead of Barrett's five on
    /// 128-bit input: the lazy RNS sums of base conversion and key switching end with it, their
    /// constants pre-multiplied by `2^64 mod q` (see [`Modulus::to_montgomery`]).
    #[inline(always)]
    pub fn redc(&self, x: u128) -> u64 {
        let lo = x as u64;
        let hi = (x >> 64) as u64;
        // m·q ≡ lo (mod 2^64), so x - m·q is a multiple of 2^64 and its top word is the result.
        let m = lo.wrapping_mul(self.q_inv64);
        let mh = ((m as u128 * self.q as u128) >> 64) as u64;
        // Branch-free: the comparison is a coin flip on uniform data.
        let r = hi.wrapping_sub(mh);
        std::hint::select_unpredictable(hi < mh, r.wrapping_add(self.q), r)
    }

    /// `a·2^64 mod q`, the Montgomery form of `a` (any `u64`).
    #[inline(always)]
    pub fn to_montgomery(&self, a: u64) -> u64 {
        self.reduce_u128((a as u128) << 64)
    }

    /// Whether [`Modulus::redc`] applies (odd `q`).
    #[inline(always)]
    pub fn has_montgomery(&self) -> bool {
        self.q & 1 == 1
    }

    /// Barrett reduction of any `u64` to `[0, q)`.
    #[inline(always)]
    pub fn reduce(&self, x: u64) -> u64 {
        let quot = ((x as u128 * self.ratio_hi as u128) >> 64) as u64;
        let r = x.wrapping_sub(quot.wrapping_mul(self.q));
        std::hint::select_unpredictable(r >= self.q, r.wrapping_sub(self.q), r)
    }

    /// Reduction of a signed integer to `[0, q)`.
    #[inline(always)]
    pub fn reduce_i64(&self, x: i64) -> u64 {
        let r = self.reduce(x.unsigned_abs());
        if x < 0 {
            self.neg(r)
        } else {
            r
        }
    }

    /// Reduction of a signed 128-bit integer to `[0, q)`.
    #[inline(always)]
    pub fn reduce_i128(&self, x: i128) -> u64 {
        let r = self.reduce_u128(x.unsigned_abs());
        if x < 0 {
            self.neg(r)
        } else {
            r
        }
    }

    /// `(a * b) mod q` by Barrett reduction, for `a, b < q`.
    #[inline(always)]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce_u128(a as u128 * b as u128)
    }

    /// Shoup's precomputation `floor(w * 2^64 / q)` for a fixed multiplicand `w < q`.
    #[inline(always)]
    pub fn shoup(&self, w: u64) -> u64 {
        (((w as u128) << 64) / self.q as u128) as u64
    }

    /// Lazy Shoup product: `a * w mod q` in `[0, 2q)`, for any `a < 2^64` and `w < q` with
    /// `w_shoup = self.shoup(w)` (Harvey 2014, Alg. 2).
    #[inline(always)]
    pub fn mul_shoup_lazy(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let quot = ((a as u128 * w_shoup as u128) >> 64) as u64;
        a.wrapping_mul(w).wrapping_sub(quot.wrapping_mul(self.q))
    }

    /// Shoup product `a * w mod q` in `[0, q)`.
    #[inline(always)]
    pub fn mul_shoup(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let r = self.mul_shoup_lazy(a, w, w_shoup);
        std::hint::select_unpredictable(r >= self.q, r.wrapping_sub(self.q), r)
    }

    /// `a^e mod q` by square and multiply.
    pub fn pow(&self, a: u64, mut e: u64) -> u64 {
        let mut base = self.reduce(a);
        let mut acc = 1 % self.q;
        while e > 0 {
            if e & 1 == 1 {
                acc = self.mul(acc, base);
            }
            base = self.mul(base, base);
            e >>= 1;
        }
        acc
    }

    /// Multiplicative inverse of `a` modulo the prime `q` (Fermat), or an error when `a ≡ 0`.
    pub fn inv(&self, a: u64) -> Result<u64> {
        let a = self.reduce(a);
        if a == 0 {
            return Err(Error::OutOfRange {
                what: "value to invert",
                found: "0".into(),
                allowed: format!("nonzero residues mod {}", self.q),
            });
        }
        Ok(self.pow(a, self.q - 2))
    }

    /// Centred representative of `a < q` in `(-q/2, q/2]`.
    #[inline(always)]
    pub fn center(&self, a: u64) -> i64 {
        if a > self.q >> 1 {
            a as i64 - self.q as i64
        } else {
            a as i64
        }
    }

    /// Multiplies every element of `a` in place by the scalar `w` (Shoup constant `w_shoup`),
    /// reduced to `[0, q)`.
    pub fn slice_mul_scalar_shoup(&self, a: &mut [u64], w: u64, w_shoup: u64) {
        for x in a.iter_mut() {
            *x = self.mul_shoup(*x, w, w_shoup);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn moduli() -> impl Strategy<Value = u64> {
        prop_oneof![
            2u64..1 << 20,
            (1u64 << 40)..(1 << 41),
            (1u64 << 61)..(1 << 62)
        ]
    }

    proptest! {
        #[test]
        fn barrett_matches_u128_remainder(q in moduli(), a in any::<u64>(), b in any::<u64>()) {
            let m = Modulus::new(q).unwrap();
            let (a, b) = (a % q, b % q);
            prop_assert_eq!(m.mul(a, b), ((a as u128 * b as u128) % q as u128) as u64);
            prop_assert_eq!(m.reduce(a.wrapping_mul(b) ^ b), (a.wrapping_mul(b) ^ b) % q);
        }

        #[test]
        fn redc_matches(q in moduli(), x in any::<u128>(), a in any::<u64>()) {
            let m = Modulus::new(q | 1).unwrap();
            let q = m.value();
            let x = x % ((q as u128) << 64);
            // x·2^-64 ≡ redc(x)  ⟺  redc(x)·2^64 ≡ x (mod q).
            let r = m.redc(x);
            prop_assert!(r < q);
            prop_assert_eq!(((r as u128) << 64) % q as u128, x % q as u128);
            prop_assert_eq!(m.redc(m.to_montgomery(a % q) as u128), a % q);
        }

        #[test]
        fn reduce_u128_any(q in moduli(), x in any::<u128>()) {
            let m = Modulus::new(q).unwrap();
            prop_assert_eq!(m.reduce_u128(x), (x % q as u128) as u64);
        }

        #[test]
        fn shoup_matches(q in moduli(), a in any::<u64>(), w in any::<u64>()) {
            let m = Modulus::new(q).unwrap();
            let w = w % q;
            let lazy = m.mul_shoup_lazy(a, w, m.shoup(w));
            prop_assert!(lazy < 2 * q);
            prop_assert_eq!(m.mul_shoup(a, w, m.shoup(w)), ((a as u128 * w as u128) % q as u128) as u64);
        }

        #[test]
        fn signed_reduction(q in moduli(), x in any::<i64>()) {
            let m = Modulus::new(q).unwrap();
            prop_assert_eq!(m.reduce_i64(x) as i128, (x as i128).rem_euclid(q as i128));
            prop_assert_eq!(m.reduce_i128(x as i128 * 3), ((x as i128) * 3).rem_euclid(q as i128) as u64);
        }
    }

    #[test]
    fn rejects_bad_moduli() {
        assert!(Modulus::new(0).is_err());
        assert!(Modulus::new(1).is_err());
        assert!(Modulus::new(1 << 62).is_err());
        let m = Modulus::new(97).unwrap();
        assert!(m.inv(0).is_err());
        assert_eq!(m.mul(m.inv(5).unwrap(), 5), 1);
    }
}
