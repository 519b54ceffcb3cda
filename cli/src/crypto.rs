//! The cryptographic steps shared by the subcommands: encrypting a chunk in the plan's
//! layout, running it, and decoding results — with no model needed on the client side.

use crate::error::{fail, Context, Result};
use crate::files::{decode_chunk, encode_chunk, ChunkHeader, ChunkKind};
use he_core::ckks::{Ciphertext, Decryptor, Encoder, Plaintext};
use he_core::rlwe::Parameters;
use he_core::serialize::Serializable;
use he_nn::plan::PackedLayout;
use he_nn::{EncryptedTensor, Engine, Mode, TensorLayout};
use rayon::prelude::*;
use std::sync::Arc;

/// Encrypts `rows` (one chunk) at `level` with the parameters' default scale, in `mode`'s
/// layout: throughput — one ciphertext per input element, slot `i` = input `i`; latency — one
/// input packed in the slots (as `he_nn::Plan::encrypt` does).
pub fn encrypt_rows(
    encoder: &Encoder,
    encrypt: &(dyn Fn(&Plaintext) -> he_core::Result<Ciphertext> + Sync),
    mode: Mode,
    level: usize,
    rows: &[Vec<f64>],
) -> Result<Vec<Ciphertext>> {
    let params = encoder.params();
    let scale = params.default_scale();
    let slots = params.slots();
    let len = rows.first().map_or(0, Vec::len);
    match mode {
        Mode::Throughput => {
            if rows.is_empty() || rows.len() > slots {
                return fail(format!(
                    "a throughput chunk holds 1..={slots} inputs, got {}",
                    rows.len()
                ));
            }
            (0..len)
                .into_par_iter()
                .map(|e| {
                    let v: Vec<f64> = rows.iter().map(|x| x[e]).collect();
                    encrypt(&encoder.encode(&v, level, scale)?)
                })
                .collect::<he_core::Result<Vec<_>>>()
                .ctx("encrypting")
        }
        Mode::Latency => {
            let [x] = rows else {
                return fail(format!(
                    "a latency chunk holds one input, got {}",
                    rows.len()
                ));
            };
            PackedLayout::new(len, slots)
                .pack(x, slots)
                .par_iter()
                .map(|t| encrypt(&encoder.encode(t, level, scale)?))
                .collect::<he_core::Result<Vec<_>>>()
                .ctx("encrypting")
        }
    }
}

/// The tensor layout of an input chunk of `images` inputs of length `len`.
pub fn input_layout(mode: Mode, images: usize, len: usize, slots: usize) -> TensorLayout {
    match mode {
        Mode::Throughput => TensorLayout::Batch { batch: images, len },
        Mode::Latency => TensorLayout::Packed(PackedLayout::new(len, slots)),
    }
}

/// Decrypts result ciphertexts of `images` inputs into one output vector per input.
///
/// With `flooding` (the default of `decrypt` and `run`), each ciphertext is decrypted with
/// noise flooding at the plan's bound (IND-CPA-D: the predictions may be shared); `None` only
/// where the user opted out by name.
pub fn decode_outputs(
    encoder: &Encoder,
    decryptor: &Decryptor<'_>,
    flooding: Option<&he_nn::flooding::OutputFlooding>,
    mode: Mode,
    images: usize,
    out_len: usize,
    cts: &[Ciphertext],
) -> Result<Vec<Vec<f64>>> {
    let slots = encoder.params().slots();
    let decoded = cts
        .par_iter()
        .map(|c| he_nn::flooding::decrypt_output(encoder, decryptor, flooding, c))
        .collect::<he_nn::Result<Vec<_>>>()
        .ctx("decrypting")?;
    match mode {
        Mode::Throughput => {
            if decoded.len() != out_len || images > slots {
                return fail(format!(
                    "result chunk has {} ciphertexts for {images} images, expected {out_len}",
                    decoded.len()
                ));
            }
            Ok((0..images)
                .map(|i| (0..out_len).map(|e| decoded[e][i]).collect())
                .collect())
        }
        Mode::Latency => {
            let l = PackedLayout::new(out_len, slots);
            if decoded.len() != l.tiles || images != 1 {
                return fail(format!(
                    "result chunk has {} ciphertexts for {images} images, expected {} for one",
                    decoded.len(),
                    l.tiles
                ));
            }
            Ok(vec![l.unpack(&decoded, slots)])
        }
    }
}

/// Decodes the ciphertexts of a chunk file against `params`.
pub fn load_chunk_ciphertexts(
    params: &Arc<Parameters>,
    bytes: &[u8],
    what: &str,
) -> Result<(ChunkHeader, Vec<Ciphertext>)> {
    let chunk = decode_chunk(bytes, what)?;
    if chunk.header.params_hash != params.hash() {
        return fail(format!(
            "{what}: made for parameters {:016x}, expected {:016x}",
            chunk.header.params_hash,
            params.hash()
        ));
    }
    let cts = chunk
        .blobs
        .par_iter()
        .enumerate()
        .map(|(i, b)| Ciphertext::from_bytes(params, b).ctx(format!("{what}: ciphertext {i}")))
        .collect::<Result<Vec<_>>>()?;
    Ok((chunk.header, cts))
}

/// Serializes ciphertexts into a chunk file.
pub fn chunk_bytes(h: &ChunkHeader, cts: &[Ciphertext]) -> Vec<u8> {
    let blobs: Vec<Vec<u8>> = cts.par_iter().map(|c| c.to_bytes()).collect();
    encode_chunk(h, &blobs)
}

/// Runs one input chunk through the engine and returns the result chunk file.
pub fn infer_chunk(
    engine: &Engine,
    mode: Mode,
    input: &[u8],
    what: &str,
) -> Result<(ChunkHeader, Vec<u8>)> {
    let plan = engine.plan();
    let (h, cts) = load_chunk_ciphertexts(&plan.params, input, what)?;
    if h.kind != ChunkKind::Input {
        return fail(format!(
            "{what}: holds {}, expected encrypted input",
            h.kind.name()
        ));
    }
    if let Some(c) = cts.iter().find(|c| c.level() != plan.top_level) {
        return fail(format!(
            "{what}: ciphertext at level {}, the model's inputs are at level {}",
            c.level(),
            plan.top_level
        ));
    }
    let layout = input_layout(
        mode,
        h.images as usize,
        plan.input_len(),
        plan.params.slots(),
    );
    let expect = match layout {
        TensorLayout::Batch { len, .. } => len,
        TensorLayout::Packed(l) => l.tiles,
    };
    if cts.len() != expect {
        return fail(format!(
            "{what}: {} ciphertexts, the model's input needs {expect}",
            cts.len()
        ));
    }
    let out = engine
        .run(EncryptedTensor { layout, cts })
        .ctx(format!("{what}: evaluation"))?;
    let rh = ChunkHeader {
        kind: ChunkKind::Result,
        source: xxhash_rust::xxh3::xxh3_64(input),
        ..h
    };
    Ok((rh, chunk_bytes(&rh, &out.cts)))
}
