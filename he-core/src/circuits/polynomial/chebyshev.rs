//! Polynomials in the Chebyshev basis on an interval `[a, b]`: interpolation at Chebyshev
//! nodes, Clenshaw evaluation, conversion to and from monomials, parity, Chebyshev division
//! and the depth an encrypted evaluation consumes.
//!
//! A polynomial is stored as `p(x) = Σ_j c_j T_j(u)` with `u = (2x − a − b)/(b − a)` the
//! affine map of `[a, b]` onto `[−1, 1]`. The Chebyshev basis is the numerically stable one:
//! `|T_j(u)| ≤ 1` on the interval, so coefficients stay small and evaluation errors do not
//! grow with the degree (unlike monomials, whose coefficients grow like `2^d`).

use crate::{Error, Result};

/// Symmetry of a polynomial, detected from its Chebyshev coefficients (`T_j` has the parity
/// of `j`). Odd and even polynomials evaluate with only half the terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// Only even-index coefficients: `p(−u) = p(u)`.
    Even,
    /// Only odd-index coefficients: `p(−u) = −p(u)`.
    Odd,
    /// Neither.
    None,
}

/// A polynomial in the Chebyshev basis on `[a, b]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Polynomial {
    coeffs: Vec<f64>,
    a: f64,
    b: f64,
}

/// `⌈log2(d + 1)⌉`, at least 1: the multiplicative depth of a degree-`d` polynomial on
/// `[−1, 1]` (optimal; a constant also costs one level, the multiplication that brings it to
/// the target scale).
pub fn depth_for_degree(degree: usize) -> usize {
    let mut k = 1;
    while (1usize << k) < degree + 1 {
        k += 1;
    }
    k
}

fn check_interval(a: f64, b: f64) -> Result<()> {
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(Error::OutOfRange {
            what: "interval",
            found: format!("[{a}, {b}]"),
            allowed: "finite a < b".into(),
        });
    }
    Ok(())
}

fn check_coeffs(c: &[f64]) -> Result<()> {
    if c.is_empty() {
        return Err(Error::LengthMismatch {
            what: "polynomial coefficients",
            expected: 1,
            found: 0,
        });
    }
    if let Some(bad) = c.iter().find(|v| !v.is_finite()) {
        return Err(Error::OutOfRange {
            what: "polynomial coefficient",
            found: bad.to_string(),
            allowed: "finite".into(),
        });
    }
    Ok(())
}

/// `u·Σ c_j T_j = Σ c_j (T_{j+1} + T_{|j−1|})/2` in the Chebyshev basis.
fn mul_by_u(c: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; c.len() + 1];
    for (j, &v) in c.iter().enumerate() {
        if j == 0 {
            out[1] += v;
        } else {
            out[j + 1] += 0.5 * v;
            out[j - 1] += 0.5 * v;
        }
    }
    out
}

impl Polynomial {
    /// A polynomial from its Chebyshev coefficients `c_0..c_d` on `[a, b]`.
    pub fn chebyshev(coeffs: Vec<f64>, a: f64, b: f64) -> Result<Self> {
        check_interval(a, b)?;
        check_coeffs(&coeffs)?;
        Ok(Self { coeffs, a, b })
    }

    /// A polynomial from its monomial coefficients in `x` (lowest first), to be evaluated on
    /// `[a, b]`. Converted by Horner's rule carried out in the Chebyshev basis (exact in exact
    /// arithmetic; monomial forms of high degree are ill-conditioned, prefer
    /// [`interpolate`](Self::interpolate)).
    ///
    /// ```
    /// use he_core::circuits::polynomial::Polynomial;
    /// // x^2 on [-1, 1] is (T_0 + T_2)/2.
    /// let p = Polynomial::from_monomial(&[0.0, 0.0, 1.0], -1.0, 1.0).unwrap();
    /// assert!((p.coeffs()[0] - 0.5).abs() < 1e-15 && (p.coeffs()[2] - 0.5).abs() < 1e-15);
    /// assert!((p.eval(0.3) - 0.09).abs() < 1e-15);
    /// ```
    pub fn from_monomial(coeffs: &[f64], a: f64, b: f64) -> Result<Self> {
        check_interval(a, b)?;
        check_coeffs(coeffs)?;
        // x = h·u + m.
        let (h, m) = ((b - a) / 2.0, (a + b) / 2.0);
        let mut acc = vec![0.0];
        for &c in coeffs.iter().rev() {
            let hu = mul_by_u(&acc);
            let mut next: Vec<f64> = hu.iter().map(|v| h * v).collect();
            for (n, v) in next.iter_mut().zip(&acc) {
                *n += m * v;
            }
            next[0] += c;
            acc = next;
        }
        acc.truncate(coeffs.len());
        Ok(Self { coeffs: acc, a, b })
    }

