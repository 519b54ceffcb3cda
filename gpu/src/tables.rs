//! Host-side tables that the kernels read, computed with he-core's word arithmetic (no CUDA
//! needed): per-modulus constants, NTT twiddles, automorphism permutations, base-conversion
//! constants. Public so that tests (and other backends) can build exactly what the device sees.

use crate::{Error, Result};
use he_core::math::ntt::bit_reverse;
use he_core::math::Modulus;

/// Words per modulus in the `ModParams` record of `kernels/common.cuh`.
pub const PARAM_WORDS: usize = 8;

/// The `ModParams` record of a modulus for degree `n` (see `kernels/common.cuh`).
pub fn mod_params(m: &Modulus, n: usize) -> Result<[u64; PARAM_WORDS]> {
    let q = m.value();
    let ratio = u128::MAX / q as u128;
    let n_inv = m.inv(n as u64)?;
    Ok([
        q,
        ratio as u64,
        (ratio >> 64) as u64,
        n_inv,
        m.shoup(n_inv),
        2 * q,
        0,
        0,
    ])
}

/// Twiddle tables of one modulus in the layout of `kernels/ntt.cu`: `ψ^brev(i)` and
/// `ψ^-brev(i)` for `i < n`, each with its Shoup constant (as he-core's reference NTT).
pub fn twiddles(m: &Modulus, n: usize, psi: u64) -> Result<[Vec<u64>; 4]> {
    let psi_inv = m.inv(psi)?;
    let bits = n.trailing_zeros();
    let (mut pw, mut pw_inv) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut x, mut y) = (1u64, 1u64);
    for _ in 0..n {
        pw.push(x);
        pw_inv.push(y);
        x = m.mul(x, psi);
        y = m.mul(y, psi_inv);
    }
    let mut out = [
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    ];
    for i in 0..n {
        let e = bit_reverse(i, bits);
        out[0].push(pw[e]);
        out[1].push(m.shoup(pw[e]));
        out[2].push(pw_inv[e]);
        out[3].push(m.shoup(pw_inv[e]));
    }
    Ok(out)
}

/// The automorphism `σ_k` on evaluation form as an index permutation `out[i] = in[perm[i]]`
/// (the formula of he-core's `RingContext::automorphism_eval_permutation`).
pub fn eval_permutation(n: usize, k: u64) -> Result<Vec<u32>> {
    let two_n = 2 * n as u64;
    let k = k % two_n;
    if k.is_multiple_of(2) {
        return Err(Error::Unsupported(format!(
            "Galois element {k} is even; expected an odd residue mod 2N = {two_n}"
        )));
    }
    let bits = n.trailing_zeros();
    let mask = two_n - 1;
    Ok((0..n)
        .map(|i| {
            let e = 2 * bit_reverse(i, bits) as u64 + 1;
            let ek = (e * k) & mask;
            bit_reverse(((ek - 1) / 2) as usize, bits) as u32
        })
        .collect())
}

/// The constants of fast base conversion from basis `A` to basis `B`
/// (Bajard, Eynard, Hasan, Zucca, SAC 2016; Halevi, Polyakov, Shoup, CT-RSA 2019):
/// `(A/a_i)^{-1} mod a_i` (with Shoup constants) and `(A/a_i) mod b_j`, computed with word
/// arithmetic only (`A/a_i = Π_{k≠i} a_k`). Returns `(inv, inv_shoup, hat_mod_b)`,
/// `hat_mod_b` row-major `|B| × |A|`.
pub fn base_conversion_constants(
    from: &[Modulus],
    to: &[Modulus],
) -> Result<(Vec<u64>, Vec<u64>, Vec<u64>)> {
    let mut inv = Vec::with_capacity(from.len());
    let mut inv_s = Vec::with_capacity(from.len());
    for (i, ai) in from.iter().enumerate() {
        let hat = from
            .iter()
            .enumerate()
            .filter(|(k, _)| *k != i)
            .fold(1u64, |acc, (_, ak)| ai.mul(acc, ai.reduce(ak.value())));
        let x = ai.inv(hat)?;
        inv.push(x);
        inv_s.push(ai.shoup(x));
    }
    let mut hat_mod_b = Vec::with_capacity(from.len() * to.len());
    for b in to {
        if from.iter().any(|a| a.value() == b.value()) {
            return Err(he_core::Error::InvalidModulus {
                modulus: b.value(),
                reason: "appears in both bases of a conversion".into(),
            }
            .into());
        }
        for i in 0..from.len() {
            hat_mod_b.push(
                from.iter()
                    .enumerate()
                    .filter(|(k, _)| *k != i)
                    .fold(1u64, |acc, (_, ak)| b.mul(acc, b.reduce(ak.value()))),
            );
        }
    }
    Ok((inv, inv_s, hat_mod_b))
}
