//! Polynomial evaluation in the Chebyshev basis with exact scale management, and composite
//! minimax approximations of sign and ReLU.
//!
//! - [`Polynomial`]: a Chebyshev series on `[a, b]` (interpolation at Chebyshev nodes,
//!   Clenshaw evaluation, monomial conversion, parity, depth);
//! - [`PolynomialEvaluator`]: baby-step giant-step evaluation (depth `⌈log2(d+1)⌉`, one more
//!   for an interval other than `[−1, 1]`) whose output lands exactly on a target scale;
//! - [`PolynomialBackend`]: the arithmetic it runs on — ciphertexts
//!   ([`Evaluator`](crate::ckks::Evaluator)) or their cleartext model
//!   ([`CleartextBackend`]), so that simulation and encryption share one code path;
//! - [`CompositeSign`]: composite odd minimax polynomials for `sign` (Lee, Lee, Kim, No 2021),
//!   computed by a Remez exchange ([`remez_sign`]), and ReLU from it.

mod backend;
mod chebyshev;
mod evaluator;
mod remez;
mod sign;
#[cfg(test)]
mod tests;

pub use backend::{CleartextBackend, PolynomialBackend, RescaleNoise, SimulatedValue};
pub use chebyshev::{depth_for_degree, Parity, Polynomial};
pub use evaluator::PolynomialEvaluator;
pub use remez::{remez_sign, MinimaxSign};
pub use sign::CompositeSign;
