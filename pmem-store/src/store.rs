//! The store: a directory of segment files and one append-only, checksummed index.

use crate::cache::{Cache, MappedObject, Mode, ObjectHandle, Reservation, Segment};
use crate::error::{io_err, Result, StoreError};
use crate::format::{
    align_up, IndexHeader, Record, SegmentHeader, INDEX_HEADER_LEN, PAYLOAD_ALIGN, RECORD_OVERHEAD,
    SEGMENT_HEADER_LEN,
};
use crate::object::{ObjectInfo, ObjectMeta, ObjectType, MAX_KEY_LEN, MAX_USER_META};
use crate::sys;
use he_core::rlwe::KeySwitchKey;
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

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

/// Settings for [`Store::create`] and [`Store::open`].
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
    /// Segment files holding no committed object, removed (leftovers of interrupted puts or
    /// compactions).
    pub orphan_segments_removed: Vec<String>,
    /// Segments that cannot be read (damaged header, missing file): their objects fail on `get`.
    pub bad_segments: Vec<String>,
}

/// Result of [`Store::verify`].
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
    verified: Mutex<HashSet<u64>>,
    recovery: RecoveryReport,
}

/// A store of typed objects in memory-mapped segment files, with a DRAM budget.
///
/// Durability: when [`Store::put`] returns, the payload has been written and flushed
/// (`fdatasync`, or a cache-line flush on PMEM) *before* a checksummed index record naming it
/// was appended and flushed; [`Store::open`] keeps exactly the records whose checksum and
/// generation are intact, so every object whose `put` returned survives a crash, and a torn
/// write is never taken for an object. Payload checksums catch later damage on map.
///
/// One writer per directory (an exclusive `flock` on `LOCK`); any number of read-only
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

