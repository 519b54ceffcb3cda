//! Randomness: a ChaCha20 CSPRNG seeded by the operating system, and the distributions that
//! RLWE needs — uniform mod `q`, uniform ternary, ternary of fixed Hamming weight, and the
//! centred discrete Gaussian of standard deviation 3.2 bounded at 6σ (the HomomorphicEncryption.org
//! standard's error distribution).
//!
//! A [`Prng`] made from an explicit seed is reproducible: it exists for tests and for *public*
//! randomness that is expanded from a transmitted seed (the uniform half of seeded ciphertexts
//! and keys). Secrets are always drawn from [`Prng::from_os`].

use super::modulus::Modulus;
use crate::{Error, Result};
use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Standard deviation of the error distribution (HomomorphicEncryption.org standard).
pub const GAUSSIAN_SIGMA: f64 = 3.2;
/// Tail cut of the error distribution: samples lie in `[-19, 19]` (⌊6σ⌋).
pub const GAUSSIAN_BOUND: i64 = 19;

/// ChaCha20 stream cipher used as a cryptographically secure PRNG.
pub struct Prng {
    rng: ChaCha20Rng,
}

impl std::fmt::Debug for Prng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prng(ChaCha20, state hidden)")
    }
}

impl Prng {
    /// Seeds from the operating system (`getrandom`).
    pub fn from_os() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::Randomness(e.to_string()))?;
        let rng = ChaCha20Rng::from_seed(seed);
        zeroize::Zeroize::zeroize(&mut seed);
        Ok(Self { rng })
    }

    /// A reproducible stream from an explicit 32-byte seed. Use only for tests and for public
    /// randomness expanded from a transmitted seed — never for secrets.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            rng: ChaCha20Rng::from_seed(seed),
        }
    }

    /// A fresh 32-byte seed drawn from this generator.
    pub fn seed(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.rng.fill_bytes(&mut s);
        s
    }

    /// A uniform 64-bit word.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Uniform in `[0, bound)` by rejection sampling on the smallest covering power of two.
    #[inline]
    pub fn uniform_below(&mut self, bound: u64) -> u64 {
        if bound <= 1 {
            return 0;
        }
        let mask = u64::MAX >> (bound - 1).leading_zeros();
        loop {
            let x = self.next_u64() & mask;
            if x < bound {
                return x;
            }
        }
    }

    /// Fills `out` with values uniform modulo `m`.
    pub fn fill_uniform(&mut self, m: &Modulus, out: &mut [u64]) {
        for x in out.iter_mut() {
            *x = self.uniform_below(m.value());
        }
    }

    /// `n` coefficients uniform in `{-1, 0, 1}`.
    pub fn ternary(&mut self, n: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut w = self.next_u64();
            // 32 draws of 2 bits; reject the value 3 to stay exactly uniform.
            for _ in 0..32 {
                if out.len() == n {
                    break;
                }
                let t = w & 3;
                w >>= 2;
                if t < 3 {
                    out.push(t as i64 - 1);
                }
            }
        }
        out
    }

    /// `n` coefficients in `{-1, 0, 1}` with exactly `h` nonzero entries, positions uniform
    /// (partial Fisher–Yates) and signs uniform. Errors when `h > n`.
    pub fn ternary_hamming(&mut self, n: usize, h: usize) -> Result<Vec<i64>> {
        if h > n {
            return Err(Error::OutOfRange {
                what: "Hamming weight",
                found: h.to_string(),
                allowed: format!("<= {n}"),
            });
        }
        let mut idx: Vec<usize> = (0..n).collect();
        let mut out = vec![0i64; n];
        for i in 0..h {
            let j = i + self.uniform_below((n - i) as u64) as usize;
            idx.swap(i, j);
            out[idx[i]] = if self.next_u64() & 1 == 0 { 1 } else { -1 };
        }
        Ok(out)
    }

    /// `n` samples of the centred discrete Gaussian with σ = 3.2, cut at ±19, by inversion of
    /// the cumulative distribution table of `|x|` (probabilities in 64-bit fixed point) and a
    /// uniform sign.
    pub fn gaussian(&mut self, n: usize) -> Vec<i64> {
        let table = gaussian_cdt();
        (0..n)
            .map(|_| {
                let u = self.next_u64();
                let sign = self.next_u64() & 1;
                let k = table.iter().position(|c| u < *c).unwrap_or(table.len() - 1) as i64;
                if sign == 1 {
                    -k
                } else {
                    k
                }
            })
            .collect()
    }
}

