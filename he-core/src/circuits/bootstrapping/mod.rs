//! CKKS bootstrapping (Cheon, Han, Kim, Kim, Song, Eurocrypt 2018; Chen, Chillotti, Song,
//! Eurocrypt 2019; Han, Ki, CT-RSA 2020; Bossuat, Mouchet, Troncoso-Pastoriza, Hubaux,
//! Eurocrypt 2021; Bossuat, Troncoso-Pastoriza, Hubaux, ACNS 2022).
//!
//! A ciphertext at the bottom of the chain is brought back to `levels_after` levels:
//!
//! 1. **ScaleUp** (level 0): multiply by the integer `k = round(q_0/(R·Δ))`, so that the message
//!    occupies the fraction `1/R` of `q_0` (the message ratio `R`, e.g. `2^8`).
//! 2. **Encapsulation** (optional): switch to an ephemeral sparse secret modulo `q_0·p_0`
//!    ([`encapsulation`]), so that the overflow `I` of step 3 stays below `K ≈ 16`.
//! 3. **ModRaise**: lift the residues mod `q_0` to the whole chain; the ciphertext now decrypts to
//!    `k·m + q_0·I`. With encapsulation, switch back to the dense secret.
//! 4. **CoeffToSlot**: the inverse special FFT as `levels` factors of merged butterflies
//!    ([`dft`]), scaled so that the slots hold `y = (k·m + q_0·I)/(q_0 K)`; real and imaginary
//!    parts (coefficients `j` and `j + N/2`) are split with one conjugation.
//! 5. **EvalMod** on both halves ([`evalmod`]): `A·sin(2πK y) ≈ m/Δ`.
//! 6. **SlotToCoeff**: the forward special FFT, its plaintext scales walking the scale down to the
//!    default scale exactly.
//!
//! Every step runs at the level the chain reserves for it (the layout in [`BootstrapConfig`]);
//! the output has `levels_after` levels and the parameters' default scale exactly.

pub mod dft;
pub mod encapsulation;
pub mod evalmod;
mod params;

pub use encapsulation::EncapsulationKey;
pub use evalmod::{ArcSine, EvalMod, EvalModConfig};
pub use params::{BootstrapConfig, BootstrapPreset};

use crate::circuits::lintrans::{rotations_for, BabySteps, Diagonals, LinearTransform};
use crate::ckks::{Ciphertext, Complex64, Evaluator};
use crate::ring::{Coeff, Eval, Poly};
use crate::rlwe::keyswitch::key_switch;
use crate::rlwe::{
    galois_element_conjugate, galois_element_for_rotation, EvalKeyProvider, EvalKeySet,
    KeyGenerator, KeyKind, KeySwitchKey, KeyUse, MaxLevel, Parameters, SecretKey,
};
use crate::{Error, Result};
use std::sync::Arc;

/// The plaintext scales of the SlotToCoeff factors: they walk the scale from `from` down to
/// `to` in equal ratios, landing on `to` exactly.
fn stc_targets(from: f64, to: f64, factors: usize) -> Vec<f64> {
    (1..=factors)
        .map(|f| {
            if f == factors {
                to
            } else {
                from * (to / from).powf(f as f64 / factors as f64)
            }
        })
        .collect()
}

/// Everything key generation must produce for bootstrapping, in one place.
#[derive(Debug)]
pub struct BootstrapKeys {
    /// Relinearization, conjugation, the DFTs' rotations and the sparse-to-dense key.
    pub eval_keys: EvalKeySet,
    /// The dense-to-sparse key modulo `q_0·p_0` (with encapsulation).
    pub encapsulation: Option<EncapsulationKey>,
}

impl BootstrapKeys {
    /// Generates exactly the keys bootstrapping with `config` needs.
    pub fn generate(sk: &SecretKey, config: &BootstrapConfig) -> Result<Self> {
        let params = sk.params();
        config.check(params)?;
        let kg = KeyGenerator::new(sk);
        let mut eval_keys = EvalKeySet::new();
        eval_keys.insert(kg.relinearization_key()?);
        for k in kg.rotation_keys(&Bootstrapper::rotations(params, config)?, true)? {
            eval_keys.insert(k);
        }
        let encapsulation = match config.sparse_secret {
            Some(h) => {
                let s_sparse = encapsulation::sparse_secret(params, h)?;
                eval_keys.insert(kg.switching_key(&s_sparse.s_q, KeyKind::SparseToDense, None)?);
                Some(EncapsulationKey::generate(sk, &s_sparse)?)
            }
            None => None,
        };
        Ok(Self {
            eval_keys,
            encapsulation,
        })
    }