fn validate_key(key: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(StoreError::InvalidKey {
            key: key.chars().take(80).collect(),
            reason: reason.to_string(),
        })
    };
    if key.is_empty() {
        return bad("expected a non-empty key, found an empty one");
    }
    if key.len() > MAX_KEY_LEN {
        return bad(&format!(
            "expected at most {MAX_KEY_LEN} bytes, found {}",
            key.len()
        ));
    }
    if key.contains('\0') {
        return bad("expected no NUL character, found one");
    }
    Ok(())
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
        fs::create_dir_all(dir).map_err(io_err("creating directory", dir))?;
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
            let mut f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
            f.write_all(&header.encode())
                .map_err(io_err("writing", &tmp))?;
            f.sync_all().map_err(io_err("syncing", &tmp))?;
        }
        fs::rename(&tmp, &index_path).map_err(io_err("renaming into place", &index_path))?;
        sys::sync_dir(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = sys::sync_dir(parent);
        }
        Self::open(dir, config)
    }

    /// Opens the store in `dir`: takes the writer lock (unless `read_only`), reads the index,
    /// drops a torn tail (truncating it when writable), removes orphan segment files (when
    /// writable) and starts the prefetch thread.
    ///
    /// Errors: [`StoreError::MissingDirectory`], [`StoreError::NotAStore`],
    /// [`StoreError::Locked`], [`StoreError::ParamsMismatch`] (store bound to other parameters
    /// than `config.params_hash`), [`StoreError::TruncatedIndex`], [`StoreError::CorruptIndex`].
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Self> {
        let inner = Arc::new(Inner::open(dir.as_ref(), config)?);
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

    /// Stores a key-switching key (relinearization or Galois) with its shape and kind.
    pub fn put_key(&self, key: &str, ksk: &KeySwitchKey) -> Result<ObjectInfo> {
        self.put_words(key, &ObjectMeta::for_key(ksk), ksk.words())
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
        let (shape, kind) = h
            .info()
            .meta
            .key_shape()
            .ok_or_else(|| StoreError::TypeMismatch {
                key: key.to_string(),
                expected: ObjectType::GaloisKey,
                found: h.info().meta.ty,
            })?;
        let params = h.info().meta.params_hash;
        Ok(KeySwitchKey::from_storage(shape, kind, params, h)?)
    }

    /// The index entry of `key`, if present (no mapping).
    pub fn info(&self, key: &str) -> Option<ObjectInfo> {
        self.inner.read_index().objects.get(key).cloned()
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.inner.read_index().objects.contains_key(key)
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

    /// Announces the upcoming access order (object keys; repeats allowed). The prefetch thread
    /// maps and reads ahead the next objects that fit in the budget, evicting objects the
    /// schedule no longer needs first; each `get` of a scheduled key advances the schedule.
    pub fn prefetch<S: AsRef<str>>(&self, schedule: &[S]) {
        self.inner
            .cache
            .set_schedule(schedule.iter().map(|s| s.as_ref().to_string()).collect());
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

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let mut f = File::open(path).map_err(io_err("opening", path))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(io_err("reading", path))?;
    Ok(buf)
}

impl Inner {
    fn open(dir: &Path, config: StoreConfig) -> Result<Self> {
        if !dir.is_dir() {
            return Err(StoreError::MissingDirectory {
                path: dir.to_path_buf(),
            });
        }
        let index_path = dir.join(INDEX_FILE);
        if !index_path.exists() {
            return Err(StoreError::NotAStore {
                path: dir.to_path_buf(),
                expected: index_path,
            });
        }
        // Writer lock first, so that no other writer changes files under recovery.
        let lock = if config.read_only {
            None
        } else {
            let lock_path = dir.join(LOCK_FILE);
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock_path)
                .map_err(io_err("opening lock file", &lock_path))?;
            if !sys::try_lock_exclusive(&f, &lock_path)? {
                let holder = fs::read_to_string(&lock_path)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "an unknown process".into());
                return Err(StoreError::Locked {
                    path: dir.to_path_buf(),
                    lock: lock_path,
                    holder,
                });
            }
            let _ = f.set_len(0);
            let _ = f.write_all_at(format!("pid {}\n", std::process::id()).as_bytes(), 0);
            let _ = f.flush();
            Some(f)
        };

        let buf = read_file(&index_path)?;
        if buf.len() < INDEX_HEADER_LEN {
            return Err(StoreError::TruncatedIndex {
                path: index_path,
                expected: INDEX_HEADER_LEN as u64,
                found: buf.len() as u64,
            });
        }
        let header = match IndexHeader::decode(&buf) {
            Ok(h) => h,
            Err((_, Some(found))) => {
                return Err(StoreError::UnsupportedVersion {
                    path: index_path,
                    expected: crate::format::FORMAT_VERSION,
                    found,
                })
            }
            Err((reason, None)) => {
                return Err(StoreError::CorruptIndex {
                    path: index_path,
                    offset: 0,
                    reason,
                })
            }
        };
        if let (Some(expected), Some(found)) = (config.params_hash, header.params_hash) {
            if expected != found {
                return Err(StoreError::ParamsMismatch {
                    what: format!("store {}", dir.display()),
                    expected,
                    found,
                });
            }
        }

        // Replay the log: the committed prefix of intact, consecutive records.
        let mut objects = BTreeMap::new();
        let mut report = RecoveryReport::default();
        let mut at = INDEX_HEADER_LEN;
        let mut gen = header.first_generation;
        while at < buf.len() {
            let reason = match Record::decode(&buf[at..]) {
                Ok((rec, g, used)) if g == gen => {
                    match rec {
                        Record::Put(info) => {
                            objects.insert(info.key.clone(), info);
                        }
                        Record::Delete(k) => {
                            objects.remove(&k);
                        }
                    }
                    at += used;
                    gen += 1;
                    report.records += 1;
                    continue;
                }
                Ok((_, g, _)) => format!("record generation expected {gen}, found {g}"),
                Err(reason) => reason,
            };
            // A torn write can only be the last record: an intact record after it means the
            // index was damaged, and dropping committed records silently is not allowed.
            if let Some((p, g)) = find_later_record(&buf, at + 1, gen) {
                return Err(StoreError::CorruptIndex {
                    path: index_path,
                    offset: at as u64,
                    reason: format!(
                        "{reason}; yet a committed record (generation {g}) follows at byte {p}"
                    ),
                });
            }
            if config.strict {
                return Err(StoreError::TruncatedIndex {
                    path: index_path,
                    expected: (at + RECORD_OVERHEAD) as u64,
                    found: buf.len() as u64,
                });
            }
            report.torn_bytes = (buf.len() - at) as u64;
            report.torn_reason = Some(reason);
            break;
        }

        let mut index_file = None;
        if lock.is_some() {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&index_path)
                .map_err(io_err("opening", &index_path))?;
            if report.torn_bytes > 0 {
                f.set_len(at as u64)
                    .map_err(io_err("truncating torn tail of", &index_path))?;
                f.sync_data().map_err(io_err("syncing", &index_path))?;
            }
            index_file = Some(f);
            for tmp in [COMPACT_TMP, CREATE_TMP] {
                let p = dir.join(tmp);
                if p.exists() {
                    let _ = fs::remove_file(&p);
                }
            }
        }

        // Segments: open the referenced ones, check their headers; remove orphans if writer.
        let referenced: HashSet<u32> = objects.values().map(|o| o.segment).collect();
        let mut max_seen = 0u32;
        let mut segments = BTreeMap::new();
        let mut orphans = Vec::new();
        let mut missing = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(io_err("listing", dir))? {
            let entry = entry.map_err(io_err("listing", dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = parse_segment_name(&name) else {
                continue;
            };
            max_seen = max_seen.max(id);
            if !referenced.contains(&id) {
                orphans.push((name, entry.path()));
            }
        }
        for &id in &referenced {
            max_seen = max_seen.max(id);
            match open_segment(dir, id, header.store_id, lock.is_some()) {
                Ok(seg) => {
                    if let Some(p) = &seg.problem {
                        report
                            .bad_segments
                            .push(format!("{}: {p}", seg.path.display()));
                    }
                    segments.insert(id, Arc::new(seg));
                }
                Err(p) => {
                    report.bad_segments.push(p.clone());
                    missing.insert(id, p);
                }
            }
        }
        if lock.is_some() && !orphans.is_empty() {
            for (name, path) in orphans {
                if fs::remove_file(&path).is_ok() {
                    report.orphan_segments_removed.push(name);
                }
            }
            sys::sync_dir(dir)?;
        }

        let writer = match (lock, index_file) {
            (Some(lock), Some(index)) => {
                // Keep appending to the last segment, after everything in it (committed or not).
                let active = segments
                    .values()
                    .next_back()
                    .filter(|s| s.problem.is_none())
                    .and_then(|s| {
                        let len = s.file.metadata().ok()?.len();
                        let end = align_up(len.max(SEGMENT_HEADER_LEN as u64));
                        (end < config.segment_bytes).then(|| (Arc::clone(s), end))
                    });
                Some(Mutex::new(Writer {
                    _lock: lock,
                    index,
                    index_len: at as u64,
                    next_generation: gen,
                    active,
                    next_segment: max_seen + 1,
                    poisoned: None,
                }))
            }
            _ => None,
        };

        Ok(Self {
            dir: dir.to_path_buf(),
            cache: Cache::new(config.budget_bytes),
            config,
            header,
            index: RwLock::new(IndexState {
                objects,
                segments,
                missing,
            }),
            writer,
            verified: Mutex::new(HashSet::new()),
            recovery: report,
        })
    }

    fn read_index(&self) -> RwLockReadGuard<'_, IndexState> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write_index(&self) -> RwLockWriteGuard<'_, IndexState> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }
    fn writer(&self, op: &'static str) -> Result<MutexGuard<'_, Writer>> {
        let w = self.writer.as_ref().ok_or(StoreError::ReadOnly { op })?;
        let g = w.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = &g.poisoned {
            return Err(StoreError::Io {
                op,
                path: self.dir.clone(),
                source: std::io::Error::other(format!(
                    "store refuses writes after an unrecoverable write failure: {why}"
                )),
            });
        }
        Ok(g)
    }

    fn expected_hash(&self) -> Option<u64> {
        self.config.params_hash.or(self.header.params_hash)
    }

    fn lookup(&self, key: &str) -> Result<ObjectInfo> {
        self.read_index()
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                key: key.to_string(),
                path: self.dir.clone(),
            })
    }

    fn check_params(&self, info: &ObjectInfo) -> Result<()> {
        match self.expected_hash() {
            Some(e) if e != info.meta.params_hash => Err(StoreError::ParamsMismatch {
                what: format!("object {:?}", info.key),
                expected: e,
                found: info.meta.params_hash,
            }),
            _ => Ok(()),
        }
    }

    /// Maps `info` through the cache. `Ok(None)` only in prefetch mode (no room now).
    pub(crate) fn map_cached(&self, info: &ObjectInfo, mode: Mode) -> Result<Option<ObjectHandle>> {
        match self.cache.reserve(info, mode)? {
            Reservation::Hit(h) => Ok(Some(h)),
            Reservation::NoRoom => Ok(None),
            Reservation::Reserved => {
                let mut released = false;
                let r = self
                    .map_object(info, mode != Mode::Foreground, &mut released)
                    .map(Arc::new);
                self.cache.complete(info, &r, released);
                r.map(Some)
            }
        }
    }

    fn segment(&self, id: u32) -> Result<Arc<Segment>> {
        let idx = self.read_index();
        if let Some(s) = idx.segments.get(&id) {
            return Ok(Arc::clone(s));
        }
        let reason = idx
            .missing
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("expected segment {id} to be open, found it unknown"));
        Err(StoreError::CorruptSegment {
            path: self.dir.join(segment_name(id)),
            reason,
        })
    }

    fn map_object(
        &self,
        info: &ObjectInfo,
        populate: bool,
        released: &mut bool,
    ) -> Result<MappedObject> {
        let seg = self.segment(info.segment)?;
        if let Some(p) = &seg.problem {
            return Err(StoreError::CorruptSegment {
                path: seg.path.clone(),
                reason: p.clone(),
            });
        }
        let end = info.offset.saturating_add(info.len);
        let flen = seg
            .file
            .metadata()
            .map_err(io_err("reading size of", &seg.path))?
            .len();
        if info.len > 0 && flen < end {
            // Mapping past the end of a file would fault (SIGBUS) on access: refuse.
            return Err(StoreError::TruncatedSegment {
                path: seg.path.clone(),
                key: info.key.clone(),
                expected: end,
                found: flen,
            });
        }
        let len = usize::try_from(info.len).map_err(|_| StoreError::InvalidObject {
            key: info.key.clone(),
            reason: format!("payload of {} bytes exceeds the address space", info.len),
        })?;
        let map = if len == 0 {
            None
        } else {
            let mut opts = memmap2::MmapOptions::new();
            opts.offset(info.offset).len(len);
            if populate {
                opts.populate();
            }
            // SAFETY: the range lies within the file (checked above) and was committed before
            // this record existed; the store never rewrites committed ranges (segments are
            // append-only, compaction writes new files), so the mapped bytes do not change
            // while mapped. Truncation by another program is outside this contract.
            let m = unsafe { opts.map(&seg.file) }.map_err(io_err("mapping", &seg.path))?;
            if !populate {
                let _ = m.advise(memmap2::Advice::WillNeed);
            }
            Some(m)
        };
        let obj = MappedObject::new(
            info.clone(),
            map,
            Arc::clone(&seg),
            Arc::clone(&self.cache.shared),
            self.config.drop_page_cache,
        );
        *released = true;
        let check = match self.config.verify {
            Verify::EveryMap => true,
            Verify::FirstMap => !self
                .verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&info.generation),
            Verify::Never => false,
        };
        if check {
            let found = xxh3_64(obj.bytes());
            if found != info.checksum {
                return Err(StoreError::CorruptObject {
                    key: info.key.clone(),
                    path: seg.path.clone(),
                    offset: info.offset,
                    expected: info.checksum,
                    found,
                });
            }
            if self.config.verify == Verify::FirstMap {
                self.verified
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(info.generation);
            }
        }
        Ok(obj)
    }

    fn check_put(&self, key: &str, meta: &ObjectMeta) -> Result<()> {
        validate_key(key)?;
        if meta.user.len() > MAX_USER_META {
            return Err(StoreError::InvalidObject {
                key: key.to_string(),
                reason: format!(
                    "user metadata of at most {MAX_USER_META} bytes expected, found {}",
                    meta.user.len()
                ),
            });
        }
        if let Some(e) = self.expected_hash() {
            if e != meta.params_hash {
                return Err(StoreError::ParamsMismatch {
                    what: format!("object {key:?} put into store {}", self.dir.display()),
                    expected: e,
                    found: meta.params_hash,
                });
            }
        }
        Ok(())
    }

    fn put(&self, key: &str, meta: &ObjectMeta, payload: &[u8]) -> Result<ObjectInfo> {
        self.check_put(key, meta)?;
        if let Some((shape, _)) = meta.key_shape() {
            if shape.bytes() != payload.len() {
                return Err(StoreError::InvalidObject {
                    key: key.to_string(),
                    reason: format!(
                        "key shape {shape:?} needs {} bytes, payload has {}",
                        shape.bytes(),
                        payload.len()
                    ),
                });
            }
        }
        let mut w = self.writer("put")?;
        let len = payload.len() as u64;
        let seg = match &w.active {
            Some((s, end))
                if *end == PAYLOAD_ALIGN
                    || end.saturating_add(len) <= self.config.segment_bytes =>
            {
                (Arc::clone(s), *end)
            }
            _ => (self.new_segment(&mut w)?, PAYLOAD_ALIGN),
        };
        let (seg, offset) = seg;
        // Never reuse this range, whatever happens below.
        w.active = Some((Arc::clone(&seg), align_up(offset + len.max(1))));
        sys::write_durable(&seg.file, &seg.path, offset, payload)?;
        let info = ObjectInfo {
            key: key.to_string(),
            meta: meta.clone(),
            segment: seg.id,
            offset,
            len,
            checksum: xxh3_64(payload),
            generation: w.next_generation,
        };
        self.append_record(&mut w, &Record::Put(info.clone()))?;
        self.write_index()
            .objects
            .insert(key.to_string(), info.clone());
        self.cache.invalidate(key);
        if self.config.drop_page_cache {
            sys::drop_page_cache(&seg.file, offset, len);
        }
        Ok(info)
    }

    fn delete(&self, key: &str) -> Result<()> {
        let mut w = self.writer("delete")?;
        if !self.read_index().objects.contains_key(key) {
            return Err(StoreError::NotFound {
                key: key.to_string(),
                path: self.dir.clone(),
            });
        }
        self.append_record(&mut w, &Record::Delete(key.to_string()))?;
        self.write_index().objects.remove(key);
        self.cache.invalidate(key);
        Ok(())
    }

    /// Appends and flushes one record (the commit point). On failure the index is cut back to
    /// its last committed length, so later appends never follow garbage.
    fn append_record(&self, w: &mut Writer, rec: &Record) -> Result<()> {
        let bytes = rec.encode(w.next_generation);
        let path = self.dir.join(INDEX_FILE);
        if let Err(e) = sys::write_durable(&w.index, &path, w.index_len, &bytes) {
            let rollback = w
                .index
                .set_len(w.index_len)
                .and_then(|_| w.index.sync_data());
            if let Err(r) = rollback {
                w.poisoned = Some(format!(
                    "index append failed ({e}) and rollback failed ({r})"
                ));
            }
            return Err(e);
        }
        w.index_len += bytes.len() as u64;
        w.next_generation += 1;
        Ok(())
    }

    /// Creates, initialises and flushes a new segment file (and its directory entry).
    fn new_segment(&self, w: &mut Writer) -> Result<Arc<Segment>> {
        let id = w.next_segment;
        w.next_segment += 1;
        let seg = self.create_segment_file(id)?;
        let seg = Arc::new(seg);
        self.write_index().segments.insert(id, Arc::clone(&seg));
        Ok(seg)
    }

    fn create_segment_file(&self, id: u32) -> Result<Segment> {
        let path = self.dir.join(segment_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("creating segment", &path))?;
        let header = SegmentHeader {
            segment: id,
            store_id: self.header.store_id,
        }
        .encode();
        sys::write_durable(&file, &path, 0, &header)?;
        sys::sync_dir(&self.dir)?;
        Ok(Segment {
            id,
            path,
            file,
            problem: None,
        })
    }

    fn compact(&self) -> Result<u64> {
        let mut w = self.writer("compact")?;
        let (objects, old_segments) = {
            let idx = self.read_index();
            (idx.objects.clone(), idx.segments.clone())
        };
        let old_bytes: u64 = old_segments
            .values()
            .filter_map(|s| s.file.metadata().ok())
            .map(|m| m.len())
            .sum();
        let mut order: Vec<&ObjectInfo> = objects.values().collect();
        order.sort_by_key(|o| (o.segment, o.offset));

        let mut new_segments: Vec<Arc<Segment>> = Vec::new();
        let mut new_infos = BTreeMap::new();
        let mut end = 0u64;
        let result: Result<()> = (|| {
            let mut buf = vec![0u8; 4 << 20];
            for o in &order {
                let need_new = match new_segments.last() {
                    None => true,
                    Some(_) => {
                        end != PAYLOAD_ALIGN
                            && end.saturating_add(o.len) > self.config.segment_bytes
                    }
                };
                if need_new {
                    let id = w.next_segment;
                    w.next_segment += 1;
                    new_segments.push(Arc::new(self.create_segment_file(id)?));
                    end = PAYLOAD_ALIGN;
                }
                let Some(dst) = new_segments.last() else {
                    continue;
                };
                let src = self.segment(o.segment)?;
                if let Some(p) = &src.problem {
                    return Err(StoreError::CorruptSegment {
                        path: src.path.clone(),
                        reason: p.clone(),
                    });
                }
                let found = copy_range(&src, o, dst, end, &mut buf)?;
                if found != o.checksum {
                    return Err(StoreError::CorruptObject {
                        key: o.key.clone(),
                        path: src.path.clone(),
                        offset: o.offset,
                        expected: o.checksum,
                        found,
                    });
                }
                let mut n = (*o).clone();
                n.segment = dst.id;
                n.offset = end;
                new_infos.insert(n.key.clone(), n);
                end = align_up(end + o.len.max(1));
            }
            for s in &new_segments {
                s.file.sync_data().map_err(io_err("syncing", &s.path))?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            for s in &new_segments {
                let _ = fs::remove_file(&s.path);
            }
            return Err(e);
        }

        // New index: header + one Put per live object, flushed, then renamed over the old.
        let first_generation = w.next_generation;
        let header = IndexHeader {
            first_generation,
            ..self.header
        };
        let mut bytes = header.encode().to_vec();
        let mut gen = first_generation;
        for info in new_infos.values_mut() {
            info.generation = gen;
            bytes.extend_from_slice(&Record::Put(info.clone()).encode(gen));
            gen += 1;
        }
        let tmp = self.dir.join(COMPACT_TMP);
        let index_path = self.dir.join(INDEX_FILE);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err("creating", &tmp))?;
        sys::write_durable(&f, &tmp, 0, &bytes)?;
        fs::rename(&tmp, &index_path)
            .map_err(io_err("renaming compacted index over", &index_path))?;
        sys::sync_dir(&self.dir)?;
        // Committed: switch over.
        w.index = f;
        w.index_len = bytes.len() as u64;
        w.next_generation = gen;
        w.active = new_segments.last().map(|s| (Arc::clone(s), end));
        {
            let mut idx = self.write_index();
            idx.objects = new_infos;
            idx.segments = new_segments.iter().map(|s| (s.id, Arc::clone(s))).collect();
            idx.missing.clear();
        }
        self.cache.clear();
        for s in old_segments.values() {
            let _ = fs::remove_file(&s.path);
        }
        sys::sync_dir(&self.dir)?;
        let new_bytes: u64 = new_segments
            .iter()
            .filter_map(|s| s.file.metadata().ok())
            .map(|m| m.len())
            .sum();
        Ok(old_bytes.saturating_sub(new_bytes))
    }

    fn verify(&self) -> VerifyReport {
        let (objects, segments) = {
            let idx = self.read_index();
            (
                idx.objects.values().cloned().collect::<Vec<_>>(),
                idx.segments.clone(),
            )
        };
        let mut report = VerifyReport::default();
        let mut buf = vec![0u8; 4 << 20];
        for o in objects {
            report.objects += 1;
            let r = (|| -> Result<()> {
                let seg = match segments.get(&o.segment) {
                    Some(s) => Arc::clone(s),
                    None => self.segment(o.segment)?,
                };
                if let Some(p) = &seg.problem {
                    return Err(StoreError::CorruptSegment {
                        path: seg.path.clone(),
                        reason: p.clone(),
                    });
                }
                let flen = seg
                    .file
                    .metadata()
                    .map_err(io_err("reading size of", &seg.path))?
                    .len();
                let end = o.offset.saturating_add(o.len);
                if o.len > 0 && flen < end {
                    return Err(StoreError::TruncatedSegment {
                        path: seg.path.clone(),
                        key: o.key.clone(),
                        expected: end,
                        found: flen,
                    });
                }
                let found = hash_range(&seg, &o, &mut buf)?;
                if self.config.drop_page_cache {
                    sys::drop_page_cache(&seg.file, o.offset, o.len);
                }
                if found != o.checksum {
                    return Err(StoreError::CorruptObject {
                        key: o.key.clone(),
                        path: seg.path.clone(),
                        offset: o.offset,
                        expected: o.checksum,
                        found,
                    });
                }
                Ok(())
            })();
            match r {
                Ok(()) => report.bytes += o.len,
                Err(e) => report.failures.push(e),
            }
        }
        report
    }
}

