//! Negacyclic NTT in double-precision floating point for primes `q < 2^50` (AVX2 + FMA).
//!
//! This is the technique of van der Hoeven, "Faster FFTs in medium precision" (2014) and of
//! FLINT's `fft_small`, for CPUs that have 4-lane FMA but no 52-bit integer multiplier
//! (AVX-512 IFMA): residues are kept as exactly represented doubles, and a product by a fixed
//! twiddle `w` with the precomputed `w' = fl(w / q)` is reduced with six floating-point
//! operations (Dekker's exact product through FMA, then a rounded quotient):
//!
//! ```text
//! h = y·w            l = fma(y, w, -h)        (y·w = h + l exactly)
//! t = round(y·w')    r = fma(-t, q, h) + l    (r = y·w - t·q, exact)
//! ```
//!
//! **Error bound (lemma M).** Let `y`, `w` be integers with `|y| <= 2^53`, `|w| <= (q-1)/2`
//! (twiddles are stored *centered*) and `q < 2^50`, `u = 2^-53`. Division and product are
//! correctly rounded, so `w' = (w/q)(1+e1)` and `fl(y·w') = (yw/q)(1+e1)(1+e2)` with
//! `|e1|, |e2| <= u`, hence `|fl(y·w') - yw/q| <= |y|·(1/2)·(2u + u^2)` and
//! `|yw/q - t| <= 1/2 + |y|·u·(1 + u/2)`. Therefore
//! `|r| = q·|yw/q - t| <= q/2 + |y|·q/2^53 + 1/8` (the last term bounds `|y| q u^2 / 2`).
//! `r` is an integer below `2^53` in magnitude, so `h - t·q = r - l` (an integer with
//! `|l| <= ulp(h)/2 <= 2^49`) and the final sum are computed exactly: `r ≡ y·w (mod q)`.
//! With `|y| <= 2^53` this gives `|r| <= 1.5·q + 1`, whatever the size of `y`.
//!
//! **Reduction (lemma R).** For an integer `|x| <= 2^53`, `x - round(x·fl(1/q))·q` is exact,
//! congruent to `x`, and at most `q/2 + 3` in magnitude (same argument with `w = 1`).
//!
//! **Lazy reduction.** Values are signed and only kept below `2^53` in magnitude. The forward
//! transform (Cooley–Tukey butterflies, Longa–Naehrig Alg. 1) grows a bound
//! `M` by `|r| <= q/2 + M·q/2^53 + 1` per stage; the inverse (Gentleman–Sande, Alg. 2) doubles
//! the bound of the sum outputs. [`F64Ntt::new`] runs these recurrences in exact integer
//! arithmetic for the actual `q` and decides, per pass, whether the pass first reduces its
//! inputs (forward) or reduces its sum outputs (inverse) with lemma R; for `q ≈ 2^40` one
//! reduction in the whole transform suffices. Outputs are brought to `[0, q)` at the end with
//! lemma R and one conditional addition of `q`, so they are bit-identical to
//! [`ReferenceNtt`](super::ReferenceNtt).
//!
//! **Structure.** Radix-4 passes (two stages per load and store), blocked so that every pass on
//! blocks of at most `BLOCK` elements runs on one L1-resident chunk at a time; the stages at
//! distances 2 and 1 run as one pass in which 128-bit permutes and in-lane unpacks make the
//! pairs lane-parallel (forward: followed by normalisation and conversion to `u64`; inverse:
//! preceded by the conversion from `u64`). The inverse mirrors the forward and folds the `N^{-1}`
//! scaling into its last radix-4 pass. Independent butterflies are interleaved operation by
//! operation (`*_x` helpers) so that the out-of-order window sees parallel dependency chains.
//! Conversions between `u64` and `f64` are exact bit operations with the `2^52` exponent
//! (`x < 2^52`), done in registers, in place in the caller's buffer: no allocation per call.

use super::ntt::{bit_reverse, NttBackend};
use super::primes::check_ntt_prime;
use crate::{Error, Result};
use std::fmt::Debug;

/// Moduli must be below `2^MAX_BITS`.
const MAX_BITS: u32 = 50;
/// Smallest supported degree.
const MIN_N: usize = 16;
/// Largest supported degree.
const MAX_N: usize = 1 << 17;
/// Passes on blocks of at most this many elements run chunk by chunk (16 KiB, L1-resident).
const BLOCK: usize = 2048;
/// Doubles represent every integer of magnitude at most `2^53`.
const EXACT: u128 = 1 << 53;

/// Negacyclic NTT with residues stored as `f64` and FMA-based modular multiplication
/// (van der Hoeven 2014; FLINT `fft_small`), for NTT primes `q < 2^50` on x86-64 with AVX2 and
/// FMA. Same convention as every [`NttBackend`]: forward output in bit-reversed order of the odd
/// powers of `ψ`, inverse scaled by `N^{-1}`; bit-identical to the scalar reference.
#[derive(Clone)]
// Only the x86-64 kernels read the tables; elsewhere `new` refuses to build a plan.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub struct F64Ntt {
    n: usize,
    q: u64,
    psi: u64,
    /// Centered `ψ^brev(k)` (index `k` in `1..n`), and `fl(w / q)`.
    fw: Vec<f64>,
    fwq: Vec<f64>,
    /// `ψ^brev(n/4 + j)` duplicated pairwise (the distance-2 stage, lane order).
    fd2: Vec<f64>,
    fd2q: Vec<f64>,
    /// Centered `ψ^-brev(k)`, and quotients.
    iw: Vec<f64>,
    iwq: Vec<f64>,
    id2: Vec<f64>,
    id2q: Vec<f64>,
    /// `N^{-1}` and `ψ^-brev(1)·N^{-1}`, centered, with quotients (the inverse's last pass).
    ninv: [f64; 2],
    w1ninv: [f64; 2],
    /// Forward: whether radix-4 pass `p` (stages `2p, 2p+1`) reduces its inputs first.
    fwd_red: Vec<bool>,
    /// Forward: whether the final kernel reduces its inputs first.
    fwd_red_final: bool,
    /// Inverse: reduction of the final kernel's distance-1/2 unit and of its last unit
    /// (0: none, 1: the sum-of-sums output, 2: both sum outputs).
    inv_red_a: bool,
    inv_red_b: u8,
    /// Inverse: reduction level of radix-4 pass `p` (pass 0, the last, scales instead).
    inv_red: Vec<u8>,
}

impl Debug for F64Ntt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("F64Ntt")
            .field("n", &self.n)
            .field("q", &self.q)
            .field("psi", &self.psi)
            .finish()
    }
}

