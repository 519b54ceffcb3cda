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

use crate::ckks::{Complex64, Encoder};
use crate::ring::keyswitch::PolyQP;
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
            // y[t] += d[t]·z[(t + k) mod n], as two straight runs (no modulo per slot).
            let (head, tail) = z.split_at(k % n);
            for ((yt, dt), zt) in y.iter_mut().zip(d).zip(tail.iter().chain(head)) {
                *yt += dt * zt;
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
    /// The baby-step size `n1` this choice gives for diagonals `indices` of an `slots`-slot
    /// transform (what encoding uses).
    pub fn n1_for(self, indices: &[usize], slots: usize) -> Result<usize> {
        self.resolve(indices, slots)
    }

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

/// The giant steps `i` (diagonals `k = i·n1 + j`) a transform of these diagonals has,
/// ascending: the ranges [`LinearTransform::encode_giant_steps`] splits it by.
pub fn giant_steps_for(diagonals: &Diagonals, baby_steps: BabySteps) -> Result<Vec<usize>> {
    let indices: Vec<usize> = diagonals.indices().collect();
    let n1 = baby_steps.resolve(&indices, diagonals.slots())?;
    let mut g: Vec<usize> = indices.iter().map(|k| k / n1).collect();
    g.sort_unstable();
    g.dedup();
    Ok(g)
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
        Self::encode_giant_steps(encoder, diagonals, level, scale, baby_steps, 0..usize::MAX)?
            .ok_or_else(|| {
                Error::InvalidParameters("internal: no giant step in the full range".into())
            })
    }

    /// Encodes only the diagonals whose giant step `i` (diagonal `k = i·n1 + j`) lies in
    /// `giants`: one *part* of the transform, `None` when no diagonal falls in the range.
    /// Parts over disjoint ranges, applied one after another by
    /// [`Evaluator::apply_linear_transform_streamed`](crate::ckks::Evaluator::apply_linear_transform_streamed), give bit for bit what the whole
    /// transform gives, while only one part's plaintexts are ever held: the way to
    /// apply a transform whose encoded diagonals exceed memory, or to stream them from a
    /// store. `n1` is resolved from all the diagonals, so every part of one transform has the
    /// same baby steps; [`giant_steps_for`] lists the giant steps there are.
    ///
    /// ```
    /// # fn main() -> he_core::Result<()> {
    /// use he_core::circuits::lintrans::{giant_steps_for, BabySteps, Diagonals, LinearTransform};
    /// use he_core::ckks::{Complex64, Encoder};
    /// use he_core::rlwe::{Parameters, ParametersLiteral, SecretDistribution, Security};
    ///
    /// let params = Parameters::new(ParametersLiteral {
    ///     log_n: 8, log_q: vec![50, 40], log_p: vec![55], alpha: None, log_scale: 40.0,
    ///     secret: SecretDistribution::UniformTernary, security: Security::InsecureForTesting,
    /// })?;
    /// let mut d = Diagonals::new(params.slots())?;
    /// for k in [0, 1, 5, 9, 33] {
    ///     d.insert(k, vec![Complex64::new(1.0, 0.0); params.slots()])?;
    /// }
    /// let baby = BabySteps::Fixed(4);
    /// assert_eq!(giant_steps_for(&d, baby)?, vec![0, 1, 2, 8]);
    /// let enc = Encoder::new(&params)?;
    /// let q1 = params.q()[1] as f64;
    /// let low = LinearTransform::encode_giant_steps(&enc, &d, 1, q1, baby, 0..2)?.unwrap();
    /// assert_eq!(low.diagonal_count(), 3); // k = 0, 1, 5
    /// let none = LinearTransform::encode_giant_steps(&enc, &d, 1, q1, baby, 3..8)?;
    /// assert!(none.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn encode_giant_steps(
        encoder: &Encoder,
        diagonals: &Diagonals,
        level: usize,
        scale: f64,
        baby_steps: BabySteps,
        giants: std::ops::Range<usize>,
    ) -> Result<Option<Self>> {
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
            if giants.contains(&(k / n1)) {
                grouped.entry(k / n1).or_default().push(k % n1);
            }
        }
        if grouped.is_empty() {
            return Ok(None);
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
        Ok(Some(Self {
            params_hash: params.hash(),
            slots,
            level,
            scale,
            n1,
            groups,
        }))
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

    /// The rotation steps in the order an evaluation fetches their keys: the nonzero baby
    /// steps (ascending), then the nonzero giant-step rotations (ascending). A step that is
    /// both is listed twice, as it is fetched twice. What a caller announces to a key store
    /// ([`EvalKeyProvider::prefetch`](crate::rlwe::EvalKeyProvider::prefetch)) ahead of the
    /// evaluation.
    pub fn key_order(&self) -> Vec<i64> {
        let mut giants: Vec<i64> = self
            .groups
            .iter()
            .map(|(i, _)| ((i * self.n1) % self.slots) as i64)
            .filter(|s| *s != 0)
            .collect();
        giants.sort_unstable();
        giants.dedup();
        self.baby_steps()
            .into_iter()
            .filter(|j| *j != 0)
            .map(|j| j as i64)
            .chain(giants)
            .collect()
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

mod apply;

#[cfg(test)]
mod tests;
