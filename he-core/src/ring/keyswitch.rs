//! Digit decomposition and basis extension for hybrid key switching
//! (Han & Ki, CT-RSA 2020, "Better bootstrapping for approximate HE", §3; the GHS special-prime
//! technique of Gentry, Halevi, Smart 2012 generalised to `dnum` digits).
//!
//! The ciphertext modulus `Q_l = q_0 ⋯ q_l` is split into `β = ⌈(l+1)/α⌉` digits of `α`
//! consecutive primes, `D_j = q_{jα} ⋯ q_{jα+α-1}`; the special modulus `P = p_0 ⋯ p_{k-1}`
//! satisfies `P ≳ max D_j` for the noise to stay small. For `d ∈ R_{Q_l}`:
//!
//! - **ModUp** extends each digit `[d]_{D_j}` from `D_j` to `Q_l ∪ P` by fast base conversion,
//!   lifting the *centred* representative (exact conversion): a lift in `[0, D_j)` has mean
//!   `D_j/2`, and the key-switching noise `Σ_j d̃_j·e_j / P` would then carry the all-ones
//!   polynomial, whose canonical embedding concentrates it in a few slots;
//! - the key-switching key supplies, per digit, an RLWE encryption of `P·(Q/D_j)·[(Q/D_j)^{-1}]_{D_j}·s'`;
//!   the inner product of extended digits and key parts gives a ciphertext over `Q_l P`;
//! - **ModDown** divides by `P` with rounding: `(x - Conv_{P->Q_l}([x]_P)) · P^{-1} mod q_i`, with
//!   `[x]_P` the *centred* remainder (exact conversion), so the result is `round(x/P)` with no
//!   bias; a floor-style remainder in `[0, P)` would add `-1/2` to every coefficient, which the
//!   canonical embedding sums coherently into slot 0.

use super::{BufferPool, Coeff, Eval, Poly, PolyView, RingContext};
use crate::math::{BaseConverter, Modulus, RnsBasis};
use crate::{Error, Result};
use rayon::prelude::*;
use std::sync::Arc;

/// A polynomial over `Q_l ∪ P`, kept as its two parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolyQP<R: super::Representation = Eval> {
    /// Residues modulo `q_0 .. q_l`.
    pub q: Poly<R>,
    /// Residues modulo `p_0 .. p_{k-1}`.
    pub p: Poly<R>,
}

/// Precomputed constants of hybrid key switching for a chain `Q` and special primes `P`.
#[derive(Debug)]
pub struct KeySwitchBasis {
    ring_q: Arc<RingContext>,
    ring_p: Arc<RingContext>,
    alpha: usize,
    /// `mod_up[l][j]`: conversion from digit `j` of level `l` to the rest of `Q_l` and `P`.
    mod_up: Vec<Vec<BaseConverter>>,
    /// `mod_down[l]`: conversion from `P` to `Q_l`.
    mod_down: Vec<BaseConverter>,
    /// `P^{-1} mod q_i`, with Shoup constants.
    p_inv: Vec<(u64, u64)>,
    /// `P mod q_i`.
    p_mod_q: Vec<u64>,
    /// Reused buffers for the temporaries of key switching.
    pool: BufferPool,
}

