//! `Inner::open`: the writer lock, index recovery, segment discovery and orphan removal.
#![deny(clippy::indexing_slicing)]

use super::*;
use crate::cache::{Cache, Segment};
use crate::error::{io_err, Result, StoreError};
use crate::format::{align_up, SegmentHeader, RECORD_OVERHEAD, SEGMENT_HEADER_LEN};
use crate::fsio::{Io, Site};
use crate::recovery::{recover_index, IndexError, Tail};
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
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
    pub(super) fn open(dir: &Path, config: StoreConfig, lock: Option<File>) -> Result<Self> {
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
        let io = Io::new(config.recorder.clone());
        // Writer lock first, so that no other writer changes files under recovery.
        let lock = match (config.read_only, lock) {
            (true, _) => None,
            (false, Some(held)) => Some(held),
            (false, None) => Some(super::lock::acquire(dir, &io)?),
        };

        let buf = read_file(&index_path)?;
        let rec = recover_index(&buf).map_err(|e| match e {
            IndexError::Truncated { expected, found } => StoreError::TruncatedIndex {
                path: index_path.clone(),
                expected,
                found,
            },
            IndexError::Corrupt { offset, reason } => StoreError::CorruptIndex {
                path: index_path.clone(),
                offset,
                reason,
            },
            IndexError::Version { found } => StoreError::UnsupportedVersion {
                path: index_path.clone(),
                expected: crate::format::FORMAT_VERSION,
                found,
                hint: crate::format::version_hint(found),
            },
        })?;
        let header = rec.header;
        if let (Some(expected), Some(found)) = (config.params_hash, header.params_hash) {
            if expected != found {
                return Err(StoreError::ParamsMismatch {
                    what: format!("store {}", dir.display()),
                    expected,
                    found,
                });
            }
        }
        let objects = rec.objects;
        let at = rec.committed_len;
        let gen = rec.next_generation;
        let mut report = RecoveryReport {
            records: rec.records,
            ..RecoveryReport::default()
        };
        // What follows the committed prefix, and whether this open may drop it.
        let mut cut_tail = false;
        match rec.tail {
            Tail::Clean => {}
            Tail::Torn { bytes, reason } => {
                if config.strict {
                    return Err(StoreError::TruncatedIndex {
                        path: index_path,
                        expected: at + RECORD_OVERHEAD as u64,
                        found: buf.len() as u64,
                    });
                }
                report.torn_bytes = bytes;
                report.torn_reason = Some(reason);
                cut_tail = true;
            }
            Tail::Damaged {
                offset,
                bytes,
                reason,
            } => {
                let discard = lock.is_some() && config.discard_damaged_tail;
                if config.strict || (lock.is_some() && !discard) {
                    return Err(StoreError::DamagedRecord {
                        path: index_path,
                        offset,
                        bytes,
                        reason,
                    });
                }
                report.damaged = Some(DamagedTail {
                    offset,
                    bytes,
                    reason,
                    discarded: discard,
                });
                cut_tail = discard;
            }
        }

        let mut index_file = None;
        if lock.is_some() {
            let f = io.open(
                OpenOptions::new().read(true).write(true),
                &index_path,
                "opening",
            )?;
            if cut_tail {
                io.set_len(&f, &index_path, at)?;
                io.sync_data(&f, &index_path, Site::OpenTruncate)?;
            }
            index_file = Some(f);
            for tmp in [COMPACT_TMP, CREATE_TMP] {
                let p = dir.join(tmp);
                if p.exists() {
                    let _ = io.remove(&p);
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
            match open_segment(&io, dir, id, header.store_id, lock.is_some()) {
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
                if io.remove(&path).is_ok() {
                    report.orphan_segments_removed.push(name);
                }
            }
            io.sync_dir(dir, Site::OrphanRemoval)?;
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
                    index_len: at,
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
            io,
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
    io: &Io,
    dir: &Path,
    id: u32,
    store_id: u64,
    writable: bool,
) -> std::result::Result<Segment, String> {
    let path = dir.join(segment_name(id));
    let file = io
        .open(
            OpenOptions::new().read(true).write(writable),
            &path,
            "opening segment",
        )
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
