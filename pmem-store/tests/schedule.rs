//! The prefetch schedule: gets of one step in any order keep the look-ahead, a key announced
//! but never fetched is left behind after the slack, and `announce` keeps a schedule that
//! already covers its keys (a bootstrap's whole sequence, then each transform's own); streams
//! (keys, weights) keep each other's look-ahead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;
use pmem_store::{ObjectMeta, ObjectType, ScheduleStream, Store, StoreConfig};
use std::time::{Duration, Instant};

const P: u64 = 0x5C4E_D01E;
const LEN: usize = 64 << 10;

fn filled(name: &str, keys: &[String], budget: u64) -> Store {
    let dir = fresh_dir(name);
    let s = Store::create(&dir, StoreConfig::new(Some(P)).budget(budget)).unwrap();
    for (i, k) in keys.iter().enumerate() {
        s.put(
            k,
            &ObjectMeta::new(ObjectType::Bytes, P),
            &vec![i as u8; LEN],
        )
        .unwrap();
    }
    s
}

fn wait_for(s: &Store, prefetched: u64) {
    let t = Instant::now();
    while s.stats().prefetched < prefetched && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Two steps of four objects, a budget of six: the first step's gets in reverse and shuffled
/// order all hit (no pending object of the step is evicted for the next step's), and once
/// they are done the prefetcher brings in the rest of the next step, whose gets hit too.
#[test]
fn gets_of_one_step_in_any_order_keep_the_look_ahead() {
    let a: Vec<String> = (0..4).map(|i| format!("a{i}")).collect();
    let b: Vec<String> = (0..4).map(|i| format!("b{i}")).collect();
    let all: Vec<String> = a.iter().chain(&b).cloned().collect();
    let s = filled("schedule-order", &all, 6 * LEN as u64);
    s.clear_cache();
    s.prefetch(&all);
    wait_for(&s, 6);
    for k in ["a3", "a1", "a0", "a2"] {
        let h = s.get(k).unwrap();
        assert_eq!(h.bytes().len(), LEN);
        drop(h);
        // Time for the prefetcher to act on the new cursor (it must not evict a pending `a`).
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for(&s, 8);
    for k in &b {
        assert_eq!(s.get(k).unwrap().bytes().len(), LEN);
    }
    let st = s.stats();
    assert_eq!((st.hits, st.misses), (8, 0), "{st:?}");
    assert!(st.resident_bytes <= s.budget());
}

/// A key announced first and never fetched stalls nothing: the gets after it hit, and once
/// the schedule has moved more than 64 entries past it, it is no longer pending (`announce`
/// of it replaces the schedule), while before that it was (`announce` keeps the schedule).
#[test]
fn a_key_never_fetched_is_left_behind() {
    let keys: Vec<String> = (0..80).map(|i| format!("k{i:02}")).collect();
    let s = filled("schedule-stale", &keys, 4 * LEN as u64);
    s.clear_cache();
    s.prefetch(&keys);
    for k in &keys[1..40] {
        s.get(k).unwrap();
    }
    assert!(!s.announce(&["k00"]), "k00 still pending within the slack");
    for k in &keys[40..70] {
        s.get(k).unwrap();
    }
    assert!(s.announce(&["k00"]), "k00 left behind after 69 later gets");
}

/// `announce` keeps a schedule that covers its keys, and replaces one that does not.
#[test]
fn announce_keeps_a_covering_schedule() {
    let keys: Vec<String> = (0..10).map(|i| format!("o{i}")).collect();
    let s = filled("schedule-announce", &keys, 10 * LEN as u64);
    s.prefetch(&keys);
    assert!(!s.announce(&["o7", "o3"]));
    s.get("o3").unwrap();
    assert!(
        s.announce(&["o3"]),
        "o3 is done: a new announcement replaces the schedule"
    );
    assert!(!s.announce(&["o3"]));
    assert!(s.announce(&["o4"]), "o4 is not in the replaced schedule");
}

/// Two providers on one store, each announcing in its own stream: the weights' announcement
/// keeps the keys' pending entries (and a new announcement in a stream replaces only that
/// stream's), the prefetcher reads both, and every get hits. A plain `announce` replaces all.
#[test]
fn streams_keep_each_others_look_ahead() {
    let k: Vec<String> = (0..4).map(|i| format!("key{i}")).collect();
    let w: Vec<String> = (0..4).map(|i| format!("wt{i}")).collect();
    let all: Vec<String> = k
        .iter()
        .chain(&w)
        .chain(["wt9".to_string()].iter())
        .cloned()
        .collect();
    let s = filled("schedule-streams", &all, 8 * LEN as u64);
    s.clear_cache();
    assert!(s.announce_in(ScheduleStream::KEYS, &k));
    assert!(s.announce_in(ScheduleStream::WEIGHTS, &w));
    assert!(
        !s.announce_in(ScheduleStream::KEYS, &["key0", "key3"]),
        "keys kept"
    );
    wait_for(&s, 8);
    // Interleaved gets of both streams, as a linear layer makes them.
    for (a, b) in k.iter().zip(&w) {
        s.get(a).unwrap();
        s.get(b).unwrap();
    }
    let st = s.stats();
    assert_eq!((st.hits, st.misses), (8, 0), "{st:?}");
    assert!(st.resident_bytes <= s.budget());

    // A stream's announcement replaces that stream's pending entries only.
    assert!(s.announce_in(ScheduleStream::KEYS, &["key1", "key2"]));
    assert!(s.announce_in(ScheduleStream::WEIGHTS, &["wt9"]));
    assert!(
        !s.announce_in(ScheduleStream::KEYS, &["key2"]),
        "keys still pending"
    );
    assert!(
        s.announce_in(ScheduleStream::WEIGHTS, &["wt1"]),
        "wt1 was done: the weights stream is replaced"
    );
    // The stream-less `announce` replaces everything.
    assert!(s.announce(&["wt2"]));
    assert!(
        s.announce_in(ScheduleStream::KEYS, &["key2"]),
        "replaced by announce"
    );
}