impl KeySwitchBasis {
    /// Precomputes the constants for digits of `alpha` primes.
    pub fn new(ring_q: Arc<RingContext>, ring_p: Arc<RingContext>, alpha: usize) -> Result<Self> {
        if ring_q.degree() != ring_p.degree() {
            return Err(Error::LengthMismatch {
                what: "degree of P ring",
                expected: ring_q.degree(),
                found: ring_p.degree(),
            });
        }
        let lq = ring_q.max_limbs();
        if alpha == 0 || alpha > lq {
            return Err(Error::OutOfRange {
                what: "primes per digit (alpha)",
                found: alpha.to_string(),
                allowed: format!("1..={lq}"),
            });
        }
        let q_vals: Vec<u64> = ring_q.moduli().iter().map(Modulus::value).collect();
        let p_vals: Vec<u64> = ring_p.moduli().iter().map(Modulus::value).collect();
        if let Some(dup) = p_vals.iter().find(|p| q_vals.contains(p)) {
            return Err(Error::InvalidModulus {
                modulus: *dup,
                reason: "appears in both Q and P".into(),
            });
        }
        let p_basis = RnsBasis::new(&p_vals)?;
        let mut mod_up = Vec::with_capacity(lq);
        let mut mod_down = Vec::with_capacity(lq);
        for l in 0..lq {
            let digits = (l + 1).div_ceil(alpha);
            let mut row = Vec::with_capacity(digits);
            for j in 0..digits {
                let (lo, hi) = (j * alpha, ((j + 1) * alpha).min(l + 1));
                let from = RnsBasis::new(&q_vals[lo..hi])?;
                let to: Vec<Modulus> = ring_q.moduli()[..lo]
                    .iter()
                    .chain(&ring_q.moduli()[hi..=l])
                    .chain(ring_p.moduli())
                    .copied()
                    .collect();
                row.push(BaseConverter::new(&from, &to)?);
            }
            mod_up.push(row);
            mod_down.push(BaseConverter::new(&p_basis, &ring_q.moduli()[..=l])?);
        }
        let mut p_inv = Vec::with_capacity(lq);
        let mut p_mod_q = Vec::with_capacity(lq);
        for m in ring_q.moduli() {
            let pm = p_vals.iter().fold(1u64, |acc, p| m.mul(acc, m.reduce(*p)));
            let inv = m.inv(pm)?;
            p_inv.push((inv, m.shoup(inv)));
            p_mod_q.push(pm);
        }
        Ok(Self {
            ring_q,
            ring_p,
            alpha,
            mod_up,
            mod_down,
            p_inv,
            p_mod_q,
            pool: BufferPool::new(),
        })
    }

    /// The ring of the ciphertext modulus chain `Q`.
    pub fn ring_q(&self) -> &Arc<RingContext> {
        &self.ring_q
    }

    /// The ring of the special primes `P`.
    pub fn ring_p(&self) -> &Arc<RingContext> {
        &self.ring_p
    }

    /// Primes per digit, `α`.
    pub fn alpha(&self) -> usize {
        self.alpha
    }

    /// Number of digits at level `l`: `⌈(l+1)/α⌉`.
    pub fn digits(&self, level: usize) -> usize {
        (level + 1).div_ceil(self.alpha)
    }

    /// Number of digits at the top level (`dnum`).
    pub fn dnum(&self) -> usize {
        self.digits(self.ring_q.max_limbs() - 1)
    }

    /// `P mod q_i` for each prime of `Q`.
    pub fn p_mod_q(&self) -> &[u64] {
        &self.p_mod_q
    }

    /// Range of `Q` primes forming digit `j`, at level `level`.
    pub fn digit_range(&self, level: usize, j: usize) -> std::ops::Range<usize> {
        (j * self.alpha)..((j + 1) * self.alpha).min(level + 1)
    }

