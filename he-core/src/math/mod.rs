//! Modular arithmetic, primes, RNS bases, the NTT and sampling.

pub mod modulus;
pub mod ntt;
pub mod ntt_f64;
pub mod primes;
pub mod rns;
pub mod sampling;

pub use modulus::Modulus;
pub use ntt::{F64TfheNtt, NttBackend, NttPlan, ReferenceNtt, TfheNtt};
pub use ntt_f64::F64Ntt;
pub use rns::{BaseConverter, RnsBasis};
pub use sampling::Prng;