    /// SlotToCoeff's rotation keys limited to the level SlotToCoeff starts at
    /// ([`Bootstrapper::slots_to_coeff_level`]): level-limited variants of keys
    /// [`generate`](Self::generate) makes in full (CoeffToSlot needs them at the top level),
    /// for a key store to serve SlotToCoeff from
    /// ([`EvalKeyProvider::galois_key_at`]). At `N16Levels9` a variant holds 3 digits of
    /// 19 limbs instead of 5 of 33: 35 % of the bytes a bootstrap's SlotToCoeff reads. An
    /// evaluator holding the full keys in memory does not need them.
    ///
    /// ```
    /// use he_core::circuits::bootstrapping::{BootstrapConfig, BootstrapKeys, BootstrapPreset, Bootstrapper};
    /// use he_core::rlwe::SecretKey;
    /// let config = BootstrapConfig::preset(BootstrapPreset::N12InsecureForTesting);
    /// let params = config.parameters()?;
    /// let sk = SecretKey::generate(&params)?;
    /// let limited = BootstrapKeys::slots_to_coeff_limited(&sk, &config)?;
    /// let level = Bootstrapper::slots_to_coeff_level(&config);
    /// assert!(!limited.is_empty());
    /// assert!(limited.iter().all(|k| k.shape().q_limbs == level + 1));
    /// # Ok::<(), he_core::Error>(())
    /// ```
    pub fn slots_to_coeff_limited(
        sk: &SecretKey,
        config: &BootstrapConfig,
    ) -> Result<Vec<KeySwitchKey>> {
        let params = sk.params();
        config.check(params)?;
        let [_, stc] = Bootstrapper::diagonals(params, config)?;
        // Repeats and the identity are dropped by the key generator.
        let steps = Bootstrapper::factor_rotations(&stc)?;
        let level = MaxLevel::new(Bootstrapper::slots_to_coeff_level(config));
        KeyGenerator::new(sk).rotation_keys_up_to(&steps, level)
    }

    /// Bytes of all the keys.
    pub fn bytes(&self) -> usize {
        self.eval_keys.bytes() + self.encapsulation.as_ref().map_or(0, |e| e.bytes())
    }
}

/// What bootstrapping with a configuration needs ([`Bootstrapper::footprint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapFootprint {
    /// The rotation steps (conjugation comes on top), as [`Bootstrapper::rotations`].
    pub rotations: Vec<i64>,
    /// Bytes of the DFT plaintexts, as [`Bootstrapper::plaintext_bytes_for`].
    pub plaintext_bytes: usize,
    /// Working memory of the largest DFT factor on top of the ciphertext it transforms: its
    /// hoisted baby-step rotations and decomposition in `Q_l ∪ P`, and per rayon thread one
    /// giant step in flight (its partial sum, decomposition, key-switching output) and one
    /// running sum. For planners' memory estimates.
    pub work_bytes: usize,
}

/// A bootstrapper: the pre-encoded DFT factors, EvalMod, and an evaluator over the keys.
#[derive(Debug)]
pub struct Bootstrapper {
    config: BootstrapConfig,
    eval: Evaluator,
    cts: Vec<LinearTransform>,
    stc: Vec<LinearTransform>,
    eval_mod: EvalMod,
    encapsulation: Option<EncapsulationKey>,
    /// Scale given to the ciphertext after ModRaise (= the scale EvalMod receives).
    raise_scale: f64,
    /// Scale of EvalMod's output (= SlotToCoeff's input).
    eval_mod_scale: f64,
}

