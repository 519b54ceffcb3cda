//! Key-switching keys and the seam through which an evaluator obtains them.
//!
//! A key-switching key from `s'` to `s` (Han–Ki 2020 hybrid form) holds, for each digit
//! `j < dnum`, an RLWE sample over `Q_L P` in evaluation form:
//!
//! ```text
//! (b_j, a_j) = (-a_j·s + e_j + P·(Q/D_j)·[(Q/D_j)^{-1}]_{D_j}·s',  a_j)
//! ```
//!
//! Layout, in one contiguous word buffer: for each digit `j`, for each component `c ∈ {b, a}`,
//! first the `L + 1` limbs over `Q`, then the `k` limbs over `P` — each limb `N` words. A key at a
//! lower level `l` uses the first `l + 1` Q-limbs of each part in place.
//!
//! **Level-limited keys** (as OpenFHE's and Lattigo's level-reduced evaluation keys): a key
//! generated up to level `l' < L` ([`MaxLevel`]) holds only the Q-limbs `0..=l'` and the
//! `⌈(l'+1)/α⌉` digits covering them — exactly the residues of the full key that key switching
//! at a level `≤ l'` reads, so it serves every level up to `l'` and is refused above it with
//! [`Error::KeyLevelExceeded`]. Its shape records `q_limbs = l' + 1` and that digit count. A
//! network that rotates only at the levels left after bootstrapping needs keys several times
//! smaller than full ones.

use super::params::Parameters;
use super::secret::KeyId;
use super::storage::LimbStorage;
use crate::ring::{Eval, PolyView};
use crate::{Error, Result};
use std::sync::Arc;

/// The highest ciphertext level a key-switching key serves (its Q-limb count minus one).
/// A newtype, so that it cannot be swapped with a rotation step or a Galois element.
///
/// ```
/// use he_core::rlwe::MaxLevel;
/// let l = MaxLevel::new(9);
/// assert_eq!((l.get(), l.q_limbs()), (9, 10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MaxLevel(usize);

impl MaxLevel {
    /// Keys usable at levels `0..=level`.
    pub const fn new(level: usize) -> Self {
        Self(level)
    }
    /// The top of the chain of `params` (a full key).
    pub fn top(params: &Parameters) -> Self {
        Self(params.q().len().saturating_sub(1))
    }
    /// The level.
    pub const fn get(self) -> usize {
        self.0
    }
    /// Q-limbs a key up to this level holds (`level + 1`).
    pub const fn q_limbs(self) -> usize {
        self.0.saturating_add(1)
    }
}

/// Shape of a key-switching key: degree, Q limbs, P limbs, digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyShape {
    /// Ring degree `N`.
    pub n: usize,
    /// Limbs over `Q` (`L + 1`).
    pub q_limbs: usize,
    /// Limbs over `P` (`k`).
    pub p_limbs: usize,
    /// Digits (`dnum`).
    pub dnum: usize,
}

impl KeyShape {
    /// Words in one component (`(L + 1 + k)·N`).
    pub fn component_words(&self) -> usize {
        (self.q_limbs + self.p_limbs) * self.n
    }
    /// Total words.
    pub fn words(&self) -> usize {
        2 * self.dnum * self.component_words()
    }
    /// Total words, `None` where the product overflows (a shape from untrusted input).
    pub fn checked_words(&self) -> Option<usize> {
        self.q_limbs
            .checked_add(self.p_limbs)?
            .checked_mul(self.n)?
            .checked_mul(self.dnum)?
            .checked_mul(2)
    }
    /// Total bytes.
    pub fn bytes(&self) -> usize {
        8 * self.words()
    }

    /// The highest level a key of this shape serves (`q_limbs - 1`; 0 for a degenerate shape
    /// without Q-limbs, which [`check`](Self::check) refuses).
    pub fn max_level(&self) -> usize {
        self.q_limbs.saturating_sub(1)
    }

