//! Noise-flooding decryption: protection against key recovery from shared decryptions
//! (IND-CPA-D).
//!
//! CKKS decryption returns `m + e`, and the error `e` is a function of the secret key. If
//! decrypted results are ever shown to the party that evaluated the ciphertext, Li and
//! Micciancio (Eurocrypt 2021) recover the secret from a handful of them. The remedy
//! (Li, Micciancio, Schultz, Sorrell, CRYPTO 2022, "Securing approximate homomorphic encryption
//! using differential privacy") is to add, before decoding, fresh Gaussian noise that is large
//! against `e`:
//!
//! ```text
//! σ_flood = 2^(s/2 + 1) · √t · B,     B ≥ ‖e‖₂ (coefficient domain)
//! ```
//!
//! for `s` bits of statistical security over `t` shared decryptions of related ciphertexts
//! (LMSS Theorem 3 gives `log2 σ = log2 B + s/2 + 1` for one decryption; the `√t` factor is
//! the conservative composition of their Rényi bound). The defaults, `s = 30`, `t = 1`, are
//! OpenFHE's for its `NOISE_FLOODING_DECRYPT` mode.
//!
//! The bound `B` is a [`NoiseEstimate`]: measured on an estimation run with known expected
//! values ([`NoiseEstimate::from_reference`], OpenFHE's approach), from a per-slot error bound
//! of a noise model ([`NoiseEstimate::from_slot_error_bound`], e.g. nn's cleartext simulator),
//! or given directly. Every estimate is raised to [`NoiseEstimate::parameter_floor`] (the
//! rescaling noise no ciphertext at that level can be below) and rounded up to whole bits, so
//! that the flooding level reveals at most which bit the estimate fell in.
//!
//! **Precision cost.** Each slot receives flooding noise of standard deviation
//! `σ_flood·√(N/2)/Δ` per real component, about `s/2 + 1 + log2(√(N/2)·√t)` bits above the
//! noise already there: 23–24 bits at `N = 2^14..2^16`, `s = 30`. [`FloodReport`] states the
//! figures of each decryption. Results must therefore leave a scale of `Δ ≥ 2^50` or so if
//! they are to keep 15–20 bits.

use super::ciphertext::{Ciphertext, Plaintext};
use super::encryptor::Decryptor;
use crate::math::Prng;
use crate::rlwe::Parameters;
use crate::{Error, Result};
use num_complex::Complex64;

/// Statistical security parameter `s` and number of shared decryptions `t` of the flooding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodingConfig {
    /// `s`: the flooding noise is `2^(s/2+1)` times the error bound.
    pub statistical_security: u32,
    /// `t`: how many decryptions of related ciphertexts may be shown to an adversary.
    pub decryptions: u64,
}

impl Default for FloodingConfig {
    /// `s = 30`, `t = 1` (OpenFHE's defaults for `NOISE_FLOODING_DECRYPT`).
    fn default() -> Self {
        Self {
            statistical_security: 30,
            decryptions: 1,
        }
    }
}

impl FloodingConfig {
    fn check(&self) -> Result<()> {
        if !(1..=128).contains(&self.statistical_security) || self.decryptions == 0 {
            return Err(Error::OutOfRange {
                what: "noise-flooding configuration",
                found: format!(
                    "s = {}, t = {}",
                    self.statistical_security, self.decryptions
                ),
                allowed: "s in 1..=128 bits, t >= 1 decryptions".into(),
            });
        }
        Ok(())
    }

    /// `log2(σ_flood / B) = s/2 + 1 + log2(t)/2`.
    pub fn log2_factor(&self) -> f64 {
        self.statistical_security as f64 / 2.0 + 1.0 + (self.decryptions as f64).log2() / 2.0
    }

    /// What flooding a ciphertext of scale `scale` under `params` with bound `estimate` adds
    /// (the figures [`Decryptor::decrypt_flooded`] reports), without decrypting: planners use
    /// it to predict the precision left.
    pub fn report(&self, params: &Parameters, estimate: &NoiseEstimate, scale: f64) -> FloodReport {
        let floor = NoiseEstimate::parameter_floor(params);
        let noise = estimate.log2_l2.max(floor.log2_l2).ceil();
        let flood_log2_sigma = noise + self.log2_factor();
        FloodReport {
            noise_log2_l2: noise,
            flood_log2_sigma,
            slot_log2_sigma: flood_log2_sigma + (params.slots() as f64).log2() / 2.0 - scale.log2(),
        }
    }
}

