//! The ring `R_Q = Z_Q[X]/(X^N + 1)` in RNS form.
//!
//! A [`RingContext`] fixes `N` and an ordered list of NTT primes `q_0, q_1, ...` with their NTT
//! plans and rescaling constants; polynomials ([`Poly`]) with `l + 1` limbs use the first
//! `l + 1` primes. Every operation checks that its operands agree in degree and limb count and
//! returns a typed error otherwise. Work is parallel over limbs with `rayon`.
//!
//! Automorphisms `σ_k : X -> X^k` (`k` odd) act on coefficients by `a_j X^j -> ± a_j X^(jk mod N)`
//! and on evaluations by a permutation of the evaluation points `ψ^(2·brev(i)+1)`.
//! Rescaling divides by the last prime with rounding (CHKKS 2018, §3.2):
//! `round(a / q_l) ≡ (a - [a]_{q_l}) · q_l^{-1} (mod q_i)`, `[·]` the centred remainder.

pub mod keyswitch;
pub mod poly;

pub use keyswitch::KeySwitchBasis;
pub use poly::{zeroed_limbs, BufferPool, Coeff, Eval, Limbs, Poly, PolyView, Representation};

use crate::math::ntt::{bit_reverse, plan as ntt_plan, NttPlan};
use crate::math::primes::check_ntt_prime;
use crate::math::{Modulus, Prng, RnsBasis};
use crate::{Error, Result};
use num_bigint::BigInt;
use rayon::prelude::*;
use std::sync::Arc;

/// Smallest ring degree supported.
pub const MIN_DEGREE: usize = 16;
/// Largest ring degree supported.
pub const MAX_DEGREE: usize = 1 << 17;

/// Degree, primes, NTT plans and rescaling constants of an RNS ring.
#[derive(Debug)]
pub struct RingContext {
    n: usize,
    moduli: Vec<Modulus>,
    ntt: Vec<NttPlan>,
    /// For each `l >= 1`: `q_l^{-1} mod q_i` (with Shoup constants) for `i < l`.
    rescale_inv: Vec<Vec<(u64, u64)>>,
}

impl RingContext {
    /// A ring of degree `n` over the given distinct NTT primes, with the fastest NTT backend.
    pub fn new(n: usize, moduli: &[u64]) -> Result<Arc<Self>> {
        check_degree(n)?;
        let plans = moduli
            .iter()
            .map(|q| ntt_plan(n, *q))
            .collect::<Result<Vec<_>>>()?;
        Self::with_plans(n, plans)
    }

    /// A ring with explicitly given NTT plans (e.g. the scalar reference, or another backend),
    /// one per modulus, in order.
    pub fn with_plans(n: usize, plans: Vec<NttPlan>) -> Result<Arc<Self>> {
        check_degree(n)?;
        if plans.is_empty() {
            return Err(Error::InvalidParameters(
                "a ring needs at least one modulus".into(),
            ));
        }
        let mut moduli = Vec::with_capacity(plans.len());
        for (i, p) in plans.iter().enumerate() {
            if p.degree() != n {
                return Err(Error::LengthMismatch {
                    what: "NTT plan degree",
                    expected: n,
                    found: p.degree(),
                });
            }
            let q = p.modulus();
            if moduli.iter().any(|m: &Modulus| m.value() == q) {
                return Err(Error::InvalidModulus {
                    modulus: q,
                    reason: format!("repeated (position {i})"),
                });
            }
            moduli.push(check_ntt_prime(q, n)?);
        }
        let mut rescale_inv = vec![Vec::new()];
        for l in 1..moduli.len() {
            let ql = moduli[l].value();
            let row = moduli[..l]
                .iter()
                .map(|m| {
                    let inv = m.inv(m.reduce(ql))?;
                    Ok((inv, m.shoup(inv)))
                })
                .collect::<Result<Vec<_>>>()?;
            rescale_inv.push(row);
        }
        Ok(Arc::new(Self {
            n,
            moduli,
            ntt: plans,
            rescale_inv,
        }))
    }

    /// Ring degree `N`.
    #[inline]
    pub fn degree(&self) -> usize {
        self.n
    }

