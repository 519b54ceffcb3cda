//! The product of two sparse linear layers: `(W2, b2) ∘ (W1, b1) = (W2·W1, W2·b1 + b2)`.
//!
//! Two linear layers in a row cost two CKKS levels; their product costs one. The product is
//! computed row by row (Gustavson 1978): row `i` of `W2·W1` is the sum of the rows `k` of `W1`
//! named in row `i` of `W2`, scaled by `W2[i][k]`, accumulated in a dense buffer of `W1`'s
//! input length. Its cost is known before it is computed:
//!
//! * multiply-adds `= Σ_k nnz(column k of W2) · nnz(row k of W1)` ([`Linear::product_multiply_adds`],
//!   in `O(nnz(W1) + nnz(W2))`);
//! * structural nonzeros, at most the multiply-adds ([`Linear::product_nonzeros`], in
//!   `O(multiply-adds)` time and `O(in_len)` memory, nothing else allocated).
//!
//! so a caller (the fusion pass, [`crate::fuse`]) can refuse a product that would be too large
//! before allocating it. Products that cancel to exactly `0.0` are dropped, as
//! [`Linear::dense`] drops zero weights; every row comes out sorted by column.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::Linear;
use crate::error::{shape_err, Result};

/// Longest name or kind [`joined`] builds by concatenation.
const MAX_JOINED: usize = 200;

/// `"{a}+{b}"`, or `"…+{b}"` when that would be longer than 200 bytes: the names and kinds
/// of a long chain of fused layers stay bounded.
pub(crate) fn joined(a: &str, b: &str) -> String {
    if a.len() + 1 + b.len() <= MAX_JOINED {
        format!("{a}+{b}")
    } else {
        format!("…+{b}")
    }
}

impl Linear {
    /// `next ∘ self`: the layer computing `next.apply(self.apply(x))`, i.e. the matrix
    /// `next.W · self.W` with bias `next.W · self.b + next.b`. Its `kind` is
    /// `"{self.kind}+{next.kind}"` (cut to `"…+{next.kind}"` beyond 200 bytes).
    ///
    /// Errors ([`crate::NnError::Shape`]) when `self.out_len != next.in_len` or either layer
    /// is malformed (a row count, bias length or column index that disagrees with its sizes).
    ///
    /// ```
    /// use he_nn::Linear;
    /// # fn main() -> he_nn::Result<()> {
    /// // x -> [x0 + x1, 2·x1] + [1, 0], then -> [3·y0 - y1]
    /// let first = Linear::dense(&[1.0, 1.0, 0.0, 2.0], 2, 2, Some(&[1.0, 0.0]))?;
    /// let second = Linear::dense(&[3.0, -1.0], 1, 2, None)?;
    /// let fused = first.then(&second)?;
    /// let x = [0.5, -2.0];
    /// assert_eq!(fused.apply(&x)?, second.apply(&first.apply(&x)?)?);
    /// assert_eq!(fused.rows, vec![vec![(0, 3.0), (1, 1.0)]]);
    /// assert_eq!(fused.bias, vec![3.0]);
    /// # Ok(()) }
    /// ```
    pub fn then(&self, next: &Linear) -> Result<Linear> {
        self.check_pair(next)?;
        let mut acc = vec![0.0f64; self.in_len];
        let mut seen = vec![false; self.in_len];
        let mut touched: Vec<usize> = Vec::new();
        let mut rows = Vec::with_capacity(next.out_len);
        let mut bias = Vec::with_capacity(next.out_len);
        for (row2, b2) in next.rows.iter().zip(&next.bias) {
            let mut b = *b2;
            for &(k, w2) in row2 {
                let (Some(row1), Some(b1)) = (self.rows.get(k), self.bias.get(k)) else {
                    return Err(self.bad_column(next, k));
                };
                b += w2 * b1;
                for &(j, w1) in row1 {
                    let (Some(a), Some(s)) = (acc.get_mut(j), seen.get_mut(j)) else {
                        return Err(shape_err(
                            format!("{} column", self.kind),
                            format!("< {}", self.in_len),
                            j,
                        ));
                    };
                    if !*s {
                        *s = true;
                        touched.push(j);
                    }
                    *a += w2 * w1;
                }
            }
            touched.sort_unstable();
            let mut row = Vec::with_capacity(touched.len());
            for &j in &touched {
                if let (Some(a), Some(s)) = (acc.get_mut(j), seen.get_mut(j)) {
                    if *a != 0.0 {
                        row.push((j, *a));
                    }
                    *a = 0.0;
                    *s = false;
                }
            }
            touched.clear();
            rows.push(row);
            bias.push(b);
        }
        Ok(Linear {
            kind: joined(&self.kind, &next.kind),
            in_len: self.in_len,
            out_len: next.out_len,
            rows,
            bias,
        })
    }

