//! Device-resident RNS polynomials and their element-wise operations and NTTs.

use super::context::drv;
use super::ring::LimbSet;
use crate::kernels::{self, LaunchShape};
use crate::{Error, Result};
use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg};
use he_core::ring::{Coeff, Eval, Poly, Representation};
use std::marker::PhantomData;
use std::sync::Arc;

/// A batch of `polys` RNS polynomials on the device, each with the limbs of a [`LimbSet`]:
/// `polys × limbs × N` words, polynomial-major then limb-major — the concatenation of
/// he-core [`Poly`] buffers, so one copy moves a whole batch. The representation (coefficient
/// or evaluation form) is a type parameter, as in he-core; converting consumes the value.
///
/// Every operation is issued asynchronously on the context's stream; downloads wait for it.
pub struct DevicePoly<R: Representation> {
    limbs: Arc<LimbSet>,
    polys: usize,
    pub(crate) data: CudaSlice<u64>,
    _repr: PhantomData<R>,
}

impl<R: Representation> std::fmt::Debug for DevicePoly<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DevicePoly<{}>(N={}, polys={}, limbs={:?})",
            R::NAME,
            self.degree(),
            self.polys,
            self.limbs.indices()
        )
    }
}

pub(crate) fn config(s: &LaunchShape) -> LaunchConfig {
    LaunchConfig {
        grid_dim: s.grid,
        block_dim: (s.block, 1, 1),
        shared_mem_bytes: s.shared_bytes,
    }
}

pub(crate) fn u32_of(x: usize, what: &'static str) -> Result<u32> {
    u32::try_from(x).map_err(|_| Error::Unsupported(format!("{what} = {x} exceeds 2^32 - 1")))
}

impl<R: Representation> DevicePoly<R> {
    /// `polys` zero polynomials with limbs `limbs`.
    pub fn zeros(limbs: &Arc<LimbSet>, polys: usize) -> Result<Self> {
        let words = polys * limbs.len() * limbs.ring().degree();
        if polys == 0 {
            return Err(Error::Shape {
                what: "polynomials in a batch",
                expected: 1,
                found: 0,
            });
        }
        let data = limbs
            .ring()
            .gpu()
            .stream()
            .alloc_zeros::<u64>(words)
            .map_err(drv("cuMemAlloc"))?;
        Ok(Self {
            limbs: limbs.clone(),
            polys,
            data,
            _repr: PhantomData,
        })
    }

    /// Uploads `host` (`polys × limbs × N` words, limb-major per polynomial), checking that
    /// every residue is below its modulus.
    pub fn upload(limbs: &Arc<LimbSet>, host: &[u64]) -> Result<Self> {
        let n = limbs.ring().degree();
        let per_poly = limbs.len() * n;
        if host.is_empty() || !host.len().is_multiple_of(per_poly) {
            return Err(Error::Shape {
                what: "host words (a multiple of limbs x N)",
                expected: per_poly,
                found: host.len(),
            });
        }
        for (r, row) in host.chunks_exact(n).enumerate() {
            let l = r % limbs.len();
            let q = limbs.modulus(l).map(|m| m.value()).unwrap_or(0);
            if let Some(bad) = row.iter().find(|x| **x >= q) {
                return Err(he_core::Error::OutOfRange {
                    what: "residue",
                    found: format!("{bad} in limb {l} of polynomial {}", r / limbs.len()),
                    allowed: format!("< {q}"),
                }
                .into());
            }
        }
        let data = limbs
            .ring()
            .gpu()
            .stream()
            .clone_htod(host)
            .map_err(drv("cuMemcpyHtoD"))?;
        Ok(Self {
            limbs: limbs.clone(),
            polys: host.len() / per_poly,
            data,
            _repr: PhantomData,
        })
    }

    /// Uploads he-core polynomials (all with `limbs.len()` limbs and the ring's degree) as one
    /// batch.
    pub fn from_polys<C: AsRef<[u64]>>(
        limbs: &Arc<LimbSet>,
        polys: &[&Poly<R, C>],
    ) -> Result<Self> {
        let n = limbs.ring().degree();
        let mut host = Vec::with_capacity(polys.len() * limbs.len() * n);
        for p in polys {
            if p.degree() != n || p.limbs() != limbs.len() {
                return Err(Error::Shape {
                    what: "polynomial words (limbs x N)",
                    expected: limbs.len() * n,
                    found: p.limbs() * p.degree(),
                });
            }
            host.extend_from_slice(p.as_slice());
        }
        Self::upload(limbs, &host)
    }

