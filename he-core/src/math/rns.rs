//! Residue number system: a basis of pairwise coprime word-size primes `q_0 .. q_{k-1}`,
//! CRT composition with big integers (tests, decoding, debugging) and fast base conversion
//! between bases (the ModUp / ModDown steps of hybrid key switching and exact rescaling).
//!
//! Fast base conversion (Bajard, Eynard, Hasan, Zucca, SAC 2016; Halevi, Polyakov, Shoup,
//! CT-RSA 2019): for `x` given by residues `x_i` modulo the `a_i` of basis `A`,
//!
//! ```text
//! Conv_{A->B}(x)_j = Σ_i [x_i · (A/a_i)^{-1}]_{a_i} · (A/a_i)   mod b_j
//!                  = x + u·A  (mod b_j),   0 <= u < |A|
//! ```
//!
//! The approximate form is what key switching needs (the `u·A` term is absorbed into noise).
//! The exact form subtracts `v·A`, with `v = round(Σ_i y_i / a_i)` computed in floating point
//! (HPS 2019, §2.3), and yields the centred representative of `x` mod `A` in every `b_j`.

use super::modulus::Modulus;
use super::primes::is_prime;
use crate::{Error, Result};
use num_bigint::{BigInt, BigUint};
use num_traits::{One, ToPrimitive, Zero};
use rayon::prelude::*;

/// An RNS basis: distinct primes with CRT constants.
#[derive(Debug, Clone)]
pub struct RnsBasis {
    moduli: Vec<Modulus>,
    product: BigUint,
    /// Q / q_i.
    q_hat: Vec<BigUint>,
    /// (Q / q_i)^{-1} mod q_i, with Shoup constants.
    q_hat_inv: Vec<(u64, u64)>,
}

impl RnsBasis {
    /// Builds a basis from distinct primes (each `< 2^62`).
    pub fn new(moduli: &[u64]) -> Result<Self> {
        if moduli.is_empty() {
            return Err(Error::InvalidParameters(
                "an RNS basis needs at least one modulus".into(),
            ));
        }
        let mut ms = Vec::with_capacity(moduli.len());
        for (i, &q) in moduli.iter().enumerate() {
            if !is_prime(q) {
                return Err(Error::InvalidModulus {
                    modulus: q,
                    reason: "not prime".into(),
                });
            }
            if moduli[..i].contains(&q) {
                return Err(Error::InvalidModulus {
                    modulus: q,
                    reason: "repeated in the basis".into(),
                });
            }
            ms.push(Modulus::new(q)?);
        }
        let product = moduli.iter().fold(BigUint::one(), |acc, &q| acc * q);
        let mut q_hat = Vec::with_capacity(ms.len());
        let mut q_hat_inv = Vec::with_capacity(ms.len());
        for m in &ms {
            let hat = &product / m.value();
            let hat_mod = (&hat % m.value()).to_u64().unwrap_or(0);
            let inv = m.inv(hat_mod)?;
            q_hat.push(hat);
            q_hat_inv.push((inv, m.shoup(inv)));
        }
        Ok(Self {
            moduli: ms,
            product,
            q_hat,
            q_hat_inv,
        })
    }

    /// The moduli.
    pub fn moduli(&self) -> &[Modulus] {
        &self.moduli
    }

    /// Number of moduli.
    pub fn len(&self) -> usize {
        self.moduli.len()
    }

    /// Always false: a basis has at least one modulus.
    pub fn is_empty(&self) -> bool {
        self.moduli.is_empty()
    }

    /// The product `Q` of the moduli.
    pub fn product(&self) -> &BigUint {
        &self.product
    }

    /// log2 of the product.
    pub fn log2_product(&self) -> f64 {
        self.moduli.iter().map(|m| (m.value() as f64).log2()).sum()
    }

    /// Residues of `x` modulo each modulus.
    pub fn decompose(&self, x: &BigUint) -> Vec<u64> {
        self.moduli
            .iter()
            .map(|m| (x % m.value()).to_u64().unwrap_or(0))
            .collect()
    }

