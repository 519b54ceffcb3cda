//! Generation of key-switching keys (relinearization, Galois, conjugation) and the in-memory
//! evaluation-key set.

use super::keys::{EvalKeyProvider, KeyKind, KeyShape, KeySwitchKey, MaxLevel};
use super::secret::{SecretKey, SecretPoly};
use crate::math::Prng;
use crate::ring::{zeroed_limbs, Eval, Poly, PolyView};
use crate::{Error, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Galois element of a left rotation by `steps` slots: `5^steps mod 2N` (negative steps rotate
/// right), the generator convention of CKKS slot order.
pub fn galois_element_for_rotation(n: usize, steps: i64) -> u64 {
    let two_n = 2 * n as u64;
    let half = (n / 2) as i64;
    let e = steps.rem_euclid(half) as u64;
    let m = (two_n as u128, 5u128);
    let mut acc = 1u128;
    let mut base = m.1;
    let mut k = e;
    while k > 0 {
        if k & 1 == 1 {
            acc = acc * base % m.0;
        }
        base = base * base % m.0;
        k >>= 1;
    }
    acc as u64
}

/// Galois element of complex conjugation: `2N - 1` (`X -> X^{-1}`).
pub fn galois_element_conjugate(n: usize) -> u64 {
    2 * n as u64 - 1
}

/// The distinct Galois elements of rotations by `steps`, sorted, without the identity.
fn rotation_elements(n: usize, steps: &[i64]) -> Vec<u64> {
    let mut elts: Vec<u64> = steps
        .iter()
        .map(|s| galois_element_for_rotation(n, *s))
        .filter(|g| *g != 1)
        .collect();
    elts.sort_unstable();
    elts.dedup();
    elts
}

/// Generates key-switching keys for one secret key. The uniform halves `a_j` are expanded from
/// a per-key seed (so a key can be stored seeded, about half the size).
pub struct KeyGenerator<'a> {
    sk: &'a SecretKey,
}

impl<'a> KeyGenerator<'a> {
    /// A generator for `sk`.
    pub fn new(sk: &'a SecretKey) -> Self {
        Self { sk }
    }

    /// The relinearization key (`s^2 -> s`).
    pub fn relinearization_key(&self) -> Result<KeySwitchKey> {
        self.relinearization_key_up_to(MaxLevel::top(self.sk.params()))
    }

    /// The relinearization key usable at levels `0..=max_level` only (a level-limited key,
    /// see [`KeyShape::for_level`]).
    pub fn relinearization_key_up_to(&self, max_level: MaxLevel) -> Result<KeySwitchKey> {
        let rq = self.sk.params().ring_q();
        let s2q = SecretPoly(rq.mul(&self.sk.s_q, &self.sk.s_q)?);
        self.switching_key_up_to(&s2q, KeyKind::Relinearization, None, max_level)
    }

    /// The Galois key for element `g` (`σ_g(s) -> s`).
    pub fn galois_key(&self, g: u64) -> Result<KeySwitchKey> {
        self.galois_key_up_to(g, MaxLevel::top(self.sk.params()))
    }

    /// The Galois key for element `g`, usable at levels `0..=max_level` only: about
    /// `(max_level + 1 + k)·⌈(max_level + 1)/α⌉ / ((L + 1 + k)·dnum)` of a full key's size.
    ///
    /// ```
    /// # fn main() -> he_core::Result<()> {
    /// use he_core::rlwe::*;
    /// let params = Parameters::new(ParametersLiteral {
    ///     log_n: 10,
    ///     log_q: vec![50; 8],
    ///     log_p: vec![55; 2],
    ///     alpha: Some(2),
    ///     log_scale: 40.0,
    ///     secret: SecretDistribution::UniformTernary,
    ///     security: Security::InsecureForTesting,
    /// })?;
    /// let sk = SecretKey::generate(&params)?;
    /// let g = galois_element_for_rotation(params.degree(), 1);
    /// let key = KeyGenerator::new(&sk).galois_key_up_to(g, MaxLevel::new(2))?;
    /// assert_eq!(key.max_level(), MaxLevel::new(2));
    /// assert_eq!((key.shape().q_limbs, key.shape().dnum), (3, 2));
    /// # Ok(())
    /// # }
    /// ```
    pub fn galois_key_up_to(&self, g: u64, max_level: MaxLevel) -> Result<KeySwitchKey> {
        let rq = self.sk.params().ring_q();
        let sq = SecretPoly(rq.automorphism_eval(&self.sk.s_q, g)?);
        self.switching_key_up_to(
            &sq,
            KeyKind::Galois(g % (2 * rq.degree() as u64)),
            None,
            max_level,
        )
    }

    /// Galois keys for the given rotation steps (and conjugation if asked): exactly those.
    pub fn rotation_keys(&self, steps: &[i64], conjugation: bool) -> Result<Vec<KeySwitchKey>> {
        let n = self.sk.params().degree();
        let mut elts = rotation_elements(n, steps);
        if conjugation {
            elts.push(galois_element_conjugate(n));
            elts.sort_unstable();
            elts.dedup();
        }
        let top = MaxLevel::top(self.sk.params());
        elts.into_iter()
            .map(|g| self.galois_key_up_to(g, top))
            .collect()
    }

    /// Galois keys for the given rotation steps, usable at levels `0..=max_level` only (e.g.
    /// the levels a network computes at between bootstraps). The conjugation key is
    /// [`conjugation_key_up_to`](Self::conjugation_key_up_to).
    ///
    /// ```
    /// # fn main() -> he_core::Result<()> {
    /// use he_core::ckks::{Encryptor, Evaluator};
    /// use he_core::rlwe::*;
    /// use std::sync::Arc;
    /// let params = Parameters::new(ParametersLiteral {
    ///     log_n: 10,
    ///     log_q: vec![55, 45, 45, 45, 45],
    ///     log_p: vec![60, 60],
    ///     alpha: Some(2),
    ///     log_scale: 45.0,
    ///     secret: SecretDistribution::UniformTernary,
    ///     security: Security::InsecureForTesting,
    /// })?;
    /// let sk = SecretKey::generate(&params)?;
    /// let mut keys = EvalKeySet::new();
    /// for k in KeyGenerator::new(&sk).rotation_keys_up_to(&[1, 2], MaxLevel::new(2))? {
    ///     keys.insert(k);
    /// }
    /// let eval = Evaluator::with_keys(&params, Arc::new(keys))?;
    /// let enc = Encryptor::new(&params, PublicKey::generate(&sk)?)?;
    /// let pt = eval.encoder().encode(&[1.0, 2.0, 3.0], 2, params.default_scale())?;
    /// let mut ct = enc.encrypt(&pt)?;
    /// eval.rotate(&ct, 1)?; // level 2: served
    /// let pt = eval.encoder().encode(&[1.0], 3, params.default_scale())?;
    /// ct = enc.encrypt(&pt)?;
    /// assert!(matches!(
    ///     eval.rotate(&ct, 1), // level 3: above the keys' level
    ///     Err(he_core::Error::KeyLevelExceeded { level: 3, max_level: 2, .. })
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    pub fn rotation_keys_up_to(
        &self,
        steps: &[i64],
        max_level: MaxLevel,
    ) -> Result<Vec<KeySwitchKey>> {
        rotation_elements(self.sk.params().degree(), steps)
            .into_iter()
            .map(|g| self.galois_key_up_to(g, max_level))
            .collect()
    }

    /// The conjugation key (Galois element `2N - 1`), usable at levels `0..=max_level` only.
    pub fn conjugation_key_up_to(&self, max_level: MaxLevel) -> Result<KeySwitchKey> {
        let n = self.sk.params().degree();
        self.galois_key_up_to(galois_element_conjugate(n), max_level)
    }

    /// A switching key from `s'` (given mod `Q_L`, evaluation form) to `s`, with the `a_j`
    /// expanded from `seed` (fresh from the OS when `None`). `s'` is not needed mod `P`: the
    /// gadget term `P·g_j·s'` vanishes there.
    pub fn switching_key(
        &self,
        s_from_q: &Poly<Eval>,
        kind: KeyKind,
        seed: Option<[u8; 32]>,
    ) -> Result<KeySwitchKey> {
        self.switching_key_up_to(s_from_q, kind, seed, MaxLevel::top(self.sk.params()))
    }

    /// [`switching_key`](Self::switching_key) usable at levels `0..=max_level` only: the same
    /// construction `b_j = -a_j·s + e_j + P·g_j·s'` over the Q-limbs `0..=max_level` and `P`,
    /// for the `⌈(max_level + 1)/α⌉` digits covering them ([`KeyShape::for_level`]). The
    /// `a_j` are expanded from `seed` at this shape (so the seeded serialized form works), and
    /// therefore differ from a full key's with the same seed. At the top level this is
    /// exactly `switching_key`.
    pub fn switching_key_up_to(
        &self,
        s_from_q: &Poly<Eval>,
        kind: KeyKind,
        seed: Option<[u8; 32]>,
        max_level: MaxLevel,
    ) -> Result<KeySwitchKey> {
        let params = self.sk.params();
        let rq = params.ring_q();
        let rp = params.ring_p();
        let ks = params.key_switch_basis();
        let n = params.degree();
        let shape = KeyShape::for_level(params, max_level)?;
        let (lq, lp) = (shape.q_limbs, shape.p_limbs);
        if s_from_q.limbs() < lq || self.sk.s_q.limbs() < lq {
            return Err(Error::LengthMismatch {
                what: "limbs of the secret a switching key is made from",
                expected: lq,
                found: s_from_q.limbs().min(self.sk.s_q.limbs()),
            });
        }
        // The secret over the key's Q-limbs (all of them for a full key).
        let s_q = PolyView::<Eval>::from_container(
            self.sk.s_q.as_slice().get(..lq * n).unwrap_or_default(),
            n,
            lq,
        )?;
        let mut os = Prng::from_os()?;
        let seed = match seed {
            Some(s) => s,
            None => os.seed(),
        };
        let mut a_prng = Prng::from_seed(seed);
        let mut data = zeroed_limbs(shape.words());
        let cw = shape.component_words();
        // Sample everything sequentially (deterministic stream), then compute in parallel.
        let mut parts = Vec::with_capacity(shape.dnum);
        for _ in 0..shape.dnum {
            let aq = rq.uniform::<Eval>(&mut a_prng, lq)?;
            let ap = rp.uniform::<Eval>(&mut a_prng, lp)?;
            let e = zeroize::Zeroizing::new(os.gaussian(n));
            parts.push((aq, ap, e));
        }
        let p_mod_q = ks.p_mod_q();
        data.par_chunks_mut(2 * cw)
            .zip(parts.into_par_iter())
            .enumerate()
            .try_for_each(|(j, (chunk, (aq, ap, e)))| -> Result<()> {
                // b = -a·s + e + P·g_j·s', g_j the CRT idempotent of digit j (1 on D_j, 0 elsewhere).
                let mut bq = rq.mul(&aq, &s_q)?;
                rq.neg_assign(&mut bq)?;
                rq.add_assign(&mut bq, &SecretPoly(rq.to_eval(rq.from_signed(&e, lq)?)?))?;
                let mut bp = rp.mul(&ap, &self.sk.s_p)?;
                rp.neg_assign(&mut bp)?;
                rp.add_assign(&mut bp, &SecretPoly(rp.to_eval(rp.from_signed(&e, lp)?)?))?;
                for i in ks.digit_range(lq - 1, j) {
                    let m = rq.moduli()[i];
                    let (w, ws) = (p_mod_q[i], m.shoup(p_mod_q[i]));
                    let (Some(dst), Some(src)) = (bq.limb_mut(i), s_from_q.limb(i)) else {
                        return Err(Error::InvalidParameters(
                            "secret key limbs do not match parameters".into(),
                        ));
                    };
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d = m.add(*d, m.mul_shoup(*s, w, ws));
                    }
                }
                let (b_part, a_part) = chunk.split_at_mut(cw);
                b_part[..lq * n].copy_from_slice(bq.as_slice());
                b_part[lq * n..].copy_from_slice(bp.as_slice());
                a_part[..lq * n].copy_from_slice(aq.as_slice());
                a_part[lq * n..].copy_from_slice(ap.as_slice());
                Ok(())
            })?;
        Ok(
            KeySwitchKey::from_storage(shape, kind, params.hash(), Arc::new(data))?
                .with_seed(seed)
                .with_key_id(self.sk.key_id()),
        )
    }
}

