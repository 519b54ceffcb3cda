//! Readers for the sample data: IDX files (MNIST format) and JSON logits.
//!
//! The IDX readers trust nothing in the file: the magic number, the header and the file length
//! must agree exactly (`header + count·rows·cols` bytes, computed with checked arithmetic)
//! before anything is allocated, and images must have at least one pixel, so the memory used is
//! bounded by a small multiple of the file's own size (at most 8 bytes per pixel plus one
//! vector header per image for [`read_images`]). Every problem is an [`NnError::Idx`] naming
//! what was expected and what was found.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::error::{NnError, Result};
use std::path::Path;

/// Name used in errors for in-memory parsing.
const MEMORY: &str = "<memory>";

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| NnError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn idx_err(what: &str, expected: impl Into<String>, found: impl Into<String>) -> NnError {
    NnError::Idx {
        path: what.to_string(),
        expected: expected.into(),
        found: found.into(),
    }
}

/// The big-endian `u32` at byte `at` (the caller has checked the header length).
fn be32(b: &[u8], at: usize, what: &str) -> Result<usize> {
    at.checked_add(4)
        .and_then(|end| b.get(at..end))
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(|s| u32::from_be_bytes(s) as usize)
        .ok_or_else(|| {
            idx_err(
                what,
                format!("a header of at least {} bytes", at.saturating_add(4)),
                format!("{} bytes", b.len()),
            )
        })
}

/// Checks the magic number and that the file holds exactly `header + Π dims` bytes; returns
/// the dimensions and the data.
fn parse_header<'a>(
    b: &'a [u8],
    ndims: usize,
    magic: u32,
    what: &str,
) -> Result<(Vec<usize>, &'a [u8])> {
    let header = 4 + 4 * ndims;
    if b.len() < header {
        return Err(idx_err(
            what,
            format!("an IDX header of {header} bytes"),
            format!("{} bytes", b.len()),
        ));
    }
    let m = be32(b, 0, what)?;
    if m != magic as usize {
        return Err(idx_err(
            what,
            format!("magic {magic:#010x} (unsigned bytes, {ndims} dimension(s))"),
            format!("magic {m:#010x}"),
        ));
    }
    let dims = (0..ndims)
        .map(|i| be32(b, 4 + 4 * i, what))
        .collect::<Result<Vec<usize>>>()?;
    let need = dims
        .iter()
        .try_fold(1usize, |acc, d| acc.checked_mul(*d))
        .and_then(|n| n.checked_add(header));
    let data = b.get(header..).unwrap_or_default();
    if need != Some(b.len()) {
        return Err(idx_err(
            what,
            format!(
                "{} bytes for dimensions {dims:?}",
                need.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
            ),
            format!("a file of {} bytes", b.len()),
        ));
    }
    Ok((dims, data))
}

fn idx3<'a>(b: &'a [u8], what: &str) -> Result<(usize, usize, usize, &'a [u8])> {
    let (dims, data) = parse_header(b, 3, 0x0803, what)?;
    let [n, r, c] = <[usize; 3]>::try_from(dims.as_slice())
        .map_err(|_| idx_err(what, "3 dimensions", format!("{}", dims.len())))?;
    if n > 0 && (r == 0 || c == 0) {
        return Err(idx_err(
            what,
            "images of at least 1x1 pixels",
            format!("{n} images of {r}x{c}"),
        ));
    }
    Ok((n, r, c, data))
}

/// Parses an IDX3 ubyte image file held in memory: `(count, rows, cols, pixels)`, the pixels
/// borrowed from `bytes`.
pub fn parse_idx3(bytes: &[u8]) -> Result<(usize, usize, usize, &[u8])> {
    idx3(bytes, MEMORY)
}

/// Parses an IDX1 ubyte label file held in memory.
pub fn parse_idx1(bytes: &[u8]) -> Result<&[u8]> {
    Ok(parse_header(bytes, 1, 0x0801, MEMORY)?.1)
}

fn images(px: &[u8], rows: usize, cols: usize, scale: f64, shift: f64) -> Vec<Vec<f64>> {
    // `idx3` guarantees `px.len() = count·rows·cols` and `rows·cols >= 1` when `count > 0`.
    px.chunks_exact(rows.saturating_mul(cols).max(1))
        .map(|img| img.iter().map(|p| *p as f64 * scale + shift).collect())
        .collect()
}

/// Parses IDX3 images held in memory as `pixel * scale + shift`, one flat vector per image.
pub fn parse_images(bytes: &[u8], scale: f64, shift: f64) -> Result<Vec<Vec<f64>>> {
    let (_, r, c, px) = parse_idx3(bytes)?;
    Ok(images(px, r, c, scale, shift))
}

/// Reads an IDX3 ubyte image file: `(count, rows, cols, pixels)`.
pub fn read_idx3(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let b = read(path)?;
    let (n, r, c, px) = idx3(&b, &path.display().to_string())?;
    Ok((n, r, c, px.to_vec()))
}

/// Reads an IDX1 ubyte label file.
pub fn read_idx1(path: &Path) -> Result<Vec<u8>> {
    let b = read(path)?;
    Ok(parse_header(&b, 1, 0x0801, &path.display().to_string())?
        .1
        .to_vec())
}

/// Reads images as `pixel * scale + shift`, one flat vector per image.
pub fn read_images(path: &Path, scale: f64, shift: f64) -> Result<Vec<Vec<f64>>> {
    let b = read(path)?;
    let (_, r, c, px) = idx3(&b, &path.display().to_string())?;
    Ok(images(px, r, c, scale, shift))
}

/// Reads a JSON list of lists of numbers (e.g. onnxruntime logits).
pub fn read_logits_json(path: &Path) -> Result<Vec<Vec<f64>>> {
    let b = read(path)?;
    serde_json::from_slice(&b).map_err(|e| NnError::Invalid(format!("{}: {e}", path.display())))
}

/// Sample inputs of a model with the reference outputs onnxruntime gave for them.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// Flat inputs (the model's input length each).
    pub inputs: Vec<Vec<f64>>,
    /// onnxruntime's outputs, one per input.
    pub reference: Vec<Vec<f64>>,
}

/// The samples of a model's JSON sidecar as `nn/scripts/resnet20.py` writes it (fields
/// `samples` and `onnxruntime_logits`).
pub fn read_samples_json(path: &Path) -> Result<Samples> {
    let bad = |e: String| NnError::Invalid(format!("{}: {e}", path.display()));
    let mut v: serde_json::Value =
        serde_json::from_slice(&read(path)?).map_err(|e| bad(e.to_string()))?;
    let mut field = |name: &str| -> Result<Vec<Vec<f64>>> {
        serde_json::from_value(
            v.get_mut(name)
                .map(serde_json::Value::take)
                .unwrap_or_default(),
        )
        .map_err(|e| bad(format!("field `{name}`: {e}")))
    };
    Ok(Samples {
        inputs: field("samples")?,
        reference: field("onnxruntime_logits")?,
    })
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
