//! RNS polynomials: `limbs x N` residues, limb-major, in one contiguous 64-byte-aligned buffer.
//!
//! The representation — coefficients or evaluations (NTT form) — is a type parameter, so that
//! mixing the two does not compile (after fhe.rs); converting consumes the polynomial. The
//! storage is a type parameter too (after tfhe-rs' entities): an owned aligned vector, a borrowed
//! slice, or a memory-mapped region all serve, so the persistent-memory tier needs no copy.

use crate::{Error, Result};
use aligned_vec::{AVec, ConstAlign};
use std::marker::PhantomData;

/// Alignment of owned limb buffers, in bytes (one cache line; one AVX-512 register).
pub const LIMB_ALIGN: usize = 64;

/// Owned, 64-byte-aligned residue storage.
pub type Limbs = AVec<u64, ConstAlign<LIMB_ALIGN>>;

/// A zeroed aligned buffer of `len` words.
pub fn zeroed_limbs(len: usize) -> Limbs {
    let mut v = Limbs::with_capacity(LIMB_ALIGN, len);
    v.resize(len, 0);
    v
}

/// A free list of owned limb buffers, after SEAL's `MemoryPool`: key switching takes its
/// large temporaries (extended digits, inner-product sums, ModDown scratch) from it and gives
/// them back, so steady-state evaluation maps no fresh pages. Without it every key switch at
/// N = 2^15 asked the allocator for ~36 MB, which typical allocators return to the OS on free
/// and the kernel zeroes again on the next touch (about a quarter of the key-switching time).
#[derive(Debug, Default)]
pub struct BufferPool {
    free: std::sync::Mutex<Vec<Limbs>>,
}

/// Buffers a [`BufferPool`] keeps at most (the rest are freed).
const POOL_MAX_BUFFERS: usize = 256;
/// Words a [`BufferPool`] keeps at most (2 GiB).
const POOL_MAX_WORDS: usize = 1 << 28;

impl BufferPool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// A buffer of `len` words whose contents are unspecified (stale residues of an earlier
    /// use, or zeros): for callers that overwrite every word.
    pub fn take_for_overwrite(&self, len: usize) -> Limbs {
        let reused = self.free.lock().ok().and_then(|mut free| {
            // Best fit: the smallest buffer that is large enough (and not wastefully so).
            let i = free
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= len && b.capacity() <= 2 * len.max(1))
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i)?;
            Some(free.swap_remove(i))
        });
        match reused {
            Some(mut b) => {
                b.truncate(len);
                b.resize(len, 0);
                b
            }
            None => zeroed_limbs(len),
        }
    }

    /// A polynomial of `limbs x n` words for callers that overwrite every residue.
    pub fn poly_for_overwrite<R: Representation>(&self, n: usize, limbs: usize) -> Poly<R> {
        Poly {
            n,
            limbs,
            data: self.take_for_overwrite(n * limbs),
            _repr: PhantomData,
        }
    }

    /// Returns a buffer to the pool.
    pub fn give(&self, buffer: Limbs) {
        if let Ok(mut free) = self.free.lock() {
            let held: usize = free.iter().map(|b| b.capacity()).sum();
            if free.len() < POOL_MAX_BUFFERS && held + buffer.capacity() <= POOL_MAX_WORDS {
                free.push(buffer);
            }
        }
    }

    /// Returns a polynomial's buffer to the pool.
    pub fn give_poly<R: Representation>(&self, p: Poly<R>) {
        self.give(p.into_container());
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Marker for the representation of a polynomial.
pub trait Representation: sealed::Sealed + Send + Sync + 'static {
    /// Name used in messages and serialized headers.
    const NAME: &'static str;
    /// Tag byte used in serialized headers.
    const TAG: u8;
}

/// Coefficient representation: limb `i` holds `a_j mod q_i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coeff {}
/// Evaluation (NTT) representation: limb `i` holds `a(ψ_i^(2·brev(j)+1)) mod q_i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eval {}
impl sealed::Sealed for Coeff {}
impl sealed::Sealed for Eval {}
impl Representation for Coeff {
    const NAME: &'static str = "coefficient";
    const TAG: u8 = 0;
}
impl Representation for Eval {
    const NAME: &'static str = "evaluation";
    const TAG: u8 = 1;
}

/// An RNS polynomial with `limbs` residue polynomials of degree `< n`, stored limb-major in `C`.
///
/// A polynomial with `limbs = l + 1` is said to be at level `l` and uses the first `l + 1`
/// moduli of its ring context.
#[derive(Clone, PartialEq, Eq)]
pub struct Poly<R: Representation, C = Limbs> {
    n: usize,
    limbs: usize,
    data: C,
    _repr: PhantomData<R>,
}

impl<R: Representation, C: AsRef<[u64]>> std::fmt::Debug for Poly<R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.data.as_ref();
        write!(
            f,
            "Poly<{}>(N={}, limbs={}, [{:?}..])",
            R::NAME,
            self.n,
            self.limbs,
            &d[..d.len().min(4)]
        )
    }
}

