//! Power-loss crash test (finding 4 of issue #16), in the spirit of CrashMonkey / ALICE.
//!
//! SIGKILL keeps the page cache, so `tests/crash.rs` cannot see a missing fsync. Here every
//! file-system mutation the store makes is recorded through its file layer
//! (`pmem_store::fsio`, enabled by the hidden `StoreConfig::recorder` hook). For every cut
//! point `k` of the log, [`Model`] replays ops `0..k` and builds the directory as a power cut
//! at `k` would leave it:
//!
//! * file data writes and size changes survive only if a later op (before the cut) syncs that
//!   file (fsync / fdatasync / msync / pmem flush: data and size of the whole file);
//! * directory entries (creations, renames, unlinks) survive only if a later op syncs the
//!   directory; the store directory itself only if its parent is synced;
//! * files are inodes, names point at them: data synced into a file whose name never became
//!   durable is lost with the name, and a rename not made durable leaves the old name;
//! * a second, adversarial image per cut lets the unlinks issued since the last directory sync
//!   reach the disk while the creations and renames do not (directory operations not
//!   separated by an fsync may be persisted in any order);
//! * a third tears the unsynced appends: the file size grew but only every other 512-byte
//!   sector of the new bytes was written (the rest reads back as zeros), the torn index
//!   append that recovery must drop rather than take for a damaged committed record.
//!
//! The store is then opened (writable: recovery, truncation, orphan removal) on each image and
//! checked: `open` never fails once `create` returned; every object whose `put` returned
//! before the cut is present and byte-identical; every returned `delete` holds; no object
//! returns wrong bytes; `verify` finds nothing.
//!
//! `every_durability_site_is_needed` then switches each durability call site off in turn and
//! asserts the checker finds a loss, except for the sites listed (with the reason) as not
//! needed for any committed object.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;
use pmem_store::fsio::{Op, Recorder, Site};
use pmem_store::{ObjectMeta, ObjectType, Store, StoreConfig};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const P: u64 = 0x0050_4c4f_5353;

fn config(rec: Option<&Arc<Recorder>>) -> StoreConfig {
    // `rec`: the workload's recorder, or the checker's unsynced one.
    let mut c = StoreConfig::new(Some(P))
        .segment_size(24 * 1024)
        .budget(64 << 20)
        .drop_page_cache(false)
        .prefetch(false);
    c.recorder = rec.cloned();
    c
}

/// Small deterministic contents (1 B .. 6 KiB), derived from the key.
fn small(key: &str) -> Vec<u8> {
    let mut s = seed_of(key);
    let n = 1 + (splitmix(&mut s) % 6000) as usize;
    (0..n).map(|_| splitmix(&mut s) as u8).collect()
}

/// Puts, deletes, compactions (segments roll over every few puts) and one reopen, with a
/// mark in the log after each operation returns (and before each delete starts).
fn workload(dir: &Path, rec: &Arc<Recorder>, ops: usize, seed: u64) {
    let store = Store::create(dir, config(Some(rec))).unwrap();
    rec.mark("created");
    let mut store = Some(store);
    let mut rng = seed;
    let mut live: Vec<String> = Vec::new();
    for i in 0..ops {
        let s = store.as_ref().unwrap();
        let r = splitmix(&mut rng) % 100;
        if i == ops / 2 {
            drop(store.take());
            store = Some(Store::open(dir, config(Some(rec))).unwrap());
            rec.mark("reopened");
        } else if r < 6 || i == ops / 3 || i + 3 == ops {
            s.compact().unwrap();
            rec.mark("C");
        } else if r < 70 || live.len() < 3 {
            let key = format!("o{i}");
            let meta = ObjectMeta::new(ObjectType::Bytes, P);
            s.put(&key, &meta, &small(&key)).unwrap();
            rec.mark(format!("P {key}"));
            live.push(key);
        } else {
            let k = live.swap_remove((splitmix(&mut rng) % live.len() as u64) as usize);
            rec.mark(format!("d {k}"));
            s.delete(&k).unwrap();
            rec.mark(format!("D {k}"));
        }
    }
}