fn open_segment(
    dir: &Path,
    id: u32,
    store_id: u64,
    writable: bool,
) -> std::result::Result<Segment, String> {
    let path = dir.join(segment_name(id));
    let file = OpenOptions::new()
        .read(true)
        .write(writable)
        .open(&path)
        .map_err(|e| {
            format!(
                "expected segment file {}, cannot open it: {e}",
                path.display()
            )
        })?;
    let mut hdr = [0u8; SEGMENT_HEADER_LEN];
    let problem = match file.read_exact_at(&mut hdr, 0) {
        Err(e) => Some(format!(
            "expected a {SEGMENT_HEADER_LEN}-byte segment header, cannot read it: {e}"
        )),
        Ok(()) => match SegmentHeader::decode(&hdr) {
            Err(reason) => Some(reason),
            Ok(h) if h.store_id != store_id => Some(format!(
                "store id expected {store_id:016x}, found {:016x} (segment from another store)",
                h.store_id
            )),
            Ok(h) if h.segment != id => {
                Some(format!("segment number expected {id}, found {}", h.segment))
            }
            Ok(_) => None,
        },
    };
    Ok(Segment {
        id,
        path,
        file,
        problem,
    })
}

fn hash_range(seg: &Segment, o: &ObjectInfo, buf: &mut [u8]) -> Result<u64> {
    let mut h = Xxh3::new();
    let mut done = 0u64;
    while done < o.len {
        let n = (o.len - done).min(buf.len() as u64) as usize;
        seg.file
            .read_exact_at(&mut buf[..n], o.offset + done)
            .map_err(io_err("reading", &seg.path))?;
        h.update(&buf[..n]);
        done += n as u64;
    }
    Ok(h.digest())
}