/// A bound on the ℓ2 norm of a ciphertext's error polynomial (coefficient domain, in units of
/// the integer coefficients, i.e. before dividing by the scale), as `log2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseEstimate {
    log2_l2: f64,
}

impl NoiseEstimate {
    /// A bound given directly, `log2 ‖e‖₂`.
    pub fn from_log2_l2_norm(log2_l2: f64) -> Result<Self> {
        if !log2_l2.is_finite() || log2_l2 < 0.0 {
            return Err(Error::OutOfRange {
                what: "noise estimate log2(‖e‖₂)",
                found: log2_l2.to_string(),
                allowed: "finite, >= 0".into(),
            });
        }
        Ok(Self { log2_l2 })
    }

    /// From an estimation run (OpenFHE's approach): the decoded slots of a ciphertext computed
    /// by the same circuit and parameters, against the exact expected values, at scale
    /// `scale`. With `k < N/2` slots given, the error energy is extrapolated to all slots.
    ///
    /// By Parseval on the canonical embedding, `‖e‖₂ = Δ·√(2/N)·‖z‖₂` for the slot errors `z`
    /// over all `N/2` slots.
    pub fn from_reference(
        params: &Parameters,
        decoded: &[Complex64],
        expected: &[Complex64],
        scale: f64,
    ) -> Result<Self> {
        if decoded.len() != expected.len() || decoded.is_empty() {
            return Err(Error::LengthMismatch {
                what: "decoded vs expected values for the noise estimate",
                expected: expected.len().max(1),
                found: decoded.len(),
            });
        }
        let energy: f64 = decoded
            .iter()
            .zip(expected)
            .map(|(d, x)| (d - x).norm_sqr())
            .sum();
        Self::from_slot_energy(params, energy, decoded.len(), scale)
    }

    /// From a bound `ε` on the absolute error of every slot (value units) at scale `scale`,
    /// e.g. a noise model's: `‖e‖₂ ≤ Δ·ε`.
    pub fn from_slot_error_bound(max_abs_error: f64, scale: f64) -> Result<Self> {
        if !(max_abs_error.is_finite() && max_abs_error >= 0.0 && scale.is_finite() && scale >= 1.0)
        {
            return Err(Error::OutOfRange {
                what: "slot error bound / scale",
                found: format!("{max_abs_error} / {scale}"),
                allowed: "finite, error >= 0, scale >= 1".into(),
            });
        }
        Self::from_log2_l2_norm((max_abs_error * scale).max(1.0).log2())
    }

    fn from_slot_energy(params: &Parameters, energy: f64, k: usize, scale: f64) -> Result<Self> {
        let slots = params.slots() as f64;
        let total = energy * slots / k as f64;
        let l2 = scale * (2.0 / params.degree() as f64).sqrt() * total.sqrt();
        if !l2.is_finite() {
            return Err(Error::OutOfRange {
                what: "measured noise",
                found: l2.to_string(),
                allowed: "finite".into(),
            });
        }
        Self::from_log2_l2_norm(l2.max(1.0).log2())
    }

    /// The least error any ciphertext that was rescaled (or key-switched) carries:
    /// `‖r_0 + r_1·s‖₂` for the rounding `r_i` uniform in `[-1/2, 1/2]`, about
    /// `√(N(1+h)/12)` with `h = 2N/3` (uniform ternary secret).
    pub fn parameter_floor(params: &Parameters) -> Self {
        let n = params.degree() as f64;
        let h = 2.0 * n / 3.0;
        Self {
            log2_l2: (n * (1.0 + h) / 12.0).sqrt().log2(),
        }
    }

    /// `log2` of the bound on `‖e‖₂`.
    pub fn log2_l2_norm(&self) -> f64 {
        self.log2_l2
    }
}

/// What one noise-flooded decryption added.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodReport {
    /// `log2 B` used (the estimate, raised to the floor and rounded up to whole bits).
    pub noise_log2_l2: f64,
    /// `log2 σ_flood`, per coefficient.
    pub flood_log2_sigma: f64,
    /// `log2` of the flooding noise's standard deviation per slot and real component, in value
    /// units (`σ_flood·√(N/2)/Δ`): the precision a decoded slot keeps is about its negative.
    pub slot_log2_sigma: f64,
}

