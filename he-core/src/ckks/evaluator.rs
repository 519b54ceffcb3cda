//! Homomorphic operations on CKKS ciphertexts.
//!
//! The evaluator is `Send + Sync` and holds no mutable state: scratch space is allocated per
//! call, work is parallel over RNS limbs and key-switching digits, so one evaluator serves many
//! threads. Evaluation keys come from an [`EvalKeyProvider`] (in memory, or a persistent store).
//!
//! Scale and level rules (exact tracking, no silent alignment):
//! - `add`/`sub` need equal levels and equal scales (relative difference < 2^-30), otherwise a
//!   typed error naming both; [`Evaluator::drop_to_level`] aligns levels explicitly;
//! - `mul` multiplies scales; [`Evaluator::rescale_assign`] divides by the last prime `q_l`;
//! - `mul_const` encodes the constant at scale `q_l`, so that a following rescale restores the
//!   ciphertext's scale exactly.

use super::ciphertext::{Ciphertext, Plaintext};
use super::encoder::Encoder;
use crate::ring::{Eval, Poly};
use crate::rlwe::keyswitch::{decompose, key_switch, key_switch_decomposed};
use crate::rlwe::{
    galois_element_conjugate, galois_element_for_rotation, EvalKeyProvider, KeyId, KeyKind,
    KeySwitchKey, Parameters,
};
use crate::{Error, Result};
use num_complex::Complex64;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Relative tolerance under which two scales count as equal.
pub const SCALE_TOLERANCE: f64 = 1.0 / (1u64 << 30) as f64;

/// The CKKS evaluator.
#[derive(Clone)]
pub struct Evaluator {
    params: Arc<Parameters>,
    keys: Option<Arc<dyn EvalKeyProvider>>,
    encoder: Arc<Encoder>,
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Evaluator({}, keys: {})",
            self.params.describe(),
            self.keys.is_some()
        )
    }
}

impl Evaluator {
    /// An evaluator without evaluation keys (no relinearization or rotation).
    pub fn new(params: &Arc<Parameters>) -> Result<Self> {
        Ok(Self {
            params: params.clone(),
            keys: None,
            encoder: Arc::new(Encoder::new(params)?),
        })
    }