/// `w` as a signed residue in `[-(q-1)/2, (q-1)/2]`, exactly as `f64` (`q < 2^50`).
fn centered(w: u64, q: u64) -> f64 {
    if w > q / 2 {
        -((q - w) as f64)
    } else {
        w as f64
    }
}

/// Bound on `|r|` of lemma M for `|y| <= y` (requires `y <= 2^53`).
fn mulmod_bound(q: u128, y: u128) -> u128 {
    q.div_ceil(2) + (y * q).div_ceil(EXACT) + 1
}

/// Bound on the output of lemma R.
fn reduce_bound(q: u128) -> u128 {
    q.div_ceil(2) + 3
}

/// Bound after `stages` Cooley–Tukey stages from inputs bounded by `m`, or `None` when some
/// intermediate could exceed `2^53`.
fn ct_bound(q: u128, mut m: u128, stages: u32) -> Option<u128> {
    for _ in 0..stages {
        m += mulmod_bound(q, m);
        if m > EXACT {
            return None;
        }
    }
    Some(m)
}

/// Bound after a radix-4 Gentleman–Sande unit (two stages) from inputs bounded by `m`, with
/// `level` sum outputs reduced (0, 1 or 2), or `None` when an intermediate could exceed `2^53`.
fn gs4_bound(q: u128, m: u128, level: u8) -> Option<u128> {
    if 4 * m > EXACT {
        return None;
    }
    let p = mulmod_bound(q, 2 * m);
    let out0 = if level >= 1 { reduce_bound(q) } else { 4 * m };
    let out1 = if level >= 2 { reduce_bound(q) } else { 2 * p };
    let out2 = mulmod_bound(q, 4 * m);
    let out3 = mulmod_bound(q, 2 * p);
    Some(out0.max(out1).max(out2).max(out3))
}

/// Bound after one Gentleman–Sande stage, sum output reduced or not.
fn gs2_bound(q: u128, m: u128, reduce: bool) -> Option<u128> {
    if 2 * m > EXACT {
        return None;
    }
    let out0 = if reduce { reduce_bound(q) } else { 2 * m };
    Some(out0.max(mulmod_bound(q, 2 * m)))
}

fn bound_error(q: u64) -> Error {
    Error::InvalidModulus {
        modulus: q,
        reason: "f64 NTT: no lazy-reduction schedule keeps values below 2^53".into(),
    }
}

impl F64Ntt {
    /// Plans the transform for degree `n` (a power of two in `[16, 2^17]`), the NTT prime
    /// `q < 2^50` (`q ≡ 1 mod 2n`) and the primitive `2n`-th root of unity `psi`. Errors on any
    /// other input, and when the CPU lacks AVX2 + FMA (see [`F64Ntt::is_supported`]).
    pub fn new(n: usize, q: u64, psi: u64) -> Result<Self> {
        if !n.is_power_of_two() || !(MIN_N..=MAX_N).contains(&n) {
            return Err(Error::InvalidDegree {
                found: n,
                min: MIN_N,
                max: MAX_N,
            });
        }
        if q >> MAX_BITS != 0 {
            return Err(Error::InvalidModulus {
                modulus: q,
                reason: format!("the f64 NTT needs q < 2^{MAX_BITS}"),
            });
        }
        let m = check_ntt_prime(q, n)?;
        if psi >= q || m.pow(psi, n as u64) != q - 1 {
            return Err(Error::InvalidModulus {
                modulus: q,
                reason: format!("{psi} is not a primitive 2N-th root of unity"),
            });
        }
        if !Self::is_supported() {
            return Err(Error::Backend(
                "the f64 NTT needs an x86-64 CPU with AVX2 and FMA".into(),
            ));
        }
        let log_n = n.trailing_zeros();
        let qf = q as f64;

        // Powers ψ^j and ψ^-j = -ψ^(n-j) for j in 0..n.
        let mut pw = Vec::with_capacity(n);
        let mut x = 1u64;
        for _ in 0..n {
            pw.push(x);
            x = m.mul(x, psi);
        }
        let ipw = |j: usize| if j == 0 { 1 } else { q - pw[n - j] };

        let mut fw = vec![0.0; n];
        let mut iw = vec![0.0; n];
        for k in 1..n {
            let e = bit_reverse(k, log_n);
            fw[k] = centered(pw[e], q);
            iw[k] = centered(ipw(e), q);
        }
        let quot = |v: &[f64]| v.iter().map(|w| w / qf).collect::<Vec<f64>>();
        let dup = |v: &[f64]| {
            v[n / 4..n / 2]
                .iter()
                .flat_map(|w| [*w, *w])
                .collect::<Vec<f64>>()
        };
        let (fd2, id2) = (dup(&fw), dup(&iw));
        let ni = m.inv(n as u64)?;
        let w1ni = m.mul(ipw(bit_reverse(1, log_n)), ni);
        let (ninv, w1ninv) = (centered(ni, q), centered(w1ni, q));

        // Lazy-reduction schedules (see the module documentation).
        let qq = q as u128;
        let nr4 = (log_n as usize - 3) / 2;
        let final_stages = if log_n.is_multiple_of(2) { 4 } else { 3 };
        let mut bound = qq - 1;
        let mut fwd_red = Vec::with_capacity(nr4);
        let schedule = |stages: u32, bound: &mut u128| -> Result<bool> {
            match ct_bound(qq, *bound, stages) {
                Some(b) => {
                    *bound = b;
                    Ok(false)
                }
                None => {
                    *bound =
                        ct_bound(qq, reduce_bound(qq), stages).ok_or_else(|| bound_error(q))?;
                    Ok(true)
                }
            }
        };
        for _ in 0..nr4 {
            fwd_red.push(schedule(2, &mut bound)?);
        }
        let fwd_red_final = schedule(final_stages, &mut bound)?;

        // Inverse, bottom-up: the final kernel's distance-1/2 unit, its last unit (radix-4 or,
        // for odd log n, one stage), then the radix-4 passes up to the top, which scales.
        // Each unit is left unreduced when the next one can still run on its output.
        let next_ok4 = |b: u128| 4 * b <= EXACT;
        let pick4 = |bound: &mut u128, levels: &[u8]| -> Result<u8> {
            for &lvl in levels {
                if let Some(b) = gs4_bound(qq, *bound, lvl) {
                    if next_ok4(b) {
                        *bound = b;
                        return Ok(lvl);
                    }
                }
            }
            Err(bound_error(q))
        };
        let mut bound = qq - 1;
        let is_top_final = nr4 == 0;
        let inv_red_a = pick4(&mut bound, &[0, 2])? == 2;
        let inv_red_b = if final_stages == 3 {
            let mut chosen = None;
            for reduce in [false, true] {
                if let Some(b) = gs2_bound(qq, bound, reduce) {
                    if next_ok4(b) {
                        bound = b;
                        chosen = Some(u8::from(reduce));
                        break;
                    }
                }
            }
            chosen.ok_or_else(|| bound_error(q))?
        } else if is_top_final {
            // The last unit scales every output by lemma M: inputs must only satisfy 4M <= 2^53.
            if !next_ok4(bound) {
                return Err(bound_error(q));
            }
            0
        } else {
            pick4(&mut bound, &[0, 1, 2])?
        };
        let mut inv_red = vec![0u8; nr4];
        for p in (0..nr4).rev() {
            if p == 0 {
                if !next_ok4(bound) {
                    return Err(bound_error(q));
                }
            } else {
                inv_red[p] = pick4(&mut bound, &[0, 1, 2])?;
            }
        }

        Ok(Self {
            n,
            q,
            psi,
            fwq: quot(&fw),
            fd2q: quot(&fd2),
            iwq: quot(&iw),
            id2q: quot(&id2),
            fw,
            fd2,
            iw,
            id2,
            ninv: [ninv, ninv / qf],
            w1ninv: [w1ninv, w1ninv / qf],
            fwd_red,
            fwd_red_final,
            inv_red_a,
            inv_red_b,
            inv_red,
        })
    }

