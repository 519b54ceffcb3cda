//! Every device kernel against he-core's CPU path, bit for bit, on random inputs, for
//! N = 2^12 .. 2^17 and 1 .. 40 limbs. Needs an NVIDIA GPU with its driver (and NVRTC, see
//! gpu/README.md); without a driver or device each test prints SKIPPED and passes.
#![cfg(feature = "cuda")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_core::math::primes::ntt_primes;
use he_core::math::{BaseConverter, Modulus, Prng, RnsBasis};
use he_core::ring::{Coeff, Eval, Poly, RingContext};
use he_core::rlwe::KeyShape;
use he_gpu::{
    key_switch_inner_product, DeviceBaseConverter, DeviceKeySwitchKey, DevicePoly, DeviceRing,
    Error, GpuContext, GpuNtt,
};
use std::sync::Arc;

const LOG_N: [u32; 6] = [12, 13, 14, 15, 16, 17];
const LIMBS: [usize; 3] = [1, 7, 40];

fn gpu() -> Option<Arc<GpuContext>> {
    match GpuContext::new(0) {
        Ok(g) => {
            g.load_kernels().unwrap_or_else(|e| panic!("{e}"));
            Some(g)
        }
        Err(Error::NoDriver) => {
            println!("SKIPPED: no CUDA driver (libcuda.so not found)");
            None
        }
        Err(e @ Error::NoDevice { .. }) => {
            println!("SKIPPED: {e}");
            None
        }
        Err(e) => panic!("a CUDA driver is present but the device cannot be opened: {e}"),
    }
}

/// `count` distinct NTT primes for degree `n`, of mixed sizes (61 .. 36 bits).
fn primes(n: usize, count: usize) -> Vec<u64> {
    let sizes = [61u32, 50, 40, 55, 59, 36, 45, 60];
    let mut out: Vec<u64> = Vec::new();
    for i in 0..count {
        let q = ntt_primes(sizes[i % sizes.len()], 1, n, &out).unwrap()[0];
        out.push(q);
    }
    out
}

fn concat<R: he_core::ring::Representation>(ps: &[Poly<R>]) -> Vec<u64> {
    ps.iter().flat_map(|p| p.as_slice().to_vec()).collect()
}

#[test]
fn ntt_forward_and_inverse() {
    let Some(g) = gpu() else { return };
    let mut prng = Prng::from_seed([1; 32]);
    for log_n in LOG_N {
        for limbs in LIMBS {
            let n = 1 << log_n;
            let moduli = primes(n, limbs);
            let cpu = RingContext::new(n, &moduli).unwrap();
            let dev = DeviceRing::from_ring(&g, &cpu).unwrap();
            let set = dev.prefix(limbs).unwrap();
            let polys: Vec<Poly<Coeff>> = (0..3)
                .map(|_| cpu.uniform(&mut prng, limbs).unwrap())
                .collect();
            let d =
                DevicePoly::<Coeff>::from_polys(&set, &polys.iter().collect::<Vec<_>>()).unwrap();
            let e = d.into_eval().unwrap();
            let expect: Vec<Poly<Eval>> = polys
                .iter()
                .map(|p| cpu.to_eval(p.clone()).unwrap())
                .collect();
            assert!(
                e.download().unwrap() == concat(&expect),
                "forward N=2^{log_n}/limbs={limbs}"
            );
            let c = e.into_coeff().unwrap();
            assert!(
                c.download().unwrap() == concat(&polys),
                "inverse N=2^{log_n}/limbs={limbs}"
            );
            println!("NTT N=2^{log_n}/limbs={limbs}/polys=3: ok");
        }
    }
}

