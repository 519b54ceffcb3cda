//! Writes: `put`, `delete`, the index append (commit point) and segment creation.

use super::*;
use crate::cache::Segment;
use crate::error::{Result, StoreError};
use crate::format::{align_up, Record, SegmentHeader, PAYLOAD_ALIGN};
use crate::fsio::Site;
use crate::object::{ObjectInfo, ObjectMeta, MAX_KEY_LEN, MAX_USER_META};
use crate::sys;
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_64;

pub(super) fn validate_key(key: &str) -> Result<()> {
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

/// Refuses a secret key, whether declared by its type or carried as a serialized secret-key
/// blob under another type (e.g. [`crate::ObjectType::Bytes`]).
fn refuse_secret(key: &str, meta: &ObjectMeta, payload: &[u8]) -> Result<()> {
    let refuse = |reason| {
        Err(StoreError::SecretKeyRefused {
            key: key.to_string(),
            reason,
        })
    };
    if meta.ty.is_secret() {
        return refuse("its object type is secret-key");
    }
    let blob_tag = payload
        .get(10..12)
        .and_then(|t| <[u8; 2]>::try_from(t).ok())
        .map(u16::from_le_bytes);
    if payload.starts_with(&he_core::serialize::MAGIC)
        && blob_tag
            .and_then(crate::ObjectType::from_tag)
            .is_some_and(|k| k.is_secret())
    {
        return refuse("its payload is a serialized secret-key blob");
    }
    Ok(())
}

impl Inner {
    pub(super) fn check_put(&self, key: &str, meta: &ObjectMeta) -> Result<()> {
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

    pub(super) fn put(&self, key: &str, meta: &ObjectMeta, payload: &[u8]) -> Result<ObjectInfo> {
        self.check_put(key, meta)?;
        refuse_secret(key, meta, payload)?;
        if let Some((shape, _)) = meta.key_shape() {
            let bytes = crate::keys::checked_key_words(&shape).and_then(|w| w.checked_mul(8));
            if bytes != Some(payload.len()) {
                return Err(StoreError::InvalidObject {
                    key: key.to_string(),
                    reason: format!(
                        "key shape {shape:?} needs {} bytes, payload has {}",
                        bytes.map_or("more than usize::MAX".to_string(), |b| b.to_string()),
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
        self.io
            .write_durable(&seg.file, &seg.path, offset, payload, Site::PutPayload)?;
        let mut info = ObjectInfo {
            key: key.to_string(),
            meta: meta.clone(),
            segment: seg.id,
            offset,
            len,
            checksum: xxh3_64(payload),
            generation: w.next_generation,
        };
        info.generation = self.append_record(&mut w, &Record::Put(info.clone()))?;
        self.write_index()
            .objects
            .insert(key.to_string(), info.clone());
        self.cache.invalidate(key);
        if self.config.drop_page_cache {
            sys::drop_page_cache(&seg.file, offset, len);
        }
        Ok(info)
    }

    pub(super) fn delete(&self, key: &str) -> Result<()> {
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
    /// its last committed length, so later appends never follow garbage. Returns the
    /// generation the record was committed with.
    pub(super) fn append_record(&self, w: &mut Writer, rec: &Record) -> Result<u64> {
        let (bytes, next) = rec.encode_at(w.index_len, w.next_generation);
        let path = self.dir.join(INDEX_FILE);
        if let Err(e) =
            self.io
                .write_durable(&w.index, &path, w.index_len, &bytes, Site::IndexAppend)
        {
            let rollback = self
                .io
                .set_len(&w.index, &path, w.index_len)
                .and_then(|_| self.io.sync_data(&w.index, &path, Site::AppendRollback));
            if let Err(r) = rollback {
                w.poisoned = Some(format!(
                    "index append failed ({e}) and rollback failed ({r})"
                ));
            }
            return Err(e);
        }
        w.index_len += bytes.len() as u64;
        w.next_generation = next;
        Ok(next - 1)
    }

    /// Creates, initialises and flushes a new segment file (and its directory entry).
    pub(super) fn new_segment(&self, w: &mut Writer) -> Result<Arc<Segment>> {
        let id = w.next_segment;
        w.next_segment += 1;
        let seg = self.create_segment_file(id)?;
        let seg = Arc::new(seg);
        self.write_index().segments.insert(id, Arc::clone(&seg));
        Ok(seg)
    }

    pub(super) fn create_segment_file(&self, id: u32) -> Result<Segment> {
        let path = self.dir.join(segment_name(id));
        let file = self.io.create_new(&path, "creating segment")?;
        let header = SegmentHeader {
            segment: id,
            store_id: self.header.store_id,
        }
        .encode();
        self.io
            .write_durable(&file, &path, 0, &header, Site::SegmentHeader)?;
        self.io.sync_dir(&self.dir, Site::SegmentName)?;
        Ok(Segment {
            id,
            path,
            file,
            problem: None,
        })
    }
}
