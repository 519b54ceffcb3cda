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
    // A lock that this very process seems to hold, but that this call did not find held, is
    // the window between a `fork` of another thread and its child's `exec`: the child shares
    // the open lock file until `exec` closes it (O_CLOEXEC). Wait that window out (≤ 250 ms);
    // a real second writer in this process keeps holding it and is refused as before.
    let own = format!("pid {}", std::process::id());
    let mut locked = sys::try_lock_exclusive(&f, &lock_path)?;
    for _ in 0..25 {
        if locked
            || fs::read_to_string(&lock_path)
                .map(|s| s.trim().to_string())
                .ok()
                != Some(own.clone())
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        locked = sys::try_lock_exclusive(&f, &lock_path)?;
    }
    if !locked {
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
