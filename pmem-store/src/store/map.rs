//! Lookups and mapping: index/writer guards, parameter checks, segment lookup, `mmap` of one
//! object with its checksum check.

use super::*;
use crate::cache::{MappedObject, Mode, ObjectHandle, Reservation, Segment};
use crate::error::{io_err, Result, StoreError};
use crate::object::ObjectInfo;
use std::sync::{Arc, MutexGuard, RwLockReadGuard, RwLockWriteGuard};
use xxhash_rust::xxh3::xxh3_64;

impl Inner {
    pub(super) fn read_index(&self) -> RwLockReadGuard<'_, IndexState> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }
    pub(super) fn write_index(&self) -> RwLockWriteGuard<'_, IndexState> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }
    pub(super) fn writer(&self, op: &'static str) -> Result<MutexGuard<'_, Writer>> {
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

    pub(super) fn expected_hash(&self) -> Option<u64> {
        self.config.params_hash.or(self.header.params_hash)
    }

    pub(super) fn lookup(&self, key: &str) -> Result<ObjectInfo> {
        self.read_index()
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                key: key.to_string(),
                path: self.dir.clone(),
            })
    }

    pub(super) fn check_params(&self, info: &ObjectInfo) -> Result<()> {
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

    pub(super) fn segment(&self, id: u32) -> Result<Arc<Segment>> {
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

    pub(super) fn map_object(
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
}
