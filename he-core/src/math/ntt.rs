//! The negacyclic number-theoretic transform over `Z_q[X]/(X^N + 1)`.
//!
//! **Convention** (shared by every backend, CPU or GPU): for a primitive `2N`-th root of unity
//! `ψ` mod `q`, the forward transform of `a(X) = Σ a_j X^j` is the vector of evaluations
//!
//! ```text
//! â[i] = a(ψ^(2·brev(i) + 1)),  i = 0 .. N-1   (bit-reversed order of the odd powers of ψ)
//! ```
//!
//! and the inverse maps `â` back to the coefficients, scaling by `N^{-1}` included. Pointwise
//! products of transforms are then transforms of negacyclic products. This is the ordering of
//! the Cooley–Tukey / Gentleman–Sande pair of Longa & Naehrig (CANS 2016, Alg. 1 and 2) and of
//! the fast backends: `tfhe-ntt` (AVX-512 IFMA for `q < 2^51`, AVX-512 or AVX2 for `q < 2^62`)
//! and, on AVX2+FMA CPUs without IFMA, [`F64Ntt`] in double precision for `q < 2^50`;
//! [`plan`] picks per prime.
//!
//! Because the evaluation points are the odd powers of `ψ`, an automorphism `X -> X^k` acts on
//! transforms as a permutation of indices that does not depend on `ψ` (see [`crate::ring`]).

use super::modulus::Modulus;
use super::ntt_f64::F64Ntt;
use super::primes::{check_ntt_prime, primitive_root_of_unity};
use crate::{Error, Result};
use std::fmt::Debug;
use std::sync::Arc;

/// A negacyclic NTT for one modulus and one degree, following the module's convention.
///
/// Implementations must be deterministic and thread-safe. The GPU crate provides batched
/// transforms over many limbs through the ring layer; this trait is the per-limb contract that
/// every backend is tested against.
pub trait NttBackend: Send + Sync + Debug {
    /// A short name for reports ("tfhe-ntt", "reference", ...).
    fn name(&self) -> &'static str;
    /// Ring degree `N`.
    fn degree(&self) -> usize;
    /// The modulus.
    fn modulus(&self) -> u64;
    /// The primitive `2N`-th root `ψ` defining the evaluation points.
    fn psi(&self) -> u64;
    /// In-place forward transform of `a` (length `N`, residues `< q`), without length check.
    fn forward_unchecked(&self, a: &mut [u64]);
    /// In-place inverse transform of `a` (scaling by `N^{-1}` included), without length check.
    fn inverse_unchecked(&self, a: &mut [u64]);

    /// `acc[i] = (acc[i] + a[i] * b[i]) mod q` for residues `< q`: the pointwise
    /// multiply-accumulate of evaluation-form polynomials. The default is scalar Barrett;
    /// backends override it with vector code.
    fn mul_accumulate(&self, acc: &mut [u64], a: &[u64], b: &[u64]) {
        if let Ok(m) = Modulus::new(self.modulus()) {
            for ((c, x), y) in acc.iter_mut().zip(a).zip(b) {
                *c = m.add(*c, m.mul(*x, *y));
            }
        }
    }

    /// Fallible forward transform, the form the ring layer calls: a backend that can fail (a
    /// GPU) overrides it to return its error; the default runs the infallible CPU transform.
    fn try_forward(&self, a: &mut [u64]) -> Result<()> {
        self.forward_unchecked(a);
        Ok(())
    }

    /// Fallible inverse transform (see [`try_forward`](Self::try_forward)).
    fn try_inverse(&self, a: &mut [u64]) -> Result<()> {
        self.inverse_unchecked(a);
        Ok(())
    }

    /// Fallible multiply-accumulate (see [`try_forward`](Self::try_forward)).
    fn try_mul_accumulate(&self, acc: &mut [u64], a: &[u64], b: &[u64]) -> Result<()> {
        self.mul_accumulate(acc, a, b);
        Ok(())
    }

    /// Forward transform; errors when `a.len() != N`.
    fn forward(&self, a: &mut [u64]) -> Result<()> {
        check_len(a.len(), self.degree())?;
        self.try_forward(a)
    }
    /// Inverse transform; errors when `a.len() != N`.
    fn inverse(&self, a: &mut [u64]) -> Result<()> {
        check_len(a.len(), self.degree())?;
        self.try_inverse(a)
    }
}

fn check_len(found: usize, expected: usize) -> Result<()> {
    if found != expected {
        return Err(Error::LengthMismatch {
            what: "NTT input",
            expected,
            found,
        });
    }
    Ok(())
}

