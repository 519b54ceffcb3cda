//! Scheme-agnostic RLWE: parameters, keys, hybrid key switching, and the
//! [`EvalKeyProvider`] seam through which evaluators obtain evaluation keys.

pub mod keygen;
pub mod keys;
pub mod keyswitch;
pub mod ks_cost;
pub mod params;
pub mod secret;
pub mod storage;

pub use keygen::{galois_element_conjugate, galois_element_for_rotation, EvalKeySet, KeyGenerator};
pub use keys::{EvalKeyProvider, KeyKind, KeyShape, KeySwitchKey, KeyUse, MaxLevel};
pub use ks_cost::{KeySwitching, KsDemand};
pub use params::{
    Parameters, ParametersIntent, ParametersLiteral, Preset, SecretDistribution, Security,
};
pub use secret::{KeyId, PublicKey, SecretKey};
pub use storage::LimbStorage;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod level_tests;
