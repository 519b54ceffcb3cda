//! Linear transforms with pre-encoded diagonals: `y = M·z` for a matrix `M` acting on `n` slots
//! (`n` a power of two, `n ≤ N/2`; a smaller `n` acts on every period-`n` block of the slots, the
//! sparse packing of Lattigo and OpenFHE).
//!
//! The matrix is given by its nonzero generalised diagonals `d_k[t] = M[t][(t + k) mod n]`, so
//! that `y = Σ_k d_k ⊙ rot_k(z)`. With `k = i·n1 + j` (baby steps `j < n1`, giant steps `i·n1`)
//! the baby-step giant-step form (Halevi–Shoup 2014; Han, Hhan, Cheon 2019) is
//!
//! ```text
//! y = Σ_i rot_{i·n1}( Σ_j rot_{-i·n1}(d_{i·n1+j}) ⊙ rot_j(z) )
//! ```
//!
//! so that only `#baby + #giant` rotations are needed instead of `#diagonals`. The plaintexts
//! `rot_{-i·n1}(d_k)` are encoded once, at the level and scale where they are used, by
//! [`LinearTransform::encode`]; evaluation re-encodes nothing.
//!
//! Evaluation is *double hoisted* (Bossuat, Mouchet, Troncoso-Pastoriza, Hubaux, Eurocrypt
//! 2021, §5):
//! 1. `c_1` of the input is decomposed and extended to `Q_l ∪ P` once (ModUp) and every baby
//!    step only permutes the extended digits and multiplies them by its key; the rotated
//!    ciphertexts are kept in `Q_l ∪ P`, multiplied by `P`, **without** ModDown;
//! 2. the inner sums `Σ_j pt ⊙ rot_j(z)` are taken in `Q_l ∪ P` (the diagonals are encoded
//!    over `Q_l ∪ P`), so each giant step costs one ModDown instead of one per baby step;
//! 3. the giant-step rotations' key-switching outputs are summed in `Q_l ∪ P` as well, and the
//!    whole result is divided by `P` once.
//!
//! The output has the input's level and scale `Δ_z·Δ_M`; with `Δ_M = q_l` one rescale brings
//! it back to `Δ_z` exactly.
//!
//! ```
//! # fn main() -> he_core::Result<()> {
//! use he_core::circuits::lintrans::{BabySteps, Diagonals, LinearTransform};
//! use he_core::ckks::{Complex64, Decryptor, Encoder, Encryptor, Evaluator};
//! use he_core::rlwe::{EvalKeySet, KeyGenerator, Parameters, ParametersLiteral, PublicKey,
//!     SecretDistribution, SecretKey, Security};
//! use std::sync::Arc;
//!
//! let params = Parameters::new(ParametersLiteral {
//!     log_n: 10, log_q: vec![55, 45], log_p: vec![60], alpha: None, log_scale: 45.0,
//!     secret: SecretDistribution::UniformTernary, security: Security::InsecureForTesting,
//! })?;
//! let n = params.slots();
//! // M = the cyclic shift by 3 plus twice the identity: two diagonals.
//! let mut diags = Diagonals::new(n)?;
//! diags.insert(0, vec![Complex64::new(2.0, 0.0); n])?;
//! diags.insert(3, vec![Complex64::new(1.0, 0.0); n])?;
//! let encoder = Encoder::new(&params)?;
//! let level = params.max_level();
//! let lt = LinearTransform::encode(&encoder, &diags, level, params.q()[level] as f64,
//!     BabySteps::Auto)?;
//!
//! let sk = SecretKey::generate(&params)?;
//! let mut keys = EvalKeySet::new();
//! for k in KeyGenerator::new(&sk).rotation_keys(&lt.rotations(), false)? {
//!     keys.insert(k);
//! }
//! let eval = Evaluator::with_keys(&params, Arc::new(keys))?;
//! let z: Vec<f64> = (0..n).map(|i| (i % 7) as f64 / 7.0).collect();
//! let enc = Encryptor::new(&params, PublicKey::generate(&sk)?)?;
//! let ct = enc.encrypt(&encoder.encode(&z, level, params.default_scale())?)?;
//! let mut y = eval.apply_linear_transform(&ct, &lt)?;
//! eval.rescale_assign(&mut y)?;
//! let got = encoder.decode(&Decryptor::new(&sk).decrypt(&y)?)?;
//! for t in 0..n {
//!     assert!((got[t] - (2.0 * z[t] + z[(t + 3) % n])).abs() < 1e-6);
//! }
//! # Ok(())
//! # }
//! ```

