//! `Inner::open`: the writer lock, index recovery, segment discovery and orphan removal.

use super::*;
use crate::cache::{Cache, Segment};
use crate::error::{io_err, Result, StoreError};
use crate::format::{
    align_up, IndexHeader, Record, SegmentHeader, INDEX_HEADER_LEN, RECORD_OVERHEAD,
    SEGMENT_HEADER_LEN,
};
use crate::sys;
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let mut f = File::open(path).map_err(io_err("opening", path))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(io_err("reading", path))?;
    Ok(buf)
}

impl Inner {
    pub(super) fn open(dir: &Path, config: StoreConfig) -> Result<Self> {
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
}

pub(super) fn open_segment(
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
