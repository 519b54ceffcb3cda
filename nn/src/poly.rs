//! Polynomial activations: Chebyshev interpolation of ReLU/SiLU/GELU on `[-B, B]`, and a
//! depth-optimal evaluation order shared by the encrypted evaluator and the simulator.
//!
//! The input is first normalised, `u = x/B` (the planner folds `1/B` into the preceding
//! linear layer when it can). `p(u) = Σ c_i u^i` of degree `d` is evaluated by the recursive
//! split `p = q·u^{2^{k-1}} + r` with `k = ⌈log2(d+1)⌉` (the power-of-two "giant step" of
//! Paterson–Stockmeyer, applied recursively down to linear leaves `c_1·u + c_0`), using the
//! powers `u^{2^j}` obtained by repeated squaring. Depth: `⌈log2(d+1)⌉` multiplicative levels,
//! which is optimal for a degree-`d` polynomial.

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
    /// Monomial coefficients of `p` in `u = x/B`, lowest first.
    pub coeffs: Vec<f64>,
    /// Maximum `|f(x) - p(x/B)|` on a 4001-point grid of `[-B, B]`.
    pub max_error: f64,
}

impl FittedPoly {
    /// Chebyshev interpolation of degree `degree` at the Chebyshev nodes of `[-bound, bound]`,
    /// converted to monomials in `u = x/bound`.
    pub fn fit(function: PolyFunction, degree: usize, bound: f64) -> Self {
        let n = degree + 1;
        let nodes: Vec<f64> = (0..n)
            .map(|k| (std::f64::consts::PI * (k as f64 + 0.5) / n as f64).cos())
            .collect();
        let fx: Vec<f64> = nodes.iter().map(|u| function.eval(u * bound)).collect();
        // Chebyshev coefficients a_j = (2/n) Σ f(u_k) T_j(u_k), a_0 halved.
        let cheb: Vec<f64> = (0..n)
            .map(|j| {
                let s: f64 = nodes
                    .iter()
                    .zip(&fx)
                    .map(|(u, f)| f * (j as f64 * u.acos()).cos())
                    .sum();
                s * 2.0 / n as f64 * if j == 0 { 0.5 } else { 1.0 }
            })
            .collect();
        // Monomial coefficients of T_j by the recurrence T_{j+1} = 2u T_j - T_{j-1}.
        let mut coeffs = vec![0.0; n];
        let (mut t_prev, mut t_cur) = (vec![1.0], vec![0.0, 1.0]);
        for (j, a) in cheb.iter().enumerate() {
            let t = match j {
                0 => &t_prev,
                _ => &t_cur,
            };
            for (c, tc) in coeffs.iter_mut().zip(t.iter()) {
                *c += a * tc;
            }
            if j >= 1 {
                let mut next = vec![0.0; t_cur.len() + 1];
                for (i, v) in t_cur.iter().enumerate() {
                    next[i + 1] += 2.0 * v;
                }
                for (i, v) in t_prev.iter().enumerate() {
                    next[i] -= v;
                }
                t_prev = std::mem::replace(&mut t_cur, next);
            }
        }
        let mut p = Self {
            function,
            bound,
            coeffs,
            max_error: 0.0,
        };
        p.max_error = (0..=4000)
            .map(|i| {
                let x = bound * (i as f64 / 2000.0 - 1.0);
                (function.eval(x) - p.eval(x)).abs()
            })
            .fold(0.0, f64::max);
        p
    }

    /// Degree.
    pub fn degree(&self) -> usize {
        self.coeffs.len().saturating_sub(1)
    }

    /// Multiplicative depth of [`eval_tree`]: `⌈log2(d+1)⌉` (1 for degree ≤ 1).
    pub fn depth(&self) -> usize {
        poly_depth(self.degree())
    }

