//! Evaluation of pre-encoded linear transforms (double-hoisted BSGS, see the parent module's
//! documentation), whole or streamed part by part.
//!
//! One code path serves both: the transforms' giant steps are processed in *parts*; a part is
//! a set of `(input, transform)` terms whose giant steps are summed before the rotation they
//! share, then rotated and added to the running sum in `Q_l ∪ P`; the baby-step rotations of
//! each input are computed once (hoisted, on first need) and kept across parts. A whole
//! [`LinearTransform`] sum is one part; a streamed transform is a sequence of parts fetched
//! one at a time ([`LinearTransform::encode_giant_steps`] splits one), so that only one part's
//! plaintexts are held at once. Modular sums are exact, so the result does not depend on the
//! order of the parts, and is bit for bit the whole sum's when every giant step's terms come
//! in one part (a giant step split across parts costs one more ModDown and key switch, and
//! differs by their rounding only).

use super::LinearTransform;
use crate::ckks::{Ciphertext, Evaluator};
use crate::ring::keyswitch::PolyQP;
use crate::ring::{Eval, Poly};
use crate::rlwe::galois_element_for_rotation;
use crate::rlwe::keyswitch::{decompose, key_switch_decomposed_qp, Decomposed};
use crate::{Error, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A ciphertext in the extended basis, multiplied by `P`: `(P·c_0, P·c_1)` up to key-switching
/// noise, before ModDown.
struct CiphertextQP {
    c0: PolyQP,
    c1: PolyQP,
}

/// One input's hoisted baby steps: its decomposition (made on the first nonzero baby step)
/// and the rotations computed so far.
struct BabySteps<'a> {
    ct: &'a Ciphertext,
    dec: Option<Decomposed>,
    rotated: BTreeMap<usize, CiphertextQP>,
}

/// What every term of one evaluation must share: the first term's shape and the output scale.
#[derive(Clone, Copy)]
struct Shape {
    slots: usize,
    level: usize,
    n1: usize,
    lt_scale: f64,
    ct_scale: f64,
}

/// The running sum of a streamed evaluation.
#[derive(Default)]
struct Accumulator {
    /// Rotated giant steps, summed in `Q_l ∪ P` (times `P`).
    rotated: Option<[PolyQP; 2]>,
    /// The giant step without rotation (`i·n1 ≡ 0`), already divided by `P`.
    plain: Option<Ciphertext>,
}

impl Accumulator {
    /// Adds a rotated giant step (in `Q_l ∪ P`, times `P`).
    fn add_rotated(&mut self, eval: &Evaluator, [u0, u1]: [PolyQP; 2]) -> Result<()> {
        let params = eval.params();
        let (rq, rp) = (params.ring_q(), params.ring_p());
        match self.rotated.as_mut() {
            None => self.rotated = Some([u0, u1]),
            Some([s0, s1]) => {
                rq.add_assign(&mut s0.q, &u0.q)?;
                rp.add_assign(&mut s0.p, &u0.p)?;
                rq.add_assign(&mut s1.q, &u1.q)?;
                rp.add_assign(&mut s1.p, &u1.p)?;
            }
        }
        Ok(())
    }

    /// Adds the unrotated giant step (over `Q_l`).
    fn add_plain(&mut self, eval: &Evaluator, p: Ciphertext) -> Result<()> {
        match self.plain.as_mut() {
            None => self.plain = Some(p),
            Some(q) => eval.add_assign(q, &p)?,
        }
        Ok(())
    }

    /// The sum of two running sums.
    fn merge(mut self, eval: &Evaluator, other: Accumulator) -> Result<Self> {
        if let Some(r) = other.rotated {
            self.add_rotated(eval, r)?;
        }
        if let Some(p) = other.plain {
            self.add_plain(eval, p)?;
        }
        Ok(self)
    }
}

impl Evaluator {
    /// `x ↦ P·x` on `Q_l` (the `Q` part of a polynomial lifted to `Q_l ∪ P` times `P`; its `P`
    /// part is zero).
    fn times_p(&self, x: &Poly<Eval>) -> Result<Poly<Eval>> {
        let ks = self.params().key_switch_basis();
        let mut y = x.clone();
        self.params()
            .ring_q()
            .mul_rns_scalar_assign(&mut y, ks.p_mod_q())?;
        Ok(y)
    }