    /// Residues of a signed integer.
    pub fn decompose_signed(&self, x: &BigInt) -> Vec<u64> {
        let q = BigInt::from(self.product.clone());
        let r = ((x % &q) + &q) % &q;
        self.decompose(&r.to_biguint().unwrap_or_default())
    }

    /// CRT composition: the unique `x` in `[0, Q)` with the given residues (`< q_i` each).
    pub fn compose(&self, residues: &[u64]) -> Result<BigUint> {
        if residues.len() != self.len() {
            return Err(Error::LengthMismatch {
                what: "residues",
                expected: self.len(),
                found: residues.len(),
            });
        }
        let mut acc = BigUint::zero();
        for ((r, m), (hat, (inv, inv_s))) in residues
            .iter()
            .zip(&self.moduli)
            .zip(self.q_hat.iter().zip(&self.q_hat_inv))
        {
            if *r >= m.value() {
                return Err(Error::OutOfRange {
                    what: "residue",
                    found: r.to_string(),
                    allowed: format!("< {}", m.value()),
                });
            }
            acc += hat * m.mul_shoup(*r, *inv, *inv_s);
        }
        Ok(acc % &self.product)
    }

    /// CRT composition to the centred representative in `(-Q/2, Q/2]`.
    pub fn compose_centered(&self, residues: &[u64]) -> Result<BigInt> {
        let x = self.compose(residues)?;
        let half = &self.product >> 1;
        Ok(if x > half {
            BigInt::from(x) - BigInt::from(self.product.clone())
        } else {
            BigInt::from(x)
        })
    }
}

/// Precomputed fast base conversion from basis `A` to basis `B` (see the module docs).
#[derive(Debug, Clone)]
pub struct BaseConverter {
    from: Vec<Modulus>,
    to: Vec<Modulus>,
    /// (A/a_i)^{-1} mod a_i with Shoup constants.
    a_hat_inv: Vec<(u64, u64)>,
    /// `(A/a_i)·2^64 mod b_j` (Montgomery form), row-major: `k` entries per target `j`.
    a_hat_mod_b: Vec<u64>,
    /// `-v·A·2^64 mod b_j` for `v = 0..=k` (the exact conversion's correction), `k + 1`
    /// entries per target.
    correction: Vec<u64>,
    /// Products that fit in a u128 accumulator before one must be reduced.
    lazy_terms: usize,
    /// 1 / a_i as f64.
    a_inv_f64: Vec<f64>,
}

impl BaseConverter {
    /// Precomputes the conversion from `from` to `to`. The two bases must be disjoint.
    pub fn new(from: &RnsBasis, to: &[Modulus]) -> Result<Self> {
        for b in to {
            if from.moduli.iter().any(|a| a.value() == b.value()) {
                return Err(Error::InvalidModulus {
                    modulus: b.value(),
                    reason: "appears in both bases of a conversion".into(),
                });
            }
        }
        if let Some(b) = to.iter().find(|b| !b.has_montgomery()) {
            return Err(Error::InvalidModulus {
                modulus: b.value(),
                reason: "base conversion targets must be odd primes".into(),
            });
        }
        let k = from.moduli.len();
        // Constants in Montgomery form (·2^64 mod b): the lazy sums end with one REDC.
        let a_hat_mod_b = to
            .iter()
            .flat_map(|b| {
                from.q_hat
                    .iter()
                    .map(|h| b.to_montgomery((h % b.value()).to_u64().unwrap_or(0)))
            })
            .collect();
        let correction = to
            .iter()
            .flat_map(|b| {
                let neg_a = b.neg((from.product() % b.value()).to_u64().unwrap_or(0));
                (0..=k as u64).map(move |v| b.to_montgomery(b.mul(b.reduce(v), neg_a)))
            })
            .collect();
        // REDC needs the sum below b·2^64: each product is < a_max·b, the correction < b.
        let a_max = from.moduli.iter().map(Modulus::value).max().unwrap_or(2);
        let lazy_terms = ((u64::MAX / a_max) as usize).saturating_sub(1).max(1);
        Ok(Self {
            from: from.moduli.clone(),
            to: to.to_vec(),
            a_hat_inv: from.q_hat_inv.clone(),
            a_hat_mod_b,
            correction,
            lazy_terms,
            a_inv_f64: from.moduli.iter().map(|m| 1.0 / m.value() as f64).collect(),
        })
    }

