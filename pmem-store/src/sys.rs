//! Operating-system primitives: durable writes, directory sync, file locks, page-cache advice.

use crate::error::{io_err, Result, StoreError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// Writes `data` at `offset` and makes it durable before returning.
///
/// Default build: `pwrite` then `fdatasync` (which also persists the file size that an
/// appending write changed). With the `pmem` feature, on a DAX file system the range is
/// written through a shared mapping and persisted with libpmem's cache-line flush + drain
/// (CLWB/CLFLUSHOPT + SFENCE); where the mapping is not persistent memory, `msync` is used.
pub fn write_durable(file: &File, path: &Path, offset: u64, data: &[u8]) -> Result<()> {
    #[cfg(feature = "pmem")]
    {
        if !data.is_empty() && pmem_write(file, offset, data).is_ok() {
            return Ok(());
        }
    }
    file.write_all_at(data, offset)
        .map_err(io_err("writing", path))?;
    file.sync_data()
        .map_err(io_err("syncing (fdatasync)", path))
}

#[cfg(feature = "pmem")]
fn pmem_write(file: &File, offset: u64, data: &[u8]) -> std::io::Result<()> {
    let end = offset + data.len() as u64;
    if file.metadata()?.len() < end {
        file.set_len(end)?;
        // The new size must itself be durable.
        file.sync_all()?;
    }
    // SAFETY: the range lies within the file (just extended); the store's single writer (flock)
    // is the only one writing this never-before-committed range, and readers do not map it
    // before the index record that commits it exists.
    let mut map = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(data.len())
            .map_mut(file)?
    };
    map.copy_from_slice(data);
    let is_pmem = map
        .get(..4096)
        .and_then(|s| <&[u8; 4096]>::try_from(s).ok())
        .is_some_and(pmem::is_pmem);
    if is_pmem {
        let mut chunks = map.chunks_exact(4096);
        for c in chunks.by_ref() {
            if let Ok(page) = <&[u8; 4096]>::try_from(c) {
                pmem::flush(page);
            }
        }
        for line in chunks.remainder().chunks(64) {
            if let Some(b) = line.first() {
                pmem::flush(b);
            }
            if let Some(b) = line.last() {
                pmem::flush(b);
            }
        }
        pmem::drain();
        Ok(())
    } else {
        map.flush()
    }
}

/// `fsync` of a directory, so that file creations, renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(io_err("opening directory", dir))?;
    f.sync_all().map_err(io_err("syncing directory", dir))
}

/// Tries to take an exclusive `flock` on `file` without blocking; `Ok(false)` if held elsewhere.
pub fn try_lock_exclusive(file: &File, path: &Path) -> Result<bool> {
    // SAFETY: flock on a valid, open descriptor owned by `file`.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(StoreError::Io {
            op: "locking",
            path: path.to_path_buf(),
            source: e,
        })
    }
}

/// `posix_fadvise(POSIX_FADV_DONTNEED)`: drops the clean page-cache pages of a file range
/// (pages still mapped by some process stay). Best effort: failures are ignored.
pub fn drop_page_cache(file: &File, offset: u64, len: u64) {
    let (Ok(off), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: advisory call on a valid descriptor; no memory is passed.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), off, len, libc::POSIX_FADV_DONTNEED);
    }
}

/// `posix_fadvise(POSIX_FADV_WILLNEED)`: starts asynchronous readahead of a file range.
pub fn will_need(file: &File, offset: u64, len: u64) {
    let (Ok(off), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: advisory call on a valid descriptor; no memory is passed.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), off, len, libc::POSIX_FADV_WILLNEED);
    }
}

/// Peak and current resident set size of this process in bytes (`VmHWM`, `VmRSS` from
/// `/proc/self/status`), if readable.
pub fn resident_memory() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = s.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}