    /// Copies everything back (`polys × limbs × N` words); waits for the stream.
    pub fn download(&self) -> Result<Vec<u64>> {
        self.stream()
            .clone_dtoh(&self.data)
            .map_err(drv("cuMemcpyDtoH"))
    }

    /// Copies everything back into `out` (exactly `polys × limbs × N` words); waits.
    pub fn download_into(&self, out: &mut [u64]) -> Result<()> {
        if out.len() != self.data.len() {
            return Err(Error::Shape {
                what: "download buffer",
                expected: self.data.len(),
                found: out.len(),
            });
        }
        self.stream()
            .memcpy_dtoh(&self.data, out)
            .map_err(drv("cuMemcpyDtoH"))
    }

    /// Polynomial `index` of the batch as an he-core polynomial; waits.
    pub fn to_poly(&self, index: usize) -> Result<Poly<R>> {
        let per = self.limbs.len() * self.degree();
        if index >= self.polys {
            return Err(Error::Shape {
                what: "polynomial index (bound)",
                expected: self.polys,
                found: index,
            });
        }
        let view = self.data.slice(index * per..(index + 1) * per);
        let host = self
            .stream()
            .clone_dtoh(&view)
            .map_err(drv("cuMemcpyDtoH"))?;
        Ok(Poly::from_container(host.as_slice(), self.degree(), self.limbs.len())?.to_owned_poly())
    }

    /// A device copy.
    pub fn try_clone(&self) -> Result<Self> {
        Ok(Self {
            limbs: self.limbs.clone(),
            polys: self.polys,
            data: self.data.try_clone().map_err(drv("cuMemcpyDtoD"))?,
            _repr: PhantomData,
        })
    }

    /// The limb set.
    pub fn limb_set(&self) -> &Arc<LimbSet> {
        &self.limbs
    }

    /// Limbs per polynomial.
    pub fn limbs(&self) -> usize {
        self.limbs.len()
    }

    /// Polynomials in the batch.
    pub fn polys(&self) -> usize {
        self.polys
    }

    /// Ring degree `N`.
    pub fn degree(&self) -> usize {
        self.limbs.ring().degree()
    }

    /// Total words (`polys × limbs × N`).
    pub fn words(&self) -> usize {
        self.data.len()
    }

    /// Raw device buffer (for custom kernels; the layout is documented on the type).
    pub fn raw(&self) -> &CudaSlice<u64> {
        &self.data
    }

    pub(crate) fn stream(&self) -> &Arc<cudarc::driver::CudaStream> {
        self.limbs.ring().gpu().stream()
    }

    fn log_n(&self) -> u32 {
        self.degree().trailing_zeros()
    }

    fn check_same(&self, other: &Self, what: &'static str) -> Result<()> {
        self.limbs.check_same(&other.limbs, what)?;
        if self.polys != other.polys {
            return Err(Error::Shape {
                what,
                expected: self.polys,
                found: other.polys,
            });
        }
        Ok(())
    }

    /// Reinterprets the representation (for code that transformed the data itself).
    pub fn retag<S: Representation>(self) -> DevicePoly<S> {
        DevicePoly {
            limbs: self.limbs,
            polys: self.polys,
            data: self.data,
            _repr: PhantomData,
        }
    }

    /// Launches a binary element-wise kernel `self = f(self, b)`.
    fn binary(&mut self, kernel: &'static str, b: &Self, what: &'static str) -> Result<()> {
        self.check_same(b, what)?;
        let gpu = self.limbs.ring().gpu().clone();
        let k = gpu.kernels()?;
        let f = k.get(kernel)?;
        let stream = gpu.stream();
        let ring = self.limbs.ring().clone();
        let (limbs, log_n, total) = (
            u32_of(self.limbs(), "limbs")?,
            self.log_n(),
            self.data.len() as u64,
        );
        let (a_ptr, _ga) = self.data.device_ptr_mut(stream);
        let (b_ptr, _gb) = b.data.device_ptr(stream);
        let (p_ptr, _gp) = ring.params.device_ptr(stream);
        let (m_ptr, _gm) = self.limbs.dev.device_ptr(stream);
        let mut l = stream.launch_builder(f);
        l.arg(&a_ptr)
            .arg(&a_ptr)
            .arg(&b_ptr)
            .arg(&p_ptr)
            .arg(&m_ptr);
        l.arg(&limbs).arg(&log_n).arg(&total);
        // SAFETY: argument types match the kernel signature in kernels/elementwise.cu; the
        // buffers hold `total` words each (checked shapes), indices are bounded by the tables.
        unsafe { l.launch(gpu.words_config(total)) }.map_err(drv(kernel))?;
        Ok(())
    }

