//! The CKKS encoder: complex vectors of up to `N/2` slots <-> integer polynomials, through the
//! canonical embedding (Cheon, Kim, Kim, Song, ASIACRYPT 2017, §3.2–3.3).
//!
//! Slot `j` is the evaluation at `ζ^(5^j)`, `ζ = e^(iπ/N)`, so that the automorphism
//! `X -> X^(5^r)` rotates the slots left by `r` and `X -> X^(-1)` conjugates them. With
//! `u_k = m_k + i·m_(k+N/2)` the evaluation is a length-`N/2` transform over the rotation group,
//! computed by the "special FFT" of HEAAN (Cheon et al. 2018, `fftSpecial` / `fftSpecialInv`),
//! `O(N log N)` in `f64`.
//!
//! Decoding composes the residues of each coefficient exactly: below `Q_l = 2^120` through two
//! auxiliary 61-bit primes (fast base conversion with floating-point correction, HPS 2019) into
//! an `i128`, above in multi-word arithmetic, so no coefficient is ever wrapped by the decoder.
//! A coefficient of magnitude `≥ Q_l/4` is refused with [`Error::OutOfRange`] (the value has
//! wrapped modulo `Q_l`), and encoding refuses values whose coefficients would reach that bound.

use super::ciphertext::Plaintext;
use super::decode::WideComposer;
use crate::math::primes::ntt_primes;
use crate::math::{BaseConverter, Modulus, RnsBasis};
use crate::ring::Coeff;
use crate::rlwe::Parameters;
use crate::{Error, Result};
use num_complex::Complex64;
use std::sync::Arc;

/// Encoder for one parameter set (precomputed roots, rotation group and decoding bases).
#[derive(Debug)]
pub struct Encoder {
    params: Arc<Parameters>,
    /// `5^j mod 2N`, `j < N/2`.
    rot_group: Vec<u64>,
    /// `e^(2πi k / 2N)`, `k = 0..=2N`.
    ksi: Vec<Complex64>,
    /// Per level: exact conversion from `Q_l` to the two auxiliary primes.
    to_aux: Vec<BaseConverter>,
    aux: [Modulus; 2],
    /// Per level: exact multi-word composition where `Q_l ≥ 2^120` (the auxiliary primes'
    /// `i128` path would wrap there).
    wide: Vec<Option<WideComposer>>,
}

/// Below this `log2(Q_l)` the auxiliary-prime composition into `i128` is exact.
const AUX_EXACT_LOG2_Q: f64 = 120.0;

