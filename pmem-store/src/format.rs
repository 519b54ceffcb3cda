//! On-disk format: index header, index records, segment header (all little-endian).
//!
//! ```text
//! index.log   [IndexHeader: 64 bytes][Record]*
//!   IndexHeader  magic "HOMEIDX\0" | version u32 | flags u32 (bit 0: bound to params) |
//!                params_hash u64 | store_id u64 | first_generation u64 | created_unix u64 |
//!                reserved 12 | crc32 u32 (of bytes 0..60)
//!   Record       magic u32 "REC1" | body_len u32 | generation u64 | body | crc32 u32
//!                (crc over body_len, generation and body)
//!   Put body     op=1 u8 | key_len u16 | key | type u16 | params_hash u64 | segment u32 |
//!                offset u64 | len u64 | xxh3 u64 | dims 4 x u64 | aux u64 | user_len u32 | user
//!   Delete body  op=2 u8 | key_len u16 | key
//! seg-NNNNNNNN.dat
//!   [SegmentHeader: 64 bytes, padded to 4096][payload, padded to 4096]*
//!   SegmentHeader magic "HOMESEG\0" | version u32 | segment u32 | store_id u64 | reserved 36 |
//!                crc32 u32
//! ```

use crate::object::{ObjectInfo, ObjectMeta, ObjectType, MAX_KEY_LEN, MAX_USER_META};

