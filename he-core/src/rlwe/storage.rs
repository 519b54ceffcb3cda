//! Storage of large objects (evaluation keys) behind a type-erased handle, so that an owned
//! buffer, a memory-mapped file region or a device-staged buffer all serve the same evaluator
//! without a copy (after tfhe-rs' storage-generic entities).

use crate::ring::Limbs;
use std::fmt::Debug;

/// Read-only residue words of an object: any contiguous `&[u64]`.
///
/// Implemented by owned buffers here and by memory-mapped regions in `pmem-store`.
pub trait LimbStorage: Send + Sync + Debug {
    /// The words, limb-major.
    fn words(&self) -> &[u64];
}

impl LimbStorage for Limbs {
    fn words(&self) -> &[u64] {
        self.as_slice()
    }
}

impl LimbStorage for Vec<u64> {
    fn words(&self) -> &[u64] {
        self.as_slice()
    }
}