#[derive(Default, Clone)]
struct Model {
    /// Volatile directory entries: name -> file.
    names: BTreeMap<PathBuf, u64>,
    /// Volatile contents of each file.
    data: HashMap<u64, Vec<u8>>,
    /// Durable directory entries and contents.
    dnames: BTreeMap<PathBuf, u64>,
    ddata: HashMap<u64, Vec<u8>>,
    /// Unlinks since the last directory sync.
    pending_removes: Vec<PathBuf>,
    /// Whether the store directory exists, volatile and durable.
    dir_made: bool,
    dir_durable: bool,
    /// Bumped whenever the post-cut image may change.
    version: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Durable,
    Reorder,
    Torn,
}

#[derive(Default, Clone, Debug)]
struct Expect {
    created: bool,
    must_exist: BTreeSet<String>,
    must_not_exist: BTreeSet<String>,
    version: u64,
}

impl Model {
    fn apply(&mut self, op: &Op, dir: &Path, exp: &mut Expect) {
        match op {
            Op::Mark(_) => exp.version += 1,
            Op::Sync { .. } | Op::SyncDir { .. } | Op::Remove { .. } => self.version += 1,
            _ => {}
        }
        match op {
            Op::MkDir { path } => {
                if path == dir {
                    self.dir_made = true;
                }
            }
            Op::Create { path, file } => {
                self.names.insert(path.clone(), *file);
                self.data.insert(*file, Vec::new());
            }
            Op::Write { file, offset, data } => {
                let d = self.data.entry(*file).or_default();
                let end = *offset as usize + data.len();
                if d.len() < end {
                    d.resize(end, 0);
                }
                d[*offset as usize..end].copy_from_slice(data);
            }
            Op::SetLen { file, len } => {
                self.data.entry(*file).or_default().resize(*len as usize, 0);
            }
            Op::Sync { file, .. } => {
                let d = self.data.get(file).cloned().unwrap_or_default();
                self.ddata.insert(*file, d);
            }
            Op::SyncDir { path, .. } => {
                if path == dir {
                    self.dnames = self.names.clone();
                    self.pending_removes.clear();
                } else if Some(path.as_path()) == dir.parent() && self.dir_made {
                    self.dir_durable = true;
                }
            }
            Op::Rename { from, to } => {
                if let Some(f) = self.names.remove(from) {
                    self.names.insert(to.clone(), f);
                }
            }
            Op::Remove { path } => {
                self.names.remove(path);
                self.pending_removes.push(path.clone());
            }
            Op::Mark(m) => {
                if m == "created" {
                    exp.created = true;
                } else if let Some(k) = m.strip_prefix("P ") {
                    exp.must_exist.insert(k.into());
                    exp.must_not_exist.remove(k);
                } else if let Some(k) = m.strip_prefix("d ") {
                    exp.must_exist.remove(k);
                } else if let Some(k) = m.strip_prefix("D ") {
                    exp.must_not_exist.insert(k.into());
                }
            }
        }
    }

    /// Whether some durable file has unsynced bytes appended past its durable end.
    fn pending_appends(&self) -> bool {
        self.dnames
            .values()
            .any(|f| self.data.get(f).map_or(0, Vec::len) > self.ddata.get(f).map_or(0, Vec::len))
    }

    /// Writes the post-power-cut directory into `img`. `Reorder`: pending unlinks persisted;
    /// `Torn`: unsynced appends half persisted (the size grew, every other 512-byte sector
    /// of the new bytes written, the others read back as zeros). Returns false if the store
    /// directory itself did not survive.
    fn image(&self, img: &Path, variant: Variant, cache: &mut ImageCache) -> bool {
        let reorder = variant == Variant::Reorder;
        // A directory never made durable in its parent is gone (unless it predates the log).
        if self.dir_made && !self.dir_durable {
            let _ = std::fs::remove_dir_all(img);
            cache.clear();
            return false;
        }
        let mut names = self.dnames.clone();
        if reorder {
            for p in &self.pending_removes {
                names.remove(p);
            }
        }
        let mut want: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (path, file) in &names {
            let mut bytes = self.ddata.get(file).cloned().unwrap_or_default();
            let volatile = self.data.get(file).map(Vec::as_slice).unwrap_or(&[]);
            if variant == Variant::Torn && volatile.len() > bytes.len() {
                let old = bytes.len();
                bytes.extend_from_slice(&volatile[old..]);
                for (i, b) in bytes.iter_mut().enumerate().skip(old) {
                    if (i / 512 - old / 512) % 2 == 1 {
                        *b = 0;
                    }
                }
            }
            want.insert(
                path.file_name().unwrap().to_string_lossy().into_owned(),
                bytes,
            );
        }
        cache.write(img, want);
        true
    }
}