    /// Source moduli.
    pub fn from_moduli(&self) -> &[Modulus] {
        &self.from
    }

    /// Target moduli.
    pub fn to_moduli(&self) -> &[Modulus] {
        &self.to
    }

    fn check(&self, input: &[u64], output: &[u64], n: usize) -> Result<()> {
        if input.len() != self.from.len() * n {
            return Err(Error::LengthMismatch {
                what: "base conversion input",
                expected: self.from.len() * n,
                found: input.len(),
            });
        }
        if output.len() != self.to.len() * n {
            return Err(Error::LengthMismatch {
                what: "base conversion output",
                expected: self.to.len() * n,
                found: output.len(),
            });
        }
        Ok(())
    }

    /// Conversion into separate output limbs (one slice of `n` words per target modulus, in
    /// order), so callers can write straight into non-contiguous destinations.
    pub fn convert_into(
        &self,
        input: &[u64],
        outputs: &mut [&mut [u64]],
        n: usize,
        exact: bool,
    ) -> Result<()> {
        if input.len() != self.from.len() * n {
            return Err(Error::LengthMismatch {
                what: "base conversion input",
                expected: self.from.len() * n,
                found: input.len(),
            });
        }
        if outputs.len() != self.to.len() || outputs.iter().any(|o| o.len() != n) {
            return Err(Error::LengthMismatch {
                what: "base conversion output limbs",
                expected: self.to.len(),
                found: outputs.len(),
            });
        }
        self.convert_rows(input, outputs, n, exact);
        Ok(())
    }

    /// Approximate conversion: `output` (limb-major, `|B| x n`) receives `x + u·A mod b_j` with
    /// `0 <= u < |A|`, for `input` limb-major `|A| x n` in coefficient form.
    pub fn convert_approx(&self, input: &[u64], output: &mut [u64], n: usize) -> Result<()> {
        self.check(input, output, n)?;
        self.convert_inner(input, output, n, false);
        Ok(())
    }

    /// Exact conversion to the centred representative of `x mod A`, in every `b_j`.
    /// Correct unless `x` lies within `|A|·2^-52·A` of `±A/2` (floating-point rounding).
    pub fn convert_exact(&self, input: &[u64], output: &mut [u64], n: usize) -> Result<()> {
        self.check(input, output, n)?;
        self.convert_inner(input, output, n, true);
        Ok(())
    }

    fn convert_inner(&self, input: &[u64], output: &mut [u64], n: usize, exact: bool) {
        let mut rows: Vec<&mut [u64]> = output.chunks_exact_mut(n).collect();
        self.convert_rows(input, &mut rows, n, exact);
    }

    fn convert_rows(&self, input: &[u64], output: &mut [&mut [u64]], n: usize, exact: bool) {
        let k = self.from.len();
        if k == 1 {
            // Single-prime source (α = 1 digits): A/a_0 = 1, so the conversion is a reduction of
            // x (approximate) or of its centred representative (exact) into each target.
            let a = self.from[0];
            let src = &input[..n];
            for (b, out) in self.to.iter().zip(output.iter_mut()) {
                let bq = b.value();
                let (half, a_mod_b) = (a.value() >> 1, b.reduce(a.value()));
                let small = a.value() <= 2 * bq;
                // Branch-free: the comparisons are coin flips on uniform residues.
                let reduce = |x: u64| -> u64 {
                    if small {
                        x - (bq & 0u64.wrapping_sub((x >= bq) as u64))
                    } else {
                        b.reduce(x)
                    }
                };
                if exact {
                    for (o, x) in out.iter_mut().zip(src) {
                        let t = reduce(*x)
                            .wrapping_sub(a_mod_b & 0u64.wrapping_sub((*x > half) as u64));
                        *o = t.wrapping_add(bq & 0u64.wrapping_sub(t >> 63));
                    }
                } else {
                    for (o, x) in out.iter_mut().zip(src) {
                        *o = reduce(*x);
                    }
                }
            }
            return;
        }
        // Coefficient blocks are independent: each worker converts whole blocks, every row of
        // the output split at the same block boundaries.
        let blocks = n.div_ceil(PAR_BLOCK);
        let mut per_block: Vec<Vec<&mut [u64]>> = (0..blocks)
            .map(|_| Vec::with_capacity(self.to.len()))
            .collect();
        for row in output.iter_mut() {
            for (b, chunk) in row.chunks_mut(PAR_BLOCK).enumerate() {
                if let Some(rows) = per_block.get_mut(b) {
                    rows.push(chunk);
                }
            }
        }
        per_block.into_par_iter().enumerate().for_each_init(
            || vec![0u64; (k + 1) * BLOCK],
            |scratch, (b, mut rows)| {
                let start = b * PAR_BLOCK;
                let len = rows.first().map_or(0, |r| r.len());
                let job = Blocks {
                    conv: self,
                    input,
                    n,
                    start,
                    len,
                    rows: &mut rows,
                    scratch,
                    exact,
                };
                // With BMI2's `mulx`/`adcx` where the CPU has them (x86-64-v3), by pulp's safe
                // runtime dispatch; the baseline build otherwise.
                #[cfg(target_arch = "x86_64")]
                if let Some(simd) = pulp::x86::V3::try_new() {
                    pulp::Simd::vectorize(simd, job);
                    return;
                }
                pulp::NullaryFnOnce::call(job);
            },
        );
    }

