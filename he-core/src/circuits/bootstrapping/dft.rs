//! The homomorphic DFTs of bootstrapping, factorised by levels (Cheon, Han, Kim, Kim, Song,
//! "Improved bootstrapping for approximate HE", Eurocrypt 2019; Chen, Chillotti, Song 2019).
//!
//! The encoder's "special FFT" (`z = V·u`, `u_k = m_k + i·m_{k+N/2}`) is a bit-reversal
//! permutation followed by `log2 n` butterfly stages, each a matrix with three nonzero
//! diagonals (`0` and `±len/2`). Bootstrapping never applies the bit reversal: CoeffToSlot
//! applies the inverse stages alone, so its slots hold `u` in bit-reversed order; EvalMod works
//! slot by slot; SlotToCoeff applies the forward stages to that bit-reversed vector, which is
//! exactly `V·u`. The stages are merged into as many groups as there are levels for each
//! transform; a group of `b` stages has at most `2^(b+1) − 1` diagonals, and CoeffToSlot and
//! SlotToCoeff use the same grouping so that their rotations (and keys) coincide.

use crate::circuits::lintrans::Diagonals;
use crate::ckks::Complex64;
use crate::{Error, Result};

/// `e^(2πi·5^j·(2N/lenq)/(2N))` for the stage of length `len` (`lenq = 4·len`): the twiddle
/// the encoder's special FFT uses at position `j` of a block.
fn twiddle(degree: usize, len: usize, j: usize) -> Complex64 {
    let m = 2 * degree as u64;
    let lenq = 4 * len as u64;
    let mut g = 1u64;
    for _ in 0..j {
        g = g * 5 % lenq;
    }
    let idx = g * (m / lenq);
    let a = 2.0 * std::f64::consts::PI * idx as f64 / m as f64;
    Complex64::new(a.cos(), a.sin())
}

/// One butterfly stage of the forward special FFT on `slots` slots, as diagonals:
/// `v[i+j] ← v[i+j] + ψ_j·v[i+j+h]`, `v[i+j+h] ← v[i+j] − ψ_j·v[i+j+h]`, `h = len/2`.
pub fn forward_stage(degree: usize, slots: usize, len: usize) -> Result<Diagonals> {
    let h = len / 2;
    let one = Complex64::new(1.0, 0.0);
    let zero = Complex64::new(0.0, 0.0);
    let (mut d0, mut dp, mut dm) = (vec![zero; slots], vec![zero; slots], vec![zero; slots]);
    let psi: Vec<Complex64> = (0..h).map(|j| twiddle(degree, len, j)).collect();
    for i in (0..slots).step_by(len) {
        for (j, p) in psi.iter().enumerate() {
            d0[i + j] = one;
            dp[i + j] = *p;
            dm[i + j + h] = one;
            d0[i + j + h] = -*p;
        }
    }
    let mut d = Diagonals::new(slots)?;
    d.insert(0, d0)?;
    d.insert(h as i64, dp)?;
    d.insert(-(h as i64), dm)?;
    Ok(d)
}

/// One butterfly stage of the inverse special FFT (without the final `1/n`):
/// `v[i+j] ← v[i+j] + v[i+j+h]`, `v[i+j+h] ← (v[i+j] − v[i+j+h])·conj(ψ_j)`.
pub fn inverse_stage(degree: usize, slots: usize, len: usize) -> Result<Diagonals> {
    let h = len / 2;
    let one = Complex64::new(1.0, 0.0);
    let zero = Complex64::new(0.0, 0.0);
    let (mut d0, mut dp, mut dm) = (vec![zero; slots], vec![zero; slots], vec![zero; slots]);
    let psi: Vec<Complex64> = (0..h).map(|j| twiddle(degree, len, j).conj()).collect();
    for i in (0..slots).step_by(len) {
        for (j, p) in psi.iter().enumerate() {
            d0[i + j] = one;
            dp[i + j] = one;
            dm[i + j + h] = *p;
            d0[i + j + h] = -*p;
        }
    }
    let mut d = Diagonals::new(slots)?;
    d.insert(0, d0)?;
    d.insert(h as i64, dp)?;
    d.insert(-(h as i64), dm)?;
    Ok(d)
}

/// Splits the `log2 n` stages into `levels` groups of consecutive stages, sizes as equal as
/// possible, larger groups first (stage `s` has length `2^(s+1)`). Returns stage index ranges
/// in increasing length.
pub fn stage_groups(log_slots: usize, levels: usize) -> Result<Vec<std::ops::Range<usize>>> {
    if levels == 0 || levels > log_slots.max(1) {
        return Err(Error::OutOfRange {
            what: "levels of a homomorphic DFT",
            found: levels.to_string(),
            allowed: format!("1..={} (log2 of the slots)", log_slots.max(1)),
        });
    }
    let (base, extra) = (log_slots / levels, log_slots % levels);
    let mut out = Vec::with_capacity(levels);
    let mut s = 0;
    for g in 0..levels {
        let size = base + usize::from(g < extra);
        out.push(s..s + size);
        s += size;
    }
    Ok(out)
}