    /// An evaluator fetching keys from `keys`.
    pub fn with_keys(params: &Arc<Parameters>, keys: Arc<dyn EvalKeyProvider>) -> Result<Self> {
        Ok(Self {
            params: params.clone(),
            keys: Some(keys),
            encoder: Arc::new(Encoder::new(params)?),
        })
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<Parameters> {
        &self.params
    }

    /// The encoder used for constants and linear transforms.
    pub fn encoder(&self) -> &Arc<Encoder> {
        &self.encoder
    }

    /// The key provider, if the evaluator has one (to announce upcoming keys to a store, or
    /// to hold one across a step: [`EvalKeyProvider::prefetch_kinds`]).
    pub fn key_provider(&self) -> Option<&Arc<dyn EvalKeyProvider>> {
        self.keys.as_ref()
    }

    pub(crate) fn keys(&self) -> Result<&Arc<dyn EvalKeyProvider>> {
        self.keys.as_ref().ok_or_else(|| {
            Error::MissingKey("this evaluator was created without evaluation keys".into())
        })
    }

    pub(crate) fn check_ct(&self, ct: &Ciphertext) -> Result<()> {
        self.params.check_hash(ct.params_hash())
    }

    fn check_pair(
        &self,
        a: &Ciphertext,
        b_level: usize,
        b_scale: f64,
        b_what: &'static str,
    ) -> Result<()> {
        if a.level() != b_level {
            return Err(Error::LevelMismatch {
                left_what: "ciphertext",
                left: a.level(),
                right_what: b_what,
                right: b_level,
            });
        }
        if ((a.scale() - b_scale) / a.scale()).abs() > SCALE_TOLERANCE {
            return Err(Error::ScaleMismatch {
                left_what: "ciphertext",
                left_log2: a.scale().log2(),
                right_what: b_what,
                right_log2: b_scale.log2(),
            });
        }
        Ok(())
    }

    /// Refuses a scale that has outgrown the modulus at `level`: with `scale ≥ Q_l` not even a
    /// value of magnitude 1/4 can be decrypted, so the product would be silently wrapped.
    pub(crate) fn check_scale_fits(&self, scale: f64, level: usize, operation: &str) -> Result<()> {
        let log2_q = self.params.log_q_at(level);
        if scale.is_finite() && scale >= 1.0 && scale.log2() < log2_q {
            return Ok(());
        }
        Err(Error::OutOfRange {
            what: "scale of the result",
            found: format!("2^{:.2} ({operation} at level {level})", scale.log2()),
            allowed: format!(
                "< Q_l = 2^{log2_q:.2}: rescale before multiplying again, or use a smaller scale"
            ),
        })
    }

    pub(crate) fn new_ct(
        &self,
        c: Vec<Poly<Eval>>,
        scale: f64,
        key_id: Option<KeyId>,
    ) -> Ciphertext {
        Ciphertext {
            c,
            scale,
            params_hash: self.params.hash(),
            key_id,
            seed: None,
        }
    }

    /// Checks that `key` serves `want` for a ciphertext under `ct_key` (kind, parameters and
    /// key identifier), before it is used.
    pub(crate) fn check_key(
        &self,
        key: &KeySwitchKey,
        want: KeyKind,
        ct_key: Option<KeyId>,
    ) -> Result<()> {
        self.params.check_hash(key.params_hash())?;
        key.check_use(want, ct_key)
    }

    // ----- addition ---------------------------------------------------------------------

    /// `a += b` (same level and scale; sizes may differ, 2 or 3 components).
    pub fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<()> {
        self.combine_assign(a, b, false)
    }

    /// `a ± b` component-wise; components only `b` has are copied (negated for subtraction).
    fn combine_assign(&self, a: &mut Ciphertext, b: &Ciphertext, subtract: bool) -> Result<()> {
        self.check_ct(a)?;
        self.check_ct(b)?;
        KeyId::check_same(
            if subtract { "subtraction" } else { "addition" },
            a.key_id,
            b.key_id,
        )?;
        self.check_pair(a, b.level(), b.scale(), "other ciphertext")?;
        let rq = self.params.ring_q();
        for (i, bc) in b.c.iter().enumerate() {
            match a.c.get_mut(i) {
                Some(ac) if subtract => rq.sub_assign(ac, bc)?,
                Some(ac) => rq.add_assign(ac, bc)?,
                None => {
                    let mut c = bc.clone();
                    if subtract {
                        rq.neg_assign(&mut c)?;
                    }
                    a.c.push(c);
                }
            }
        }
        a.seed = None;
        Ok(())
    }

    /// `a + b`.
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let mut c = a.clone();
        self.add_assign(&mut c, b)?;
        Ok(c)
    }

    /// `a -= b`.
    pub fn sub_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<()> {
        self.combine_assign(a, b, true)
    }