#[test]
fn elementwise_arithmetic() {
    let Some(g) = gpu() else { return };
    let mut prng = Prng::from_seed([2; 32]);
    for log_n in LOG_N {
        for limbs in LIMBS {
            let n = 1 << log_n;
            let moduli = primes(n, limbs);
            let cpu = RingContext::new(n, &moduli).unwrap();
            let set = DeviceRing::from_ring(&g, &cpu)
                .unwrap()
                .prefix(limbs)
                .unwrap();
            let a: Poly<Eval> = cpu.uniform(&mut prng, limbs).unwrap();
            let b: Poly<Eval> = cpu.uniform(&mut prng, limbs).unwrap();
            let c: Poly<Eval> = cpu.uniform(&mut prng, limbs).unwrap();
            let s: Vec<u64> = moduli.iter().map(|q| prng.next_u64() % q).collect();
            let up = |p: &Poly<Eval>| DevicePoly::<Eval>::from_polys(&set, &[p]).unwrap();
            let (da, db, dc) = (up(&a), up(&b), up(&c));
            let check = |d: DevicePoly<Eval>, expect: Poly<Eval>, what: &str| {
                assert!(
                    d.download().unwrap() == expect.as_slice(),
                    "{what} N=2^{log_n}/limbs={limbs}"
                );
            };
            let mut x = da.try_clone().unwrap();
            x.add_assign(&db).unwrap();
            check(x, cpu.add(&a, &b).unwrap(), "add");
            let mut x = da.try_clone().unwrap();
            x.sub_assign(&db).unwrap();
            check(x, cpu.sub(&a, &b).unwrap(), "sub");
            let mut x = da.try_clone().unwrap();
            x.neg_assign().unwrap();
            let mut e = a.clone();
            cpu.neg_assign(&mut e).unwrap();
            check(x, e, "neg");
            let mut x = da.try_clone().unwrap();
            x.mul_assign(&db).unwrap();
            check(x, cpu.mul(&a, &b).unwrap(), "mul");
            let mut x = dc.try_clone().unwrap();
            x.mul_add_assign(&da, &db).unwrap();
            let mut e = c.clone();
            cpu.mul_add_assign(&mut e, &a, &b).unwrap();
            check(x, e, "mul_add");
            let mut x = da.try_clone().unwrap();
            x.mul_rns_scalar_assign(&s).unwrap();
            let mut e = a.clone();
            cpu.mul_rns_scalar_assign(&mut e, &s).unwrap();
            check(x, e, "mul_scalar");
            let mut x = da.try_clone().unwrap();
            x.sub_mul_rns_scalar_assign(&db, &s).unwrap();
            let mut e = cpu.sub(&a, &b).unwrap();
            cpu.mul_rns_scalar_assign(&mut e, &s).unwrap();
            check(x, e, "sub_mul_scalar");
            println!("element-wise N=2^{log_n}/limbs={limbs}: ok");
        }
    }
}

#[test]
fn automorphisms() {
    let Some(g) = gpu() else { return };
    let mut prng = Prng::from_seed([3; 32]);
    for log_n in LOG_N {
        for limbs in LIMBS {
            let n = 1usize << log_n;
            let moduli = primes(n, limbs);
            let cpu = RingContext::new(n, &moduli).unwrap();
            let set = DeviceRing::from_ring(&g, &cpu)
                .unwrap()
                .prefix(limbs)
                .unwrap();
            let a: Poly<Eval> = cpu.uniform(&mut prng, limbs).unwrap();
            let ac: Poly<Coeff> = cpu.uniform(&mut prng, limbs).unwrap();
            let da = DevicePoly::<Eval>::from_polys(&set, &[&a]).unwrap();
            let dc = DevicePoly::<Coeff>::from_polys(&set, &[&ac]).unwrap();
            for k in [5u64, 25, 2 * n as u64 - 1] {
                let e = cpu.automorphism_eval(&a, k).unwrap();
                assert!(
                    da.automorphism(k).unwrap().download().unwrap() == e.as_slice(),
                    "eval k={k}"
                );
                let e = cpu.automorphism_coeff(&ac, k).unwrap();
                assert!(
                    dc.automorphism(k).unwrap().download().unwrap() == e.as_slice(),
                    "coeff k={k}"
                );
            }
            assert!(da.automorphism(4).is_err());
            println!("automorphisms N=2^{log_n}/limbs={limbs}: ok");
        }
    }
}

