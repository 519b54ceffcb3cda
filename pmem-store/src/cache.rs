//! Mapped objects, the DRAM budget, the LRU cache and the prefetch schedule.
//!
//! Every mapped object is one `mmap` of exactly its payload. Its bytes count against the
//! budget from the moment a mapping is reserved until the mapping is dropped (`munmap`), so
//! the bytes this process can have resident through the store never exceed the budget:
//! a mapping is only created after enough others were evicted to make room.

use crate::error::{Result, StoreError};
use crate::object::ObjectInfo;
use crate::sys;
use memmap2::Mmap;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::mem::ManuallyDrop;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// An open segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    pub id: u32,
    pub path: PathBuf,
    pub file: File,
    /// Why the segment cannot be used (damaged or missing header), if so.
    pub problem: Option<String>,
}

/// A handle to a mapped object: the payload, zero-copy, as bytes or as `u64` words.
///
/// Cloning the `Arc` is cheap; the mapping stays alive (and counted against the store's DRAM
/// budget) until the last clone is dropped, even after the store itself is closed or the
/// object deleted or compacted away.
pub type ObjectHandle = Arc<MappedObject>;

/// One object's payload, memory-mapped from its segment file (read-only, shared).
pub struct MappedObject {
    info: ObjectInfo,
    map: ManuallyDrop<Option<Mmap>>,
    segment: Arc<Segment>,
    shared: Arc<CacheShared>,
    drop_page_cache: bool,
}

impl MappedObject {
    /// Wraps a new mapping; its bytes move from the cache's "being mapped" reservation to the
    /// live count atomically (under the cache lock), so the accounted total never double counts.
    pub(crate) fn new(
        info: ObjectInfo,
        map: Option<Mmap>,
        segment: Arc<Segment>,
        shared: Arc<CacheShared>,
        drop_page_cache: bool,
    ) -> Self {
        {
            let mut g = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            g.loading = g.loading.saturating_sub(info.len);
            shared.live.fetch_add(info.len, Ordering::SeqCst);
        }
        Self {
            info,
            map: ManuallyDrop::new(map),
            segment,
            shared,
            drop_page_cache,
        }
    }
    /// The index entry this payload was mapped from.
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }
    /// The payload bytes.
    pub fn bytes(&self) -> &[u8] {
        match self.map.as_ref() {
            Some(m) => m.get(..self.info.len as usize).unwrap_or(&[]),
            None => &[],
        }
    }
    /// The payload as `u64` words (a trailing partial word is not included). The mapping is
    /// page-aligned, so this is a zero-copy view.
    pub fn words(&self) -> &[u64] {
        let b = self.bytes();
        let whole = b.len() / 8 * 8;
        bytemuck::try_cast_slice(&b[..whole]).unwrap_or(&[])
    }
    /// Path of the segment file holding the payload.
    pub fn segment_path(&self) -> &std::path::Path {
        &self.segment.path
    }
}

impl fmt::Debug for MappedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedObject")
            .field("key", &self.info.key)
            .field("type", &self.info.meta.ty)
            .field("len", &self.info.len)
            .field("segment", &self.info.segment)
            .field("offset", &self.info.offset)
            .finish()
    }
}

impl he_core::rlwe::LimbStorage for MappedObject {
    fn words(&self) -> &[u64] {
        MappedObject::words(self)
    }
}

impl Drop for MappedObject {
    fn drop(&mut self) {
        // SAFETY: `map` is not used after this point; dropping it unmaps the region.
        unsafe { ManuallyDrop::drop(&mut self.map) };
        if self.drop_page_cache {
            // Mapping gone: the clean page-cache pages of the range can really be dropped.
            sys::drop_page_cache(&self.segment.file, self.info.offset, self.info.len);
        }
        self.shared.live.fetch_sub(self.info.len, Ordering::SeqCst);
        self.shared.cv.notify_all();
    }
}

enum Entry {
    Loading { generation: u64 },
    Ready { obj: ObjectHandle, last_use: u64 },
}