    /// `M·z` for a pre-encoded transform, double hoisted (see the module documentation). The
    /// input must be at the transform's level; the output keeps that level and has scale
    /// `Δ_z·Δ_M` (rescale afterwards).
    pub fn apply_linear_transform(
        &self,
        ct: &Ciphertext,
        lt: &LinearTransform,
    ) -> Result<Ciphertext> {
        self.apply_linear_transform_sum(&[(ct, lt)])
    }

    /// `Σ_b M_b·z_b`: several transforms of several ciphertexts summed, sharing the giant
    /// steps — the inner sums of every term with the same giant step are added in `Q_l ∪ P`
    /// before the one rotation they need (a layer whose input spans several ciphertexts).
    /// All transforms must have the same slots, level, scale and baby-step size, and all
    /// inputs the transforms' level and one scale.
    pub fn apply_linear_transform_sum(
        &self,
        terms: &[(&Ciphertext, &LinearTransform)],
    ) -> Result<Ciphertext> {
        let inputs: Vec<&Ciphertext> = terms.iter().map(|(ct, _)| *ct).collect();
        let part: Vec<(usize, &LinearTransform)> = terms
            .iter()
            .enumerate()
            .map(|(b, (_, lt))| (b, *lt))
            .collect();
        let mut state = self.start_streamed(&inputs)?;
        let mut acc = Accumulator::default();
        let mut shape = None;
        self.apply_part(&mut state, &part, &mut shape, &mut acc)?;
        self.finish_streamed(state, shape, acc)
    }

    /// `Σ_b M_b·z_b` with the transforms' giant steps fetched part by part: `fetch(k)` for
    /// `k = 0..parts` returns part `k` as `(input index, transform part)` terms (e.g. parts
    /// of [`LinearTransform::encode_giant_steps`] over disjoint ranges, encoded on demand or
    /// read from a store); each is dropped when applied, so only one part's plaintexts are
    /// held at once. `prefetch(k)` is called before part `k - 1` is applied (a store can read
    /// part `k` meanwhile). When every giant step's terms come in one part (parts over
    /// giant-step ranges shared by all inputs), the result is bit-identical to
    /// [`apply_linear_transform_sum`](Self::apply_linear_transform_sum) of the whole
    /// transforms; a giant step split across parts is rotated once per part (correct, with
    /// one more key switch's rounding). Every part is checked as the whole would be (level,
    /// scale, `n1`, keys).
    ///
    /// ```
    /// # fn main() -> he_core::Result<()> {
    /// use he_core::circuits::lintrans::{giant_steps_for, rotations_for, BabySteps, Diagonals,
    ///     LinearTransform};
    /// use he_core::ckks::{Complex64, Encoder, Encryptor, Evaluator};
    /// use he_core::rlwe::{EvalKeySet, KeyGenerator, Parameters, ParametersLiteral, PublicKey,
    ///     SecretDistribution, SecretKey, Security};
    /// use std::sync::Arc;
    ///
    /// let params = Parameters::new(ParametersLiteral {
    ///     log_n: 9, log_q: vec![55, 45], log_p: vec![60], alpha: None, log_scale: 45.0,
    ///     secret: SecretDistribution::UniformTernary, security: Security::InsecureForTesting,
    /// })?;
    /// let n = params.slots();
    /// let mut diags = Diagonals::new(n)?;
    /// for k in [0, 3, 17, 40, 99] {
    ///     diags.insert(k, (0..n).map(|t| Complex64::new((t % 5) as f64 / 4.0, 0.0)).collect())?;
    /// }
    /// let (encoder, level, baby) = (Encoder::new(&params)?, params.max_level(), BabySteps::Fixed(8));
    /// let q = params.q()[level] as f64;
    /// let sk = SecretKey::generate(&params)?;
    /// let mut keys = EvalKeySet::new();
    /// for k in KeyGenerator::new(&sk).rotation_keys(&rotations_for(&diags, baby)?, false)? {
    ///     keys.insert(k);
    /// }
    /// let eval = Evaluator::with_keys(&params, Arc::new(keys))?;
    /// let z: Vec<f64> = (0..n).map(|i| (i % 7) as f64 / 7.0).collect();
    /// let ct = Encryptor::new(&params, PublicKey::generate(&sk)?)?
    ///     .encrypt(&encoder.encode(&z, level, params.default_scale())?)?;
    ///
    /// // One giant step per part, encoded only when the evaluator asks for it.
    /// let giants = giant_steps_for(&diags, baby)?;
    /// let streamed = eval.apply_linear_transform_streamed(
    ///     &[&ct],
    ///     giants.len(),
    ///     &|k| {
    ///         let i = giants[k];
    ///         let part = LinearTransform::encode_giant_steps(&encoder, &diags, level, q, baby,
    ///             i..i + 1)?;
    ///         Ok(part.into_iter().map(|p| (0, Arc::new(p))).collect())
    ///     },
    ///     &|_| {},
    /// )?;
    /// let whole = LinearTransform::encode(&encoder, &diags, level, q, baby)?;
    /// assert_eq!(streamed, eval.apply_linear_transform(&ct, &whole)?);
    /// # Ok(())
    /// # }
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn apply_linear_transform_streamed(
        &self,
        inputs: &[&Ciphertext],
        parts: usize,
        fetch: &(dyn Fn(usize) -> Result<Vec<(usize, Arc<LinearTransform>)>> + Sync),
        prefetch: &(dyn Fn(usize) + Sync),
    ) -> Result<Ciphertext> {
        let mut state = self.start_streamed(inputs)?;
        let mut acc = Accumulator::default();
        let mut shape = None;
        for k in 0..parts {
            let part = fetch(k)?;
            if k + 1 < parts {
                prefetch(k + 1);
            }
            let refs: Vec<(usize, &LinearTransform)> =
                part.iter().map(|(b, lt)| (*b, lt.as_ref())).collect();
            self.apply_part(&mut state, &refs, &mut shape, &mut acc)?;
        }
        self.finish_streamed(state, shape, acc)
    }

