//! On-disk format: index header, index records, segment header (all little-endian).
//!
//! ```text
//! index.log   [IndexHeader: 64 bytes][Record]*
//!   IndexHeader  magic "HOMEIDX\0" | version u32 (3) | flags u32 (bit 0: bound to params) |
//!                params_hash u64 | store_id u64 | first_generation u64 | created_unix u64 |
//!                reserved 12 | crc32 u32 (of bytes 0..60)
//!   Record       magic u32 "REC2" | body_len u32 | generation u64 | head_crc u32 (of the 16
//!                bytes before it) | body (scrambled) | crc u32 (of everything before it)
//!   Put body     op=1 u8 | key_len u16 | key | type u16 (an ObjectType tag) | params_hash u64 | segment u32 |
//!                offset u64 | len u64 | xxh3 u64 | dims 4 x u64 | aux u64 | user_len u32 | user
//!   Delete body  op=2 u8 | key_len u16 | key
//!   Pad body     op=3 u8 | filler (a no-op record; see below)
//! seg-NNNNNNNN.dat
//!   [SegmentHeader: 64 bytes, padded to 4096][payload, padded to 4096]*
//!   SegmentHeader magic "HOMESEG\0" | version u32 (1) | segment u32 | store_id u64 |
//!                reserved 36 | crc32 u32
//! ```
//!
//! ## Telling a torn append from a damaged record (format version 2)
//!
//! Recovery must drop a torn tail (an append cut short by a crash) but must never drop a
//! committed record that was later damaged. Version 2 makes the two distinguishable:
//!
//! * the frame head (magic, body length, generation) has its own CRC, so a valid head gives a
//!   trustworthy record length: a file that ends before that length is a torn append;
//! * the body is XORed with a keystream derived from the generation (so that runs of zero
//!   bytes in keys or user metadata are not stored as zeros), and the writer never lets a
//!   record cover a 512-byte-aligned file sector with fewer than two set bits (it prefixes a
//!   `Pad` record when the placement would), so **a committed record never holds an all-zero
//!   sector, even after any one bit flip**;
//! * a crash during an append leaves the sectors that were not written reading back as
//!   zeros (the bytes lie past the file's committed end), so a complete-length record whose
//!   checksum fails *and* that holds an all-zero sector is a torn append; one whose checksum
//!   fails with every sector non-zero is a damaged committed record, reported and kept.
//!
//! ## Object types (format version 3)
//!
//! The `type` of a Put body is the tag of [`ObjectType`], `he-core`'s one object registry
//! ([`he_core::serialize::ObjectKind`]), the same numbers its serialized blobs carry.
//! Version 3 adopted it: version 2 numbered types on its own (ciphertext 1, plaintext 2,
//! relinearization key 3, Galois key 4, tensor 5, bytes 6, and the sparse-to-dense key as a
//! relinearization key with `aux` 1), so a version-2 index would be misread and is refused.
//! A Put of the secret-key type is refused as corrupt: the store never holds secrets.
//!
//! Version-1 and version-2 indexes are refused with [`crate::StoreError::UnsupportedVersion`]
//! (see [`version_hint`]).
//!
//! Checksums here (CRC-32 on records, XXH3-64 on payloads) detect accidental corruption
//! (media errors, bit flips, torn writes). They are not message authentication codes and do
//! not detect deliberate tampering: anyone who can write the files can recompute them.
#![deny(clippy::indexing_slicing)]

use crate::object::{ObjectInfo, ObjectMeta, ObjectType, MAX_KEY_LEN, MAX_USER_META};

/// Index format version written and read by this build (3: object types from the shared
/// registry).
pub const FORMAT_VERSION: u32 = 3;
/// Segment format version written and read by this build (unchanged since version 1).
pub const SEGMENT_FORMAT_VERSION: u32 = 1;
/// Size of the index header.
pub const INDEX_HEADER_LEN: usize = 64;
/// Size of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 64;
/// Alignment (and padding) of object payloads in segments: one 4 KiB page, so that a mapped
/// payload starts page-aligned (hence 64-byte and 8-byte aligned for `u64` views).
pub const PAYLOAD_ALIGN: u64 = 4096;
/// The smallest unit a device writes atomically, as assumed by torn-tail detection.
pub const SECTOR: u64 = 512;
const INDEX_MAGIC: &[u8; 8] = b"HOMEIDX\0";
const SEGMENT_MAGIC: &[u8; 8] = b"HOMESEG\0";
const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"REC2");
/// Record frame head: magic, body_len, generation, head crc.
pub const RECORD_HEAD: usize = 4 + 4 + 8 + 4;
/// Record frame overhead: the head, and the crc after the body.
pub const RECORD_OVERHEAD: usize = RECORD_HEAD + 4;
/// Largest record body accepted.
pub const MAX_RECORD_BODY: usize =
    1 + 2 + MAX_KEY_LEN + 2 + 8 + 4 + 8 + 8 + 8 + 32 + 8 + 4 + MAX_USER_META;