/// The image directory, rewritten incrementally: only files whose wanted content differs
/// from what was last written (and left unchanged by the store opened on it) are written.
#[derive(Default)]
struct ImageCache {
    on_disk: HashMap<String, Vec<u8>>,
}

impl ImageCache {
    fn clear(&mut self) {
        self.on_disk.clear();
    }
    fn write(&mut self, img: &Path, want: BTreeMap<String, Vec<u8>>) {
        std::fs::create_dir_all(img).unwrap();
        for e in std::fs::read_dir(img).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if !want.contains_key(&name) {
                std::fs::remove_file(img.join(&name)).unwrap();
                self.on_disk.remove(&name);
            }
        }
        for (name, bytes) in want {
            if self.on_disk.get(&name) != Some(&bytes) {
                // Overwrite in place, no O_TRUNC: ext4 flushes a file truncated to zero and
                // rewritten (auto_da_alloc), which would make this test I/O bound.
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(img.join(&name))
                    .unwrap();
                f.write_all_at(&bytes, 0).unwrap();
                f.set_len(bytes.len() as u64).unwrap();
                self.on_disk.insert(name, bytes);
            }
        }
    }
    /// Forgets files the store changed (truncated, removed): they are rewritten next time.
    fn refresh(&mut self, img: &Path) {
        self.on_disk.retain(|name, bytes| {
            std::fs::metadata(img.join(name)).is_ok_and(|m| m.len() == bytes.len() as u64)
        });
    }
}

/// Opens the store on `img` and checks `exp`; `Err(what went wrong)`. The store opened on
/// the image skips its own fsyncs (the image is thrown away), to keep the test fast.
fn check(img: &Path, present: bool, exp: &Expect) -> Result<(), String> {
    if !exp.created {
        return Ok(());
    }
    if !present {
        return Err("the store directory itself was lost".into());
    }
    let s = Store::open(img, config(Some(&Recorder::unsynced())))
        .map_err(|e| format!("open failed: {e}"))?;
    let listed: BTreeSet<String> = s.list().into_iter().map(|o| o.key).collect();
    for k in &exp.must_exist {
        if !listed.contains(k) {
            return Err(format!("committed object {k} lost"));
        }
    }
    for k in &exp.must_not_exist {
        if listed.contains(k) {
            return Err(format!("deleted object {k} came back"));
        }
    }
    for k in &listed {
        let h = s.get(k).map_err(|e| format!("object {k}: {e}"))?;
        if h.bytes() != small(k).as_slice() {
            return Err(format!("object {k} has wrong bytes"));
        }
    }
    let v = s.verify();
    if !v.failures.is_empty() {
        return Err(format!("verify: {:?}", v.failures));
    }
    Ok(())
}

struct Outcome {
    cuts: usize,
    opens: usize,
    first_failure: Option<String>,
    t_image: std::time::Duration,
    t_check: std::time::Duration,
}

/// Checks every cut point of `log` (every mutation boundary); stops at the first failure when
/// `stop_early`.
fn check_log(log: &[Op], dir: &Path, img: &Path, stop_early: bool) -> Outcome {
    let mut model = Model::default();
    let mut exp = Expect::default();
    let mut out = Outcome {
        cuts: 0,
        opens: 0,
        first_failure: None,
        t_image: Default::default(),
        t_check: Default::default(),
    };
    // The durable state and the expectations changed since the last image checked?
    let mut checked: Option<(u64, u64)> = None;
    let _ = std::fs::remove_dir_all(img);
    let mut cache = ImageCache::default();
    for k in 0..=log.len() {
        if k > 0 {
            model.apply(&log[k - 1], dir, &mut exp);
        }
        // Marks describe operations that returned before the cut: apply the whole run first.
        if matches!(log.get(k), Some(Op::Mark(_))) {
            continue;
        }
        if checked == Some((model.version, exp.version)) {
            // Same disk image and same expectations as an image already checked (e.g. a cut
            // after a write its sync had not yet made durable): same outcome.
            out.cuts += 1;
            continue;
        }
        checked = Some((model.version, exp.version));
        out.cuts += 1;
        let mut variants = vec![Variant::Durable];
        if !model.pending_removes.is_empty() {
            variants.push(Variant::Reorder);
        }
        if model.pending_appends() {
            variants.push(Variant::Torn);
        }
        for variant in variants {
            let t0 = std::time::Instant::now();
            let present = model.image(img, variant, &mut cache);
            let t1 = std::time::Instant::now();
            out.opens += 1;
            let r = check(img, present, &exp);
            cache.refresh(img);
            out.t_image += t1 - t0;
            out.t_check += t1.elapsed();
            if let Err(e) = r {
                if out.first_failure.is_none() {
                    out.first_failure = Some(format!(
                        "cut {k}/{} (after {:?}){}: {e}",
                        log.len(),
                        log.get(k.wrapping_sub(1)).map(short),
                        match variant {
                            Variant::Durable => "",
                            Variant::Reorder => " [unlinks persisted]",
                            Variant::Torn => " [torn appends]",
                        }
                    ));
                }
                if stop_early {
                    return out;
                }
            }
        }
    }
    out
}