    /// The shape of a key of `params` usable up to `max_level`: `max_level + 1` Q-limbs, all
    /// P-limbs and the `⌈(max_level + 1)/α⌉` digits covering those Q-limbs.
    /// [`MaxLevel::top`] gives the full key's shape. Errors ([`Error::OutOfRange`]) when
    /// `max_level` is above the chain's top.
    ///
    /// ```
    /// # fn main() -> he_core::Result<()> {
    /// use he_core::rlwe::{
    ///     KeyShape, MaxLevel, Parameters, ParametersLiteral, SecretDistribution, Security,
    /// };
    /// let params = Parameters::new(ParametersLiteral {
    ///     log_n: 10,
    ///     log_q: vec![50; 12],
    ///     log_p: vec![55; 3],
    ///     alpha: Some(3),
    ///     log_scale: 40.0,
    ///     secret: SecretDistribution::UniformTernary,
    ///     security: Security::InsecureForTesting,
    /// })?;
    /// let full = KeyShape::for_level(&params, MaxLevel::top(&params))?;
    /// let low = KeyShape::for_level(&params, MaxLevel::new(4))?;
    /// assert_eq!((full.q_limbs, full.dnum), (12, 4));
    /// assert_eq!((low.q_limbs, low.dnum, low.p_limbs), (5, 2, 3));
    /// assert!(low.bytes() < full.bytes());
    /// # Ok(())
    /// # }
    /// ```
    pub fn for_level(params: &Parameters, max_level: MaxLevel) -> Result<Self> {
        let chain = params.q().len();
        if max_level.get() >= chain {
            return Err(Error::OutOfRange {
                what: "maximum level of a key-switching key",
                found: max_level.get().to_string(),
                allowed: format!("0..={} (the top of the chain)", chain.saturating_sub(1)),
            });
        }
        Ok(Self {
            n: params.degree(),
            q_limbs: max_level.q_limbs(),
            p_limbs: params.p().len(),
            dnum: params.key_switch_basis().digits(max_level.get()),
        })
    }

    /// Checks that a key of this shape belongs to `params`: the degree and P-limb count are
    /// the parameters', `1 ≤ q_limbs ≤ L + 1`, and `dnum` is exactly the digit count covering
    /// `q_limbs` Q-limbs (a full key, or a level-limited one). Errors ([`Error::OutOfRange`])
    /// name the shape and what was expected.
    pub fn check(&self, params: &Parameters) -> Result<()> {
        let chain = params.q().len();
        let q_ok = (1..=chain).contains(&self.q_limbs);
        let want_dnum = params.key_switch_basis().digits(self.max_level());
        if self.n != params.degree()
            || self.p_limbs != params.p().len()
            || !q_ok
            || self.dnum != want_dnum
        {
            return Err(Error::OutOfRange {
                what: "key-switching key shape",
                found: format!("{self:?}"),
                allowed: format!(
                    "n = {}, p_limbs = {}, q_limbs in 1..={chain}, dnum = ⌈q_limbs/α⌉ (α = {}; {} for these q_limbs), for {}",
                    params.degree(),
                    params.p().len(),
                    params.key_switch_basis().alpha(),
                    if q_ok { want_dnum.to_string() } else { "-".into() },
                    params.describe()
                ),
            });
        }
        Ok(())
    }
}

/// What a key switches from: the relinearization key (`s^2 -> s`) or a Galois key
/// (`σ_g(s) -> s`, `g` the Galois element; `2N - 1` is conjugation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// `s^2 -> s`.
    Relinearization,
    /// `σ_g(s) -> s`.
    Galois(u64),
    /// `s' -> s` for the sparse ephemeral secret `s'` of bootstrapping's sparse-secret
    /// encapsulation (Bossuat, Troncoso-Pastoriza, Hubaux 2022): brings a ciphertext raised
    /// under `s'` back to the dense secret.
    SparseToDense,
}

/// A key-switching key: shape, kind, hash of the parameters it belongs to, the identifier of
/// the secret key it switches *to* (for relinearization and Galois keys also the one it
/// switches from, `s²` and `σ_g(s)` being derived from it; for
/// [`KeyKind::SparseToDense`] the dense secret, the ephemeral sparse one having no life of its
/// own), and its words.
#[derive(Debug, Clone)]
pub struct KeySwitchKey {
    shape: KeyShape,
    kind: KeyKind,
    params_hash: u64,
    key_id: Option<KeyId>,
    data: Arc<dyn LimbStorage>,
    seed: Option<[u8; 32]>,
}

impl KeySwitchKey {
    /// Wraps `data` as a key of the given shape. Checks the length; residues are checked by
    /// the parameters' validation (`Parameters::check_key`) before untrusted data is used.
    pub fn from_storage(
        shape: KeyShape,
        kind: KeyKind,
        params_hash: u64,
        data: Arc<dyn LimbStorage>,
    ) -> Result<Self> {
        let Some(words) = shape.checked_words() else {
            return Err(Error::OutOfRange {
                what: "key shape",
                found: format!("{shape:?}"),
                allowed: "a word count that fits the address space".into(),
            });
        };
        if data.words().len() != words {
            return Err(Error::LengthMismatch {
                what: "key-switching key words",
                expected: words,
                found: data.words().len(),
            });
        }
        Ok(Self {
            shape,
            kind,
            params_hash,
            key_id: None,
            data,
            seed: None,
        })
    }

    /// Sets the identifier of the secret key this key switches to. A key without one (as
    /// [`from_storage`](Self::from_storage) makes it) is refused by key switching.
    pub fn with_key_id(mut self, key_id: impl Into<Option<KeyId>>) -> Self {
        self.key_id = key_id.into();
        self
    }

