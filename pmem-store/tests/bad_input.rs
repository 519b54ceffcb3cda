//! Damaged or mismatched stores give typed errors with clear messages, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;
use pmem_store::{ObjectMeta, ObjectType, Store, StoreConfig, StoreError, INDEX_FILE};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

const P: u64 = 0xfeed_f00d;

fn make(name: &str, n: usize) -> std::path::PathBuf {
    let dir = fresh_dir(name);
    let s = Store::create(&dir, StoreConfig::new(Some(P))).unwrap();
    for i in 0..n {
        let k = format!("o{i}");
        s.put(&k, &ObjectMeta::new(ObjectType::Plaintext, P), &content(&k))
            .unwrap();
    }
    dir
}

fn segment_of(dir: &Path) -> std::path::PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "dat"))
        .unwrap()
}

fn flip(path: &Path, at: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, at).unwrap();
}

#[test]
fn corrupted_payload_is_never_returned() {
    let dir = make("corrupt-payload", 3);
    let s = Store::open(&dir, StoreConfig::new(Some(P))).unwrap();
    let info = s.info("o1").unwrap();
    drop(s);
    flip(&segment_of(&dir), info.offset + info.len / 2);
    let s = Store::open(&dir, StoreConfig::new(Some(P))).unwrap();
    let e = s.get("o1").unwrap_err();
    assert!(matches!(e, StoreError::CorruptObject { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("corrupted object \"o1\"") && msg.contains("checksum expected"),
        "{msg}"
    );
    assert_eq!(s.get("o0").unwrap().bytes(), &content("o0")[..]);
    let r = s.verify();
    assert_eq!((r.objects, r.failures.len()), (3, 1));
    // Compaction refuses to carry a corrupted object over (and changes nothing).
    assert!(matches!(s.compact(), Err(StoreError::CorruptObject { .. })));
    assert_eq!(s.get("o2").unwrap().bytes(), &content("o2")[..]);
}

#[test]
fn corrupted_segment_header() {
    let dir = make("corrupt-seg", 2);
    flip(&segment_of(&dir), 3);
    let s = Store::open(&dir, StoreConfig::new(Some(P))).unwrap();
    assert_eq!(s.recovery().bad_segments.len(), 1);
    let e = s.get("o0").unwrap_err();
    assert!(matches!(e, StoreError::CorruptSegment { .. }), "{e}");
    assert!(e.to_string().contains("expected magic"), "{e}");
}

#[test]
fn truncated_and_missing_segment() {
    let dir = make("trunc-seg", 2);
    let seg = segment_of(&dir);
    let len = fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let s = Store::open(&dir, StoreConfig::new(Some(P)).read_only(true)).unwrap();
    let e = s.get("o1").unwrap_err();
    assert!(matches!(e, StoreError::TruncatedSegment { .. }), "{e}");
    assert!(e.to_string().contains("the file has"), "{e}");
    assert_eq!(s.get("o0").unwrap().bytes(), &content("o0")[..]);
    drop(s);
    fs::remove_file(&seg).unwrap();
    let s = Store::open(&dir, StoreConfig::new(Some(P)).read_only(true)).unwrap();
    let e = s.get("o0").unwrap_err();
    assert!(matches!(e, StoreError::CorruptSegment { .. }), "{e}");
    assert!(e.to_string().contains("cannot open it"), "{e}");
}

#[test]
fn truncated_index() {
    let dir = make("trunc-index", 4);
    let idx = dir.join(INDEX_FILE);
    let len = fs::metadata(&idx).unwrap().len();
    // Torn last record: lenient open drops it (and only it); strict open refuses.
    OpenOptions::new()
        .write(true)
        .open(&idx)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let e = Store::open(&dir, StoreConfig::new(Some(P)).strict(true)).unwrap_err();
    assert!(matches!(e, StoreError::TruncatedIndex { .. }), "{e}");
    assert!(e.to_string().starts_with("truncated index"), "{e}");
    let s = Store::open(&dir, StoreConfig::new(Some(P))).unwrap();
    assert_eq!(s.list().len(), 3);
    assert!(s.recovery().torn_bytes > 0 && s.recovery().torn_reason.is_some());
    drop(s);
    // Cut inside the header: nothing to recover from.
    OpenOptions::new()
        .write(true)
        .open(&idx)
        .unwrap()
        .set_len(20)
        .unwrap();
    let e = Store::open(&dir, StoreConfig::new(Some(P))).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TruncatedIndex {
                expected: 64,
                found: 20,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("expected at least 64 bytes, found 20"),
        "{e}"
    );
}

#[test]
fn damaged_index_record_before_committed_ones() {
    let dir = make("mid-index", 4);
    let idx = dir.join(INDEX_FILE);
    flip(&idx, 64 + 30); // inside the first record
    let e = Store::open(&dir, StoreConfig::new(Some(P))).unwrap_err();
    assert!(matches!(e, StoreError::CorruptIndex { .. }), "{e}");
    assert!(e.to_string().contains("committed record"), "{e}");
    flip(&idx, 2); // header
    let e = Store::open(&dir, StoreConfig::new(Some(P))).unwrap_err();
    assert!(
        matches!(e, StoreError::CorruptIndex { offset: 0, .. }),
        "{e}"
    );
}

#[test]
fn store_made_for_other_parameters() {
    let dir = make("params", 1);
    let e = Store::open(&dir, StoreConfig::new(Some(P + 1))).unwrap_err();
    assert!(
        matches!(e, StoreError::ParamsMismatch { expected, found, .. } if expected == P + 1 && found == P),
        "{e}"
    );
    assert!(
        e.to_string().contains(&format!(
            "expected parameters {:016x}, found {:016x}",
            P + 1,
            P
        )),
        "{e}"
    );
    // An unbound store holds objects of several parameter sets; `get` filters by the opener's.
    let dir = fresh_dir("params-mixed");
    let s = Store::create(&dir, StoreConfig::new(None)).unwrap();
    s.put("a", &ObjectMeta::new(ObjectType::Ciphertext, 1), b"a")
        .unwrap();
    s.put("b", &ObjectMeta::new(ObjectType::Ciphertext, 2), b"b")
        .unwrap();
    drop(s);
    let s = Store::open(&dir, StoreConfig::new(Some(1))).unwrap();
    assert_eq!(s.get("a").unwrap().bytes(), b"a");
    let e = s.get("b").unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::ParamsMismatch {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn missing_directory_and_not_a_store() {
    let dir = fresh_dir("missing");
    let e = Store::open(&dir, StoreConfig::new(None)).unwrap_err();
    assert!(matches!(e, StoreError::MissingDirectory { .. }), "{e}");
    assert!(e.to_string().contains("does not exist"), "{e}");
    fs::create_dir_all(&dir).unwrap();
    let e = Store::open(&dir, StoreConfig::new(None)).unwrap_err();
    assert!(matches!(e, StoreError::NotAStore { .. }), "{e}");
    let _ = Store::create(&dir, StoreConfig::new(None)).unwrap();
    let e = Store::create(&dir, StoreConfig::new(None)).unwrap_err();
    assert!(matches!(e, StoreError::AlreadyExists { .. }), "{e}");
}

#[test]
fn garbage_index_files_never_panic() {
    let dir = make("garbage", 2);
    let idx = dir.join(INDEX_FILE);
    let good = fs::read(&idx).unwrap();
    let mut seed = 1u64;
    for _ in 0..300 {
        let mut b = good.clone();
        let flips = 1 + splitmix(&mut seed) % 4;
        for _ in 0..flips {
            let i = (splitmix(&mut seed) % b.len() as u64) as usize;
            b[i] = splitmix(&mut seed) as u8;
        }
        if splitmix(&mut seed).is_multiple_of(3) {
            b.truncate((splitmix(&mut seed) % b.len() as u64) as usize);
        }
        fs::write(&idx, &b).unwrap();
        if let Ok(s) = Store::open(
            &dir,
            StoreConfig::new(Some(P)).read_only(true).prefetch(false),
        ) {
            for o in s.list() {
                if let Ok(h) = s.get(&o.key) {
                    assert_eq!(
                        h.bytes(),
                        &content(&o.key)[..],
                        "a damaged index returned wrong bytes"
                    );
                }
            }
        }
    }
}

/// Power-failure model: the index cut at every byte of its last records (a torn append)
/// recovers exactly the committed prefix, and the store accepts new writes afterwards.
#[test]
fn torn_index_tail_at_every_byte() {
    let dir = make("torn-every", 5);
    let idx = dir.join(INDEX_FILE);
    let full = fs::read(&idx).unwrap();
    let s = Store::open(&dir, StoreConfig::new(Some(P)).read_only(true)).unwrap();
    let rec_len = |k: &str| s.info(k).map(|_| ()).is_some();
    assert!(rec_len("o4"));
    drop(s);
    // Record boundaries: reopen with successive cuts and watch the object count.
    let mut boundaries = vec![64usize];
    for cut in 65..=full.len() {
        fs::write(&idx, &full[..cut]).unwrap();
        let s = Store::open(
            &dir,
            StoreConfig::new(Some(P)).read_only(true).prefetch(false),
        )
        .unwrap();
        let n = s.list().len();
        if n == boundaries.len() {
            boundaries.push(cut);
        }
        assert_eq!(n, boundaries.len() - 1, "cut at {cut}");
        for o in s.list() {
            assert_eq!(s.get(&o.key).unwrap().bytes(), &content(&o.key)[..]);
        }
    }
    assert_eq!(boundaries.len(), 6);
    // A writer truncates the torn tail and appends after the committed prefix.
    fs::write(&idx, &full[..boundaries[3] + 7]).unwrap();
    let s = Store::open(&dir, StoreConfig::new(Some(P))).unwrap();
    assert_eq!(s.recovery().torn_bytes, 7);
    s.put(
        "new",
        &ObjectMeta::new(ObjectType::Bytes, P),
        b"after recovery",
    )
    .unwrap();
    drop(s);
    let s = Store::open(&dir, StoreConfig::new(Some(P)).strict(true)).unwrap();
    assert_eq!(s.list().len(), 4);
    assert_eq!(s.get("new").unwrap().bytes(), b"after recovery");
}