    /// `p(x/B)` by Horner (reference).
    pub fn eval(&self, x: f64) -> f64 {
        let u = x / self.bound;
        self.coeffs.iter().rev().fold(0.0, |acc, c| acc * u + c)
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

/// `⌈log2(d+1)⌉`, at least 1.
pub fn poly_depth(degree: usize) -> usize {
    let mut k = 1;
    while (1usize << k) < degree + 1 {
        k += 1;
    }
    k
}

/// The arithmetic the evaluation order needs; implemented on ciphertexts and on `f64`.
///
/// `target` is the scale the result must carry (ignored in cleartext); `power` is the index `j`
/// of the operand `u^{2^j}` so the backend knows its level.
pub trait PolyBackend {
    /// A value (ciphertext or cleartext vector).
    type Value;
    /// The error type.
    type Error;
    /// `u^{2^j}` for `j = 0..count` (index 0 is `u`).
    fn powers(&self, u: &Self::Value, count: usize) -> Result<Vec<Self::Value>, Self::Error>;
    /// `c1·u + c0`, at scale `target`.
    fn linear_leaf(
        &self,
        u: &Self::Value,
        c1: f64,
        c0: f64,
        target: f64,
    ) -> Result<Self::Value, Self::Error>;
    /// The scale a factor multiplied by `power` must have for the product to land at `target`.
    fn factor_target(&self, power: &Self::Value, target: f64) -> f64;
    /// `q·power` (relinearized, rescaled).
    fn mul(&self, q: Self::Value, power: &Self::Value) -> Result<Self::Value, Self::Error>;
    /// `a + b`, aligning levels (both carry the same scale).
    fn add(&self, a: Self::Value, b: Self::Value) -> Result<Self::Value, Self::Error>;
}

/// Evaluates `Σ coeffs[i]·u^i` with the recursive power-of-two split (depth `⌈log2(d+1)⌉`).
pub fn eval_tree<B: PolyBackend>(
    b: &B,
    u: &B::Value,
    coeffs: &[f64],
    target: f64,
) -> Result<B::Value, B::Error> {
    let k = poly_depth(coeffs.len().saturating_sub(1));
    let powers = b.powers(u, k)?;
    eval_rec(b, &powers, coeffs, target)
}

fn eval_rec<B: PolyBackend>(
    b: &B,
    powers: &[B::Value],
    c: &[f64],
    target: f64,
) -> Result<B::Value, B::Error> {
    let d = c.len().saturating_sub(1);
    if d <= 1 {
        let c0 = c.first().copied().unwrap_or(0.0);
        let c1 = c.get(1).copied().unwrap_or(0.0);
        return b.linear_leaf(&powers[0], c1, c0, target);
    }
    let k = poly_depth(d);
    let m = 1usize << (k - 1);
    let p = &powers[k - 1];
    let tq = b.factor_target(p, target);
    let q = eval_rec(b, powers, &c[m..], tq)?;
    let prod = b.mul(q, p)?;
    let r = eval_rec(b, powers, &c[..m], target)?;
    b.add(prod, r)
}

/// The cleartext backend (element-wise on vectors).
#[derive(Debug, Clone, Copy, Default)]
pub struct F64Backend;

impl PolyBackend for F64Backend {
    type Value = Vec<f64>;
    type Error = std::convert::Infallible;
    fn powers(&self, u: &Vec<f64>, count: usize) -> Result<Vec<Vec<f64>>, Self::Error> {
        let mut p = vec![u.clone()];
        for j in 1..count {
            let next = p[j - 1].iter().map(|v| v * v).collect();
            p.push(next);
        }
        Ok(p)
    }
    fn linear_leaf(&self, u: &Vec<f64>, c1: f64, c0: f64, _: f64) -> Result<Vec<f64>, Self::Error> {
        Ok(u.iter().map(|v| c1 * v + c0).collect())
    }
    fn factor_target(&self, _: &Vec<f64>, target: f64) -> f64 {
        target
    }
    fn mul(&self, q: Vec<f64>, p: &Vec<f64>) -> Result<Vec<f64>, Self::Error> {
        Ok(q.iter().zip(p).map(|(a, b)| a * b).collect())
    }
    fn add(&self, a: Vec<f64>, b: Vec<f64>) -> Result<Vec<f64>, Self::Error> {
        Ok(a.iter().zip(&b).map(|(x, y)| x + y).collect())
    }
}
