//! Property tests of the ring layer against big-integer references.

use super::keyswitch::PolyQP;
use super::*;
use crate::math::primes::ntt_primes;
use num_bigint::BigInt;
use num_traits::{Signed, Zero};
use proptest::prelude::*;

fn ring(n: usize, bits: &[u32]) -> Arc<RingContext> {
    let mut qs: Vec<u64> = Vec::new();
    for b in bits {
        let q = ntt_primes(*b, 1, n, &qs).unwrap()[0];
        qs.push(q);
    }
    RingContext::new(n, &qs).unwrap()
}

fn random_poly(r: &RingContext, limbs: usize, seed: u8) -> Poly<Coeff> {
    let mut prng = Prng::from_seed([seed; 32]);
    r.uniform::<Coeff>(&mut prng, limbs).unwrap()
}

fn chains() -> impl Strategy<Value = (usize, Vec<u32>)> {
    (
        4u32..=8,
        prop::collection::vec(prop_oneof![Just(30u32), Just(40), Just(50), Just(60)], 2..5),
    )
        .prop_map(|(logn, b)| (1 << logn, b))
}

fn negacyclic_bigint(a: &[BigInt], b: &[BigInt], q: &BigInt) -> Vec<BigInt> {
    let n = a.len();
    let mut c = vec![BigInt::zero(); n];
    for i in 0..n {
        for j in 0..n {
            let p = &a[i] * &b[j];
            if i + j < n {
                c[i + j] += p;
            } else {
                c[i + j - n] -= p;
            }
        }
    }
    c.into_iter().map(|x| ((x % q) + q) % q).collect()
}