/// Cumulative table of `P(|x| <= k)`, `k = 0..=19`, scaled to 2^64 (the last entry saturates).
fn gaussian_cdt() -> [u64; GAUSSIAN_BOUND as usize + 1] {
    let rho = |k: f64| (-k * k / (2.0 * GAUSSIAN_SIGMA * GAUSSIAN_SIGMA)).exp();
    let total: f64 = rho(0.0)
        + (1..=GAUSSIAN_BOUND)
            .map(|k| 2.0 * rho(k as f64))
            .sum::<f64>();
    let mut out = [u64::MAX; GAUSSIAN_BOUND as usize + 1];
    let mut acc = 0.0;
    for (k, o) in out.iter_mut().enumerate() {
        acc += if k == 0 {
            rho(0.0)
        } else {
            2.0 * rho(k as f64)
        } / total;
        *o = if k == GAUSSIAN_BOUND as usize {
            u64::MAX
        } else {
            (acc * 18446744073709551616.0).min(u64::MAX as f64) as u64
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: usize = 1 << 16;

    #[test]
    fn uniform_is_uniform() {
        let m = Modulus::new(1032193).unwrap();
        let mut p = Prng::from_seed([1; 32]);
        let mut v = vec![0u64; N];
        p.fill_uniform(&m, &mut v);
        assert!(v.iter().all(|x| *x < m.value()));
        // Chi-square over 16 equal buckets: 15 degrees of freedom, 99.9% quantile 37.7.
        let mut buckets = [0f64; 16];
        for x in &v {
            buckets[(*x * 16 / m.value()) as usize] += 1.0;
        }
        let e = N as f64 / 16.0;
        let chi2: f64 = buckets.iter().map(|b| (b - e).powi(2) / e).sum();
        assert!(chi2 < 37.7, "chi2 = {chi2}");
    }

    #[test]
    fn ternary_is_uniform() {
        let mut p = Prng::from_seed([2; 32]);
        let t = p.ternary(N);
        let counts = [-1i64, 0, 1].map(|v| t.iter().filter(|x| **x == v).count() as f64);
        let e = N as f64 / 3.0;
        let chi2: f64 = counts.iter().map(|c| (c - e).powi(2) / e).sum();
        assert!(chi2 < 13.8, "chi2 = {chi2} (2 dof, 99.9%)");
    }

    #[test]
    fn hamming_weight_is_exact() {
        let mut p = Prng::from_seed([3; 32]);
        let t = p.ternary_hamming(N, 192).unwrap();
        assert_eq!(t.iter().filter(|x| **x != 0).count(), 192);
        assert!(t.iter().all(|x| x.abs() <= 1));
        let plus = t.iter().filter(|x| **x == 1).count() as f64;
        assert!((plus - 96.0).abs() < 4.0 * 48f64.sqrt());
        assert!(p.ternary_hamming(10, 11).is_err());
    }

    #[test]
    fn gaussian_moments() {
        let mut p = Prng::from_seed([4; 32]);
        let g = p.gaussian(N);
        assert!(g.iter().all(|x| x.abs() <= GAUSSIAN_BOUND));
        let mean = g.iter().sum::<i64>() as f64 / N as f64;
        let var = g.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / N as f64;
        // Standard error of the mean is σ/sqrt(N) ≈ 0.0125; of the variance ≈ σ²·sqrt(2/N) ≈ 0.057.
        assert!(mean.abs() < 0.06, "mean {mean}");
        assert!(
            (var.sqrt() - GAUSSIAN_SIGMA).abs() < 0.05,
            "sigma {}",
            var.sqrt()
        );
    }

    /// Known answer: the seeded stream is part of the seeded-ciphertext format.
    #[test]
    fn kat_seeded_stream() {
        let mut p = Prng::from_seed([7; 32]);
        let m = Modulus::new(1099510054913).unwrap();
        let mut v = [0u64; 4];
        p.fill_uniform(&m, &mut v);
        assert_eq!(v, [375684989172, 741861356820, 89600915852, 30109079090]);
    }

    #[test]
    fn os_seeding_differs() {
        let mut a = Prng::from_os().unwrap();
        let mut b = Prng::from_os().unwrap();
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