    /// `a - b`.
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let mut c = a.clone();
        self.sub_assign(&mut c, b)?;
        Ok(c)
    }

    /// `a = -a`.
    pub fn negate_assign(&self, a: &mut Ciphertext) -> Result<()> {
        self.check_ct(a)?;
        let rq = self.params.ring_q();
        for c in &mut a.c {
            rq.neg_assign(c)?;
        }
        a.seed = None;
        Ok(())
    }

    /// `a += pt` (same level and scale).
    pub fn add_plain_assign(&self, a: &mut Ciphertext, pt: &Plaintext) -> Result<()> {
        self.check_ct(a)?;
        self.params.check_hash(pt.params_hash())?;
        self.check_pair(a, pt.level(), pt.scale(), "plaintext")?;
        self.params.ring_q().add_assign(&mut a.c[0], pt.poly())?;
        a.seed = None;
        Ok(())
    }

    /// `a -= pt`.
    pub fn sub_plain_assign(&self, a: &mut Ciphertext, pt: &Plaintext) -> Result<()> {
        self.check_ct(a)?;
        self.params.check_hash(pt.params_hash())?;
        self.check_pair(a, pt.level(), pt.scale(), "plaintext")?;
        self.params.ring_q().sub_assign(&mut a.c[0], pt.poly())?;
        a.seed = None;
        Ok(())
    }

    pub(crate) fn rns_of(&self, x: f64, limbs: usize) -> Result<Vec<u64>> {
        if !x.is_finite() || x.abs() >= 2f64.powi(126) {
            return Err(Error::OutOfRange {
                what: "constant times scale",
                found: x.to_string(),
                allowed: "finite, < 2^126".into(),
            });
        }
        let v = x.round() as i128;
        Ok(self.params.ring_q().moduli()[..limbs]
            .iter()
            .map(|m| m.reduce_i128(v))
            .collect())
    }

    /// Adds the real constant `c` to every slot (`round(c·Δ)` added to each evaluation).
    pub fn add_const_assign(&self, a: &mut Ciphertext, c: f64) -> Result<()> {
        self.check_ct(a)?;
        let s = self.rns_of(c * a.scale(), a.level() + 1)?;
        self.params.ring_q().add_scalar_assign(&mut a.c[0], &s)?;
        a.seed = None;
        Ok(())
    }

    // ----- multiplication ---------------------------------------------------------------

    /// Multiplies by the integer `k`, exactly; the scale is unchanged.
    pub fn mul_int_assign(&self, a: &mut Ciphertext, k: i64) -> Result<()> {
        self.check_ct(a)?;
        let rq = self.params.ring_q();
        for c in &mut a.c {
            rq.mul_scalar_assign(c, k)?;
        }
        a.seed = None;
        Ok(())
    }

    /// Multiplies by the real constant `c`, encoded at scale `q_l` (the prime the next rescale
    /// removes): the scale becomes `Δ·q_l`, and returns to `Δ` exactly after rescaling.
    pub fn mul_const_assign(&self, a: &mut Ciphertext, c: f64) -> Result<()> {
        self.check_ct(a)?;
        let l = a.level();
        let ql = self.params.q()[l] as f64;
        self.check_scale_fits(a.scale() * ql, l, "constant multiplication")?;
        let s = self.rns_of(c * ql, l + 1)?;
        let rq = self.params.ring_q();
        for p in &mut a.c {
            rq.mul_rns_scalar_assign(p, &s)?;
        }
        a.scale *= ql;
        a.seed = None;
        Ok(())
    }

    /// `a *= pt` (same level; scales multiply).
    pub fn mul_plain_assign(&self, a: &mut Ciphertext, pt: &Plaintext) -> Result<()> {
        self.check_ct(a)?;
        self.params.check_hash(pt.params_hash())?;
        if a.level() != pt.level() {
            return Err(Error::LevelMismatch {
                left_what: "ciphertext",
                left: a.level(),
                right_what: "plaintext",
                right: pt.level(),
            });
        }
        self.check_scale_fits(
            a.scale() * pt.scale(),
            a.level(),
            "plaintext multiplication",
        )?;
        let rq = self.params.ring_q();
        a.c.par_iter_mut()
            .try_for_each(|c| rq.mul_assign(c, pt.poly()))?;
        a.scale *= pt.scale();
        a.seed = None;
        Ok(())
    }

    /// Tensor product `(a0 b0, a0 b1 + a1 b0, a1 b1)`: a 3-component ciphertext of scale
    /// `Δ_a·Δ_b` (relinearize with [`relinearize`](Self::relinearize)).
    pub fn mul(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.check_ct(a)?;
        self.check_ct(b)?;
        if a.size() != 2 || b.size() != 2 {
            return Err(Error::InvalidParameters(format!(
                "multiplication needs 2-component ciphertexts, got {} and {}",
                a.size(),
                b.size()
            )));
        }
        KeyId::check_same("multiplication", a.key_id, b.key_id)?;
        if a.level() != b.level() {
            return Err(Error::LevelMismatch {
                left_what: "left ciphertext",
                left: a.level(),
                right_what: "right ciphertext",
                right: b.level(),
            });
        }
        self.check_scale_fits(a.scale() * b.scale(), a.level(), "multiplication")?;
        let rq = self.params.ring_q();
        let ((d0, d2), d1) = rayon::join(
            || rayon::join(|| rq.mul(&a.c[0], &b.c[0]), || rq.mul(&a.c[1], &b.c[1])),
            || -> Result<Poly<Eval>> {
                let mut d1 = rq.mul(&a.c[0], &b.c[1])?;
                rq.mul_add_assign(&mut d1, &a.c[1], &b.c[0])?;
                Ok(d1)
            },
        );
        Ok(self.new_ct(vec![d0?, d1?, d2?], a.scale() * b.scale(), a.key_id))
    }

    /// Squares `a` (one product fewer than `mul(a, a)`).
    pub fn square(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.check_ct(a)?;
        if a.size() != 2 {
            return Err(Error::InvalidParameters(format!(
                "squaring needs a 2-component ciphertext, got {}",
                a.size()
            )));
        }
        self.check_scale_fits(a.scale() * a.scale(), a.level(), "squaring")?;
        let rq = self.params.ring_q();
        let d0 = rq.mul(&a.c[0], &a.c[0])?;
        let mut d1 = rq.mul(&a.c[0], &a.c[1])?;
        rq.mul_scalar_assign(&mut d1, 2)?;
        let d2 = rq.mul(&a.c[1], &a.c[1])?;
        Ok(self.new_ct(vec![d0, d1, d2], a.scale() * a.scale(), a.key_id))
    }

    /// Relinearizes a 3-component ciphertext with the relinearization key.
    pub fn relinearize(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.check_ct(a)?;
        if a.size() == 2 {
            return Ok(a.clone());
        }
        self.relinearize_owned(a.clone())
    }

    /// Relinearization that reuses the input's buffers for the result.
    fn relinearize_owned(&self, a: Ciphertext) -> Result<Ciphertext> {
        self.check_ct(&a)?;
        if a.size() == 2 {
            return Ok(a);
        }
        let key = self.keys()?.relinearization_key()?;
        self.check_key(&key, KeyKind::Relinearization, a.key_id)?;
        let (k0, k1) = key_switch(&self.params, &a.c[2], &key)?;
        let rq = self.params.ring_q();
        let (scale, key_id) = (a.scale(), a.key_id);
        let mut parts = a.c.into_iter();
        let (Some(mut c0), Some(mut c1)) = (parts.next(), parts.next()) else {
            return Err(Error::InvalidParameters(
                "internal: ciphertext parts".into(),
            ));
        };
        rq.add_assign(&mut c0, &k0)?;
        rq.add_assign(&mut c1, &k1)?;
        let pool = self.params.key_switch_basis().pool();
        pool.give_poly(k0);
        pool.give_poly(k1);
        Ok(self.new_ct(vec![c0, c1], scale, key_id))
    }

    /// Multiplication followed by relinearization.
    pub fn mul_relin(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.relinearize_owned(self.mul(a, b)?)
    }

    /// Square followed by relinearization.
    pub fn square_relin(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.relinearize_owned(self.square(a)?)
    }

    // ----- levels -----------------------------------------------------------------------

    /// Divides by the last prime `q_l` with rounding: level `l -> l-1`, scale `Δ -> Δ/q_l`.
    pub fn rescale_assign(&self, a: &mut Ciphertext) -> Result<()> {
        self.check_ct(a)?;
        let l = a.level();
        if l == 0 {
            return Err(Error::OutOfLevels {
                operation: "rescale",
                needed: 1,
                found: 0,
            });
        }
        let rq = self.params.ring_q();
        let parts = std::mem::take(&mut a.c);
        a.c = parts
            .into_par_iter()
            .map(|c| rq.rescale_eval(c))
            .collect::<Result<Vec<_>>>()?;
        a.scale /= self.params.q()[l] as f64;
        a.seed = None;
        Ok(())
    }

    /// Rescaled copy.
    pub fn rescale(&self, a: &Ciphertext) -> Result<Ciphertext> {
        let mut c = a.clone();
        self.rescale_assign(&mut c)?;
        Ok(c)
    }

    /// Drops limbs down to `level` without rounding (the scale is unchanged).
    pub fn drop_to_level(&self, a: &mut Ciphertext, level: usize) -> Result<()> {
        self.check_ct(a)?;
        if level > a.level() {
            return Err(Error::OutOfLevels {
                operation: "drop_to_level",
                needed: level,
                found: a.level(),
            });
        }
        for c in &mut a.c {
            c.truncate(level + 1)?;
        }
        a.seed = None;
        Ok(())
    }

    // ----- automorphisms ----------------------------------------------------------------

    /// Applies `σ_g` and switches the key back to `s`: `(σ_g(c0) + k0, k1)` with
    /// `(k0, k1) = KS_{σ_g(s) -> s}(σ_g(c1))`.
    pub fn apply_galois(&self, a: &Ciphertext, g: u64) -> Result<Ciphertext> {
        self.check_ct(a)?;
        if a.size() != 2 {
            return Err(Error::InvalidParameters(
                "automorphisms need a relinearized (2-component) ciphertext".into(),
            ));
        }
        let g = g % (2 * self.params.degree() as u64);
        if g == 1 {
            return Ok(a.clone());
        }
        let key = self.keys()?.galois_key_at(g, a.level())?;
        self.check_key(&key, KeyKind::Galois(g), a.key_id)?;
        let rq = self.params.ring_q();
        let perm = rq.automorphism_eval_permutation(g)?;
        // One rotation: permuting c1 (l+1 limbs, sequential writes) before ModUp is cheaper
        // than gathering from every extended digit (dnum·(l+1+k) limbs) in the inner product,
        // which is what hoisted rotations do to share one decomposition.
        let (c0, c1) = rayon::join(|| rq.permute(&a.c[0], &perm), || rq.permute(&a.c[1], &perm));
        let (mut c0, c1) = (c0?, c1?);
        let (k0, k1) = key_switch(&self.params, &c1, &key)?;
        rq.add_assign(&mut c0, &k0)?;
        let pool = self.params.key_switch_basis().pool();
        pool.give_poly(k0);
        pool.give_poly(c1);
        Ok(self.new_ct(vec![c0, k1], a.scale(), a.key_id))
    }

    /// Rotates the slots left by `steps` (negative: right), `|steps| < N/2`.
    pub fn rotate(&self, a: &Ciphertext, steps: i64) -> Result<Ciphertext> {
        self.apply_galois(a, galois_element_for_rotation(self.params.degree(), steps))
    }

    /// Complex conjugation of every slot.
    pub fn conjugate(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.apply_galois(a, galois_element_conjugate(self.params.degree()))
    }

    /// Hoisted rotations (Halevi–Shoup 2018): `c_1` is decomposed and extended (ModUp) once,
    /// then each rotation only permutes the extended digits, multiplies by its key and
    /// performs ModDown. Returns one ciphertext per step, in order.
    pub fn rotate_hoisted(&self, a: &Ciphertext, steps: &[i64]) -> Result<Vec<Ciphertext>> {
        self.check_ct(a)?;
        if a.size() != 2 {
            return Err(Error::InvalidParameters(
                "rotations need a relinearized (2-component) ciphertext".into(),
            ));
        }
        let n = self.params.degree();
        let elts: Vec<u64> = steps
            .iter()
            .map(|s| galois_element_for_rotation(n, *s))
            .collect();
        let keys = self.keys()?;
        keys.prefetch_at(
            &elts.iter().copied().filter(|g| *g != 1).collect::<Vec<_>>(),
            a.level(),
        );
        let dec = decompose(&self.params, &a.c[1])?;
        let rq = self.params.ring_q();
        let out = elts
            .par_iter()
            .map(|&g| {
                if g == 1 {
                    return Ok(a.clone());
                }
                let key = keys.galois_key_at(g, a.level())?;
                self.check_key(&key, KeyKind::Galois(g), a.key_id)?;
                let perm = rq.automorphism_eval_permutation(g)?;
                let (k0, k1) = key_switch_decomposed(&self.params, &dec, &key, Some(&perm))?;
                let mut c0 = rq.permute(&a.c[0], &perm)?;
                rq.add_assign(&mut c0, &k0)?;
                self.params.key_switch_basis().pool().give_poly(k0);
                Ok(self.new_ct(vec![c0, k1], a.scale(), a.key_id))
            })
            .collect::<Result<Vec<_>>>();
        dec.recycle(&self.params);
        out
    }

    /// Sum of the first `count` slots (a power of two) replicated into each of them, by
    /// `log2(count)` rotations and additions: slot `i` receives `Σ_{j<count} z_{i+j}`.
    pub fn sum_slots(&self, a: &Ciphertext, count: usize) -> Result<Ciphertext> {
        if !count.is_power_of_two() || count > self.params.slots() {
            return Err(Error::OutOfRange {
                what: "slot count",
                found: count.to_string(),
                allowed: format!("power of two <= {}", self.params.slots()),
            });
        }
        let mut acc = a.clone();
        let mut step = 1;
        while step < count {
            let r = self.rotate(&acc, step as i64)?;
            self.add_assign(&mut acc, &r)?;
            step *= 2;
        }
        Ok(acc)
    }

    /// Galois rotation steps needed by [`linear_transform`](Self::linear_transform) for the
    /// given diagonal indices and baby-step count `n1`. Errors ([`Error::OutOfRange`]) when
    /// `slots` is not a power of two in `1..=2^62` or `n1` is not in `1..=slots`.
    pub fn linear_transform_steps(
        diagonals: impl IntoIterator<Item = i64>,
        n1: usize,
        slots: usize,
    ) -> Result<Vec<i64>> {
        if slots == 0 || !slots.is_power_of_two() || slots > 1 << 62 {
            return Err(Error::OutOfRange {
                what: "slot count of a linear transform",
                found: slots.to_string(),
                allowed: "a power of two, 1..=2^62".into(),
            });
        }
        if n1 == 0 || n1 > slots {
            return Err(Error::OutOfRange {
                what: "baby-step count n1 of a linear transform",
                found: n1.to_string(),
                allowed: format!("1..={slots} (the slot count)"),
            });
        }
        let mut s: Vec<i64> = Vec::new();
        for k in diagonals {
            let k = k.rem_euclid(slots as i64) as usize;
            let (i, j) = (k / n1, k % n1);
            s.push(j as i64);
            s.push((i * n1) as i64);
        }
        s.retain(|x| *x != 0);
        s.sort_unstable();
        s.dedup();
        Ok(s)
    }

    /// `y = M·z` for the `slots x slots` matrix given by its nonzero diagonals
    /// (`diagonals[k][i] = M[i][(i + k) mod slots]`), by the baby-step giant-step algorithm
    /// (Halevi–Shoup 2014; Han et al. 2019): with `k = i·n1 + j`,
    /// `y = Σ_i rot_{i·n1}( Σ_j rot_{-i·n1}(diag_k) ⊙ rot_j(z) )`, baby steps hoisted.
    /// The diagonals are encoded at scale `q_l`, so one rescale restores the input scale.
    /// `n1 = None` picks `≈ sqrt(#diagonals)`, a power of two.
    pub fn linear_transform(
        &self,
        a: &Ciphertext,
        diagonals: &BTreeMap<i64, Vec<Complex64>>,
        n1: Option<usize>,
    ) -> Result<Ciphertext> {
        self.check_ct(a)?;
        let slots = self.params.slots();
        if diagonals.is_empty() {
            return Err(Error::InvalidParameters(
                "a linear transform needs at least one diagonal".into(),
            ));
        }
        let n1 = n1
            .unwrap_or_else(|| {
                ((diagonals.len() as f64).sqrt().ceil() as usize).next_power_of_two()
            })
            .clamp(1, slots);
        // Group diagonals by giant step i.
        let mut groups: BTreeMap<usize, Vec<(usize, &Vec<Complex64>)>> = BTreeMap::new();
        for (k, d) in diagonals {
            if d.len() != slots {
                return Err(Error::LengthMismatch {
                    what: "diagonal",
                    expected: slots,
                    found: d.len(),
                });
            }
            let k = k.rem_euclid(slots as i64) as usize;
            groups.entry(k / n1).or_default().push((k % n1, d));
        }
        let mut baby: Vec<i64> = groups
            .values()
            .flat_map(|g| g.iter().map(|(j, _)| *j as i64))
            .collect();
        baby.sort_unstable();
        baby.dedup();
        let rotated: BTreeMap<i64, Ciphertext> = baby
            .iter()
            .copied()
            .zip(self.rotate_hoisted(a, &baby)?)
            .collect();
        let l = a.level();
        let pt_scale = self.params.q()[l] as f64;
        let partials = groups
            .par_iter()
            .map(|(&i, group)| -> Result<Ciphertext> {
                let shift = i * n1;
                let mut acc: Option<Ciphertext> = None;
                for (j, d) in group {
                    // rot_{-shift}(diag): element t takes diag[(t - shift) mod slots].
                    let rd: Vec<Complex64> = (0..slots)
                        .map(|t| d[(t + slots - shift % slots) % slots])
                        .collect();
                    let pt = self.encoder.encode_complex(&rd, l, pt_scale)?;
                    let mut term = rotated.get(&(*j as i64)).cloned().ok_or_else(|| {
                        Error::InvalidParameters("internal: missing baby step".into())
                    })?;
                    self.mul_plain_assign(&mut term, &pt)?;
                    match acc.as_mut() {
                        None => acc = Some(term),
                        Some(acc) => self.add_assign(acc, &term)?,
                    }
                }
                let acc =
                    acc.ok_or_else(|| Error::InvalidParameters("internal: empty group".into()))?;
                if shift == 0 {
                    Ok(acc)
                } else {
                    self.rotate(&acc, shift as i64)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let mut it = partials.into_iter();
        let mut out = it
            .next()
            .ok_or_else(|| Error::InvalidParameters("internal: no partial sums".into()))?;
        for p in it {
            self.add_assign(&mut out, &p)?;
        }
        self.rescale_assign(&mut out)?;
        Ok(out)
    }
}
