//! Polynomial activations: Chebyshev interpolation of ReLU/SiLU/GELU on `[-B, B]`.
//!
//! The input is first normalised, `u = x/B` (the planner folds `1/B` into the preceding
//! linear layer when it can), and `p(u) = Σ c_j T_j(u)` is a Chebyshev series on `[-1, 1]`.
//! Evaluation is he-core's [`PolynomialEvaluator`](he_core::circuits::polynomial::PolynomialEvaluator)
//! (baby-step giant-step in the Chebyshev basis with exact scales), on ciphertexts in the
//! engine and on [`CleartextBackend`](he_core::circuits::polynomial::CleartextBackend) values
//! in the simulator: one code path. Depth: `⌈log2(d+1)⌉` levels, optimal for degree `d`.

use crate::error::{NnError, Result};
use he_core::circuits::polynomial::{depth_for_degree, Polynomial};

/// A scalar function to approximate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolyFunction {
    /// `max(x, 0)`.
    Relu,
    /// `x·sigmoid(x)`.
    Silu,
    /// `x·Φ(x)` (exact, erf-based GELU).
    Gelu,
}

impl PolyFunction {
    /// The exact value.
    pub fn eval(self, x: f64) -> f64 {
        match self {
            Self::Relu => x.max(0.0),
            Self::Silu => x / (1.0 + (-x).exp()),
            Self::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        }
    }
    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Relu => "ReLU",
            Self::Silu => "SiLU",
            Self::Gelu => "GELU",
        }
    }
}

/// `erf` to ~1e-15 (series for small |x|, continued fraction complement for large).
fn erf(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 2.5 {
        // Maclaurin series.
        let (mut sum, mut term, mut n) = (a, a, 0.0f64);
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -a * a / n;
            sum += term / (2.0 * n + 1.0);
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    } else {
        // erfc by Lentz's continued fraction.
        let mut f = a;
        let (mut c, mut d) = (a, 0.0f64);
        for k in 1..200 {
            let an = k as f64 / 2.0;
            d = a + an * d;
            d = 1.0 / d;
            c = a + an / c;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        1.0 - (-a * a).exp() / (f * std::f64::consts::PI.sqrt())
    };
    r.copysign(x)
}

/// A fitted polynomial approximation `f(x) ≈ p(x/B)` on `[-B, B]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedPoly {
    /// The function approximated.
    pub function: PolyFunction,
    /// Half-width `B` of the interval.
    pub bound: f64,
    /// `p` as a Chebyshev series in `u = x/B` on `[-1, 1]`.
    pub series: Polynomial,
    /// Maximum `|f(x) - p(x/B)|` on a 4001-point grid of `[-B, B]`.
    pub max_error: f64,
}

impl FittedPoly {
    /// Chebyshev interpolation of degree `degree` at the Chebyshev nodes of `[-bound, bound]`,
    /// as a series in `u = x/bound` on `[-1, 1]`. Errors for a bound that is not finite and
    /// positive.
    pub fn fit(function: PolyFunction, degree: usize, bound: f64) -> Result<Self> {
        if !(bound.is_finite() && bound > 0.0) {
            return Err(NnError::Invalid(format!(
                "polynomial interval half-width must be finite and > 0, got {bound}"
            )));
        }
        let series = Polynomial::interpolate(|u| function.eval(u * bound), degree, -1.0, 1.0)?;
        let mut p = Self {
            function,
            bound,
            series,
            max_error: 0.0,
        };
        p.max_error = (0..=4000)
            .map(|i| {
                let x = bound * (i as f64 / 2000.0 - 1.0);
                (function.eval(x) - p.eval(x)).abs()
            })
            .fold(0.0, f64::max);
        Ok(p)
    }

    /// Degree.
    pub fn degree(&self) -> usize {
        self.series.degree()
    }

    /// Levels the evaluation consumes: `⌈log2(d+1)⌉` (1 for degree ≤ 1).
    pub fn depth(&self) -> usize {
        self.series.depth()
    }

    /// `p(x/B)` by Clenshaw's recurrence (reference).
    pub fn eval(&self, x: f64) -> f64 {
        self.series.eval(x / self.bound)
    }

    /// Monomial coefficients of `p` in `u = x/B`, lowest first (for inspection).
    pub fn monomial_coeffs(&self) -> Vec<f64> {
        self.series.to_monomial()
    }

    /// One-line description.
    pub fn describe(&self) -> String {
        format!(
            "{} ≈ degree-{} Chebyshev interpolant on [-{:.3}, {:.3}], max error {:.2e}, depth {}",
            self.function.name(),
            self.degree(),
            self.bound,
            self.bound,
            self.max_error,
            self.depth()
        )
    }
}

/// `⌈log2(d+1)⌉`, at least 1 (he-core's [`depth_for_degree`]).
pub fn poly_depth(degree: usize) -> usize {
    depth_for_degree(degree)
}