use crate::ckks::{Ciphertext, Complex64, Encoder, Evaluator};
use crate::ring::keyswitch::PolyQP;
use crate::ring::{Eval, Poly};
use crate::rlwe::galois_element_for_rotation;
use crate::rlwe::keyswitch::{decompose, key_switch_decomposed_qp};
use crate::{Error, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// The nonzero generalised diagonals of an `n × n` matrix: `d_k[t] = M[t][(t + k) mod n]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diagonals {
    slots: usize,
    diags: BTreeMap<usize, Vec<Complex64>>,
}

impl Diagonals {
    /// No diagonals yet, for a matrix on `slots` slots (a power of two).
    pub fn new(slots: usize) -> Result<Self> {
        if !slots.is_power_of_two() {
            return Err(Error::OutOfRange {
                what: "slots of a linear transform",
                found: slots.to_string(),
                allowed: "a power of two".into(),
            });
        }
        Ok(Self {
            slots,
            diags: BTreeMap::new(),
        })
    }

    /// The diagonals of a dense `n × n` matrix (rows of length `n`), all-zero ones left out.
    pub fn from_matrix(m: &[Vec<Complex64>]) -> Result<Self> {
        let n = m.len();
        let mut d = Self::new(n)?;
        if let Some(bad) = m.iter().find(|r| r.len() != n) {
            return Err(Error::LengthMismatch {
                what: "matrix row",
                expected: n,
                found: bad.len(),
            });
        }
        for k in 0..n {
            let diag: Vec<Complex64> = (0..n).map(|t| m[t][(t + k) % n]).collect();
            if diag.iter().any(|v| v.norm_sqr() != 0.0) {
                d.diags.insert(k, diag);
            }
        }
        Ok(d)
    }

    /// Sets diagonal `k` (taken mod `n`; negative `k` are the lower diagonals). Adds to a
    /// diagonal already present.
    pub fn insert(&mut self, k: i64, diagonal: Vec<Complex64>) -> Result<()> {
        if diagonal.len() != self.slots {
            return Err(Error::LengthMismatch {
                what: "diagonal",
                expected: self.slots,
                found: diagonal.len(),
            });
        }
        let k = k.rem_euclid(self.slots as i64) as usize;
        match self.diags.get_mut(&k) {
            Some(d) => d.iter_mut().zip(diagonal).for_each(|(a, b)| *a += b),
            None => {
                self.diags.insert(k, diagonal);
            }
        }
        Ok(())
    }

    /// The slot count `n` the matrix acts on.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The diagonal indices present, ascending in `0..n`.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.diags.keys().copied()
    }

    /// Diagonal `k` (`0 ≤ k < n`), if present.
    pub fn get(&self, k: usize) -> Option<&[Complex64]> {
        self.diags.get(&k).map(|v| v.as_slice())
    }

    /// Number of nonzero diagonals.
    pub fn len(&self) -> usize {
        self.diags.len()
    }

    /// Whether there is no diagonal.
    pub fn is_empty(&self) -> bool {
        self.diags.is_empty()
    }

    /// `M·z` in the clear (the reference for tests and the simulator).
    pub fn apply_clear(&self, z: &[Complex64]) -> Result<Vec<Complex64>> {
        let n = self.slots;
        if z.len() != n {
            return Err(Error::LengthMismatch {
                what: "vector of a linear transform",
                expected: n,
                found: z.len(),
            });
        }
        let mut y = vec![Complex64::new(0.0, 0.0); n];
        for (k, d) in &self.diags {
            for t in 0..n {
                y[t] += d[t] * z[(t + k) % n];
            }
        }
        Ok(y)
    }

    /// The product `self ∘ other` (first `other`, then `self`) as diagonals: `d''_k =
    /// Σ_{a+b=k} d_a ⊙ rot_a(d'_b)`. The factorised DFTs of bootstrapping merge their factors
    /// with it.
    pub fn compose(&self, other: &Diagonals) -> Result<Diagonals> {
        if self.slots != other.slots {
            return Err(Error::LengthMismatch {
                what: "slots of composed transforms",
                expected: self.slots,
                found: other.slots,
            });
        }
        let n = self.slots;
        let mut out = Diagonals::new(n)?;
        for (a, da) in &self.diags {
            for (b, db) in &other.diags {
                let k = (a + b) % n;
                let prod: Vec<Complex64> = (0..n).map(|t| da[t] * db[(t + a) % n]).collect();
                out.insert(k as i64, prod)?;
            }
        }
        out.diags
            .retain(|_, d| d.iter().any(|v| v.norm_sqr() != 0.0));
        Ok(out)
    }

    /// Multiplies every entry by `c`.
    pub fn scale(&mut self, c: Complex64) {
        self.diags
            .values_mut()
            .for_each(|d| d.iter_mut().for_each(|v| *v *= c));
    }
}

