//! Precision statistics in bits: `-log2 |want - got|` per slot, summarised as min / mean /
//! median (the form Lattigo prints in every CKKS test).

use num_complex::Complex64;

/// Precision summary of a decrypted vector against its expected values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionStats {
    /// Worst slot, bits.
    pub min_bits: f64,
    /// Mean over slots of the per-slot bits `-log2 |err|`.
    pub mean_bits: f64,
    /// `-log2` of the mean absolute error: Lattigo's "mean precision" (`deltaToPrecision` of
    /// the mean delta), about 0.6 bit below [`mean_bits`](Self::mean_bits) for Gaussian errors.
    pub mean_error_bits: f64,
    /// Median over slots, bits.
    pub median_bits: f64,
    /// Largest absolute error.
    pub max_abs_error: f64,
}

impl PrecisionStats {
    /// Compares complex slots (errors are complex moduli; an exact slot counts as 64 bits).
    pub fn compare_complex(want: &[Complex64], got: &[Complex64]) -> Self {
        let mut bits: Vec<f64> = want
            .iter()
            .zip(got)
            .map(|(w, g)| {
                let e = (w - g).norm();
                if e == 0.0 {
                    64.0
                } else {
                    (-e.log2()).min(64.0)
                }
            })
            .collect();
        let max_abs_error = want
            .iter()
            .zip(got)
            .map(|(w, g)| (w - g).norm())
            .fold(0.0, f64::max);
        if bits.is_empty() {
            return Self {
                min_bits: 0.0,
                mean_bits: 0.0,
                mean_error_bits: 0.0,
                median_bits: 0.0,
                max_abs_error,
            };
        }
        bits.sort_by(|a, b| a.total_cmp(b));
        let mean = bits.iter().sum::<f64>() / bits.len() as f64;
        let mean_err = want
            .iter()
            .zip(got)
            .map(|(w, g)| (w - g).norm())
            .sum::<f64>()
            / bits.len() as f64;
        Self {
            min_bits: bits[0],
            mean_bits: mean,
            mean_error_bits: if mean_err == 0.0 {
                64.0
            } else {
                (-mean_err.log2()).min(64.0)
            },
            median_bits: bits[bits.len() / 2],
            max_abs_error,
        }
    }

    /// Compares real slots.
    pub fn compare(want: &[f64], got: &[f64]) -> Self {
        let w: Vec<Complex64> = want.iter().map(|x| Complex64::new(*x, 0.0)).collect();
        let g: Vec<Complex64> = got.iter().map(|x| Complex64::new(*x, 0.0)).collect();
        Self::compare_complex(&w, &g)
    }
}

impl std::fmt::Display for PrecisionStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "precision bits: min {:.2} / mean {:.2} (of the mean error {:.2}) / median {:.2} (max |err| {:.3e})",
            self.min_bits, self.mean_bits, self.mean_error_bits, self.median_bits, self.max_abs_error
        )
    }
}