/// Shared handle to an NTT backend, as held by ring contexts.
pub type NttPlan = Arc<dyn NttBackend>;

/// Creates the fastest available plan for `(n, q)`:
///
/// - on CPUs without AVX-512 IFMA, primes `q < 2^50` get [`F64Ntt`] (double precision, AVX2 +
///   FMA; ~0.4 ns per butterfly where `tfhe-ntt`'s 64-bit AVX2 path takes ~0.95), with
///   `tfhe-ntt`'s `ψ` so transforms are bit-identical, and `tfhe-ntt`'s vectorised pointwise
///   multiply-accumulate ([`F64TfheNtt`]);
/// - otherwise `tfhe-ntt` when it supports the pair (`n >= 16`; its IFMA path for `q < 2^50`
///   where the CPU has IFMA);
/// - else the scalar reference with the same convention.
///
/// Setting the environment variable `HOME_NTT_BACKEND=tfhe-ntt` skips the double-precision
/// transform (for comparisons).
pub fn plan(n: usize, q: u64) -> Result<NttPlan> {
    match TfheNtt::new(n, q) {
        Ok(p) => {
            let forced = std::env::var("HOME_NTT_BACKEND").is_ok_and(|v| v == "tfhe-ntt");
            if !forced && !p.plan.use_ifma() && F64Ntt::is_supported() {
                if let Ok(transform) = F64Ntt::new(n, q, p.psi) {
                    return Ok(Arc::new(F64TfheNtt {
                        transform,
                        pointwise: p,
                    }));
                }
            }
            Ok(Arc::new(p))
        }
        Err(_) => Ok(Arc::new(ReferenceNtt::new(n, q, None)?)),
    }
}

/// [`F64Ntt`]'s transforms with [`TfheNtt`]'s vectorised multiply-accumulate, for one
/// `(n, q)` and the same `ψ`: what [`plan`] returns for `q < 2^50` on AVX2 CPUs without IFMA.
#[derive(Debug)]
pub struct F64TfheNtt {
    transform: F64Ntt,
    pointwise: TfheNtt,
}

impl NttBackend for F64TfheNtt {
    fn name(&self) -> &'static str {
        self.transform.name()
    }
    fn degree(&self) -> usize {
        self.transform.degree()
    }
    fn modulus(&self) -> u64 {
        self.transform.modulus()
    }
    fn psi(&self) -> u64 {
        self.transform.psi()
    }
    #[inline]
    fn forward_unchecked(&self, a: &mut [u64]) {
        self.transform.forward_unchecked(a);
    }
    #[inline]
    fn inverse_unchecked(&self, a: &mut [u64]) {
        self.transform.inverse_unchecked(a);
    }
    #[inline]
    fn mul_accumulate(&self, acc: &mut [u64], a: &[u64], b: &[u64]) {
        self.pointwise.mul_accumulate(acc, a, b);
    }
}

/// Fast backend: `tfhe_ntt::prime64::Plan` (Zama; successor of `concrete-ntt`), whose forward
/// transform matches the module convention exactly; the inverse adds its `normalize` step.
pub struct TfheNtt {
    plan: tfhe_ntt::prime64::Plan,
    psi: u64,
}

impl Debug for TfheNtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TfheNtt")
            .field("n", &self.plan.ntt_size())
            .field("q", &self.plan.modulus())
            .field("ifma", &self.plan.use_ifma())
            .finish()
    }
}

impl TfheNtt {
    /// Plans the transform; errors unless `q` is an NTT prime for `n` and `n >= 16`.
    pub fn new(n: usize, q: u64) -> Result<Self> {
        check_degree(n)?;
        check_ntt_prime(q, n)?;
        let plan = tfhe_ntt::prime64::Plan::try_new(n, q).ok_or_else(|| Error::InvalidModulus {
            modulus: q,
            reason: format!("tfhe-ntt has no plan for N = {n}"),
        })?;
        // The transform of X is (ψ^(2 brev(i) + 1))_i, whose first entry is ψ itself.
        let mut x = vec![0u64; n];
        x[1] = 1;
        plan.fwd(&mut x);
        Ok(Self { plan, psi: x[0] })
    }

    /// The wrapped `tfhe-ntt` plan (for benchmarks that call the crate directly).
    pub fn raw(&self) -> &tfhe_ntt::prime64::Plan {
        &self.plan
    }
}