/// How the diagonal indices are split into baby and giant steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BabySteps {
    /// The power of two `n1` that minimises the cost of the rotations: a giant step counts
    /// 4 baby steps (baby steps share one decomposition and skip ModDown; a giant step is a
    /// whole key switch).
    #[default]
    Auto,
    /// A fixed power of two `n1`.
    Fixed(usize),
}

impl BabySteps {
    /// The `n1` for these diagonal indices on `slots` slots; a fixed `n1` must be a power of two
    /// `≤ slots`.
    fn resolve(self, indices: &[usize], slots: usize) -> Result<usize> {
        match self {
            BabySteps::Auto => Ok(best_n1(indices, slots)),
            BabySteps::Fixed(n1) if n1.is_power_of_two() && n1 <= slots => Ok(n1),
            BabySteps::Fixed(n1) => Err(Error::OutOfRange {
                what: "baby steps n1",
                found: n1.to_string(),
                allowed: format!("a power of two <= {slots}"),
            }),
        }
    }
}

/// The rotation steps a transform of these diagonals will need, without encoding anything
/// (what key generation asks before the transform exists).
pub fn rotations_for(diagonals: &Diagonals, baby_steps: BabySteps) -> Result<Vec<i64>> {
    let slots = diagonals.slots();
    let indices: Vec<usize> = diagonals.indices().collect();
    let n1 = baby_steps.resolve(&indices, slots)?;
    let mut r: Vec<i64> = indices
        .iter()
        .flat_map(|k| [(k % n1) as i64, ((k / n1) * n1 % slots) as i64])
        .filter(|s| *s != 0)
        .collect();
    r.sort_unstable();
    r.dedup();
    Ok(r)
}

/// A linear transform whose diagonals are encoded, once, at one level and scale, over
/// `Q_level ∪ P` (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearTransform {
    params_hash: u64,
    slots: usize,
    level: usize,
    scale: f64,
    n1: usize,
    /// Per giant step `i` (rotation `i·n1`): the baby steps `j` and the plaintexts
    /// `rot_{-i·n1}(d_{i·n1+j})`.
    groups: Vec<(usize, Vec<(usize, PolyQP)>)>,
}

/// Chooses `n1` for the given diagonal indices (see [`BabySteps::Auto`]).
fn best_n1(indices: &[usize], slots: usize) -> usize {
    let mut best = (f64::INFINITY, 1usize);
    let mut n1 = 1usize;
    while n1 <= slots {
        let (mut baby, mut giant) = (Vec::new(), Vec::new());
        for k in indices {
            baby.push(k % n1);
            giant.push(k / n1);
        }
        baby.sort_unstable();
        baby.dedup();
        giant.sort_unstable();
        giant.dedup();
        let cost = baby.iter().filter(|j| **j != 0).count() as f64
            + 4.0 * giant.iter().filter(|i| **i != 0).count() as f64;
        if cost < best.0 {
            best = (cost, n1);
        }
        n1 *= 2;
    }
    best.1
}

