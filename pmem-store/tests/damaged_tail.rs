//! Finding 3 of issue #16: a damaged *committed* last index record is not a torn tail.
//!
//! A torn tail (an append cut short by a crash: the file ends inside the record, or the
//! record's bytes past the old end were never written and read back as zeros) is dropped.
//! A complete record whose checksum fails (a bit flip on the medium) is an error that is kept
//! and reported: writable open refuses (naming the offset) unless the caller opts in by name
//! to discarding it, and read-only open and `verify` (API and `home-store verify`) report it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;
use pmem_store::{ObjectMeta, ObjectType, Store, StoreConfig, StoreError, INDEX_FILE, LOCK_FILE};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const P: u64 = 0xdead_beef;

/// A store of `n` objects, and the byte offset of its last index record.
/// The tests of this file run one at a time: some spawn `home-store`, and a fork made while
/// another test holds a store's `flock` shares that lock with the child until its `exec`
/// (O_CLOEXEC closes it only then), which made a concurrent writable open see "locked".
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn make(name: &str, n: usize) -> (PathBuf, u64) {
    let dir = fresh_dir(name);
    let s = Store::create(&dir, StoreConfig::new(Some(P)).prefetch(false)).unwrap();
    let mut last = 0;
    for i in 0..n {
        let k = format!("o{i}");
        last = fs::metadata(dir.join(INDEX_FILE)).unwrap().len();
        s.put(&k, &ObjectMeta::new(ObjectType::Bytes, P), &content(&k))
            .unwrap();
    }
    (dir, last)
}

fn flip_bit(path: &Path, at: u64, bit: u8) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 1 << bit;
    f.write_all_at(&b, at).unwrap();
}

fn ro() -> StoreConfig {
    StoreConfig::new(Some(P)).read_only(true).prefetch(false)
}

fn cli_verify(dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_home-store"))
        .arg("verify")
        .arg(dir)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// The reproduction: one bit flipped in the body of the last committed record.
fn damaged(name: &str) -> (PathBuf, u64) {
    let (dir, last) = make(name, 3);
    let idx = dir.join(INDEX_FILE);
    let len = fs::metadata(&idx).unwrap().len();
    flip_bit(&idx, last + (len - last) / 2, 3);
    (dir, last)
}

fn segment_names(dir: &Path) -> Vec<std::ffi::OsString> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".dat"))
        .collect();
    v.sort();
    v
}

#[test]
fn verify_api_fails_on_damaged_last_record() {
    let _serial = serial();
    let (dir, _) = damaged("damaged-verify");
    let s = Store::open(&dir, ro()).unwrap();
    assert_eq!(s.list().len(), 2, "the committed prefix is still served");
    let r = s.verify();
    assert!(
        !r.failures.is_empty(),
        "verify must report the damaged record, reported nothing"
    );
}

#[test]
fn cli_verify_fails_on_damaged_last_record() {
    let _serial = serial();
    let (dir, last) = damaged("damaged-cli");
    let (code, text) = cli_verify(&dir);
    assert_ne!(code, 0, "home-store verify must fail, printed: {text}");
    assert!(text.contains(&format!("byte {last}")), "{text}");
}

#[test]
fn writable_open_refuses_and_keeps_everything() {
    let _serial = serial();
    let (dir, last) = damaged("damaged-open");
    let idx = dir.join(INDEX_FILE);
    let before = fs::read(&idx).unwrap();
    let segs = segment_names(&dir);
    let e = Store::open(&dir, StoreConfig::new(Some(P)).prefetch(false));
    assert!(
        e.is_err(),
        "writable open must refuse a damaged committed record"
    );
    let e = e.unwrap_err();
    assert!(e.to_string().contains(&format!("byte {last}")), "{e}");
    assert_eq!(
        fs::read(&idx).unwrap(),
        before,
        "index must be left as found"
    );
    assert_eq!(segment_names(&dir), segs, "no segment may be removed");
    // A compaction (which needs a writable open) cannot reclaim the payload either.
    let out = Command::new(env!("CARGO_BIN_EXE_home-store"))
        .arg("compact")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(fs::read(&idx).unwrap(), before);
    assert_eq!(segment_names(&dir), segs);
}

/// `create` takes the writer lock before it writes anything.
#[test]
fn create_takes_the_writer_lock() {
    let _serial = serial();
    let dir = fresh_dir("create-lock");
    fs::create_dir_all(&dir).unwrap();
    let lock_path = dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .unwrap();
    assert!(pmem_store::sys::try_lock_exclusive(&lock, &lock_path).unwrap());
    let e = Store::create(&dir, StoreConfig::new(Some(P)).prefetch(false)).unwrap_err();
    assert!(matches!(e, StoreError::Locked { .. }), "{e}");
    assert!(
        !dir.join(INDEX_FILE).exists(),
        "create must not write an index while another writer holds the lock"
    );
    drop(lock);
    Store::create(&dir, StoreConfig::new(Some(P)).prefetch(false)).unwrap();
}