    /// Chebyshev interpolation of `f` with `degree + 1` nodes
    /// `x_k = m + h·cos(π(k + ½)/(d + 1))` of `[a, b]`:
    /// `c_j = (2/(d+1)) Σ_k f(x_k) cos(jπ(k + ½)/(d + 1))` (`c_0` halved). Near-minimax for
    /// smooth `f`; the error decays geometrically with the degree for analytic functions.
    ///
    /// ```
    /// use he_core::circuits::polynomial::Polynomial;
    /// let p = Polynomial::interpolate(f64::exp, 15, -2.0, 2.0).unwrap();
    /// assert!((p.eval(1.3) - 1.3f64.exp()).abs() < 1e-12);
    /// ```
    pub fn interpolate(f: impl Fn(f64) -> f64, degree: usize, a: f64, b: f64) -> Result<Self> {
        check_interval(a, b)?;
        let n = degree + 1;
        let (h, m) = ((b - a) / 2.0, (a + b) / 2.0);
        let theta: Vec<f64> = (0..n)
            .map(|k| std::f64::consts::PI * (k as f64 + 0.5) / n as f64)
            .collect();
        let fx: Vec<f64> = theta.iter().map(|t| f(m + h * t.cos())).collect();
        let coeffs: Vec<f64> = (0..n)
            .map(|j| {
                let s: f64 = theta
                    .iter()
                    .zip(&fx)
                    .map(|(t, v)| v * (j as f64 * t).cos())
                    .sum();
                s * 2.0 / n as f64 * if j == 0 { 0.5 } else { 1.0 }
            })
            .collect();
        check_coeffs(&coeffs)?;
        Ok(Self { coeffs, a, b })
    }

    /// Chebyshev coefficients `c_0..c_d`.
    pub fn coeffs(&self) -> &[f64] {
        &self.coeffs
    }

    /// The interval `(a, b)`.
    pub fn interval(&self) -> (f64, f64) {
        (self.a, self.b)
    }

    /// True when the interval is exactly `[−1, 1]` (no change of variable needed).
    pub fn is_normalized(&self) -> bool {
        self.a == -1.0 && self.b == 1.0
    }

    /// Degree (index of the last nonzero coefficient; 0 for the zero polynomial).
    pub fn degree(&self) -> usize {
        self.coeffs.iter().rposition(|c| *c != 0.0).unwrap_or(0)
    }

    /// The normalised variable `u = (2x − a − b)/(b − a)` as `u = α·x + β`: `(α, β)`.
    pub fn change_of_variable(&self) -> (f64, f64) {
        let w = self.b - self.a;
        (2.0 / w, -(self.a + self.b) / w)
    }

    /// `p(x)` by Clenshaw's recurrence `b_k = c_k + 2u·b_{k+1} − b_{k+2}`,
    /// `p = c_0 + u·b_1 − b_2` (backward stable).
    pub fn eval(&self, x: f64) -> f64 {
        let (al, be) = self.change_of_variable();
        let u = al * x + be;
        clenshaw(&self.coeffs, u)
    }