impl LinearTransform {
    /// Encodes the diagonals at `level` with plaintext scale `scale` (`q_level` makes a
    /// following rescale restore the input's scale exactly).
    pub fn encode(
        encoder: &Encoder,
        diagonals: &Diagonals,
        level: usize,
        scale: f64,
        baby_steps: BabySteps,
    ) -> Result<Self> {
        let params = encoder.params();
        let slots = diagonals.slots();
        if slots > params.slots() {
            return Err(Error::OutOfRange {
                what: "slots of a linear transform",
                found: slots.to_string(),
                allowed: format!("<= {} (N/2)", params.slots()),
            });
        }
        if diagonals.is_empty() {
            return Err(Error::InvalidParameters(
                "a linear transform needs at least one nonzero diagonal".into(),
            ));
        }
        let indices: Vec<usize> = diagonals.indices().collect();
        let n1 = baby_steps.resolve(&indices, slots)?;
        let mut grouped: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for k in &indices {
            grouped.entry(k / n1).or_default().push(k % n1);
        }
        let reps = params.slots() / slots;
        let groups = grouped
            .into_par_iter()
            .map(|(i, js)| -> Result<(usize, Vec<(usize, PolyQP)>)> {
                let shift = (i * n1) % slots;
                let pts = js
                    .into_par_iter()
                    .map(|j| -> Result<(usize, PolyQP)> {
                        let d = diagonals.get(i * n1 + j).ok_or_else(|| {
                            Error::InvalidParameters("internal: diagonal missing".into())
                        })?;
                        // rot_{-shift}(d)[t] = d[t - shift], replicated to all N/2 slots.
                        let v: Vec<Complex64> = (0..slots * reps)
                            .map(|t| d[(t % slots + slots - shift) % slots])
                            .collect();
                        Ok((j, encoder.encode_complex_qp(&v, level, scale)?))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok((i, pts))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            params_hash: params.hash(),
            slots,
            level,
            scale,
            n1,
            groups,
        })
    }

    /// Rebuilds a transform from its parts (the decoder's constructor): checks shapes.
    pub(crate) fn from_parts(
        params_hash: u64,
        slots: usize,
        level: usize,
        scale: f64,
        n1: usize,
        groups: Vec<(usize, Vec<(usize, PolyQP)>)>,
    ) -> Result<Self> {
        if !slots.is_power_of_two() || !n1.is_power_of_two() || n1 > slots {
            return Err(Error::InvalidParameters(format!(
                "linear transform with {slots} slots and n1 = {n1}"
            )));
        }
        for (i, g) in &groups {
            for (j, pt) in g {
                if i * n1 + j >= slots || *j >= n1 || pt.q.level() != level {
                    return Err(Error::InvalidParameters(format!(
                        "linear transform diagonal {i}·{n1}+{j} at level {} (expected {level})",
                        pt.q.level()
                    )));
                }
            }
        }
        Ok(Self {
            params_hash,
            slots,
            level,
            scale,
            n1,
            groups,
        })
    }

    /// The giant-step groups (for serialization).
    pub(crate) fn groups(&self) -> &[(usize, Vec<(usize, PolyQP)>)] {
        &self.groups
    }

    /// The level of the encoded diagonals (the input ciphertext's level).
    pub fn level(&self) -> usize {
        self.level
    }

    /// The plaintext scale `Δ_M`: the output scale is `Δ_z·Δ_M`.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Slot count `n` the matrix acts on.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Baby-step size `n1`.
    pub fn n1(&self) -> usize {
        self.n1
    }

    /// Hash of the parameters the diagonals were encoded under.
    pub fn params_hash(&self) -> u64 {
        self.params_hash
    }

    /// Number of encoded diagonals.
    pub fn diagonal_count(&self) -> usize {
        self.groups.iter().map(|(_, g)| g.len()).sum()
    }

    fn baby_steps(&self) -> Vec<usize> {
        let mut b: Vec<usize> = self
            .groups
            .iter()
            .flat_map(|(_, g)| g.iter().map(|(j, _)| *j))
            .collect();
        b.sort_unstable();
        b.dedup();
        b
    }

    /// The rotation steps whose Galois keys evaluation needs (nonzero, ascending).
    pub fn rotations(&self) -> Vec<i64> {
        let mut r: Vec<i64> = self.baby_steps().into_iter().map(|j| j as i64).collect();
        r.extend(
            self.groups
                .iter()
                .map(|(i, _)| ((i * self.n1) % self.slots) as i64),
        );
        r.retain(|s| *s != 0);
        r.sort_unstable();
        r.dedup();
        r
    }

    /// Bytes of the encoded plaintexts.
    pub fn bytes(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|(_, g)| g.iter())
            .map(|(_, p)| 8 * (p.q.as_slice().len() + p.p.as_slice().len()))
            .sum()
    }
}

/// A ciphertext in the extended basis, multiplied by `P`: `(P·c_0, P·c_1)` up to key-switching
/// noise, before ModDown.
struct CiphertextQP {
    c0: PolyQP,
    c1: PolyQP,
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
        let Some(&(first_ct, first)) = terms.first() else {
            return Err(Error::InvalidParameters(
                "a sum of linear transforms needs at least one term".into(),
            ));
        };
        let params = self.params();
        let key_id = first_ct.key_id();
        for &(ct, lt) in terms {
            self.check_ct(ct)?;
            crate::rlwe::KeyId::check_same("a sum of linear transforms", key_id, ct.key_id())?;
            params.check_hash(lt.params_hash)?;
            if ct.size() != 2 {
                return Err(Error::InvalidParameters(
                    "a linear transform needs a relinearized (2-component) ciphertext".into(),
                ));
            }
            if ct.level() != lt.level {
                return Err(Error::LevelMismatch {
                    left_what: "ciphertext",
                    left: ct.level(),
                    right_what: "linear transform",
                    right: lt.level,
                });
            }
            if (lt.slots, lt.level, lt.n1) != (first.slots, first.level, first.n1)
                || lt.scale != first.scale
            {
                return Err(Error::InvalidParameters(format!(
                    "summed linear transforms differ: {} slots / level {} / n1 {} vs {} / {} / {}",
                    lt.slots, lt.level, lt.n1, first.slots, first.level, first.n1
                )));
            }
            if ((ct.scale() - first_ct.scale()) / first_ct.scale()).abs()
                > crate::ckks::evaluator::SCALE_TOLERANCE
            {
                return Err(Error::ScaleMismatch {
                    left_what: "first input",
                    left_log2: first_ct.scale().log2(),
                    right_what: "another input",
                    right_log2: ct.scale().log2(),
                });
            }
        }
        let (rq, rp) = (params.ring_q(), params.ring_p());
        let ks = params.key_switch_basis();
        let n = params.degree();
        let keys = self.keys()?;
        let (slots, n1, level) = (first.slots, first.n1, first.level);
        let scale = first_ct.scale() * first.scale;
        self.check_scale_fits(scale, level, "linear transform")?;
        let mut giants: Vec<usize> = terms
            .iter()
            .flat_map(|(_, lt)| lt.groups.iter().map(|(i, _)| *i))
            .collect();
        giants.sort_unstable();
        giants.dedup();
        let giant_elts: Vec<u64> = giants
            .iter()
            .map(|i| galois_element_for_rotation(n, ((i * n1) % slots) as i64))
            .collect();
        let mut wanted: Vec<u64> = terms
            .iter()
            .flat_map(|(_, lt)| lt.baby_steps())
            .map(|j| galois_element_for_rotation(n, j as i64))
            .chain(giant_elts.iter().copied())
            .filter(|g| *g != 1)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        keys.prefetch(&wanted);