impl Decryptor<'_> {
    /// Decrypts with noise flooding (see the [module documentation](self)): the plaintext
    /// carries, on top of the ciphertext's error, a fresh discrete Gaussian of standard
    /// deviation `2^(s/2+1)·√t·B` per coefficient, drawn from an OS-seeded ChaCha20 stream.
    ///
    /// Errors: [`Error::OutOfRange`] for a bad configuration, or when the flooding noise would
    /// not fit below `Q_l/8` at the ciphertext's level (not enough modulus left to flood).
    pub fn decrypt_flooded(
        &self,
        ct: &Ciphertext,
        estimate: &NoiseEstimate,
        config: &FloodingConfig,
    ) -> Result<(Plaintext, FloodReport)> {
        let mut prng = Prng::from_os()?;
        self.decrypt_flooded_with(ct, estimate, config, &mut prng)
    }

    /// [`decrypt_flooded`](Self::decrypt_flooded) with a given generator (tests only: the
    /// flooding noise must come from an OS-seeded generator to protect anything).
    pub fn decrypt_flooded_with(
        &self,
        ct: &Ciphertext,
        estimate: &NoiseEstimate,
        config: &FloodingConfig,
        prng: &mut Prng,
    ) -> Result<(Plaintext, FloodReport)> {
        config.check()?;
        let pt = self.decrypt(ct)?;
        let params = self.secret_key().params();
        let report = config.report(params, estimate, pt.scale());
        let log2_sigma = report.flood_log2_sigma;
        let log2_q = params.log_q_at(ct.level());
        // 8σ tail bound (probability < 2^-46 per coefficient), below Q_l/8 with room for the
        // message; and the sampler's i128 range.
        if log2_sigma + 3.0 > (log2_q - 3.0).min(120.0) {
            return Err(Error::OutOfRange {
                what: "noise-flooding standard deviation",
                found: format!("2^{log2_sigma:.1} (level {})", ct.level()),
                allowed: format!(
                    "< 2^{:.1}: decrypt at a level with a larger modulus, or lower the noise",
                    (log2_q - 6.0).min(117.0)
                ),
            });
        }
        let n = params.degree();
        let flood: Vec<i128> = (0..n).map(|_| wide_gaussian(prng, log2_sigma)).collect();
        let rq = params.ring_q();
        let f = rq.to_eval(rq.from_i128(&flood, ct.level() + 1)?)?;
        let mut poly = pt.poly().clone();
        rq.add_assign(&mut poly, &f)?;
        Ok((Plaintext::new(poly, pt.scale(), params.hash()), report))
    }
}

/// A uniform `f64` in `(0, 1]` with 53 random bits.
fn unit(prng: &mut Prng) -> f64 {
    ((prng.next_u64() >> 11) + 1) as f64 * 2f64.powi(-53)
}