    /// Whether the running CPU has what this backend needs (AVX2 + FMA).
    pub fn is_supported() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            pulp::x86::V3::try_new().is_some()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

impl F64Ntt {
    /// `Ok` for an input of length `N`, else [`Error::LengthMismatch`] (it was an assert).
    fn check_len(&self, found: usize) -> Result<()> {
        if found != self.n {
            return Err(Error::LengthMismatch {
                what: "F64Ntt input",
                expected: self.n,
                found,
            });
        }
        Ok(())
    }
}

impl NttBackend for F64Ntt {
    fn name(&self) -> &'static str {
        "f64-avx2"
    }
    fn degree(&self) -> usize {
        self.n
    }
    fn modulus(&self) -> u64 {
        self.q
    }
    fn psi(&self) -> u64 {
        self.psi
    }
    /// Input of another length than `N` is left untouched (no panic); the checked forms
    /// ([`try_forward`](NttBackend::try_forward), [`forward`](NttBackend::forward)) return
    /// [`Error::LengthMismatch`] for it.
    fn forward_unchecked(&self, a: &mut [u64]) {
        if a.len() != self.n {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            avx::forward(simd, self, a);
        }
    }
    /// See [`forward_unchecked`](Self::forward_unchecked): wrong lengths are left untouched.
    fn inverse_unchecked(&self, a: &mut [u64]) {
        if a.len() != self.n {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            avx::inverse(simd, self, a);
        }
    }
    fn try_forward(&self, a: &mut [u64]) -> Result<()> {
        self.check_len(a.len())?;
        self.forward_unchecked(a);
        Ok(())
    }
    fn try_inverse(&self, a: &mut [u64]) -> Result<()> {
        self.check_len(a.len())?;
        self.inverse_unchecked(a);
        Ok(())
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    //! The AVX2 + FMA kernels. Every helper is `#[inline(always)]` so that it is compiled
    //! inside `V3::vectorize`, with the target features enabled.

    use super::{F64Ntt, BLOCK};
    use core::arch::x86_64::{__m256d, __m256i, _MM_FROUND_NO_EXC, _MM_FROUND_TO_NEAREST_INT};
    use pulp::x86::V3;

    type V = __m256d;
    const ROUND: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    /// `2^52`: for an integer `0 <= x < 2^52`, the bits of `x + 2^52` are those of `2^52`
    /// with `x` in the mantissa.
    const MAGIC: f64 = 4_503_599_627_370_496.0;

    /// The SIMD token with the broadcast constants.
    #[derive(Clone, Copy)]
    struct K {
        s: V3,
        q: V,
        qinv: V,
        magic: V,
        /// `2^52 + q`, and the bit patterns of `2^52` and `2^52 + q` as integers.
        magic_q: V,
        bits_magic: __m256i,
        bits_magic_q: __m256i,
    }

    // The index loops over `[V; N]` are deliberate: one operation on every vector, then the next.
    #[allow(clippy::needless_range_loop)]
    impl K {
        #[inline(always)]
        fn new(s: V3, q: u64) -> Self {
            let qf = q as f64;
            Self {
                s,
                q: s.avx._mm256_set1_pd(qf),
                qinv: s.avx._mm256_set1_pd(1.0 / qf),
                magic: s.avx._mm256_set1_pd(MAGIC),
                magic_q: s.avx._mm256_set1_pd(MAGIC + qf),
                bits_magic: s.avx._mm256_set1_epi64x(MAGIC.to_bits() as i64),
                bits_magic_q: s.avx._mm256_set1_epi64x((MAGIC + qf).to_bits() as i64),
            }
        }
        #[inline(always)]
        fn splat(self, x: f64) -> V {
            self.s.avx._mm256_set1_pd(x)
        }
        #[inline(always)]
        fn ld(self, x: &[f64; 4]) -> V {
            pulp::cast(*x)
        }
        #[inline(always)]
        fn st(self, x: &mut [f64; 4], v: V) {
            *x = pulp::cast(v);
        }
        #[inline(always)]
        fn add(self, a: V, b: V) -> V {
            self.s.avx._mm256_add_pd(a, b)
        }
        #[inline(always)]
        fn sub(self, a: V, b: V) -> V {
            self.s.avx._mm256_sub_pd(a, b)
        }
        /// `y·w mod q` in about `(-q, q)` (lemma M; `w` centered, `wq = fl(w/q)`).
        #[inline(always)]
        fn mulmod(self, y: V, w: V, wq: V) -> V {
            let s = self.s;
            let h = s.avx._mm256_mul_pd(y, w);
            let l = s.fma._mm256_fmsub_pd(y, w, h);
            let t = s.avx._mm256_round_pd::<ROUND>(s.avx._mm256_mul_pd(y, wq));
            let r = s.fma._mm256_fnmadd_pd(t, self.q, h);
            s.avx._mm256_add_pd(r, l)
        }
        /// `x mod q` in `[-q/2 - 3, q/2 + 3]` (lemma R).
        #[inline(always)]
        fn reduce(self, x: V) -> V {
            let s = self.s;
            let t = s
                .avx
                ._mm256_round_pd::<ROUND>(s.avx._mm256_mul_pd(x, self.qinv));
            s.fma._mm256_fnmadd_pd(t, self.q, x)
        }
        /// Exact `u64 -> f64` of residues `< 2^52`, on bit patterns.
        #[inline(always)]
        fn u64_to_f64(self, x: V) -> V {
            let s = self.s;
            s.avx
                ._mm256_sub_pd(s.avx._mm256_or_pd(x, self.magic), self.magic)
        }
        /// [`mulmod`](Self::mulmod) on `N` independent vectors, operation by operation, so that
        /// the independent dependency chains are interleaved in program order.
        #[inline(always)]
        fn mulmod_x<const N: usize>(self, y: [V; N], w: [V; N], wq: [V; N]) -> [V; N] {
            let s = self.s;
            let mut h = y;
            let mut l = y;
            let mut t = y;
            for i in 0..N {
                h[i] = s.avx._mm256_mul_pd(y[i], w[i]);
            }
            for i in 0..N {
                t[i] = s.avx._mm256_mul_pd(y[i], wq[i]);
            }
            for i in 0..N {
                l[i] = s.fma._mm256_fmsub_pd(y[i], w[i], h[i]);
            }
            for i in 0..N {
                t[i] = s.avx._mm256_round_pd::<ROUND>(t[i]);
            }
            for i in 0..N {
                h[i] = s.fma._mm256_fnmadd_pd(t[i], self.q, h[i]);
            }
            for i in 0..N {
                h[i] = s.avx._mm256_add_pd(h[i], l[i]);
            }
            h
        }
        /// [`ct`](Self::ct) on `N` independent pairs, interleaved.
        #[inline(always)]
        fn ct_x<const N: usize>(
            self,
            x: [V; N],
            y: [V; N],
            w: [V; N],
            wq: [V; N],
        ) -> ([V; N], [V; N]) {
            let r = self.mulmod_x(y, w, wq);
            let mut a = x;
            let mut b = x;
            for i in 0..N {
                a[i] = self.add(x[i], r[i]);
            }
            for i in 0..N {
                b[i] = self.sub(x[i], r[i]);
            }
            (a, b)
        }
        /// [`gs`](Self::gs) on `N` independent pairs, interleaved.
        #[inline(always)]
        fn gs_x<const N: usize>(
            self,
            x: [V; N],
            y: [V; N],
            w: [V; N],
            wq: [V; N],
            red: bool,
        ) -> ([V; N], [V; N]) {
            let mut a = x;
            let mut d = x;
            for i in 0..N {
                d[i] = self.sub(x[i], y[i]);
            }
            for i in 0..N {
                a[i] = self.add(x[i], y[i]);
            }
            let r = self.mulmod_x(d, w, wq);
            if red {
                a = self.reduce_x(a);
            }
            (a, r)
        }
        /// [`reduce`](Self::reduce) on `N` vectors, interleaved.
        #[inline(always)]
        fn reduce_x<const N: usize>(self, x: [V; N]) -> [V; N] {
            let s = self.s;
            let mut t = x;
            for i in 0..N {
                t[i] = s.avx._mm256_mul_pd(x[i], self.qinv);
            }
            for i in 0..N {
                t[i] = s.avx._mm256_round_pd::<ROUND>(t[i]);
            }
            for i in 0..N {
                t[i] = s.fma._mm256_fnmadd_pd(t[i], self.q, x[i]);
            }
            t
        }
        /// `x mod q` in `[0, q)` as the bit pattern of the `u64`, for `|x| <= 2^53`, on `N`
        /// vectors, interleaved.
        #[inline(always)]
        fn to_bits_x<const N: usize>(self, x: [V; N]) -> [V; N] {
            let s = self.s;
            let r = self.reduce_x(x);
            let mut out = r;
            for i in 0..N {
                // r in (-q, q) (lemma R), so r + q + 2^52 lies in (2^52, 2^52 + 2q): exact, with
                // u = r + q in the mantissa bits. d = u - q as 64-bit integers; keep d unless it
                // is negative (then u = r + q is the residue).
                let v: __m256i = pulp::cast(s.avx._mm256_add_pd(r[i], self.magic_q));
                let d = s.avx2._mm256_sub_epi64(v, self.bits_magic_q);
                let u = s.avx2._mm256_xor_si256(v, self.bits_magic);
                let (d, u): (V, V) = (pulp::cast(d), pulp::cast(u));
                out[i] = s.avx._mm256_blendv_pd(d, u, d);
            }
            out
        }
        /// Cooley–Tukey butterfly `(x + wy, x - wy)`.
        #[inline(always)]
        fn ct(self, x: V, y: V, w: V, wq: V) -> (V, V) {
            let r = self.mulmod(y, w, wq);
            (self.add(x, r), self.sub(x, r))
        }
        /// Gentleman–Sande butterfly `(x + y, (x - y)w)`, the sum reduced when `red` (a constant
        /// at every call site, folded away).
        #[inline(always)]
        fn gs(self, x: V, y: V, w: V, wq: V, red: bool) -> (V, V) {
            let s = self.add(x, y);
            let s = if red { self.reduce(s) } else { s };
            (s, self.mulmod(self.sub(x, y), w, wq))
        }
        #[inline(always)]
        fn lo128(self, a: V, b: V) -> V {
            self.s.avx._mm256_permute2f128_pd::<0x20>(a, b)
        }
        #[inline(always)]
        fn hi128(self, a: V, b: V) -> V {
            self.s.avx._mm256_permute2f128_pd::<0x31>(a, b)
        }
        #[inline(always)]
        fn unpacklo(self, a: V, b: V) -> V {
            self.s.avx._mm256_unpacklo_pd(a, b)
        }
        #[inline(always)]
        fn unpackhi(self, a: V, b: V) -> V {
            self.s.avx._mm256_unpackhi_pd(a, b)
        }
    }

    /// Twiddle tables of one direction, as the kernels index them.
    struct Tw<'a> {
        n: usize,
        w: &'a [f64],
        wq: &'a [f64],
        /// Distance-2 stage, one vector per 8-point block.
        d2: &'a [[f64; 4]],
        d2q: &'a [[f64; 4]],
        /// Distance-1 stage (`w[n/2..]`), one vector per 8-point block.
        d1: &'a [[f64; 4]],
        d1q: &'a [[f64; 4]],
    }

