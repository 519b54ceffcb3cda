//! The one file layer every file-system mutation of the store goes through.
//!
//! Creating or opening a file for writing, `pwrite`, `set_len`, `fdatasync`/`fsync` (and the
//! `pmem` feature's mapped write + flush, inside [`crate::sys::write_durable`]), `rename`,
//! unlink, `mkdir` and directory `fsync` are all methods of [`Io`]. Each durability call names
//! its call site ([`Site`]).
//!
//! Normally an `Io` holds nothing and each method is the plain system call (one `Option`
//! test more). Tests attach a [`Recorder`] (the hidden `StoreConfig::recorder` field): it logs
//! every mutation as an [`Op`], with files named by a stable identity, so that a power-loss
//! checker can rebuild the directory as it would be after a power cut at any point of the
//! log (keeping only what was made durable), and it can switch one durability site off to
//! show that the checker then finds a loss. This is test machinery, hidden from the docs; a
//! store without a recorder pays one branch per call.
#![doc(hidden)]

use crate::error::{io_err, Result};
use crate::sys;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A durability call site of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Site {
    /// `create`: fsync of the new index (temporary file) before it is renamed into place.
    CreateIndexData,
    /// `create`: fsync of the store directory after the rename (makes `index.log` durable).
    CreateIndexName,
    /// `create`: fsync of the parent directory (makes the store directory itself durable).
    CreateParentDir,
    /// New segment: fdatasync of its header.
    SegmentHeader,
    /// New segment: fsync of the store directory (makes the segment's name durable).
    SegmentName,
    /// `put`: fdatasync of the payload before the index record is appended.
    PutPayload,
    /// `put`/`delete`: fdatasync of the appended index record (the commit point).
    IndexAppend,
    /// Failed append: fdatasync of the index cut back to its committed length.
    AppendRollback,
    /// Writable `open`: fdatasync of the index after truncating a dropped tail.
    OpenTruncate,
    /// Writable `open`: fsync of the directory after removing orphan segments.
    OrphanRemoval,
    /// `compact`: fdatasync of every new segment before the new index is written.
    CompactSegments,
    /// `compact`: fdatasync of the new index (temporary file) before the rename.
    CompactIndexData,
    /// `compact`: fsync of the directory after renaming the new index over the old, before
    /// any old segment is removed.
    CompactRename,
    /// `compact`: fsync of the directory after removing the old segments.
    CompactCleanup,
}

impl Site {
    /// Every site.
    pub const ALL: [Site; 14] = [
        Site::CreateIndexData,
        Site::CreateIndexName,
        Site::CreateParentDir,
        Site::SegmentHeader,
        Site::SegmentName,
        Site::PutPayload,
        Site::IndexAppend,
        Site::AppendRollback,
        Site::OpenTruncate,
        Site::OrphanRemoval,
        Site::CompactSegments,
        Site::CompactIndexData,
        Site::CompactRename,
        Site::CompactCleanup,
    ];
}

/// One logged mutation. Files are named by an identity that follows the inode (not the
/// name): it survives renames, and a new file never reuses the identity of a removed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A directory created.
    MkDir {
        /// The directory.
        path: PathBuf,
    },
    /// A new file (a new inode) linked under `path`.
    Create {
        /// Its name.
        path: PathBuf,
        /// Its identity.
        file: u64,
    },
    /// Bytes written.
    Write {
        /// The file.
        file: u64,
        /// Offset.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Size set.
    SetLen {
        /// The file.
        file: u64,
        /// New size.
        len: u64,
    },
    /// fsync/fdatasync/msync/pmem flush of a whole file: its data and size are durable.
    Sync {
        /// The file.
        file: u64,
        /// Call site.
        site: Site,
    },
    /// fsync of a directory: its entries as they are now are durable.
    SyncDir {
        /// The directory.
        path: PathBuf,
        /// Call site.
        site: Site,
    },
    /// A rename.
    Rename {
        /// Old name.
        from: PathBuf,
        /// New name (replaced if present).
        to: PathBuf,
    },
    /// An unlink.
    Remove {
        /// The name.
        path: PathBuf,
    },
    /// A note from the workload (e.g. "this put returned"); not a mutation.
    Mark(String),
}

