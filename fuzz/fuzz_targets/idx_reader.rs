//! Fuzzes he-nn's IDX readers (`parse_idx3`, `parse_idx1`, `parse_images`): any input gives Ok
//! or a typed error, never a panic, and memory stays within a small multiple of the input.
//! Half of the inputs (first byte even) are wrapped in a valid magic number and a header
//! whose dimensions come from the fuzz bytes (small, or raw 32-bit), so the size checks past
//! the magic are reached; the other half are raw bytes.
#![no_main]
use he_nn::data::{parse_idx1, parse_idx3, parse_images};
use libfuzzer_sys::fuzz_target;

fn check(b: &[u8]) {
    if let Ok((n, r, c, px)) = parse_idx3(b) {
        assert_eq!(
            Some(px.len()),
            n.checked_mul(r).and_then(|v| v.checked_mul(c))
        );
        let imgs = parse_images(b, 1.0 / 255.0, 0.0).expect("parse_images after parse_idx3");
        assert_eq!(imgs.len(), n);
        assert!(imgs.iter().all(|i| i.len() == r * c));
    } else {
        assert!(parse_images(b, 1.0, 0.0).is_err());
    }
    if let Ok(l) = parse_idx1(b) {
        assert_eq!(l.len() + 8, b.len());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel & 1 == 1 {
        check(rest);
        return;
    }
    // A valid magic and a header: dimension i is a byte (small) unless bit i+2 of `sel` asks
    // for 4 raw bytes.
    let three = sel & 2 == 0;
    let ndims = if three { 3 } else { 1 };
    let mut b: Vec<u8> = vec![0, 0, 8, if three { 3 } else { 1 }];
    let mut it = rest.iter().copied();
    for i in 0..ndims {
        let v = if sel & (4 << i) != 0 {
            u32::from_be_bytes([
                it.next().unwrap_or(0),
                it.next().unwrap_or(0),
                it.next().unwrap_or(0),
                it.next().unwrap_or(0),
            ])
        } else {
            u32::from(it.next().unwrap_or(0) % 16)
        };
        b.extend(v.to_be_bytes());
    }
    b.extend(it);
    check(&b);
});
