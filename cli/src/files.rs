//! On-disk formats of the CLI and the atomic-write discipline.
//!
//! A **chunk file** holds the ciphertexts of one work unit (a batch of images in throughput
//! mode, one image in latency mode), either encrypted inputs (`home encrypt`) or encrypted
//! outputs (`home infer`):
//!
//! ```text
//! offset  size  field
//!      0     8  magic "HOMECHK\0"
//!      8     2  format version (1)
//!     10     2  kind: 1 = encrypted input, 2 = encrypted result
//!     12     4  chunk index
//!     16     8  index of the first image in the chunk
//!     24     4  images in the chunk
//!     28     4  ciphertexts (n)
//!     32     8  parameters' hash
//!     40     8  source: XXH3-64 of the input chunk file a result was computed from (0 for inputs)
//!     48        n × (u64 length ‖ he-core ciphertext blob, itself headed and checksummed)
//!    end-8   8  XXH3-64 of every byte before it
//! ```
//!
//! Every file the CLI writes goes through [`write_atomic`]: a temporary file in the same
//! directory, `fsync`, `rename` over the final name, `fsync` of the directory. A reader
//! therefore sees either no file or a complete one; a killed writer leaves only a temporary
//! file (`.NAME.tmp.PID`), which the next run removes.

use crate::error::{fail, io_ctx, Context, Result};
use he_core::serialize::{open, ObjectType, HEADER_LEN};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::xxh3_64;

/// Magic bytes of a chunk file.
pub const CHUNK_MAGIC: [u8; 8] = *b"HOMECHK\0";
/// Chunk format version.
pub const CHUNK_VERSION: u16 = 1;
const CHUNK_HEADER: usize = 48;

/// What a chunk file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    /// Encrypted inputs.
    Input,
    /// Encrypted results.
    Result,
}

impl ChunkKind {
    fn tag(self) -> u16 {
        match self {
            Self::Input => 1,
            Self::Result => 2,
        }
    }
    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Input => "encrypted input",
            Self::Result => "encrypted result",
        }
    }
}

/// The header of a chunk file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Input or result.
    pub kind: ChunkKind,
    /// Chunk index within the batch.
    pub index: u32,
    /// First image index.
    pub first: u64,
    /// Images in the chunk.
    pub images: u32,
    /// Parameters' hash.
    pub params_hash: u64,
    /// XXH3 of the input chunk a result came from (0 for inputs).
    pub source: u64,
}

/// Encodes a chunk file from serialized ciphertext blobs.
pub fn encode_chunk(h: &ChunkHeader, blobs: &[Vec<u8>]) -> Vec<u8> {
    let total: usize = blobs.iter().map(|b| b.len() + 8).sum();
    let mut out = Vec::with_capacity(CHUNK_HEADER + total + 8);
    out.extend_from_slice(&CHUNK_MAGIC);
    out.extend_from_slice(&CHUNK_VERSION.to_le_bytes());
    out.extend_from_slice(&h.kind.tag().to_le_bytes());
    out.extend_from_slice(&h.index.to_le_bytes());
    out.extend_from_slice(&h.first.to_le_bytes());
    out.extend_from_slice(&h.images.to_le_bytes());
    out.extend_from_slice(&(blobs.len() as u32).to_le_bytes());
    out.extend_from_slice(&h.params_hash.to_le_bytes());
    out.extend_from_slice(&h.source.to_le_bytes());
    for b in blobs {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    let sum = xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A decoded (checksum-verified) chunk: header and the ciphertext blobs, each of whose own
/// header and checksum was verified as well.
#[derive(Debug)]
pub struct Chunk<'a> {
    /// The header.
    pub header: ChunkHeader,
    /// The ciphertext blobs.
    pub blobs: Vec<&'a [u8]>,
}

/// Whether `bytes` starts like a chunk file.
pub fn is_chunk(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..8] == CHUNK_MAGIC
}

