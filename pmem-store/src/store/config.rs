//! Settings and reports: [`StoreConfig`], [`Verify`], [`RecoveryReport`], [`VerifyReport`],
//! [`StoreStats`].
use crate::error::StoreError;

/// When mapped payloads are checked against their checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verify {
    /// Every time an object is mapped (default: a corrupted object is never returned).
    EveryMap,
    /// The first time an object (generation) is mapped by this process.
    FirstMap,
    /// Never (trust the storage; `verify()` still checks on request).
    Never,
}

/// Settings for [`Store::create`](super::Store::create) and [`Store::open`](super::Store::open).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `create`: bind the store to these parameters (puts of other hashes are refused).
    /// `open`: the parameters expected — a store bound to others is refused, and `get` refuses
    /// objects made for others.
    pub params_hash: Option<u64>,
    /// DRAM budget in bytes for mapped objects (default 1 GiB).
    pub budget_bytes: u64,
    /// Size at which a new segment file is started (default 1 GiB; larger objects get a
    /// segment of their own).
    pub segment_bytes: u64,
    /// Payload checksum policy.
    pub verify: Verify,
    /// Drop page-cache pages of evicted and newly written objects (`posix_fadvise(DONTNEED)`),
    /// so that the store's footprint in DRAM, page cache included, stays near the budget.
    pub drop_page_cache: bool,
    /// Open without the writer lock; writes are refused.
    pub read_only: bool,
    /// Refuse to open an index whose last record is torn, instead of dropping it.
    pub strict: bool,
    /// Run the background prefetch thread.
    pub prefetch: bool,
    /// Writable open only: discard a damaged committed record at the end of the index
    /// ([`crate::StoreError::DamagedRecord`]) instead of refusing to open. Whatever that record
    /// committed (an object, or a delete) is lost. Off by default; see
    /// [`StoreConfig::discard_damaged_tail`].
    pub discard_damaged_tail: bool,
    /// Test hook: record every file-system mutation (power-loss tests). `None` by default.
    #[doc(hidden)]
    pub recorder: Option<std::sync::Arc<crate::fsio::Recorder>>,
}

impl StoreConfig {
    /// Defaults: given parameters, 1 GiB budget, 1 GiB segments, verify every map, drop page
    /// cache, writable, lenient recovery, prefetch on.
    pub fn new(params_hash: Option<u64>) -> Self {
        Self {
            params_hash,
            budget_bytes: 1 << 30,
            segment_bytes: 1 << 30,
            verify: Verify::EveryMap,
            drop_page_cache: true,
            read_only: false,
            strict: false,
            prefetch: true,
            discard_damaged_tail: false,
            recorder: None,
        }
    }
    /// Sets the DRAM budget.
    pub fn budget(mut self, bytes: u64) -> Self {
        self.budget_bytes = bytes;
        self
    }
    /// Sets the segment size.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }
    /// Sets the checksum policy.
    pub fn verify(mut self, v: Verify) -> Self {
        self.verify = v;
        self
    }
    /// Sets whether page cache is dropped for evicted objects.
    pub fn drop_page_cache(mut self, yes: bool) -> Self {
        self.drop_page_cache = yes;
        self
    }
    /// Opens read-only (no lock; concurrent with a writer).
    pub fn read_only(mut self, yes: bool) -> Self {
        self.read_only = yes;
        self
    }
    /// Refuses a torn index tail instead of recovering.
    pub fn strict(mut self, yes: bool) -> Self {
        self.strict = yes;
        self
    }
    /// Enables or disables the prefetch thread.
    pub fn prefetch(mut self, yes: bool) -> Self {
        self.prefetch = yes;
        self
    }
    /// Repair: a writable open discards a damaged committed last index record (truncating
    /// the index before it) instead of refusing with [`crate::StoreError::DamagedRecord`].
    /// The object that record committed is lost; use only after inspecting the store
    /// read-only. `home-store repair DIR --discard-damaged-tail` does this.
    pub fn discard_damaged_tail(mut self, yes: bool) -> Self {
        self.discard_damaged_tail = yes;
        self
    }
}

/// A damaged committed record found at the end of the index (see
/// [`crate::recovery::Tail::Damaged`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedTail {
    /// Byte offset of the record in the index.
    pub offset: u64,
    /// Bytes from there to the end of the index.
    pub bytes: u64,
    /// What was expected and what was found.
    pub reason: String,
    /// Whether this open discarded it (writable open with
    /// [`StoreConfig::discard_damaged_tail`]); otherwise it is kept, and `verify` fails.
    pub discarded: bool,
}

/// What `open` found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Committed records read.
    pub records: u64,
    /// Bytes of torn (uncommitted) records dropped at the end of the index.
    pub torn_bytes: u64,
    /// Why the first dropped record was refused.
    pub torn_reason: Option<String>,
    /// A damaged committed record at the end of the index (not a torn append): kept (a
    /// read-only open serves the records before it and `verify` fails) or, on request,
    /// discarded.
    pub damaged: Option<DamagedTail>,
    /// Segment files holding no committed object, removed (leftovers of interrupted puts or
    /// compactions).
    pub orphan_segments_removed: Vec<String>,
    /// Segments that cannot be read (damaged header, missing file): their objects fail on `get`.
    pub bad_segments: Vec<String>,
}

/// Result of [`Store::verify`](super::Store::verify).
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Objects checked.
    pub objects: u64,
    /// Payload bytes checked.
    pub bytes: u64,
    /// One error per object that failed.
    pub failures: Vec<StoreError>,
}

/// Counters and sizes of an open store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStats {
    /// Objects.
    pub objects: u64,
    /// Sum of their payload bytes.
    pub payload_bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// Bytes of segment files on disk (apparent size).
    pub segment_file_bytes: u64,
    /// Bytes of the index file.
    pub index_bytes: u64,
    /// The DRAM budget.
    pub budget_bytes: u64,
    /// Bytes mapped now (cached or held by callers).
    pub resident_bytes: u64,
    /// Cache hits, misses, prefetched mappings and evictions since open.
    pub hits: u64,
    /// See `hits`.
    pub misses: u64,
    /// See `hits`.
    pub prefetched: u64,
    /// See `hits`.
    pub evictions: u64,
}
