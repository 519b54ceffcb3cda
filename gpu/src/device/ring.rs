//! Device-resident tables of an RNS ring: per-modulus constants, NTT twiddles, limb sets.

use super::context::{drv, GpuContext};
use crate::tables::{eval_permutation, mod_params, twiddles, PARAM_WORDS};
use crate::{Error, Result};
use cudarc::driver::CudaSlice;
use he_core::math::ntt::plan as ntt_plan;
use he_core::math::Modulus;
use he_core::ring::RingContext;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Degree, moduli and NTT tables of an RNS ring, resident on one device.
///
/// The moduli are an ordered list (e.g. `q_0 .. q_L` then `p_0 .. p_{k-1}` for hybrid key
/// switching); a polynomial's limbs refer to them through a [`LimbSet`]. Tables take
/// `4 · 8 · N` bytes per modulus (twiddles and their Shoup constants, both directions).
pub struct DeviceRing {
    gpu: Arc<GpuContext>,
    n: usize,
    moduli: Vec<Modulus>,
    psi: Vec<u64>,
    pub(crate) params: CudaSlice<u64>,
    pub(crate) fwd: CudaSlice<u64>,
    pub(crate) fwd_shoup: CudaSlice<u64>,
    pub(crate) inv: CudaSlice<u64>,
    pub(crate) inv_shoup: CudaSlice<u64>,
    perms: Mutex<HashMap<u64, Arc<CudaSlice<u32>>>>,
}

impl std::fmt::Debug for DeviceRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRing")
            .field("n", &self.n)
            .field("moduli", &self.moduli.len())
            .field("device", &self.gpu.info().ordinal)
            .finish()
    }
}

impl DeviceRing {
    /// Uploads the tables for degree `n` and `moduli`, with each `ψ` taken from he-core's NTT
    /// plan for `(n, q)` (so that results are bit-identical to the CPU backend).
    pub fn new(gpu: &Arc<GpuContext>, n: usize, moduli: &[u64]) -> Result<Arc<Self>> {
        let psi = moduli
            .iter()
            .map(|q| Ok(ntt_plan(n, *q)?.psi()))
            .collect::<Result<Vec<_>>>()?;
        Self::with_roots(gpu, n, moduli, &psi)
    }