/// What changed since index format version `found`, for the message refusing it.
pub fn version_hint(found: u32) -> &'static str {
    match found {
        1 => "version 1 predates the torn / damaged record distinction and the shared object registry",
        2 => "version 2 numbered object types on its own, before the registry shared with he-core's serialization; its tags would be misread",
        v if v > FORMAT_VERSION => "written by a newer pmem-store",
        _ => "not a version any pmem-store wrote",
    }
}

/// Rounds `x` up to a multiple of [`PAYLOAD_ALIGN`].
pub fn align_up(x: u64) -> u64 {
    x.div_ceil(PAYLOAD_ALIGN).saturating_mul(PAYLOAD_ALIGN)
}

fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn range(b: &[u8], from: usize, to: usize) -> &[u8] {
    b.get(from..to).unwrap_or(&[])
}

/// Builds a 64-byte header from its little-endian fields, with the crc of bytes 0..60.
fn finish_header(mut fields: Vec<u8>) -> [u8; 64] {
    fields.resize(60, 0);
    let c = crc(&[&fields]);
    fields.extend_from_slice(&c.to_le_bytes());
    let mut out = [0u8; 64];
    out.copy_from_slice(range(&fields, 0, 64));
    out
}

/// Checks magic and crc of a 64-byte header; `Err(reason)` says what was wrong.
fn check_header(b: &[u8], magic: &[u8; 8]) -> Result<(), String> {
    if b.len() < 64 {
        return Err(format!(
            "expected a 64-byte header, found {} bytes",
            b.len()
        ));
    }
    let found = range(b, 0, 8);
    if found != magic {
        return Err(format!(
            "expected magic {:?}, found {:?}",
            String::from_utf8_lossy(magic),
            String::from_utf8_lossy(found)
        ));
    }
    let stored = u32_at(b, 60);
    let computed = crc(&[range(b, 0, 60)]);
    if stored != computed {
        return Err(format!(
            "header checksum expected {stored:08x}, found {computed:08x}"
        ));
    }
    Ok(())
}

/// Store-wide metadata at the start of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexHeader {
    /// Parameters the store is bound to, if any.
    pub params_hash: Option<u64>,
    /// Random identifier shared by the index and its segments.
    pub store_id: u64,
    /// Generation of the first record after the header.
    pub first_generation: u64,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: u64,
}

impl IndexHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; INDEX_HEADER_LEN] {
        let mut b = INDEX_MAGIC.to_vec();
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(&u32::from(self.params_hash.is_some()).to_le_bytes());
        b.extend_from_slice(&self.params_hash.unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&self.store_id.to_le_bytes());
        b.extend_from_slice(&self.first_generation.to_le_bytes());
        b.extend_from_slice(&self.created_unix.to_le_bytes());
        finish_header(b)
    }

    /// Decodes a header; `Err((reason, version))` says what was wrong (version set when the
    /// header is intact but of another format version).
    pub fn decode(b: &[u8]) -> Result<Self, (String, Option<u32>)> {
        check_header(b, INDEX_MAGIC).map_err(|r| (r, None))?;
        let version = u32_at(b, 8);
        if version != FORMAT_VERSION {
            return Err((String::new(), Some(version)));
        }
        let bound = u32_at(b, 12) & 1 == 1;
        Ok(Self {
            params_hash: bound.then(|| u64_at(b, 16)),
            store_id: u64_at(b, 24),
            first_generation: u64_at(b, 32),
            created_unix: u64_at(b, 40),
        })
    }
}

/// Header of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Segment number.
    pub segment: u32,
    /// Store identifier (must match the index's).
    pub store_id: u64,
}

impl SegmentHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = SEGMENT_MAGIC.to_vec();
        b.extend_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(&self.segment.to_le_bytes());
        b.extend_from_slice(&self.store_id.to_le_bytes());
        finish_header(b)
    }

    /// Decodes a header, saying what was expected and found on failure.
    pub fn decode(b: &[u8]) -> Result<Self, String> {
        check_header(b, SEGMENT_MAGIC)?;
        let version = u32_at(b, 8);
        if version != SEGMENT_FORMAT_VERSION {
            return Err(format!(
                "format version expected {SEGMENT_FORMAT_VERSION}, found {version}"
            ));
        }
        Ok(Self {
            segment: u32_at(b, 12),
            store_id: u64_at(b, 16),
        })
    }
}

/// One index record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An object committed (or replaced).
    Put(ObjectInfo),
    /// An object deleted.
    Delete(String),
    /// A no-op of this many filler bytes, written only to move the next record off a sector
    /// placement that torn-tail detection could not tell apart (see the module docs).
    Pad(usize),
}

