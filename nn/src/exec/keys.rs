//! The plan's keys and the engine's key look-ahead: key generation for exactly what a plan
//! needs (and level-limited variants for a key store), and the keys each step fetches,
//! announced ahead to the key provider.

use super::Engine;
use crate::error::Result;
use crate::plan::{Mode, Plan, Step, StepOp};
use he_core::circuits::bootstrapping::{BootstrapKeys, Bootstrapper, EncapsulationKey};
use he_core::rlwe::{
    galois_element_for_rotation, EvalKeySet, KeyKind, KeySwitchKey, KeyUse, PublicKey, SecretKey,
};
use std::sync::Arc;

/// The keys of a plan: secret (client), public (client), evaluation keys (server) —
/// relinearization if the plan multiplies ciphertexts, and Galois keys for exactly the plan's
/// rotation steps; with bootstrapping also its keys (conjugation, the DFTs' rotations, the
/// sparse-to-dense key) and the encapsulation key.
#[derive(Debug)]
pub struct Keys {
    /// Secret key.
    pub secret: SecretKey,
    /// Public key.
    pub public: PublicKey,
    /// Evaluation keys.
    pub eval: Arc<EvalKeySet>,
    /// The dense-to-sparse encapsulation key of a bootstrapping plan whose configuration
    /// uses a sparse ephemeral secret (server side, with the evaluation keys).
    pub encapsulation: Option<EncapsulationKey>,
}

impl Plan {
    /// Generates the secret, public and evaluation keys this plan needs (and no others).
    pub fn generate_keys(&self) -> Result<Keys> {
        let secret = SecretKey::generate(&self.params)?;
        let public = PublicKey::generate(&secret)?;
        let (eval, encapsulation) = match &self.bootstrap {
            None => (
                EvalKeySet::generate(
                    &secret,
                    self.needs_relinearization(),
                    &self.rotation_steps,
                    false,
                )?,
                None,
            ),
            Some(config) => {
                // Bootstrapping's own keys, then the plan's rotations it does not have.
                let BootstrapKeys {
                    mut eval_keys,
                    encapsulation,
                } = BootstrapKeys::generate(&secret, config)?;
                // The network's own rotations (those bootstrapping lacks) run at levels
                // <= top_level only.
                let top = he_core::rlwe::MaxLevel::new(self.top_level);
                let kg = he_core::rlwe::KeyGenerator::new(&secret);
                for k in kg.rotation_keys_up_to(&self.level_limited_rotations, top)? {
                    eval_keys.insert(k);
                }
                (eval_keys, encapsulation)
            }
        };
        Ok(Keys {
            secret,
            public,
            eval: Arc::new(eval),
            encapsulation,
        })
    }

    /// Level-limited variants of evaluation keys, for a key store to serve where a key is used
    /// below its full level (`pmem_store::PmemKeyStore::insert_level_variant`): with
    /// bootstrapping, SlotToCoeff's rotation keys limited to its level
    /// ([`BootstrapKeys::slots_to_coeff_limited`]); none without. The keys
    /// [`generate_keys`](Self::generate_keys) makes serve every use without them: an engine
    /// holding its keys in memory does not need these.
    pub fn generate_key_variants(&self, secret: &SecretKey) -> Result<Vec<KeySwitchKey>> {
        Ok(match &self.bootstrap {
            None => Vec::new(),
            Some(config) => BootstrapKeys::slots_to_coeff_limited(secret, config)?,
        })
    }
}

impl Engine {
    /// Key look-ahead for a store serving the keys, before step `i` runs: the keys of steps
    /// `i..` in the order they will be fetched ([`Self::key_look_ahead`]) are announced, so
    /// that the store reads the next bootstrap's first keys during the steps before it and the
    /// next linear layer's rotations during the bootstrap (the bootstrap's and the linear
    /// transforms' own announcements then find them pending and keep the schedule); an
    /// activation (products only) holds the relinearization key through the step, so that a
    /// store under a budget does not evict it between the products. Returns the held key.
    pub(super) fn hold_keys_for(&self, i: usize) -> Result<Option<Arc<KeySwitchKey>>> {
        let (Some(keys), Some(st)) = (self.eval.key_provider(), self.plan.steps.get(i)) else {
            return Ok(None);
        };
        let products = matches!(st.op, StepOp::Poly { .. } | StepOp::Square)
            && self.plan.needs_relinearization();
        let order = self.key_look_ahead(i);
        if !order.is_empty() {
            keys.prefetch_uses(&order);
        }
        Ok(if products {
            Some(keys.relinearization_key()?)
        } else {
            None
        })
    }

    /// The evaluation keys of steps `i..` in fetch order, each with the level of the
    /// ciphertext it switches: a packed linear layer's rotations (at its input's level), an
    /// activation's relinearization key, a bootstrap's whole key schedule
    /// ([`Bootstrapper::key_uses`]); up to and including the first linear layer with
    /// rotations after the next bootstrap. A store trims it to what its budget can read ahead. Each step's own
    /// uses are computed once, when the engine is built.
    pub fn key_look_ahead(&self, i: usize) -> Vec<KeyUse> {
        let mut out = Vec::new();
        let mut after_bootstrap = false;
        for (st, uses) in self.plan.steps.iter().zip(&self.key_uses).skip(i) {
            let bootstrap = matches!(st.op, StepOp::Bootstrap { .. });
            if bootstrap && after_bootstrap {
                break;
            }
            out.extend_from_slice(uses);
            after_bootstrap |= bootstrap;
            if after_bootstrap && matches!(st.op, StepOp::Linear(_)) && !uses.is_empty() {
                break;
            }
        }
        out
    }

    /// The keys step `st` fetches, in order, with their levels: a packed linear layer's
    /// transform rotations at the level above its output's and its folds, after the rescale,
    /// at the output's; an activation's relinearization key; a bootstrap's schedule.
    pub(super) fn step_key_uses(
        plan: &Plan,
        bootstrapper: Option<&Bootstrapper>,
        st: &Step,
    ) -> Vec<KeyUse> {
        let n = plan.params.degree();
        let rotation = |s: i64, level: usize| KeyUse {
            kind: KeyKind::Galois(galois_element_for_rotation(n, s)),
            level,
        };
        match (&st.op, &st.packed) {
            (StepOp::Linear(_), Some(p)) if plan.mode == Mode::Latency => {
                let mut out: Vec<KeyUse> = p
                    .transform_rotation_steps()
                    .map(|steps| {
                        steps
                            .into_iter()
                            .filter(|s| *s != 0)
                            .map(|s| rotation(s, st.level + 1))
                            .collect()
                    })
                    .unwrap_or_default();
                out.extend(
                    p.fold_steps
                        .iter()
                        .filter(|s| **s != 0)
                        .map(|&s| rotation(s, st.level)),
                );
                out
            }
            (StepOp::Poly { .. } | StepOp::Square, _) if plan.needs_relinearization() => {
                vec![KeyUse {
                    kind: KeyKind::Relinearization,
                    level: st.level,
                }]
            }
            (StepOp::Bootstrap { .. }, _) => bootstrapper.map(|b| b.key_uses()).unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}
