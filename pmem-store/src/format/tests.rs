//! Unit tests of the record and header encodings.

use super::*;
use proptest::prelude::*;

proptest! {
    /// Wherever a record lands and whatever it holds (zero runs included), the bytes the
    /// writer appends have no sector piece that one bit flip could turn all-zero, and they
    /// decode back to the record (after an optional pad).
    #[test]
    fn encode_at_never_leaves_a_weak_sector(
        offset in 64u64..4096,
        gen in 1u64..1_000_000,
        key_len in 1usize..40,
        user in proptest::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..1500),
        zero_user in any::<bool>(),
    ) {
        let user = if zero_user { vec![0u8; user.len()] } else { user };
        let info = ObjectInfo {
            key: "k".repeat(key_len),
            meta: ObjectMeta::new(ObjectType::Bytes, 0).with_user(user),
            segment: 0,
            offset: 4096,
            len: 0,
            checksum: 0,
            generation: 0,
        };
        let rec = Record::Put(info);
        let (bytes, next) = rec.encode_at(offset, gen);
        prop_assert!(!has_weak_sector(&bytes, offset));
        let mut at = 0;
        let mut g = gen;
        let mut last = None;
        while at < bytes.len() {
            let (r, rg, used) = Record::decode(&bytes[at..]).unwrap();
            prop_assert_eq!(rg, g);
            g += 1;
            at += used;
            last = Some(r);
        }
        prop_assert_eq!(g, next);
        let Some(Record::Put(mut got)) = last else { panic!("no put") };
        got.generation = 0;
        prop_assert_eq!(Record::Put(got), rec);
    }
}

#[test]
fn record_round_trip_and_torn_detection() {
    let info = ObjectInfo {
        key: "galois/5".into(),
        meta: ObjectMeta::new(ObjectType::GaloisKey, 0xabc)
            .with_dims([1, 2, 3, 4])
            .with_aux(5)
            .with_user(vec![9; 10]),
        segment: 3,
        offset: 8192,
        len: 100,
        checksum: 77,
        generation: 42,
    };
    let bytes = Record::Put(info.clone()).encode(42);
    let (rec, gen, used) = Record::decode(&bytes).unwrap();
    assert_eq!(rec, Record::Put(info));
    assert_eq!((gen, used), (42, bytes.len()));
    for cut in 0..bytes.len() {
        assert!(Record::decode(&bytes[..cut]).is_err());
    }
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        assert!(Record::decode(&b).is_err(), "flip at {i} undetected");
    }
}

#[test]
fn headers_round_trip() {
    let h = IndexHeader {
        params_hash: Some(7),
        store_id: 9,
        first_generation: 1,
        created_unix: 3,
    };
    assert_eq!(IndexHeader::decode(&h.encode()).unwrap(), h);
    let s = SegmentHeader {
        segment: 4,
        store_id: 9,
    };
    assert_eq!(SegmentHeader::decode(&s.encode()).unwrap(), s);
}
