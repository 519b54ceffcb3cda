//! Composite minimax approximation of `sign` and ReLU (Lee, Lee, Kim, No, "Minimax
//! approximation of sign function by composite polynomial for homomorphic comparison",
//! IEEE TDSC 2021).
//!
//! A single polynomial approximating `sign` to `α` bits on `[−1, −ε] ∪ [ε, 1]` needs a degree
//! that grows like `1/ε`; a composition `p_k ∘ … ∘ p_1` of odd minimax polynomials reaches
//! it with depth `Σ ⌈log2(d_i + 1)⌉` growing like `log(1/ε) + log(α)`. Stage `i` is the
//! minimax polynomial on `[ε_i, 1]` with error `δ_i`, divided by `1 + δ_i` so that it maps
//! `[ε_i, 1]` into `[ε_{i+1}, 1]`, `ε_{i+1} = (1 − δ_i)/(1 + δ_i)`, the domain of the next
//! stage; the last stage is not divided, and the composite error is `δ_k`.
//!
//! `ReLU(x) = (x + x·sign(x))/2 = x·h(x)` with `h = (1 + p_k)/2 ∘ p_{k−1} ∘ … ∘ p_1`: one
//! product more than `sign`.

use super::backend::PolynomialBackend;
use super::chebyshev::Polynomial;
use super::evaluator::PolynomialEvaluator;
use super::remez::remez_sign;
use crate::{Error, Result};

/// Odd degrees tried for the last stage of [`CompositeSign::new`], smallest first.
const FINAL_DEGREES: [usize; 6] = [3, 7, 15, 27, 31, 63];
/// Degree of the stages that widen `ε` in [`CompositeSign::new`] (depth 4 each).
const WIDENING_DEGREE: usize = 15;
/// Most stages [`CompositeSign::new`] builds.
const MAX_STAGES: usize = 16;

/// A composite polynomial approximation of `sign` on `[−1, −ε] ∪ [ε, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompositeSign {
    stages: Vec<Polynomial>,
    epsilon: f64,
    error: f64,
}

/// `max |f(x) − 1|` over a grid of `[ε, 1]` dense near `ε`.
fn measured_error(eps: f64, f: impl Fn(f64) -> f64) -> f64 {
    let g = 20_000;
    (0..=g)
        .flat_map(|i| {
            let t = i as f64 / g as f64;
            [eps + (1.0 - eps) * t, eps * (1.0 / eps).powf(t)]
        })
        .map(|x| (f(x.clamp(eps, 1.0)) - 1.0).abs())
        .fold(0.0, f64::max)
}

impl CompositeSign {
    /// The composition of odd minimax polynomials of the given odd `degrees` (applied in
    /// order) for `ε` (see the module documentation); the achieved error is
    /// [`error`](Self::error).
    ///
    /// ```
    /// use he_core::circuits::polynomial::CompositeSign;
    /// let s = CompositeSign::with_degrees(&[15, 15, 27], 2f64.powi(-8)).unwrap();
    /// assert_eq!(s.depth(), 4 + 4 + 5);
    /// println!("sign to {:.1} bits for |x| >= 2^-8", s.precision_bits());
    /// assert!(s.precision_bits() > 10.0);
    /// assert!((s.eval(0.01) - 1.0).abs() <= s.error() && (s.eval(-0.3) + 1.0).abs() <= s.error());
    /// ```
    pub fn with_degrees(degrees: &[usize], epsilon: f64) -> Result<Self> {
        if degrees.is_empty() {
            return Err(Error::LengthMismatch {
                what: "composite sign stages",
                expected: 1,
                found: 0,
            });
        }
        let mut eps = epsilon;
        let mut stages = Vec::with_capacity(degrees.len());
        for (i, &d) in degrees.iter().enumerate() {
            let s = remez_sign(d, eps)?;
            if i + 1 < degrees.len() {
                stages.push(s.polynomial.scaled(1.0 / (1.0 + s.error)));
                eps = ((1.0 - s.error) / (1.0 + s.error)).max(f64::MIN_POSITIVE);
            } else {
                stages.push(s.polynomial);
            }
        }
        Self::from_stages(stages, epsilon)
    }

