//! Compaction: live objects copied into fresh segments, a fresh index renamed into place.

use super::*;
use crate::cache::Segment;
use crate::error::{io_err, Result, StoreError};
use crate::format::{align_up, IndexHeader, Record, PAYLOAD_ALIGN};
use crate::fsio::{Io, Site};
use crate::object::ObjectInfo;
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use xxhash_rust::xxh3::Xxh3;

impl Inner {
    pub(super) fn compact(&self) -> Result<u64> {
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
                let found = copy_range(&self.io, &src, o, dst, end, &mut buf)?;
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
                self.io.sync_data(&s.file, &s.path, Site::CompactSegments)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            for s in &new_segments {
                let _ = self.io.remove(&s.path);
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
            let (rec, next) = Record::Put(info.clone()).encode_at(bytes.len() as u64, gen);
            bytes.extend_from_slice(&rec);
            gen = next;
            info.generation = next - 1;
        }
        let tmp = self.dir.join(COMPACT_TMP);
        let index_path = self.dir.join(INDEX_FILE);
        let f = self.io.create_truncate(&tmp, "creating")?;
        self.io
            .write_durable(&f, &tmp, 0, &bytes, Site::CompactIndexData)?;
        self.io
            .rename(&tmp, &index_path, "renaming compacted index over")?;
        self.io.sync_dir(&self.dir, Site::CompactRename)?;
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
            let _ = self.io.remove(&s.path);
        }
        self.io.sync_dir(&self.dir, Site::CompactCleanup)?;
        let new_bytes: u64 = new_segments
            .iter()
            .filter_map(|s| s.file.metadata().ok())
            .map(|m| m.len())
            .sum();
        Ok(old_bytes.saturating_sub(new_bytes))
    }
}

/// Copies one payload between segments, returning the checksum of the bytes copied.
fn copy_range(
    io: &Io,
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
        io.write_at(&dst.file, &dst.path, at + done, &buf[..n])?;
        done += n as u64;
    }
    Ok(h.digest())
}
