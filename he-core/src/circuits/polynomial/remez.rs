//! Odd minimax approximation of `sign` on `[−1, −ε] ∪ [ε, 1]` by the Remez exchange.
//!
//! For an odd polynomial `p = Σ_{k<m} a_k T_{2k+1}` (degree `2m − 1`) the problem reduces to
//! `[ε, 1]`, where the odd Chebyshev polynomials form a Haar system: the best approximation
//! of the constant 1 is characterised by an error `p − 1` that equioscillates at `m + 1`
//! points (Chebyshev's alternation theorem). The exchange alternates two steps until the
//! levelled error `|E|` and the true maximum error agree:
//!
//! 1. on the reference `x_0 < … < x_m`, solve `p(x_i) + (−1)^i E = 1` (a linear system in
//!    `a_0..a_{m−1}, E`);
//! 2. locate the local extrema of `p − 1` on `[ε, 1]` (a grid dense near `ε`, refined by
//!    golden-section search), keep one extremum per sign change (the largest) and, if there
//!    are more than `m + 1`, drop the smaller end; these are the next reference.

use super::chebyshev::{clenshaw, Polynomial};
use crate::{Error, Result};

/// An odd minimax approximation of `sign` on `[−1, −ε] ∪ [ε, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MinimaxSign {
    /// The polynomial (Chebyshev basis on `[−1, 1]`, odd).
    pub polynomial: Polynomial,
    /// `max |p(x) − 1|` over `[ε, 1]` (equal to the error on `[−1, −ε]` by symmetry).
    pub error: f64,
    /// The `ε` it was computed for.
    pub epsilon: f64,
}

fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Result<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .ok_or_else(|| Error::InvalidParameters("Remez: empty system".into()))?;
        if a[piv][col].abs() < 1e-300 {
            return Err(Error::InvalidParameters(
                "Remez: singular reference system".into(),
            ));
        }
        a.swap(col, piv);
        b.swap(col, piv);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (i, row) in rest.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            if f != 0.0 {
                for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * p;
                }
                b[col + 1 + i] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Ok(x)
}

fn golden_max(f: &impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut x1, mut x2) = (hi - g * (hi - lo), lo + g * (hi - lo));
    let (mut f1, mut f2) = (f(x1), f(x2));
    for _ in 0..60 {
        if f1 < f2 {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + g * (hi - lo);
            f2 = f(x2);
        } else {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - g * (hi - lo);
            f1 = f(x1);
        }
    }
    (lo + hi) / 2.0
}

/// The grid on which extrema are searched: Chebyshev-like points of `[ε, 1]` merged with
/// geometrically spaced ones (dense near `ε`, where the error of a sign approximation
/// oscillates fastest).
fn grid(eps: f64, m: usize) -> Vec<f64> {
    let g = (150 * m).max(1500);
    let mut x: Vec<f64> = (0..g)
        .flat_map(|i| {
            let t = i as f64 / (g - 1) as f64;
            [
                eps + (1.0 - eps) * (1.0 - (std::f64::consts::PI * t).cos()) / 2.0,
                eps * (1.0 / eps).powf(t),
            ]
        })
        .map(|v| v.clamp(eps, 1.0))
        .collect();
    x.sort_by(f64::total_cmp);
    x.dedup();
    x
}