    /// ModUp of digit `j` of `d` (centred lift) (given both in coefficient form, `d_coeff`, and evaluation form,
    /// `d_eval`, at the same level): returns `[d]_{D_j}` extended to `Q_l ∪ P`, evaluation form.
    /// The digit's own limbs are copied from `d_eval`; the others are converted and transformed.
    pub fn mod_up(&self, d_coeff: &Poly<Coeff>, d_eval: &Poly<Eval>, j: usize) -> Result<PolyQP> {
        self.ring_q.check_shape(d_coeff)?;
        self.ring_q.check_shape(d_eval)?;
        let level = d_coeff.level();
        if d_eval.level() != level {
            return Err(Error::LevelMismatch {
                left_what: "coefficient form",
                left: level,
                right_what: "evaluation form",
                right: d_eval.level(),
            });
        }
        let row = self.mod_up.get(level).ok_or(Error::OutOfRange {
            what: "level",
            found: level.to_string(),
            allowed: format!("< {}", self.mod_up.len()),
        })?;
        let conv = row.get(j).ok_or(Error::OutOfRange {
            what: "digit",
            found: j.to_string(),
            allowed: format!("< {}", row.len()),
        })?;
        let n = self.ring_q.degree();
        let range = self.digit_range(level, j);
        let k = self.ring_p.max_limbs();
        // Every residue is written below (the digit's own limbs copied, the others converted).
        let mut q = self.pool.poly_for_overwrite::<Eval>(n, level + 1);
        let mut p = self.pool.poly_for_overwrite::<Eval>(n, k);
        {
            // Convert straight into the destination limbs: Q limbs outside the digit, then P.
            let (before, rest) = q.as_mut_slice().split_at_mut(range.start * n);
            let (own, after) = rest.split_at_mut(range.len() * n);
            own.copy_from_slice(&d_eval.as_slice()[range.start * n..range.end * n]);
            let mut rows: Vec<&mut [u64]> = before
                .chunks_exact_mut(n)
                .chain(after.chunks_exact_mut(n))
                .chain(p.as_mut_slice().chunks_exact_mut(n))
                .collect();
            conv.convert_into(
                &d_coeff.as_slice()[range.start * n..range.end * n],
                &mut rows,
                n,
                true,
            )?;
            drop(rows);
            self.ring_q.ntt_limbs(before, 0, true)?;
            self.ring_q.ntt_limbs(after, range.end, true)?;
        }
        self.ring_p.ntt_limbs(p.as_mut_slice(), 0, true)?;
        Ok(PolyQP { q, p })
    }

    /// The pool key switching takes its temporaries from.
    pub fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Gives an extended polynomial's buffers back to the pool (after its last use).
    pub fn recycle(&self, x: PolyQP) {
        self.pool.give_poly(x.q);
        self.pool.give_poly(x.p);
    }

    /// The key-switching inner product (Han–Ki 2020, Alg. 2, the step between ModUp and
    /// ModDown), for both key components at once:
    /// `out_c = Σ_j π(d̃_j) · k_{j,c}` over `Q_l ∪ P`, `c ∈ {0, 1}`, in evaluation form, where
    /// `π` is the optional evaluation-form automorphism `x[i] ← x[perm[i]]` (hoisted rotations
    /// permute the extended digits on the fly instead of materialising them).
    ///
    /// `keys[j][c]` is `(Q part, P part)` of component `c` of the key for digit `j` (the `Q`
    /// part restricted to the digits' `l + 1` limbs). Products are accumulated lazily in 128-bit
    /// words and reduced once per coefficient (a Barrett reduction of the sum instead of one
    /// per product), the approach of Halevi–Polyakov–Shoup (CT-RSA 2019, §4.2) for RNS sums.
    pub fn inner_product(
        &self,
        digits: &[PolyQP],
        keys: &[[(PolyView<'_, Eval>, PolyView<'_, Eval>); 2]],
        perm: Option<&[u32]>,
    ) -> Result<[PolyQP; 2]> {
        let refs: Vec<&PolyQP> = digits.iter().collect();
        self.inner_product_refs(&refs, keys, perm)
    }