/// One sample of a centred Gaussian of standard deviation `2^log2_sigma`, rounded to an integer.
///
/// Box–Muller gives 53 significant bits; where `σ > 2^40` the bits below `σ·2^-40` are filled
/// by an independent uniform, so every bit of the sample is random and the result is within
/// statistical distance `~2^-40` of the rounded Gaussian.
fn wide_gaussian(prng: &mut Prng, log2_sigma: f64) -> i128 {
    let (u1, u2) = (unit(prng), unit(prng));
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let low_bits = (log2_sigma - 40.0).floor().max(0.0) as u32;
    let sigma = 2f64.powf(log2_sigma - low_bits as f64);
    let hi = (z * sigma).round() as i128;
    if low_bits == 0 {
        return hi;
    }
    let mask: u128 = (1u128 << low_bits) - 1;
    let r = ((prng.next_u64() as u128) << 64 | prng.next_u64() as u128) & mask;
    (hi << low_bits) + r as i128 - (1i128 << (low_bits - 1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::ckks::{Encoder, Encryptor, Evaluator};
    use crate::rlwe::{
        EvalKeySet, ParametersLiteral, PublicKey, SecretDistribution, SecretKey, Security,
    };
    use std::sync::Arc;

    fn setup() -> (Arc<Parameters>, SecretKey) {
        let params = Parameters::new(ParametersLiteral {
            log_n: 12,
            log_q: vec![60, 45, 45],
            log_p: vec![61],
            alpha: None,
            log_scale: 45.0,
            secret: SecretDistribution::UniformTernary,
            security: Security::InsecureForTesting,
        })
        .unwrap();
        let sk = SecretKey::generate(&params).unwrap();
        (params, sk)
    }

    #[test]
    fn sampler_has_the_requested_deviation() {
        let mut prng = Prng::from_seed([7; 32]);
        for log2_sigma in [3.0, 20.0, 55.0, 90.0] {
            let n = 20000;
            let xs: Vec<f64> = (0..n)
                .map(|_| wide_gaussian(&mut prng, log2_sigma) as f64)
                .collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
            let sd = var.sqrt();
            let want = 2f64.powf(log2_sigma);
            assert!((sd / want - 1.0).abs() < 0.03, "σ 2^{log2_sigma}: got {sd}");
            assert!(mean.abs() < 4.0 * want / (n as f64).sqrt(), "mean {mean}");
        }
        // The low bits are random too (not multiples of a power of two).
        let odd = (0..1000)
            .filter(|_| wide_gaussian(&mut prng, 90.0) & 1 == 1)
            .count();
        assert!((400..600).contains(&odd), "{odd}");
    }

    #[test]
    fn flooding_hides_the_error_and_costs_the_stated_precision() {
        let (params, sk) = setup();
        let pk = PublicKey::generate(&sk).unwrap();
        let enc = Encoder::new(&params).unwrap();
        let keys = Arc::new(EvalKeySet::generate(&sk, true, &[], false).unwrap());
        let ev = Evaluator::with_keys(&params, keys).unwrap();
        let encryptor = Encryptor::new(&params, pk).unwrap();
        let slots = params.slots();
        let x: Vec<f64> = (0..slots)
            .map(|i| ((i * 37) % 101) as f64 / 101.0 - 0.5)
            .collect();
        let scale = 2f64.powi(45);
        let ct = encryptor
            .encrypt(&enc.encode(&x, 2, scale).unwrap())
            .unwrap();
        let sq = ev.rescale(&ev.mul_relin(&ct, &ct).unwrap()).unwrap();
        let want: Vec<Complex64> = x.iter().map(|v| Complex64::new(v * v, 0.0)).collect();
        let d = Decryptor::new(&sk);
        let plain = enc.decode_complex(&d.decrypt(&sq).unwrap()).unwrap();
        let est = NoiseEstimate::from_reference(&params, &plain, &want, sq.scale()).unwrap();
        let bits = |v: &[Complex64]| {
            let err = v
                .iter()
                .zip(&want)
                .map(|(a, b)| (a.re - b.re).abs())
                .fold(0.0, f64::max);
            -err.log2()
        };
        let before = bits(&plain);
        let (pt, report) = d
            .decrypt_flooded(&sq, &est, &FloodingConfig::default())
            .unwrap();
        let flooded = enc.decode_complex(&pt).unwrap();
        let after = bits(&flooded);
        // The slot noise now has the stated deviation (the 6σ max over 2048 slots).
        let sd = (flooded
            .iter()
            .zip(&want)
            .map(|(a, b)| (a.re - b.re).powi(2))
            .sum::<f64>()
            / slots as f64)
            .sqrt();
        assert!(
            (sd.log2() - report.slot_log2_sigma).abs() < 0.1,
            "measured 2^{} vs stated 2^{}",
            sd.log2(),
            report.slot_log2_sigma
        );
        // At least s/2 + 1 bits lost, and the flooding dominates the original error.
        assert!(
            before - after > 16.0,
            "before {before:.1}, after {after:.1}"
        );
        assert!(report.flood_log2_sigma - report.noise_log2_l2 >= 16.0);
        eprintln!(
            "N=2^12, Δ=2^45: {before:.1} bits before flooding, {after:.1} after (noise 2^{:.1}, σ 2^{:.1})",
            report.noise_log2_l2, report.flood_log2_sigma
        );
    }

    #[test]
    fn estimates_are_raised_to_the_floor_and_checked() {
        let (params, sk) = setup();
        let enc = Encoder::new(&params).unwrap();
        let d = Decryptor::new(&sk);
        let ct = d
            .encrypt_symmetric(&enc.encode(&[1.0], 2, 2f64.powi(40)).unwrap())
            .unwrap();
        let tiny = NoiseEstimate::from_log2_l2_norm(0.0).unwrap();
        let (_, r) = d
            .decrypt_flooded(&ct, &tiny, &FloodingConfig::default())
            .unwrap();
        assert_eq!(
            r.noise_log2_l2,
            NoiseEstimate::parameter_floor(&params)
                .log2_l2_norm()
                .ceil()
        );
        assert!(NoiseEstimate::from_log2_l2_norm(f64::NAN).is_err());
        assert!(NoiseEstimate::from_slot_error_bound(-1.0, 2.0).is_err());
        let bad = FloodingConfig {
            statistical_security: 0,
            decryptions: 1,
        };
        assert!(d.decrypt_flooded(&ct, &tiny, &bad).is_err());
        // Too much noise for the level: refused, not wrapped.
        let huge = NoiseEstimate::from_log2_l2_norm(140.0).unwrap();
        let e = d
            .decrypt_flooded(&ct, &huge, &FloodingConfig::default())
            .unwrap_err();
        assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
    }
}
