//! NTT-friendly primes: `q ≡ 1 (mod 2N)`, so that `Z_q` holds a primitive `2N`-th root of unity
//! and the negacyclic NTT of length `N` exists.
//!
//! Generation is deterministic: for a bit size `b`, candidates are `k·2N + 1` scanned downward
//! from the largest below `2^b`, keeping those in `[2^(b-1), 2^b)`. Parameter sets built from
//! bit sizes are therefore reproducible across runs, machines and versions (pinned by a
//! known-answer test).

use super::modulus::Modulus;
use crate::{Error, Result};

/// Smallest prime bit size supported by the generator.
pub const MIN_PRIME_BITS: u32 = 20;
/// Largest prime bit size supported by the generator (and by [`Modulus`]).
pub const MAX_PRIME_BITS: u32 = 61;

/// Deterministic Miller–Rabin primality test, exact for all `u64`
/// (the first twelve primes are a sufficient witness set below 3.3·10^24).
pub fn is_prime(n: u64) -> bool {
    const WITNESSES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    if n < 2 {
        return false;
    }
    for p in WITNESSES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let d = (n - 1) >> (n - 1).trailing_zeros();
    let s = (n - 1).trailing_zeros();
    let mulmod = |a: u64, b: u64| ((a as u128 * b as u128) % n as u128) as u64;
    let powmod = |mut a: u64, mut e: u64| {
        let mut r = 1u64;
        while e > 0 {
            if e & 1 == 1 {
                r = mulmod(r, a);
            }
            a = mulmod(a, a);
            e >>= 1;
        }
        r
    };
    'witness: for a in WITNESSES {
        let mut x = powmod(a, d);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mulmod(x, x);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

/// Returns `count` distinct primes of exactly `bits` bits with `q ≡ 1 (mod 2n)`, in descending
/// order, skipping any listed in `exclude` (so that chains of equal-sized primes, and Q and P
/// sharing a size, never repeat a prime).
///
/// Errors when `bits` is outside `[20, 61]`, `n` is not a power of two, or too few primes exist.
pub fn ntt_primes(bits: u32, count: usize, n: usize, exclude: &[u64]) -> Result<Vec<u64>> {
    if !(MIN_PRIME_BITS..=MAX_PRIME_BITS).contains(&bits) {
        return Err(Error::OutOfRange {
            what: "prime bit size",
            found: bits.to_string(),
            allowed: format!("{MIN_PRIME_BITS}..={MAX_PRIME_BITS}"),
        });
    }
    if !n.is_power_of_two() || n < 2 {
        return Err(Error::InvalidDegree {
            found: n,
            min: 2,
            max: 1 << 17,
        });
    }
    let two_n = 2 * n as u64;
    let lo = 1u64 << (bits - 1);
    let hi = 1u64 << bits;
    let mut out = Vec::with_capacity(count);
    // Largest candidate k·2N + 1 below 2^bits.
    let mut cand = ((hi - 2) / two_n) * two_n + 1;
    while out.len() < count && cand >= lo {
        if is_prime(cand) && !exclude.contains(&cand) {
            out.push(cand);
        }
        match cand.checked_sub(two_n) {
            Some(c) => cand = c,
            None => break,
        }
    }
    if out.len() < count {
        return Err(Error::NotEnoughPrimes {
            bits,
            two_n,
            wanted: count,
            found: out.len(),
        });
    }
    Ok(out)
}

/// Checks that `q` can serve as an RNS modulus for the negacyclic NTT of length `n`:
/// prime, `q ≡ 1 (mod 2n)`, at most 61 bits.
pub fn check_ntt_prime(q: u64, n: usize) -> Result<Modulus> {
    let m = Modulus::new(q)?;
    if m.bits() > MAX_PRIME_BITS {
        return Err(Error::InvalidModulus {
            modulus: q,
            reason: format!("more than {MAX_PRIME_BITS} bits"),
        });
    }
    if !is_prime(q) {
        return Err(Error::InvalidModulus {
            modulus: q,
            reason: "not prime".into(),
        });
    }
    if !(q - 1).is_multiple_of(2 * n as u64) {
        return Err(Error::InvalidModulus {
            modulus: q,
            reason: format!("not congruent to 1 mod 2N = {}", 2 * n),
        });
    }
    Ok(m)
}

/// A primitive `order`-th root of unity modulo the prime `q` (`order` a power of two dividing
/// `q - 1`): the smallest `g^((q-1)/order)` over generators candidates `g = 2, 3, ...` whose
/// `order/2`-th power is `-1`. Deterministic.
pub fn primitive_root_of_unity(q: u64, order: u64) -> Result<u64> {
    let m = Modulus::new(q)?;
    if order < 2 || !order.is_power_of_two() || !(q - 1).is_multiple_of(order) {
        return Err(Error::InvalidModulus {
            modulus: q,
            reason: format!("no primitive root of order {order}"),
        });
    }
    for g in 2..q.min(1 << 20) {
        let r = m.pow(g, (q - 1) / order);
        if m.pow(r, order / 2) == q - 1 {
            return Ok(r);
        }
    }
    Err(Error::InvalidModulus {
        modulus: q,
        reason: format!("no primitive root of order {order} found"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Known answer: the generator's output is part of every parameter set; a change here would
    /// silently change every key and ciphertext format, so it is pinned.
    #[test]
    fn kat_primes() {
        assert_eq!(
            ntt_primes(40, 3, 1 << 14, &[]).unwrap(),
            vec![1099510054913, 1099508121601, 1099507695617]
        );
        assert_eq!(
            ntt_primes(60, 2, 1 << 16, &[]).unwrap(),
            vec![1152921504606584833, 1152921504598720513]
        );
        assert_eq!(ntt_primes(20, 1, 1 << 12, &[]).unwrap(), vec![1032193]);
    }

    #[test]
    fn rejects_bad_requests() {
        assert!(ntt_primes(19, 1, 1024, &[]).is_err());
        assert!(ntt_primes(62, 1, 1024, &[]).is_err());
        assert!(ntt_primes(40, 1, 1000, &[]).is_err());
        // Only few 20-bit primes are 1 mod 2^17.
        assert!(matches!(
            ntt_primes(20, 100, 1 << 16, &[]),
            Err(Error::NotEnoughPrimes { .. })
        ));
        assert!(check_ntt_prime(1099511627777, 1 << 14).is_err());
    }

    #[test]
    fn small_primes_agree_with_trial_division() {
        for n in 0..20_000u64 {
            let trial = n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0);
            assert_eq!(is_prime(n), trial, "{n}");
        }
        assert!(is_prime(18446744073709551557)); // largest 64-bit prime
        assert!(!is_prime(3215031751)); // strong pseudoprime to bases 2, 3, 5, 7
    }

    proptest! {
        #[test]
        fn generated_primes_are_ntt_friendly(bits in 20u32..=61, logn in 4u32..=16, count in 1usize..4) {
            let n = 1usize << logn;
            if let Ok(ps) = ntt_primes(bits, count, n, &[]) {
                let mut seen = std::collections::HashSet::new();
                for q in &ps {
                    prop_assert!(check_ntt_prime(*q, n).is_ok());
                    prop_assert_eq!(64 - q.leading_zeros(), bits);
                    prop_assert!(seen.insert(*q));
                }
                let more = ntt_primes(bits, 1, n, &ps);
                if let Ok(more) = more { prop_assert!(!ps.contains(&more[0])); }
            }
        }
    }
}