    fn from_stages(stages: Vec<Polynomial>, epsilon: f64) -> Result<Self> {
        let mut r = Self {
            stages,
            epsilon,
            error: 0.0,
        };
        r.error = measured_error(epsilon, |x| r.eval(x));
        Ok(r)
    }

    /// A composition reaching `precision_bits` bits (`|p(x) − sign(x)| ≤ 2^−α` for
    /// `ε ≤ |x| ≤ 1`), built greedily: while no single odd minimax polynomial of degree
    /// `≤ 63` reaches the target on the current `[ε_i, 1]`, a degree-15 stage widens it; then
    /// the smallest sufficient degree finishes. [`Error::OutOfRange`] when the target is not
    /// reached in 16 stages (e.g. `α` beyond `f64` precision).
    ///
    /// ```
    /// use he_core::circuits::polynomial::CompositeSign;
    /// let s = CompositeSign::new(20.0, 2f64.powi(-10)).unwrap();
    /// assert!(s.error() <= 2f64.powi(-20));
    /// println!("degrees {:?}, depth {}", s.degrees(), s.depth());
    /// ```
    pub fn new(precision_bits: f64, epsilon: f64) -> Result<Self> {
        Self::with_widening(precision_bits, epsilon, WIDENING_DEGREE)
    }

    /// [`new`](Self::new) with widening stages of the odd degree `widening_degree` instead
    /// of 15 (a caller searching for the cheapest composite tries several: which is best
    /// depends on `α` and `ε`).
    ///
    /// ```
    /// use he_core::circuits::polynomial::CompositeSign;
    /// for w in [7, 15, 31] {
    ///     let s = CompositeSign::with_widening(12.0, 2f64.powi(-10), w).unwrap();
    ///     assert!(s.error() <= 2f64.powi(-12));
    ///     println!("widening {w}: degrees {:?}, depth {}", s.degrees(), s.depth());
    /// }
    /// ```
    pub fn with_widening(
        precision_bits: f64,
        epsilon: f64,
        widening_degree: usize,
    ) -> Result<Self> {
        if !(precision_bits > 0.0 && precision_bits <= 45.0) {
            return Err(Error::OutOfRange {
                what: "sign precision bits",
                found: precision_bits.to_string(),
                allowed: "0 < α <= 45".into(),
            });
        }
        let want = 2f64.powf(-precision_bits);
        let mut eps = epsilon;
        let mut stages = Vec::new();
        while stages.len() < MAX_STAGES {
            let mut finished = None;
            for d in FINAL_DEGREES {
                let s = remez_sign(d, eps)?;
                // A margin for the composite's measured error.
                if s.error <= want * 0.9 {
                    finished = Some(s.polynomial);
                    break;
                }
            }
            if let Some(p) = finished {
                stages.push(p);
                let r = Self::from_stages(stages, epsilon)?;
                if r.error <= want {
                    return Ok(r);
                }
                return Err(Error::OutOfRange {
                    what: "achieved sign error",
                    found: format!("{:e}", r.error),
                    allowed: format!("<= 2^-{precision_bits}"),
                });
            }
            let s = remez_sign(widening_degree, eps)?;
            stages.push(s.polynomial.scaled(1.0 / (1.0 + s.error)));
            eps = ((1.0 - s.error) / (1.0 + s.error)).max(f64::MIN_POSITIVE);
        }
        Err(Error::OutOfRange {
            what: "composite sign stages",
            found: format!("more than {MAX_STAGES}"),
            allowed: format!("{MAX_STAGES} stages for 2^-{precision_bits} at ε = {epsilon:e}"),
        })
    }

    /// The stages, in the order they are applied.
    pub fn stages(&self) -> &[Polynomial] {
        &self.stages
    }

    /// Degrees of the stages.
    pub fn degrees(&self) -> Vec<usize> {
        self.stages.iter().map(Polynomial::degree).collect()
    }