    fn start_streamed<'a>(&self, inputs: &[&'a Ciphertext]) -> Result<Vec<BabySteps<'a>>> {
        let Some(first) = inputs.first() else {
            return Err(Error::InvalidParameters(
                "a sum of linear transforms needs at least one term".into(),
            ));
        };
        for ct in inputs {
            self.check_ct(ct)?;
            crate::rlwe::KeyId::check_same(
                "a sum of linear transforms",
                first.key_id(),
                ct.key_id(),
            )?;
            if ct.size() != 2 {
                return Err(Error::InvalidParameters(
                    "a linear transform needs a relinearized (2-component) ciphertext".into(),
                ));
            }
            if ((ct.scale() - first.scale()) / first.scale()).abs()
                > crate::ckks::evaluator::SCALE_TOLERANCE
            {
                return Err(Error::ScaleMismatch {
                    left_what: "first input",
                    left_log2: first.scale().log2(),
                    right_what: "another input",
                    right_log2: ct.scale().log2(),
                });
            }
        }
        Ok(inputs
            .iter()
            .map(|ct| BabySteps {
                ct,
                dec: None,
                rotated: BTreeMap::new(),
            })
            .collect())
    }

    /// Checks one term against the evaluation's shape (set by the first term seen).
    fn check_term(
        &self,
        ct: &Ciphertext,
        lt: &LinearTransform,
        shape: &mut Option<Shape>,
    ) -> Result<()> {
        self.params().check_hash(lt.params_hash)?;
        if ct.level() != lt.level {
            return Err(Error::LevelMismatch {
                left_what: "ciphertext",
                left: ct.level(),
                right_what: "linear transform",
                right: lt.level,
            });
        }
        let first = *shape.get_or_insert(Shape {
            slots: lt.slots,
            level: lt.level,
            n1: lt.n1,
            lt_scale: lt.scale,
            ct_scale: ct.scale(),
        });
        if (lt.slots, lt.level, lt.n1) != (first.slots, first.level, first.n1)
            || lt.scale != first.lt_scale
        {
            return Err(Error::InvalidParameters(format!(
                "summed linear transforms differ: {} slots / level {} / n1 {} vs {} / {} / {}",
                lt.slots, lt.level, lt.n1, first.slots, first.level, first.n1
            )));
        }
        Ok(())
    }

    /// Computes the baby steps `js` of one input that are not computed yet (hoisted: one
    /// decomposition of `c_1` per input, on first need).
    fn ensure_baby_steps(&self, input: &mut BabySteps<'_>, js: &[usize]) -> Result<()> {
        let missing: Vec<usize> = js
            .iter()
            .copied()
            .filter(|j| *j != 0 && !input.rotated.contains_key(j))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let params = self.params();
        let (rq, n) = (params.ring_q(), params.degree());
        let keys = self.keys()?;
        let ct = input.ct;
        if input.dec.is_none() {
            input.dec = Some(decompose(params, &ct.c[1])?);
        }
        let dec = input
            .dec
            .as_ref()
            .ok_or_else(|| Error::InvalidParameters("internal: no decomposition".into()))?;
        let rots = missing
            .par_iter()
            .map(|&j| -> Result<(usize, CiphertextQP)> {
                let g = galois_element_for_rotation(n, j as i64);
                let key = keys.galois_key_at(g, ct.level())?;
                self.check_key(&key, crate::rlwe::KeyKind::Galois(g), ct.key_id())?;
                let perm = rq.automorphism_eval_permutation(g)?;
                let [mut u0, u1] = key_switch_decomposed_qp(params, dec, &key, Some(&perm))?;
                let c0 = self.times_p(&rq.permute(&ct.c[0], &perm)?)?;
                rq.add_assign(&mut u0.q, &c0)?;
                Ok((j, CiphertextQP { c0: u0, c1: u1 }))
            })
            .collect::<Result<Vec<_>>>()?;
        input.rotated.extend(rots);
        Ok(())
    }

    /// Applies one part: its terms' inner sums per giant step (shared across terms), the
    /// giant-step rotations, added to `acc`.
    fn apply_part(
        &self,
        inputs: &mut [BabySteps<'_>],
        part: &[(usize, &LinearTransform)],
        shape: &mut Option<Shape>,
        acc: &mut Accumulator,
    ) -> Result<()> {
        let params = self.params();
        let (rq, rp) = (params.ring_q(), params.ring_p());
        let ks = params.key_switch_basis();
        let n = params.degree();
        let keys = self.keys()?;
        let input_count = inputs.len();
        let missing_input =
            |b: usize| Error::InvalidParameters(format!("term of input {b} of {input_count}"));
        for &(b, lt) in part {
            let input = inputs.get(b).ok_or_else(|| missing_input(b))?;
            self.check_term(input.ct, lt, shape)?;
        }
        let Some(sh) = *shape else {
            return Ok(()); // an empty part adds nothing
        };
        let key_id = inputs.first().ok_or_else(|| missing_input(0))?.ct.key_id();
        let scale = sh.ct_scale * sh.lt_scale;
        self.check_scale_fits(scale, sh.level, "linear transform")?;
        let mut giants: Vec<usize> = part
            .iter()
            .flat_map(|(_, lt)| lt.groups.iter().map(|(i, _)| *i))
            .collect();
        giants.sort_unstable();
        giants.dedup();
        let giant_elts: Vec<u64> = giants
            .iter()
            .map(|i| galois_element_for_rotation(n, ((i * sh.n1) % sh.slots) as i64))
            .collect();
        // The baby steps each input still needs (those of earlier parts are kept).
        let baby: Vec<Vec<usize>> = (0..input_count)
            .map(|b| {
                let mut js: Vec<usize> = part
                    .iter()
                    .filter(|(t, _)| *t == b)
                    .flat_map(|(_, lt)| lt.baby_steps())
                    .collect();
                js.sort_unstable();
                js.dedup();
                js
            })
            .collect();
        // Announce the keys in the order they are fetched: the new baby steps, input by
        // input, then the giant steps (a store covering them already keeps its schedule).
        let wanted: Vec<u64> = inputs
            .iter()
            .zip(&baby)
            .flat_map(|(input, js)| {
                js.iter()
                    .filter(|j| **j != 0 && !input.rotated.contains_key(j))
                    .map(|j| galois_element_for_rotation(n, *j as i64))
            })
            .chain(giant_elts.iter().copied().filter(|g| *g != 1))
            .collect();
        keys.prefetch_at(&wanted, sh.level);

        // 1. Hoisted baby steps of every input this part reads (computed once, kept).
        for (input, js) in inputs.iter_mut().zip(&baby) {
            self.ensure_baby_steps(input, js)?;
        }
        let inputs: &[BabySteps<'_>] = inputs;

        // 2. Per giant step: the inner sum over every term, in Q_l ∪ P, as one lazily reduced
        //    inner product (each operand read once) and one ModDown; 3. its rotation, the
        //    key-switching output added to the running sum in Q_l ∪ P. Giant steps run in
        //    parallel, each thread folding into its own sum, so that only a few partial sums
        //    are alive at once, not one per giant step (modular sums are exact: the order
        //    does not change the result).
        let partial_sum = |gi: usize| -> Result<Ciphertext> {
            let mut pts: Vec<&PolyQP> = Vec::new();
            let mut parts = Vec::new();
            // Identity baby steps contribute pt ⊙ c over Q only; multiplied by P after.
            let mut id: Option<(Poly<Eval>, Poly<Eval>)> = None;
            for &(b, lt) in part {
                let input = inputs.get(b).ok_or_else(|| missing_input(b))?;
                let ct = input.ct;
                let Some((_, group)) = lt.groups.iter().find(|(i, _)| *i == gi) else {
                    continue;
                };
                for (j, pt) in group {
                    if *j == 0 {
                        match id.as_mut() {
                            None => id = Some((rq.mul(&ct.c[0], &pt.q)?, rq.mul(&ct.c[1], &pt.q)?)),
                            Some((i0, i1)) => {
                                rq.mul_add_assign(i0, &ct.c[0], &pt.q)?;
                                rq.mul_add_assign(i1, &ct.c[1], &pt.q)?;
                            }
                        }
                        continue;
                    }
                    let x = input.rotated.get(j).ok_or_else(|| {
                        Error::InvalidParameters("internal: missing baby step".into())
                    })?;
                    pts.push(pt);
                    parts.push([
                        (x.c0.q.view(), x.c0.p.view()),
                        (x.c1.q.view(), x.c1.p.view()),
                    ]);
                }
            }
            let [mut a0, mut a1] = if pts.is_empty() {
                let zero = PolyQP {
                    q: rq.zero::<Eval>(sh.level + 1)?,
                    p: rp.zero::<Eval>(rp.max_limbs())?,
                };
                [zero.clone(), zero]
            } else {
                ks.inner_product_refs(&pts, &parts, None)?
            };
            if let Some((i0, i1)) = id {
                rq.add_assign(&mut a0.q, &self.times_p(&i0)?)?;
                rq.add_assign(&mut a1.q, &self.times_p(&i1)?)?;
            }
            let (c0, c1) = rayon::join(|| ks.mod_down(a0), || ks.mod_down(a1));
            Ok(self.new_ct(vec![c0?, c1?], scale, key_id))
        };
        let rotate = |p: &Ciphertext, g: u64| -> Result<[PolyQP; 2]> {
            let key = keys.galois_key_at(g, p.level())?;
            self.check_key(&key, crate::rlwe::KeyKind::Galois(g), key_id)?;
            let perm = rq.automorphism_eval_permutation(g)?;
            let dec = decompose(params, &p.c[1])?;
            let out = key_switch_decomposed_qp(params, &dec, &key, Some(&perm));
            dec.recycle(params);
            let [mut u0, u1] = out?;
            rq.add_assign(&mut u0.q, &self.times_p(&rq.permute(&p.c[0], &perm)?)?)?;
            Ok([u0, u1])
        };
        let sum = giants
            .par_iter()
            .zip(giant_elts.par_iter())
            .try_fold(
                Accumulator::default,
                |mut acc, (&gi, &g)| -> Result<Accumulator> {
                    let p = partial_sum(gi)?;
                    if g == 1 {
                        acc.add_plain(self, p)?;
                    } else {
                        let r = rotate(&p, g)?;
                        drop(p);
                        acc.add_rotated(self, r)?;
                    }
                    Ok(acc)
                },
            )
            .try_reduce(Accumulator::default, |a, b| a.merge(self, b))?;
        let merged = std::mem::take(acc).merge(self, sum)?;
        *acc = merged;
        Ok(())
    }

    /// Divides the rotated sum by `P`, adds the unrotated giant step, frees the hoisted
    /// decompositions.
    fn finish_streamed(
        &self,
        inputs: Vec<BabySteps<'_>>,
        shape: Option<Shape>,
        acc: Accumulator,
    ) -> Result<Ciphertext> {
        let params = self.params();
        let ks = params.key_switch_basis();
        let key_id = inputs.first().map(|b| b.ct.key_id());
        for b in inputs {
            if let Some(dec) = b.dec {
                dec.recycle(params);
            }
        }
        let (Some(sh), Some(key_id)) = (shape, key_id) else {
            return Err(Error::InvalidParameters(
                "a linear transform needs at least one nonzero diagonal".into(),
            ));
        };
        let scale = sh.ct_scale * sh.lt_scale;
        let out = match acc.rotated {
            Some([s0, s1]) => {
                let (c0, c1) = rayon::join(|| ks.mod_down(s0), || ks.mod_down(s1));
                let mut out = self.new_ct(vec![c0?, c1?], scale, key_id);
                if let Some(p) = &acc.plain {
                    self.add_assign(&mut out, p)?;
                }
                out
            }
            None => acc.plain.ok_or_else(|| {
                Error::InvalidParameters("internal: empty linear transform".into())
            })?,
        };
        Ok(out)
    }
}