fn reduce_all(v: &[BigInt], q: &BigInt) -> Vec<BigInt> {
    v.iter().map(|x| ((x % q) + q) % q).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn product_equals_bigint_schoolbook((n, bits) in chains(), seed in any::<u8>()) {
        let r = ring(n, &bits);
        let l = bits.len();
        let a = random_poly(&r, l, seed);
        let b = random_poly(&r, l, seed.wrapping_add(1));
        let q = BigInt::from(r.basis(l).unwrap().product().clone());
        let want = negacyclic_bigint(&r.to_bigints(&a).unwrap(), &r.to_bigints(&b).unwrap(), &q);
        let c = r.mul(&r.to_eval(a.clone()).unwrap(), &r.to_eval(b.clone()).unwrap()).unwrap();
        let got = reduce_all(&r.to_bigints(&r.to_coeff(c).unwrap()).unwrap(), &q);
        prop_assert_eq!(got, want);
        // add / sub / neg against big integers too
        let s = reduce_all(&r.to_bigints(&r.add(&a, &b).unwrap()).unwrap(), &q);
        let want_s: Vec<BigInt> = r.to_bigints(&a).unwrap().iter().zip(r.to_bigints(&b).unwrap()).map(|(x, y)| (((x + y) % &q) + &q) % &q).collect();
        prop_assert_eq!(s, want_s);
        let mut d = r.sub(&a, &b).unwrap();
        r.neg_assign(&mut d).unwrap();
        r.add_assign(&mut d, &a).unwrap();
        prop_assert_eq!(d, b);
    }

    #[test]
    fn rescale_equals_rounded_division((n, bits) in chains(), seed in any::<u8>()) {
        let r = ring(n, &bits);
        let l = bits.len();
        let a = random_poly(&r, l, seed);
        let ql = BigInt::from(r.moduli()[l - 1].value());
        let q_next = BigInt::from(r.basis(l - 1).unwrap().product().clone());
        let want: Vec<BigInt> = r.to_bigints(&a).unwrap().iter().map(|x| {
            // round(x / q_l) for the centred x, with ties impossible (q_l odd)
            // floor((2x + q_l) / 2q_l)
            let t: BigInt = x * 2 + &ql;
            let d: BigInt = &ql * 2;
            let mut q: BigInt = &t / &d;
            let rem: BigInt = &t % &d;
            if rem.is_negative() { q -= 1; }
            ((q % &q_next) + &q_next) % &q_next
        }).collect();
        let c = r.rescale_coeff(a.clone()).unwrap();
        prop_assert_eq!(c.limbs(), l - 1);
        prop_assert_eq!(reduce_all(&r.to_bigints(&c).unwrap(), &q_next), want.clone());
        let e = r.rescale_eval(r.to_eval(a).unwrap()).unwrap();
        prop_assert_eq!(reduce_all(&r.to_bigints(&r.to_coeff(e).unwrap()).unwrap(), &q_next), want);
    }

    #[test]
    fn automorphism_eval_equals_coeff((n, bits) in chains(), seed in any::<u8>(), k in any::<u64>()) {
        let r = ring(n, &bits);
        let k = (k % (2 * n as u64)) | 1;
        let a = random_poly(&r, bits.len(), seed);
        let want = r.automorphism_coeff(&a, k).unwrap();
        let got = r.to_coeff(r.automorphism_eval(&r.to_eval(a.clone()).unwrap(), k).unwrap()).unwrap();
        prop_assert_eq!(&got, &want);
        // σ_k∘σ_{k^-1} = id
        let kinv = (1..2 * n as u64).step_by(2).find(|x| (x * k) % (2 * n as u64) == 1).unwrap();
        prop_assert_eq!(r.automorphism_coeff(&want, kinv).unwrap(), a);
    }

    #[test]
    fn mod_up_and_mod_down((n, bits) in chains(), alpha in 1usize..3, seed in any::<u8>()) {
        let all = ring(n, &[bits.clone(), vec![61, 61]].concat());
        let ql = bits.len();
        let q_vals: Vec<u64> = all.moduli()[..ql].iter().map(|m| m.value()).collect();
        let p_vals: Vec<u64> = all.moduli()[ql..].iter().map(|m| m.value()).collect();
        let rq = RingContext::new(n, &q_vals).unwrap();
        let rp = RingContext::new(n, &p_vals).unwrap();
        let alpha = alpha.min(ql);
        let ks = KeySwitchBasis::new(rq.clone(), rp.clone(), alpha).unwrap();
        let level = ql - 1;
        let d = random_poly(&rq, ql, seed);
        let d_eval = rq.to_eval(d.clone()).unwrap();
        let all_basis = all.basis(ql + 2).unwrap();
        for j in 0..ks.digits(level) {
            let range = ks.digit_range(level, j);
            let up = ks.mod_up(&d, &d_eval, j).unwrap();
            // Residues of the centred digit [d]_{D_j} in every modulus.
            let dj = RnsBasis::new(&q_vals[range.clone()]).unwrap();
            let dj_prod = BigInt::from(dj.product().clone());
            let upq = rq.to_coeff(up.q.clone()).unwrap();
            let upp = rp.to_coeff(up.p.clone()).unwrap();
            for c in 0..n.min(8) {
                let res: Vec<u64> = range.clone().map(|i| d.as_slice()[i * n + c]).collect();
                let x = BigInt::from(dj.compose(&res).unwrap());
                let mut got: Vec<u64> = (0..ql).map(|i| upq.as_slice()[i * n + c]).collect();
                got.extend((0..2).map(|i| upp.as_slice()[i * n + c]));
                let centred = if &x * 2 > dj_prod { &x - &dj_prod } else { x.clone() };
                prop_assert_eq!(all_basis.decompose_signed(&centred), got);
            }
        }
        // ModDown(x) = round(x / P) for x over Q_l ∪ P (big-integer reference).
        let x = PolyQP { q: d_eval.clone(), p: rp.to_eval(random_poly(&rp, 2, seed ^ 0x55)).unwrap() };
        let xq_c = rq.to_coeff(x.q.clone()).unwrap();
        let xp_c = rp.to_coeff(x.p.clone()).unwrap();
        let down = rq.to_coeff(ks.mod_down(x).unwrap()).unwrap();
        let p_prod = BigInt::from(RnsBasis::new(&p_vals).unwrap().product().clone());
        let q_prod = BigInt::from(rq.basis(ql).unwrap().product().clone());
        for c in 0..n {
            let mut res: Vec<u64> = (0..ql).map(|i| xq_c.as_slice()[i * n + c]).collect();
            res.extend((0..2).map(|i| xp_c.as_slice()[i * n + c]));
            let xv = all_basis.compose_centered(&res).unwrap();
            let t: BigInt = xv * 2 + &p_prod;
            let d: BigInt = &p_prod * 2;
            let mut r: BigInt = &t / &d;
            let rem: BigInt = &t % &d;
            if rem.is_negative() { r -= 1; }
            let want = ((r % &q_prod) + &q_prod) % &q_prod;
            let got: Vec<u64> = (0..ql).map(|i| down.as_slice()[i * n + c]).collect();
            prop_assert_eq!(BigInt::from(rq.basis(ql).unwrap().compose(&got).unwrap()), want);
        }
        // ModDown(x·P) = x exactly.
        let mut xp = d_eval.clone();
        rq.mul_rns_scalar_assign(&mut xp, ks.p_mod_q()).unwrap();
        let down = ks.mod_down(PolyQP { q: xp, p: rp.zero(2).unwrap() }).unwrap();
        prop_assert_eq!(down, d_eval);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The fused lazy inner product equals the naive sum of products, with and without an
    /// automorphism applied to the digits, for any digit count (beyond the lazy-reduction
    /// interval of a 61-bit prime too).
    #[test]
    fn inner_product_equals_naive(logn in 4u32..=7, dnum in 1usize..40, seed in any::<u8>(), k in any::<u64>(), permuted in any::<bool>()) {
        let n = 1usize << logn;
        // A 61-bit prime: its lazy interval is 32 products, so dnum up to 39 crosses it.
        let rq = ring(n, &[61, 40, 50]);
        let rp = RingContext::new(n, &ntt_primes(61, 2, n, &rq.moduli().iter().map(|m| m.value()).collect::<Vec<_>>()).unwrap()).unwrap();
        let ks = KeySwitchBasis::new(rq.clone(), rp.clone(), 1).unwrap();
        let mut prng = Prng::from_seed([seed; 32]);
        let mut qp = || PolyQP { q: rq.uniform::<Eval>(&mut prng, 3).unwrap(), p: rp.uniform::<Eval>(&mut prng, 2).unwrap() };
        let digits: Vec<PolyQP> = (0..dnum).map(|_| qp()).collect();
        let keys: Vec<[PolyQP; 2]> = (0..dnum).map(|_| [qp(), qp()]).collect();
        let views: Vec<_> = keys.iter().map(|[a, b]| [(a.q.view(), a.p.view()), (b.q.view(), b.p.view())]).collect();
        let perm = rq.automorphism_eval_permutation((k % (2 * n as u64)) | 1).unwrap();
        let perm = permuted.then_some(&perm[..]);
        let got = ks.inner_product(&digits, &views, perm).unwrap();
        for (c, got) in got.iter().enumerate() {
            let (mut wq, mut wp) = (rq.zero::<Eval>(3).unwrap(), rp.zero::<Eval>(2).unwrap());
            for (d, key) in digits.iter().zip(&keys) {
                let (dq, dp) = match perm {
                    Some(p) => (rq.permute(&d.q, p).unwrap(), rp.permute(&d.p, p).unwrap()),
                    None => (d.q.clone(), d.p.clone()),
                };
                rq.mul_add_assign(&mut wq, &dq, &key[c].q).unwrap();
                rp.mul_add_assign(&mut wp, &dp, &key[c].p).unwrap();
            }
            prop_assert_eq!(&got.q, &wq);
            prop_assert_eq!(&got.p, &wp);
        }
    }
}

#[test]
fn shape_errors_are_typed() {
    let r = ring(16, &[40, 40]);
    let a = r.zero::<Eval>(2).unwrap();
    let b = r.zero::<Eval>(1).unwrap();
    assert!(matches!(r.mul(&a, &b), Err(Error::LevelMismatch { .. })));
    assert!(r.zero::<Coeff>(3).is_err());
    assert!(r
        .automorphism_coeff(&r.zero::<Coeff>(1).unwrap(), 4)
        .is_err());
    assert!(matches!(
        r.rescale_coeff(r.zero::<Coeff>(1).unwrap()),
        Err(Error::OutOfLevels { .. })
    ));
    assert!(RingContext::new(24, &[97]).is_err());
    assert!(RingContext::new(16, &[1099511627777]).is_err());
    let bad = Poly::<Coeff, Vec<u64>>::from_container(vec![u64::MAX; 16], 16, 1).unwrap();
    assert!(r.check(&bad).is_err());
    assert!(Poly::<Coeff, Vec<u64>>::from_container(vec![0; 15], 16, 1).is_err());
}

/// Known answer: a seeded uniform polynomial, pinned by a hash of its residues.
#[test]
fn kat_sampled_polynomial() {
    let r = ring(1 << 10, &[50, 50]);
    let mut prng = Prng::from_seed([9; 32]);
    let p = r.uniform::<Eval>(&mut prng, 2).unwrap();
    let t = prng.ternary(8);
    let h = p.as_slice().iter().fold(0xcbf29ce484222325u64, |h, x| {
        (h ^ x).wrapping_mul(0x100000001b3)
    });
    assert_eq!(
        (h, t),
        (4560337718546161593, vec![1, -1, -1, -1, 1, 0, -1, 1])
    );
}