#[derive(Debug, Default)]
struct RecState {
    log: Vec<Op>,
    /// Inode number -> identity, for files created while recording.
    ids: HashMap<(u64, u64), u64>,
    next: u64,
    disabled: Option<Site>,
    /// Skip every durability call and log nothing (for the checker's own stores).
    unsynced: bool,
}

/// Records the mutations of every store it is attached to (tests only).
#[derive(Debug, Default)]
pub struct Recorder {
    state: Mutex<RecState>,
}

impl Recorder {
    /// A new, empty recorder.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    fn lock(&self) -> MutexGuard<'_, RecState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// A recorder that logs nothing and skips every durability call: for stores opened on
    /// throw-away images by a checker, which need no durability (like `eatmydata`).
    pub fn unsynced() -> Arc<Self> {
        let r = Self::default();
        r.lock().unsynced = true;
        Arc::new(r)
    }
    /// Appends a workload note.
    pub fn mark(&self, note: impl Into<String>) {
        self.lock().log.push(Op::Mark(note.into()));
    }
    /// The log so far.
    pub fn log(&self) -> Vec<Op> {
        self.lock().log.clone()
    }
    /// Skips the durability call at `site` (in reality and in the log) from now on.
    pub fn disable(&self, site: Option<Site>) {
        self.lock().disabled = site;
    }
    fn push(&self, op: Op) {
        let mut g = self.lock();
        if !g.unsynced {
            g.log.push(op);
        }
    }
    fn skips(&self, site: Site) -> bool {
        let g = self.lock();
        g.unsynced || g.disabled == Some(site)
    }
    fn key(file: &File) -> Option<(u64, u64)> {
        file.metadata().ok().map(|m| (m.dev(), m.ino()))
    }
    /// The identity of `file`, logging a `Create` if it is new (or unknown).
    fn identify(&self, file: &File, path: &Path, new: bool) -> u64 {
        let key = Self::key(file).unwrap_or((0, 0));
        let mut g = self.lock();
        if !new {
            if let Some(&id) = g.ids.get(&key) {
                return id;
            }
        }
        g.next += 1;
        let id = g.next;
        g.ids.insert(key, id);
        if g.unsynced {
            return id;
        }
        g.log.push(Op::Create {
            path: path.to_path_buf(),
            file: id,
        });
        id
    }
    fn id_of(&self, file: &File) -> u64 {
        let key = Self::key(file).unwrap_or((0, 0));
        self.lock().ids.get(&key).copied().unwrap_or(0)
    }
}

/// The store's file layer: plain system calls, optionally recorded.
#[derive(Debug, Clone, Default)]
pub struct Io {
    rec: Option<Arc<Recorder>>,
}

impl Io {
    /// A layer recording into `rec`, if given.
    pub fn new(rec: Option<Arc<Recorder>>) -> Self {
        Self { rec }
    }

    /// `mkdir -p`.
    pub fn create_dir_all(&self, dir: &Path) -> Result<()> {
        let existed = dir.is_dir();
        fs::create_dir_all(dir).map_err(io_err("creating directory", dir))?;
        if let (Some(r), false) = (&self.rec, existed) {
            r.push(Op::MkDir {
                path: dir.to_path_buf(),
            });
        }
        Ok(())
    }

    /// Opens `path` with `opts` (which must include write access when it creates).
    pub fn open(&self, opts: &OpenOptions, path: &Path, op: &'static str) -> Result<File> {
        let existed = path.exists();
        let f = opts.open(path).map_err(io_err(op, path))?;
        if let Some(r) = &self.rec {
            r.identify(&f, path, !existed);
        }
        Ok(f)
    }

