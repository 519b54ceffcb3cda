//! Activation approximations and their per-layer choice: a Chebyshev interpolant
//! ([`FittedPoly`]) or, for ReLU, a composite minimax sign (he-core's [`CompositeSign`],
//! Lee–Lee–Kim–No) turned into `ReLU(x) = x·(1 + sign(x))/2`.
//!
//! Both act on the normalised input `u = x/B ∈ [-1, 1]` (the planner folds `1/B` into the
//! preceding linear layer when it can, as for interpolants) and return values in `x`'s units:
//! the composite folds `B` into its last stage ([`CompositeSign::evaluate_scaled_relu`]), so
//! `ReLU(x) = B·ReLU(u)` costs no extra level. Both run through he-core's
//! [`PolynomialEvaluator`] on any [`PolynomialBackend`] — ciphertexts in the engine, cleartext
//! values in the simulator — by [`Approximation::evaluate`]: one code path.
//!
//! # Error
//!
//! [`Approximation::max_error`] is the measured maximum *absolute* error `|f(x) − p(x)|` over
//! `[-B, B]` (in `x`'s units), on a grid of 20 001 uniform points plus 4 002 points spaced
//! geometrically towards 0 (where ReLU's kink is, and where the composite's sign is not
//! accurate: for `|u| < ε` its error is `≤ B·|u|`). It is the approximation error only; CKKS
//! noise comes on top (the simulator models it).
//!
//! Outside `[-B, B]` neither kind is bounded, and a composite (a product of odd minimax
//! stages, each diverging beyond its interval) grows fastest: `B` is the calibrated maximum
//! times [`bound_margin`](crate::PlanOptions::bound_margin) (1.1 by default), or the bound
//! the network states.
//!
//! # Choice ([`ReluApproximation`])
//!
//! [`ReluApproximation::Auto`] asks for `max_error ≤ B·2^-p` (`p` = `precision_bits`, an error
//! relative to the layer's interval) and takes the cheapest approximation that meets it:
//! fewest levels first, then fewest non-scalar multiplications (counted by running the
//! evaluation itself on a counting backend). The candidates are the Chebyshev interpolants
//! of degree up to [`MAX_INTERPOLANT_DEGREE`] (per depth, the smallest degree that meets the
//! bound) and composite signs [`CompositeSign::with_widening`]`(s, ε, w)` for sign precisions
//! `s` and gaps `ε` around `p` (see [`composite_candidates`]). Since ReLU is positively homogeneous
//! (`ReLU(Bu) = B·ReLU(u)`), the relative criterion makes the choice independent of `B`;
//! layers differ through their precision ([`crate::PlanOptions::relu_layers`]).
//!
//! The degree limit decides where composites win. ReLU's interpolation error falls only
//! like `1/d` (measured: degree 20 for 6 bits, 306 for 10, about 2044 for 12), so in levels
//! alone an interpolant stays about two levels below the composite (12 bits: degree 2044,
//! depth 11, against the composite's depth 13) — but with four times the ciphertext products
//! (101 against 25) and thousands of constant products. Beyond degree 1023 interpolants are
//! not considered: from 12 bits on, Auto takes the composite.
//!
//! ```
//! use he_nn::activation::{choose_relu, Approximation, ReluApproximation};
//! # fn main() -> he_nn::Result<()> {
//! // 6 bits on [-4, 4]: a low-degree interpolant is cheapest.
//! let low = choose_relu(&ReluApproximation::auto(6), 15, 4.0)?;
//! assert!(matches!(low, Approximation::Interpolant(_)));
//! assert!(low.max_error() <= 4.0 * 2f64.powi(-6));
//! // 14 bits: an interpolant would need degree > 1000; the composite sign takes fewer levels.
//! let high = choose_relu(&ReluApproximation::auto(14), 15, 4.0)?;
//! assert!(matches!(high, Approximation::CompositeRelu(_)));
//! assert!(high.max_error() <= 4.0 * 2f64.powi(-14));
//! println!("{}\n{}", low.describe(), high.describe());
//! # Ok(()) }
//! ```

