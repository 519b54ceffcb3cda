//! The crate's one error type.
//!
//! Every variant names the file or object involved and says what was expected and what was
//! found, so that a failure can be diagnosed from its message alone.

use crate::object::ObjectType;
use std::path::PathBuf;
use thiserror::Error;

/// Errors returned by `pmem-store`. Marked `#[non_exhaustive]`: new failure modes may be added.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store directory does not exist.
    #[error("store directory {path} does not exist: expected a directory made by Store::create")]
    MissingDirectory {
        /// The directory asked for.
        path: PathBuf,
    },
    /// The directory exists but holds no store (no index file).
    #[error("{path} is not a HomE store: expected an index file {expected}, found none")]
    NotAStore {
        /// The directory asked for.
        path: PathBuf,
        /// The index file that should be there.
        expected: PathBuf,
    },
    /// `create` on a directory that already holds a store.
    #[error("cannot create a store in {path}: expected no index file, found {found}")]
    AlreadyExists {
        /// The directory asked for.
        path: PathBuf,
        /// The index file found.
        found: PathBuf,
    },
    /// Another writer holds the store's lock file.
    #[error("store {path} is locked by another writer (lock file {lock}, held by {holder}); expected no other writer — open read-only, or wait for it to close")]
    Locked {
        /// The store directory.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// What the lock file says about its holder (a process id), if anything.
        holder: String,
    },
    /// An operating-system call failed.
    #[error("I/O error while {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The index header or a committed index record is damaged.
    #[error("corrupted index {path} at byte {offset}: {reason}")]
    CorruptIndex {
        /// The index file.
        path: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What was expected and what was found.
        reason: String,
    },
    /// The last index record is complete but damaged: a committed record, not a torn append.
    #[error("damaged committed record in index {path} at byte {offset} ({bytes} bytes to the end): {reason}; expected an intact record or a torn (incomplete) append, found neither, so it is kept: open read-only to inspect the store, or discard the record by name (StoreConfig::discard_damaged_tail, `home-store repair --discard-damaged-tail`), losing what it committed")]
    DamagedRecord {
        /// The index file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// Bytes from the record to the end of the index.
        bytes: u64,
        /// What was expected and what was found.
        reason: String,
    },
    /// The index is shorter than its header, or (in strict mode) ends in a torn record.
    #[error("truncated index {path}: expected at least {expected} bytes, found {found}")]
    TruncatedIndex {
        /// The index file.
        path: PathBuf,
        /// Bytes needed.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// A segment file's header is damaged, or the segment is missing.
    #[error("corrupted segment {path}: {reason}")]
    CorruptSegment {
        /// The segment file.
        path: PathBuf,
        /// What was expected and what was found.
        reason: String,
    },
    /// A segment file is shorter than an object it holds.
    #[error("truncated segment {path}: object {key:?} needs bytes up to {expected}, the file has {found}")]
    TruncatedSegment {
        /// The segment file.
        path: PathBuf,
        /// The object.
        key: String,
        /// End offset the object needs.
        expected: u64,
        /// File length found.
        found: u64,
    },
    /// An object's payload does not match its committed checksum.
    #[error("corrupted object {key:?} in {path} at offset {offset}: checksum expected {expected:016x}, found {found:016x}")]
    CorruptObject {
        /// The object.
        key: String,
        /// Its segment file.
        path: PathBuf,
        /// Its offset in the segment.
        offset: u64,
        /// Checksum in the index.
        expected: u64,
        /// Checksum of the bytes found.
        found: u64,
    },
    /// A store or object made for other parameters.
    #[error(
        "parameter mismatch for {what}: expected parameters {expected:016x}, found {found:016x}"
    )]
    ParamsMismatch {
        /// The store or object concerned.
        what: String,
        /// Hash of the parameters expected.
        expected: u64,
        /// Hash of the parameters found.
        found: u64,
    },
    /// No object under this key.
    #[error("object {key:?} not found in store {path}")]
    NotFound {
        /// The key asked for.
        key: String,
        /// The store directory.
        path: PathBuf,
    },
    /// The object exists with another type than the one asked for.
    #[error("object {key:?} has type {found}, expected {expected}")]
    TypeMismatch {
        /// The object.
        key: String,
        /// Type asked for.
        expected: ObjectType,
        /// Type stored.
        found: ObjectType,
    },
    /// One object is larger than the whole DRAM budget.
    #[error("object {key:?} of {needed} bytes does not fit the DRAM budget: expected a budget of at least {needed} bytes, found {budget}")]
    BudgetTooSmall {
        /// The object.
        key: String,
        /// Its size.
        needed: u64,
        /// The budget.
        budget: u64,
    },
    /// The budget is held by live handles: nothing can be evicted to map another object.
    #[error("DRAM budget exhausted mapping {key:?}: {needed} bytes needed, {pinned} of the {budget}-byte budget held by live handles (drop handles to free it)")]
    BudgetExhausted {
        /// The object.
        key: String,
        /// Its size.
        needed: u64,
        /// Bytes held by handles the caller still owns.
        pinned: u64,
        /// The budget.
        budget: u64,
    },
    /// A write on a store opened read-only.
    #[error("{op} needs a writable store, found one opened read-only")]
    ReadOnly {
        /// The refused operation.
        op: &'static str,
    },
    /// A key that cannot be stored.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// Why it was refused.
        reason: String,
    },
    /// An object that cannot be stored or used as asked (bad metadata, wrong shape).
    #[error("invalid object {key:?}: {reason}")]
    InvalidObject {
        /// The object.
        key: String,
        /// What was expected and what was found.
        reason: String,
    },
    /// A file written by an unsupported format version: version-1 indexes predate the torn /
    /// damaged distinction, version-2 indexes numbered object types before the registry shared
    /// with `he-core` ([`crate::format::version_hint`]); neither is read by this build.
    #[error("unsupported format version in {path}: expected {expected}, found {found} ({hint}; a store written by another build of pmem-store: copy its objects out with that build)")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Version this build reads.
        expected: u32,
        /// Version found.
        found: u32,
        /// What differs in the version found.
        hint: &'static str,
    },
    /// A `put` of a secret key, by its type or by its payload (a serialized secret-key blob
    /// under any type): a store holds what a server may see, never a secret.
    #[error("refusing to store object {key:?}: it is a secret key ({reason}); expected an object a server may hold — keep secret keys with their owner (he_core::serialize::secret_key_to_bytes)")]
    SecretKeyRefused {
        /// The object key.
        key: String,
        /// How it was recognised.
        reason: &'static str,
    },
    /// An object's payload (intact per its checksum) that does not decode as its type: a
    /// truncated or mislabelled blob, one of other parameters, out-of-range residues.
    #[error("object {key:?} of type {ty} does not decode: {source}")]
    Undecodable {
        /// The object.
        key: String,
        /// Its type.
        ty: ObjectType,
        /// `he-core`'s reason.
        #[source]
        source: he_core::Error,
    },
    /// An error from `he-core` (building a key from a mapped object).
    #[error(transparent)]
    Core(#[from] he_core::Error),
}