    /// `self += b` (mod each prime), any representation.
    pub fn add_assign(&mut self, b: &Self) -> Result<()> {
        self.binary("poly_add", b, "add")
    }

    /// `self -= b`.
    pub fn sub_assign(&mut self, b: &Self) -> Result<()> {
        self.binary("poly_sub", b, "sub")
    }

    /// `self = -self`.
    pub fn neg_assign(&mut self) -> Result<()> {
        let gpu = self.limbs.ring().gpu().clone();
        let k = gpu.kernels()?;
        let f = k.get("poly_neg")?;
        let stream = gpu.stream();
        let ring = self.limbs.ring().clone();
        let (limbs, log_n, total) = (
            u32_of(self.limbs(), "limbs")?,
            self.log_n(),
            self.data.len() as u64,
        );
        let (a_ptr, _ga) = self.data.device_ptr_mut(stream);
        let (p_ptr, _gp) = ring.params.device_ptr(stream);
        let (m_ptr, _gm) = self.limbs.dev.device_ptr(stream);
        let mut l = stream.launch_builder(f);
        l.arg(&a_ptr).arg(&a_ptr).arg(&p_ptr).arg(&m_ptr);
        l.arg(&limbs).arg(&log_n).arg(&total);
        // SAFETY: as in `binary`.
        unsafe { l.launch(gpu.words_config(total)) }.map_err(drv("poly_neg"))?;
        Ok(())
    }

    /// Scalar kernels: `self = (self [- b]) · s_l` with `s` one residue per limb position.
    fn scalar_op(&mut self, b: Option<&Self>, s: &[u64]) -> Result<()> {
        if s.len() != self.limbs() {
            return Err(Error::Shape {
                what: "RNS scalar (one residue per limb)",
                expected: self.limbs(),
                found: s.len(),
            });
        }
        if let Some(b) = b {
            self.check_same(b, "sub_mul_scalar")?;
        }
        let mut w = Vec::with_capacity(s.len());
        let mut ws = Vec::with_capacity(s.len());
        for (l, &x) in s.iter().enumerate() {
            let m = self.limbs.modulus(l).copied().ok_or(Error::Shape {
                what: "limb",
                expected: self.limbs(),
                found: l,
            })?;
            let x = m.reduce(x);
            w.push(x);
            ws.push(m.shoup(x));
        }
        let gpu = self.limbs.ring().gpu().clone();
        let stream = gpu.stream();
        let w_dev = stream.clone_htod(&w).map_err(drv("upload scalar"))?;
        let ws_dev = stream.clone_htod(&ws).map_err(drv("upload scalar"))?;
        let k = gpu.kernels()?;
        let name = if b.is_some() {
            "poly_sub_mul_scalar"
        } else {
            "poly_mul_scalar"
        };
        let f = k.get(name)?;
        let ring = self.limbs.ring().clone();
        let (limbs, log_n, total) = (
            u32_of(self.limbs(), "limbs")?,
            self.log_n(),
            self.data.len() as u64,
        );
        let (a_ptr, _ga) = self.data.device_ptr_mut(stream);
        let b_ptr = b.map(|b| b.data.device_ptr(stream));
        let (w_ptr, _gw) = w_dev.device_ptr(stream);
        let (ws_ptr, _gws) = ws_dev.device_ptr(stream);
        let (p_ptr, _gp) = ring.params.device_ptr(stream);
        let (m_ptr, _gm) = self.limbs.dev.device_ptr(stream);
        let mut l = stream.launch_builder(f);
        l.arg(&a_ptr).arg(&a_ptr);
        if let Some((bp, _)) = &b_ptr {
            l.arg(bp);
        }
        l.arg(&w_ptr).arg(&ws_ptr).arg(&p_ptr).arg(&m_ptr);
        l.arg(&limbs).arg(&log_n).arg(&total);
        // SAFETY: as in `binary`; the scalar arrays hold one word per limb position.
        unsafe { l.launch(gpu.words_config(total)) }.map_err(drv(name))?;
        Ok(())
    }