/// Copies one payload between segments, returning the checksum of the bytes copied.
fn copy_range(
    src: &Segment,
    o: &ObjectInfo,
    dst: &Segment,
    at: u64,
    buf: &mut [u8],
) -> Result<u64> {
    let mut h = Xxh3::new();
    let mut done = 0u64;
    while done < o.len {
        let n = (o.len - done).min(buf.len() as u64) as usize;
        src.file
            .read_exact_at(&mut buf[..n], o.offset + done)
            .map_err(io_err("reading", &src.path))?;
        h.update(&buf[..n]);
        dst.file
            .write_all_at(&buf[..n], at + done)
            .map_err(io_err("writing", &dst.path))?;
        done += n as u64;
    }
    Ok(h.digest())
}

/// An intact record with generation >= `gen` somewhere at or after `from`.
fn find_later_record(buf: &[u8], from: usize, gen: u64) -> Option<(usize, u64)> {
    let magic = b"REC1";
    let mut p = from;
    while p + RECORD_OVERHEAD <= buf.len() {
        if &buf[p..p + 4] == magic {
            if let Ok((_, g, _)) = Record::decode(&buf[p..]) {
                if g >= gen {
                    return Some((p, g));
                }
            }
        }
        p += 1;
    }
    None
}

/// The prefetch thread: maps (with `MAP_POPULATE`, so pages are read in) and verifies the next
/// scheduled objects that fit in the budget, ahead of the caller.
fn prefetch_loop(inner: &Inner) {
    let shared = &inner.cache.shared;
    let mut failed: HashSet<(u64, String)> = HashSet::new();
    while !shared.shutdown.load(Ordering::SeqCst) {
        let (version, upcoming) = {
            let g = inner.cache.lock();
            let start = g.cursor.min(g.schedule.len());
            let end = (start + 256).min(g.schedule.len());
            let upcoming: Vec<(usize, String, bool)> = g.schedule[start..end]
                .iter()
                .enumerate()
                .map(|(i, k)| (i, k.clone(), Cache::is_present(&g, k)))
                .collect();
            (g.schedule_version, upcoming)
        };
        // Window: the upcoming distinct keys whose sizes add up to at most the budget.
        let mut budget_left = inner.cache.budget;
        let mut seen = HashSet::new();
        let mut candidate = None;
        for (pos, key, present) in upcoming {
            if !seen.insert(key.clone()) {
                continue;
            }
            let Some(info) = inner.read_index().objects.get(&key).cloned() else {
                continue;
            };
            if info.len > budget_left {
                break;
            }
            budget_left -= info.len;
            if !present
                && !failed.contains(&(version, key.clone()))
                && inner.check_params(&info).is_ok()
            {
                candidate = Some((pos, info));
                break;
            }
        }
        let Some((pos, info)) = candidate else {
            let g = inner.cache.lock();
            if g.schedule_version == version && !shared.shutdown.load(Ordering::SeqCst) {
                let _ = shared.cv.wait_timeout(g, Duration::from_millis(50));
            }
            continue;
        };
        match inner.map_cached(&info, Mode::Prefetch { pos }) {
            Ok(Some(_)) => {}
            Ok(None) => {
                // No room yet: wait for the caller to move on or drop a handle.
                let g = inner.cache.lock();
                if !shared.shutdown.load(Ordering::SeqCst) {
                    let _ = shared.cv.wait_timeout(g, Duration::from_millis(10));
                }
            }
            Err(_) => {
                // The caller's own `get` will report the error; do not retry in this schedule.
                failed.insert((version, info.key.clone()));
            }
        }
    }
}
