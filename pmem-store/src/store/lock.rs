//! The writer lock: an exclusive `flock` on `LOCK`, taken by `create` and writable `open`.

use super::LOCK_FILE;
use crate::error::{Result, StoreError};
use crate::fsio::Io;
use crate::sys;
use std::fs::{self, File, OpenOptions};
use std::path::Path;

/// Takes the writer lock of the store directory `dir` (which must exist), or says who holds it.
/// The lock lives as long as the returned file.
pub(super) fn acquire(dir: &Path, io: &Io) -> Result<File> {
    let lock_path = dir.join(LOCK_FILE);
    let f = io.open(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
        &lock_path,
        "opening lock file",
    )?;
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
    let _ = io.set_len(&f, &lock_path, 0);
    let _ = io.write_at(
        &f,
        &lock_path,
        0,
        format!("pid {}\n", std::process::id()).as_bytes(),
    );
    Ok(f)
}