/// A borrowed polynomial.
pub type PolyView<'a, R> = Poly<R, &'a [u64]>;

impl<R: Representation> Poly<R> {
    /// The zero polynomial with `limbs` limbs of degree `n`.
    pub fn zero(n: usize, limbs: usize) -> Self {
        Self {
            n,
            limbs,
            data: zeroed_limbs(n * limbs),
            _repr: PhantomData,
        }
    }
}

impl<R: Representation, C: AsRef<[u64]>> Poly<R, C> {
    /// Wraps `data` (limb-major, `limbs * n` words). Residues are not checked against moduli
    /// here; [`crate::ring::RingContext::check`] does that for untrusted data.
    pub fn from_container(data: C, n: usize, limbs: usize) -> Result<Self> {
        let len = data.as_ref().len();
        if n == 0 || limbs == 0 || len != n * limbs {
            return Err(Error::LengthMismatch {
                what: "polynomial buffer (limbs x N)",
                expected: n * limbs,
                found: len,
            });
        }
        Ok(Self {
            n,
            limbs,
            data,
            _repr: PhantomData,
        })
    }

    /// Ring degree `N`.
    #[inline]
    pub fn degree(&self) -> usize {
        self.n
    }

    /// Number of RNS limbs.
    #[inline]
    pub fn limbs(&self) -> usize {
        self.limbs
    }

    /// Level: number of limbs minus one.
    #[inline]
    pub fn level(&self) -> usize {
        self.limbs - 1
    }

    /// All residues, limb-major.
    #[inline]
    pub fn as_slice(&self) -> &[u64] {
        self.data.as_ref()
    }

    /// Limb `i`, or `None` past the last.
    #[inline]
    pub fn limb(&self, i: usize) -> Option<&[u64]> {
        self.data.as_ref().get(i * self.n..(i + 1) * self.n)
    }

    /// Iterator over the limbs.
    pub fn iter_limbs(&self) -> std::slice::ChunksExact<'_, u64> {
        self.data.as_ref().chunks_exact(self.n)
    }

    /// A borrowed view.
    pub fn view(&self) -> PolyView<'_, R> {
        Poly {
            n: self.n,
            limbs: self.limbs,
            data: self.data.as_ref(),
            _repr: PhantomData,
        }
    }

    /// A borrowed view of the first `limbs` limbs (the same polynomial at a lower level).
    pub fn view_limbs(&self, limbs: usize) -> Result<PolyView<'_, R>> {
        if limbs == 0 || limbs > self.limbs {
            return Err(Error::OutOfRange {
                what: "limb count",
                found: limbs.to_string(),
                allowed: format!("1..={}", self.limbs),
            });
        }
        Ok(Poly {
            n: self.n,
            limbs,
            data: &self.data.as_ref()[..limbs * self.n],
            _repr: PhantomData,
        })
    }

    /// An owned copy.
    pub fn to_owned_poly(&self) -> Poly<R> {
        let mut d = Limbs::with_capacity(LIMB_ALIGN, self.n * self.limbs);
        d.extend_from_slice(self.data.as_ref());
        Poly {
            n: self.n,
            limbs: self.limbs,
            data: d,
            _repr: PhantomData,
        }
    }

    /// The storage.
    pub fn into_container(self) -> C {
        self.data
    }

    /// Reinterprets the representation tag. Only for backends that transform the data
    /// themselves (e.g. an NTT done on a GPU); callers must guarantee the data matches `S`.
    pub fn retag<S: Representation>(self) -> Poly<S, C> {
        Poly {
            n: self.n,
            limbs: self.limbs,
            data: self.data,
            _repr: PhantomData,
        }
    }
}

impl<R: Representation, C: AsRef<[u64]> + AsMut<[u64]>> Poly<R, C> {
    /// All residues, mutable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u64] {
        self.data.as_mut()
    }

    /// Limb `i`, mutable.
    #[inline]
    pub fn limb_mut(&mut self, i: usize) -> Option<&mut [u64]> {
        let n = self.n;
        self.data.as_mut().get_mut(i * n..(i + 1) * n)
    }
}

impl<R: Representation> Poly<R> {
    /// Drops limbs past the first `limbs` (moving to a lower level, no rounding).
    pub fn truncate(&mut self, limbs: usize) -> Result<()> {
        if limbs == 0 || limbs > self.limbs {
            return Err(Error::OutOfRange {
                what: "limb count",
                found: limbs.to_string(),
                allowed: format!("1..={}", self.limbs),
            });
        }
        self.data.truncate(limbs * self.n);
        self.limbs = limbs;
        Ok(())
    }

    /// Appends a limb (length `N`).
    pub fn push_limb(&mut self, limb: &[u64]) -> Result<()> {
        if limb.len() != self.n {
            return Err(Error::LengthMismatch {
                what: "limb",
                expected: self.n,
                found: limb.len(),
            });
        }
        self.data.extend_from_slice(limb);
        self.limbs += 1;
        Ok(())
    }
}