    impl<'a> Tw<'a> {
        fn new(n: usize, w: &'a [f64], wq: &'a [f64], d2: &'a [f64], d2q: &'a [f64]) -> Self {
            Self {
                n,
                w,
                wq,
                d2: pulp::as_arrays::<4, f64>(d2).0,
                d2q: pulp::as_arrays::<4, f64>(d2q).0,
                d1: pulp::as_arrays::<4, f64>(&w[n / 2..]).0,
                d1q: pulp::as_arrays::<4, f64>(&wq[n / 2..]).0,
            }
        }
        #[inline(always)]
        fn bcast(&self, k: K, i: usize) -> (V, V) {
            (k.splat(self.w[i]), k.splat(self.wq[i]))
        }
    }

    /// Number of radix-4 passes and final kernel size (16 or 8 points).
    fn shape(n: usize) -> (usize, usize) {
        let log_n = n.trailing_zeros() as usize;
        if log_n.is_multiple_of(2) {
            ((log_n - 4) / 2, 16)
        } else {
            ((log_n - 3) / 2, 8)
        }
    }

    /// Chunk size: passes on blocks larger than it run over the whole array, the others and the
    /// final kernel chunk by chunk.
    fn chunk(n: usize, nr4: usize, fsz: usize) -> usize {
        (0..nr4)
            .map(|p| n >> (2 * p))
            .find(|&l| l <= BLOCK)
            .unwrap_or(fsz)
    }

