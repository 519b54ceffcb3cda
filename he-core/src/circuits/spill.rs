//! The [`CiphertextSpill`] seam: where an evaluation parks ciphertexts it holds but will not
//! need for a while (a residual branch across a block, a skip connection), when the live
//! ones exceed a DRAM budget. [`SpillSet`] keeps their serialized form in memory (for tests
//! and as the reference); `pmem-store`'s `PmemSpill` writes them durably, checksummed, to a
//! store on a file system, and reads them back when they are needed.
//!
//! ```
//! # fn main() -> he_core::Result<()> {
//! use he_core::circuits::spill::{CiphertextSpill, SpillSet};
//! use he_core::ckks::{Encoder, Encryptor};
//! use he_core::rlwe::{Parameters, ParametersLiteral, PublicKey, SecretDistribution, SecretKey,
//!     Security};
//!
//! let params = Parameters::new(ParametersLiteral {
//!     log_n: 10, log_q: vec![55, 45], log_p: vec![60], alpha: None, log_scale: 45.0,
//!     secret: SecretDistribution::UniformTernary, security: Security::InsecureForTesting,
//! })?;
//! let sk = SecretKey::generate(&params)?;
//! let enc = Encryptor::new(&params, PublicKey::generate(&sk)?)?;
//! let ct = enc.encrypt(&Encoder::new(&params)?.encode(&[0.5], 1, params.default_scale())?)?;
//!
//! let spill = SpillSet::new();
//! spill.spill("run0/step7", std::slice::from_ref(&ct))?;
//! assert_eq!(spill.restore("run0/step7", &params)?, vec![ct]);
//! spill.release("run0/step7")?;
//! assert!(matches!(spill.restore("run0/step7", &params),
//!     Err(he_core::Error::MissingObject { .. })));
//! # Ok(())
//! # }
//! ```

use crate::ckks::Ciphertext;
use crate::rlwe::Parameters;
use crate::serialize::{ObjectKind, Serializable};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Parks ciphertexts by name and gives them back. Implementations are `Send + Sync`: one
/// spill area serves concurrent evaluations (which use distinct names).
pub trait CiphertextSpill: Send + Sync {
    /// Stores `cts` under `name` (replacing what was there); when it returns, the caller may
    /// drop its copies.
    fn spill(&self, name: &str, cts: &[Ciphertext]) -> Result<()>;
    /// The ciphertexts stored under `name`, checked against `params`:
    /// [`Error::MissingObject`] when there are none.
    fn restore(&self, name: &str, params: &Arc<Parameters>) -> Result<Vec<Ciphertext>>;
    /// Forgets `name` (nothing happens when it is absent).
    fn release(&self, name: &str) -> Result<()>;
}

/// A [`CiphertextSpill`] in memory, holding each ciphertext's serialized form.
#[derive(Debug, Default)]
pub struct SpillSet {
    parked: Mutex<BTreeMap<String, Vec<Vec<u8>>>>,
}

impl SpillSet {
    /// An empty spill area.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().values().flatten().map(Vec::len).sum()
    }

    /// Names held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<Vec<u8>>>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CiphertextSpill for SpillSet {
    fn spill(&self, name: &str, cts: &[Ciphertext]) -> Result<()> {
        let blobs = cts.iter().map(Serializable::to_bytes).collect();
        self.lock().insert(name.to_string(), blobs);
        Ok(())
    }

    fn restore(&self, name: &str, params: &Arc<Parameters>) -> Result<Vec<Ciphertext>> {
        let g = self.lock();
        let blobs = g.get(name).ok_or_else(|| Error::MissingObject {
            name: name.to_string(),
            kind: ObjectKind::Ciphertext,
            reason: "not in this spill area".into(),
        })?;
        blobs
            .iter()
            .map(|b| Ciphertext::from_bytes(params, b))
            .collect()
    }

    fn release(&self, name: &str) -> Result<()> {
        self.lock().remove(name);
        Ok(())
    }
}