/// XORs `body` with the keystream of `generation` (an involution: it scrambles and
/// unscrambles). Not encryption: it only keeps zero runs of the content off the medium.
fn scramble(body: &mut [u8], generation: u64) {
    let mut state = generation ^ 0x5CA7_7E2E_D5EC_7025;
    for chunk in body.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        for (b, k) in chunk.iter_mut().zip(z.to_le_bytes()) {
            *b ^= k;
        }
    }
}

/// The pieces of `bytes` (placed at file offset `offset`) that fall in each
/// [`SECTOR`]-aligned file sector.
fn sector_pieces(bytes: &[u8], offset: u64) -> impl Iterator<Item = &[u8]> {
    let first = (SECTOR - offset % SECTOR) as usize;
    let (head, rest) = bytes.split_at(first.min(bytes.len()));
    std::iter::once(head)
        .chain(rest.chunks(SECTOR as usize))
        .filter(|p| !p.is_empty())
}

/// Whether some sector piece of `bytes` at `offset` is all zeros (what unwritten sectors of
/// a torn append read back as).
pub fn has_zero_sector(bytes: &[u8], offset: u64) -> bool {
    sector_pieces(bytes, offset).any(|p| p.iter().all(|&b| b == 0))
}

/// Whether some sector piece has fewer than two set bits (one bit flip could zero it).
fn has_weak_sector(bytes: &[u8], offset: u64) -> bool {
    sector_pieces(bytes, offset).any(|p| p.iter().map(|b| b.count_ones()).sum::<u32>() < 2)
}

/// A record frame's head, when intact: `(generation, total framed length)`.
pub fn record_head(b: &[u8]) -> Result<(u64, usize), String> {
    if b.len() < RECORD_HEAD {
        return Err(format!(
            "record head needs {RECORD_HEAD} bytes, found {}",
            b.len()
        ));
    }
    let magic = u32_at(b, 0);
    let stored = u32_at(b, 16);
    let computed = crc(&[range(b, 0, 16)]);
    if stored != computed {
        return Err(format!(
            "record head checksum expected {stored:08x}, found {computed:08x} (magic {magic:08x})"
        ));
    }
    if magic != RECORD_MAGIC {
        return Err(format!(
            "record magic expected {RECORD_MAGIC:08x}, found {magic:08x}"
        ));
    }
    let body_len = u32_at(b, 4) as usize;
    if body_len > MAX_RECORD_BODY {
        return Err(format!(
            "record body of at most {MAX_RECORD_BODY} bytes expected, found {body_len}"
        ));
    }
    Ok((u64_at(b, 8), RECORD_OVERHEAD + body_len))
}

impl Record {
    fn body(&self) -> Vec<u8> {
        let mut body = Vec::new();
        match self {
            Record::Put(o) => {
                body.push(1u8);
                body.extend_from_slice(&(o.key.len() as u16).to_le_bytes());
                body.extend_from_slice(o.key.as_bytes());
                body.extend_from_slice(&o.meta.ty.tag().to_le_bytes());
                body.extend_from_slice(&o.meta.params_hash.to_le_bytes());
                body.extend_from_slice(&o.segment.to_le_bytes());
                body.extend_from_slice(&o.offset.to_le_bytes());
                body.extend_from_slice(&o.len.to_le_bytes());
                body.extend_from_slice(&o.checksum.to_le_bytes());
                for d in o.meta.dims {
                    body.extend_from_slice(&d.to_le_bytes());
                }
                body.extend_from_slice(&o.meta.aux.to_le_bytes());
                body.extend_from_slice(&(o.meta.user.len() as u32).to_le_bytes());
                body.extend_from_slice(&o.meta.user);
            }
            Record::Delete(key) => {
                body.push(2u8);
                body.extend_from_slice(&(key.len() as u16).to_le_bytes());
                body.extend_from_slice(key.as_bytes());
            }
            Record::Pad(n) => {
                body.push(3u8);
                body.resize(1 + n, 0xa5);
            }
        }
        body
    }

    /// The framed bytes of this record with generation `generation`.
    pub fn encode(&self, generation: u64) -> Vec<u8> {
        frame(&self.body(), generation)
    }
}

/// Frames an (unscrambled) record body as generation `generation`: valid head, scrambled body,
/// valid checksum. [`Record::encode`] is `frame` of the record's body; fuzz targets use it to
/// reach the body parser with arbitrary bodies.
pub fn frame(body: &[u8], generation: u64) -> Vec<u8> {
    {
        let mut body = body.to_vec();
        scramble(&mut body, generation);
        let mut out = Vec::with_capacity(body.len() + RECORD_OVERHEAD);
        out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&generation.to_le_bytes());
        let head_crc = crc(&[&out]);
        out.extend_from_slice(&head_crc.to_le_bytes());
        out.extend_from_slice(&body);
        let c = crc(&[&out]);
        out.extend_from_slice(&c.to_le_bytes());
        out
    }
}

