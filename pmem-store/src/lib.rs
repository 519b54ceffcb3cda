//! # pmem-store — the memory-mapped, crash-consistent tier of HomE
//!
//! A [`Store`] is a directory of append-only segment files holding typed objects
//! (ciphertexts, plaintext weights, relinearization and Galois keys, tensors, bytes) and one
//! append-only index of checksummed records. Payloads are laid out exactly as `he-core` keeps
//! them in memory (limb-major `u64` residues, page-aligned), so a mapped object is used in
//! place: [`MappedObject`] implements [`he_core::rlwe::LimbStorage`], and [`PmemKeyStore`]
//! implements [`he_core::rlwe::EvalKeyProvider`] for evaluators that fetch Galois keys lazily.
//! Pre-encoded weights (linear transforms, plaintexts) are stored as their `he-core` blobs
//! ([`Store::put_transform`], [`Store::put_plaintext`]) and served by [`PmemWeightStore`],
//! which implements [`he_core::circuits::weights::WeightProvider`]. Object types are
//! `he-core`'s one registry ([`ObjectType`] is [`he_core::serialize::ObjectKind`]), so a tag
//! means the same in a store record and in a serialized blob; secret keys are refused.
//!
//! A DRAM budget bounds the bytes mapped at any time; an LRU cache keeps recently used
//! objects mapped; a prefetch thread maps and reads ahead the objects of a given access
//! schedule and evicts (unmaps, and drops from the page cache) those no longer needed.
//!
//! Durability: `put` writes the payload at a fresh place and flushes it, then appends and
//! flushes an index record (generation counter + CRC-32) naming it; recovery keeps the intact
//! prefix of the index, drops a torn tail and keeps (and reports) a damaged committed record
//! ([`recovery`]). See the crate README for the on-disk format and the argument; the
//! power-loss test (`tests/powerloss.rs`) checks it over a recording file layer ([`fsio`]).
//!
//! Integrity: the CRC-32 and XXH3-64 checksums detect accidental corruption (bit flips, media
//! errors, torn writes), not tampering. They are not MACs: whoever can write the files can
//! forge an object together with its checksum.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod cache;
pub mod error;
pub mod format;
pub mod fsio;
mod keys;
pub mod object;
pub mod recovery;
mod spill;
mod store;
pub mod sys;
mod weights;

pub use cache::{MappedObject, ObjectHandle, ScheduleStream};
pub use error::{Result, StoreError};
pub use format::PAYLOAD_ALIGN;
pub use keys::{decode_key, PmemKeyStore};
pub use object::{ObjectInfo, ObjectMeta, ObjectType};
pub use spill::PmemSpill;
pub use store::{
    DamagedTail, RecoveryReport, Store, StoreConfig, StoreStats, Verify, VerifyReport, INDEX_FILE,
    LOCK_FILE,
};
pub use weights::PmemWeightStore;