    /// The identifier of the secret key this key switches to.
    pub fn key_id(&self) -> Option<KeyId> {
        self.key_id
    }

    /// Checks that this key can switch a ciphertext under `ct_key` for the use `want`: the
    /// kind matches ([`Error::MissingKey`] naming both otherwise, e.g. a relinearization key
    /// served as a Galois key) and the key identifiers are equal and present
    /// ([`Error::KeyMismatch`]).
    pub fn check_use(&self, want: KeyKind, ct_key: Option<KeyId>) -> Result<()> {
        if self.kind != want {
            return Err(Error::MissingKey(format!(
                "a {:?} key was supplied where a {want:?} key is needed",
                self.kind
            )));
        }
        KeyId::check("key switching", self.key_id, "the ciphertext", ct_key)
    }

    /// Records the seed from which the `a_j` parts were expanded (enables the seeded,
    /// half-size serialized form). The caller guarantees the parts match the seed.
    pub fn with_seed(mut self, seed: [u8; 32]) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Seed of the `a_j` parts, if known.
    pub fn seed(&self) -> Option<[u8; 32]> {
        self.seed
    }

    /// The shape.
    pub fn shape(&self) -> KeyShape {
        self.shape
    }
    /// Relinearization or Galois element.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }
    /// Hash of the parameters the key was generated for.
    pub fn params_hash(&self) -> u64 {
        self.params_hash
    }
    /// The highest ciphertext level this key serves (the top of the chain for a full key).
    pub fn max_level(&self) -> MaxLevel {
        MaxLevel::new(self.shape.max_level())
    }

    /// Checks that this key serves a ciphertext at `level`: [`Error::KeyLevelExceeded`],
    /// naming the key's maximum level, when `level` is above it.
    pub fn check_level(&self, level: usize) -> Result<()> {
        let max_level = self.shape.max_level();
        if level > max_level || self.shape.q_limbs == 0 {
            return Err(Error::KeyLevelExceeded {
                kind: format!("{:?}", self.kind),
                level,
                max_level,
            });
        }
        Ok(())
    }

    /// This key restricted to levels `0..=max_level`: the first `max_level + 1` Q-limbs and
    /// the digits covering them, copied; the same residues, so key switching at any level
    /// `≤ max_level` gives bit-identical results. The seed is dropped (the restricted `a_j`
    /// are no longer the expansion of a seed at the restricted shape), so the key serializes
    /// unseeded. Errors: [`Error::ParameterMismatch`] for a key of other parameters,
    /// [`Error::OutOfRange`] for a shape that is not `params`' or a `max_level` above this
    /// key's own.
    ///
    /// ```
    /// # fn main() -> he_core::Result<()> {
    /// use he_core::rlwe::*;
    /// let params = Parameters::new(ParametersLiteral {
    ///     log_n: 10,
    ///     log_q: vec![50; 6],
    ///     log_p: vec![55; 2],
    ///     alpha: Some(2),
    ///     log_scale: 40.0,
    ///     secret: SecretDistribution::UniformTernary,
    ///     security: Security::InsecureForTesting,
    /// })?;
    /// let sk = SecretKey::generate(&params)?;
    /// let full = KeyGenerator::new(&sk).galois_key(5)?;
    /// let low = full.restricted(&params, MaxLevel::new(1))?;
    /// assert_eq!((low.shape().q_limbs, low.shape().dnum), (2, 1));
    /// assert!(low.check_level(1).is_ok());
    /// assert!(matches!(
    ///     low.check_level(2),
    ///     Err(he_core::Error::KeyLevelExceeded { max_level: 1, .. })
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    pub fn restricted(&self, params: &Parameters, max_level: MaxLevel) -> Result<Self> {
        params.check_hash(self.params_hash)?;
        self.shape.check(params)?;
        if max_level.get() > self.shape.max_level() {
            return Err(Error::OutOfRange {
                what: "maximum level of a restricted key",
                found: max_level.get().to_string(),
                allowed: format!(
                    "0..={} (the key's own maximum level)",
                    self.shape.max_level()
                ),
            });
        }
        let shape = KeyShape::for_level(params, max_level)?;
        let ql = shape.q_limbs;
        let mut data = Vec::with_capacity(shape.words());
        for j in 0..shape.dnum {
            for c in 0..2 {
                let (q, p) = self.part(j, c, ql)?;
                data.extend_from_slice(q.as_slice());
                data.extend_from_slice(p.as_slice());
            }
        }
        Ok(Self {
            shape,
            kind: self.kind,
            params_hash: self.params_hash,
            key_id: self.key_id,
            data: Arc::new(data),
            seed: None,
        })
    }

    /// All words (for serialization and storage).
    pub fn words(&self) -> &[u64] {
        self.data.words()
    }
    /// The underlying storage handle.
    pub fn storage(&self) -> &Arc<dyn LimbStorage> {
        &self.data
    }

