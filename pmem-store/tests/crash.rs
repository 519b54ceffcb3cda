//! Crash consistency: a child process writes, deletes and compacts in a loop, printing each
//! operation after it returns; the parent kills it with SIGKILL at random moments and checks,
//! after every reopen, that every reported object is present and byte-identical, every
//! reported deletion holds, and no object with wrong bytes is ever returned.
//!
//! Trials: `PMEM_CRASH_TRIALS` (default 300). For a long run:
//! `PMEM_CRASH_TRIALS=5000 cargo test -p pmem-store --release --test crash -- --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;
use pmem_store::{ObjectMeta, ObjectType, Store, StoreConfig};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_DIR: &str = "PMEM_CRASH_CHILD_DIR";
const CHILD_TRIAL: &str = "PMEM_CRASH_CHILD_TRIAL";
const P: u64 = 0xC0FFEE;

fn config() -> StoreConfig {
    // Small segments so that puts roll over to new segment files often.
    StoreConfig::new(Some(P))
        .segment_size(512 * 1024)
        .budget(64 << 20)
        .prefetch(false)
}

/// The writer (runs only as the child).
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let trial: u64 = std::env::var(CHILD_TRIAL)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let store = Store::open(&dir, config()).unwrap();
    println!("\nREADY");
    let mut rng = trial.wrapping_mul(0x9E37_79B9) ^ 0xABCD;
    let mut live: Vec<String> = store.list().into_iter().map(|o| o.key).collect();
    for i in 0u64.. {
        let r = splitmix(&mut rng) % 100;
        if r >= 97 {
            store.compact().unwrap();
            println!("C");
        } else if (r < 70 && live.len() < 80) || live.len() < 10 {
            let key = format!("t{trial}/o{i}");
            let meta = ObjectMeta::new(ObjectType::Bytes, P).with_aux(seed_of(&key));
            store.put(&key, &meta, &content(&key)).unwrap();
            println!("P {key}");
            live.push(key);
        } else {
            let k = live.swap_remove((splitmix(&mut rng) % live.len() as u64) as usize);
            println!("d {k}"); // intent: may or may not be committed when killed
            store.delete(&k).unwrap();
            println!("D {k}");
        }
    }
}

#[test]
fn crash_kill_recover() {
    if std::env::var(CHILD_DIR).is_ok() {
        return;
    }
    let trials: u64 = std::env::var("PMEM_CRASH_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(300);
    let dir = fresh_dir("crash");
    drop(Store::create(&dir, config()).unwrap());
    let exe = std::env::current_exe().unwrap();
    let mut must_exist: BTreeSet<String> = BTreeSet::new();
    let mut must_not_exist: BTreeSet<String> = BTreeSet::new();
    let mut rng = 42u64;
    let (mut puts, mut dels, mut compactions, mut torn, mut checked) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let start = Instant::now();
    for trial in 0..trials {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, &dir)
            .env(CHILD_TRIAL, trial.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        if splitmix(&mut rng).is_multiple_of(10) {
            // Sometimes kill during startup / recovery of the previous crash.
            std::thread::sleep(Duration::from_micros(splitmix(&mut rng) % 5000));
        } else {
            let mut l = String::new();
            while out.read_line(&mut l).unwrap_or(0) > 0 && !l.contains("READY") {
                l.clear();
            }
            std::thread::sleep(Duration::from_micros(splitmix(&mut rng) % 40_000));
        }
        let t_kill = Instant::now();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if std::env::var("PMEM_CRASH_DEBUG").is_ok() {
            eprintln!("trial {trial}: kill+wait {:?}", t_kill.elapsed());
        }
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
        // Only complete lines were printed after the operation returned.
        let complete = match rest.rfind('\n') {
            Some(p) => &rest[..=p],
            None => "",
        };
        lines.extend(complete.lines().map(str::to_string));
        for l in &lines {
            if let Some(k) = l.strip_prefix("P ") {
                must_exist.insert(k.to_string());
                must_not_exist.remove(k);
                puts += 1;
            } else if let Some(k) = l.strip_prefix("d ") {
                // A delete in flight: the object may be present or not after the crash.
                must_exist.remove(k);
            } else if let Some(k) = l.strip_prefix("D ") {
                must_exist.remove(k);
                must_not_exist.insert(k.to_string());
                dels += 1;
            } else if l == "C" {
                compactions += 1;
            }
        }

        let store = Store::open(&dir, config()).unwrap();
        if store.recovery().torn_bytes > 0 {
            torn += 1;
        }
        let present: BTreeSet<String> = store.list().into_iter().map(|o| o.key).collect();
        for k in &must_exist {
            assert!(
                present.contains(k),
                "trial {trial}: committed object {k} lost"
            );
        }
        for k in &must_not_exist {
            assert!(
                !present.contains(k),
                "trial {trial}: deleted object {k} came back"
            );
        }
        for k in &present {
            let h = store
                .get(k)
                .unwrap_or_else(|e| panic!("trial {trial}: object {k}: {e}"));
            assert_eq!(
                h.bytes(),
                &content(k)[..],
                "trial {trial}: object {k} has wrong bytes"
            );
            assert_eq!(h.info().meta.aux, seed_of(k));
            checked += 1;
        }
        if trial.is_multiple_of(25) {
            let r = store.verify();
            assert!(r.failures.is_empty(), "trial {trial}: {:?}", r.failures);
        }
        // Objects that made it without being reported are committed facts from now on.
        must_exist = present;
    }
    eprintln!(
        "crash test: {trials} SIGKILL trials in {:.1?}: {puts} puts, {dels} deletes, {compactions} compactions reported; {torn} torn index tails dropped; {checked} object reads verified",
        start.elapsed()
    );
}