impl NttBackend for TfheNtt {
    fn name(&self) -> &'static str {
        "tfhe-ntt"
    }
    fn degree(&self) -> usize {
        self.plan.ntt_size()
    }
    fn modulus(&self) -> u64 {
        self.plan.modulus()
    }
    fn psi(&self) -> u64 {
        self.psi
    }
    #[inline]
    fn forward_unchecked(&self, a: &mut [u64]) {
        self.plan.fwd(a);
    }
    #[inline]
    fn inverse_unchecked(&self, a: &mut [u64]) {
        self.plan.inv(a);
        self.plan.normalize(a);
    }
    #[inline]
    fn mul_accumulate(&self, acc: &mut [u64], a: &[u64], b: &[u64]) {
        self.plan.mul_accumulate(acc, a, b);
    }
}

fn check_degree(n: usize) -> Result<()> {
    if !n.is_power_of_two() || !(2..=1 << 17).contains(&n) {
        return Err(Error::InvalidDegree {
            found: n,
            min: 2,
            max: 1 << 17,
        });
    }
    Ok(())
}

/// Scalar reference: iterative Cooley–Tukey forward / Gentleman–Sande inverse with Shoup
/// twiddles (Longa–Naehrig 2016, Alg. 1–2). Slow and simple; the tests check every other
/// backend against it, and it serves degrees the fast backend does not.
#[derive(Debug, Clone)]
pub struct ReferenceNtt {
    n: usize,
    m: Modulus,
    psi: u64,
    /// ψ^brev(i), with Shoup constants.
    fwd: Vec<(u64, u64)>,
    /// ψ^-brev(i), with Shoup constants.
    inv: Vec<(u64, u64)>,
    n_inv: (u64, u64),
}

impl ReferenceNtt {
    /// Plans a reference transform; `psi` fixes the root (pass the fast backend's to compare
    /// bit for bit), `None` picks the deterministic smallest-generator root.
    pub fn new(n: usize, q: u64, psi: Option<u64>) -> Result<Self> {
        check_degree(n)?;
        let m = check_ntt_prime(q, n)?;
        let psi = match psi {
            Some(p) => {
                if m.pow(p, n as u64) != q - 1 {
                    return Err(Error::InvalidModulus {
                        modulus: q,
                        reason: format!("{p} is not a primitive 2N-th root of unity"),
                    });
                }
                p
            }
            None => primitive_root_of_unity(q, 2 * n as u64)?,
        };
        let psi_inv = m.inv(psi)?;
        let bits = n.trailing_zeros();
        let mut fwd = Vec::with_capacity(n);
        let mut inv = Vec::with_capacity(n);
        for i in 0..n {
            let e = bit_reverse(i, bits) as u64;
            let w = m.pow(psi, e);
            let wi = m.pow(psi_inv, e);
            fwd.push((w, m.shoup(w)));
            inv.push((wi, m.shoup(wi)));
        }
        let ni = m.inv(n as u64)?;
        Ok(Self {
            n,
            m,
            psi,
            fwd,
            inv,
            n_inv: (ni, m.shoup(ni)),
        })
    }
}

/// Reverses the low `bits` bits of `i`.
#[inline]
pub fn bit_reverse(i: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        i.reverse_bits() >> (usize::BITS - bits)
    }
}