    /// [`inner_product`](Self::inner_product) over borrowed digits: any `Σ_j x_j ⊙ (y_j, y'_j)`
    /// over `Q_l ∪ P` with lazy 128-bit accumulation — also the plaintext-times-ciphertext
    /// sums of double-hoisted linear transforms (`x_j` the diagonals, `(y_j, y'_j)` the rotated
    /// ciphertexts' components).
    pub fn inner_product_refs(
        &self,
        digits: &[&PolyQP],
        keys: &[[(PolyView<'_, Eval>, PolyView<'_, Eval>); 2]],
        perm: Option<&[u32]>,
    ) -> Result<[PolyQP; 2]> {
        let n = self.ring_q.degree();
        let k = self.ring_p.max_limbs();
        let Some(first) = digits.first() else {
            return Err(Error::InvalidParameters("no digits to key-switch".into()));
        };
        let ql = first.q.limbs();
        if keys.len() != digits.len() {
            return Err(Error::LengthMismatch {
                what: "key-switching key digits",
                expected: digits.len(),
                found: keys.len(),
            });
        }
        for d in digits {
            self.ring_q.check_shape(&d.q)?;
            self.ring_p.check_shape(&d.p)?;
            if d.q.limbs() != ql || d.p.limbs() != k {
                return Err(Error::LengthMismatch {
                    what: "limbs of an extended digit",
                    expected: ql + k,
                    found: d.q.limbs() + d.p.limbs(),
                });
            }
        }
        for (kq, kp) in keys.iter().flatten() {
            if kq.limbs() != ql || kp.limbs() != k || kq.degree() != n || kp.degree() != n {
                return Err(Error::LengthMismatch {
                    what: "limbs of a key-switching key part",
                    expected: ql + k,
                    found: kq.limbs() + kp.limbs(),
                });
            }
        }
        if let Some(perm) = perm {
            if perm.len() != n || perm.iter().any(|p| *p as usize >= n) {
                return Err(Error::InvalidParameters(format!(
                    "a permutation of 0..{n} is needed ({} entries given)",
                    perm.len()
                )));
            }
        }
        // Every residue of the outputs is written below.
        let zero = || PolyQP {
            q: self.pool.poly_for_overwrite::<Eval>(n, ql),
            p: self.pool.poly_for_overwrite::<Eval>(n, k),
        };
        let mut out = [zero(), zero()];
        {
            let [o0, o1] = &mut out;
            let q_limbs =
                o0.q.as_mut_slice()
                    .chunks_exact_mut(n)
                    .zip(o1.q.as_mut_slice().chunks_exact_mut(n))
                    .zip(self.ring_q.moduli())
                    .enumerate()
                    .map(|(t, ((a, b), m))| (false, t, *m, a, b));
            let p_limbs =
                o0.p.as_mut_slice()
                    .chunks_exact_mut(n)
                    .zip(o1.p.as_mut_slice().chunks_exact_mut(n))
                    .zip(self.ring_p.moduli())
                    .enumerate()
                    .map(|(t, ((a, b), m))| (true, t, *m, a, b));
            let tasks: Vec<_> = q_limbs.chain(p_limbs).collect();
            tasks.into_par_iter().for_each(|(is_p, t, m, o0, o1)| {
                fn pick<'k>(
                    is_p: bool,
                    t: usize,
                    (q, p): &'k (PolyView<'_, Eval>, PolyView<'_, Eval>),
                ) -> &'k [u64] {
                    if is_p { p.limb(t) } else { q.limb(t) }.unwrap_or(&[])
                }
                let d: Vec<&[u64]> = digits
                    .iter()
                    .map(|d| if is_p { d.p.limb(t) } else { d.q.limb(t) }.unwrap_or(&[]))
                    .collect();
                let k0: Vec<&[u64]> = keys.iter().map(|[c0, _]| pick(is_p, t, c0)).collect();
                let k1: Vec<&[u64]> = keys.iter().map(|[_, c1]| pick(is_p, t, c1)).collect();
                inner_product_limb(&m, &d, &k0, &k1, perm, o0, o1);
            });
        }
        Ok(out)
    }

    /// ModDown: `round(x / P)` over `Q_l` for `x` over `Q_l ∪ P` in evaluation form.
    /// (Exact to within the floating-point tie margin of [`BaseConverter::convert_exact`].)
    pub fn mod_down(&self, x: PolyQP) -> Result<Poly<Eval>> {
        let PolyQP { q: mut xq, p: xp } = x;
        self.ring_q.check_shape(&xq)?;
        self.ring_p.check_shape(&xp)?;
        if xp.limbs() != self.ring_p.max_limbs() {
            return Err(Error::LengthMismatch {
                what: "P limbs of ModDown input",
                expected: self.ring_p.max_limbs(),
                found: xp.limbs(),
            });
        }
        let level = xq.level();
        let conv = self.mod_down.get(level).ok_or(Error::OutOfRange {
            what: "level",
            found: level.to_string(),
            allowed: format!("< {}", self.mod_down.len()),
        })?;
        let n = self.ring_q.degree();
        let xp = self.ring_p.to_coeff(xp)?;
        let mut c = self.pool.take_for_overwrite((level + 1) * n);
        conv.convert_exact(xp.as_slice(), &mut c, n)?;
        self.pool.give_poly(xp);
        self.ring_q.ntt_limbs(&mut c, 0, true)?;
        xq.as_mut_slice()
            .par_chunks_mut(n)
            .zip(c.par_chunks(n))
            .zip(self.ring_q.moduli())
            .zip(&self.p_inv)
            .for_each(|(((x, c), m), (w, ws))| {
                for (x, c) in x.iter_mut().zip(c) {
                    *x = m.mul_shoup(m.sub(*x, *c), *w, *ws);
                }
            });
        self.pool.give(c);
        Ok(xq)
    }
}