    /// Converts coefficients `start .. start + m` (`m <= BLOCK`) into `rows[t][off .. off + m]`.
    /// One u128 accumulator per output coefficient and a single Barrett reduction, with the
    /// exact-conversion correction `-v·A` folded in as one more term `v·(b - A mod b)`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn convert_block(
        &self,
        input: &[u64],
        n: usize,
        start: usize,
        m: usize,
        rows: &mut [&mut [u64]],
        off: usize,
        scratch: &mut [u64],
        exact: bool,
    ) {
        let k = self.from.len();
        let (y, v) = scratch.split_at_mut(k * BLOCK);
        let v = &mut v[..m];
        // y_i = x_i · (A/a_i)^{-1} mod a_i.
        for (((md, (w, ws)), src), dst) in self
            .from
            .iter()
            .zip(&self.a_hat_inv)
            .zip(input.chunks_exact(n))
            .zip(y.chunks_exact_mut(BLOCK))
        {
            for (d, s) in dst[..m].iter_mut().zip(&src[start..start + m]) {
                *d = md.mul_shoup(*s, *w, *ws);
            }
        }
        // v = round(Σ_i y_i / a_i): the multiple of A to subtract for the centred value.
        if exact {
            let mut f = [0f64; BLOCK];
            for (yi, inv) in y.chunks_exact(BLOCK).zip(&self.a_inv_f64) {
                for (f, y) in f[..m].iter_mut().zip(&yi[..m]) {
                    // y < 2^62: the signed conversion is exact and a single instruction.
                    *f += (*y as i64) as f64 * inv;
                }
            }
            for (v, f) in v.iter_mut().zip(&f[..m]) {
                // f >= 0: floor(f + 1/2) is round-half-up (no libm call).
                *v = (*f + 0.5) as i64 as u64;
            }
        } else {
            v.fill(0);
        }
        let lazy = self.lazy_terms;
        // Full blocks with k <= lazy: two targets per pass, accumulators in registers, each
        // scaled input loaded once for both.
        let mut t0 = 0;
        if k <= lazy && m == BLOCK && k > 4 {
            let mut pairs = rows.chunks_exact_mut(2);
            for pair in &mut pairs {
                let [ra, rb] = pair else { break };
                let (ba, bb) = (&self.to[t0], &self.to[t0 + 1]);
                let ha = &self.a_hat_mod_b[t0 * k..(t0 + 1) * k];
                let hb = &self.a_hat_mod_b[(t0 + 1) * k..(t0 + 2) * k];
                let ca = &self.correction[t0 * (k + 1)..(t0 + 1) * (k + 1)];
                let cb = &self.correction[(t0 + 1) * (k + 1)..(t0 + 2) * (k + 1)];
                // Fixed-size blocks: indices below BLOCK need no bounds checks.
                let (ys, _) = y.as_chunks::<BLOCK>();
                let (Some(ys), Ok(oa), Ok(ob), Ok(vb)) = (
                    ys.get(..k),
                    <&mut [u64; BLOCK]>::try_from(&mut ra[off..off + m]),
                    <&mut [u64; BLOCK]>::try_from(&mut rb[off..off + m]),
                    <&[u64; BLOCK]>::try_from(&v[..]),
                ) else {
                    break;
                };
                for j in 0..BLOCK {
                    let v = vb[j] as usize;
                    let mut a = ca.get(v).copied().unwrap_or(0) as u128;
                    let mut b = cb.get(v).copied().unwrap_or(0) as u128;
                    for ((yi, ha), hb) in ys.iter().zip(ha).zip(hb) {
                        let x = yi[j] as u128;
                        a += x * *ha as u128;
                        b += x * *hb as u128;
                    }
                    oa[j] = ba.redc(a);
                    ob[j] = bb.redc(b);
                }
                t0 += 2;
            }
        }
        for (t, row) in rows.iter_mut().enumerate().skip(t0) {
            let b = &self.to[t];
            let h = &self.a_hat_mod_b[t * k..(t + 1) * k];
            let corr = &self.correction[t * (k + 1)..(t + 1) * (k + 1)];
            let out = &mut row[off..off + m];
            // Small digits (the common α = 2..4): fully unrolled, accumulators in registers.
            if k <= lazy && m == BLOCK {
                let done = match k {
                    2 => small_k::<2>(b, y, h, corr, v, out),
                    3 => small_k::<3>(b, y, h, corr, v, out),
                    4 => small_k::<4>(b, y, h, corr, v, out),
                    _ => false,
                };
                if done {
                    continue;
                }
            }
            let mut acc = [0u128; BLOCK];
            let acc = &mut acc[..m];
            for (a, v) in acc.iter_mut().zip(v.iter()) {
                *a = corr.get(*v as usize).copied().unwrap_or(0) as u128;
            }
            for (i, (yi, h)) in y.chunks_exact(BLOCK).zip(h).enumerate() {
                if i > 0 && i % lazy == 0 {
                    acc.iter_mut().for_each(|a| *a = b.reduce_u128(*a) as u128);
                }
                let h = *h as u128;
                for (a, y) in acc.iter_mut().zip(&yi[..m]) {
                    *a += *y as u128 * h;
                }
            }
            for (o, a) in out.iter_mut().zip(acc.iter()) {
                *o = b.redc(*a);
            }
        }
    }
}

