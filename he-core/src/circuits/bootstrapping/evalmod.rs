//! EvalMod: the homomorphic reduction modulo `q_0` (Cheon, Han, Kim, Kim, Song, Eurocrypt 2018;
//! Han, Ki, CT-RSA 2020; Bossuat et al., Eurocrypt 2021, §4).
//!
//! After CoeffToSlot, a slot holds `y = t/K` with `t = I + ε`, `I` an integer with `|I| < K`
//! and `ε = k·m/q_0` the (scaled-up) message coefficient over `q_0`, `|ε| ≪ 1`. EvalMod outputs
//! `A·sin(2πt) ≈ 2πA·ε`, with the amplitude `A = R/(2π)` (`R = q_0/(kΔ)`, the message ratio)
//! chosen so that the result is the message coefficient in units of the input scale `Δ`.
//!
//! `sin(2πt) = cos(2π(t − 1/4))` is computed as a Chebyshev interpolant of the scaled cosine
//! `a_0·cos(2π(K·y − 1/4)/2^r)` on `[-1, 1]`, followed by `r` double-angle steps. The
//! amplitudes are folded into the squarings (Bossuat et al. 2021): with `ŷ_i = a_i·cos(2^i θ)`,
//! `ŷ_i² − a_i²/2 = (a_i²/2)·cos(2^{i+1} θ)`, so `a_{i+1} = a_i²/2` and each step is one squaring
//! and one constant subtraction, with no constant multiplication (and no extra level). The
//! chain is solved backwards from `a_r = A`.
//!
//! **Arcsine correction** (optional, [`ArcSine::Degree3`], two more levels): the sine's error
//! relative to the message, `(2π·ε)²/6`, is small for the tiny coefficients of random data but
//! reaches `2^-16` for a coefficient of `0.5` at `R = 2^8` (a constant in every slot). With
//! `v = A·sin(2πt)`, `A·arcsin(v/A) ≈ v + v³/(6A²)` removes it. The constant `1/(6A²)` costs no
//! multiplication: `v²` is reinterpreted at scale `scale(v²)·6A²` (the same data, the value
//! times `1/(6A²)`), and the scale of `v` is solved so that `v·(v²/(6A²))` lands on the output
//! scale; `v` itself is brought to the output scale by a multiplication by 1 in the level the
//! cube consumes anyway.
//!
//! Scales are exact: the output scale is chosen, and the scale each squaring must start from is
//! solved backwards (`S_i = sqrt(S_{i+1}·q_{l_i})`), so the Chebyshev evaluation's target scale
//! is `S_0`.

use crate::circuits::polynomial::{Polynomial, PolynomialEvaluator};
use crate::ckks::{Ciphertext, Evaluator};
use crate::{Error, Result};
use std::f64::consts::PI;

/// The choices of EvalMod.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalModConfig {
    /// Bound `K` on `|t|` (`|I| < K` with overwhelming probability; 16 for a weight-32 secret).
    pub k_bound: f64,
    /// Number of double-angle steps `r`.
    pub double_angle: u32,
    /// Degree of the Chebyshev interpolant of the scaled cosine.
    pub degree: usize,
    /// `log2 R`: the message ratio `q_0/(kΔ)` the input is scaled up to before ModRaise.
    pub log_message_ratio: f64,
    /// The arcsine correction.
    pub arcsine: ArcSine,
}

/// Whether EvalMod corrects the sine by an arcsine (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArcSine {
    /// No correction: error `(2πε)²/6` relative to each coefficient.
    #[default]
    None,
    /// `v + v³/(6A²)`: error `O(ε⁴)`; two more levels.
    Degree3,
}

impl EvalModConfig {
    /// Levels consumed: the interpolant's depth, one per double-angle step, two for the
    /// arcsine correction.
    pub fn depth(&self) -> usize {
        crate::circuits::polynomial::depth_for_degree(self.degree)
            + self.double_angle as usize
            + match self.arcsine {
                ArcSine::None => 0,
                ArcSine::Degree3 => 2,
            }
    }
}

/// The EvalMod circuit for one configuration: the interpolant for `a_0 = 1` (scaled at run time
/// by the amplitude the input's message ratio calls for).
#[derive(Debug, Clone)]
pub struct EvalMod {
    config: EvalModConfig,
    /// `cos(2π(K·y − 1/4)/2^r)` on `[-1, 1]`.
    base: Polynomial,
}

impl EvalMod {
    /// Interpolates the scaled cosine.
    pub fn new(config: EvalModConfig) -> Result<Self> {
        if !(config.k_bound >= 1.0 && config.k_bound.is_finite()) || config.double_angle > 8 {
            return Err(Error::OutOfRange {
                what: "EvalMod K / double-angle steps",
                found: format!("K = {}, r = {}", config.k_bound, config.double_angle),
                allowed: "K >= 1, r <= 8".into(),
            });
        }
        let (k, r) = (config.k_bound, 2f64.powi(config.double_angle as i32));
        let base = Polynomial::interpolate(
            |y| (2.0 * PI * (k * y - 0.25) / r).cos(),
            config.degree,
            -1.0,
            1.0,
        )?;
        Ok(Self { config, base })
    }

    /// The configuration.
    pub fn config(&self) -> &EvalModConfig {
        &self.config
    }

    /// Levels consumed.
    pub fn depth(&self) -> usize {
        self.config.depth()
    }

