//! # he-gpu — the CUDA backend of HomE
//!
//! RNS-CKKS kernels on NVIDIA GPUs through [cudarc] (dynamic loading: the crate builds and its
//! tests pass with no CUDA installed; device tests then print `SKIPPED`). Kernels are CUDA C
//! ([`kernels`], `gpu/kernels/*.cu`) compiled by NVRTC at first use, once per process and
//! architecture, and loaded once per [`GpuContext`].
//!
//! ```text
//! GpuContext      one device, chosen explicitly by ordinal; one stream; the kernels
//! DeviceRing      degree N, an ordered list of primes, per-prime constants and NTT twiddles
//! LimbSet         which primes of the ring the limbs of a polynomial use (e.g. Q_l ∪ P)
//! DevicePoly<R>   a batch of polynomials, polys × limbs × N words, limb-major (he-core's
//!                 layout), representation R = Coeff | Eval as a type parameter
//! ```
//!
//! Operations: batched forward / inverse negacyclic NTT (Cooley–Tukey / Gentleman–Sande with
//! merged ψ powers, Longa–Naehrig 2016; Harvey's lazy Shoup butterflies), element-wise
//! add / sub / neg / mul (Barrett) / multiply-accumulate / RNS-scalar products (Shoup),
//! automorphisms (evaluation-form permutation, coefficient-form signed scatter), fast base
//! conversion (Bajard et al. 2016 / HPS 2019) and the key-switching inner product of hybrid key
//! switching (Han–Ki 2020). Results are bit-identical to he-core's CPU path, which is the
//! reference in every test. [`GpuNtt`] implements he-core's `NttBackend` so that a
//! `RingContext` can run its NTTs on the device.
//!
//! The device is always picked explicitly ([`GpuContext::new`]) and no operation ever falls
//! back to the CPU: without a driver, a device or NVRTC, the calls return [`Error`]s.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod error;
pub mod kernels;
pub mod tables;

#[cfg(feature = "cuda")]
pub mod device;
#[cfg(feature = "cuda")]
pub mod nvrtc;

#[cfg(not(feature = "cuda"))]
mod disabled;

pub use error::{Error, Result};

#[cfg(feature = "cuda")]
pub use device::{
    backend::GpuNtt,
    context::{device_count, documented_bandwidth, driver_present, DeviceInfo, GpuContext},
    poly::DevicePoly,
    ring::{DeviceRing, LimbSet},
    rns::{key_switch_inner_product, DeviceBaseConverter, DeviceKeySwitchKey},
};
#[cfg(feature = "cuda")]
pub use nvrtc::{nvrtc_version, preload_nvrtc};

#[cfg(not(feature = "cuda"))]
pub use disabled::GpuContext;