impl Encoder {
    /// Precomputes the tables.
    pub fn new(params: &Arc<Parameters>) -> Result<Self> {
        let n = params.degree();
        let m = 2 * n;
        let slots = n / 2;
        let mut rot_group = Vec::with_capacity(slots);
        let mut g = 1u64;
        for _ in 0..slots {
            rot_group.push(g);
            g = g * 5 % m as u64;
        }
        let ksi = (0..=m)
            .map(|k| {
                let a = 2.0 * std::f64::consts::PI * k as f64 / m as f64;
                Complex64::new(a.cos(), a.sin())
            })
            .collect();
        let mut exclude: Vec<u64> = params.q().to_vec();
        exclude.extend_from_slice(params.p());
        let aux_vals = ntt_primes(61, 2, n, &exclude)?;
        let aux = [Modulus::new(aux_vals[0])?, Modulus::new(aux_vals[1])?];
        let to_aux = (1..=params.q().len())
            .map(|l| BaseConverter::new(&RnsBasis::new(&params.q()[..l])?, &aux))
            .collect::<Result<Vec<_>>>()?;
        let moduli = params.ring_q().moduli();
        let wide = (0..moduli.len())
            .map(|level| {
                (params.log_q_at(level) >= AUX_EXACT_LOG2_Q)
                    .then(|| WideComposer::new(moduli.get(..=level).unwrap_or(moduli)))
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            params: params.clone(),
            rot_group,
            ksi,
            to_aux,
            aux,
            wide,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<Parameters> {
        &self.params
    }

    /// Number of slots, `N/2`.
    pub fn slots(&self) -> usize {
        self.params.slots()
    }

    fn fft_special(&self, vals: &mut [Complex64]) {
        let size = vals.len();
        let m = 2 * self.params.degree();
        bit_reverse_permute(vals);
        let mut len = 2;
        while len <= size {
            let (lenh, lenq) = (len / 2, len * 4);
            for i in (0..size).step_by(len) {
                for j in 0..lenh {
                    let idx = (self.rot_group[j] as usize % lenq) * (m / lenq);
                    let u = vals[i + j];
                    let v = vals[i + j + lenh] * self.ksi[idx];
                    vals[i + j] = u + v;
                    vals[i + j + lenh] = u - v;
                }
            }
            len *= 2;
        }
    }

    fn fft_special_inv(&self, vals: &mut [Complex64]) {
        let size = vals.len();
        let m = 2 * self.params.degree();
        let mut len = size;
        while len >= 2 {
            let (lenh, lenq) = (len / 2, len * 4);
            for i in (0..size).step_by(len) {
                for j in 0..lenh {
                    let idx = (lenq - (self.rot_group[j] as usize % lenq)) * (m / lenq);
                    let u = vals[i + j] + vals[i + j + lenh];
                    let v = (vals[i + j] - vals[i + j + lenh]) * self.ksi[idx];
                    vals[i + j] = u;
                    vals[i + j + lenh] = v;
                }
            }
            len /= 2;
        }
        bit_reverse_permute(vals);
        let inv = 1.0 / size as f64;
        vals.iter_mut().for_each(|v| *v *= inv);
    }

    fn check_level_scale(&self, level: usize, scale: f64) -> Result<()> {
        if level > self.params.max_level() {
            return Err(Error::OutOfRange {
                what: "level",
                found: level.to_string(),
                allowed: format!("0..={}", self.params.max_level()),
            });
        }
        if !(scale.is_finite() && scale >= 1.0) {
            return Err(Error::OutOfRange {
                what: "scale",
                found: scale.to_string(),
                allowed: "finite, >= 1".into(),
            });
        }
        Ok(())
    }

    /// The integer coefficients `round(scale · IDFT(values))` of the encoding of up to `N/2`
    /// complex values (missing slots are 0), checked to be below `2^126` in magnitude.
    pub(crate) fn encode_coefficients(
        &self,
        values: &[Complex64],
        scale: f64,
    ) -> Result<Vec<i128>> {
        let slots = self.slots();
        if values.len() > slots {
            return Err(Error::OutOfRange {
                what: "number of values",
                found: values.len().to_string(),
                allowed: format!("<= {slots} slots"),
            });
        }
        if let Some(bad) = values
            .iter()
            .find(|v| !(v.re.is_finite() && v.im.is_finite()))
        {
            return Err(Error::OutOfRange {
                what: "value",
                found: bad.to_string(),
                allowed: "finite".into(),
            });
        }
        let mut u = vec![Complex64::new(0.0, 0.0); slots];
        u[..values.len()].copy_from_slice(values);
        self.fft_special_inv(&mut u);
        let n = self.params.degree();
        let mut coeffs = vec![0i128; n];
        let limit = 2f64.powi(126);
        for (k, v) in u.iter().enumerate() {
            let (re, im) = ((v.re * scale).round(), (v.im * scale).round());
            if re.abs() >= limit || im.abs() >= limit {
                return Err(Error::OutOfRange {
                    what: "value times scale",
                    found: format!("{:e}", re.abs().max(im.abs())),
                    allowed: "< 2^126".into(),
                });
            }
            coeffs[k] = re as i128;
            coeffs[k + slots] = im as i128;
        }
        Ok(coeffs)
    }

    /// `Q_level` as an integer, `None` where it does not fit a `u128`.
    fn q_product(&self, level: usize) -> Option<u128> {
        self.params
            .q()
            .iter()
            .take(level + 1)
            .try_fold(1u128, |a, q| a.checked_mul(*q as u128))
    }

    /// Refuses coefficients that could not be decoded back at `level`: magnitude `≥ Q_l/4`
    /// (the decoder's bound, see [`Encoder::decode_complex`]).
    fn check_coefficients_fit(&self, coeffs: &[i128], level: usize) -> Result<()> {
        let log2_q = self.params.log_q_at(level);
        let max = coeffs.iter().map(|c| c.unsigned_abs()).max().unwrap_or(0);
        // Exact where Q_l fits a u128; above, every i128 (< 2^126 by construction) fits.
        let fits = self.q_product(level).is_none_or(|q_l| max < q_l / 4);
        if fits {
            Ok(())
        } else {
            Err(Error::OutOfRange {
                what: "value times scale (largest encoded coefficient)",
                found: format!("2^{:.1}", (max as f64).log2()),
                allowed: format!(
                    "< Q_l/4 = 2^{:.1} at level {level}, so that it decodes back; use a smaller \
                     scale or value, or a higher level",
                    log2_q - 2.0
                ),
            })
        }
    }

    /// Encodes up to `N/2` complex values at `level` with scale `scale` (missing slots are 0).
    pub fn encode_complex(
        &self,
        values: &[Complex64],
        level: usize,
        scale: f64,
    ) -> Result<Plaintext> {
        self.check_level_scale(level, scale)?;
        let coeffs = self.encode_coefficients(values, scale)?;
        self.check_coefficients_fit(&coeffs, level)?;
        let rq = self.params.ring_q();
        let poly = rq.to_eval(rq.from_i128(&coeffs, level + 1)?)?;
        Ok(Plaintext::new(poly, scale, self.params.hash()))
    }

    /// Encodes over `Q_level ∪ P` (evaluation form): the plaintexts of double-hoisted linear
    /// transforms, which multiply ciphertexts still in the extended basis of key switching.
    pub fn encode_complex_qp(
        &self,
        values: &[Complex64],
        level: usize,
        scale: f64,
    ) -> Result<crate::ring::keyswitch::PolyQP> {
        self.check_level_scale(level, scale)?;
        let coeffs = self.encode_coefficients(values, scale)?;
        self.check_coefficients_fit(&coeffs, level)?;
        let (rq, rp) = (self.params.ring_q(), self.params.ring_p());
        let q = rq.to_eval(rq.from_i128(&coeffs, level + 1)?)?;
        let p = rp.to_eval(rp.from_i128(&coeffs, rp.max_limbs())?)?;
        Ok(crate::ring::keyswitch::PolyQP { q, p })
    }

    /// Encodes real values (imaginary parts zero).
    pub fn encode(&self, values: &[f64], level: usize, scale: f64) -> Result<Plaintext> {
        let c: Vec<Complex64> = values.iter().map(|v| Complex64::new(*v, 0.0)).collect();
        self.encode_complex(&c, level, scale)
    }

    /// Decodes all `N/2` slots, exactly composing each coefficient at any level.
    ///
    /// Refused with [`Error::OutOfRange`]: a coefficient of magnitude `≥ Q_l/4` (the value has
    /// wrapped modulo `Q_l`, e.g. a product whose scale outgrew the modulus), or a value that
    /// does not fit an `f64` at this scale.
    pub fn decode_complex(&self, pt: &Plaintext) -> Result<Vec<Complex64>> {
        self.params.check_hash(pt.params_hash())?;
        let rq = self.params.ring_q();
        let coeff = rq.to_coeff(pt.poly().clone())?;
        let inv = 1.0 / pt.scale();
        let values = self.centred_scaled(&coeff, inv)?;
        let slots = self.slots();
        let mut u: Vec<Complex64> = (0..slots)
            .map(|k| Complex64::new(values[k], values[k + slots]))
            .collect();
        self.fft_special(&mut u);
        Ok(u)
    }

    /// Decodes the real parts of all slots.
    pub fn decode(&self, pt: &Plaintext) -> Result<Vec<f64>> {
        Ok(self.decode_complex(pt)?.into_iter().map(|c| c.re).collect())
    }

    /// Centred coefficients times `inv_scale`, exactly composed from their residues: through
    /// the auxiliary primes into `i128` below `Q_l = 2^120`, in multi-word arithmetic above
    /// ([`WideComposer`]). A coefficient of magnitude `≥ Q_l/4` is refused: the value has
    /// wrapped modulo `Q_l`.
    fn centred_scaled(&self, p: &crate::ring::Poly<Coeff>, inv_scale: f64) -> Result<Vec<f64>> {
        let n = self.params.degree();
        let limbs = p.limbs();
        if let Some(Some(wide)) = self.wide.get(limbs - 1) {
            return wide.compose_scaled(p.as_slice(), n, inv_scale);
        }
        let moduli = self.params.ring_q().moduli();
        // Below 2^120 here (the wide composer takes the levels above).
        let q_l = self.q_product(limbs - 1).unwrap_or(u128::MAX);
        let quarter = (q_l / 4) as i128;
        let log2_q = self.params.log_q_at(limbs - 1);
        let check = |x: i128| -> Result<f64> {
            if x.unsigned_abs() >= quarter.unsigned_abs() {
                return Err(super::decode::wrapped(
                    (x.unsigned_abs() as f64).log2(),
                    log2_q,
                ));
            }
            Ok(x as f64 * inv_scale)
        };
        if limbs == 1 {
            let m = moduli[0];
            return p
                .as_slice()
                .iter()
                .map(|x| check(m.center(*x) as i128))
                .collect();
        }
        let conv = &self.to_aux[limbs - 1];
        let mut out = vec![0u64; 2 * n];
        conv.convert_exact(p.as_slice(), &mut out, n)?;
        let [a, b] = self.aux;
        // CRT of (r_a, r_b) into (-ab/2, ab/2]: x = r_a + a·[(r_b - r_a)·a^{-1}]_b.
        let a_inv_b = b.inv(b.reduce(a.value()))?;
        let ab = a.value() as i128 * b.value() as i128;
        (0..n)
            .map(|c| {
                let (ra, rb) = (out[c], out[n + c]);
                let t = b.mul(b.sub(rb, b.reduce(ra)), a_inv_b);
                let mut x = ra as i128 + a.value() as i128 * t as i128;
                if x > ab / 2 {
                    x -= ab;
                }
                check(x)
            })
            .collect()
    }
}

fn bit_reverse_permute(v: &mut [Complex64]) {
    let n = v.len();
    let bits = n.trailing_zeros();
    for i in 0..n {
        let j = crate::math::ntt::bit_reverse(i, bits);
        if i < j {
            v.swap(i, j);
        }
    }
}
