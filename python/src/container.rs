//! A thin, checksummed container for objects made of several HomE blobs (an evaluation-key
//! set, an encrypted tensor). Each inner blob keeps HomE's own header and checksum
//! (`he_core::serialize`); the container adds framing:
//!
//! ```text
//! offset  size  field
//!      0     8  magic (per container kind: "HOMEKSET", "HOMEETNS")
//!      8     2  container version (1), little-endian
//!     10     2  reserved (0)
//!     12     4  number of blobs
//!     16     8  hash of the parameters
//!     24     8  body length in bytes
//!     32     8  XXH3-64 of bytes 0..32 followed by the body
//!     40        body: u32 metadata length, metadata, then per blob: u64 length, blob
//! ```
//!
//! Decoding checks, in order: header length, magic, version, body length against the bytes
//! present, checksum, then every length against what remains (nothing is allocated from an
//! unchecked length).

use crate::{Failure, Res};

const VERSION: u16 = 1;
const HEADER: usize = 40;

/// Magic of an evaluation-key set.
pub(crate) const KEYSET_MAGIC: [u8; 8] = *b"HOMEKSET";
/// Magic of an encrypted tensor batch.
pub(crate) const TENSOR_MAGIC: [u8; 8] = *b"HOMEETNS";

fn checksum(head: &[u8], body: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(head);
    h.update(body);
    h.digest()
}

/// Writes a container.
pub(crate) fn write(magic: [u8; 8], params_hash: u64, meta: &[u8], blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut body =
        Vec::with_capacity(4 + meta.len() + blobs.iter().map(|b| b.len() + 8).sum::<usize>());
    body.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    body.extend_from_slice(meta);
    for b in blobs {
        body.extend_from_slice(&(b.len() as u64).to_le_bytes());
        body.extend_from_slice(b);
    }
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(blobs.len() as u32).to_le_bytes());
    out.extend_from_slice(&params_hash.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let c = checksum(&out[..32], &body);
    out.extend_from_slice(&c.to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A decoded container: the parameters' hash, the metadata and the blobs (borrowed).
pub(crate) struct Opened<'a> {
    /// Hash of the parameters recorded by the writer.
    pub params_hash: u64,
    /// Metadata bytes.
    pub meta: &'a [u8],
    /// The blobs.
    pub blobs: Vec<&'a [u8]>,
}

fn bad(what: &str, reason: impl std::fmt::Display) -> Failure {
    Failure::Decode(format!("cannot decode {what}: {reason}"))
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

/// Parses and verifies a container written by [`write`].
pub(crate) fn open<'a>(what: &str, magic: [u8; 8], bytes: &'a [u8]) -> Res<Opened<'a>> {
    if bytes.len() < HEADER {
        return Err(bad(
            what,
            format!(
                "{} bytes, shorter than the {HEADER}-byte header",
                bytes.len()
            ),
        ));
    }
    let (head, body) = bytes.split_at(HEADER);
    if head[..8] != magic {
        return Err(bad(
            what,
            format!(
                "wrong magic {:?}, expected {:?}",
                String::from_utf8_lossy(&head[..8]),
                String::from_utf8_lossy(&magic)
            ),
        ));
    }
    let version = u16::from_le_bytes([head[8], head[9]]);
    if version != VERSION {
        return Err(bad(
            what,
            format!("container version {version}, this build reads {VERSION}"),
        ));
    }
    let count = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as usize;
    let params_hash = le_u64(&head[16..24]);
    let body_len = le_u64(&head[24..32]);
    if body_len != body.len() as u64 {
        return Err(bad(
            what,
            format!("body of {} bytes, header says {body_len}", body.len()),
        ));
    }
    if checksum(&head[..32], body) != le_u64(&head[32..40]) {
        return Err(bad(what, "checksum mismatch (corrupted data)"));
    }
    let mut rest = body;
    let mut take = |n: usize, field: &str| -> Res<&'a [u8]> {
        if rest.len() < n {
            return Err(bad(
                what,
                format!("{field} needs {n} bytes, {} remain", rest.len()),
            ));
        }
        let (a, b) = rest.split_at(n);
        rest = b;
        Ok(a)
    };
    let ml = take(4, "metadata length")?;
    let ml = u32::from_le_bytes([ml[0], ml[1], ml[2], ml[3]]) as usize;
    let meta = take(ml, "metadata")?;
    if count > body.len() / 8 {
        return Err(bad(
            what,
            format!("{count} blobs cannot fit in {} bytes", body.len()),
        ));
    }
    let mut blobs = Vec::with_capacity(count);
    for i in 0..count {
        let l = le_u64(take(8, "blob length")?);
        let l =
            usize::try_from(l).map_err(|_| bad(what, format!("blob {i} length {l} too large")))?;
        blobs.push(take(l, "blob")?);
    }
    if !rest.is_empty() {
        return Err(bad(what, format!("{} trailing bytes", rest.len())));
    }
    Ok(Opened {
        params_hash,
        meta,
        blobs,
    })
}

/// A little-endian reader over metadata.
pub(crate) struct Meta<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Meta<'a> {
    /// A reader over `b`.
    pub(crate) fn new(what: &'static str, b: &'a [u8]) -> Self {
        Self { b, what }
    }
    /// Reads a `u64`.
    pub(crate) fn u64(&mut self) -> Res<u64> {
        if self.b.len() < 8 {
            return Err(bad(self.what, "metadata truncated"));
        }
        let (a, r) = self.b.split_at(8);
        self.b = r;
        Ok(le_u64(a))
    }
    /// Reads a `u64` that must fit a `usize` no larger than `max`.
    pub(crate) fn usize_max(&mut self, max: usize, field: &str) -> Res<usize> {
        let v = self.u64()?;
        match usize::try_from(v) {
            Ok(v) if v <= max => Ok(v),
            _ => Err(bad(
                self.what,
                format!("{field} = {v}, allowed at most {max}"),
            )),
        }
    }
    /// Fails unless every byte was read.
    pub(crate) fn finish(&self) -> Res<()> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(bad(
                self.what,
                format!("{} unexpected metadata bytes", self.b.len()),
            ))
        }
    }
}