    /// `self ∘ first` (matrix order: `self.W · first.W`), the same as `first.then(self)`.
    ///
    /// ```
    /// use he_nn::Linear;
    /// # fn main() -> he_nn::Result<()> {
    /// let pool = Linear::global_avg_pool(1, 4)?;              // [1, 4] -> [1]
    /// let scale = Linear::dense(&[2.0], 1, 1, Some(&[0.5]))?;  // y -> 2y + 0.5
    /// let fused = scale.compose(&pool)?;
    /// assert_eq!(fused.apply(&[1.0, 2.0, 3.0, 4.0])?, vec![5.5]);
    /// # Ok(()) }
    /// ```
    pub fn compose(&self, first: &Linear) -> Result<Linear> {
        first.then(self)
    }

    /// Multiply-adds [`Self::then`] performs for `next ∘ self` (`Σ_k nnz(column k of
    /// next.W) · nnz(row k of self.W)`, saturating at `usize::MAX`), in `O(nnz)` time; an
    /// upper bound on the product's nonzeros. Errors as [`Self::then`].
    pub fn product_multiply_adds(&self, next: &Linear) -> Result<usize> {
        self.check_pair(next)?;
        let mut total = 0usize;
        for row2 in &next.rows {
            for &(k, _) in row2 {
                let row1 = self.rows.get(k).ok_or_else(|| self.bad_column(next, k))?;
                total = total.saturating_add(row1.len());
            }
        }
        Ok(total)
    }

    /// Structural nonzeros of `next ∘ self` (exact cancellations to `0.0` included, which
    /// [`Self::then`] then drops), counted without building the product: `O(multiply-adds)`
    /// time, `O(self.in_len)` memory. Errors as [`Self::then`].
    pub fn product_nonzeros(&self, next: &Linear) -> Result<usize> {
        self.check_pair(next)?;
        // `mark[j] == i + 1`: column j already counted in output row i.
        let mut mark = vec![0usize; self.in_len];
        let mut total = 0usize;
        for (i, row2) in next.rows.iter().enumerate() {
            for &(k, _) in row2 {
                let row1 = self.rows.get(k).ok_or_else(|| self.bad_column(next, k))?;
                for &(j, _) in row1 {
                    let m = mark.get_mut(j).ok_or_else(|| {
                        shape_err(
                            format!("{} column", self.kind),
                            format!("< {}", self.in_len),
                            j,
                        )
                    })?;
                    if *m != i + 1 {
                        *m = i + 1;
                        total += 1;
                    }
                }
            }
        }
        Ok(total)
    }

    /// Checks that `next` reads `self`'s output and that both are well formed (rows and
    /// bias of their stated lengths; the column indices are checked as they are read).
    fn check_pair(&self, next: &Linear) -> Result<()> {
        for l in [self, next] {
            if l.rows.len() != l.out_len || l.bias.len() != l.out_len {
                return Err(shape_err(
                    format!("{} rows and bias", l.kind),
                    l.out_len,
                    format!("{} rows, {} biases", l.rows.len(), l.bias.len()),
                ));
            }
        }
        if self.out_len != next.in_len {
            return Err(shape_err(
                format!("product {} -> {}", self.kind, next.kind),
                format!("{} inputs to the second layer", self.out_len),
                next.in_len,
            ));
        }
        Ok(())
    }

    fn bad_column(&self, next: &Linear, k: usize) -> crate::NnError {
        shape_err(
            format!("{} column", next.kind),
            format!("< {}", self.out_len),
            k,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn mismatched_sizes_are_a_shape_error() {
        let a = Linear::dense(&[1.0; 6], 2, 3, None).unwrap();
        let b = Linear::dense(&[1.0; 6], 2, 3, None).unwrap();
        assert!(matches!(a.then(&b), Err(crate::NnError::Shape { .. })));
        assert!(a.product_nonzeros(&b).is_err());
        assert!(a.product_multiply_adds(&b).is_err());
    }

    #[test]
    fn malformed_columns_are_errors_not_panics() {
        let a = Linear::dense(&[1.0; 4], 2, 2, None).unwrap();
        let mut b = Linear::dense(&[1.0; 4], 2, 2, None).unwrap();
        b.rows[1].push((7, 1.0));
        assert!(a.then(&b).is_err());
        assert!(a.product_nonzeros(&b).is_err());
        let mut c = a.clone();
        c.rows[0].push((9, 1.0));
        assert!(c.then(&a).is_err());
        assert!(c.product_nonzeros(&a).is_err());
        c.rows.pop();
        assert!(c.then(&a).is_err());
    }

    #[test]
    fn cancellation_is_dropped_but_counted_structurally() {
        // [1, 1] · [[1], [-1]] = 0.
        let a = Linear::dense(&[1.0, -1.0], 2, 1, None).unwrap();
        let b = Linear::dense(&[1.0, 1.0], 1, 2, None).unwrap();
        let p = a.then(&b).unwrap();
        assert_eq!(p.rows, vec![vec![]]);
        assert_eq!(a.product_nonzeros(&b).unwrap(), 1);
        assert_eq!(a.product_multiply_adds(&b).unwrap(), 2);
    }
}