    /// `self *= s` for an RNS scalar (one residue per limb position, reduced here), by Shoup
    /// multiplication; any representation.
    pub fn mul_rns_scalar_assign(&mut self, s: &[u64]) -> Result<()> {
        self.scalar_op(None, s)
    }

    /// `self = (self - b) · s` per limb: the last step of ModDown (`s = P^{-1}`) and of
    /// rescaling (`s = q_l^{-1}`).
    pub fn sub_mul_rns_scalar_assign(&mut self, b: &Self, s: &[u64]) -> Result<()> {
        self.scalar_op(Some(b), s)
    }
}

impl DevicePoly<Eval> {
    /// `self *= b` pointwise (the negacyclic product in evaluation form), Barrett reduction.
    pub fn mul_assign(&mut self, b: &Self) -> Result<()> {
        self.binary("poly_mul", b, "mul")
    }

    /// `self += a · b` pointwise (multiply-accumulate).
    pub fn mul_add_assign(&mut self, a: &Self, b: &Self) -> Result<()> {
        self.check_same(a, "mul_add")?;
        self.check_same(b, "mul_add")?;
        let gpu = self.limbs.ring().gpu().clone();
        let k = gpu.kernels()?;
        let f = k.get("poly_mul_acc")?;
        let stream = gpu.stream();
        let ring = self.limbs.ring().clone();
        let (limbs, log_n, total) = (
            u32_of(self.limbs(), "limbs")?,
            self.log_n(),
            self.data.len() as u64,
        );
        let (c_ptr, _gc) = self.data.device_ptr_mut(stream);
        let (a_ptr, _ga) = a.data.device_ptr(stream);
        let (b_ptr, _gb) = b.data.device_ptr(stream);
        let (p_ptr, _gp) = ring.params.device_ptr(stream);
        let (m_ptr, _gm) = self.limbs.dev.device_ptr(stream);
        let mut l = stream.launch_builder(f);
        l.arg(&c_ptr)
            .arg(&a_ptr)
            .arg(&b_ptr)
            .arg(&p_ptr)
            .arg(&m_ptr);
        l.arg(&limbs).arg(&log_n).arg(&total);
        // SAFETY: as in `binary`.
        unsafe { l.launch(gpu.words_config(total)) }.map_err(drv("poly_mul_acc"))?;
        Ok(())
    }

    /// `σ_k(self)`: the automorphism `X -> X^k` (`k` odd) as a permutation of evaluation
    /// points (he-core `RingContext::automorphism_eval_permutation`), into a new batch.
    pub fn automorphism(&self, k: u64) -> Result<Self> {
        let mut out = Self::zeros(&self.limbs, self.polys)?;
        self.automorphism_into(k, &mut out)?;
        Ok(out)
    }

    /// `out = σ_k(self)` in evaluation form, into an existing batch of the same shape.
    pub fn automorphism_into(&self, k: u64, out: &mut Self) -> Result<()> {
        self.check_same(out, "automorphism output")?;
        let ring = self.limbs.ring().clone();
        let perm = ring.permutation(k)?;
        let gpu = ring.gpu().clone();
        let kern = gpu.kernels()?;
        let f = kern.get("automorphism_eval")?;
        let stream = gpu.stream();
        let (log_n, total) = (self.log_n(), self.data.len() as u64);
        let (o_ptr, _go) = out.data.device_ptr_mut(stream);
        let (i_ptr, _gi) = self.data.device_ptr(stream);
        let (p_ptr, _gp) = perm.device_ptr(stream);
        let mut l = stream.launch_builder(f);
        l.arg(&o_ptr)
            .arg(&i_ptr)
            .arg(&p_ptr)
            .arg(&log_n)
            .arg(&total);
        // SAFETY: `perm` has N entries < N; both buffers have `total` words (checked shapes).
        unsafe { l.launch(gpu.words_config(total)) }.map_err(drv("automorphism_eval"))?;
        Ok(())
    }

    /// Inverse NTT of every limb of every polynomial, in one or two launches.
    pub fn into_coeff(mut self) -> Result<DevicePoly<Coeff>> {
        self.ntt(false)?;
        Ok(self.retag())
    }
}

