//! Baby-step giant-step evaluation of Chebyshev series with exact scale management.
//!
//! # Algorithm
//!
//! With `u` the (normalised) input, the evaluator recursively splits `p = q·T_m + r` by
//! Chebyshev division (`m` the largest power of two `≤ deg p`, so `deg q, deg r < m`), and
//! evaluates a node directly as a *leaf* `Σ_j c_j T_j` when its degree is at most the
//! baby-step bound `2^s` (`s ≈ ⌈log2(d+1)⌉/2`) and every `T_j` it needs lies at least one level
//! above the node's output level. Baby steps `T_j` (`j ≤ 2^s`) and giant steps `T_{2^k}` are
//! computed once, lazily, by the product rule `T_{m+n} = 2·T_m·T_n − T_{m−n}` with
//! `m = 2^{⌈log2 j⌉−1} ≥ n`, so `T_j` sits exactly `⌈log2 j⌉` levels below `u`
//! (`T_{2m} = 2T_m² − 1` for powers of two). Only the `T_j` that a nonzero coefficient needs
//! are ever formed, which is how odd and even polynomials evaluate with half the terms.
//!
//! # Depth
//!
//! A node of degree `d` with output level `ℓ` is feasible whenever `u` is at level
//! `≥ ℓ + ⌈log2(d+1)⌉`: a linear leaf needs one level, and for `d ≥ 2`, `T_m` lies
//! `log2 m = ⌈log2(d+1)⌉ − 1` levels below `u`, `q` is evaluated to level `ℓ + 1` and `r` to
//! `ℓ`. The evaluation therefore consumes exactly `⌈log2(d+1)⌉` levels, the optimum, plus one
//! for the change of variable `u = α·x + β` when the interval is not `[−1, 1]`.
//!
//! # Exact scales (Bossuat et al., Eurocrypt 2021, §4)
//!
//! Every node receives the level *and scale* its result must have. For a product node with
//! target `(ℓ, Δ)`, the quotient is evaluated to `(ℓ + 1, Δ·q_{ℓ+1}/Δ(T_m))`, so that
//! `q·T_m` rescaled by `q_{ℓ+1}` lands on `Δ` exactly, and the remainder to `(ℓ, Δ)`. A leaf
//! with target `(ℓ, Δ)` multiplies each `T_j` (dropped to level `ℓ + 1`) by its coefficient
//! encoded at `K_j = Δ·q_{ℓ+1}/Δ(T_j)`, sums, rescales once and adds `c_0`. In the product
//! rule, `T_{m−n}` joins the unrescaled product `T_m·T_n` multiplied by `−1` encoded at
//! `Δ(T_m)Δ(T_n)/Δ(T_{m−n})`. Hence no scale is ever reinterpreted: the output carries
//! `target_scale` (to the last bits of an `f64`), whatever the primes of the chain.
//!
//! Constants are encoded as integers below `2^126` (see
//! [`Evaluator::mul_const_scaled_assign`](crate::ckks::Evaluator::mul_const_scaled_assign)),
//! and the product rule adds `−1` at the scale of an unrescaled product, so scales up to about
//! `2^62` are supported (a 60-bit scale is the usual maximum).

use super::backend::PolynomialBackend;
use super::chebyshev::{depth_for_degree, divide, Polynomial};
use crate::{Error, Result};
use std::collections::BTreeMap;

/// `⌈log2 j⌉` (0 for `j ≤ 1`).
fn ceil_log2(j: usize) -> usize {
    if j <= 1 {
        0
    } else {
        (usize::BITS - (j - 1).leading_zeros()) as usize
    }
}

/// The baby-step bound `2^s` for a polynomial of degree `d`.
fn baby_bound(d: usize) -> usize {
    let l = depth_for_degree(d);
    1 << (l / 2).max(1)
}

fn internal(what: &str) -> Error {
    Error::InvalidParameters(format!("internal (polynomial evaluation): {what}"))
}

/// Evaluates [`Polynomial`]s on the values of a [`PolynomialBackend`]: ciphertexts through
/// the CKKS [`Evaluator`](crate::ckks::Evaluator), or their cleartext model through
/// [`CleartextBackend`](super::CleartextBackend) — the same code path.
#[derive(Debug)]
pub struct PolynomialEvaluator<'a, B: PolynomialBackend> {
    backend: &'a B,
}

