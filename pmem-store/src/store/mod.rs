//! The store: a directory of segment files and one append-only, checksummed index.

use crate::cache::{Cache, Mode, ObjectHandle, ScheduleStream, Segment};
use crate::error::{io_err, Result, StoreError};
use crate::format::IndexHeader;
use crate::fsio::{Io, Site};
use crate::object::{ObjectInfo, ObjectMeta, ObjectType};
use he_core::rlwe::KeySwitchKey;
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use xxhash_rust::xxh3::Xxh3;

/// Name of the index file in a store directory.
pub const INDEX_FILE: &str = "index.log";
/// Name of the writer's lock file.
pub const LOCK_FILE: &str = "LOCK";
const COMPACT_TMP: &str = "index.log.compact";
const CREATE_TMP: &str = "index.log.create";

fn segment_name(id: u32) -> String {
    format!("seg-{id:08}.dat")
}

fn parse_segment_name(name: &str) -> Option<u32> {
    name.strip_prefix("seg-")?
        .strip_suffix(".dat")?
        .parse()
        .ok()
}

mod compact;
mod config;
mod lock;
mod map;
mod open;
mod prefetch;
mod verify;
mod write;

use prefetch::prefetch_loop;

pub use config::{DamagedTail, RecoveryReport, StoreConfig, StoreStats, Verify, VerifyReport};

struct IndexState {
    objects: BTreeMap<String, ObjectInfo>,
    segments: BTreeMap<u32, Arc<Segment>>,
    /// Referenced segments that could not be opened, with the reason.
    missing: BTreeMap<u32, String>,
}

struct Writer {
    _lock: File,
    index: File,
    index_len: u64,
    next_generation: u64,
    active: Option<(Arc<Segment>, u64)>,
    next_segment: u32,
    /// Set when a failed write could not be rolled back: further writes are refused.
    poisoned: Option<String>,
}

pub(crate) struct Inner {
    dir: PathBuf,
    config: StoreConfig,
    header: IndexHeader,
    index: RwLock<IndexState>,
    writer: Option<Mutex<Writer>>,
    pub(crate) cache: Cache,
    io: Io,
    verified: Mutex<HashSet<u64>>,
    recovery: RecoveryReport,
}

