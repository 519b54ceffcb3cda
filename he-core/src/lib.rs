//! # he-core — the cryptography of HomE
//!
//! Full-RNS CKKS (Cheon, Han, Kim, Kim, Song, SAC 2018) over the ring
//! `Z_Q[X]/(X^N + 1)`, built bottom-up in layers that depend downward only:
//!
//! ```text
//! math   modular arithmetic (Barrett, Shoup), NTT-friendly primes, RNS bases and fast base
//!        conversion, negacyclic NTT (trait; tfhe-ntt and F64Ntt backends + scalar
//!        reference), sampling
//! ring   RNS polynomials (coefficient / evaluation form as a type parameter), arithmetic,
//!        automorphisms, rescaling, digit decomposition
//! rlwe   parameters (literal, intent, presets, 128-bit table), keys, hybrid key switching,
//!        hoisting, the EvalKeyProvider seam for key stores
//! ckks   encoder, encryption, the evaluator (level and scale management as operations,
//!        constants to a target scale)
//! circuits  linear transforms with pre-encoded diagonals (double hoisted), Chebyshev
//!        polynomial evaluation with exact scales, composite minimax sign, bootstrapping,
//!        the WeightProvider seam for weight stores
//! serialize  versioned, checksummed, size-checked binary format; the one object registry
//!        (ObjectKind) shared with pmem-store
//! ```
//!
//! No I/O, no GPU, no files: higher tiers plug in through traits.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod circuits;
pub mod ckks;
pub mod error;
pub mod math;
pub mod ring;
pub mod rlwe;
pub mod serialize;

pub use error::{Error, Result};
