//! # he-nn: encrypted neural-network inference on HomE's full-RNS CKKS
//!
//! A network (built in Rust or imported from ONNX) is lowered to sparse linear layers and
//! activations ([`network`]), planned — parameters, per-layer levels and scales, packing, the
//! exact Galois keys needed, memory ([`plan`]) — simulated in cleartext with the identical
//! plan ([`sim`]), and run on encrypted data ([`exec`]) in one of two packing modes:
//!
//! * [`Mode::Throughput`]: CryptoNets batching (Gilad-Bachrach et al. 2016): slot `i` of every
//!   ciphertext holds input `i`; no rotations, no Galois keys; `N/2` inputs per batch.
//! * [`Mode::Latency`]: one input packed in slots with a power-of-two period (or tiled across
//!   ciphertexts); linear layers, convolutions included, by the baby-step giant-step diagonal
//!   method (Halevi–Shoup 2014), as he-core's double-hoisted linear transforms, and GAZELLE-style
//!   folding for rectangular matrices.
//!
//! Activations: `x²`, or Chebyshev-interpolated polynomials for ReLU/SiLU/GELU evaluated in
//! depth `⌈log2(d+1)⌉` ([`poly`]); for ReLU, optionally composite minimax polynomials
//! (`x·(1 + sign(x))/2`), the planner choosing per layer the cheapest approximation that
//! meets a stated precision ([`activation`], [`PlanOptions::relu`](plan::PlanOptions::relu)).
//!
//! ```no_run
//! use he_nn::{onnx, plan::{Mode, Plan, PlanOptions}, exec::Engine};
//! # fn main() -> he_nn::Result<()> {
//! let model = onnx::load_onnx("nn/models/mnist_cnn.onnx".as_ref(), &Default::default())?;
//! let plan = Plan::new(&model.network, &PlanOptions::new(Mode::Throughput))?;
//! println!("{}", plan.describe());
//! let images: Vec<Vec<f64>> = vec![vec![0.0; 784]; 4];
//! let expected = plan.simulate(&images, Some(1))?;     // cleartext dry run with CKKS noise
//! let keys = plan.generate_keys()?;
//! let encoder = he_core::ckks::Encoder::new(&plan.params)?;
//! let encryptor = he_core::ckks::Encryptor::new(&plan.params, keys.public.clone())?;
//! let ct = plan.encrypt(&encoder, &encryptor, &images)?;
//! let engine = Engine::new(&plan, keys.eval.clone())?;
//! let out = engine.run(ct)?;
//! let logits = plan.decrypt(&encoder, &he_core::ckks::Decryptor::new(&keys.secret), &out)?;
//! # let _ = (expected, logits); Ok(()) }
//! ```

pub mod activation;
pub mod data;
pub mod error;
pub mod exec;
pub mod flooding;
pub mod fuse;
pub mod network;
pub mod onnx;
pub mod plan;
pub mod poly;
pub mod sim;

pub use error::{NnError, Result};
pub use exec::{EncryptedTensor, Engine, Keys, TensorLayout};
pub use network::{Activation, Conv2dSpec, Linear, Network, Op};
pub use plan::{KeySwitchingChoice, MemoryEstimate, Mode, Plan, PlanOptions, WeightsFrom};
pub use poly::{FittedPoly, PolyFunction};