/// A store of typed objects in memory-mapped segment files, with a DRAM budget.
///
/// Durability: when [`Store::put`] returns, the payload has been written and flushed
/// (`fdatasync`, or a cache-line flush on PMEM) *before* a checksummed index record naming it
/// was appended and flushed; [`Store::open`] keeps exactly the records whose checksum and
/// generation are intact, so every object whose `put` returned survives a crash, and a torn
/// write is never taken for an object. Payload checksums catch later damage on map; a
/// damaged committed last record is kept and reported ([`StoreError::DamagedRecord`]), never
/// dropped as if it were a torn write. Checksums detect corruption, not tampering (they are
/// not MACs).
///
/// One writer per directory (an exclusive `flock` on `LOCK`, taken by `create` and writable
/// `open`); any number of read-only
/// openers, each seeing the index as of its `open`. All methods take `&self`; the store is
/// `Send + Sync`.
pub struct Store {
    inner: Arc<Inner>,
    prefetcher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .field("params_hash", &self.inner.header.params_hash)
            .field("budget", &self.inner.cache.budget)
            .finish()
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_id() -> u64 {
    let mut h = Xxh3::new();
    h.update(&now_unix().to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    let t = std::time::Instant::now();
    h.update(format!("{t:?}").as_bytes());
    h.update(&(&t as *const _ as usize).to_le_bytes());
    h.digest()
}

impl Store {
    /// Creates a new, empty store in `dir` (created if missing; must not already hold a
    /// store) and opens it for writing. With `config.params_hash = Some(h)` the store is bound
    /// to parameters `h`.
    ///
    /// Durability: the index header is written to a temporary file, flushed, renamed into
    /// place and the directory flushed, so a crash leaves either no store or a valid empty one.
    pub fn create(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Self> {
        let dir = dir.as_ref();
        if config.read_only {
            return Err(StoreError::ReadOnly { op: "create" });
        }
        let io = Io::new(config.recorder.clone());
        io.create_dir_all(dir)?;
        // The same writer lock as `open`, before anything is written, held into the open.
        let lock = lock::acquire(dir, &io)?;
        let index_path = dir.join(INDEX_FILE);
        if index_path.exists() {
            return Err(StoreError::AlreadyExists {
                path: dir.to_path_buf(),
                found: index_path,
            });
        }
        let header = IndexHeader {
            params_hash: config.params_hash,
            store_id: random_id(),
            first_generation: 1,
            created_unix: now_unix(),
        };
        let tmp = dir.join(CREATE_TMP);
        {
            let f = io.create_truncate(&tmp, "creating")?;
            io.write_at(&f, &tmp, 0, &header.encode())?;
            io.sync_data(&f, &tmp, Site::CreateIndexData)?;
        }
        io.rename(&tmp, &index_path, "renaming into place")?;
        io.sync_dir(dir, Site::CreateIndexName)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = io.sync_dir(parent, Site::CreateParentDir);
        }
        Self::start(Inner::open(dir, config, Some(lock))?)
    }

    /// Opens the store in `dir`: takes the writer lock (unless `read_only`), reads the index,
    /// drops a torn tail (truncating it when writable), refuses a damaged committed last
    /// record when writable (unless [`StoreConfig::discard_damaged_tail`]), removes orphan segment files (when
    /// writable) and starts the prefetch thread.
    ///
    /// Errors: [`StoreError::MissingDirectory`], [`StoreError::NotAStore`],
    /// [`StoreError::Locked`], [`StoreError::ParamsMismatch`] (store bound to other parameters
    /// than `config.params_hash`), [`StoreError::TruncatedIndex`], [`StoreError::CorruptIndex`],
    /// [`StoreError::DamagedRecord`] (writable open of an index whose last record is a damaged
    /// committed record rather than a torn append; a read-only open reports it in
    /// [`Store::recovery`] and [`Store::verify`] fails), [`StoreError::UnsupportedVersion`].
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Self> {
        Self::start(Inner::open(dir.as_ref(), config, None)?)
    }

    fn start(inner: Inner) -> Result<Self> {
        let inner = Arc::new(inner);
        let prefetcher = if inner.config.prefetch {
            let inner2 = Arc::clone(&inner);
            let h = std::thread::Builder::new()
                .name("pmem-prefetch".into())
                .spawn(move || prefetch_loop(&inner2))
                .map_err(io_err("starting prefetch thread", &inner.dir))?;
            Some(h)
        } else {
            None
        };
        Ok(Self { inner, prefetcher })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
    /// Parameters the store is bound to (from its header), if any.
    pub fn bound_params_hash(&self) -> Option<u64> {
        self.inner.header.params_hash
    }
    /// Parameters objects must have to be returned by `get`: the ones given at open, else the
    /// ones the store is bound to.
    pub fn params_hash(&self) -> Option<u64> {
        self.inner.expected_hash()
    }
    /// The DRAM budget in bytes.
    pub fn budget(&self) -> u64 {
        self.inner.cache.budget
    }
    /// What `open` found and repaired.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.inner.recovery
    }
    /// Whether the store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.inner.writer.is_none()
    }

    /// Stores `payload` under `key` with metadata `meta`, replacing any object of that key.
    ///
    /// Durability: returns only after the payload (at a fresh, never-reused place in a
    /// segment) and then the index record committing it are both flushed to stable storage.
    pub fn put(&self, key: &str, meta: &ObjectMeta, payload: &[u8]) -> Result<ObjectInfo> {
        self.inner.put(key, meta, payload)
    }

    /// [`Store::put`] of `u64` words (limb-major residues), stored as little-endian bytes.
    pub fn put_words(&self, key: &str, meta: &ObjectMeta, words: &[u64]) -> Result<ObjectInfo> {
        #[cfg(target_endian = "little")]
        {
            self.put(key, meta, bytemuck::cast_slice(words))
        }
        #[cfg(not(target_endian = "little"))]
        {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            self.put(key, meta, &bytes)
        }
    }

    /// Stores a key-switching key with its shape, kind and [`KeyId`](he_core::rlwe::KeyId)
    /// (in the caller metadata; [`Store::get_key`] restores it).
    pub fn put_key(&self, key: &str, ksk: &KeySwitchKey) -> Result<ObjectInfo> {
        let meta = ObjectMeta::for_key(ksk).with_user(crate::keys::key_id_meta(ksk.key_id()));
        self.put_words(key, &meta, ksk.words())
    }

    /// Maps the object under `key` (or returns it from the cache): zero-copy, checksum-verified
    /// per the [`Verify`] policy, counted against the DRAM budget while the handle lives.
    ///
    /// Errors: [`StoreError::NotFound`], [`StoreError::ParamsMismatch`],
    /// [`StoreError::CorruptObject`], [`StoreError::TruncatedSegment`],
    /// [`StoreError::CorruptSegment`], [`StoreError::BudgetTooSmall`],
    /// [`StoreError::BudgetExhausted`].
    pub fn get(&self, key: &str) -> Result<ObjectHandle> {
        let info = self.inner.lookup(key)?;
        self.inner.check_params(&info)?;
        self.inner
            .map_cached(&info, Mode::Foreground)?
            .ok_or_else(|| StoreError::NotFound {
                key: key.to_string(),
                path: self.inner.dir.clone(),
            })
    }

    /// [`Store::get`], refusing an object of another type.
    pub fn get_typed(&self, key: &str, ty: ObjectType) -> Result<ObjectHandle> {
        let info = self.inner.lookup(key)?;
        if info.meta.ty != ty {
            return Err(StoreError::TypeMismatch {
                key: key.to_string(),
                expected: ty,
                found: info.meta.ty,
            });
        }
        self.get(key)
    }

    /// A key-switching key stored with [`Store::put_key`], used in place from the mapping.
    pub fn get_key(&self, key: &str) -> Result<KeySwitchKey> {
        let h = self.get(key)?;
        let meta = h.info().meta.clone();
        crate::keys::decode_key(key, &meta, h)
    }

    /// The index entry of `key`, if present (no mapping).
    pub fn info(&self, key: &str) -> Option<ObjectInfo> {
        self.inner.read_index().objects.get(key).cloned()
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.inner.read_index().objects.contains_key(key)
    }

    /// The index entries of the objects whose key starts with `prefix`, sorted by key (a
    /// range of the index: no mapping, no scan of the other objects).
    pub fn list_prefix(&self, prefix: &str) -> Vec<ObjectInfo> {
        self.inner
            .read_index()
            .objects
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// All objects, sorted by key.
    pub fn list(&self) -> Vec<ObjectInfo> {
        self.inner.read_index().objects.values().cloned().collect()
    }

    /// Removes `key`. Durable when it returns (a flushed delete record); the space is
    /// reclaimed by [`Store::compact`]. Handles already held stay valid.
    pub fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key)
    }

