//! Fuzzes the store's index recovery (`recovery::recover_index`, exactly what `Store::open`
//! runs on the bytes of `index.log`) and the segment header parser. The first byte picks the
//! shape of the input: raw bytes as the whole index; a valid index header followed by raw
//! bytes; or a valid header followed by validly framed records with fuzzed bodies (so that
//! the body parser and replay are reached), optionally damaged or cut afterwards.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pmem_store::format::{frame, IndexHeader, SegmentHeader, SEGMENT_HEADER_LEN};
use pmem_store::recovery::{recover_index, Tail};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let _ = SegmentHeader::decode(rest.get(..SEGMENT_HEADER_LEN).unwrap_or(rest));
    let header = IndexHeader {
        params_hash: (sel & 8 != 0).then_some(0x1234),
        store_id: 99,
        first_generation: 1 + u64::from(sel >> 4),
        created_unix: 0,
    };
    let buf: Vec<u8> = match sel % 3 {
        0 => rest.to_vec(),
        1 => {
            let mut b = header.encode().to_vec();
            b.extend_from_slice(rest);
            b
        }
        _ => {
            // Records: [len u8][body bytes]..., each framed with the next generation; a
            // trailing byte pair (position, xor) damages the result, a cut shortens it.
            let mut b = header.encode().to_vec();
            let mut gen = header.first_generation;
            let mut r = rest;
            while let Some((&n, tail)) = r.split_first() {
                let n = (n as usize).min(tail.len());
                let (body, after) = tail.split_at(n);
                b.extend_from_slice(&frame(body, gen));
                gen += 1;
                r = after;
                if n == 0 {
                    break;
                }
            }
            if sel & 4 != 0 && b.len() > 64 {
                let pos = 64 + (usize::from(sel) * 7919) % (b.len() - 64);
                if let Some(x) = b.get_mut(pos) {
                    *x ^= 1 << (sel % 8);
                }
            }
            if sel & 64 != 0 {
                b.truncate(b.len().saturating_sub(usize::from(sel) % 23));
            }
            b
        }
    };
    if let Ok(r) = recover_index(&buf) {
        assert!(r.committed_len as usize <= buf.len());
        match &r.tail {
            Tail::Clean => assert_eq!(r.committed_len, buf.len() as u64),
            Tail::Torn { bytes, .. } => assert_eq!(r.committed_len + bytes, buf.len() as u64),
            Tail::Damaged { offset, bytes, .. } => {
                assert_eq!(*offset, r.committed_len);
                assert_eq!(offset + bytes, buf.len() as u64);
            }
        }
    }
});