        // 1. Per input: hoisted baby steps, kept in Q_l ∪ P (times P), without ModDown.
        let rotated = terms
            .iter()
            .map(
                |&(ct, lt)| -> Result<BTreeMap<usize, Option<CiphertextQP>>> {
                    let baby = lt.baby_steps();
                    let dec = if baby.iter().any(|j| *j != 0) {
                        Some(decompose(params, &ct.c[1])?)
                    } else {
                        None
                    };
                    let rots = baby
                        .par_iter()
                        .map(|&j| -> Result<Option<CiphertextQP>> {
                            if j == 0 {
                                return Ok(None);
                            }
                            let g = galois_element_for_rotation(n, j as i64);
                            let key = keys.galois_key(g)?;
                            self.check_key(&key, crate::rlwe::KeyKind::Galois(g), key_id)?;
                            let perm = rq.automorphism_eval_permutation(g)?;
                            let dec = dec.as_ref().ok_or_else(|| {
                                Error::InvalidParameters("internal: no decomposition".into())
                            })?;
                            let [mut u0, u1] =
                                key_switch_decomposed_qp(params, dec, &key, Some(&perm))?;
                            let c0 = self.times_p(&rq.permute(&ct.c[0], &perm)?)?;
                            rq.add_assign(&mut u0.q, &c0)?;
                            Ok(Some(CiphertextQP { c0: u0, c1: u1 }))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    if let Some(dec) = dec {
                        dec.recycle(params);
                    }
                    Ok(baby.into_iter().zip(rots).collect())
                },
            )
            .collect::<Result<Vec<_>>>()?;

        // 2. Inner sums per giant step over every term, in Q_l ∪ P, as one lazily reduced
        //    inner product (each operand read once); one ModDown each.
        let partials = giants
            .par_iter()
            .map(|&gi| -> Result<Ciphertext> {
                let mut pts: Vec<&PolyQP> = Vec::new();
                let mut parts = Vec::new();
                // Identity baby steps contribute pt ⊙ c over Q only; multiplied by P after.
                let mut id: Option<(Poly<Eval>, Poly<Eval>)> = None;
                for ((ct, lt), by_j) in terms.iter().zip(&rotated) {
                    let Some((_, group)) = lt.groups.iter().find(|(i, _)| *i == gi) else {
                        continue;
                    };
                    for (j, pt) in group {
                        match by_j.get(j) {
                            Some(Some(x)) => {
                                pts.push(pt);
                                parts.push([
                                    (x.c0.q.view(), x.c0.p.view()),
                                    (x.c1.q.view(), x.c1.p.view()),
                                ]);
                            }
                            Some(None) => match id.as_mut() {
                                None => {
                                    id = Some((rq.mul(&ct.c[0], &pt.q)?, rq.mul(&ct.c[1], &pt.q)?))
                                }
                                Some((i0, i1)) => {
                                    rq.mul_add_assign(i0, &ct.c[0], &pt.q)?;
                                    rq.mul_add_assign(i1, &ct.c[1], &pt.q)?;
                                }
                            },
                            None => {
                                return Err(Error::InvalidParameters(
                                    "internal: missing baby step".into(),
                                ))
                            }
                        }
                    }
                }
                let [mut a0, mut a1] = if pts.is_empty() {
                    let zero = PolyQP {
                        q: rq.zero::<Eval>(level + 1)?,
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
            })
            .collect::<Result<Vec<_>>>()?;

        // 3. Giant-step rotations, their key-switching outputs summed in Q_l ∪ P.
        let rotated_giants = partials
            .par_iter()
            .zip(giant_elts.par_iter())
            .map(|(acc, &g)| -> Result<Option<[PolyQP; 2]>> {
                if g == 1 {
                    return Ok(None);
                }
                let key = keys.galois_key(g)?;
                self.check_key(&key, crate::rlwe::KeyKind::Galois(g), key_id)?;
                let perm = rq.automorphism_eval_permutation(g)?;
                let dec = decompose(params, &acc.c[1])?;
                let out = key_switch_decomposed_qp(params, &dec, &key, Some(&perm));
                dec.recycle(params);
                let [mut u0, u1] = out?;
                rq.add_assign(&mut u0.q, &self.times_p(&rq.permute(&acc.c[0], &perm)?)?)?;
                Ok(Some([u0, u1]))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut sum: Option<[PolyQP; 2]> = None;
        let mut plain: Option<Ciphertext> = None;
        for (r, acc) in rotated_giants.into_iter().zip(partials) {
            match r {
                Some([u0, u1]) => match sum.as_mut() {
                    None => sum = Some([u0, u1]),
                    Some([s0, s1]) => {
                        rq.add_assign(&mut s0.q, &u0.q)?;
                        rp.add_assign(&mut s0.p, &u0.p)?;
                        rq.add_assign(&mut s1.q, &u1.q)?;
                        rp.add_assign(&mut s1.p, &u1.p)?;
                    }
                },
                None => match plain.as_mut() {
                    None => plain = Some(acc),
                    Some(p) => self.add_assign(p, &acc)?,
                },
            }
        }
        let mut out = match sum {
            Some([s0, s1]) => {
                let (c0, c1) = rayon::join(|| ks.mod_down(s0), || ks.mod_down(s1));
                self.new_ct(vec![c0?, c1?], scale, key_id)
            }
            None => plain.take().ok_or_else(|| {
                Error::InvalidParameters("internal: empty linear transform".into())
            })?,
        };
        if let Some(p) = plain {
            self.add_assign(&mut out, &p)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