impl Bootstrapper {
    /// The DFT factors. Full packing: on `N/2` slots. Sparse packing (`n ≤ N/4`): on `2n`
    /// slots — the `n`-slot factors repeated, CoeffToSlot's last factor followed by
    /// `D = diag(1/2 ×n, −i/2 ×n)` (so that `x + conj(x)` puts real parts in slots `0..n` and
    /// imaginary parts in `n..2n`), SlotToCoeff's first factor preceded by `E` (`c_t = r_t +
    /// i·r_{t+n}`, the recombination).
    fn diagonals(params: &Parameters, config: &BootstrapConfig) -> Result<[Vec<Diagonals>; 2]> {
        let (degree, full) = (params.degree(), params.slots());
        let n = 1usize << config.log_slots;
        let one = Complex64::new(1.0, 0.0);
        let mut cts = dft::coeff_to_slot_factors(degree, n, config.coeff_to_slot.len(), one)?;
        let mut stc = dft::slot_to_coeff_factors(degree, n, config.slots_to_coeff.len(), one)?;
        if n < full {
            let lift = |d: &Diagonals| -> Result<Diagonals> {
                let mut out = Diagonals::new(2 * n)?;
                for k in d.indices() {
                    let v = d.get(k).unwrap_or(&[]);
                    out.insert(k as i64, (0..2 * n).map(|t| v[t % n]).collect())?;
                }
                Ok(out)
            };
            cts = cts.iter().map(lift).collect::<Result<Vec<_>>>()?;
            stc = stc.iter().map(lift).collect::<Result<Vec<_>>>()?;
            let half = Complex64::new(0.5, 0.0);
            let mut d = Diagonals::new(2 * n)?;
            d.insert(
                0,
                (0..2 * n)
                    .map(|t| {
                        if t < n {
                            half
                        } else {
                            Complex64::new(0.0, -0.5)
                        }
                    })
                    .collect(),
            )?;
            let i = Complex64::new(0.0, 1.0);
            let mut e = Diagonals::new(2 * n)?;
            e.insert(0, (0..2 * n).map(|t| if t < n { one } else { i }).collect())?;
            e.insert(
                n as i64,
                (0..2 * n).map(|t| if t < n { i } else { one }).collect(),
            )?;
            if let Some(last) = cts.last_mut() {
                *last = d.compose(last)?;
            }
            if let Some(first) = stc.first_mut() {
                *first = first.compose(&e)?;
            }
        }
        Ok([cts, stc])
    }

    /// Whether the configuration bootstraps fewer than `N/2` slots (one EvalMod).
    fn sparse(&self) -> bool {
        (1usize << self.config.log_slots) < self.eval.params().slots()
    }

    /// SubSum's rotation steps for sparse packing: `n, 2n, …, N/4`.
    fn sub_sum_steps(params: &Parameters, config: &BootstrapConfig) -> Vec<i64> {
        let mut s = Vec::new();
        let mut step = 1usize << config.log_slots;
        while step < params.slots() {
            s.push(step as i64);
            step *= 2;
        }
        s
    }

    /// The rotation steps bootstrapping with `config` needs (conjugation comes on top).
    pub fn rotations(params: &Parameters, config: &BootstrapConfig) -> Result<Vec<i64>> {
        Self::rotations_of(params, config, &Self::diagonals(params, config)?)
    }

    /// What bootstrapping with `config` needs besides its keys' secret — its rotation steps and
    /// the bytes of its DFT plaintexts — from one construction of the DFT factors (each of
    /// [`rotations`](Self::rotations) and [`plaintext_bytes_for`](Self::plaintext_bytes_for)
    /// builds them anew). For planners.
    pub fn footprint(params: &Parameters, config: &BootstrapConfig) -> Result<BootstrapFootprint> {
        config.check(params)?;
        let diagonals = Self::diagonals(params, config)?;
        Ok(BootstrapFootprint {
            rotations: Self::rotations_of(params, config, &diagonals)?,
            plaintext_bytes: Self::plaintext_bytes_of(params, config, &diagonals),
            work_bytes: Self::work_bytes_of(params, config, &diagonals)?,
        })
    }