#[test]
fn fast_base_conversion() {
    let Some(g) = gpu() else { return };
    let mut prng = Prng::from_seed([4; 32]);
    for log_n in LOG_N {
        for (ka, kb) in [(1usize, 1usize), (3, 8), (12, 40), (40, 9)] {
            let n = 1 << log_n;
            let moduli = primes(n, ka + kb);
            let ring = DeviceRing::new(&g, n, &moduli).unwrap();
            let from = ring.prefix(ka).unwrap();
            let to = ring.limb_set(&(ka..ka + kb).collect::<Vec<_>>()).unwrap();
            let cpu = RingContext::new(n, &moduli[..ka]).unwrap();
            let polys: Vec<Poly<Coeff>> = (0..2)
                .map(|_| cpu.uniform(&mut prng, ka).unwrap())
                .collect();
            let input =
                DevicePoly::<Coeff>::from_polys(&from, &polys.iter().collect::<Vec<_>>()).unwrap();
            let mut out = DevicePoly::<Coeff>::zeros(&to, 2).unwrap();
            DeviceBaseConverter::new(&from, &to)
                .unwrap()
                .convert_approx(&input, &mut out)
                .unwrap();
            let bmods: Vec<Modulus> = moduli[ka..]
                .iter()
                .map(|q| Modulus::new(*q).unwrap())
                .collect();
            let conv = BaseConverter::new(&RnsBasis::new(&moduli[..ka]).unwrap(), &bmods).unwrap();
            let mut expect = vec![0u64; 2 * kb * n];
            for (p, chunk) in expect.chunks_exact_mut(kb * n).enumerate() {
                conv.convert_approx(polys[p].as_slice(), chunk, n).unwrap();
            }
            assert!(out.download().unwrap() == expect, "N=2^{log_n} {ka}->{kb}");
            println!("base conversion N=2^{log_n} {ka}->{kb} limbs: ok");
        }
    }
}

#[test]
fn key_switching_inner_product() {
    let Some(g) = gpu() else { return };
    let mut prng = Prng::from_seed([5; 32]);
    for log_n in LOG_N {
        // (L+1, k, dnum) of the key; used at level l with β digits.
        for (q_limbs, p_limbs, dnum, level, beta) in [
            (1usize, 1usize, 1usize, 0usize, 1usize),
            (8, 2, 4, 5, 3),
            (40, 10, 20, 39, 20),
        ] {
            let n = 1usize << log_n;
            let moduli = primes(n, q_limbs + p_limbs);
            let ms: Vec<Modulus> = moduli.iter().map(|q| Modulus::new(*q).unwrap()).collect();
            let ring = DeviceRing::new(&g, n, &moduli).unwrap();
            let idx: Vec<usize> = (0..=level).chain(q_limbs..q_limbs + p_limbs).collect();
            let set = ring.limb_set(&idx).unwrap();
            let shape = KeyShape {
                n,
                q_limbs,
                p_limbs,
                dnum,
            };
            let mut key = vec![0u64; shape.words()];
            for (r, row) in key.chunks_exact_mut(n).enumerate() {
                prng.fill_uniform(&ms[r % (q_limbs + p_limbs)], row);
            }
            let rows = idx.len();
            let fill = |prng: &mut Prng, polys: usize| {
                let mut v = vec![0u64; polys * rows * n];
                for (r, row) in v.chunks_exact_mut(n).enumerate() {
                    prng.fill_uniform(&ms[idx[r % rows]], row);
                }
                v
            };
            let digits = fill(&mut prng, beta);
            let acc0 = fill(&mut prng, 2);
            let dkey = DeviceKeySwitchKey::upload(&ring, shape, &key).unwrap();
            let dd = DevicePoly::<Eval>::upload(&set, &digits).unwrap();
            let mut acc = DevicePoly::<Eval>::upload(&set, &acc0).unwrap();
            key_switch_inner_product(&mut acc, &dd, &dkey).unwrap();
            let comp = shape.component_words();
            let mut expect = acc0.clone();
            for c in 0..2 {
                for (r, &mi) in idx.iter().enumerate() {
                    let m = &ms[mi];
                    let kr = if r <= level {
                        r
                    } else {
                        q_limbs + r - level - 1
                    };
                    for i in 0..n {
                        let o = (c * rows + r) * n + i;
                        for j in 0..beta {
                            let d = digits[(j * rows + r) * n + i];
                            expect[o] =
                                m.add(expect[o], m.mul(d, key[(2 * j + c) * comp + kr * n + i]));
                        }
                    }
                }
            }
            assert!(
                acc.download().unwrap() == expect,
                "N=2^{log_n} L+1={q_limbs} k={p_limbs} l={level} β={beta}"
            );
            println!("key-switching inner product N=2^{log_n}/limbs={rows}/digits={beta}: ok");
        }
    }
}