/// Coefficients per block of the lazy inner product (two u128 accumulators each, in L1).
const IP_BLOCK: usize = 128;

/// One limb of [`KeySwitchBasis::inner_product`]: `o_c = Σ_j d_j∘π · k_{c,j} mod m`.
fn inner_product_limb(
    m: &Modulus,
    d: &[&[u64]],
    k0: &[&[u64]],
    k1: &[&[u64]],
    perm: Option<&[u32]>,
    o0: &mut [u64],
    o1: &mut [u64],
) {
    let n = o0.len();
    // Products are < m^2 <= 2^(2·bits); after a reduction the accumulator is < m.
    let lazy = 1usize << 127u32.saturating_sub(2 * m.bits()).min(16);
    let dn = d.len();
    if d.iter().chain(k0).chain(k1).any(|x| x.len() != n) || k0.len() != dn || k1.len() != dn {
        return;
    }
    let mut a0 = [0u128; IP_BLOCK];
    let mut a1 = [0u128; IP_BLOCK];
    let mut s = 0;
    while s < n {
        let e = (s + IP_BLOCK).min(n);
        let (a0, a1) = (&mut a0[..e - s], &mut a1[..e - s]);
        a0.fill(0);
        a1.fill(0);
        for (j, ((dj, k0j), k1j)) in d.iter().zip(k0).zip(k1).enumerate() {
            if j > 0 && j % lazy == 0 {
                a0.iter_mut().for_each(|a| *a = m.reduce_u128(*a) as u128);
                a1.iter_mut().for_each(|a| *a = m.reduce_u128(*a) as u128);
            }
            let (k0s, k1s) = (&k0j[s..e], &k1j[s..e]);
            let accs = a0.iter_mut().zip(a1.iter_mut());
            match perm {
                None => {
                    for (((x, y0), y1), (a0, a1)) in dj[s..e].iter().zip(k0s).zip(k1s).zip(accs) {
                        let x = *x as u128;
                        *a0 += x * *y0 as u128;
                        *a1 += x * *y1 as u128;
                    }
                }
                Some(perm) => {
                    for (((p, y0), y1), (a0, a1)) in perm[s..e].iter().zip(k0s).zip(k1s).zip(accs) {
                        let x = dj.get(*p as usize).copied().unwrap_or(0) as u128;
                        *a0 += x * *y0 as u128;
                        *a1 += x * *y1 as u128;
                    }
                }
            }
        }
        for ((o0, o1), (a0, a1)) in o0[s..e]
            .iter_mut()
            .zip(o1[s..e].iter_mut())
            .zip(a0.iter().zip(a1.iter()))
        {
            *o0 = m.reduce_u128(*a0);
            *o1 = m.reduce_u128(*a1);
        }
        s = e;
    }
}