/// Result alias with the crate's [`StoreError`].
pub type Result<T> = std::result::Result<T, StoreError>;

/// Wraps an `io::Error` with the operation and path.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { op, path, source }
}

/// Maps a store error met while serving the object `name` of kind `want` to he-core's error
/// type, for the providers that serve objects to he-core (`PmemWeightStore`, `PmemSpill`):
/// absent → [`he_core::Error::MissingObject`], another kind →
/// [`he_core::Error::ObjectKindMismatch`], other parameters →
/// [`he_core::Error::ParameterMismatch`], a blob that does not decode → he-core's own error;
/// I/O and integrity failures travel as [`he_core::Error::Storage`] with the store's full
/// message, prefixed by `provider`.
pub(crate) fn object_error_to_core(
    e: StoreError,
    name: &str,
    want: ObjectType,
    provider: &str,
) -> he_core::Error {
    match e {
        StoreError::NotFound { key, path } => he_core::Error::MissingObject {
            kind: want,
            name: name.to_string(),
            reason: format!("no object {key:?} in the store {}", path.display()),
        },
        StoreError::TypeMismatch { found, .. } => he_core::Error::ObjectKindMismatch {
            name: name.to_string(),
            expected: want,
            found,
        },
        StoreError::ParamsMismatch {
            expected, found, ..
        } => he_core::Error::ParameterMismatch { expected, found },
        StoreError::Undecodable { source, .. } | StoreError::Core(source) => source,
        other => he_core::Error::Storage(format!("{provider}: {other}")),
    }
}