#[test]
fn damaged_record_error_names_the_offset_and_read_only_open_reports_it() {
    let _serial = serial();
    let (dir, last) = damaged("damaged-typed");
    let e = Store::open(&dir, StoreConfig::new(Some(P)).prefetch(false)).unwrap_err();
    match &e {
        StoreError::DamagedRecord { offset, .. } => assert_eq!(*offset, last, "{e}"),
        other => panic!("expected DamagedRecord, found {other}"),
    }
    let s = Store::open(&dir, ro()).unwrap();
    let d = s.recovery().damaged.clone().expect("damage reported");
    assert_eq!(d.offset, last);
    assert!(!d.discarded);
    assert_eq!(s.recovery().torn_bytes, 0, "not reported as a torn tail");
    assert!(matches!(
        s.verify().failures.as_slice(),
        [StoreError::DamagedRecord { .. }]
    ));
    // Strict read-only open refuses too.
    let e = Store::open(&dir, ro().strict(true)).unwrap_err();
    assert!(matches!(e, StoreError::DamagedRecord { .. }), "{e}");
}

#[test]
fn discarding_the_damaged_record_only_by_name() {
    let _serial = serial();
    let (dir, last) = damaged("damaged-repair");
    // `repair` without the flag does nothing.
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_home-store"))
            .args(args)
            .arg(&dir)
            .output()
            .unwrap()
    };
    let out = run(&["repair"]);
    assert!(!out.status.success());
    assert!(Store::open(&dir, StoreConfig::new(Some(P)).prefetch(false)).is_err());
    let out = run(&["repair", "--discard-damaged-tail"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("byte {last}")) && text.contains("discarded"),
        "{text}"
    );
    assert_eq!(fs::metadata(dir.join(INDEX_FILE)).unwrap().len(), last);
    let s = Store::open(&dir, StoreConfig::new(Some(P)).prefetch(false).strict(true)).unwrap();
    assert_eq!(s.list().len(), 2);
    s.put("after", &ObjectMeta::new(ObjectType::Bytes, P), b"x")
        .unwrap();
    assert!(s.verify().failures.is_empty());
    drop(s);
    let (code, _) = cli_verify(&dir);
    assert_eq!(code, 0);
    // The API opt-in on a fresh damaged store.
    let (dir, last) = damaged("damaged-repair-api");
    let s = Store::open(
        &dir,
        StoreConfig::new(Some(P))
            .prefetch(false)
            .discard_damaged_tail(true),
    )
    .unwrap();
    let d = s.recovery().damaged.clone().unwrap();
    assert!(d.discarded && d.offset == last);
    assert!(s.verify().failures.is_empty());
}

/// Every one-bit flip anywhere in the last record is a damaged record, never a torn tail;
/// every truncation inside it, and every unwritten (zeroed) sector of it, is a torn tail.
#[test]
fn flips_are_damage_cuts_and_unwritten_sectors_are_torn() {
    let _serial = serial();
    use pmem_store::recovery::{recover_index, Tail};
    for n in [1usize, 2, 7] {
        let (dir, last) = make(&format!("flip-all-{n}"), n);
        let full = fs::read(dir.join(INDEX_FILE)).unwrap();
        let last = last as usize;
        let clean = recover_index(&full).unwrap();
        assert_eq!(clean.tail, Tail::Clean);
        assert_eq!(clean.objects.len(), n);
        for at in last..full.len() {
            for bit in 0..8 {
                let mut b = full.clone();
                b[at] ^= 1 << bit;
                let r = recover_index(&b).unwrap();
                assert!(
                    matches!(r.tail, Tail::Damaged { offset, .. } if offset == last as u64),
                    "flip of bit {bit} at byte {at}: {:?}",
                    r.tail
                );
                assert_eq!(r.objects.len(), n - 1);
            }
        }
        for cut in last..full.len() {
            let r = recover_index(&full[..cut]).unwrap();
            assert!(
                matches!(r.tail, Tail::Torn { .. }) || cut == last,
                "cut at {cut}: {:?}",
                r.tail
            );
            assert_eq!(r.committed_len, last as u64);
        }
        // Sectors (512-byte aligned in the file) of the last record left unwritten.
        let first_sector = last / 512;
        let last_sector = (full.len() - 1) / 512;
        for sector in first_sector..=last_sector {
            let mut b = full.clone();
            for (i, byte) in b.iter_mut().enumerate() {
                if i >= last && i / 512 == sector {
                    *byte = 0;
                }
            }
            let r = recover_index(&b).unwrap();
            assert!(
                matches!(r.tail, Tail::Torn { .. }),
                "sector {sector} zeroed: {:?}",
                r.tail
            );
        }
        // The file grown but nothing written.
        let mut b = full[..last].to_vec();
        b.resize(full.len(), 0);
        assert!(matches!(recover_index(&b).unwrap().tail, Tail::Torn { .. }));
    }
}

/// A version-1 index (no record head checksum) and a version-2 index (object types numbered
/// before the registry shared with he-core) are refused with a clear error naming the version.
#[test]
fn old_index_versions_are_refused() {
    let _serial = serial();
    for (version, hint) in [
        (1u32, "torn / damaged"),
        (2, "numbered object types on its own"),
    ] {
        let (dir, _) = make(&format!("v{version}"), 1);
        let idx = dir.join(INDEX_FILE);
        let mut b = fs::read(&idx).unwrap();
        b[8..12].copy_from_slice(&version.to_le_bytes());
        let c = crc32fast::hash(&b[..60]);
        b[60..64].copy_from_slice(&c.to_le_bytes());
        fs::write(&idx, &b).unwrap();
        let e = Store::open(&dir, ro()).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::UnsupportedVersion {
                    expected: 3,
                    found,
                    ..
                } if found == version
            ),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("found {version}")) && msg.contains(hint),
            "{msg}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