    /// One transform, run by `V3::vectorize` (a named type with an `#[inline(always)]` body, so
    /// that all the kernels are compiled with AVX2 + FMA enabled; a closure would not be).
    struct Run<'a> {
        simd: V3,
        plan: &'a F64Ntt,
        a: &'a mut [u64],
        inverse: bool,
    }

    impl pulp::NullaryFnOnce for Run<'_> {
        type Output = ();
        #[inline(always)]
        fn call(self) {
            if self.inverse {
                inverse_impl(self.simd, self.plan, self.a);
            } else {
                forward_impl(self.simd, self.plan, self.a);
            }
        }
    }

    // ----------------------------------------------------------------------------- forward

    /// One forward radix-4 pass (stages at distances `l/2` and `l/4`) over the blocks of `l`
    /// elements in `data`, the first being global block `first`.
    #[inline(always)]
    fn fwd_r4<const FIRST: bool, const RED: bool>(
        k: K,
        t: &Tw,
        data: &mut [[f64; 4]],
        l: usize,
        first: usize,
    ) {
        let m = t.n / l;
        let qv = l / 16;
        for (b, blk) in data.chunks_exact_mut(l / 4).enumerate() {
            let i = first + b;
            let (w1, w1q) = t.bcast(k, m + i);
            let (wa, waq) = t.bcast(k, 2 * m + 2 * i);
            let (wb, wbq) = t.bcast(k, 2 * m + 2 * i + 1);
            let (x0, rest) = blk.split_at_mut(qv);
            let (x1, rest) = rest.split_at_mut(qv);
            let (x2, x3) = rest.split_at_mut(qv);
            for (((p0, p1), p2), p3) in x0.iter_mut().zip(x1).zip(x2).zip(x3) {
                let mut v = [k.ld(p0), k.ld(p1), k.ld(p2), k.ld(p3)];
                if FIRST {
                    for x in v.iter_mut() {
                        *x = k.u64_to_f64(*x);
                    }
                }
                if RED {
                    for x in v.iter_mut() {
                        *x = k.reduce(*x);
                    }
                }
                let ([v0, v1], [v2, v3]) = k.ct_x([v[0], v[1]], [v[2], v[3]], [w1; 2], [w1q; 2]);
                let ([v0, v2], [v1, v3]) = k.ct_x([v0, v2], [v1, v3], [wa, wb], [waq, wbq]);
                k.st(p0, v0);
                k.st(p1, v1);
                k.st(p2, v2);
                k.st(p3, v3);
            }
        }
    }

    /// Forward stage at distance 4 on the 8-point blocks of `data` (first global block `first`).
    #[inline(always)]
    fn fwd_r2<const RED: bool>(k: K, t: &Tw, data: &mut [[f64; 4]], first: usize) {
        let n = t.n;
        for (b, blk) in data.chunks_exact_mut(2).enumerate() {
            let mut v = [k.ld(&blk[0]), k.ld(&blk[1])];
            if RED {
                for x in v.iter_mut() {
                    *x = k.reduce(*x);
                }
            }
            let (w, wq) = t.bcast(k, n / 8 + first + b);
            let (a, b_) = k.ct(v[0], v[1], w, wq);
            k.st(&mut blk[0], a);
            k.st(&mut blk[1], b_);
        }
    }

    /// Forward stages at distances 2 and 1, and normalisation, on the 8-point blocks of `data`
    /// (two blocks per step, interleaved).
    #[inline(always)]
    fn fwd_tail_pass(k: K, t: &Tw, data: &mut [[f64; 4]], first: usize) {
        let d2 = pulp::as_arrays::<2, _>(&t.d2[first..]).0;
        let d2q = pulp::as_arrays::<2, _>(&t.d2q[first..]).0;
        let d1 = pulp::as_arrays::<2, _>(&t.d1[first..]).0;
        let d1q = pulp::as_arrays::<2, _>(&t.d1q[first..]).0;
        for ((((blk, w2), w2q), w1), w1q) in
            data.chunks_exact_mut(4).zip(d2).zip(d2q).zip(d1).zip(d1q)
        {
            let v = [k.ld(&blk[0]), k.ld(&blk[1]), k.ld(&blk[2]), k.ld(&blk[3])];
            let p = [k.lo128(v[0], v[1]), k.lo128(v[2], v[3])];
            let q = [k.hi128(v[0], v[1]), k.hi128(v[2], v[3])];
            let (p, q) = k.ct_x(
                p,
                q,
                [k.ld(&w2[0]), k.ld(&w2[1])],
                [k.ld(&w2q[0]), k.ld(&w2q[1])],
            );
            let u = [k.unpacklo(p[0], q[0]), k.unpacklo(p[1], q[1])];
            let v = [k.unpackhi(p[0], q[0]), k.unpackhi(p[1], q[1])];
            let (u, v) = k.ct_x(
                u,
                v,
                [k.ld(&w1[0]), k.ld(&w1[1])],
                [k.ld(&w1q[0]), k.ld(&w1q[1])],
            );
            let o = k.to_bits_x([u[0], v[0], u[1], v[1]]);
            let (lo0, hi0) = (k.unpacklo(o[0], o[1]), k.unpackhi(o[0], o[1]));
            let (lo1, hi1) = (k.unpacklo(o[2], o[3]), k.unpackhi(o[2], o[3]));
            k.st(&mut blk[0], k.lo128(lo0, hi0));
            k.st(&mut blk[1], k.hi128(lo0, hi0));
            k.st(&mut blk[2], k.lo128(lo1, hi1));
            k.st(&mut blk[3], k.hi128(lo1, hi1));
        }
    }

    #[inline(always)]
    fn fwd_r4_dispatch(
        k: K,
        t: &Tw,
        data: &mut [[f64; 4]],
        l: usize,
        first: usize,
        is_first: bool,
        red: bool,
    ) {
        match (is_first, red) {
            (true, _) => fwd_r4::<true, false>(k, t, data, l, first),
            (false, false) => fwd_r4::<false, false>(k, t, data, l, first),
            (false, true) => fwd_r4::<false, true>(k, t, data, l, first),
        }
    }

    /// In-place forward transform of `a` (residues `< q`, length `N`).
    pub(super) fn forward(simd: V3, plan: &F64Ntt, a: &mut [u64]) {
        simd.vectorize(Run {
            simd,
            plan,
            a,
            inverse: false,
        });
    }

    #[inline(always)]
    fn forward_impl(simd: V3, plan: &F64Ntt, a: &mut [u64]) {
        let k = K::new(simd, plan.q);
        let n = plan.n;
        let t = Tw::new(n, &plan.fw, &plan.fwq, &plan.fd2, &plan.fd2q);
        let data = pulp::as_arrays_mut::<4, f64>(bytemuck::cast_slice_mut(a)).0;
        let (nr4, fsz) = shape(n);
        let c = chunk(n, nr4, fsz);
        let split = (0..nr4).find(|&p| n >> (2 * p) <= c).unwrap_or(nr4);
        for p in 0..split {
            fwd_r4_dispatch(k, &t, data, n >> (2 * p), 0, p == 0, plan.fwd_red[p]);
        }
        for (ci, ch) in data.chunks_exact_mut(c / 4).enumerate() {
            for p in split..nr4 {
                let l = n >> (2 * p);
                fwd_r4_dispatch(k, &t, ch, l, ci * (c / l), p == 0, plan.fwd_red[p]);
            }
            let first = ci * (c / fsz);
            if fsz == 16 {
                fwd_r4_dispatch(k, &t, ch, 16, first, nr4 == 0, plan.fwd_red_final);
            } else if plan.fwd_red_final {
                fwd_r2::<true>(k, &t, ch, first);
            } else {
                fwd_r2::<false>(k, &t, ch, first);
            }
            fwd_tail_pass(k, &t, ch, ci * (c / 8));
        }
    }

    // ----------------------------------------------------------------------------- inverse

    /// Constants of the inverse's last pass: `N^{-1}` and `ψ^-brev(1)·N^{-1}` with quotients.
    #[derive(Clone, Copy)]
    struct Scale {
        ninv: V,
        ninvq: V,
        w1: V,
        w1q: V,
    }

    /// Radix-4 Gentleman–Sande unit on `(x0, x1, x2, x3)` at distances `d` (pairs `(x0, x1)`
    /// with `wa`, `(x2, x3)` with `wb`) then `2d` (pairs `(x0, x2)`, `(x1, x3)` with `w1`).
    /// `RED` sums reduced (0, 1 or 2); `LAST` scales every output by `N^{-1}` and returns
    /// `u64` bit patterns in `[0, q)`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn gs4<const RED: u8, const LAST: bool>(
        k: K,
        v: [V; 4],
        (wa, waq): (V, V),
        (wb, wbq): (V, V),
        (w1, w1q): (V, V),
        sc: Scale,
    ) -> [V; 4] {
        let ([s01, s23], [p01, p23]) =
            k.gs_x([v[0], v[2]], [v[1], v[3]], [wa, wb], [waq, wbq], false);
        if LAST {
            let o = k.mulmod_x(
                [
                    k.add(s01, s23),
                    k.add(p01, p23),
                    k.sub(s01, s23),
                    k.sub(p01, p23),
                ],
                [sc.ninv, sc.ninv, sc.w1, sc.w1],
                [sc.ninvq, sc.ninvq, sc.w1q, sc.w1q],
            );
            k.to_bits_x(o)
        } else {
            let ([o0, o1], [o2, o3]) = k.gs_x([s01, p01], [s23, p23], [w1; 2], [w1q; 2], false);
            let o0 = if RED >= 1 { k.reduce(o0) } else { o0 };
            let o1 = if RED >= 2 { k.reduce(o1) } else { o1 };
            [o0, o1, o2, o3]
        }
    }

    /// One inverse radix-4 pass (distances `l/4` then `l/2`) over the blocks of `l` elements.
    #[inline(always)]
    fn inv_r4<const RED: u8, const LAST: bool>(
        k: K,
        t: &Tw,
        sc: Scale,
        data: &mut [[f64; 4]],
        l: usize,
        first: usize,
    ) {
        let m = t.n / l;
        let qv = l / 16;
        for (b, blk) in data.chunks_exact_mut(l / 4).enumerate() {
            let i = first + b;
            let w1 = t.bcast(k, m + i);
            let wa = t.bcast(k, 2 * m + 2 * i);
            let wb = t.bcast(k, 2 * m + 2 * i + 1);
            let (x0, rest) = blk.split_at_mut(qv);
            let (x1, rest) = rest.split_at_mut(qv);
            let (x2, x3) = rest.split_at_mut(qv);
            for (((p0, p1), p2), p3) in x0.iter_mut().zip(x1).zip(x2).zip(x3) {
                let v = [k.ld(p0), k.ld(p1), k.ld(p2), k.ld(p3)];
                let o = gs4::<RED, LAST>(k, v, wa, wb, w1, sc);
                k.st(p0, o[0]);
                k.st(p1, o[1]);
                k.st(p2, o[2]);
                k.st(p3, o[3]);
            }
        }
    }

    /// Inverse: conversion from `u64` and stages at distances 1 and 2 on the 8-point blocks of
    /// `data` (first global 8-point block `first`; two blocks per step, interleaved); `RED`:
    /// reduce the sums of the second stage.
    #[inline(always)]
    fn inv_head_pass<const RED: bool>(k: K, t: &Tw, data: &mut [[f64; 4]], first: usize) {
        let d2 = pulp::as_arrays::<2, _>(&t.d2[first..]).0;
        let d2q = pulp::as_arrays::<2, _>(&t.d2q[first..]).0;
        let d1 = pulp::as_arrays::<2, _>(&t.d1[first..]).0;
        let d1q = pulp::as_arrays::<2, _>(&t.d1q[first..]).0;
        for ((((blk, w2), w2q), w1), w1q) in
            data.chunks_exact_mut(4).zip(d2).zip(d2q).zip(d1).zip(d1q)
        {
            let v = [k.ld(&blk[0]), k.ld(&blk[1]), k.ld(&blk[2]), k.ld(&blk[3])];
            let v = [
                k.u64_to_f64(v[0]),
                k.u64_to_f64(v[1]),
                k.u64_to_f64(v[2]),
                k.u64_to_f64(v[3]),
            ];
            let p = [k.lo128(v[0], v[1]), k.lo128(v[2], v[3])];
            let q = [k.hi128(v[0], v[1]), k.hi128(v[2], v[3])];
            let u = [k.unpacklo(p[0], q[0]), k.unpacklo(p[1], q[1])];
            let v = [k.unpackhi(p[0], q[0]), k.unpackhi(p[1], q[1])];
            let w = [k.ld(&w1[0]), k.ld(&w1[1])];
            let (u, v) = k.gs_x(u, v, w, [k.ld(&w1q[0]), k.ld(&w1q[1])], false);
            let p = [k.unpacklo(u[0], v[0]), k.unpacklo(u[1], v[1])];
            let q = [k.unpackhi(u[0], v[0]), k.unpackhi(u[1], v[1])];
            let w = [k.ld(&w2[0]), k.ld(&w2[1])];
            let (p, q) = k.gs_x(p, q, w, [k.ld(&w2q[0]), k.ld(&w2q[1])], RED);
            k.st(&mut blk[0], k.lo128(p[0], q[0]));
            k.st(&mut blk[1], k.hi128(p[0], q[0]));
            k.st(&mut blk[2], k.lo128(p[1], q[1]));
            k.st(&mut blk[3], k.hi128(p[1], q[1]));
        }
    }

    /// Inverse stage at distance 4 on the 8-point blocks of `data`, sums reduced when `RED`.
    #[inline(always)]
    fn inv_r2<const RED: bool>(k: K, t: &Tw, data: &mut [[f64; 4]], first: usize) {
        let n = t.n;
        for (b, blk) in data.chunks_exact_mut(2).enumerate() {
            let (w, wq) = t.bcast(k, n / 8 + first + b);
            let (a, b_) = k.gs(k.ld(&blk[0]), k.ld(&blk[1]), w, wq, RED);
            k.st(&mut blk[0], a);
            k.st(&mut blk[1], b_);
        }
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn inv_r4_dispatch(
        k: K,
        t: &Tw,
        sc: Scale,
        data: &mut [[f64; 4]],
        l: usize,
        first: usize,
        last: bool,
        red: u8,
    ) {
        match (last, red) {
            (true, _) => inv_r4::<0, true>(k, t, sc, data, l, first),
            (false, 0) => inv_r4::<0, false>(k, t, sc, data, l, first),
            (false, 1) => inv_r4::<1, false>(k, t, sc, data, l, first),
            (false, _) => inv_r4::<2, false>(k, t, sc, data, l, first),
        }
    }

    /// In-place inverse transform of `a` (residues `< q`, length `N`), `N^{-1}` included.
    pub(super) fn inverse(simd: V3, plan: &F64Ntt, a: &mut [u64]) {
        simd.vectorize(Run {
            simd,
            plan,
            a,
            inverse: true,
        });
    }

    #[inline(always)]
    fn inverse_impl(simd: V3, plan: &F64Ntt, a: &mut [u64]) {
        let k = K::new(simd, plan.q);
        let n = plan.n;
        let t = Tw::new(n, &plan.iw, &plan.iwq, &plan.id2, &plan.id2q);
        let sc = Scale {
            ninv: k.splat(plan.ninv[0]),
            ninvq: k.splat(plan.ninv[1]),
            w1: k.splat(plan.w1ninv[0]),
            w1q: k.splat(plan.w1ninv[1]),
        };
        let data = pulp::as_arrays_mut::<4, f64>(bytemuck::cast_slice_mut(a)).0;
        let (nr4, fsz) = shape(n);
        let c = chunk(n, nr4, fsz);
        let split = (0..nr4).find(|&p| n >> (2 * p) <= c).unwrap_or(nr4);
        for (ci, ch) in data.chunks_exact_mut(c / 4).enumerate() {
            let first = ci * (c / fsz);
            if plan.inv_red_a {
                inv_head_pass::<true>(k, &t, ch, ci * (c / 8));
            } else {
                inv_head_pass::<false>(k, &t, ch, ci * (c / 8));
            }
            if fsz == 16 {
                inv_r4_dispatch(k, &t, sc, ch, 16, first, nr4 == 0, plan.inv_red_b);
            } else if plan.inv_red_b > 0 {
                inv_r2::<true>(k, &t, ch, first);
            } else {
                inv_r2::<false>(k, &t, ch, first);
            }
            for p in (split..nr4).rev() {
                let l = n >> (2 * p);
                let red = plan.inv_red[p];
                inv_r4_dispatch(k, &t, sc, ch, l, ci * (c / l), p == 0, red);
            }
        }
        for p in (0..split).rev() {
            inv_r4_dispatch(k, &t, sc, data, n >> (2 * p), 0, p == 0, plan.inv_red[p]);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::math::primes::ntt_primes;
    use crate::math::{ReferenceNtt, TfheNtt};
    use proptest::prelude::*;

    fn plans(n: usize, q: u64) -> (F64Ntt, ReferenceNtt) {
        let psi = TfheNtt::new(n, q).unwrap().psi();
        (
            F64Ntt::new(n, q, psi).unwrap(),
            ReferenceNtt::new(n, q, Some(psi)).unwrap(),
        )
    }

    fn check_against_reference(f: &F64Ntt, r: &ReferenceNtt, a: &[u64]) {
        let (mut x, mut y) = (a.to_vec(), a.to_vec());
        f.forward(&mut x).unwrap();
        r.forward(&mut y).unwrap();
        assert_eq!(x, y, "forward n = {} q = {}", f.degree(), f.modulus());
        let (mut x2, mut y2) = (a.to_vec(), a.to_vec());
        f.inverse(&mut x2).unwrap();
        r.inverse(&mut y2).unwrap();
        assert_eq!(x2, y2, "inverse n = {} q = {}", f.degree(), f.modulus());
        f.inverse(&mut x).unwrap();
        assert_eq!(x, a, "round trip n = {} q = {}", f.degree(), f.modulus());
    }

    fn case() -> impl Strategy<Value = (usize, u64, Vec<u64>)> {
        (
            prop_oneof![Just(4u32), Just(5), Just(6), Just(10), Just(14)],
            prop_oneof![Just(30u32), Just(40), Just(45), Just(49), Just(50)],
        )
            .prop_flat_map(|(logn, bits)| {
                let n = 1usize << logn;
                let q = ntt_primes(bits, 1, n, &[]).unwrap()[0];
                (Just(n), Just(q), prop::collection::vec(0..q, n))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn bit_identical_to_reference((n, q, a) in case()) {
            if !F64Ntt::is_supported() {
                return Ok(());
            }
            let (f, r) = plans(n, q);
            let (mut x, mut y) = (a.clone(), a.clone());
            f.forward(&mut x).unwrap();
            r.forward(&mut y).unwrap();
            prop_assert_eq!(&x, &y);
            let (mut x2, mut y2) = (a.clone(), a.clone());
            f.inverse(&mut x2).unwrap();
            r.inverse(&mut y2).unwrap();
            prop_assert_eq!(&x2, &y2);
            f.inverse(&mut x).unwrap();
            prop_assert_eq!(&x, &a);
        }
    }

    /// Every supported degree (both final kernels, blocked and unblocked passes, every
    /// reduction schedule) with pseudo-random and edge inputs, for small and maximal primes.
    #[test]
    fn all_degrees_and_edge_inputs() {
        if !F64Ntt::is_supported() {
            return;
        }
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for logn in 4..=17u32 {
            let n = 1usize << logn;
            for bits in [30u32, 40, 45, 49, 50] {
                let qs = ntt_primes(bits, 2, n, &[]).unwrap();
                for &q in &qs {
                    let (f, r) = plans(n, q);
                    let random: Vec<u64> = (0..n)
                        .map(|_| {
                            seed ^= seed << 13;
                            seed ^= seed >> 7;
                            seed ^= seed << 17;
                            seed % q
                        })
                        .collect();
                    let mut one = vec![0u64; n];
                    one[0] = 1;
                    let mut x = vec![0u64; n];
                    x[1] = 1;
                    let alternating: Vec<u64> =
                        (0..n).map(|i| if i % 2 == 0 { q - 1 } else { 0 }).collect();
                    for a in [random, vec![q - 1; n], vec![0; n], one, x, alternating] {
                        check_against_reference(&f, &r, &a);
                    }
                }
            }
        }
    }

    #[test]
    fn psi_from_primitive_root() {
        if !F64Ntt::is_supported() {
            return;
        }
        let n = 256;
        let q = ntt_primes(49, 1, n, &[]).unwrap()[0];
        let psi = crate::math::primes::primitive_root_of_unity(q, 2 * n as u64).unwrap();
        let f = F64Ntt::new(n, q, psi).unwrap();
        let r = ReferenceNtt::new(n, q, Some(psi)).unwrap();
        let a: Vec<u64> = (0..n as u64).map(|i| (i * 0x1234_5678_9abc) % q).collect();
        check_against_reference(&f, &r, &a);
        assert_eq!(f.name(), "f64-avx2");
        assert_eq!((f.degree(), f.modulus(), f.psi()), (n, q, psi));
    }

    #[test]
    fn rejects_bad_parameters() {
        if !F64Ntt::is_supported() {
            return;
        }
        let n = 1024;
        let q = ntt_primes(40, 1, n, &[]).unwrap()[0];
        let psi = TfheNtt::new(n, q).unwrap().psi();
        assert!(F64Ntt::new(n, q, psi).is_ok());
        // q >= 2^50 (a valid NTT prime otherwise).
        let big = ntt_primes(51, 1, n, &[]).unwrap()[0];
        let big_psi = TfheNtt::new(n, big).unwrap().psi();
        assert!(matches!(
            F64Ntt::new(n, big, big_psi),
            Err(Error::InvalidModulus { .. })
        ));
        // Wrong roots: not a root, a root of smaller order, psi >= q.
        assert!(F64Ntt::new(n, q, 3).is_err());
        let m = crate::math::Modulus::new(q).unwrap();
        assert!(F64Ntt::new(n, q, m.mul(psi, psi)).is_err());
        assert!(F64Ntt::new(n, q, psi + q).is_err());
        // Bad degrees.
        for bad in [0usize, 8, 1000, 1 << 18] {
            assert!(matches!(
                F64Ntt::new(bad, q, psi),
                Err(Error::InvalidDegree { .. })
            ));
        }
        // Not an NTT prime for n, not prime.
        assert!(F64Ntt::new(n, q + 2, psi).is_err());
        let q16 = ntt_primes(40, 1, 16, &[])
            .unwrap()
            .into_iter()
            .find(|q| (q - 1) % 2048 != 0);
        if let Some(q16) = q16 {
            assert!(F64Ntt::new(n, q16, psi).is_err());
        }
        // Wrong length is an error through the checked entry points.
        let f = F64Ntt::new(n, q, psi).unwrap();
        assert!(f.forward(&mut [0u64; 10]).is_err());
        assert!(f.inverse(&mut [0u64; 10]).is_err());
        // The length assert is gone: try_* return typed errors, unchecked forms do not panic.
        let mut short = [1u64; 10];
        assert!(matches!(
            f.try_forward(&mut short),
            Err(Error::LengthMismatch { found: 10, .. })
        ));
        assert!(matches!(
            f.try_inverse(&mut short),
            Err(Error::LengthMismatch { found: 10, .. })
        ));
        f.forward_unchecked(&mut short);
        f.inverse_unchecked(&mut short);
        assert_eq!(short, [1u64; 10]);
    }

    fn median_ns(mut f: impl FnMut(), iters: usize) -> f64 {
        let mut times = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t = std::time::Instant::now();
            f();
            times.push(t.elapsed().as_nanos() as f64);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        times[iters / 2]
    }

    /// `cargo test --release -p he-core ntt_f64::tests::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn timing() {
        if !F64Ntt::is_supported() {
            println!("f64 NTT: AVX2 + FMA not available");
            return;
        }
        let iters = 2000;
        let cases = [
            (12u32, 40u32),
            (13, 40),
            (14, 40),
            (15, 40),
            (16, 40),
            (14, 30),
            (14, 50),
        ];
        for (logn, bits) in cases {
            let n = 1usize << logn;
            let q = ntt_primes(bits, 1, n, &[]).unwrap()[0];
            let tf = TfheNtt::new(n, q).unwrap();
            let f = F64Ntt::new(n, q, tf.psi()).unwrap();
            let bfly = (n / 2 * logn as usize) as f64;
            let a: Vec<u64> = (0..n as u64).map(|i| (i * 0x9E37_79B9) % q).collect();
            let mut x = a.clone();
            for _ in 0..50 {
                f.forward_unchecked(&mut x);
                tf.forward_unchecked(&mut x);
            }
            let mut x = a.clone();
            let ff = median_ns(|| f.forward_unchecked(&mut x), iters) / bfly;
            let fi = median_ns(|| f.inverse_unchecked(&mut x), iters) / bfly;
            let tfw = median_ns(|| tf.forward_unchecked(&mut x), iters) / bfly;
            let ti = median_ns(|| tf.inverse_unchecked(&mut x), iters) / bfly;
            println!(
                "N = 2^{logn}, q = {q} ({bits} bits): f64-avx2 forward {ff:.3} ns/bfly, inverse \
                 {fi:.3} ns/bfly | tfhe-ntt forward {tfw:.3}, inverse {ti:.3} ns/bfly"
            );
        }
    }
}