/// Evaluation keys held in memory: the default [`EvalKeyProvider`].
#[derive(Debug, Default, Clone)]
pub struct EvalKeySet {
    relin: Option<Arc<KeySwitchKey>>,
    galois: BTreeMap<u64, Arc<KeySwitchKey>>,
    sparse_to_dense: Option<Arc<KeySwitchKey>>,
}

impl EvalKeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Generates the relinearization key and Galois keys for exactly `steps` (and conjugation).
    pub fn generate(sk: &SecretKey, relin: bool, steps: &[i64], conjugation: bool) -> Result<Self> {
        let kg = KeyGenerator::new(sk);
        let mut set = Self::new();
        if relin {
            set.insert(kg.relinearization_key()?);
        }
        for k in kg.rotation_keys(steps, conjugation)? {
            set.insert(k);
        }
        Ok(set)
    }

    /// Adds (or replaces) a key.
    pub fn insert(&mut self, key: KeySwitchKey) {
        match key.kind() {
            KeyKind::Relinearization => self.relin = Some(Arc::new(key)),
            KeyKind::Galois(g) => {
                self.galois.insert(g, Arc::new(key));
            }
            KeyKind::SparseToDense => self.sparse_to_dense = Some(Arc::new(key)),
        }
    }

    /// Total bytes of the keys held.
    pub fn bytes(&self) -> usize {
        self.relin
            .iter()
            .chain(self.galois.values())
            .chain(self.sparse_to_dense.iter())
            .map(|k| k.shape().bytes())
            .sum()
    }
}

impl EvalKeyProvider for EvalKeySet {
    fn relinearization_key(&self) -> Result<Arc<KeySwitchKey>> {
        self.relin
            .clone()
            .ok_or_else(|| Error::MissingKey("no relinearization key was generated".into()))
    }
    fn galois_key(&self, g: u64) -> Result<Arc<KeySwitchKey>> {
        self.galois.get(&g).cloned().ok_or_else(|| {
            Error::MissingKey(format!(
                "no Galois key for element {g}; available: {:?}",
                self.galois.keys().collect::<Vec<_>>()
            ))
        })
    }
    fn galois_elements(&self) -> Vec<u64> {
        self.galois.keys().copied().collect()
    }
    fn switching_key(&self, kind: KeyKind) -> Result<Arc<KeySwitchKey>> {
        match kind {
            KeyKind::Relinearization => self.relinearization_key(),
            KeyKind::Galois(g) => self.galois_key(g),
            KeyKind::SparseToDense => self.sparse_to_dense.clone().ok_or_else(|| {
                Error::MissingKey("no sparse-to-dense (bootstrapping) key was generated".into())
            }),
        }
    }
}