/// Parses and verifies a chunk file (`what` names it in errors).
pub fn decode_chunk<'a>(bytes: &'a [u8], what: &str) -> Result<Chunk<'a>> {
    if bytes.len() < CHUNK_HEADER + 8 {
        return fail(format!(
            "{what}: truncated: {} bytes, a chunk file has at least {}",
            bytes.len(),
            CHUNK_HEADER + 8
        ));
    }
    if !is_chunk(bytes) {
        return fail(format!("{what}: not a HomE chunk file (bad magic)"));
    }
    let version = le_u16(bytes, 8);
    if version != CHUNK_VERSION {
        return fail(format!(
            "{what}: chunk format version {version}, this build reads {CHUNK_VERSION}"
        ));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 8);
    if xxh3_64(body) != le_u64(tail, 0) {
        return fail(format!(
            "{what}: checksum mismatch: the file is truncated or corrupted"
        ));
    }
    let kind = match le_u16(bytes, 10) {
        1 => ChunkKind::Input,
        2 => ChunkKind::Result,
        k => return fail(format!("{what}: unknown chunk kind {k}")),
    };
    let header = ChunkHeader {
        kind,
        index: le_u32(bytes, 12),
        first: le_u64(bytes, 16),
        images: le_u32(bytes, 24),
        params_hash: le_u64(bytes, 32),
        source: le_u64(bytes, 40),
    };
    let n = le_u32(bytes, 28) as usize;
    let mut at = CHUNK_HEADER;
    let mut blobs = Vec::with_capacity(n.min(1 << 20));
    for i in 0..n {
        if at + 8 > body.len() {
            return fail(format!("{what}: truncated at ciphertext {i} of {n}"));
        }
        let len = le_u64(body, at) as usize;
        at += 8;
        if len < HEADER_LEN || len > body.len() - at {
            return fail(format!(
                "{what}: ciphertext {i} of {n} claims {len} bytes, {} left",
                body.len() - at
            ));
        }
        let blob = &body[at..at + len];
        open(blob, ObjectType::Ciphertext).ctx(format!("{what}: ciphertext {i}"))?;
        blobs.push(blob);
        at += len;
    }
    if at != body.len() {
        return fail(format!(
            "{what}: {} trailing bytes after {n} ciphertexts",
            body.len() - at
        ));
    }
    Ok(Chunk { header, blobs })
}

/// Level and scale of a ciphertext blob, read from its payload without the parameters.
pub fn ciphertext_level_scale(blob: &[u8]) -> Option<(usize, f64, usize)> {
    let p = blob.get(HEADER_LEN..HEADER_LEN + 16)?;
    let size = p[0] as usize;
    let level = le_u32(p, 4) as usize;
    let scale = f64::from_bits(le_u64(p, 8));
    Some((level, scale, size))
}

/// XXH3-64 as 16 hex digits.
pub fn hex64(v: u64) -> String {
    format!("{v:016x}")
}

/// Parses 16 hex digits.
pub fn parse_hex64(s: &str) -> Option<u64> {
    u64::from_str_radix(s, 16).ok()
}

/// The temporary name [`write_atomic`] uses for `path` in this process.
pub fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Removes the temporary files that killed writers left in `dir` for the final names that
/// `wanted` accepts (one directory listing, however many outputs); returns the names whose
/// temporaries were removed.
pub fn remove_stale_temps(dir: &Path, wanted: &dyn Fn(&str) -> bool) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for e in fs::read_dir(dir).ctx(io_ctx("listing", dir))? {
        let e = e.ctx(io_ctx("listing", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(target) = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".tmp.").map(|(t, _)| t.to_string()))
        else {
            continue;
        };
        if wanted(&target) {
            fs::remove_file(e.path()).ctx(io_ctx("removing", &e.path()))?;
            removed.push(target);
        }
    }
    Ok(removed)
}

/// `fsync` of a directory (makes a rename in it durable).
pub fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(io_ctx("syncing directory", dir))
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
/// `mode` sets the permissions of the new file (e.g. `0o600` for a secret key).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = temp_name(path);
    let res = (|| -> Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .ctx(io_ctx("creating", &tmp))?;
        f.write_all(bytes).ctx(io_ctx("writing", &tmp))?;
        f.sync_all().ctx(io_ctx("syncing", &tmp))?;
        fs::rename(&tmp, path).ctx(io_ctx("renaming into place", path))?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// A directory built under a temporary name and renamed into place on [`commit`]; dropped
/// uncommitted (an error on the way), it is removed, so no partial output is left.
///
/// [`commit`]: StagedDir::commit
#[derive(Debug)]
pub struct StagedDir {
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl StagedDir {
    /// Stages `dest` (which must not exist yet).
    pub fn new(dest: &Path) -> Result<Self> {
        if dest.exists() {
            return fail(format!(
                "{} already exists; remove it or choose another output",
                dest.display()
            ));
        }
        let tmp = temp_name(dest);
        if tmp.exists() {
            fs::remove_dir_all(&tmp).ctx(io_ctx("removing stale", &tmp))?;
        }
        fs::create_dir_all(&tmp).ctx(io_ctx("creating", &tmp))?;
        Ok(Self {
            tmp,
            dest: dest.to_path_buf(),
            done: false,
        })
    }
    /// The temporary directory to write into.
    pub fn path(&self) -> &Path {
        &self.tmp
    }
    /// Renames the directory into place (durably).
    pub fn commit(mut self) -> Result<()> {
        sync_dir(&self.tmp)?;
        fs::rename(&self.tmp, &self.dest).ctx(io_ctx("renaming into place", &self.dest))?;
        self.done = true;
        sync_dir(self.dest.parent().unwrap_or(Path::new(".")))
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Reads a whole file with a one-line error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).ctx(io_ctx("reading", path))
}

/// Peak resident memory of this process (VmHWM) in bytes, where the kernel reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = l.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