    /// Rewrites all live objects into fresh segments and a fresh index, then removes the old
    /// segments. Crash-safe: the new index replaces the old by an atomic rename only after
    /// every new segment is flushed; before the rename the old index and segments are intact.
    /// Returns the bytes of segment files reclaimed.
    pub fn compact(&self) -> Result<u64> {
        self.inner.compact()
    }

    /// Reads every object (with `pread`, not counted against the budget) and checks its
    /// checksum; failures are collected, not returned early.
    pub fn verify(&self) -> VerifyReport {
        self.inner.verify()
    }

    /// Announces the upcoming access order (object keys; repeats allowed), replacing the
    /// previous schedule. The prefetch thread maps and reads ahead the next objects that fit
    /// in the budget, evicting objects the schedule no longer needs first. Each `get` of a
    /// scheduled key marks its first pending entry done; the schedule moves past done entries
    /// and past pending ones left more than 64 entries behind the furthest done one, so the
    /// gets of one step may come in any order (parallel fetches) and a key announced but never
    /// fetched does not hold the schedule back.
    pub fn prefetch<S: AsRef<str>>(&self, schedule: &[S]) {
        self.inner
            .cache
            .set_schedule(schedule.iter().map(|s| s.as_ref().to_string()).collect());
    }

    /// [`Store::prefetch`], unless every key is already pending in the schedule: a caller that
    /// knows a longer order (a bootstrap's keys, a network's steps) announces it first, and
    /// the inner steps' own announcements, which it covers, leave it in place. Returns whether
    /// the schedule was replaced.
    pub fn announce<S: AsRef<str>>(&self, keys: &[S]) -> bool {
        if !keys.is_empty() && self.inner.cache.all_pending(keys) {
            return false;
        }
        self.prefetch(keys);
        true
    }

