//! Full-RNS CKKS (Cheon, Han, Kim, Kim, Song, SAC 2018) on the ring and RLWE layers:
//! encoder, encryption, and the evaluator with hybrid key switching, hoisted rotations and
//! BSGS linear transforms.

pub mod ciphertext;
mod constants;
mod decode;
pub mod encoder;
pub mod encryptor;
pub mod evaluator;
pub mod flooding;
pub mod precision;

pub use ciphertext::{Ciphertext, Plaintext};
pub use constants::MAX_CONSTANT;
pub use encoder::Encoder;
pub use encryptor::{Decryptor, Encryptor};
pub use evaluator::Evaluator;
pub use flooding::{FloodReport, FloodingConfig, NoiseEstimate};
/// Complex slot values (re-exported from `num-complex`).
pub use num_complex::Complex64;
pub use precision::PrecisionStats;

#[cfg(test)]
mod range_tests;
#[cfg(test)]
mod tests;
