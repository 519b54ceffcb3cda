//! he-core's per-limb [`NttBackend`] implemented on the device, so that a `RingContext` can
//! run its transforms on a GPU.

use super::context::GpuContext;
use super::poly::DevicePoly;
use super::ring::{DeviceRing, LimbSet};
use crate::Result;
use he_core::math::ntt::{NttBackend, NttPlan};
use he_core::ring::{Coeff, Eval, RingContext};
use std::sync::{Arc, Mutex};

/// One limb's NTT on the device: each call uploads the limb, transforms it with the batched
/// kernels and copies it back (the latency of two PCIe copies per limb — use [`DevicePoly`]
/// for real speed; this is the drop-in per-limb contract of he-core).
///
/// # Errors and panics
/// The ring layer calls the fallible `try_forward` / `try_inverse` / `try_mul_accumulate`,
/// which this backend overrides: a device failure comes back as `he_core::Error::Backend` with
/// the driver's message, and nothing falls back to the CPU. Only the infallible
/// `*_unchecked` entry points (not used by he-core's ring layer) panic on a device failure.
pub struct GpuNtt {
    limbs: Arc<LimbSet>,
    lock: Mutex<()>,
}

impl std::fmt::Debug for GpuNtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuNtt")
            .field("n", &self.degree())
            .field("q", &self.modulus())
            .finish()
    }
}

impl GpuNtt {
    /// Plans for every modulus of `ring` (sharing one set of device tables), in order.
    pub fn plans(ring: &Arc<DeviceRing>) -> Result<Vec<NttPlan>> {
        (0..ring.moduli().len())
            .map(|i| {
                Ok(Arc::new(Self {
                    limbs: ring.limb_set(&[i])?,
                    lock: Mutex::new(()),
                }) as NttPlan)
            })
            .collect()
    }

    /// A CPU `RingContext` of degree `n` over `moduli` whose NTTs run on the device.
    pub fn ring_context(
        gpu: &Arc<GpuContext>,
        n: usize,
        moduli: &[u64],
    ) -> Result<Arc<RingContext>> {
        let ring = DeviceRing::new(gpu, n, moduli)?;
        Ok(RingContext::with_plans(n, Self::plans(&ring)?)?)
    }

    fn run(&self, a: &mut [u64], forward: bool) -> Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if forward {
            let p = DevicePoly::<Coeff>::upload(&self.limbs, a)?.into_eval()?;
            p.download_into(a)
        } else {
            let p = DevicePoly::<Eval>::upload(&self.limbs, a)?.into_coeff()?;
            p.download_into(a)
        }
    }

    fn mac(&self, acc: &mut [u64], a: &[u64], b: &[u64]) -> Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut c = DevicePoly::<Eval>::upload(&self.limbs, acc)?;
        let x = DevicePoly::<Eval>::upload(&self.limbs, a)?;
        let y = DevicePoly::<Eval>::upload(&self.limbs, b)?;
        c.mul_add_assign(&x, &y)?;
        c.download_into(acc)
    }
}

#[allow(clippy::panic)] // documented: the trait is infallible and there is no CPU fallback.
fn or_panic(r: Result<()>, what: &str) {
    if let Err(e) = r {
        panic!("he-gpu: {what} failed on the device (no CPU fallback): {e}");
    }
}

impl NttBackend for GpuNtt {
    fn name(&self) -> &'static str {
        "cuda"
    }
    fn degree(&self) -> usize {
        self.limbs.ring().degree()
    }
    fn modulus(&self) -> u64 {
        self.limbs.modulus(0).map(|m| m.value()).unwrap_or(0)
    }
    fn psi(&self) -> u64 {
        let i = self.limbs.indices().first().copied().unwrap_or(0) as usize;
        self.limbs.ring().psi().get(i).copied().unwrap_or(0)
    }
    fn forward_unchecked(&self, a: &mut [u64]) {
        or_panic(self.run(a, true), "forward NTT");
    }
    fn inverse_unchecked(&self, a: &mut [u64]) {
        or_panic(self.run(a, false), "inverse NTT");
    }
    fn mul_accumulate(&self, acc: &mut [u64], a: &[u64], b: &[u64]) {
        or_panic(self.mac(acc, a, b), "multiply-accumulate");
    }
    fn try_forward(&self, a: &mut [u64]) -> he_core::Result<()> {
        self.run(a, true)
            .map_err(|e| he_core::Error::Backend(format!("he-gpu forward NTT: {e}")))
    }
    fn try_inverse(&self, a: &mut [u64]) -> he_core::Result<()> {
        self.run(a, false)
            .map_err(|e| he_core::Error::Backend(format!("he-gpu inverse NTT: {e}")))
    }
    fn try_mul_accumulate(&self, acc: &mut [u64], a: &[u64], b: &[u64]) -> he_core::Result<()> {
        self.mac(acc, a, b)
            .map_err(|e| he_core::Error::Backend(format!("he-gpu multiply-accumulate: {e}")))
    }
}