    /// Component `c` (0 = b, 1 = a) of digit `j`, restricted to `q_limbs` Q-limbs:
    /// `(Q part, P part)` as borrowed evaluation-form polynomials.
    pub fn part(
        &self,
        j: usize,
        c: usize,
        q_limbs: usize,
    ) -> Result<(PolyView<'_, Eval>, PolyView<'_, Eval>)> {
        let s = self.shape;
        if j >= s.dnum || c > 1 || q_limbs == 0 || q_limbs > s.q_limbs {
            return Err(Error::OutOfRange {
                what: "key part (digit, component, limbs)",
                found: format!("({j}, {c}, {q_limbs})"),
                allowed: format!("digit < {}, component < 2, limbs 1..={}", s.dnum, s.q_limbs),
            });
        }
        let start = (2 * j + c) * s.component_words();
        let w = self.data.words();
        let q = PolyView::from_container(&w[start..start + q_limbs * s.n], s.n, q_limbs)?;
        let p_start = start + s.q_limbs * s.n;
        let p = PolyView::from_container(&w[p_start..p_start + s.p_limbs * s.n], s.n, s.p_limbs)?;
        Ok((q, p))
    }
}

/// One use of an evaluation key: which key, and the level of the ciphertext it switches (a
/// provider with level-limited variants picks the variant by it:
/// [`EvalKeyProvider::galois_key_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyUse {
    /// The key.
    pub kind: KeyKind,
    /// The level of the ciphertext it is applied to.
    pub level: usize,
}

/// Where an evaluator gets its evaluation keys: the seam at which a disk- or PMEM-backed key
/// store plugs in (after Lattigo's `EvaluationKeySet` interface). Implementations are shared
/// between threads.
pub trait EvalKeyProvider: Send + Sync {
    /// The relinearization key, or [`Error::MissingKey`].
    fn relinearization_key(&self) -> Result<Arc<KeySwitchKey>>;
    /// The Galois key for element `galois_element` (odd, mod `2N`), or [`Error::MissingKey`].
    fn galois_key(&self, galois_element: u64) -> Result<Arc<KeySwitchKey>>;
    /// The Galois elements available.
    fn galois_elements(&self) -> Vec<u64>;
    /// Hint: these Galois keys will be needed soon, in this order (a store may read ahead).
    fn prefetch(&self, _galois_elements: &[u64]) {}
    /// Hint: keys of any kind will be needed soon, in this order (a bootstrap announces its
    /// whole sequence). The default passes the Galois keys to [`prefetch`](Self::prefetch).
    fn prefetch_kinds(&self, kinds: &[KeyKind]) {
        let galois: Vec<u64> = kinds
            .iter()
            .filter_map(|k| match k {
                KeyKind::Galois(g) => Some(*g),
                _ => None,
            })
            .collect();
        self.prefetch(&galois);
    }
    /// The Galois key for `galois_element` to switch a ciphertext at `level`. A provider that
    /// also holds level-limited variants (a key restricted to levels `0..=L`, smaller and so
    /// cheaper to read from a store) may return the smallest one with `L >= level`; any key
    /// it returns must cover `level`. The default returns [`galois_key`](Self::galois_key).
    /// Evaluators fetch every Galois key through this method.
    fn galois_key_at(&self, galois_element: u64, level: usize) -> Result<Arc<KeySwitchKey>> {
        let _ = level;
        self.galois_key(galois_element)
    }
    /// Hint: these Galois keys will be needed soon, in this order, to switch ciphertexts at
    /// `level` (the level [`galois_key_at`](Self::galois_key_at) will be asked for). The
    /// default passes them to [`prefetch`](Self::prefetch).
    fn prefetch_at(&self, galois_elements: &[u64], level: usize) {
        let _ = level;
        self.prefetch(galois_elements);
    }
    /// Hint: keys of any kind will be needed soon, in this order, each at its level (a
    /// bootstrap announces its whole sequence: [`KeyUse`]). The default drops the levels and
    /// passes the kinds to [`prefetch_kinds`](Self::prefetch_kinds).
    fn prefetch_uses(&self, uses: &[KeyUse]) {
        let kinds: Vec<KeyKind> = uses.iter().map(|u| u.kind).collect();
        self.prefetch_kinds(&kinds);
    }
    /// Any key by kind. The default serves relinearization and Galois keys through the methods
    /// above and reports other kinds as missing; providers that hold more kinds override it.
    fn switching_key(&self, kind: KeyKind) -> Result<Arc<KeySwitchKey>> {
        match kind {
            KeyKind::Relinearization => self.relinearization_key(),
            KeyKind::Galois(g) => self.galois_key(g),
            other => Err(Error::MissingKey(format!(
                "no {other:?} key in this provider"
            ))),
        }
    }
}
