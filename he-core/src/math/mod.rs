//! Modular arithmetic, primes, RNS bases, the NTT and sampling.

pub mod modulus;
pub mod ntt;
pub mod primes;
pub mod rns;
pub mod sampling;

pub use modulus::Modulus;
pub use ntt::{NttBackend, NttPlan, ReferenceNtt, TfheNtt};
pub use rns::{BaseConverter, RnsBasis};
pub use sampling::Prng;