impl<'a, B: PolynomialBackend> PolynomialEvaluator<'a, B> {
    /// An evaluator on `backend`.
    pub fn new(backend: &'a B) -> Self {
        Self { backend }
    }

    /// The backend.
    pub fn backend(&self) -> &'a B {
        self.backend
    }

    /// Level of the result of evaluating `p` on a value at `input_level`: the input level
    /// minus [`Polynomial::depth`]; [`Error::OutOfLevels`] when the input is too low.
    pub fn output_level(input_level: usize, p: &Polynomial) -> Result<usize> {
        let depth = p.depth();
        input_level.checked_sub(depth).ok_or(Error::OutOfLevels {
            operation: "polynomial evaluation",
            needed: depth,
            found: input_level,
        })
    }

    /// `p(x)` slot-wise, at level `level(x) − p.depth()` and scale `target_scale`.
    ///
    /// Errors: [`Error::OutOfLevels`] when `x` is below [`Polynomial::depth`],
    /// [`Error::OutOfRange`] for a target scale that is not finite and positive (or so small
    /// or large that a constant cannot be encoded), and whatever the backend reports.
    ///
    /// ```
    /// use he_core::circuits::polynomial::{CleartextBackend, Polynomial, PolynomialEvaluator};
    /// // A 40-bit-scale chain of primes (not equal to the scale), simulated in cleartext.
    /// let q = [(1u64 << 50) - 27, (1 << 40) - 87, (1 << 40) - 195, (1 << 40) + 15, (1 << 40) - 167];
    /// let be = CleartextBackend::new(&q);
    /// let x = be.value(vec![-0.9, 0.1, 0.7], 4, 2f64.powi(40)).unwrap();
    /// let p = Polynomial::interpolate(f64::exp, 15, -1.0, 1.0).unwrap();
    /// let y = PolynomialEvaluator::new(&be).evaluate(&x, &p, 2f64.powi(40)).unwrap();
    /// assert_eq!(y.level, 4 - 4);
    /// assert!((y.scale / 2f64.powi(40) - 1.0).abs() < 1e-12);
    /// assert!((y.values[1] - 0.1f64.exp()).abs() < 1e-9);
    /// ```
    pub fn evaluate(&self, x: &B::Value, p: &Polynomial, target_scale: f64) -> Result<B::Value> {
        let be = self.backend;
        if !target_scale.is_finite() || target_scale <= 0.0 {
            return Err(Error::OutOfRange {
                what: "target scale",
                found: target_scale.to_string(),
                allowed: "finite and > 0".into(),
            });
        }
        let out_level = Self::output_level(be.level(x), p)?;
        let u = if p.is_normalized() {
            x.clone()
        } else {
            // u = α·x + β, one level: α encoded at q_l keeps the scale of x.
            let (al, beta) = p.change_of_variable();
            let mut u = x.clone();
            let ql = be.prime(be.level(&u))?;
            be.mul_const_scaled_assign(&mut u, al, ql)?;
            be.rescale_assign(&mut u)?;
            be.add_const_assign(&mut u, beta)?;
            u
        };
        let coeffs = p.coeffs_with_parity();
        let mut run = Run {
            be,
            top: be.level(&u),
            baby: baby_bound(p.degree()),
            basis: BTreeMap::from([(1, u)]),
        };
        run.node(&coeffs, out_level, target_scale)
    }
}

/// One evaluation: the lazily built Chebyshev basis `T_j(u)`.
struct Run<'b, B: PolynomialBackend> {
    be: &'b B,
    /// Level of `u = T_1`.
    top: usize,
    /// Largest `j` a leaf may use.
    baby: usize,
    basis: BTreeMap<usize, B::Value>,
}