/// Merges consecutive butterfly stages into one factor per group: the stages of each range
/// are composed in the order given (`stage(s)` first for the range's first `s`), and the
/// product is scaled by `factor`.
fn merge_stages(
    groups: impl Iterator<Item = Vec<usize>>,
    stage: impl Fn(usize) -> Result<Diagonals>,
    factor: Complex64,
) -> Result<Vec<Diagonals>> {
    let mut out = Vec::new();
    for range in groups {
        let mut acc: Option<Diagonals> = None;
        for s in range {
            let st = stage(s)?;
            acc = Some(match acc {
                None => st,
                Some(a) => st.compose(&a)?,
            });
        }
        let mut a = acc.ok_or_else(|| Error::InvalidParameters("internal: empty group".into()))?;
        a.scale(factor);
        out.push(a);
    }
    Ok(out)
}

/// The factors of SlotToCoeff (forward stages), in the order they are applied (shortest
/// stages first), each scaled by `factor` (the product of the factors' scalings is
/// `factor^levels`).
pub fn slot_to_coeff_factors(
    degree: usize,
    slots: usize,
    levels: usize,
    factor: Complex64,
) -> Result<Vec<Diagonals>> {
    let groups = stage_groups(slots.trailing_zeros() as usize, levels)?;
    merge_stages(
        groups.into_iter().map(|r| r.collect()),
        |s| forward_stage(degree, slots, 2 << s),
        factor,
    )
}

/// The factors of CoeffToSlot (inverse stages, longest first), in the order they are
/// applied, each scaled by `factor`.
pub fn coeff_to_slot_factors(
    degree: usize,
    slots: usize,
    levels: usize,
    factor: Complex64,
) -> Result<Vec<Diagonals>> {
    let groups = stage_groups(slots.trailing_zeros() as usize, levels)?;
    merge_stages(
        groups.into_iter().rev().map(|r| r.rev().collect()),
        |s| inverse_stage(degree, slots, 2 << s),
        factor,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::Encoder;
    use crate::rlwe::{Parameters, ParametersLiteral, SecretDistribution, Security};

    fn bit_reverse(v: &[Complex64]) -> Vec<Complex64> {
        let bits = v.len().trailing_zeros();
        (0..v.len())
            .map(|i| v[crate::math::ntt::bit_reverse(i, bits)])
            .collect()
    }

    #[test]
    fn factors_reproduce_the_encoder() {
        // N = 2^8: 128 slots, 7 stages in 3 groups. StC·BR = the encoder's decoding map V,
        // CtS = BR·V^{-1}·n.
        let params = Parameters::new(ParametersLiteral {
            log_n: 8,
            log_q: vec![50],
            log_p: vec![50],
            alpha: None,
            log_scale: 30.0,
            secret: SecretDistribution::UniformTernary,
            security: Security::InsecureForTesting,
        })
        .unwrap();
        let n = params.slots();
        let degree = params.degree();
        let ecd = Encoder::new(&params).unwrap();
        let z: Vec<Complex64> = (0..n)
            .map(|i| Complex64::new((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()))
            .collect();
        // u from the encoder: encode at scale 2^30, read coefficients.
        let scale = 2f64.powi(30);
        let coeffs = ecd.encode_coefficients(&z, scale).unwrap();
        let u: Vec<Complex64> = (0..n)
            .map(|k| Complex64::new(coeffs[k] as f64 / scale, coeffs[k + n] as f64 / scale))
            .collect();
        let one = Complex64::new(1.0, 0.0);
        let mut v = bit_reverse(&u);
        for f in slot_to_coeff_factors(degree, n, 3, one).unwrap() {
            v = f.apply_clear(&v).unwrap();
        }
        for (a, b) in v.iter().zip(&z) {
            assert!((a - b).norm() < 1e-6, "{a} vs {b}");
        }
        let mut w = z.clone();
        for f in coeff_to_slot_factors(degree, n, 3, one).unwrap() {
            w = f.apply_clear(&w).unwrap();
        }
        let w: Vec<Complex64> = bit_reverse(&w).into_iter().map(|x| x / n as f64).collect();
        for (a, b) in w.iter().zip(&u) {
            assert!((a - b).norm() < 1e-6, "{a} vs {b}");
        }
        let f = slot_to_coeff_factors(degree, n, 3, one).unwrap();
        assert!(
            f.iter().all(|d| d.len() <= 15),
            "{:?}",
            f.iter().map(|d| d.len())
        );
        assert!(stage_groups(7, 8).is_err());
        assert_eq!(
            stage_groups(15, 4).unwrap(),
            vec![0..4, 4..8, 8..12, 12..15]
        );
    }
}