    fn work_bytes_of(
        params: &Parameters,
        config: &BootstrapConfig,
        [cts, stc]: &[Vec<Diagonals>; 2],
    ) -> Result<usize> {
        let (top, k, n8, dnum) = (
            params.max_level(),
            params.p().len(),
            params.degree() * 8,
            params.dnum(),
        );
        let threads = rayon::current_num_threads().max(1);
        let stc_top = config.levels_after() + stc.len();
        let at = |level: usize, d: &Diagonals| -> Result<usize> {
            let idx: Vec<usize> = d.indices().collect();
            let n1 = BabySteps::Auto.n1_for(&idx, d.slots())?;
            let mut baby: Vec<usize> = idx.iter().map(|i| i % n1).filter(|j| *j != 0).collect();
            baby.sort_unstable();
            baby.dedup();
            let mut giants: Vec<usize> = idx.iter().map(|i| i / n1).collect();
            giants.sort_unstable();
            giants.dedup();
            let (qp, q) = ((level + 1 + k) * n8, (level + 1) * n8);
            let hoisted = (2 * baby.len() + if baby.is_empty() { 0 } else { dnum }) * qp;
            let in_flight = threads.min(giants.len()) * (2 * q + (dnum + 4) * qp);
            Ok(hoisted + in_flight)
        };
        let mut most = 0;
        for (f, d) in cts.iter().enumerate() {
            most = most.max(at(top - f, d)?);
        }
        for (f, d) in stc.iter().enumerate() {
            most = most.max(at(stc_top - f, d)?);
        }
        Ok(most)
    }

    fn rotations_of(
        params: &Parameters,
        config: &BootstrapConfig,
        [cts, stc]: &[Vec<Diagonals>; 2],
    ) -> Result<Vec<i64>> {
        let mut r = Self::sub_sum_steps(params, config);
        r.extend(Self::factor_rotations(cts.iter().chain(stc))?);
        r.sort_unstable();
        r.dedup();
        Ok(r)
    }