/// Odd minimax polynomial of odd degree `degree` for `sign` on `[−1, −ε] ∪ [ε, 1]`,
/// `0 < ε < 1`, by the Remez exchange (see the module documentation).
///
/// ```
/// use he_core::circuits::polynomial::remez_sign;
/// let s = remez_sign(15, 0.1).unwrap();
/// assert!(s.error < 0.25);
/// // Equioscillation: the error is reached, never exceeded, on [ε, 1].
/// let worst = (0..=1000)
///     .map(|i| 0.1 + 0.9 * i as f64 / 1000.0)
///     .map(|x| (s.polynomial.eval(x) - 1.0).abs())
///     .fold(0.0, f64::max);
/// assert!(worst <= s.error * (1.0 + 1e-6));
/// ```
pub fn remez_sign(degree: usize, epsilon: f64) -> Result<MinimaxSign> {
    if degree.is_multiple_of(2) || degree > 255 {
        return Err(Error::OutOfRange {
            what: "minimax sign degree",
            found: degree.to_string(),
            allowed: "odd, 1..=255".into(),
        });
    }
    if !(epsilon > 0.0 && epsilon < 1.0) {
        return Err(Error::OutOfRange {
            what: "sign approximation epsilon",
            found: epsilon.to_string(),
            allowed: "0 < ε < 1".into(),
        });
    }
    let m = degree.div_ceil(2);
    let full = |a: &[f64]| -> Vec<f64> {
        let mut c = vec![0.0; 2 * m];
        for (k, v) in a.iter().enumerate() {
            c[2 * k + 1] = *v;
        }
        c
    };
    let t = |k: usize, x: f64| ((2 * k + 1) as f64 * x.acos()).cos();
    let mut reference: Vec<f64> = (0..=m)
        .map(|i| {
            epsilon
                + (1.0 - epsilon) * (1.0 - (std::f64::consts::PI * i as f64 / m as f64).cos()) / 2.0
        })
        .collect();
    let xs = grid(epsilon, m);
    let mut best: Option<(Vec<f64>, f64)> = None;
    for _ in 0..100 {
        let a_mat: Vec<Vec<f64>> = reference
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let mut row: Vec<f64> = (0..m).map(|k| t(k, x)).collect();
                row.push(if i % 2 == 0 { 1.0 } else { -1.0 });
                row
            })
            .collect();
        let sol = solve(a_mat, vec![1.0; m + 1])?;
        let coeffs = full(&sol[..m]);
        let level = sol[m].abs();
        let err = |x: f64| clenshaw(&coeffs, x) - 1.0;
        // Local extrema on the grid, refined.
        let ev: Vec<f64> = xs.iter().map(|&x| err(x)).collect();
        let mut ext: Vec<(f64, f64)> = Vec::new();
        for i in 0..xs.len() {
            let is_ext = if i == 0 || i + 1 == xs.len() {
                true
            } else {
                (ev[i] - ev[i - 1]) * (ev[i + 1] - ev[i]) <= 0.0
            };
            if !is_ext {
                continue;
            }
            let x = if i == 0 || i + 1 == xs.len() {
                xs[i]
            } else {
                let s = ev[i].signum();
                golden_max(&|x| s * err(x), xs[i - 1], xs[i + 1])
            };
            ext.push((x, err(x)));
        }
        let max_err = ext.iter().fold(0.0f64, |a, e| a.max(e.1.abs()));
        if best.as_ref().is_none_or(|b| max_err < b.1) {
            best = Some((coeffs.clone(), max_err));
        }
        if max_err - level <= 1e-9 * max_err {
            break;
        }
        // Alternating subsequence: one extremum per run of equal signs.
        let mut alt: Vec<(f64, f64)> = Vec::new();
        for e in ext {
            match alt.last_mut() {
                Some(last) if last.1.signum() == e.1.signum() => {
                    if e.1.abs() > last.1.abs() {
                        *last = e;
                    }
                }
                _ => alt.push(e),
            }
        }
        while alt.len() > m + 1 {
            let drop_first = alt[0].1.abs() < alt[alt.len() - 1].1.abs();
            if drop_first {
                alt.remove(0);
            } else {
                alt.pop();
            }
        }
        if alt.len() < m + 1 {
            break;
        }
        reference = alt.iter().map(|e| e.0).collect();
    }
    let (coeffs, error) =
        best.ok_or_else(|| Error::InvalidParameters("Remez: no iteration completed".into()))?;
    Ok(MinimaxSign {
        polynomial: Polynomial::chebyshev(coeffs, -1.0, 1.0)?,
        error,
        epsilon,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remez_equioscillates_and_beats_interpolation() {
        for (d, eps) in [(7, 0.2), (15, 0.05), (27, 0.01), (63, 2f64.powi(-8))] {
            let s = remez_sign(d, eps).unwrap();
            let xs = grid(eps, 200);
            let worst = xs
                .iter()
                .map(|x| (s.polynomial.eval(*x) - 1.0).abs())
                .fold(0.0, f64::max);
            println!(
                "remez degree {d}, eps {eps:.4}: error {:.3e} (grid {worst:.3e})",
                s.error
            );
            assert!(worst <= s.error * (1.0 + 1e-6), "{worst} > {}", s.error);
            assert!(s.error < 1.0);
            assert_eq!(s.polynomial.degree(), d);
            // Odd.
            assert!((s.polynomial.eval(-0.5) + s.polynomial.eval(0.5)).abs() < 1e-12);
        }
        assert!(matches!(remez_sign(8, 0.1), Err(Error::OutOfRange { .. })));
        assert!(matches!(remez_sign(7, 0.0), Err(Error::OutOfRange { .. })));
    }
}