    /// The amplitudes `a_0, …, a_r` for the output amplitude `a_r = amplitude`.
    fn amplitudes(&self, amplitude: f64) -> Vec<f64> {
        let r = self.config.double_angle as usize;
        let mut a = vec![amplitude; r + 1];
        for i in (0..r).rev() {
            a[i] = (2.0 * a[i + 1]).sqrt();
        }
        a
    }

    /// The whole circuit in `f64`: `A·sin(2π K y)` through the interpolant and the double-angle
    /// steps (its error against the exact function is the approximation error).
    pub fn eval_f64(&self, y: f64, amplitude: f64) -> f64 {
        let a = self.amplitudes(amplitude);
        let mut v = a[0] * self.base.eval(y);
        for ai in a.iter().take(self.config.double_angle as usize) {
            v = v * v - ai * ai / 2.0;
        }
        match self.config.arcsine {
            ArcSine::None => v,
            ArcSine::Degree3 => v + v * v * v / (6.0 * amplitude * amplitude),
        }
    }

    /// Largest error `|eval_f64(y) − A·sin(2πKy)|/A` over `y = (I + ε)/K` for every integer
    /// `|I| < K` and `|ε| ≤ eps` (on a grid): the approximation error, relative to the amplitude.
    pub fn approximation_error(&self, eps: f64) -> f64 {
        let k = self.config.k_bound;
        let mut worst = 0.0f64;
        let imax = k.floor() as i64 - 1;
        for i in -imax..=imax {
            for s in 0..=16 {
                let e = eps * (s as f64 / 8.0 - 1.0);
                let t = i as f64 + e;
                let got = self.eval_f64(t / k, 1.0);
                worst = worst.max((got - (2.0 * PI * t).sin()).abs());
            }
        }
        worst
    }

    /// Evaluates the circuit on `ct` (slots `y = t/K`), with output amplitude `amplitude` and
    /// output scale exactly `out_scale`. Consumes [`depth`](Self::depth) levels.
    pub fn evaluate(
        &self,
        eval: &Evaluator,
        ct: &Ciphertext,
        amplitude: f64,
        out_scale: f64,
    ) -> Result<Ciphertext> {
        let depth = self.depth();
        if ct.level() < depth {
            return Err(Error::OutOfLevels {
                operation: "EvalMod",
                needed: depth,
                found: ct.level(),
            });
        }
        let r = self.config.double_angle as usize;
        let a = self.amplitudes(amplitude);
        let l0 = ct.level() - self.base.depth();
        let q = eval.params().q();
        let lr = l0 - r; // level of v = A·sin(2πt)
        let c = 1.0 / (6.0 * amplitude * amplitude);
        // The scale v must have: out_scale itself, or, with the arcsine, the one that makes
        // v·(v²/(6A²)) land on out_scale after two rescales: S³/(c·q_lr·q_{lr-1}) = out.
        let v_scale = match self.config.arcsine {
            ArcSine::None => out_scale,
            ArcSine::Degree3 => (out_scale * c * q[lr] as f64 * q[lr - 1] as f64).cbrt(),
        };
        // Backwards: S_{i+1} = S_i² / q_{l0 - i}.
        let mut s = vec![v_scale; r + 1];
        for i in (0..r).rev() {
            s[i] = (s[i + 1] * q[l0 - i] as f64).sqrt();
        }
        let poly = self.base.scaled(a[0]);
        let mut y = PolynomialEvaluator::new(eval).evaluate(ct, &poly, s[0])?;
        for ai in a.iter().take(r) {
            y = eval.square_relin(&y)?;
            eval.rescale_assign(&mut y)?;
            eval.add_const_assign(&mut y, -ai * ai / 2.0)?;
        }
        match self.config.arcsine {
            ArcSine::None => Ok(y),
            ArcSine::Degree3 => {
                // w = v²/(6A²): the square, reinterpreted.
                let mut w = eval.square_relin(&y)?;
                eval.rescale_assign(&mut w)?;
                let ws = w.scale() / c;
                eval.set_scale(&mut w, ws)?;
                // v at the output scale, one level down (the level the cube consumes).
                let mut v = eval.mul_const_to_scale(&y, 1.0, out_scale)?;
                eval.rescale_assign(&mut v)?;
                eval.drop_to_level(&mut y, w.level())?;
                let mut cube = eval.mul_relin(&y, &w)?;
                eval.rescale_assign(&mut cube)?;
                eval.drop_to_level(&mut v, cube.level())?;
                // The scales agree to rounding; record the exact target.
                eval.set_scale(&mut cube, out_scale)?;
                eval.add_assign(&mut v, &cube)?;
                Ok(v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolant_and_double_angles_approximate_the_sine() {
        for (degree, r) in [(63, 3), (31, 4)] {
            let em = EvalMod::new(EvalModConfig {
                k_bound: 16.0,
                double_angle: r,
                degree,
                log_message_ratio: 8.0,
                arcsine: ArcSine::None,
            })
            .unwrap();
            assert_eq!(em.depth(), 9);
            let err = em.approximation_error(2f64.powi(-6));
            println!(
                "EvalMod degree {degree}, r = {r}: approximation error 2^{:.1}",
                err.log2()
            );
            assert!(err < 2f64.powi(-38), "2^{}", err.log2());
        }
    }
}