#[derive(Default)]
pub(crate) struct CacheState {
    entries: HashMap<String, Entry>,
    tick: u64,
    /// Bytes reserved by mappings being created.
    loading: u64,
    /// The access schedule given to `prefetch`, and how far the caller has got through it.
    pub schedule: Vec<String>,
    /// Which schedule entries a `get` has reached (parallel fetches reach them in any order).
    pub done: Vec<bool>,
    /// The stream each schedule entry was announced in ([`ScheduleStream`]).
    stream: Vec<ScheduleStream>,
    /// The first entry neither done nor left behind.
    pub cursor: usize,
    /// The furthest done entry (entries more than [`SCHEDULE_SLACK`] before it are left
    /// behind, so that an announced key that is never fetched does not stall the schedule).
    furthest: usize,
    /// First position (relative to `cursor`) of each upcoming key.
    window: HashMap<String, usize>,
    /// Bumped whenever the schedule or cursor changes.
    pub schedule_version: u64,
    pub hits: u64,
    pub misses: u64,
    pub prefetched: u64,
    pub evictions: u64,
}

/// Shared between the store, its prefetch thread and every handle.
pub(crate) struct CacheShared {
    pub state: Mutex<CacheState>,
    pub cv: Condvar,
    /// Bytes of all live mappings (cached or held by callers).
    pub live: AtomicU64,
    pub shutdown: AtomicBool,
}

/// Which caller's look-ahead a schedule entry belongs to. Announcing in one stream replaces
/// that stream's pending entries and keeps the others' (a network's evaluation keys and its
/// weights are announced by different providers, each knowing only its own order); the
/// schedule interleaves the streams entry by entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScheduleStream(pub u8);

impl ScheduleStream {
    /// The stream of [`Store::prefetch`](crate::Store::prefetch) and
    /// [`Store::announce`](crate::Store::announce).
    pub const DEFAULT: Self = Self(0);
    /// Evaluation keys ([`PmemKeyStore`](crate::PmemKeyStore)).
    pub const KEYS: Self = Self(1);
    /// Encoded weights ([`PmemWeightStore`](crate::PmemWeightStore)).
    pub const WEIGHTS: Self = Self(2);
}

/// How a mapping is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The caller needs it now: may evict anything not held by a caller.
    Foreground,
    /// The prefetcher wants it for schedule position `pos`: may only evict objects not needed
    /// before `pos`.
    Prefetch { pos: usize },
}

pub(crate) enum Reservation {
    Hit(ObjectHandle),
    /// Budget reserved; the caller must map and then call `complete`.
    Reserved,
    /// (Prefetch only) no room without evicting objects needed sooner.
    NoRoom,
}

/// Lookahead limit of the schedule window, in entries.
const WINDOW_MAX: usize = 4096;

/// How far behind the furthest fetched schedule entry a pending one may fall before the
/// schedule moves past it: gets within one step (a linear transform's keys, fetched in
/// parallel) may come in any order.
pub(crate) const SCHEDULE_SLACK: usize = 64;

pub(crate) struct Cache {
    pub shared: Arc<CacheShared>,
    pub budget: u64,
}