#[test]
fn ntt_backend_in_a_ring_context() {
    let Some(g) = gpu() else { return };
    let mut prng = Prng::from_seed([6; 32]);
    for log_n in [12u32, 17] {
        let n = 1 << log_n;
        let moduli = primes(n, 4);
        let cpu = RingContext::new(n, &moduli).unwrap();
        let on_gpu = GpuNtt::ring_context(&g, n, &moduli).unwrap();
        assert_eq!(on_gpu.ntt(0).unwrap().name(), "cuda");
        let a: Poly<Coeff> = cpu.uniform(&mut prng, 4).unwrap();
        let b: Poly<Coeff> = cpu.uniform(&mut prng, 4).unwrap();
        let (ea, eb) = (
            cpu.to_eval(a.clone()).unwrap(),
            cpu.to_eval(b.clone()).unwrap(),
        );
        let (ga, gb) = (
            on_gpu.to_eval(a.clone()).unwrap(),
            on_gpu.to_eval(b).unwrap(),
        );
        assert_eq!(ea, ga);
        let mut acc = cpu.zero::<Eval>(4).unwrap();
        cpu.mul_add_assign(&mut acc, &ea, &eb).unwrap();
        let mut gacc = on_gpu.zero::<Eval>(4).unwrap();
        on_gpu.mul_add_assign(&mut gacc, &ga, &gb).unwrap();
        assert_eq!(acc, gacc);
        assert_eq!(on_gpu.to_coeff(ga).unwrap(), a);
        println!("GpuNtt as the NttBackend of a RingContext N=2^{log_n}: ok");
    }
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let Some(g) = gpu() else { return };
    let n = 1 << 12;
    let moduli = primes(n, 3);
    let ring = DeviceRing::new(&g, n, &moduli).unwrap();
    let (s2, s3) = (ring.prefix(2).unwrap(), ring.prefix(3).unwrap());
    let mut a = DevicePoly::<Eval>::zeros(&s2, 1).unwrap();
    let b = DevicePoly::<Eval>::zeros(&s3, 1).unwrap();
    assert!(a.add_assign(&b).is_err());
    assert!(DevicePoly::<Eval>::upload(&s2, &[0u64; 10]).is_err());
    assert!(DevicePoly::<Eval>::upload(&s2, &vec![u64::MAX; 2 * n]).is_err());
    assert!(ring.limb_set(&[0, 0]).is_err());
    assert!(ring.limb_set(&[3]).is_err());
    assert!(a.mul_rns_scalar_assign(&[1]).is_err());
    assert!(GpuContext::new(1 << 20).is_err());
}
