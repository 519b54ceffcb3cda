//! The writer lock: an exclusive `flock` on `LOCK`, taken by `create` and writable `open`.

use super::LOCK_FILE;
use crate::error::{io_err, Result, StoreError};
use crate::sys;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Takes the writer lock of the store directory `dir` (which must exist), or says who holds it.
/// The lock lives as long as the returned file.
pub(super) fn acquire(dir: &Path) -> Result<File> {
    let lock_path = dir.join(LOCK_FILE);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_err("opening lock file", &lock_path))?;
    if !sys::try_lock_exclusive(&f, &lock_path)? {
        let holder = fs::read_to_string(&lock_path)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "an unknown process".into());
        return Err(StoreError::Locked {
            path: dir.to_path_buf(),
            lock: lock_path,
            holder,
        });
    }
    let _ = f.set_len(0);
    let _ = f.write_all_at(format!("pid {}\n", std::process::id()).as_bytes(), 0);
    let _ = f.flush();
    Ok(f)
}