fn short(op: &Op) -> String {
    match op {
        Op::Write { file, offset, data } => format!("Write file {file} @{offset} +{}", data.len()),
        other => format!("{other:?}"),
    }
}

fn run(name: &str, ops: usize, seed: u64, disabled: Option<Site>, stop_early: bool) -> Outcome {
    let base = fresh_dir(name);
    let dir = base.join("store");
    let img = base.join("image");
    let rec = Recorder::new();
    rec.disable(disabled);
    workload(&dir, &rec, ops, seed);
    let log = rec.log();
    let out = check_log(&log, &dir, &img, stop_early);
    let _ = std::fs::remove_dir_all(&base);
    out
}

#[test]
fn power_loss_at_every_cut_point_loses_nothing() {
    let t = std::time::Instant::now();
    let out = run("powerloss", 130, 7, None, false);
    eprintln!(
        "power-loss model: {} cut points, {} distinct images opened and checked in {:.1?} ({:.1?} building images, {:.1?} opening and checking)",
        out.cuts,
        out.opens,
        t.elapsed(),
        out.t_image,
        out.t_check
    );
    assert!(out.cuts >= 1000, "only {} cut points", out.cuts);
    assert_eq!(out.first_failure, None);
}

/// Sites whose removal no committed object depends on, and why.
const NOT_NEEDED: [(Site, &str); 5] = [
    (
        Site::SegmentHeader,
        "the header is made durable by the fdatasync of the first payload put into the segment (or of the compaction's copy) before any record names the segment; an orphan segment with a lost header is removed",
    ),
    (
        Site::AppendRollback,
        "error path only (a failed append); the next append's fdatasync persists the cut-back size, and a lost cut-back leaves an unsynced, uncommitted tail that recovery drops as torn",
    ),
    (
        Site::OpenTruncate,
        "only after a torn tail; the next append's fdatasync persists the truncation, and a lost truncation leaves the same torn tail, dropped again",
    ),
    (
        Site::OrphanRemoval,
        "a lost unlink leaves an orphan segment that the next writable open removes again",
    ),
    (
        Site::CompactCleanup,
        "the old index is already replaced durably (CompactRename); lost unlinks of old segments leave orphans removed by the next writable open",
    ),
];

#[test]
fn every_durability_site_is_needed() {
    let mut report = Vec::new();
    for site in Site::ALL {
        let why_not = NOT_NEEDED.iter().find(|(s, _)| *s == site).map(|(_, w)| *w);
        let out = run(
            &format!("site-{site:?}"),
            45,
            11,
            Some(site),
            why_not.is_none(),
        );
        match (why_not, &out.first_failure) {
            (None, Some(f)) => report.push(format!("{site:?}: removal detected: {f}")),
            (None, None) => panic!(
                "removing the durability call at {site:?} went unnoticed over {} cut points",
                out.cuts
            ),
            (Some(_), None) => report.push(format!("{site:?}: not needed (as documented)")),
            (Some(w), Some(f)) => {
                panic!("{site:?} was listed as not needed ({w}), yet removing it loses data: {f}")
            }
        }
    }
    for l in &report {
        eprintln!("{l}");
    }
    // The baseline with every call in place passes the same workload.
    assert_eq!(run("site-none", 45, 11, None, false).first_failure, None);
}