    /// The moduli, in order.
    #[inline]
    pub fn moduli(&self) -> &[Modulus] {
        &self.moduli
    }

    /// Number of moduli (the largest limb count a polynomial may have).
    #[inline]
    pub fn max_limbs(&self) -> usize {
        self.moduli.len()
    }

    /// NTT plan of modulus `i`.
    pub fn ntt(&self, i: usize) -> Option<&NttPlan> {
        self.ntt.get(i)
    }

    /// The RNS basis of the first `limbs` moduli (big-integer CRT; for tests and debugging).
    pub fn basis(&self, limbs: usize) -> Result<RnsBasis> {
        self.check_limbs(limbs)?;
        RnsBasis::new(
            &self.moduli[..limbs]
                .iter()
                .map(|m| m.value())
                .collect::<Vec<_>>(),
        )
    }

    fn check_limbs(&self, limbs: usize) -> Result<()> {
        if limbs == 0 || limbs > self.moduli.len() {
            return Err(Error::OutOfRange {
                what: "limb count",
                found: limbs.to_string(),
                allowed: format!("1..={}", self.moduli.len()),
            });
        }
        Ok(())
    }

    /// Checks that `p` belongs to this ring: degree, limb count, and every residue `< q_i`.
    /// Use on untrusted data (deserialization, memory-mapped objects).
    pub fn check<R: Representation, C: AsRef<[u64]>>(&self, p: &Poly<R, C>) -> Result<()> {
        self.check_shape(p)?;
        for (i, (limb, m)) in p.iter_limbs().zip(&self.moduli).enumerate() {
            if let Some(bad) = limb.iter().find(|x| **x >= m.value()) {
                return Err(Error::OutOfRange {
                    what: "residue",
                    found: format!("{bad} in limb {i}"),
                    allowed: format!("< {}", m.value()),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn check_shape<R: Representation, C: AsRef<[u64]>>(
        &self,
        p: &Poly<R, C>,
    ) -> Result<()> {
        if p.degree() != self.n {
            return Err(Error::LengthMismatch {
                what: "polynomial degree",
                expected: self.n,
                found: p.degree(),
            });
        }
        self.check_limbs(p.limbs())
    }

    fn check_pair<R: Representation, A: AsRef<[u64]>, B: AsRef<[u64]>>(
        &self,
        a: &Poly<R, A>,
        b: &Poly<R, B>,
    ) -> Result<()> {
        self.check_shape(a)?;
        self.check_shape(b)?;
        if a.limbs() != b.limbs() {
            return Err(Error::LevelMismatch {
                left_what: "left operand",
                left: a.level(),
                right_what: "right operand",
                right: b.level(),
            });
        }
        Ok(())
    }

    /// The zero polynomial with `limbs` limbs.
    pub fn zero<R: Representation>(&self, limbs: usize) -> Result<Poly<R>> {
        self.check_limbs(limbs)?;
        Ok(Poly::zero(self.n, limbs))
    }

    /// The polynomial with small signed coefficients `coeffs` (length `N`), reduced into each
    /// of the first `limbs` moduli.
    pub fn from_signed(&self, coeffs: &[i64], limbs: usize) -> Result<Poly<Coeff>> {
        self.poly_from_fn(limbs, coeffs.len(), |m, j| m.reduce_i64(coeffs[j]))
    }

    /// The polynomial with signed 128-bit coefficients (e.g. encoded CKKS values).
    pub fn from_i128(&self, coeffs: &[i128], limbs: usize) -> Result<Poly<Coeff>> {
        self.poly_from_fn(limbs, coeffs.len(), |m, j| m.reduce_i128(coeffs[j]))
    }

    fn poly_from_fn(
        &self,
        limbs: usize,
        len: usize,
        f: impl Fn(&Modulus, usize) -> u64 + Sync,
    ) -> Result<Poly<Coeff>> {
        self.check_limbs(limbs)?;
        if len != self.n {
            return Err(Error::LengthMismatch {
                what: "coefficient vector",
                expected: self.n,
                found: len,
            });
        }
        let mut p = Poly::<Coeff>::zero(self.n, limbs);
        p.as_mut_slice()
            .par_chunks_mut(self.n)
            .zip(&self.moduli[..limbs])
            .for_each(|(limb, m)| {
                for (j, x) in limb.iter_mut().enumerate() {
                    *x = f(m, j);
                }
            });
        Ok(p)
    }

    /// A polynomial with residues uniform modulo each prime (uniform in `R_Q`), in either
    /// representation (the NTT is a bijection).
    pub fn uniform<R: Representation>(&self, prng: &mut Prng, limbs: usize) -> Result<Poly<R>> {
        self.check_limbs(limbs)?;
        let mut p = Poly::<R>::zero(self.n, limbs);
        for (limb, m) in p.as_mut_slice().chunks_exact_mut(self.n).zip(&self.moduli) {
            prng.fill_uniform(m, limb);
        }
        Ok(p)
    }

    /// Coefficient to evaluation form (forward NTT of every limb).
    pub fn to_eval<C: AsRef<[u64]> + AsMut<[u64]>>(
        &self,
        mut p: Poly<Coeff, C>,
    ) -> Result<Poly<Eval, C>> {
        self.check_shape(&p)?;
        let n = self.n;
        p.as_mut_slice()
            .par_chunks_mut(n)
            .zip(&self.ntt)
            .try_for_each(|(limb, plan)| plan.try_forward(limb))?;
        Ok(p.retag())
    }

    /// Evaluation to coefficient form (inverse NTT of every limb).
    pub fn to_coeff<C: AsRef<[u64]> + AsMut<[u64]>>(
        &self,
        mut p: Poly<Eval, C>,
    ) -> Result<Poly<Coeff, C>> {
        self.check_shape(&p)?;
        let n = self.n;
        p.as_mut_slice()
            .par_chunks_mut(n)
            .zip(&self.ntt)
            .try_for_each(|(limb, plan)| plan.try_inverse(limb))?;
        Ok(p.retag())
    }

    /// Forward (or inverse) NTT of every `N`-word limb of a limb-major buffer, limb `i` taken
    /// modulo `q_{first_modulus + i}` (the raw form key switching works on).
    pub(crate) fn ntt_limbs(
        &self,
        data: &mut [u64],
        first_modulus: usize,
        forward: bool,
    ) -> Result<()> {
        let n = self.n;
        let plans = self.ntt.get(first_modulus..).unwrap_or(&[]);
        if data.len() / n.max(1) > plans.len() {
            return Err(Error::OutOfRange {
                what: "limbs to transform",
                found: (data.len() / n).to_string(),
                allowed: format!("<= {}", plans.len()),
            });
        }
        data.par_chunks_mut(n)
            .zip(plans)
            .try_for_each(|(limb, plan)| {
                if forward {
                    plan.try_forward(limb)
                } else {
                    plan.try_inverse(limb)
                }
            })
    }

    fn zip_limbs<R, A, B>(
        &self,
        a: &mut Poly<R, A>,
        b: &Poly<R, B>,
        f: impl Fn(&Modulus, &mut [u64], &[u64]) + Sync,
    ) -> Result<()>
    where
        R: Representation,
        A: AsRef<[u64]> + AsMut<[u64]>,
        B: AsRef<[u64]>,
    {
        self.check_pair(a, b)?;
        let n = self.n;
        a.as_mut_slice()
            .par_chunks_mut(n)
            .zip(b.as_slice().par_chunks(n))
            .zip(&self.moduli)
            .for_each(|((x, y), m)| f(m, x, y));
        Ok(())
    }

    /// `a += b`.
    pub fn add_assign<R: Representation, A: AsRef<[u64]> + AsMut<[u64]>, B: AsRef<[u64]>>(
        &self,
        a: &mut Poly<R, A>,
        b: &Poly<R, B>,
    ) -> Result<()> {
        self.zip_limbs(a, b, |m, x, y| {
            x.iter_mut().zip(y).for_each(|(x, y)| *x = m.add(*x, *y))
        })
    }

    /// `a -= b`.
    pub fn sub_assign<R: Representation, A: AsRef<[u64]> + AsMut<[u64]>, B: AsRef<[u64]>>(
        &self,
        a: &mut Poly<R, A>,
        b: &Poly<R, B>,
    ) -> Result<()> {
        self.zip_limbs(a, b, |m, x, y| {
            x.iter_mut().zip(y).for_each(|(x, y)| *x = m.sub(*x, *y))
        })
    }

    /// `a = -a`.
    pub fn neg_assign<R: Representation, A: AsRef<[u64]> + AsMut<[u64]>>(
        &self,
        a: &mut Poly<R, A>,
    ) -> Result<()> {
        self.check_shape(a)?;
        let n = self.n;
        a.as_mut_slice()
            .par_chunks_mut(n)
            .zip(&self.moduli)
            .for_each(|(x, m)| x.iter_mut().for_each(|x| *x = m.neg(*x)));
        Ok(())
    }

    /// `a + b`.
    pub fn add<R: Representation, A: AsRef<[u64]>, B: AsRef<[u64]>>(
        &self,
        a: &Poly<R, A>,
        b: &Poly<R, B>,
    ) -> Result<Poly<R>> {
        let mut c = a.to_owned_poly();
        self.add_assign(&mut c, b)?;
        Ok(c)
    }

    /// `a - b`.
    pub fn sub<R: Representation, A: AsRef<[u64]>, B: AsRef<[u64]>>(
        &self,
        a: &Poly<R, A>,
        b: &Poly<R, B>,
    ) -> Result<Poly<R>> {
        let mut c = a.to_owned_poly();
        self.sub_assign(&mut c, b)?;
        Ok(c)
    }

    /// `a *= b` (pointwise, evaluation form: the negacyclic product).
    pub fn mul_assign<A: AsRef<[u64]> + AsMut<[u64]>, B: AsRef<[u64]>>(
        &self,
        a: &mut Poly<Eval, A>,
        b: &Poly<Eval, B>,
    ) -> Result<()> {
        self.zip_limbs(a, b, |m, x, y| {
            x.iter_mut().zip(y).for_each(|(x, y)| *x = m.mul(*x, *y))
        })
    }

    /// `a * b` (evaluation form).
    pub fn mul<A: AsRef<[u64]>, B: AsRef<[u64]>>(
        &self,
        a: &Poly<Eval, A>,
        b: &Poly<Eval, B>,
    ) -> Result<Poly<Eval>> {
        self.check_pair(a, b)?;
        let mut c = Poly::<Eval>::zero(self.n, a.limbs());
        self.mul_add_assign(&mut c, a, b)?;
        Ok(c)
    }

    /// `acc += a * b` (evaluation form), vectorised by the NTT backend.
    pub fn mul_add_assign<C: AsRef<[u64]> + AsMut<[u64]>, A: AsRef<[u64]>, B: AsRef<[u64]>>(
        &self,
        acc: &mut Poly<Eval, C>,
        a: &Poly<Eval, A>,
        b: &Poly<Eval, B>,
    ) -> Result<()> {
        self.check_pair(acc, a)?;
        self.check_pair(a, b)?;
        let n = self.n;
        acc.as_mut_slice()
            .par_chunks_mut(n)
            .zip(a.as_slice().par_chunks(n).zip(b.as_slice().par_chunks(n)))
            .zip(&self.ntt)
            .try_for_each(|((c, (x, y)), plan)| plan.try_mul_accumulate(c, x, y))
    }

    /// `a *= s` for an integer scalar `s` (reduced into each modulus); any representation.
    pub fn mul_scalar_assign<R: Representation, A: AsRef<[u64]> + AsMut<[u64]>>(
        &self,
        a: &mut Poly<R, A>,
        s: i64,
    ) -> Result<()> {
        self.check_shape(a)?;
        let scalars: Vec<u64> = self.moduli[..a.limbs()]
            .iter()
            .map(|m| m.reduce_i64(s))
            .collect();
        self.mul_rns_scalar_assign(a, &scalars)
    }

    /// `a *= s` for a scalar given by its residues (one per limb, each `< q_i`).
    pub fn mul_rns_scalar_assign<R: Representation, A: AsRef<[u64]> + AsMut<[u64]>>(
        &self,
        a: &mut Poly<R, A>,
        s: &[u64],
    ) -> Result<()> {
        self.check_shape(a)?;
        if s.len() < a.limbs() {
            return Err(Error::LengthMismatch {
                what: "RNS scalar",
                expected: a.limbs(),
                found: s.len(),
            });
        }
        let n = self.n;
        a.as_mut_slice()
            .par_chunks_mut(n)
            .zip(&self.moduli)
            .zip(s)
            .for_each(|((x, m), s)| {
                let s = m.reduce(*s);
                m.slice_mul_scalar_shoup(x, s, m.shoup(s));
            });
        Ok(())
    }

    /// `a += s` for an integer constant `s` (the constant polynomial); in evaluation form this
    /// adds `s` to every evaluation, in coefficient form to the constant coefficient only.
    pub fn add_scalar_assign<R: Representation, A: AsRef<[u64]> + AsMut<[u64]>>(
        &self,
        a: &mut Poly<R, A>,
        s: &[u64],
    ) -> Result<()> {
        self.check_shape(a)?;
        if s.len() < a.limbs() {
            return Err(Error::LengthMismatch {
                what: "RNS scalar",
                expected: a.limbs(),
                found: s.len(),
            });
        }
        let n = self.n;
        let is_eval = R::TAG == Eval::TAG;
        a.as_mut_slice()
            .par_chunks_mut(n)
            .zip(&self.moduli)
            .zip(s)
            .for_each(|((x, m), s)| {
                let s = m.reduce(*s);
                if is_eval {
                    x.iter_mut().for_each(|x| *x = m.add(*x, s));
                } else if let Some(x0) = x.first_mut() {
                    *x0 = m.add(*x0, s);
                }
            });
        Ok(())
    }

    fn check_galois(&self, k: u64) -> Result<u64> {
        let two_n = 2 * self.n as u64;
        let k = k % two_n;
        if k.is_multiple_of(2) {
            return Err(Error::OutOfRange {
                what: "Galois element",
                found: k.to_string(),
                allowed: format!("odd residues mod 2N = {two_n}"),
            });
        }
        Ok(k)
    }

    /// `σ_k(a)(X) = a(X^k)` in coefficient form, `k` odd.
    pub fn automorphism_coeff<A: AsRef<[u64]>>(
        &self,
        a: &Poly<Coeff, A>,
        k: u64,
    ) -> Result<Poly<Coeff>> {
        self.check_shape(a)?;
        let k = self.check_galois(k)?;
        let n = self.n;
        let mask = 2 * n as u64 - 1;
        let mut out = Poly::<Coeff>::zero(n, a.limbs());
        out.as_mut_slice()
            .par_chunks_mut(n)
            .zip(a.as_slice().par_chunks(n))
            .zip(&self.moduli)
            .for_each(|((o, x), m)| {
                for (j, v) in x.iter().enumerate() {
                    let e = (j as u64 * k) & mask;
                    if e < n as u64 {
                        o[e as usize] = *v;
                    } else {
                        o[(e - n as u64) as usize] = m.neg(*v);
                    }
                }
            });
        Ok(out)
    }

    /// The index permutation of `σ_k` on evaluation form: `out[i] = in[perm[i]]`.
    pub fn automorphism_eval_permutation(&self, k: u64) -> Result<Vec<u32>> {
        let k = self.check_galois(k)?;
        let n = self.n;
        let bits = n.trailing_zeros();
        let mask = 2 * n as u64 - 1;
        Ok((0..n)
            .map(|i| {
                let e = 2 * bit_reverse(i, bits) as u64 + 1;
                let ek = (e * k) & mask;
                bit_reverse(((ek - 1) / 2) as usize, bits) as u32
            })
            .collect())
    }

    /// `σ_k(a)` in evaluation form: a permutation of evaluation points, no NTT needed.
    pub fn automorphism_eval<A: AsRef<[u64]>>(
        &self,
        a: &Poly<Eval, A>,
        k: u64,
    ) -> Result<Poly<Eval>> {
        self.check_shape(a)?;
        let perm = self.automorphism_eval_permutation(k)?;
        self.permute(a, &perm)
    }

    /// Applies a precomputed evaluation-form permutation (see
    /// [`automorphism_eval_permutation`](Self::automorphism_eval_permutation)).
    pub fn permute<A: AsRef<[u64]>>(&self, a: &Poly<Eval, A>, perm: &[u32]) -> Result<Poly<Eval>> {
        self.check_shape(a)?;
        let n = self.n;
        if perm.len() != n || perm.iter().any(|p| *p as usize >= n) {
            return Err(Error::InvalidParameters(format!(
                "a permutation of 0..{n} is needed ({} entries given)",
                perm.len()
            )));
        }
        let mut out = Poly::<Eval>::zero(n, a.limbs());
        out.as_mut_slice()
            .par_chunks_mut(n)
            .zip(a.as_slice().par_chunks(n))
            .for_each(|(o, x)| {
                for (o, p) in o.iter_mut().zip(perm) {
                    *o = x[*p as usize];
                }
            });
        Ok(out)
    }

    /// Divides by the last prime `q_l` with rounding and drops that limb (coefficient form).
    pub fn rescale_coeff(&self, a: Poly<Coeff>) -> Result<Poly<Coeff>> {
        self.check_shape(&a)?;
        let l = a.level();
        if l == 0 {
            return Err(Error::OutOfLevels {
                operation: "rescale",
                needed: 1,
                found: 0,
            });
        }
        let n = self.n;
        let ql = self.moduli[l];
        let mut a = a;
        let (head, last) = a.as_mut_slice().split_at_mut(l * n);
        let last: Vec<i64> = last.iter().map(|x| ql.center(*x)).collect();
        head.par_chunks_mut(n)
            .zip(&self.moduli[..l])
            .zip(&self.rescale_inv[l])
            .for_each(|((x, m), (w, ws))| {
                for (x, r) in x.iter_mut().zip(&last) {
                    *x = m.mul_shoup(m.sub(*x, m.reduce_i64(*r)), *w, *ws);
                }
            });
        a.truncate(l)?;
        Ok(a)
    }

    /// Divides by the last prime with rounding and drops that limb (evaluation form): one
    /// inverse NTT of the last limb and one forward NTT per remaining limb.
    pub fn rescale_eval(&self, a: Poly<Eval>) -> Result<Poly<Eval>> {
        self.check_shape(&a)?;
        let l = a.level();
        if l == 0 {
            return Err(Error::OutOfLevels {
                operation: "rescale",
                needed: 1,
                found: 0,
            });
        }
        let n = self.n;
        let ql = self.moduli[l];
        let mut a = a;
        let (head, last) = a.as_mut_slice().split_at_mut(l * n);
        self.ntt[l].try_inverse(last)?;
        let last: Vec<i64> = last.iter().map(|x| ql.center(*x)).collect();
        head.par_chunks_mut(n)
            .zip(&self.moduli[..l])
            .zip(&self.rescale_inv[l])
            .zip(&self.ntt[..l])
            .try_for_each(|(((x, m), (w, ws)), plan)| -> Result<()> {
                let mut r: Vec<u64> = last.iter().map(|v| m.reduce_i64(*v)).collect();
                plan.try_forward(&mut r)?;
                for (x, r) in x.iter_mut().zip(&r) {
                    *x = m.mul_shoup(m.sub(*x, *r), *w, *ws);
                }
                Ok(())
            })?;
        a.truncate(l)?;
        Ok(a)
    }

    /// Centred big-integer coefficients (CRT over the limbs); for tests, decoding checks and
    /// debugging.
    pub fn to_bigints<A: AsRef<[u64]>>(&self, a: &Poly<Coeff, A>) -> Result<Vec<BigInt>> {
        self.check(a)?;
        let basis = self.basis(a.limbs())?;
        let n = self.n;
        let s = a.as_slice();
        (0..n)
            .map(|j| {
                let r: Vec<u64> = (0..a.limbs()).map(|i| s[i * n + j]).collect();
                basis.compose_centered(&r)
            })
            .collect()
    }
}

fn check_degree(n: usize) -> Result<()> {
    if !n.is_power_of_two() || !(MIN_DEGREE..=MAX_DEGREE).contains(&n) {
        return Err(Error::InvalidDegree {
            found: n,
            min: MIN_DEGREE,
            max: MAX_DEGREE,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