/// One target row of a full block for `K` source primes: `out[j] = REDC(corr[v_j] +
/// Σ_i y_i[j]·h_i)`, unrolled over `i`. Returns false (doing nothing) on a shape mismatch.
#[inline(always)]
fn small_k<const K: usize>(
    b: &Modulus,
    y: &[u64],
    h: &[u64],
    corr: &[u64],
    v: &[u64],
    out: &mut [u64],
) -> bool {
    let (ys, _) = y.as_chunks::<BLOCK>();
    let (Ok(h), Some(ys), Ok(out), Ok(v)) = (
        <&[u64; K]>::try_from(h),
        ys.get(..K)
            .and_then(|ys| <&[[u64; BLOCK]; K]>::try_from(ys).ok()),
        <&mut [u64; BLOCK]>::try_from(out),
        <&[u64; BLOCK]>::try_from(v),
    ) else {
        return false;
    };
    for j in 0..BLOCK {
        let mut acc = corr.get(v[j] as usize).copied().unwrap_or(0) as u128;
        for i in 0..K {
            acc += ys[i][j] as u128 * h[i] as u128;
        }
        out[j] = b.redc(acc);
    }
    true
}

/// One parallel task of a base conversion: its coefficient blocks, run by
/// `pulp::Simd::vectorize` (a named type with an `#[inline(always)]` body, so that the target
/// features reach the kernel; a closure would be compiled without them).
struct Blocks<'a, 'r> {
    conv: &'a BaseConverter,
    input: &'a [u64],
    n: usize,
    start: usize,
    len: usize,
    rows: &'a mut [&'r mut [u64]],
    scratch: &'a mut [u64],
    exact: bool,
}