impl<B: PolynomialBackend> Run<'_, B> {
    /// `T_j(u)`, `j ≥ 1`, at level `top − ⌈log2 j⌉`.
    fn power(&mut self, j: usize) -> Result<B::Value> {
        if let Some(v) = self.basis.get(&j) {
            return Ok(v.clone());
        }
        if j < 2 {
            return Err(internal("T_0 requested as a ciphertext"));
        }
        let be = self.be;
        let m = 1usize << (ceil_log2(j) - 1);
        let n = j - m;
        let tm = self.power(m)?;
        let mut prod = if n == m {
            be.mul_relin(&tm, &tm)?
        } else {
            let mut tn = self.power(n)?;
            let mut tm = tm;
            let l = be.level(&tm).min(be.level(&tn));
            be.drop_to_level(&mut tm, l)?;
            be.drop_to_level(&mut tn, l)?;
            be.mul_relin(&tm, &tn)?
        };
        be.mul_int_assign(&mut prod, 2)?;
        let r = m - n;
        if r == 0 {
            be.add_const_assign(&mut prod, -1.0)?;
        } else {
            let mut tr = self.power(r)?;
            be.drop_to_level(&mut tr, be.level(&prod))?;
            let k = be.scale(&prod) / be.scale(&tr);
            be.mul_const_scaled_assign(&mut tr, -1.0, k)?;
            be.add_assign(&mut prod, &tr)?;
        }
        be.rescale_assign(&mut prod)?;
        self.basis.insert(j, prod.clone());
        Ok(prod)
    }

    /// Whether `Σ c_j T_j` can be evaluated directly to level `level`.
    fn leaf_ok(&self, c: &[f64], level: usize) -> bool {
        self.top > level
            && c.iter()
                .enumerate()
                .skip(1)
                .all(|(j, v)| *v == 0.0 || (j <= self.baby && self.top >= level + 1 + ceil_log2(j)))
    }

    /// `Σ c_j T_j` to `(level, scale)`.
    fn leaf(&mut self, c: &[f64], level: usize, scale: f64) -> Result<B::Value> {
        let be = self.be;
        let q1 = be.prime(level + 1)?;
        let mut terms: Vec<(usize, f64)> = c
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, v)| **v != 0.0)
            .map(|(j, v)| (j, *v))
            .collect();
        if terms.is_empty() {
            // A constant still needs a value at the target scale: 0·T_1.
            terms.push((1, 0.0));
        }
        let mut acc: Option<B::Value> = None;
        for (j, cj) in terms {
            let mut t = self.power(j)?;
            be.drop_to_level(&mut t, level + 1)?;
            let k = scale * q1 / be.scale(&t);
            be.mul_const_scaled_assign(&mut t, cj, k)?;
            match acc.as_mut() {
                None => acc = Some(t),
                Some(a) => be.add_assign(a, &t)?,
            }
        }
        let mut acc = acc.ok_or_else(|| internal("empty leaf"))?;
        be.rescale_assign(&mut acc)?;
        let c0 = c.first().copied().unwrap_or(0.0);
        if c0 != 0.0 {
            be.add_const_assign(&mut acc, c0)?;
        }
        Ok(acc)
    }

    /// `Σ c_j T_j` to `(level, scale)`, recursively.
    fn node(&mut self, c: &[f64], level: usize, scale: f64) -> Result<B::Value> {
        let d = c.iter().rposition(|v| *v != 0.0).unwrap_or(0);
        let c = &c[..=d];
        if self.leaf_ok(c, level) {
            return self.leaf(c, level, scale);
        }
        let needed = level + depth_for_degree(d);
        if d < 2 || self.top < needed {
            return Err(Error::OutOfLevels {
                operation: "polynomial evaluation",
                needed,
                found: self.top,
            });
        }
        let be = self.be;
        let m = 1usize << (usize::BITS - 1 - d.leading_zeros());
        let (q, r) = divide(c, m);
        let mut tm = self.power(m)?;
        let qs = scale * be.prime(level + 1)? / be.scale(&tm);
        let qv = self.node(&q, level + 1, qs)?;
        be.drop_to_level(&mut tm, level + 1)?;
        let mut prod = be.mul_relin(&qv, &tm)?;
        be.rescale_assign(&mut prod)?;
        if r.iter().skip(1).all(|v| *v == 0.0) {
            if r[0] != 0.0 {
                be.add_const_assign(&mut prod, r[0])?;
            }
        } else {
            let rv = self.node(&r, level, scale)?;
            be.add_assign(&mut prod, &rv)?;
        }
        Ok(prod)
    }
}