    /// The rotation steps the BSGS evaluation of DFT factors uses (in factor order, with
    /// repeats).
    fn factor_rotations<'a>(factors: impl IntoIterator<Item = &'a Diagonals>) -> Result<Vec<i64>> {
        let mut r = Vec::new();
        for d in factors {
            r.extend(rotations_for(d, BabySteps::Auto)?);
        }
        Ok(r)
    }

    /// Encodes the DFT factors at their levels and prepares EvalMod. `keys` must hold what
    /// [`BootstrapKeys::generate`] makes (it may be a store: anything that provides them).
    pub fn new(
        params: &Arc<Parameters>,
        config: &BootstrapConfig,
        keys: Arc<dyn EvalKeyProvider>,
        encapsulation: Option<EncapsulationKey>,
    ) -> Result<Self> {
        config.check(params)?;
        if config.sparse_secret.is_some() != encapsulation.is_some() {
            return Err(Error::MissingKey(
                "the configuration and the keys disagree on sparse-secret encapsulation".into(),
            ));
        }
        let eval = Evaluator::with_keys(params, keys)?;
        let ecd = eval.encoder().clone();
        let q = params.q();
        let top = params.max_level();
        let slots = params.slots();
        let eval_mod = EvalMod::new(config.eval_mod)?;
        let raise_scale = 2f64.powi(config.eval_mod_bits as i32);
        let eval_mod_scale = 2f64.powi(config.slots_to_coeff_input_bits as i32);
        let [cts_d, stc_d] = Self::diagonals(params, config)?;
        // CoeffToSlot's total constant, spread evenly over the factors: S/(2·n·q_0·K) for full
        // packing (the 1/2 undoes x + conj(x)); S/(n·g·q_0·K) for sparse packing, where SubSum
        // multiplied by g = N/(2n) and D carries the 1/2.
        let n = 1usize << config.log_slots;
        let (q0, k) = (q[0] as f64, config.eval_mod.k_bound);
        let c_tot = if n < slots {
            raise_scale / (n as f64 * (slots / n) as f64 * q0 * k)
        } else {
            raise_scale / (2.0 * slots as f64 * q0 * k)
        };
        let per = c_tot.powf(1.0 / cts_d.len() as f64);
        let cts = cts_d
            .into_iter()
            .enumerate()
            .map(|(f, mut d)| {
                d.scale(Complex64::new(per, 0.0));
                let l = top - f;
                LinearTransform::encode(&ecd, &d, l, q[l] as f64, BabySteps::Auto)
            })
            .collect::<Result<Vec<_>>>()?;
        let stc_top = Self::slots_to_coeff_level(config);
        let targets = stc_targets(eval_mod_scale, params.default_scale(), stc_d.len());
        let mut prev = eval_mod_scale;
        let mut stc = Vec::with_capacity(stc_d.len());
        for (f, d) in stc_d.into_iter().enumerate() {
            let l = stc_top - f;
            let pt_scale = targets[f] * q[l] as f64 / prev;
            stc.push(LinearTransform::encode(
                &ecd,
                &d,
                l,
                pt_scale,
                BabySteps::Auto,
            )?);
            prev = targets[f];
        }
        Ok(Self {
            config: config.clone(),
            eval,
            cts,
            stc,
            eval_mod,
            encapsulation,
            raise_scale,
            eval_mod_scale,
        })
    }

    /// The level SlotToCoeff starts at (its first factor's): the levels left after
    /// bootstrapping plus SlotToCoeff's own.
    pub fn slots_to_coeff_level(config: &BootstrapConfig) -> usize {
        config.levels_after() + config.slots_to_coeff.len()
    }

    /// The configuration.
    pub fn config(&self) -> &BootstrapConfig {
        &self.config
    }

    /// The evaluator (with the bootstrapping keys).
    pub fn evaluator(&self) -> &Evaluator {
        &self.eval
    }

    /// EvalMod's circuit.
    pub fn eval_mod(&self) -> &EvalMod {
        &self.eval_mod
    }

    /// Bytes of the pre-encoded DFT plaintexts.
    pub fn plaintext_bytes(&self) -> usize {
        self.cts.iter().chain(&self.stc).map(|t| t.bytes()).sum()
    }

    /// Bytes of the DFT plaintexts [`new`](Self::new) encodes for `config` (what
    /// [`plaintext_bytes`](Self::plaintext_bytes) then reports), computed from the factors'
    /// diagonal counts and levels without encoding anything: each diagonal is stored over
    /// `Q_l ∪ P` at its factor's level. For planners' memory estimates.
    pub fn plaintext_bytes_for(params: &Parameters, config: &BootstrapConfig) -> Result<usize> {
        config.check(params)?;
        Ok(Self::plaintext_bytes_of(
            params,
            config,
            &Self::diagonals(params, config)?,
        ))
    }

    fn plaintext_bytes_of(
        params: &Parameters,
        config: &BootstrapConfig,
        [cts, stc]: &[Vec<Diagonals>; 2],
    ) -> usize {
        let (top, k, n8) = (params.max_level(), params.p().len(), params.degree() * 8);
        let stc_top = config.levels_after() + stc.len();
        let at = |level: usize, d: &Diagonals| d.len() * (level + 1 + k) * n8;
        let c: usize = cts.iter().enumerate().map(|(f, d)| at(top - f, d)).sum();
        let s: usize = stc
            .iter()
            .enumerate()
            .map(|(f, d)| at(stc_top - f, d))
            .sum();
        c + s
    }

    /// Level of a bootstrapped ciphertext.
    pub fn output_level(&self) -> usize {
        self.config.levels_after()
    }

    /// ModRaise: the residues mod `q_0` lifted (centred) to every prime of the chain.
    fn mod_raise(&self, p: &Poly<Eval>) -> Result<Poly<Eval>> {
        let params = self.eval.params();
        let rq = params.ring_q();
        let q0 = rq.moduli()[0];
        let c: Poly<Coeff> = rq.to_coeff(p.clone())?;
        let centred: Vec<i64> = c.as_slice().iter().map(|x| q0.center(*x)).collect();
        rq.to_eval(rq.from_signed(&centred, params.max_level() + 1)?)
    }

    /// Bootstraps `ct` (any level; it is first dropped to level 0): the result has
    /// [`output_level`](Self::output_level) levels and the default scale exactly. The steps
    /// are also public, for researchers who want to time or replace one:
    /// [`mod_raise_ciphertext`](Self::mod_raise_ciphertext) →
    /// [`coeff_to_slot`](Self::coeff_to_slot) → [`eval_mod_split`](Self::eval_mod_split) →
    /// [`slot_to_coeff`](Self::slot_to_coeff).
    ///
    /// Errors: a ciphertext of other parameters, with 3 components, whose scale leaves no room
    /// for the message ratio, or keys missing from the provider.
    ///
    /// The whole sequence of keys ([`key_uses`](Self::key_uses)) is announced to the
    /// key provider first, so that a store reads the next transform's keys while the current
    /// one runs; the relinearization key is held through EvalMod, so that a store under a
    /// budget does not evict it between EvalMod's products.
    pub fn bootstrap(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        let keys = self.eval.keys()?;
        keys.prefetch_uses(&self.key_uses());
        let (raised, ratio) = self.mod_raise_ciphertext(ct)?;
        let slots = self.coeff_to_slot(&raised)?;
        let relin = keys.relinearization_key()?;
        let u = self.eval_mod_split(&slots, ratio)?;
        drop(relin);
        self.slot_to_coeff(&u)
    }

    /// The evaluation keys one [`bootstrap`](Self::bootstrap) fetches, in order: the
    /// sparse-to-dense switch (with encapsulation), SubSum's rotations (sparse packing), each
    /// CoeffToSlot factor's ([`LinearTransform::key_order`]), the relinearization key and the
    /// conjugation of EvalMod, then each SlotToCoeff factor's. A key store reads ahead in
    /// this order.
    pub fn key_schedule(&self) -> Vec<KeyKind> {
        self.key_uses().into_iter().map(|u| u.kind).collect()
    }

    /// [`key_schedule`](Self::key_schedule) with the level of the ciphertext each key
    /// switches: the sparse-to-dense switch at level 0, SubSum at the top level, each DFT
    /// factor's rotations at the factor's level, EvalMod's relinearization and conjugation at
    /// CoeffToSlot's output level. A store holding level-limited keys (SlotToCoeff's, from
    /// [`BootstrapKeys::slots_to_coeff_limited`]) reads ahead the variant each use fetches.
    pub fn key_uses(&self) -> Vec<KeyUse> {
        let params = self.eval.params();
        let n = params.degree();
        let top = params.max_level();
        let rotation = |s: i64, level: usize| KeyUse {
            kind: KeyKind::Galois(galois_element_for_rotation(n, s)),
            level,
        };
        let mut out = Vec::new();
        if self.encapsulation.is_some() {
            out.push(KeyUse {
                kind: KeyKind::SparseToDense,
                level: 0,
            });
        }
        if self.sparse() {
            out.extend(
                Self::sub_sum_steps(params, &self.config)
                    .into_iter()
                    .map(|s| rotation(s, top)),
            );
        }
        let factor_keys = |lt: &LinearTransform| {
            let level = lt.level();
            lt.key_order().into_iter().map(move |s| rotation(s, level))
        };
        out.extend(self.cts.iter().flat_map(factor_keys));
        let eval_mod_level = top.saturating_sub(self.cts.len());
        out.push(KeyUse {
            kind: KeyKind::Relinearization,
            level: eval_mod_level,
        });
        out.push(KeyUse {
            kind: KeyKind::Galois(galois_element_conjugate(n)),
            level: eval_mod_level,
        });
        out.extend(self.stc.iter().flat_map(factor_keys));
        out
    }

    /// Steps 1–3: ScaleUp at level 0, encapsulation, ModRaise (and back to the dense secret).
    /// Returns the raised ciphertext (at the top level, labelled with EvalMod's input scale)
    /// and the exact message ratio `R = q_0/(kΔ)` EvalMod must undo.
    pub fn mod_raise_ciphertext(&self, ct: &Ciphertext) -> Result<(Ciphertext, f64)> {
        let eval = &self.eval;
        let params = eval.params().clone();
        eval.check_ct(ct)?;
        if ct.size() != 2 {
            return Err(Error::InvalidParameters(
                "bootstrapping needs a relinearized (2-component) ciphertext".into(),
            ));
        }
        let q0 = params.q()[0] as f64;
        let mut x = ct.clone();
        eval.drop_to_level(&mut x, 0)?;
        let ratio = 2f64.powf(self.config.eval_mod.log_message_ratio);
        let k = (q0 / (ratio * x.scale())).round();
        if k < 1.0 {
            return Err(Error::OutOfRange {
                what: "scale of the ciphertext to bootstrap",
                found: format!("2^{:.1}", x.scale().log2()),
                allowed: format!(
                    "<= q_0 / R = 2^{:.1}",
                    q0.log2() - self.config.eval_mod.log_message_ratio
                ),
            });
        }
        eval.scale_up_assign(&mut x, k as u64)?;
        let message_ratio = q0 / x.scale();
        let (mut c0, mut c1) = (x.c[0].clone(), x.c[1].clone());
        if let Some(enc) = &self.encapsulation {
            crate::rlwe::KeyId::check(
                "sparse-secret encapsulation",
                Some(enc.key_id()),
                "the ciphertext",
                ct.key_id(),
            )?;
            (c0, c1) = enc.switch(&params, &c0, &c1)?;
        }
        let (mut r0, mut r1) = (self.mod_raise(&c0)?, self.mod_raise(&c1)?);
        if self.encapsulation.is_some() {
            let key = eval.keys()?.switching_key(KeyKind::SparseToDense)?;
            eval.check_key(&key, KeyKind::SparseToDense, ct.key_id())?;
            let (k0, k1) = key_switch(&params, &r1, &key)?;
            params.ring_q().add_assign(&mut r0, &k0)?;
            r1 = k1;
        }
        Ok((
            eval.new_ct(vec![r0, r1], self.raise_scale, ct.key_id()),
            message_ratio,
        ))
    }

    /// Step 4: CoeffToSlot (the factorised inverse DFT); slots hold `y = t/K` (complex: the
    /// coefficients `j·g` and `j·g + N/2` as real and imaginary parts, bit-reversed order).
    /// Sparse packing first sums the rotations by `n, 2n, …, N/4` (SubSum), which keeps the
    /// coefficients of `Z[X^g]` (times `g`) and cancels the others of `q_0·I`.
    pub fn coeff_to_slot(&self, raised: &Ciphertext) -> Result<Ciphertext> {
        let eval = &self.eval;
        let mut y = raised.clone();
        if self.sparse() {
            for s in Self::sub_sum_steps(eval.params(), &self.config) {
                let r = eval.rotate(&y, s)?;
                eval.add_assign(&mut y, &r)?;
            }
        }
        for lt in &self.cts {
            y = eval.apply_linear_transform(&y, lt)?;
            eval.rescale_assign(&mut y)?;
        }
        Ok(y)
    }

    /// Step 5: the real/imaginary split (one conjugation), EvalMod on both halves
    /// (`A·sin(2πt)`, `A = R/(2π)`), recombined as `re + i·im`.
    pub fn eval_mod_split(&self, y: &Ciphertext, message_ratio: f64) -> Result<Ciphertext> {
        let eval = &self.eval;
        let n = eval.params().degree();
        let conj = eval.apply_galois(y, galois_element_conjugate(n))?;
        let amplitude = message_ratio / (2.0 * std::f64::consts::PI);
        if self.sparse() {
            // Real parts in slots 0..n, imaginary parts in n..2n: one EvalMod.
            let re = eval.add(y, &conj)?;
            return self
                .eval_mod
                .evaluate(eval, &re, amplitude, self.eval_mod_scale);
        }
        let re = eval.add(y, &conj)?;
        let mut im = eval.sub(&conj, y)?;
        eval.mul_by_i_assign(&mut im)?;
        let (re, im) = rayon::join(
            || {
                self.eval_mod
                    .evaluate(eval, &re, amplitude, self.eval_mod_scale)
            },
            || {
                self.eval_mod
                    .evaluate(eval, &im, amplitude, self.eval_mod_scale)
            },
        );
        let (mut u, mut im) = (re?, im?);
        eval.mul_by_i_assign(&mut im)?;
        eval.add_assign(&mut u, &im)?;
        Ok(u)
    }

    /// Step 6: SlotToCoeff (the factorised forward DFT), landing on the default scale.
    pub fn slot_to_coeff(&self, u: &Ciphertext) -> Result<Ciphertext> {
        let eval = &self.eval;
        let want = self.config.levels_after() + self.stc.len();
        if u.level() != want {
            return Err(Error::LevelMismatch {
                left_what: "ciphertext",
                left: u.level(),
                right_what: "SlotToCoeff input",
                right: want,
            });
        }
        let mut u = u.clone();
        for lt in &self.stc {
            u = eval.apply_linear_transform(&u, lt)?;
            eval.rescale_assign(&mut u)?;
        }
        Ok(u)
    }
}

#[cfg(test)]
mod tests;
