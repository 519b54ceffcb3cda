//! Fast base conversion and the key-switching inner product on the device.

use super::context::drv;
use super::poly::{config, DevicePoly};
use super::ring::{DeviceRing, LimbSet};
use crate::kernels;
use crate::tables::base_conversion_constants;
use crate::{Error, Result};
use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut, PushKernelArg};
use he_core::math::Modulus;
use he_core::ring::{Coeff, Eval};
use he_core::rlwe::KeyShape;
use std::sync::Arc;

/// Precomputed fast base conversion between two limb sets of one [`DeviceRing`], the device
/// counterpart of he-core's `BaseConverter::convert_approx` (bit-identical results).
pub struct DeviceBaseConverter {
    from: Arc<LimbSet>,
    to: Arc<LimbSet>,
    a_hat_inv: CudaSlice<u64>,
    a_hat_inv_shoup: CudaSlice<u64>,
    a_hat_mod_b: CudaSlice<u64>,
}

impl std::fmt::Debug for DeviceBaseConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceBaseConverter")
            .field("from", &self.from.indices())
            .field("to", &self.to.indices())
            .finish()
    }
}

impl DeviceBaseConverter {
    /// Precomputes the conversion from the moduli of `from` to those of `to` (disjoint).
    pub fn new(from: &Arc<LimbSet>, to: &Arc<LimbSet>) -> Result<Self> {
        if !Arc::ptr_eq(from.ring(), to.ring()) {
            return Err(Error::Moduli {
                what: "base conversion",
                detail: "the two bases live on different device rings".into(),
            });
        }
        let moduli = |s: &LimbSet| -> Vec<Modulus> {
            (0..s.len()).filter_map(|i| s.modulus(i).copied()).collect()
        };
        let (inv, inv_s, hat) = base_conversion_constants(&moduli(from), &moduli(to))?;
        let stream = from.ring().gpu().stream();
        let up = |v: &[u64]| {
            stream
                .clone_htod(v)
                .map_err(drv("upload conversion constants"))
        };
        Ok(Self {
            from: from.clone(),
            to: to.clone(),
            a_hat_inv: up(&inv)?,
            a_hat_inv_shoup: up(&inv_s)?,
            a_hat_mod_b: up(&hat)?,
        })
    }

    /// Source limbs.
    pub fn from_limbs(&self) -> &Arc<LimbSet> {
        &self.from
    }

    /// Target limbs.
    pub fn to_limbs(&self) -> &Arc<LimbSet> {
        &self.to
    }

    /// `output = Conv_{A->B}(input)` for every polynomial of the batch (coefficient form):
    /// `x + u·A mod b_j` with `0 <= u < |A|`. `output` must have the target limbs and as many
    /// polynomials as `input`.
    pub fn convert_approx(
        &self,
        input: &DevicePoly<Coeff>,
        output: &mut DevicePoly<Coeff>,
    ) -> Result<()> {
        input
            .limb_set()
            .check_same(&self.from, "base conversion input")?;
        output
            .limb_set()
            .check_same(&self.to, "base conversion output")?;
        if input.polys() != output.polys() {
            return Err(Error::Shape {
                what: "base conversion batch",
                expected: input.polys(),
                found: output.polys(),
            });
        }
        let ring: Arc<DeviceRing> = self.from.ring().clone();
        let gpu = ring.gpu().clone();
        let kern = gpu.kernels()?;
        let f = kern.get("base_convert")?;
        let stream = gpu.stream();
        let n = ring.degree();
        let (ka, kb) = (self.from.len() as u32, self.to.len() as u32);
        let log_n = n.trailing_zeros();
        let shape =
            kernels::base_convert_launch(n, input.polys(), self.to.len()).ok_or_else(|| {
                Error::Unsupported(format!(
                    "{} polynomials x {} output limbs in one base conversion (grid y > 65535)",
                    input.polys(),
                    self.to.len()
                ))
            })?;
        let (o_ptr, _go) = output.data.device_ptr_mut(stream);
        let (i_ptr, _gi) = input.data.device_ptr(stream);
        let (p_ptr, _gp) = ring.params.device_ptr(stream);
        let (fm, _gf) = self.from.dev.device_ptr(stream);
        let (tm, _gt) = self.to.dev.device_ptr(stream);
        let (c1, _g1) = self.a_hat_inv.device_ptr(stream);
        let (c2, _g2) = self.a_hat_inv_shoup.device_ptr(stream);
        let (c3, _g3) = self.a_hat_mod_b.device_ptr(stream);
        let mut l = stream.launch_builder(f);
        l.arg(&o_ptr).arg(&i_ptr).arg(&p_ptr).arg(&fm).arg(&tm);
        l.arg(&ka).arg(&kb).arg(&log_n).arg(&c1).arg(&c2).arg(&c3);
        // SAFETY: argument types match kernels/rns.cu; shapes checked above.
        unsafe { l.launch(config(&shape)) }.map_err(drv("base_convert"))?;
        Ok(())
    }
}