impl pulp::NullaryFnOnce for Blocks<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn call(self) {
        let mut off = 0;
        while off < self.len {
            let m = BLOCK.min(self.len - off);
            self.conv.convert_block(
                self.input,
                self.n,
                self.start + off,
                m,
                self.rows,
                off,
                self.scratch,
                self.exact,
            );
            off += m;
        }
    }
}

/// Coefficients per parallel task of a base conversion.
const PAR_BLOCK: usize = 1024;
/// Coefficients per inner block (the scaled inputs of a block stay in L1).
const BLOCK: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::primes::ntt_primes;
    use proptest::prelude::*;

    fn basis(bits: u32, k: usize) -> RnsBasis {
        RnsBasis::new(&ntt_primes(bits, k, 1 << 10, &[]).unwrap()).unwrap()
    }

    proptest! {
        #[test]
        fn crt_round_trip(k in 1usize..8, bits in prop_oneof![Just(30u32), Just(50), Just(61)], seed in any::<[u64; 8]>()) {
            let b = basis(bits, k);
            let x = seed.iter().take(k).fold(BigUint::zero(), |acc, s| (acc << 64) + *s) % b.product();
            let r = b.decompose(&x);
            prop_assert_eq!(b.compose(&r).unwrap(), x);
        }

        #[test]
        fn base_conversion_matches_bigint(ka in 1usize..10, kb in 1usize..5, seed in any::<[u64; 9]>(), n in prop_oneof![1usize..5, Just(64), 65usize..1100], bits in prop_oneof![Just(40u32), Just(55), Just(61)]) {
            // n >= 64 exercises the full-block kernels, n > 1024 the parallel split.
            let all = ntt_primes(bits, ka + kb, 1 << 10, &[]).unwrap();
            let a = RnsBasis::new(&all[..ka]).unwrap();
            let bmods: Vec<Modulus> = all[ka..].iter().map(|q| Modulus::new(*q).unwrap()).collect();
            let conv = BaseConverter::new(&a, &bmods).unwrap();
            // n coefficients, each a random integer mod A.
            let xs: Vec<BigUint> = (0..n).map(|c| seed.iter().map(|s| s.rotate_left(c as u32 * 7) ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).take(ka).fold(BigUint::zero(), |acc, s| (acc << 64) + s) % a.product()).collect();
            let mut input = vec![0u64; ka * n];
            for (c, x) in xs.iter().enumerate() {
                for (i, r) in a.decompose(x).into_iter().enumerate() { input[i * n + c] = r; }
            }
            let mut approx = vec![0u64; kb * n];
            conv.convert_approx(&input, &mut approx, n).unwrap();
            let mut exact = vec![0u64; kb * n];
            conv.convert_exact(&input, &mut exact, n).unwrap();
            let half = a.product() >> 1;
            for (c, x) in xs.iter().enumerate() {
                let centred = if *x > half { BigInt::from(x.clone()) - BigInt::from(a.product().clone()) } else { BigInt::from(x.clone()) };
                for (j, b) in bmods.iter().enumerate() {
                    let q = BigInt::from(b.value());
                    let want = ((&centred % &q) + &q) % &q;
                    prop_assert_eq!(BigInt::from(exact[j * n + c]), want);
                    // approx = x + u·A mod b_j for some 0 <= u < ka
                    let ok = (0..ka as u64).any(|u| {
                        let v = (x + a.product() * u) % b.value();
                        v.to_u64().unwrap() == approx[j * n + c]
                    });
                    prop_assert!(ok);
                }
            }
        }
    }

    #[test]
    fn bad_bases() {
        assert!(RnsBasis::new(&[]).is_err());
        assert!(RnsBasis::new(&[15]).is_err());
        assert!(RnsBasis::new(&[1032193, 1032193]).is_err());
        let b = basis(30, 2);
        assert!(b.compose(&[1]).is_err());
        assert!(b.compose(&[u64::MAX, 0]).is_err());
        let conv = BaseConverter::new(&b, b.moduli());
        assert!(conv.is_err());
    }
}