    /// Uploads the tables of every modulus of a CPU ring context, with the same roots `ψ`.
    pub fn from_ring(gpu: &Arc<GpuContext>, ring: &RingContext) -> Result<Arc<Self>> {
        let n = ring.degree();
        let moduli: Vec<u64> = ring.moduli().iter().map(Modulus::value).collect();
        let psi = (0..moduli.len())
            .map(|i| {
                ring.ntt(i)
                    .map(|p| p.psi())
                    .ok_or_else(|| Error::Unsupported(format!("ring has no NTT plan {i}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Self::with_roots(gpu, n, &moduli, &psi)
    }

    /// Uploads the tables for degree `n`, `moduli` and the given primitive `2N`-th roots.
    pub fn with_roots(
        gpu: &Arc<GpuContext>,
        n: usize,
        moduli: &[u64],
        psi: &[u64],
    ) -> Result<Arc<Self>> {
        let max = he_core::ring::MAX_DEGREE;
        if !n.is_power_of_two() || !(he_core::ring::MIN_DEGREE..=max).contains(&n) {
            return Err(he_core::Error::InvalidDegree {
                found: n,
                min: he_core::ring::MIN_DEGREE,
                max,
            }
            .into());
        }
        if moduli.is_empty() || moduli.len() != psi.len() || moduli.len() > u32::MAX as usize {
            return Err(Error::Shape {
                what: "roots per modulus",
                expected: moduli.len(),
                found: psi.len(),
            });
        }
        let mut ms = Vec::with_capacity(moduli.len());
        let mut params = Vec::with_capacity(moduli.len() * PARAM_WORDS);
        let mut tables: [Vec<u64>; 4] = Default::default();
        for (&q, &p) in moduli.iter().zip(psi) {
            let m = he_core::math::primes::check_ntt_prime(q, n)?;
            if m.pow(p, n as u64) != q - 1 {
                return Err(he_core::Error::InvalidModulus {
                    modulus: q,
                    reason: format!("{p} is not a primitive 2N-th root of unity"),
                }
                .into());
            }
            params.extend_from_slice(&mod_params(&m, n)?);
            for (t, v) in tables.iter_mut().zip(twiddles(&m, n, p)?) {
                t.extend_from_slice(&v);
            }
            ms.push(m);
        }
        let s = gpu.stream();
        let up = |v: &[u64]| s.clone_htod(v).map_err(drv("upload ring tables"));
        Ok(Arc::new(Self {
            gpu: gpu.clone(),
            n,
            params: up(&params)?,
            fwd: up(&tables[0])?,
            fwd_shoup: up(&tables[1])?,
            inv: up(&tables[2])?,
            inv_shoup: up(&tables[3])?,
            moduli: ms,
            psi: psi.to_vec(),
            perms: Mutex::new(HashMap::new()),
        }))
    }

    /// The device context.
    pub fn gpu(&self) -> &Arc<GpuContext> {
        &self.gpu
    }

    /// Ring degree `N`.
    pub fn degree(&self) -> usize {
        self.n
    }

    /// The moduli, in order.
    pub fn moduli(&self) -> &[Modulus] {
        &self.moduli
    }

    /// The root `ψ` of each modulus.
    pub fn psi(&self) -> &[u64] {
        &self.psi
    }

    /// A limb set: limb `i` of a polynomial uses modulus `indices[i]` of this ring.
    pub fn limb_set(self: &Arc<Self>, indices: &[usize]) -> Result<Arc<LimbSet>> {
        if indices.is_empty() {
            return Err(Error::Shape {
                what: "limbs in a limb set",
                expected: 1,
                found: 0,
            });
        }
        let mut idx = Vec::with_capacity(indices.len());
        for (pos, &i) in indices.iter().enumerate() {
            if i >= self.moduli.len() || indices[..pos].contains(&i) {
                return Err(Error::Moduli {
                    what: "limb set",
                    detail: format!(
                        "index {i} at position {pos} is repeated or not below {}",
                        self.moduli.len()
                    ),
                });
            }
            idx.push(i as u32);
        }
        let dev = self
            .gpu
            .stream()
            .clone_htod(&idx)
            .map_err(drv("upload limb set"))?;
        Ok(Arc::new(LimbSet {
            ring: self.clone(),
            indices: idx,
            dev,
        }))
    }

    /// The limb set of the first `count` moduli (a polynomial at level `count - 1`).
    pub fn prefix(self: &Arc<Self>, count: usize) -> Result<Arc<LimbSet>> {
        self.limb_set(&(0..count).collect::<Vec<_>>())
    }

    /// The device permutation of `σ_k` on evaluation form, cached per Galois element.
    pub(crate) fn permutation(&self, k: u64) -> Result<Arc<CudaSlice<u32>>> {
        let k = k % (2 * self.n as u64);
        let mut cache = self.perms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(&k) {
            return Ok(p.clone());
        }
        let perm = eval_permutation(self.n, k)?;
        let dev = Arc::new(
            self.gpu
                .stream()
                .clone_htod(&perm)
                .map_err(drv("upload permutation"))?,
        );
        cache.insert(k, dev.clone());
        Ok(dev)
    }
}

/// Which moduli of a [`DeviceRing`] the limbs of a polynomial use, in order (kept on the
/// device too, where kernels read it). Two polynomials are compatible when their limb sets
/// have the same ring and indices.
pub struct LimbSet {
    ring: Arc<DeviceRing>,
    indices: Vec<u32>,
    pub(crate) dev: CudaSlice<u32>,
}

impl std::fmt::Debug for LimbSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimbSet")
            .field("indices", &self.indices)
            .finish()
    }
}

impl LimbSet {
    /// The ring.
    pub fn ring(&self) -> &Arc<DeviceRing> {
        &self.ring
    }

    /// Modulus indices into the ring, one per limb.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Number of limbs.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Always false: a limb set has at least one limb.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The modulus of limb `i`.
    pub fn modulus(&self, i: usize) -> Option<&Modulus> {
        self.indices
            .get(i)
            .and_then(|&j| self.ring.moduli.get(j as usize))
    }

    /// Errors unless `self` and `other` describe the same moduli of the same ring.
    pub fn check_same(&self, other: &LimbSet, what: &'static str) -> Result<()> {
        if !Arc::ptr_eq(&self.ring, &other.ring) {
            return Err(Error::Moduli {
                what,
                detail: "operands live on different device rings".into(),
            });
        }
        if self.indices != other.indices {
            return Err(Error::Moduli {
                what,
                detail: format!("limbs {:?} vs {:?}", self.indices, other.indices),
            });
        }
        Ok(())
    }
}
