//! CKKS plaintexts and ciphertexts: RNS polynomials in evaluation form with a level, a scale
//! `Δ` (tracked exactly as an `f64`), and the hash of their parameters.

use crate::ring::{Eval, Poly};
use crate::rlwe::KeyId;

/// An encoded message `m` with `m ≈ Δ·z` in the canonical embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Plaintext {
    poly: Poly<Eval>,
    scale: f64,
    params_hash: u64,
}

impl Plaintext {
    /// Wraps an evaluation-form polynomial.
    pub fn new(poly: Poly<Eval>, scale: f64, params_hash: u64) -> Self {
        Self {
            poly,
            scale,
            params_hash,
        }
    }
    /// The polynomial.
    pub fn poly(&self) -> &Poly<Eval> {
        &self.poly
    }
    /// Level (limbs − 1).
    pub fn level(&self) -> usize {
        self.poly.level()
    }
    /// Scale `Δ`.
    pub fn scale(&self) -> f64 {
        self.scale
    }
    /// Hash of the parameters.
    pub fn params_hash(&self) -> u64 {
        self.params_hash
    }
}

/// A CKKS ciphertext `(c_0, c_1[, c_2])` with `Σ c_i s^i ≈ m` over `Q_l`.
///
/// A fresh secret-key ciphertext may carry the `seed` from which `c_1` was expanded, so that
/// serialization can store 32 bytes instead of `c_1` (about half the size).
///
/// It carries the [`KeyId`] of the secret it is under (plaintexts carry none: they are
/// key-independent). Decryption, key switching and operations combining two ciphertexts check
/// it. A ciphertext made by [`from_parts`](Self::from_parts) has none until
/// [`with_key_id`](Self::with_key_id) gives it one, and fails closed: it cannot be decrypted,
/// key-switched, or combined with a ciphertext that has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Ciphertext {
    pub(crate) c: Vec<Poly<Eval>>,
    pub(crate) scale: f64,
    pub(crate) params_hash: u64,
    pub(crate) key_id: Option<KeyId>,
    pub(crate) seed: Option<[u8; 32]>,
}

impl Ciphertext {
    /// Builds a ciphertext from its components (2 or 3, same level), without a key identifier
    /// (see the type's documentation; add one with [`with_key_id`](Self::with_key_id)).
    pub fn from_parts(c: Vec<Poly<Eval>>, scale: f64, params_hash: u64) -> crate::Result<Self> {
        if !(2..=3).contains(&c.len()) {
            return Err(crate::Error::OutOfRange {
                what: "ciphertext components",
                found: c.len().to_string(),
                allowed: "2..=3".into(),
            });
        }
        let l = c[0].level();
        if let Some(bad) = c.iter().find(|p| p.level() != l) {
            return Err(crate::Error::LevelMismatch {
                left_what: "component 0",
                left: l,
                right_what: "another component",
                right: bad.level(),
            });
        }
        Ok(Self {
            c,
            scale,
            params_hash,
            key_id: None,
            seed: None,
        })
    }
    /// Sets the identifier of the secret key the ciphertext is under (typically copied from
    /// the ciphertext whose parts were reassembled).
    pub fn with_key_id(mut self, key_id: impl Into<Option<KeyId>>) -> Self {
        self.key_id = key_id.into();
        self
    }
    /// The identifier of the secret key the ciphertext is under.
    pub fn key_id(&self) -> Option<KeyId> {
        self.key_id
    }
    /// Components.
    pub fn parts(&self) -> &[Poly<Eval>] {
        &self.c
    }
    /// Number of components (2, or 3 before relinearization).
    pub fn size(&self) -> usize {
        self.c.len()
    }
    /// Level.
    pub fn level(&self) -> usize {
        self.c[0].level()
    }
    /// Scale `Δ`.
    pub fn scale(&self) -> f64 {
        self.scale
    }
    /// Overrides the recorded scale (the data is unchanged). Crate-internal: users call
    /// [`Evaluator::set_scale`](super::Evaluator::set_scale), a documented reinterpretation.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn set_scale(&mut self, scale: f64) {
        self.scale = scale;
    }
    /// Hash of the parameters.
    pub fn params_hash(&self) -> u64 {
        self.params_hash
    }
    /// Seed of `c_1` for fresh secret-key encryptions.
    pub fn seed(&self) -> Option<[u8; 32]> {
        self.seed
    }
}