/// Format version written and read by this build.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the index header.
pub const INDEX_HEADER_LEN: usize = 64;
/// Size of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 64;
/// Alignment (and padding) of object payloads in segments: one 4 KiB page, so that a mapped
/// payload starts page-aligned (hence 64-byte and 8-byte aligned for `u64` views).
pub const PAYLOAD_ALIGN: u64 = 4096;
const INDEX_MAGIC: &[u8; 8] = b"HOMEIDX\0";
const SEGMENT_MAGIC: &[u8; 8] = b"HOMESEG\0";
const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"REC1");
/// Record frame overhead: magic, body_len, generation before the body; crc after.
pub const RECORD_OVERHEAD: usize = 4 + 4 + 8 + 4;
/// Largest record body accepted.
pub const MAX_RECORD_BODY: usize =
    1 + 2 + MAX_KEY_LEN + 2 + 8 + 4 + 8 + 8 + 8 + 32 + 8 + 4 + MAX_USER_META;

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
        let mut b = [0u8; INDEX_HEADER_LEN];
        b[0..8].copy_from_slice(INDEX_MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&u32::from(self.params_hash.is_some()).to_le_bytes());
        b[16..24].copy_from_slice(&self.params_hash.unwrap_or(0).to_le_bytes());
        b[24..32].copy_from_slice(&self.store_id.to_le_bytes());
        b[32..40].copy_from_slice(&self.first_generation.to_le_bytes());
        b[40..48].copy_from_slice(&self.created_unix.to_le_bytes());
        let c = crc(&[&b[0..60]]);
        b[60..64].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// Decodes a header; `Err((reason, version))` says what was wrong (version set when the
    /// header is intact but of another format version).
    pub fn decode(b: &[u8]) -> Result<Self, (String, Option<u32>)> {
        if b.len() < INDEX_HEADER_LEN {
            return Err((
                format!(
                    "expected a {INDEX_HEADER_LEN}-byte header, found {} bytes",
                    b.len()
                ),
                None,
            ));
        }
        if &b[0..8] != INDEX_MAGIC {
            return Err((
                format!(
                    "expected magic {:?}, found {:?}",
                    String::from_utf8_lossy(INDEX_MAGIC),
                    String::from_utf8_lossy(&b[0..8])
                ),
                None,
            ));
        }
        let stored = u32_at(b, 60);
        let computed = crc(&[&b[0..60]]);
        if stored != computed {
            return Err((
                format!("header checksum expected {stored:08x}, found {computed:08x}"),
                None,
            ));
        }
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
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(SEGMENT_MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.segment.to_le_bytes());
        b[16..24].copy_from_slice(&self.store_id.to_le_bytes());
        let c = crc(&[&b[0..60]]);
        b[60..64].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// Decodes a header, saying what was expected and found on failure.
    pub fn decode(b: &[u8]) -> Result<Self, String> {
        if b.len() < SEGMENT_HEADER_LEN {
            return Err(format!(
                "expected a {SEGMENT_HEADER_LEN}-byte header, found {} bytes",
                b.len()
            ));
        }
        if &b[0..8] != SEGMENT_MAGIC {
            return Err(format!(
                "expected magic {:?}, found {:?}",
                String::from_utf8_lossy(SEGMENT_MAGIC),
                String::from_utf8_lossy(&b[0..8])
            ));
        }
        let stored = u32_at(b, 60);
        let computed = crc(&[&b[0..60]]);
        if stored != computed {
            return Err(format!(
                "header checksum expected {stored:08x}, found {computed:08x}"
            ));
        }
        let version = u32_at(b, 8);
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version expected {FORMAT_VERSION}, found {version}"
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
}

impl Record {
    /// The framed bytes of this record with generation `generation`.
    pub fn encode(&self, generation: u64) -> Vec<u8> {
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
        }
        let len = (body.len() as u32).to_le_bytes();
        let gen = generation.to_le_bytes();
        let c = crc(&[&len, &gen, &body]);
        let mut out = Vec::with_capacity(body.len() + RECORD_OVERHEAD);
        out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
        out.extend_from_slice(&len);
        out.extend_from_slice(&gen);
        out.extend_from_slice(&body);
        out.extend_from_slice(&c.to_le_bytes());
        out
    }

    /// Decodes the record framed at the start of `b`: `Ok((record, generation, bytes used))`,
    /// or `Err(reason)` for a torn, truncated or damaged record.
    pub fn decode(b: &[u8]) -> Result<(Record, u64, usize), String> {
        if b.len() < RECORD_OVERHEAD {
            return Err(format!(
                "record frame needs {RECORD_OVERHEAD} bytes, found {}",
                b.len()
            ));
        }
        let magic = u32_at(b, 0);
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
        let total = RECORD_OVERHEAD + body_len;
        if b.len() < total {
            return Err(format!("record needs {total} bytes, found {}", b.len()));
        }
        let generation = u64_at(b, 8);
        let body = &b[16..16 + body_len];
        let stored = u32_at(b, 16 + body_len);
        let computed = crc(&[&b[4..8], &b[8..16], body]);
        if stored != computed {
            return Err(format!(
                "record checksum expected {stored:08x}, found {computed:08x}"
            ));
        }
        let rec = decode_body(body, generation)?;
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
    fn u16(&mut self) -> Result<u16, String> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
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
    let op = c.take(1)?[0];
    let rec = match op {
        1 => {
            let key = c.key()?;
            let tag = c.u16()?;
            let ty = ObjectType::from_tag(tag)
                .ok_or_else(|| format!("object type tag 1..=6 expected, found {tag}"))?;
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
        _ => {
            return Err(format!(
                "record op 1 (put) or 2 (delete) expected, found {op}"
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
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_torn_detection() {
        let info = ObjectInfo {
            key: "galois/5".into(),
            meta: ObjectMeta::new(ObjectType::GaloisKey, 0xabc)
                .with_dims([1, 2, 3, 4])
                .with_aux(5)
                .with_user(vec![9; 10]),
            segment: 3,
            offset: 8192,
            len: 100,
            checksum: 77,
            generation: 42,
        };
        let bytes = Record::Put(info.clone()).encode(42);
        let (rec, gen, used) = Record::decode(&bytes).unwrap();
        assert_eq!(rec, Record::Put(info));
        assert_eq!((gen, used), (42, bytes.len()));
        for cut in 0..bytes.len() {
            assert!(Record::decode(&bytes[..cut]).is_err());
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(Record::decode(&b).is_err(), "flip at {i} undetected");
        }
    }

    #[test]
    fn headers_round_trip() {
        let h = IndexHeader {
            params_hash: Some(7),
            store_id: 9,
            first_generation: 1,
            created_unix: 3,
        };
        assert_eq!(IndexHeader::decode(&h.encode()).unwrap(), h);
        let s = SegmentHeader {
            segment: 4,
            store_id: 9,
        };
        assert_eq!(SegmentHeader::decode(&s.encode()).unwrap(), s);
    }
}
