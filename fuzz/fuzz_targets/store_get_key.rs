//! Fuzzes the path `Store::get_key` takes from an index record to a `KeySwitchKey`: the record
//! body parser (metadata, via `Record::decode`) and `decode_key` (shape, kind and length checks
//! over the payload words). Half of the inputs frame the fuzzed body validly (correct head and
//! checksum) so that the body parser is reached; the other half build a well-formed Put record
//! from fuzzed fields (small dimensions, so that shapes sometimes match the payload).
#![no_main]
use libfuzzer_sys::fuzz_target;
use pmem_store::format::{frame, Record};
use pmem_store::{decode_key, ObjectInfo, ObjectMeta, ObjectType};
use std::sync::Arc;

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    for (j, x) in a.iter_mut().enumerate() {
        *x = b.get(i * 8 + j).copied().unwrap_or(0);
    }
    u64::from_le_bytes(a)
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    // Split: [meta part len u8][meta part][payload bytes (at most 64 KiB)].
    let Some((&n, rest)) = rest.split_first() else { return };
    let (meta_part, payload) = rest.split_at((n as usize).min(rest.len()));
    let payload = payload.get(..payload.len().min(64 << 10)).unwrap_or(payload);
    let record = if sel & 1 == 1 {
        frame(meta_part, 7)
    } else {
        let ty = ObjectType::from_tag(u16::from(sel >> 1) % 16).unwrap_or(ObjectType::GaloisKey);
        let small = |x: u64| if sel & 2 != 0 { x % 64 } else { x };
        let info = ObjectInfo {
            key: "k".into(),
            meta: ObjectMeta::new(ty, u64_at(meta_part, 0))
                .with_dims([
                    small(u64_at(meta_part, 1)),
                    small(u64_at(meta_part, 2)),
                    small(u64_at(meta_part, 3)),
                    small(u64_at(meta_part, 4)),
                ])
                .with_aux(u64_at(meta_part, 5)),
            segment: 1,
            offset: 4096,
            len: payload.len() as u64,
            checksum: 0,
            generation: 7,
        };
        Record::Put(info).encode(7)
    };
    let Ok((Record::Put(info), _, _)) = Record::decode(&record) else { return };
    let words: Vec<u64> = payload
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    if let Ok(k) = decode_key(&info.key, &info.meta, Arc::new(words)) {
        assert_eq!(k.words().len(), k.shape().words());
    }
});