use crate::error::{NnError, Result};
use crate::poly::{FittedPoly, PolyFunction};
use he_core::circuits::polynomial::{
    depth_for_degree, CompositeSign, PolynomialBackend, PolynomialEvaluator,
};
use rayon::prelude::*;
use std::cell::Cell;

/// Largest interpolant degree [`ReluApproximation::Auto`] tries (depth 10).
pub const MAX_INTERPOLANT_DEGREE: usize = 1023;
/// Default `max_depth` of [`ReluApproximation::auto`] and [`ReluApproximation::composite`].
pub const DEFAULT_MAX_DEPTH: usize = 24;

/// How the planner approximates ReLU activations (SiLU and GELU always take the declared
/// interpolant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReluApproximation {
    /// The Chebyshev interpolant of the degree the network's activation declares (the
    /// default, the planner's behaviour before composite approximations).
    #[default]
    Declared,
    /// The Chebyshev interpolant of this degree, whatever the network declares.
    Interpolant {
        /// Degree.
        degree: usize,
    },
    /// The cheapest composite minimax ReLU with `max_error ≤ B·2^-precision_bits`, within
    /// `max_depth` levels.
    Composite {
        /// Wanted bits, relative to the interval half-width `B`.
        precision_bits: u32,
        /// Most levels the activation may take.
        max_depth: usize,
    },
    /// The cheapest of interpolants and composites (fewest levels, then fewest non-scalar
    /// multiplications) with `max_error ≤ B·2^-precision_bits`, within `max_depth` levels.
    Auto {
        /// Wanted bits, relative to the interval half-width `B`.
        precision_bits: u32,
        /// Most levels the activation may take.
        max_depth: usize,
    },
}