/// A key-switching key resident on the device, in he-core's layout (`rlwe::keys`): for each
/// digit `j`, for each component `c ∈ {b, a}`, `L + 1` limbs over `Q` then `k` over `P`.
pub struct DeviceKeySwitchKey {
    shape: KeyShape,
    data: CudaSlice<u64>,
}

impl std::fmt::Debug for DeviceKeySwitchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKeySwitchKey")
            .field("shape", &self.shape)
            .finish()
    }
}

impl DeviceKeySwitchKey {
    /// Uploads the words of a key of shape `shape` (e.g. `KeySwitchKey::words()`).
    pub fn upload(ring: &DeviceRing, shape: KeyShape, words: &[u64]) -> Result<Self> {
        if words.len() != shape.words() {
            return Err(Error::Shape {
                what: "key-switching key words",
                expected: shape.words(),
                found: words.len(),
            });
        }
        if shape.n != ring.degree() {
            return Err(Error::Shape {
                what: "key degree",
                expected: ring.degree(),
                found: shape.n,
            });
        }
        let data = ring
            .gpu()
            .stream()
            .clone_htod(words)
            .map_err(drv("upload key"))?;
        Ok(Self { shape, data })
    }

    /// Uploads an he-core key.
    pub fn from_key(ring: &DeviceRing, key: &he_core::rlwe::KeySwitchKey) -> Result<Self> {
        Self::upload(ring, key.shape(), key.words())
    }

    /// The shape.
    pub fn shape(&self) -> KeyShape {
        self.shape
    }
}

/// The key-switching inner product of hybrid key switching (Han–Ki 2020):
/// `acc_c += Σ_j digits_j ⊙ key_{j,c}` for `c ∈ {0, 1}` over the limbs `Q_l ∪ P`.
///
/// - `digits`: the ModUp-extended digits, one polynomial per digit (`β <= dnum` of them), in
///   evaluation form, with limbs `q_0 .. q_l, p_0 .. p_{k-1}`;
/// - `acc`: two polynomials with the same limbs (components 0 and 1), accumulated into;
/// - `key`: the device key; its first `l + 1` Q limbs and its `k` P limbs of each part are used.
///
/// The limb set must list the moduli in that order (`l + 1` Q primes, then the key's `k`
/// P primes); the key itself carries no moduli to check against.
pub fn key_switch_inner_product(
    acc: &mut DevicePoly<Eval>,
    digits: &DevicePoly<Eval>,
    key: &DeviceKeySwitchKey,
) -> Result<()> {
    acc.limb_set()
        .check_same(digits.limb_set(), "key-switching inner product")?;
    let s = key.shape;
    if acc.polys() != 2 {
        return Err(Error::Shape {
            what: "accumulator polynomials",
            expected: 2,
            found: acc.polys(),
        });
    }
    if digits.polys() > s.dnum {
        return Err(Error::Shape {
            what: "digits (at most the key's dnum)",
            expected: s.dnum,
            found: digits.polys(),
        });
    }
    let rows = acc.limbs();
    if rows <= s.p_limbs || rows - s.p_limbs > s.q_limbs || s.n != acc.degree() {
        return Err(Error::Shape {
            what: "limbs of the extended polynomial (Q_l + P)",
            expected: s.q_limbs + s.p_limbs,
            found: rows,
        });
    }
    let q_rows = (rows - s.p_limbs) as u32;
    let ring = acc.limb_set().ring().clone();
    let gpu = ring.gpu().clone();
    let kern = gpu.kernels()?;
    let f = kern.get("ks_inner_product")?;
    let stream = gpu.stream();
    let (rows_u, key_q, dnum, log_n) = (
        rows as u32,
        s.q_limbs as u32,
        digits.polys() as u32,
        acc.degree().trailing_zeros(),
    );
    let cfg = gpu.words_config((rows * acc.degree()) as u64);
    let limb_dev = acc.limb_set().clone();
    let (a_ptr, _ga) = acc.data.device_ptr_mut(stream);
    let (d_ptr, _gd) = digits.data.device_ptr(stream);
    let (k_ptr, _gk) = key.data.device_ptr(stream);
    let (p_ptr, _gp) = ring.params.device_ptr(stream);
    let (m_ptr, _gm) = limb_dev.dev.device_ptr(stream);
    let mut l = stream.launch_builder(f);
    l.arg(&a_ptr)
        .arg(&d_ptr)
        .arg(&k_ptr)
        .arg(&p_ptr)
        .arg(&m_ptr);
    l.arg(&rows_u)
        .arg(&q_rows)
        .arg(&key_q)
        .arg(&dnum)
        .arg(&log_n);
    // SAFETY: argument types match kernels/rns.cu; shapes checked above.
    unsafe { l.launch(cfg) }.map_err(drv("ks_inner_product"))?;
    Ok(())
}
