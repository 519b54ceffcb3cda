//! `verify`: every payload read back (`pread`) and checked against its checksum.

use super::*;
use crate::cache::Segment;
use crate::error::{io_err, Result, StoreError};
use crate::object::ObjectInfo;
use crate::sys;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use xxhash_rust::xxh3::Xxh3;

impl Inner {
    pub(super) fn verify(&self) -> VerifyReport {
        let (objects, segments) = {
            let idx = self.read_index();
            (
                idx.objects.values().cloned().collect::<Vec<_>>(),
                idx.segments.clone(),
            )
        };
        let mut report = VerifyReport::default();
        if let Some(d) = self.recovery.damaged.as_ref().filter(|d| !d.discarded) {
            report.failures.push(StoreError::DamagedRecord {
                path: self.dir.join(INDEX_FILE),
                offset: d.offset,
                bytes: d.bytes,
                reason: d.reason.clone(),
            });
        }
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