    /// [`Store::announce`] within one [`ScheduleStream`]: unless every key is already pending,
    /// the stream's pending entries are replaced by `keys` and the other streams' pending
    /// entries stay, interleaved with them one entry at a time. Two providers sharing a store
    /// (a network's keys and its weights) thus each keep their look-ahead when the other
    /// announces. Returns whether the schedule changed.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pmem_store::{ObjectMeta, ObjectType, ScheduleStream, Store, StoreConfig};
    /// let dir = std::env::temp_dir().join(format!("pmem-doc-streams-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let store = Store::create(&dir, StoreConfig::new(None).budget(1 << 20))?;
    /// for k in ["key/a", "key/b", "weight/x"] {
    ///     store.put(k, &ObjectMeta::new(ObjectType::Bytes, 0), &[7u8; 4096])?;
    /// }
    /// store.announce_in(ScheduleStream::KEYS, &["key/a", "key/b"]);
    /// // The weights' announcement keeps the keys' look-ahead.
    /// assert!(store.announce_in(ScheduleStream::WEIGHTS, &["weight/x"]));
    /// assert!(!store.announce_in(ScheduleStream::KEYS, &["key/b"]));
    /// assert_eq!(store.get("key/a")?.bytes()[0], 7);
    /// # drop(store);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn announce_in<S: AsRef<str>>(&self, stream: ScheduleStream, keys: &[S]) -> bool {
        if !keys.is_empty() && self.inner.cache.all_pending(keys) {
            return false;
        }
        self.inner.cache.set_stream_schedule(
            stream,
            keys.iter().map(|s| s.as_ref().to_string()).collect(),
        );
        true
    }

    /// Sizes and counters.
    pub fn stats(&self) -> StoreStats {
        let idx = self.inner.read_index();
        let objects = idx.objects.len() as u64;
        let payload_bytes = idx.objects.values().map(|o| o.len).sum();
        let segments = idx.segments.len() as u64;
        let segment_file_bytes = idx
            .segments
            .values()
            .filter_map(|s| s.file.metadata().ok())
            .map(|m| m.len())
            .sum();
        drop(idx);
        let index_bytes = fs::metadata(self.inner.dir.join(INDEX_FILE))
            .map(|m| m.len())
            .unwrap_or(0);
        let resident_bytes = self.inner.cache.resident();
        let g = self.inner.cache.lock();
        StoreStats {
            objects,
            payload_bytes,
            segments,
            segment_file_bytes,
            index_bytes,
            budget_bytes: self.inner.cache.budget,
            resident_bytes,
            hits: g.hits,
            misses: g.misses,
            prefetched: g.prefetched,
            evictions: g.evictions,
        }
    }

    /// Drops every cached mapping not held by a caller.
    pub fn clear_cache(&self) {
        self.inner.cache.clear();
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.inner
            .cache
            .shared
            .shutdown
            .store(true, Ordering::SeqCst);
        self.inner.cache.shared.cv.notify_all();
        if let Some(h) = self.prefetcher.take() {
            let _ = h.join();
        }
        self.inner.cache.clear();
    }
}