    /// Creates `path`, which must not exist, for reading and writing.
    pub fn create_new(&self, path: &Path, op: &'static str) -> Result<File> {
        self.open(
            OpenOptions::new().read(true).write(true).create_new(true),
            path,
            op,
        )
    }

    /// Creates or truncates `path`, for reading and writing.
    pub fn create_truncate(&self, path: &Path, op: &'static str) -> Result<File> {
        let f = self.open(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true),
            path,
            op,
        )?;
        if let Some(r) = &self.rec {
            r.push(Op::SetLen {
                file: r.id_of(&f),
                len: 0,
            });
        }
        Ok(f)
    }

    /// `pwrite` of all of `data`, not made durable.
    pub fn write_at(&self, file: &File, path: &Path, offset: u64, data: &[u8]) -> Result<()> {
        file.write_all_at(data, offset)
            .map_err(io_err("writing", path))?;
        if let Some(r) = &self.rec {
            r.push(Op::Write {
                file: r.id_of(file),
                offset,
                data: data.to_vec(),
            });
        }
        Ok(())
    }

    /// Writes `data` at `offset` and makes it durable ([`sys::write_durable`]).
    pub fn write_durable(
        &self,
        file: &File,
        path: &Path,
        offset: u64,
        data: &[u8],
        site: Site,
    ) -> Result<()> {
        let Some(r) = &self.rec else {
            return sys::write_durable(file, path, offset, data);
        };
        if r.skips(site) {
            return self.write_at(file, path, offset, data);
        }
        sys::write_durable(file, path, offset, data)?;
        let id = r.id_of(file);
        r.push(Op::Write {
            file: id,
            offset,
            data: data.to_vec(),
        });
        r.push(Op::Sync { file: id, site });
        Ok(())
    }

    /// `ftruncate`/extend, not made durable.
    pub fn set_len(&self, file: &File, path: &Path, len: u64) -> Result<()> {
        file.set_len(len)
            .map_err(io_err("setting the size of", path))?;
        if let Some(r) = &self.rec {
            r.push(Op::SetLen {
                file: r.id_of(file),
                len,
            });
        }
        Ok(())
    }

    /// `fdatasync` (persists data and size).
    pub fn sync_data(&self, file: &File, path: &Path, site: Site) -> Result<()> {
        if let Some(r) = &self.rec {
            if r.skips(site) {
                return Ok(());
            }
        }
        file.sync_data()
            .map_err(io_err("syncing (fdatasync)", path))?;
        if let Some(r) = &self.rec {
            r.push(Op::Sync {
                file: r.id_of(file),
                site,
            });
        }
        Ok(())
    }

    /// `fsync` of a directory (its entries become durable).
    pub fn sync_dir(&self, dir: &Path, site: Site) -> Result<()> {
        if let Some(r) = &self.rec {
            if r.skips(site) {
                return Ok(());
            }
        }
        sys::sync_dir(dir)?;
        if let Some(r) = &self.rec {
            r.push(Op::SyncDir {
                path: dir.to_path_buf(),
                site,
            });
        }
        Ok(())
    }

    /// `rename`.
    pub fn rename(&self, from: &Path, to: &Path, op: &'static str) -> Result<()> {
        fs::rename(from, to).map_err(io_err(op, to))?;
        if let Some(r) = &self.rec {
            r.push(Op::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
            });
        }
        Ok(())
    }

    /// `unlink`.
    pub fn remove(&self, path: &Path) -> Result<()> {
        let key = self.rec.as_ref().and_then(|_| {
            fs::metadata(path)
                .ok()
                .map(|m| (m.dev(), m.ino(), m.nlink()))
        });
        fs::remove_file(path).map_err(io_err("removing", path))?;
        if let Some(r) = &self.rec {
            let mut g = r.lock();
            if let Some((dev, ino, 1)) = key {
                // The inode is gone: a new file may get its number, never its identity.
                g.ids.remove(&(dev, ino));
            }
            if !g.unsynced {
                g.log.push(Op::Remove {
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(())
    }
}