    /// `ε`.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// Achieved `max |p(x) − sign(x)|` over `ε ≤ |x| ≤ 1` (measured on a grid of 40 000
    /// points dense near `ε`).
    pub fn error(&self) -> f64 {
        self.error
    }

    /// `−log2(error)`.
    pub fn precision_bits(&self) -> f64 {
        -self.error.log2()
    }

    /// Levels [`evaluate_sign`](Self::evaluate_sign) consumes: `Σ ⌈log2(d_i + 1)⌉`.
    pub fn depth(&self) -> usize {
        self.stages.iter().map(Polynomial::depth).sum()
    }

    /// Levels [`evaluate_relu`](Self::evaluate_relu) consumes: one more than the sign.
    pub fn relu_depth(&self) -> usize {
        self.depth() + 1
    }

    /// The composite in cleartext.
    pub fn eval(&self, x: f64) -> f64 {
        self.stages.iter().fold(x, |v, p| p.eval(v))
    }

    /// `sign(x)` for `x ∈ [−1, 1]` (accurate where `|x| ≥ ε`), at level
    /// `level(x) − depth()` and scale `target_scale`. [`Error::OutOfLevels`] when `x` is too
    /// low.
    pub fn evaluate_sign<B: PolynomialBackend>(
        &self,
        pe: &PolynomialEvaluator<'_, B>,
        x: &B::Value,
        target_scale: f64,
    ) -> Result<B::Value> {
        self.check_levels(pe.backend().level(x), self.depth(), "composite sign")?;
        let mut v = x.clone();
        for p in &self.stages {
            v = pe.evaluate(&v, p, target_scale)?;
        }
        Ok(v)
    }

    /// `ReLU(x) = x·(1 + sign(x))/2` for `x ∈ [−1, 1]` (error `≤ |x|·error()/2` where
    /// `|x| ≥ ε`, and `≤ |x|` elsewhere), at level `level(x) − relu_depth()` and scale
    /// `target_scale`.
    pub fn evaluate_relu<B: PolynomialBackend>(
        &self,
        pe: &PolynomialEvaluator<'_, B>,
        x: &B::Value,
        target_scale: f64,
    ) -> Result<B::Value> {
        self.evaluate_scaled_relu(pe, x, 1.0, target_scale)
    }

    /// `factor·ReLU(x)` for `x ∈ [−1, 1]`, as [`evaluate_relu`](Self::evaluate_relu) with
    /// `factor` folded into the last stage (`x·factor·(1 + p_k)/2`): no extra level, the
    /// same depth. A caller that normalised `x = y/B` gets `ReLU(y) = B·ReLU(x)` back in
    /// `y`'s units.
    pub fn evaluate_scaled_relu<B: PolynomialBackend>(
        &self,
        pe: &PolynomialEvaluator<'_, B>,
        x: &B::Value,
        factor: f64,
        target_scale: f64,
    ) -> Result<B::Value> {
        let be = pe.backend();
        let lx = be.level(x);
        self.check_levels(lx, self.relu_depth(), "composite ReLU")?;
        let lh = lx - self.depth();
        // h lands on the scale that makes x·h rescale exactly to the target.
        let h_scale = target_scale * be.prime(lh)? / be.scale(x);
        let (last, first) = self
            .stages
            .split_last()
            .ok_or_else(|| Error::InvalidParameters("composite sign without stages".into()))?;
        let half = last.add_constant(1.0).scaled(0.5 * factor);
        let mut v = x.clone();
        for p in first {
            v = pe.evaluate(&v, p, target_scale)?;
        }
        let h = pe.evaluate(&v, &half, h_scale)?;
        let mut xl = x.clone();
        be.drop_to_level(&mut xl, lh)?;
        let mut y = be.mul_relin(&xl, &h)?;
        be.rescale_assign(&mut y)?;
        Ok(y)
    }

    fn check_levels(&self, found: usize, needed: usize, operation: &'static str) -> Result<()> {
        if found < needed {
            return Err(Error::OutOfLevels {
                operation,
                needed,
                found,
            });
        }
        Ok(())
    }
}