    /// Monomial coefficients in `x` (lowest first), by the recurrence
    /// `T_{j+1}(u) = 2u·T_j(u) − T_{j−1}(u)` with `u = α·x + β`. Ill-conditioned for high
    /// degrees (the coefficients grow like `2^d`); for inspection and small degrees.
    pub fn to_monomial(&self) -> Vec<f64> {
        let (al, be) = self.change_of_variable();
        let n = self.coeffs.len();
        let mut out = vec![0.0; n];
        let mut t_prev = vec![1.0];
        let mut t_cur = vec![be, al];
        for (j, c) in self.coeffs.iter().enumerate() {
            let t = if j == 0 { &t_prev } else { &t_cur };
            for (o, v) in out.iter_mut().zip(t) {
                *o += c * v;
            }
            if j >= 1 {
                // next = 2(αx + β)·t_cur − t_prev.
                let mut next = vec![0.0; t_cur.len() + 1];
                for (i, v) in t_cur.iter().enumerate() {
                    next[i + 1] += 2.0 * al * v;
                    next[i] += 2.0 * be * v;
                }
                for (i, v) in t_prev.iter().enumerate() {
                    next[i] -= v;
                }
                t_prev = std::mem::replace(&mut t_cur, next);
            }
        }
        out
    }

    /// Parity from the coefficients: `Odd` (`Even`) when every even-index (odd-index)
    /// coefficient is below `2^−50` times the largest one.
    pub fn parity(&self) -> Parity {
        let max = self.coeffs.iter().fold(0.0f64, |m, c| m.max(c.abs()));
        let tol = max * 2f64.powi(-50);
        let small = |start: usize| {
            self.coeffs
                .iter()
                .skip(start)
                .step_by(2)
                .all(|c| c.abs() <= tol)
        };
        if self.degree() > 0 && small(0) {
            Parity::Odd
        } else if small(1) {
            Parity::Even
        } else {
            Parity::None
        }
    }

    /// The coefficients with those of the wrong parity set to exactly zero (so that the
    /// evaluation skips them).
    pub fn coeffs_with_parity(&self) -> Vec<f64> {
        let mut c = self.coeffs.clone();
        let skip = match self.parity() {
            Parity::Odd => Some(0),
            Parity::Even => Some(1),
            Parity::None => None,
        };
        if let Some(s) = skip {
            c.iter_mut().skip(s).step_by(2).for_each(|v| *v = 0.0);
        }
        c
    }

    /// Levels an encrypted evaluation consumes: `⌈log2(d + 1)⌉` (at least 1), plus one for
    /// the change of variable `u = α·x + β` when the interval is not `[−1, 1]`.
    pub fn depth(&self) -> usize {
        depth_for_degree(self.degree()) + usize::from(!self.is_normalized())
    }

    /// `λ·p` (same interval).
    pub fn scaled(&self, lambda: f64) -> Self {
        Self {
            coeffs: self.coeffs.iter().map(|c| c * lambda).collect(),
            a: self.a,
            b: self.b,
        }
    }

    /// `p + c` (same interval).
    pub fn add_constant(&self, c: f64) -> Self {
        let mut r = self.clone();
        r.coeffs[0] += c;
        r
    }
}

/// Clenshaw's recurrence for `Σ c_j T_j(u)`.
pub(crate) fn clenshaw(c: &[f64], u: f64) -> f64 {
    let (mut b1, mut b2) = (0.0, 0.0);
    for &ck in c.iter().skip(1).rev() {
        let b0 = ck + 2.0 * u * b1 - b2;
        b2 = b1;
        b1 = b0;
    }
    c.first().copied().unwrap_or(0.0) + u * b1 - b2
}