impl Cache {
    pub fn new(budget: u64) -> Self {
        Self {
            shared: Arc::new(CacheShared {
                state: Mutex::new(CacheState::default()),
                cv: Condvar::new(),
                live: AtomicU64::new(0),
                shutdown: AtomicBool::new(false),
            }),
            budget,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, CacheState>, ms: u64) -> MutexGuard<'a, CacheState> {
        match self.shared.cv.wait_timeout(g, Duration::from_millis(ms)) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    /// Bytes mapped now (cached or held by callers) plus bytes being mapped.
    pub fn resident(&self) -> u64 {
        let g = self.lock();
        self.shared.live.load(Ordering::SeqCst) + g.loading
    }

    /// Replaces the access schedule (all streams).
    pub fn set_schedule(&self, keys: Vec<String>) {
        let streams = vec![ScheduleStream::DEFAULT; keys.len()];
        self.install(self.lock(), keys, streams);
    }

    /// Makes `schedule` (with each entry's stream) the schedule, all of it pending.
    fn install(
        &self,
        mut g: MutexGuard<'_, CacheState>,
        schedule: Vec<String>,
        streams: Vec<ScheduleStream>,
    ) {
        g.done = vec![false; schedule.len()];
        g.schedule = schedule;
        g.stream = streams;
        g.cursor = 0;
        g.furthest = 0;
        recompute_window(&mut g);
        drop(g);
        self.shared.cv.notify_all();
    }

    /// Replaces the pending entries of `stream` by `keys` and keeps the other streams'
    /// pending entries, interleaving the two orders one entry at a time.
    pub fn set_stream_schedule(&self, stream: ScheduleStream, keys: Vec<String>) {
        let g = self.lock();
        let others: Vec<(String, ScheduleStream)> = g
            .schedule
            .iter()
            .zip(&g.done)
            .zip(&g.stream)
            .skip(g.cursor)
            .filter(|((_, done), s)| !**done && **s != stream)
            .map(|((k, _), s)| (k.clone(), *s))
            .collect();
        let total = others.len() + keys.len();
        let (mut schedule, mut streams) = (Vec::with_capacity(total), Vec::with_capacity(total));
        let (mut a, mut b) = (others.into_iter(), keys.into_iter());
        loop {
            let (x, y) = (a.next(), b.next());
            if x.is_none() && y.is_none() {
                break;
            }
            if let Some((k, s)) = x {
                schedule.push(k);
                streams.push(s);
            }
            if let Some(k) = y {
                schedule.push(k);
                streams.push(stream);
            }
        }
        self.install(g, schedule, streams);
    }

    /// Whether every key is pending in the schedule's window (announced and not fetched yet).
    pub fn all_pending<S: AsRef<str>>(&self, keys: &[S]) -> bool {
        let g = self.lock();
        keys.iter().all(|k| g.window.contains_key(k.as_ref()))
    }

    /// Drops a cached entry (after its key was replaced or deleted).
    pub fn invalidate(&self, key: &str) {
        let mut g = self.lock();
        if matches!(g.entries.get(key), Some(Entry::Ready { .. })) {
            g.entries.remove(key);
        }
    }

    /// Drops every cached entry not held by a caller.
    pub fn clear(&self) {
        let mut g = self.lock();
        g.entries.retain(|_, e| matches!(e, Entry::Loading { .. }));
    }

    /// Finds `info` in the cache, or reserves budget for mapping it.
    pub fn reserve(&self, info: &ObjectInfo, mode: Mode) -> Result<Reservation> {
        let key = info.key.as_str();
        let mut g = self.lock();
        if mode == Mode::Foreground {
            // The caller has reached this key's first pending entry: mark it done and move
            // the schedule past done entries and those left more than the slack behind.
            if let Some(&p) = g.window.get(key) {
                let at = g.cursor + p;
                if let Some(d) = g.done.get_mut(at) {
                    *d = true;
                }
                g.furthest = g.furthest.max(at);
                while g.cursor < g.schedule.len()
                    && (g.done.get(g.cursor).copied().unwrap_or(true)
                        || g.cursor + SCHEDULE_SLACK < g.furthest)
                {
                    g.cursor += 1;
                }
                recompute_window(&mut g);
                self.shared.cv.notify_all();
            }
        }
        loop {
            if self.shared.shutdown.load(Ordering::SeqCst) && mode != Mode::Foreground {
                return Ok(Reservation::NoRoom);
            }
            g.tick += 1;
            let tick = g.tick;
            match g.entries.get_mut(key) {
                Some(Entry::Ready { obj, last_use })
                    if obj.info().generation == info.generation =>
                {
                    *last_use = tick;
                    let obj = Arc::clone(obj);
                    if mode == Mode::Foreground {
                        g.hits += 1;
                    }
                    return Ok(Reservation::Hit(obj));
                }
                Some(Entry::Ready { .. }) => {
                    g.entries.remove(key);
                }
                Some(Entry::Loading { .. }) => {
                    if mode != Mode::Foreground {
                        return Ok(Reservation::NoRoom);
                    }
                    g = self.wait(g, 20);
                    continue;
                }
                None => {}
            }
            break;
        }
        if info.len > self.budget {
            return Err(StoreError::BudgetTooSmall {
                key: key.to_string(),
                needed: info.len,
                budget: self.budget,
            });
        }
        loop {
            let used = self.shared.live.load(Ordering::SeqCst) + g.loading;
            if used + info.len <= self.budget {
                break;
            }
            if let Some(victim) = pick_victim(&g, mode) {
                g.entries.remove(&victim); // unmaps here when only the cache held it
                g.evictions += 1;
                continue;
            }
            if mode != Mode::Foreground {
                return Ok(Reservation::NoRoom);
            }
            if g.loading > 0 {
                // Another thread is mapping: its object becomes evictable when it is done.
                g = self.wait(g, 20);
                continue;
            }
            // Handles dropped concurrently may have freed room in the meantime.
            let used = self.shared.live.load(Ordering::SeqCst);
            if used + info.len <= self.budget {
                break;
            }
            return Err(StoreError::BudgetExhausted {
                key: key.to_string(),
                needed: info.len,
                pinned: used,
                budget: self.budget,
            });
        }
        g.loading += info.len;
        g.entries.insert(
            key.to_string(),
            Entry::Loading {
                generation: info.generation,
            },
        );
        if mode == Mode::Foreground {
            g.misses += 1;
        } else {
            g.prefetched += 1;
        }
        Ok(Reservation::Reserved)
    }

    /// Ends a reservation: caches the mapped object, or forgets the reservation on error.
    /// `reservation_released`: whether the mapping was created (which already moved the
    /// reserved bytes to the live count).
    pub fn complete(
        &self,
        info: &ObjectInfo,
        result: &Result<ObjectHandle>,
        reservation_released: bool,
    ) {
        let mut g = self.lock();
        if !reservation_released {
            g.loading = g.loading.saturating_sub(info.len);
        }
        let ours = matches!(g.entries.get(&info.key), Some(Entry::Loading { generation }) if *generation == info.generation);
        if ours {
            match result {
                Ok(obj) => {
                    g.tick += 1;
                    let last_use = g.tick;
                    g.entries.insert(
                        info.key.clone(),
                        Entry::Ready {
                            obj: Arc::clone(obj),
                            last_use,
                        },
                    );
                }
                Err(_) => {
                    g.entries.remove(&info.key);
                }
            }
        }
        drop(g);
        self.shared.cv.notify_all();
    }

    /// Whether `key` is cached or being mapped.
    pub fn is_present(g: &CacheState, key: &str) -> bool {
        g.entries.contains_key(key)
    }
}

fn recompute_window(g: &mut CacheState) {
    g.schedule_version += 1;
    g.window.clear();
    let start = g.cursor.min(g.schedule.len());
    let end = (start + WINDOW_MAX).min(g.schedule.len());
    for (i, (k, done)) in g.schedule[start..end]
        .iter()
        .zip(&g.done[start..end])
        .enumerate()
    {
        if !done {
            g.window.entry(k.clone()).or_insert(i);
        }
    }
}

/// The entry to evict: not held by a caller; first the least recently used among those the
/// schedule does not need, then the one needed furthest in the future.
fn pick_victim(g: &CacheState, mode: Mode) -> Option<String> {
    let mut best: Option<((u8, u64), &String)> = None;
    for (k, e) in &g.entries {
        let Entry::Ready { obj, last_use } = e else {
            continue;
        };
        if Arc::strong_count(obj) > 1 {
            continue; // held by a caller: unmapping is impossible
        }
        let score = match g.window.get(k) {
            None => (0u8, *last_use),
            Some(&p) => {
                if let Mode::Prefetch { pos } = mode {
                    if p <= pos {
                        continue;
                    }
                }
                (1u8, u64::MAX - p as u64)
            }
        };
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, k));
        }
    }
    best.map(|(_, k)| k.clone())
}