impl Record {
    /// The bytes to append at file offset `offset` to commit this record as generation
    /// `generation`, and the generation after it: the record, preceded by a [`Record::Pad`]
    /// (one more generation) where its placement would leave a sector piece with fewer than
    /// two set bits, so that no committed record can ever pass for a torn append.
    pub fn encode_at(&self, offset: u64, generation: u64) -> (Vec<u8>, u64) {
        let plain = self.encode(generation);
        if !has_weak_sector(&plain, offset) {
            return (plain, generation + 1);
        }
        let mut last = plain;
        for n in 0..4 * SECTOR as usize {
            let mut bytes = Record::Pad(n).encode(generation);
            bytes.extend_from_slice(&self.encode(generation + 1));
            if !has_weak_sector(&bytes, offset) {
                return (bytes, generation + 2);
            }
            last = bytes;
        }
        // Not reached for any record this crate writes (the scrambled body has no long
        // zero runs); still a valid record, only without the guarantee.
        (last, generation + 2)
    }

    /// Decodes the record framed at the start of `b`: `Ok((record, generation, bytes used))`,
    /// or `Err(reason)` for a torn, truncated or damaged record.
    pub fn decode(b: &[u8]) -> Result<(Record, u64, usize), String> {
        let (generation, total) = record_head(b)?;
        if b.len() < total {
            return Err(format!("record needs {total} bytes, found {}", b.len()));
        }
        let stored = u32_at(b, total - 4);
        let computed = crc(&[range(b, 0, total - 4)]);
        if stored != computed {
            return Err(format!(
                "record checksum expected {stored:08x}, found {computed:08x}"
            ));
        }
        let mut body = range(b, RECORD_HEAD, total - 4).to_vec();
        scramble(&mut body, generation);
        let rec = decode_body(&body, generation)?;
        Ok((rec, generation, total))
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self.b.get(self.at..self.at + n).ok_or_else(|| {
            format!(
                "record body too short: needs {} bytes, has {}",
                self.at + n,
                self.b.len()
            )
        })?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    fn u16(&mut self) -> Result<u16, String> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([
            s.first().copied().unwrap_or(0),
            s.get(1).copied().unwrap_or(0),
        ]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32_at(self.take(4)?, 0))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64_at(self.take(8)?, 0))
    }
    fn key(&mut self) -> Result<String, String> {
        let n = self.u16()? as usize;
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| "record key is not UTF-8".to_string())
    }
}

fn decode_body(body: &[u8], generation: u64) -> Result<Record, String> {
    let mut c = Cursor { b: body, at: 0 };
    let op = c.u8()?;
    let rec = match op {
        1 => {
            let key = c.key()?;
            let tag = c.u16()?;
            let ty = ObjectType::from_tag(tag).ok_or_else(|| {
                format!("an object type tag of the registry (1..=12) expected, found {tag}")
            })?;
            if ty.is_secret() {
                return Err(format!(
                    "a {ty} record (tag {tag}): a store never holds secret keys"
                ));
            }
            let params_hash = c.u64()?;
            let segment = c.u32()?;
            let offset = c.u64()?;
            let len = c.u64()?;
            let checksum = c.u64()?;
            let mut dims = [0u64; 4];
            for d in &mut dims {
                *d = c.u64()?;
            }
            let aux = c.u64()?;
            let ulen = c.u32()? as usize;
            if ulen > MAX_USER_META {
                return Err(format!(
                    "user metadata of at most {MAX_USER_META} bytes expected, found {ulen}"
                ));
            }
            let user = c.take(ulen)?.to_vec();
            if offset % PAYLOAD_ALIGN != 0 {
                return Err(format!(
                    "payload offset aligned to {PAYLOAD_ALIGN} expected, found {offset}"
                ));
            }
            Record::Put(ObjectInfo {
                key,
                meta: ObjectMeta {
                    ty,
                    params_hash,
                    dims,
                    aux,
                    user,
                },
                segment,
                offset,
                len,
                checksum,
                generation,
            })
        }
        2 => Record::Delete(c.key()?),
        3 => {
            let n = body.len().saturating_sub(1);
            c.take(n)?;
            Record::Pad(n)
        }
        _ => {
            return Err(format!(
                "record op 1 (put), 2 (delete) or 3 (pad) expected, found {op}"
            ))
        }
    };
    if c.at != body.len() {
        return Err(format!(
            "record body of {} bytes expected, found {}",
            c.at,
            body.len()
        ));
    }
    Ok(rec)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests;
