//! Readers for the sample data: IDX files (MNIST format) and JSON logits.

use crate::error::{NnError, Result};
use std::path::Path;

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| NnError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn be32(b: &[u8], at: usize) -> Result<usize> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
        .ok_or_else(|| NnError::Invalid("truncated IDX header".into()))
}

/// Reads an IDX3 ubyte image file: `(count, rows, cols, pixels)`.
pub fn read_idx3(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let b = read(path)?;
    if be32(&b, 0)? != 0x0803 {
        return Err(NnError::Invalid(format!(
            "{}: not an IDX3 ubyte file (magic 0x00000803)",
            path.display()
        )));
    }
    let (n, r, c) = (be32(&b, 4)?, be32(&b, 8)?, be32(&b, 12)?);
    let data = b
        .get(16..16 + n * r * c)
        .ok_or_else(|| NnError::Invalid(format!("{}: truncated", path.display())))?;
    Ok((n, r, c, data.to_vec()))
}

/// Reads an IDX1 ubyte label file.
pub fn read_idx1(path: &Path) -> Result<Vec<u8>> {
    let b = read(path)?;
    if be32(&b, 0)? != 0x0801 {
        return Err(NnError::Invalid(format!(
            "{}: not an IDX1 ubyte file (magic 0x00000801)",
            path.display()
        )));
    }
    let n = be32(&b, 4)?;
    Ok(b.get(8..8 + n)
        .ok_or_else(|| NnError::Invalid(format!("{}: truncated", path.display())))?
        .to_vec())
}

/// Reads images as `pixel * scale + shift`, one flat vector per image.
pub fn read_images(path: &Path, scale: f64, shift: f64) -> Result<Vec<Vec<f64>>> {
    let (n, r, c, px) = read_idx3(path)?;
    Ok((0..n)
        .map(|i| {
            px[i * r * c..(i + 1) * r * c]
                .iter()
                .map(|p| *p as f64 * scale + shift)
                .collect()
        })
        .collect())
}

/// Reads a JSON list of lists of numbers (e.g. onnxruntime logits).
pub fn read_logits_json(path: &Path) -> Result<Vec<Vec<f64>>> {
    let b = read(path)?;
    serde_json::from_slice(&b).map_err(|e| NnError::Invalid(format!("{}: {e}", path.display())))
}

/// Index of the largest value.
pub fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, x)| {
            if *x > bv {
                (i, *x)
            } else {
                (bi, bv)
            }
        })
        .0
}