impl DevicePoly<Coeff> {
    /// Forward NTT of every limb of every polynomial, in one or two launches (see
    /// `kernels/ntt.cu` for the strategy).
    pub fn into_eval(mut self) -> Result<DevicePoly<Eval>> {
        self.ntt(true)?;
        Ok(self.retag())
    }

    /// `σ_k(self)` in coefficient form: `X^j -> ±X^(jk mod N)`, `k` odd, into a new batch.
    pub fn automorphism(&self, k: u64) -> Result<Self> {
        let mut out = Self::zeros(&self.limbs, self.polys)?;
        self.automorphism_into(k, &mut out)?;
        Ok(out)
    }

    /// `out = σ_k(self)` in coefficient form, into an existing batch of the same shape.
    pub fn automorphism_into(&self, k: u64, out: &mut Self) -> Result<()> {
        self.check_same(out, "automorphism output")?;
        let n = self.degree() as u64;
        let k = k % (2 * n);
        if k.is_multiple_of(2) {
            return Err(Error::Unsupported(format!(
                "Galois element {k} is even; expected an odd residue mod 2N = {}",
                2 * n
            )));
        }
        let ring = self.limbs.ring().clone();
        let gpu = ring.gpu().clone();
        let kern = gpu.kernels()?;
        let f = kern.get("automorphism_coeff")?;
        let stream = gpu.stream();
        let (limbs, log_n, total) = (
            u32_of(self.limbs(), "limbs")?,
            self.log_n(),
            self.data.len() as u64,
        );
        let (o_ptr, _go) = out.data.device_ptr_mut(stream);
        let (i_ptr, _gi) = self.data.device_ptr(stream);
        let (p_ptr, _gp) = ring.params.device_ptr(stream);
        let (m_ptr, _gm) = self.limbs.dev.device_ptr(stream);
        let mut l = stream.launch_builder(f);
        l.arg(&o_ptr).arg(&i_ptr).arg(&k).arg(&p_ptr).arg(&m_ptr);
        l.arg(&limbs).arg(&log_n).arg(&total);
        // SAFETY: as in `binary`; the scatter writes each output word exactly once.
        unsafe { l.launch(gpu.words_config(total)) }.map_err(drv("automorphism_coeff"))?;
        Ok(())
    }
}

impl<R: Representation> DevicePoly<R> {
    /// The batched NTT: `forward` = strided pass (N > 2^12) then shared-memory pass;
    /// inverse = shared-memory pass then strided pass.
    fn ntt(&mut self, forward: bool) -> Result<()> {
        let ring = self.limbs.ring().clone();
        let gpu = ring.gpu().clone();
        let kern = gpu.kernels()?;
        let stream = gpu.stream();
        let log_n = self.log_n();
        let log_c = kernels::ntt_chunk_log(log_n);
        let rows = (self.polys * self.limbs()) as u64;
        let limbs = u32_of(self.limbs(), "limbs")?;
        let (tw, tws) = if forward {
            (&ring.fwd, &ring.fwd_shoup)
        } else {
            (&ring.inv, &ring.inv_shoup)
        };
        let (d_ptr, _gd) = self.data.device_ptr_mut(stream);
        let (w_ptr, _gw) = tw.device_ptr(stream);
        let (ws_ptr, _gws) = tws.device_ptr(stream);
        let (p_ptr, _gp) = ring.params.device_ptr(stream);
        let (m_ptr, _gm) = self.limbs.dev.device_ptr(stream);
        let launches = kernels::ntt_launches(log_n, rows, forward).ok_or_else(|| {
            Error::Unsupported(format!("NTT of {rows} limbs of degree 2^{log_n}"))
        })?;
        for shape in launches {
            let f = kern.get(shape.kernel)?;
            let mut l = stream.launch_builder(f);
            l.arg(&d_ptr)
                .arg(&w_ptr)
                .arg(&ws_ptr)
                .arg(&p_ptr)
                .arg(&m_ptr);
            l.arg(&limbs).arg(&log_n).arg(&log_c).arg(&rows);
            // SAFETY: argument types match kernels/ntt.cu; the data holds rows × N words and
            // the twiddle tables N words per modulus of the ring; limb indices are in range.
            unsafe { l.launch(config(&shape)) }.map_err(drv(shape.kernel))?;
        }
        Ok(())
    }
}