/// Chebyshev division by `T_m` for `m ≤ d < 2m`: `p = q·T_m + r` with `deg q = d − m`,
/// `deg r < m`, from `T_j = 2·T_{j−m}·T_m − T_{2m−j}` (`m < j < 2m`) and `T_m = T_0·T_m`.
pub(crate) fn divide(c: &[f64], m: usize) -> (Vec<f64>, Vec<f64>) {
    let d = c.len().saturating_sub(1);
    let mut q = vec![0.0; d.saturating_sub(m) + 1];
    let mut r: Vec<f64> = c.iter().take(m).copied().collect();
    r.resize(m.max(1), 0.0);
    for (j, &v) in c.iter().enumerate().skip(m) {
        if j == m {
            q[0] += v;
        } else {
            q[j - m] += 2.0 * v;
            r[2 * m - j] -= v;
        }
    }
    (q, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn depth_values() {
        for (d, k) in [
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (7, 3),
            (8, 4),
            (63, 6),
            (64, 7),
        ] {
            assert_eq!(depth_for_degree(d), k, "degree {d}");
        }
        let p = Polynomial::chebyshev(vec![1.0; 8], 0.0, 4.0).unwrap();
        assert_eq!(p.depth(), 4);
    }

    #[test]
    fn parity_and_errors() {
        let odd = Polynomial::interpolate(f64::sin, 15, -1.0, 1.0).unwrap();
        assert_eq!(odd.parity(), Parity::Odd);
        let even = Polynomial::interpolate(f64::cos, 14, -1.0, 1.0).unwrap();
        assert_eq!(even.parity(), Parity::Even);
        let none = Polynomial::interpolate(f64::exp, 7, -1.0, 1.0).unwrap();
        assert_eq!(none.parity(), Parity::None);
        assert!(matches!(
            Polynomial::chebyshev(vec![1.0], 1.0, 1.0),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            Polynomial::chebyshev(vec![], -1.0, 1.0),
            Err(Error::LengthMismatch { .. })
        ));
    }

    fn horner(m: &[f64], x: f64) -> f64 {
        m.iter().rev().fold(0.0, |acc, c| acc * x + c)
    }

    fn direct(c: &[f64], u: f64) -> f64 {
        // T_j(u) = cos(j·acos u) on [-1, 1].
        c.iter()
            .enumerate()
            .map(|(j, v)| v * (j as f64 * u.acos()).cos())
            .sum()
    }

    proptest! {
        #[test]
        fn clenshaw_matches_direct_and_division_is_exact(
            c in proptest::collection::vec(-1.0f64..1.0, 1..40),
            u in -1.0f64..1.0,
            m_pow in 0u32..6,
        ) {
            prop_assert!((clenshaw(&c, u) - direct(&c, u)).abs() < 1e-12);
            let d = c.len() - 1;
            let m = 1usize << m_pow;
            if d >= m && d < 2 * m {
                let (q, r) = divide(&c, m);
                let tm = (m as f64 * u.acos()).cos();
                let got = clenshaw(&q, u) * tm + clenshaw(&r, u);
                prop_assert!((got - clenshaw(&c, u)).abs() < 1e-12);
            }
        }

        #[test]
        fn basis_conversion_round_trips(
            m in proptest::collection::vec(-1.0f64..1.0, 1..10),
            a in -3.0f64..0.0,
            w in 0.5f64..3.0,
            t in 0.0f64..1.0,
        ) {
            let b = a + w;
            let p = Polynomial::from_monomial(&m, a, b).unwrap();
            let x = a + t * w;
            let scale = 1.0 + m.iter().map(|v| v.abs()).sum::<f64>() * 4f64.powi(m.len() as i32);
            prop_assert!((p.eval(x) - horner(&m, x)).abs() < 1e-12 * scale);
            let back = p.to_monomial();
            prop_assert!((horner(&back, x) - horner(&m, x)).abs() < 1e-11 * scale);
        }

        #[test]
        fn interpolation_reproduces_polynomials(
            c in proptest::collection::vec(-1.0f64..1.0, 1..30),
            x in -2.0f64..5.0,
        ) {
            let p = Polynomial::chebyshev(c.clone(), -2.0, 5.0).unwrap();
            let q = Polynomial::interpolate(|x| p.eval(x), c.len() - 1, -2.0, 5.0).unwrap();
            for (a, b) in p.coeffs().iter().zip(q.coeffs()) {
                prop_assert!((a - b).abs() < 1e-12);
            }
            prop_assert!((p.eval(x) - q.eval(x)).abs() < 1e-11);
        }
    }
}
