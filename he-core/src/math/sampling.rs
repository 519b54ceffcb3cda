//! Randomness: a ChaCha20 CSPRNG seeded by the operating system, and the distributions that
//! RLWE needs — uniform mod `q`, uniform ternary, ternary of fixed Hamming weight, and the
//! centred discrete Gaussian of standard deviation 3.2 bounded at 6σ (the HomomorphicEncryption.org
//! standard's error distribution).
//!
//! A [`Prng`] made from an explicit seed is reproducible: it exists for tests and for *public*
//! randomness that is expanded from a transmitted seed (the uniform half of seeded ciphertexts
//! and keys). Secrets are always drawn from [`Prng::from_os`].
//!
//! The generator's state (ChaCha20 key, counter and buffered keystream) is zeroized when it is
//! dropped ([`ZeroizeOnDrop`]). The Gaussian sampler runs in time independent of the sample:
//! the cumulative table is scanned in full with branch-free comparisons.

use super::modulus::Modulus;
use crate::{Error, Result};
use chacha20::rand_core::{Rng, SeedableRng};
use chacha20::ChaCha20Rng;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Standard deviation of the error distribution (HomomorphicEncryption.org standard).
pub const GAUSSIAN_SIGMA: f64 = 3.2;
/// Tail cut of the error distribution: samples lie in `[-19, 19]` (⌊6σ⌋).
pub const GAUSSIAN_BOUND: i64 = 19;

/// ChaCha20 stream cipher used as a cryptographically secure PRNG (the same stream as
/// `rand_chacha`'s `ChaCha20Rng`: 20 rounds, 64-bit block counter, stream 0). Its state is
/// zeroized on drop.
pub struct Prng {
    rng: ChaCha20Rng,
}

// `ChaCha20Rng` zeroizes its key, counter and keystream buffer in its own `Drop`.
impl ZeroizeOnDrop for Prng {}

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
        seed.zeroize();
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
        // The positions are secret: the index permutation is zeroized after use.
        let mut idx = zeroize::Zeroizing::new((0..n).collect::<Vec<usize>>());
        let mut out = vec![0i64; n];
        for i in 0..h {
            let j = i + self.uniform_below((n - i) as u64) as usize;
            idx.swap(i, j);
            if let Some(o) = idx.get(i).and_then(|&p| out.get_mut(p)) {
                // ±1 from the low bit, without a branch.
                *o = 1 - 2 * (self.next_u64() & 1) as i64;
            }
        }
        Ok(out)
    }

    /// `n` samples of the centred discrete Gaussian with σ = 3.2, cut at ±19, by inversion of
    /// the cumulative distribution table of `|x|` (probabilities in 64-bit fixed point) and a
    /// uniform sign.
    ///
    /// Constant time: `|x|` is the number of table entries `≤ u`, counted over the *whole*
    /// table with branch-free comparisons (the borrow of `u - c`), and the sign is applied
    /// with a mask; no step depends on the sample's value. The result is the same as the
    /// first index with `u < c` (the table is increasing), so the stream of samples is
    /// unchanged.
    pub fn gaussian(&mut self, n: usize) -> Vec<i64> {
        let table = gaussian_cdt();
        // The last entry saturates at 2^64 - 1: it is the cut, not a comparison.
        let (cmp, _) = table.split_at(GAUSSIAN_BOUND as usize);
        (0..n)
            .map(|_| {
                let u = self.next_u64();
                let sign = self.next_u64() & 1;
                let k = gaussian_magnitude_ct(cmp, u) as i64;
                let mask = -(sign as i64);
                (k ^ mask) - mask
            })
            .collect()
    }
}

/// `#{c ∈ table : c ≤ u}`, scanning every entry; each comparison is the borrow bit of
/// `u − c` (no data-dependent branch or early exit).
#[inline]
fn gaussian_magnitude_ct(table: &[u64], u: u64) -> u64 {
    let mut k = 0u64;
    for &c in table {
        let (_, borrow) = u.overflowing_sub(c);
        k += 1 ^ (borrow as u64);
    }
    k
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

    /// The constant-time table scan gives exactly the early-exit lookup's answer (the
    /// reference), for every `u`, so the distribution is unchanged.
    #[test]
    fn gaussian_scan_matches_early_exit_reference() {
        let table = gaussian_cdt();
        let reference =
            |u: u64| table.iter().position(|c| u < *c).unwrap_or(table.len() - 1) as u64;
        let cmp = &table[..GAUSSIAN_BOUND as usize];
        let mut p = Prng::from_seed([5; 32]);
        for &c in &table {
            for u in [c.wrapping_sub(1), c, c.wrapping_add(1)] {
                assert_eq!(gaussian_magnitude_ct(cmp, u), reference(u), "u = {u}");
            }
        }
        for u in [0, 1, u64::MAX - 1, u64::MAX] {
            assert_eq!(gaussian_magnitude_ct(cmp, u), reference(u), "u = {u}");
        }
        for _ in 0..100_000 {
            let u = p.next_u64();
            assert_eq!(gaussian_magnitude_ct(cmp, u), reference(u));
        }
    }

    /// Chi-square goodness of fit of 2^18 samples against the discrete Gaussian of σ = 3.2
    /// (probabilities ∝ exp(-x²/2σ²) on [-19, 19]); tails with fewer than 5 expected merged.
    #[test]
    fn gaussian_chi_square_against_sigma() {
        let samples = 1usize << 18;
        let mut p = Prng::from_seed([6; 32]);
        let g = p.gaussian(samples);
        let b = GAUSSIAN_BOUND;
        let rho = |k: i64| (-((k * k) as f64) / (2.0 * GAUSSIAN_SIGMA * GAUSSIAN_SIGMA)).exp();
        let total: f64 = (-b..=b).map(rho).sum();
        // Bins: ≤ -t, -t+1 ..= t-1, ≥ t, with t the first |k| whose expected count is < 5.
        let t = (0..=b)
            .find(|k| rho(*k) / total * (samples as f64) < 5.0)
            .unwrap_or(b);
        let bin = |x: i64| (x.clamp(-t, t) + t) as usize;
        let mut obs = vec![0f64; (2 * t + 1) as usize];
        let mut exp = vec![0f64; (2 * t + 1) as usize];
        for x in &g {
            obs[bin(*x)] += 1.0;
        }
        for k in -b..=b {
            exp[bin(k)] += rho(k) / total * samples as f64;
        }
        let chi2: f64 = obs.iter().zip(&exp).map(|(o, e)| (o - e).powi(2) / e).sum();
        // 99.9% quantile by Wilson–Hilferty (z = 3.09).
        let dof = (obs.len() - 1) as f64;
        let q = dof * (1.0 - 2.0 / (9.0 * dof) + 3.09 * (2.0 / (9.0 * dof)).sqrt()).powi(3);
        assert!(
            chi2 < q,
            "chi2 = {chi2:.1} over {dof} dof, 99.9% quantile {q:.1}"
        );
        // Moments: mean 0, standard deviation 3.2 (standard errors 0.006 and 0.005).
        let mean = g.iter().sum::<i64>() as f64 / samples as f64;
        let sd = (g.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / samples as f64).sqrt();
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((sd - GAUSSIAN_SIGMA).abs() < 0.03, "sd {sd}");
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