impl NttBackend for ReferenceNtt {
    fn name(&self) -> &'static str {
        "reference"
    }
    fn degree(&self) -> usize {
        self.n
    }
    fn modulus(&self) -> u64 {
        self.m.value()
    }
    fn psi(&self) -> u64 {
        self.psi
    }
    fn forward_unchecked(&self, a: &mut [u64]) {
        let m = &self.m;
        let mut t = self.n;
        let mut groups = 1;
        while groups < self.n {
            t >>= 1;
            for i in 0..groups {
                let (w, ws) = self.fwd[groups + i];
                let j1 = 2 * i * t;
                for j in j1..j1 + t {
                    let u = a[j];
                    let v = m.mul_shoup(a[j + t], w, ws);
                    a[j] = m.add(u, v);
                    a[j + t] = m.sub(u, v);
                }
            }
            groups <<= 1;
        }
    }
    fn inverse_unchecked(&self, a: &mut [u64]) {
        let m = &self.m;
        let mut t = 1;
        let mut groups = self.n;
        while groups > 1 {
            let h = groups >> 1;
            for i in 0..h {
                let (w, ws) = self.inv[h + i];
                let j1 = 2 * i * t;
                for j in j1..j1 + t {
                    let u = a[j];
                    let v = a[j + t];
                    a[j] = m.add(u, v);
                    a[j + t] = m.mul_shoup(m.sub(u, v), w, ws);
                }
            }
            t <<= 1;
            groups = h;
        }
        for x in a.iter_mut() {
            *x = m.mul_shoup(*x, self.n_inv.0, self.n_inv.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::primes::ntt_primes;
    use proptest::prelude::*;

    /// Schoolbook negacyclic product mod q, the naive reference.
    pub(crate) fn schoolbook(a: &[u64], b: &[u64], q: u64) -> Vec<u64> {
        let n = a.len();
        let mut c = vec![0u128; n];
        let q128 = q as u128;
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                let p = *x as u128 * *y as u128 % q128;
                let k = i + j;
                if k < n {
                    c[k] = (c[k] + p) % q128;
                } else {
                    c[k - n] = (c[k - n] + q128 - p) % q128;
                }
            }
        }
        c.into_iter().map(|x| x as u64).collect()
    }

    fn product_via(plan: &dyn NttBackend, a: &[u64], b: &[u64]) -> Vec<u64> {
        let m = Modulus::new(plan.modulus()).unwrap();
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        plan.forward(&mut a).unwrap();
        plan.forward(&mut b).unwrap();
        let mut c: Vec<u64> = a.iter().zip(&b).map(|(x, y)| m.mul(*x, *y)).collect();
        plan.inverse(&mut c).unwrap();
        c
    }

    fn case() -> impl Strategy<Value = (usize, u64, Vec<u64>, Vec<u64>)> {
        (
            4u32..=7,
            prop_oneof![Just(30u32), Just(49), Just(50), Just(55), Just(61)],
        )
            .prop_flat_map(|(logn, bits)| {
                let n = 1usize << logn;
                let q = ntt_primes(bits, 1, n, &[]).unwrap()[0];
                (
                    Just(n),
                    Just(q),
                    prop::collection::vec(0..q, n),
                    prop::collection::vec(0..q, n),
                )
            })
    }

    proptest! {
        #[test]
        fn ntt_product_equals_schoolbook((n, q, a, b) in case()) {
            let expect = schoolbook(&a, &b, q);
            let fast = TfheNtt::new(n, q).unwrap();
            prop_assert_eq!(&product_via(&fast, &a, &b), &expect);
            let reference = ReferenceNtt::new(n, q, None).unwrap();
            prop_assert_eq!(&product_via(&reference, &a, &b), &expect);
        }

        #[test]
        fn fast_equals_reference_bit_for_bit((n, q, a, _b) in case()) {
            let fast = TfheNtt::new(n, q).unwrap();
            let reference = ReferenceNtt::new(n, q, Some(fast.psi())).unwrap();
            let (mut x, mut y) = (a.clone(), a.clone());
            fast.forward(&mut x).unwrap();
            reference.forward(&mut y).unwrap();
            prop_assert_eq!(&x, &y);
            fast.inverse(&mut x).unwrap();
            prop_assert_eq!(&x, &a);
        }
    }

    #[test]
    fn convention_is_odd_powers_in_bit_reversed_order() {
        let n = 64;
        let q = ntt_primes(50, 1, n, &[]).unwrap()[0];
        let m = Modulus::new(q).unwrap();
        let plan = TfheNtt::new(n, q).unwrap();
        let mut x = vec![0u64; n];
        x[1] = 1;
        plan.forward(&mut x).unwrap();
        for (i, v) in x.iter().enumerate() {
            assert_eq!(*v, m.pow(plan.psi(), 2 * bit_reverse(i, 6) as u64 + 1));
        }
    }

    /// Known answer: the forward transform of (0, 1, 2, ..., 15) for the first 30-bit prime at
    /// N = 16. Pins the convention (root choice and ordering) of the fast backend.
    #[test]
    fn kat_ntt() {
        let n = 16;
        let q = ntt_primes(30, 1, n, &[]).unwrap()[0];
        let plan = TfheNtt::new(n, q).unwrap();
        let mut a: Vec<u64> = (0..n as u64).collect();
        plan.forward(&mut a).unwrap();
        // Cross-checked against a direct evaluation at ψ^(2·brev(i)+1) in Python (sympy).
        assert_eq!((q, plan.psi()), (1073741441, 989907665));
        assert_eq!(
            a,
            [
                689393134, 491687042, 253144776, 540079973, 168668110, 477311157, 920798421,
                734028883, 773286299, 664373838, 575389431, 51253709, 969405497, 613921860,
                638889164, 28300234
            ]
        );
    }

    #[test]
    fn errors_not_panics() {
        let q = ntt_primes(40, 1, 1024, &[]).unwrap()[0];
        assert!(TfheNtt::new(1000, q).is_err());
        assert!(TfheNtt::new(1024, q + 2).is_err());
        let p = TfheNtt::new(1024, q).unwrap();
        assert!(p.forward(&mut [0u64; 10]).is_err());
        assert!(ReferenceNtt::new(1024, q, Some(3)).is_err());
    }
}