impl ReluApproximation {
    /// [`Auto`](Self::Auto) at `precision_bits`, at most [`DEFAULT_MAX_DEPTH`] levels.
    pub fn auto(precision_bits: u32) -> Self {
        Self::Auto {
            precision_bits,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    /// [`Composite`](Self::Composite) at `precision_bits`, at most [`DEFAULT_MAX_DEPTH`]
    /// levels.
    pub fn composite(precision_bits: u32) -> Self {
        Self::Composite {
            precision_bits,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// `B·ReLU(u)` for `u = x/B ∈ [-1, 1]` from a composite minimax sign: `u·B·(1 + p(u))/2`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompositeRelu {
    bound: f64,
    sign: CompositeSign,
    max_error: f64,
}

impl CompositeRelu {
    /// ReLU on `[-bound, bound]` from `sign`; measures [`max_error`](Self::max_error).
    pub fn new(bound: f64, sign: CompositeSign) -> Result<Self> {
        check_bound(bound)?;
        let mut r = Self {
            bound,
            sign,
            max_error: 0.0,
        };
        r.max_error = measured_error(PolyFunction::Relu, bound, |x| r.eval(x));
        Ok(r)
    }

    /// ReLU on `[-bound, bound]` from [`CompositeSign::new`]`(sign_bits, epsilon)`.
    pub fn for_precision(bound: f64, sign_bits: f64, epsilon: f64) -> Result<Self> {
        Self::new(bound, CompositeSign::new(sign_bits, epsilon)?)
    }

    /// Half-width `B` of the interval.
    pub fn bound(&self) -> f64 {
        self.bound
    }

    /// The composite sign.
    pub fn sign(&self) -> &CompositeSign {
        &self.sign
    }

    /// Levels: the sign's depth and one product ([`CompositeSign::relu_depth`]).
    pub fn depth(&self) -> usize {
        self.sign.relu_depth()
    }

    /// Measured `max |ReLU(x) − p(x)|` on `[-B, B]` (see the module documentation).
    pub fn max_error(&self) -> f64 {
        self.max_error
    }

    /// The approximation of `ReLU(x)`, in cleartext.
    pub fn eval(&self, x: f64) -> f64 {
        self.eval_normalized(x / self.bound)
    }

    /// The approximation of `ReLU(u·B)` from the normalised `u`: the stages the encrypted
    /// evaluation runs, in `f64`.
    pub fn eval_normalized(&self, u: f64) -> f64 {
        let stages = self.sign.stages();
        let Some((last, first)) = stages.split_last() else {
            return 0.0;
        };
        let v = first.iter().fold(u, |v, p| p.eval(v));
        u * last.add_constant(1.0).scaled(0.5 * self.bound).eval(v)
    }
}

/// An activation's approximation, as the planner lowers it.
#[derive(Debug, Clone, PartialEq)]
pub enum Approximation {
    /// A Chebyshev interpolant `p(x/B)`.
    Interpolant(FittedPoly),
    /// ReLU from a composite minimax sign.
    CompositeRelu(CompositeRelu),
}

impl Approximation {
    /// The function approximated.
    pub fn function(&self) -> PolyFunction {
        match self {
            Self::Interpolant(p) => p.function,
            Self::CompositeRelu(_) => PolyFunction::Relu,
        }
    }

    /// Half-width `B` of the interval.
    pub fn bound(&self) -> f64 {
        match self {
            Self::Interpolant(p) => p.bound,
            Self::CompositeRelu(c) => c.bound,
        }
    }

    /// Levels the evaluation consumes (without a `1/B` prescale).
    pub fn depth(&self) -> usize {
        match self {
            Self::Interpolant(p) => p.depth(),
            Self::CompositeRelu(c) => c.depth(),
        }
    }

    /// Degrees of the polynomials evaluated (one for an interpolant; the stages of a
    /// composite, whose last stage is followed by one product with the input).
    pub fn degrees(&self) -> Vec<usize> {
        match self {
            Self::Interpolant(p) => vec![p.degree()],
            Self::CompositeRelu(c) => c.sign.degrees(),
        }
    }

    /// Measured maximum absolute error on `[-B, B]`: [`FittedPoly::max_error`] or
    /// [`CompositeRelu::max_error`].
    pub fn max_error(&self) -> f64 {
        match self {
            Self::Interpolant(p) => p.max_error,
            Self::CompositeRelu(c) => c.max_error,
        }
    }

    /// The approximation of `f(x)`, in cleartext.
    pub fn eval(&self, x: f64) -> f64 {
        self.eval_normalized(x / self.bound())
    }

    /// The approximation of `f(u·B)` from the normalised input `u`.
    pub fn eval_normalized(&self, u: f64) -> f64 {
        match self {
            Self::Interpolant(p) => p.series.eval(u),
            Self::CompositeRelu(c) => c.eval_normalized(u),
        }
    }

    /// The approximation of `f(u·B)` for the normalised `u` (at level `≥ depth()`), at level
    /// `level(u) − depth()` and scale `target_scale`, on ciphertexts or their cleartext model.
    pub fn evaluate<B: PolynomialBackend>(
        &self,
        pe: &PolynomialEvaluator<'_, B>,
        u: &B::Value,
        target_scale: f64,
    ) -> he_core::Result<B::Value> {
        match self {
            Self::Interpolant(p) => pe.evaluate(u, &p.series, target_scale),
            Self::CompositeRelu(c) => c.sign.evaluate_scaled_relu(pe, u, c.bound, target_scale),
        }
    }

    /// Non-scalar (ciphertext-ciphertext) multiplications of [`evaluate`](Self::evaluate),
    /// counted by running it on a backend that only tracks levels and scales.
    pub fn multiplications(&self) -> Result<usize> {
        let depth = self.depth();
        let be = Counting {
            prime: 2f64.powi(40),
            levels: depth + 1,
            products: Cell::new(0),
        };
        let u = Shape {
            level: depth,
            scale: be.prime,
        };
        self.evaluate(&PolynomialEvaluator::new(&be), &u, be.prime)?;
        Ok(be.products.get())
    }

    /// A short label for plan tables: `poly deg 15`, `composite [15, 15, 27]`.
    pub fn label(&self) -> String {
        match self {
            Self::Interpolant(p) => format!("poly deg {}", p.degree()),
            Self::CompositeRelu(c) => format!("composite {:?}", c.sign.degrees()),
        }
    }

    /// One-line description (an interpolant's is [`FittedPoly::describe`]).
    pub fn describe(&self) -> String {
        match self {
            Self::Interpolant(p) => p.describe(),
            Self::CompositeRelu(c) => format!(
                "ReLU ≈ x·(1 + sign(x))/2, composite minimax sign of degrees {:?} (ε = 2^{:.1}, \
                 sign error 2^{:.1}) on [-{:.3}, {:.3}], max error {:.2e} (2^{:.1}·B), depth {} \
                 ({} + 1 product)",
                c.sign.degrees(),
                c.sign.epsilon().log2(),
                c.sign.error().log2(),
                c.bound,
                c.bound,
                c.max_error,
                (c.max_error / c.bound).log2(),
                c.depth(),
                c.sign.depth()
            ),
        }
    }
}

/// [`choose_relu`] for many layers: a search result is kept per setting (at `B = 1`) and
/// carried to each layer's interval, since ReLU is positively homogeneous and the criterion
/// relative (the carried approximation is re-measured on the new interval, and searched anew
/// in the unlikely case that it misses the bound there).
#[derive(Debug, Default)]
pub struct ReluChooser {
    found: Vec<(ReluApproximation, usize, Approximation)>,
}

impl ReluChooser {
    /// An empty chooser.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`choose_relu`]`(setting, declared_degree, bound)`, reusing an earlier search.
    pub fn choose(
        &mut self,
        setting: &ReluApproximation,
        declared_degree: usize,
        bound: f64,
    ) -> Result<Approximation> {
        check_bound(bound)?;
        let precision_bits = match setting {
            ReluApproximation::Auto { precision_bits, .. }
            | ReluApproximation::Composite { precision_bits, .. } => *precision_bits,
            _ => return choose_relu(setting, declared_degree, bound),
        };
        let target = bound * 2f64.powi(-(precision_bits as i32));
        let known = self
            .found
            .iter()
            .find(|(s, d, _)| s == setting && *d == declared_degree)
            .map(|(_, _, a)| a);
        if let Some(a) = known {
            let carried = match a {
                Approximation::Interpolant(p) => {
                    let mut q = FittedPoly::fit(PolyFunction::Relu, p.degree(), bound)?;
                    q.max_error = q
                        .max_error
                        .max(measured_error(PolyFunction::Relu, bound, |x| q.eval(x)));
                    Approximation::Interpolant(q)
                }
                Approximation::CompositeRelu(c) => {
                    Approximation::CompositeRelu(CompositeRelu::new(bound, c.sign.clone())?)
                }
            };
            if carried.max_error() <= target {
                return Ok(carried);
            }
        }
        let a = choose_relu(setting, declared_degree, bound)?;
        if known.is_none() {
            self.found.push((*setting, declared_degree, a.clone()));
        }
        Ok(a)
    }
}

/// A candidate's cost: (levels, non-scalar multiplications).
fn cost_of(a: &Approximation) -> Result<(usize, usize)> {
    Ok((a.depth(), a.multiplications()?))
}

/// The approximation `setting` gives a ReLU layer of declared `degree` on `[-bound, bound]`
/// (see the module documentation). [`NnError::NoApproximation`] when no candidate meets an
/// `Auto` or `Composite` bound within its depth limit.
pub fn choose_relu(
    setting: &ReluApproximation,
    declared_degree: usize,
    bound: f64,
) -> Result<Approximation> {
    check_bound(bound)?;
    let (precision_bits, max_depth, interpolants) = match *setting {
        ReluApproximation::Declared => {
            return Ok(Approximation::Interpolant(FittedPoly::fit(
                PolyFunction::Relu,
                declared_degree,
                bound,
            )?))
        }
        ReluApproximation::Interpolant { degree } => {
            return Ok(Approximation::Interpolant(FittedPoly::fit(
                PolyFunction::Relu,
                degree,
                bound,
            )?))
        }
        ReluApproximation::Composite {
            precision_bits,
            max_depth,
        } => (precision_bits, max_depth, false),
        ReluApproximation::Auto {
            precision_bits,
            max_depth,
        } => (precision_bits, max_depth, true),
    };
    let target = bound * 2f64.powi(-(precision_bits as i32));
    let mut candidates = Vec::new();
    if interpolants {
        if let Some(p) = cheapest_interpolant(bound, target, max_depth)? {
            candidates.push(Approximation::Interpolant(p));
        }
    }
    let composites: Vec<Result<Option<CompositeRelu>>> = composite_candidates(precision_bits)
        .into_par_iter()
        .map(|(sign_bits, epsilon, widening)| {
            // A target the construction cannot reach (beyond f64, too many stages) is no
            // candidate; other errors are.
            let sign = match CompositeSign::with_widening(sign_bits, epsilon, widening) {
                Ok(s) => s,
                Err(he_core::Error::OutOfRange { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let c = CompositeRelu::new(bound, sign)?;
            Ok((c.max_error <= target && c.depth() <= max_depth).then_some(c))
        })
        .collect();
    for c in composites {
        if let Some(c) = c? {
            candidates.push(Approximation::CompositeRelu(c));
        }
    }
    let mut best: Option<((usize, usize), Approximation)> = None;
    for c in candidates {
        let k = cost_of(&c)?;
        if best.as_ref().is_none_or(|(b, _)| k < *b) {
            best = Some((k, c));
        }
    }
    best.map(|(_, a)| a)
        .ok_or_else(|| NnError::NoApproximation {
            function: "ReLU".into(),
            wanted: format!(
            "max error ≤ B·2^-{precision_bits} on [-{bound}, {bound}] within {max_depth} levels"
        ),
            tried: format!(
                "{}composite minimax signs at sign precisions {}..={} bits",
                if interpolants {
                    format!("Chebyshev interpolants up to degree {MAX_INTERPOLANT_DEGREE}, ")
                } else {
                    String::new()
                },
                precision_bits.saturating_sub(2).max(1),
                precision_bits.saturating_sub(1).max(1)
            ),
        })
}

/// The `(sign precision bits, ε, widening degree)` a composite ReLU at `precision_bits = p`
/// is tried with ([`CompositeSign::with_widening`]): sign precisions `p − 2, p − 1` (the
/// error for `|u| ≥ ε` is `≤ B·error/2`, and the greedy last stage usually overshoots), gaps
/// `ε = 2^-(p−5), 2^-(p−4), 2^-(p−3)` (inside the gap the error `B·|u|·|1 − h(u)|` stays far
/// below `B·ε`, `h` rising from 1/2 at 0), widening stages of degree 7, 15, 31; the planner
/// keeps those whose measured error meets the bound. (A grid found by measuring the
/// cheapest composites at 8 to 16 bits; not an exhaustive search over degree sequences.)
pub fn composite_candidates(precision_bits: u32) -> Vec<(f64, f64, usize)> {
    let p = precision_bits as i32;
    let mut out = Vec::new();
    for s in [p - 2, p - 1] {
        let s = s.max(1);
        if s > 45 {
            continue;
        }
        for e in [p - 5, p - 4, p - 3] {
            let eps = 2f64.powi(-e.max(1));
            for w in [7, 15, 31] {
                if !out.contains(&(s as f64, eps, w)) {
                    out.push((s as f64, eps, w));
                }
            }
        }
    }
    out
}

/// Per depth `1..=min(max_depth, 10)`: the smallest degree of that depth whose interpolant
/// meets `target` (found by bisection from the largest degrees of the depth), `None` when no
/// degree up to [`MAX_INTERPOLANT_DEGREE`] does.
fn cheapest_interpolant(bound: f64, target: f64, max_depth: usize) -> Result<Option<FittedPoly>> {
    let fit = |d: usize| -> Result<Option<FittedPoly>> {
        let mut p = FittedPoly::fit(PolyFunction::Relu, d, bound)?;
        p.max_error = p
            .max_error
            .max(measured_error(PolyFunction::Relu, bound, |x| p.eval(x)));
        Ok((p.max_error <= target).then_some(p))
    };
    let top = depth_for_degree(MAX_INTERPOLANT_DEGREE).min(max_depth);
    for depth in 1..=top {
        let (lo, hi) = (1usize << (depth - 1), (1usize << depth) - 1);
        let lo = lo.max(1);
        // The largest two degrees (odd and even interpolants of ReLU differ).
        let mut found = None;
        for d in [hi, hi.saturating_sub(1).max(lo)] {
            if let Some(p) = fit(d)? {
                found = Some((d, p));
                break;
            }
        }
        let Some((mut good, mut best)) = found else {
            continue;
        };
        // Bisect down: the error decreases with the degree (up to parity wiggles; every
        // returned fit is checked).
        let mut bad = lo - 1;
        while good - bad > 1 {
            let mid = (good + bad) / 2;
            match fit(mid)? {
                Some(p) => {
                    good = mid;
                    best = p;
                }
                None => bad = mid,
            }
        }
        return Ok(Some(best));
    }
    Ok(None)
}

fn check_bound(bound: f64) -> Result<()> {
    if !(bound.is_finite() && bound > 0.0) {
        return Err(NnError::Invalid(format!(
            "activation interval half-width must be finite and > 0, got {bound}"
        )));
    }
    Ok(())
}

/// `max |f(x) − approx(x)|` over `[-B, B]`: 20 001 uniform points and 2 × 2 001 points
/// geometric towards 0 (down to `B·2^-40`).
pub fn measured_error(function: PolyFunction, bound: f64, approx: impl Fn(f64) -> f64) -> f64 {
    let uniform = (0..=20_000).map(|i| bound * (i as f64 / 10_000.0 - 1.0));
    let geometric = (0..=2000).flat_map(|i| {
        let x = bound * 2f64.powf(-40.0 * i as f64 / 2000.0);
        [x, -x]
    });
    uniform
        .chain(geometric)
        .map(|x| (function.eval(x) - approx(x)).abs())
        .fold(0.0, f64::max)
}

/// A value of the counting backend: level and scale only.
#[derive(Debug, Clone, Copy)]
struct Shape {
    level: usize,
    scale: f64,
}

/// Tracks levels and scales as the CKKS evaluator would, and counts ciphertext products.
struct Counting {
    prime: f64,
    levels: usize,
    products: Cell<usize>,
}

impl PolynomialBackend for Counting {
    type Value = Shape;
    fn level(&self, v: &Shape) -> usize {
        v.level
    }
    fn scale(&self, v: &Shape) -> f64 {
        v.scale
    }
    fn prime(&self, level: usize) -> he_core::Result<f64> {
        if level >= self.levels {
            return Err(he_core::Error::OutOfLevels {
                operation: "prime of level",
                needed: level,
                found: self.levels.saturating_sub(1),
            });
        }
        Ok(self.prime)
    }
    fn mul_relin(&self, a: &Shape, b: &Shape) -> he_core::Result<Shape> {
        self.products.set(self.products.get() + 1);
        Ok(Shape {
            level: a.level.min(b.level),
            scale: a.scale * b.scale,
        })
    }
    fn mul_int_assign(&self, _: &mut Shape, _: i64) -> he_core::Result<()> {
        Ok(())
    }
    fn mul_const_scaled_assign(&self, a: &mut Shape, _: f64, s: f64) -> he_core::Result<()> {
        a.scale *= s;
        Ok(())
    }
    fn add_assign(&self, _: &mut Shape, _: &Shape) -> he_core::Result<()> {
        Ok(())
    }
    fn add_const_assign(&self, _: &mut Shape, _: f64) -> he_core::Result<()> {
        Ok(())
    }
    fn rescale_assign(&self, a: &mut Shape) -> he_core::Result<()> {
        if a.level == 0 {
            return Err(he_core::Error::OutOfLevels {
                operation: "rescale",
                needed: 1,
                found: 0,
            });
        }
        a.scale /= self.prime;
        a.level -= 1;
        Ok(())
    }
    fn drop_to_level(&self, a: &mut Shape, level: usize) -> he_core::Result<()> {
        a.level = level.min(a.level);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use he_core::circuits::polynomial::CleartextBackend;

    #[test]
    fn interpolant_multiplications_and_depth() {
        for d in [3usize, 7, 15, 31, 63] {
            let a =
                Approximation::Interpolant(FittedPoly::fit(PolyFunction::Relu, d, 2.0).unwrap());
            assert_eq!(a.depth(), depth_for_degree(d));
            let m = a.multiplications().unwrap();
            // ReLU's odd part is x/2: the odd degrees' top coefficient vanishes.
            assert!(m >= 1 && m <= d, "degree {d}: {m} products");
        }
    }

    #[test]
    fn composite_relu_matches_its_evaluation_and_bound() {
        let c = CompositeRelu::for_precision(3.0, 10.0, 2f64.powi(-10)).unwrap();
        assert_eq!(c.depth(), c.sign().depth() + 1);
        assert!(c.max_error() <= 3.0 * 2f64.powi(-10), "{}", c.max_error());
        let a = Approximation::CompositeRelu(c);
        let q: Vec<u64> = (0..40).map(|i| (1u64 << 45) - 229 - 2 * i).collect();
        let be = CleartextBackend::new(&q);
        let xs: Vec<f64> = (0..=60).map(|i| i as f64 / 20.0 - 1.5).collect();
        let us: Vec<f64> = xs.iter().map(|x| x / 3.0).collect();
        let top = a.depth() + 2;
        let u = be.value(us, top, 2f64.powi(45)).unwrap();
        let y = a
            .evaluate(&PolynomialEvaluator::new(&be), &u, 2f64.powi(45))
            .unwrap();
        assert_eq!(y.level, top - a.depth());
        for (x, v) in xs.iter().zip(&y.values) {
            assert!((a.eval(*x) - v).abs() < 1e-9, "x = {x}");
            assert!((x.max(0.0) - v).abs() <= a.max_error() + 1e-9, "x = {x}");
        }
        let m = a.multiplications().unwrap();
        assert!(m > a.degrees().len(), "{m}");
        assert!(a.describe().contains("composite minimax sign"));
    }

    #[test]
    fn declared_and_forced_interpolants() {
        let a = choose_relu(&ReluApproximation::Declared, 7, 5.0).unwrap();
        assert_eq!(
            a,
            Approximation::Interpolant(FittedPoly::fit(PolyFunction::Relu, 7, 5.0).unwrap())
        );
        let b = choose_relu(&ReluApproximation::Interpolant { degree: 12 }, 7, 5.0).unwrap();
        assert_eq!(b.degrees(), vec![12]);
        assert!(choose_relu(&ReluApproximation::auto(8), 7, f64::NAN).is_err());
    }

    #[test]
    fn chooser_carries_a_search_to_other_intervals() {
        let mut chooser = ReluChooser::new();
        for setting in [ReluApproximation::auto(6), ReluApproximation::composite(9)] {
            let first = chooser.choose(&setting, 7, 1.0).unwrap();
            for b in [0.05, 3.0, 250.0] {
                let a = chooser.choose(&setting, 7, b).unwrap();
                let fresh = choose_relu(&setting, 7, b).unwrap();
                assert_eq!(a.degrees(), first.degrees());
                assert_eq!((a.depth(), a.degrees()), (fresh.depth(), fresh.degrees()));
                assert_eq!(a.bound(), b);
                assert!(a.max_error() <= b * 2f64.powi(-(setting_bits(&setting) as i32)));
            }
        }
    }

    fn setting_bits(s: &ReluApproximation) -> u32 {
        match s {
            ReluApproximation::Auto { precision_bits, .. }
            | ReluApproximation::Composite { precision_bits, .. } => *precision_bits,
            _ => 0,
        }
    }

    #[test]
    fn auto_is_no_dearer_than_either_kind() {
        for bits in [4u32, 8, 12] {
            let auto = choose_relu(&ReluApproximation::auto(bits), 7, 1.0).unwrap();
            let comp = choose_relu(&ReluApproximation::composite(bits), 7, 1.0).unwrap();
            let (ka, kc) = (cost_of(&auto).unwrap(), cost_of(&comp).unwrap());
            assert!(ka <= kc, "{bits} bits: auto {ka:?} > composite {kc:?}");
            assert!(auto.max_error() <= 2f64.powi(-(bits as i32)));
            println!("{bits} bits: {} / {:?}", auto.describe(), ka);
        }
    }
}
