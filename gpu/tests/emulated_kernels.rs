//! Runs the CUDA C kernel sources themselves on the host, through a small emulation of the
//! CUDA subset they use (`tests/emu/cuda_emu.h`: threads, blocks, `__syncthreads`, shared
//! memory, `__umul64hi`), compiled with the host C++ compiler, and checks every kernel against
//! he-core bit for bit. This validates the kernels' arithmetic and indexing (and the launch
//! shapes the device code uses) on machines without a GPU; it says nothing about speed.
//! Skipped with a printed reason when no C++20 compiler (`g++`, or `$CXX`) is available.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_core::math::ntt::plan;
use he_core::math::primes::ntt_primes;
use he_core::math::{BaseConverter, Modulus, Prng, RnsBasis};
use he_core::ring::{Coeff, Eval, Poly, RingContext};
use he_gpu::kernels::{self, LaunchShape, SOURCES};
use he_gpu::tables;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

#[derive(Clone, Copy)]
enum Arg {
    Buf(usize),
    U32(u32),
    U64(u64),
}

#[derive(Default)]
struct Emu {
    bufs: Vec<Vec<u8>>,
    calls: Vec<u64>,
    ncalls: u64,
}

fn words_of(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect()
}

impl Emu {
    fn buf64(&mut self, v: &[u64]) -> usize {
        self.bufs
            .push(v.iter().flat_map(|x| x.to_le_bytes()).collect());
        self.bufs.len() - 1
    }
    fn buf32(&mut self, v: &[u32]) -> usize {
        self.bufs
            .push(v.iter().flat_map(|x| x.to_le_bytes()).collect());
        self.bufs.len() - 1
    }
    fn launch(&mut self, s: &LaunchShape, args: &[Arg]) {
        assert!(args.len() <= 12 && s.grid.2 == 1);
        let name = s.kernel.as_bytes();
        self.calls.push(name.len() as u64);
        self.calls.extend(words_of(name));
        self.calls.push(s.grid.0 as u64);
        self.calls.push(s.grid.1 as u64);
        self.calls.push(s.block as u64);
        self.calls.push(s.kernel.contains("shared") as u64);
        self.calls.push(args.len() as u64);
        for a in args {
            match *a {
                Arg::Buf(i) => self.calls.extend([1, i as u64]),
                Arg::U32(x) => self.calls.extend([0, x as u64]),
                Arg::U64(x) => self.calls.extend([0, x]),
            }
        }
        self.ncalls += 1;
    }
    /// Runs the launches; returns every buffer as words.
    fn run(&self, exe: &PathBuf) -> Vec<Vec<u64>> {
        let mut words = vec![self.bufs.len() as u64];
        for b in &self.bufs {
            words.push(b.len() as u64);
            words.extend(words_of(b));
        }
        words.push(self.ncalls);
        words.extend(&self.calls);
        let dir = exe.parent().unwrap();
        let id = std::thread::current().id();
        let input = dir.join(format!("in-{id:?}.bin"));
        let output = dir.join(format!("out-{id:?}.bin"));
        let bytes: Vec<u8> = words.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(&input, bytes).unwrap();
        let st = Command::new(exe).arg(&input).arg(&output).status().unwrap();
        assert!(st.success(), "emulated run failed: {st}");
        let out = words_of(&std::fs::read(&output).unwrap());
        let mut pos = 1;
        let mut res = Vec::new();
        for _ in 0..out[0] {
            let len = (out[pos] as usize).div_ceil(8);
            res.push(out[pos + 1..pos + 1 + len].to_vec());
            pos += 1 + len;
        }
        res
    }
}

/// Builds the emulator once; `None` (with the reason printed) when no compiler works.
fn harness() -> Option<&'static PathBuf> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/emu");
        let mut src = std::fs::read_to_string(here.join("cuda_emu.h")).unwrap();
        src.push_str(kernels::COMMON);
        for s in SOURCES {
            src.push_str(s.source);
        }
        src.push_str(&std::fs::read_to_string(here.join("harness.cpp")).unwrap());
        src.push_str("Entry ENTRIES[] = {\n");
        let mut count = 0;
        for s in SOURCES {
            for e in s.entries {
                src.push_str(&format!("    {{\"{e}\", (void *)&{e}}},\n"));
                count += 1;
            }
        }
        src.push_str(&format!("}};\nint N_ENTRIES = {count};\n"));
        let dir = std::env::temp_dir().join(format!("he-gpu-emu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cpp = dir.join("emu.cpp");
        std::fs::write(&cpp, src).unwrap();
        let exe = dir.join("emu");
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
        // Probe for a C++20 compiler with <barrier> (g++ >= 11, clang++ >= 14 with libstdc++).
        let probe = dir.join("probe.cpp");
        std::fs::write(
            &probe,
            "#include <barrier>\nint main() { std::barrier<> b(1); }\n",
        )
        .unwrap();
        let ok = Command::new(&cxx)
            .args(["-std=c++20", "-pthread", "-o"])
            .arg(dir.join("probe"))
            .arg(&probe)
            .output();
        match ok {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                println!(
                    "SKIPPED: {cxx} cannot build C++20 <barrier> programs: {}",
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .next()
                        .unwrap_or("")
                );
                return None;
            }
            Err(e) => {
                println!("SKIPPED: no C++ compiler ({cxx}: {e})");
                return None;
            }
        }
        let out = Command::new(&cxx)
            .args(["-std=c++20", "-O2", "-pthread", "-w", "-o"])
            .arg(&exe)
            .arg(&cpp)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(exe),
            Ok(o) => panic!(
                "the kernels do not build under the host emulation:\n{}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => {
                println!("SKIPPED: no C++ compiler ({cxx}: {e})");
                None
            }
        }
    })
    .as_ref()
}

/// A ring of `count` primes of mixed sizes (61, 50, 40, 55, ... bits) for degree `n`.
fn primes(n: usize, count: usize) -> Vec<u64> {
    let sizes = [61u32, 50, 40, 55, 59, 36];
    let mut out: Vec<u64> = Vec::new();
    for i in 0..count {
        let q = ntt_primes(sizes[i % sizes.len()], 1, n, &out).unwrap()[0];
        out.push(q);
    }
    out
}

/// Device-layout tables of `moduli`: (params, fwd, fwd_shoup, inv, inv_shoup).
fn ring_tables(n: usize, moduli: &[u64]) -> [Vec<u64>; 5] {
    let mut t: [Vec<u64>; 5] = Default::default();
    for &q in moduli {
        let m = Modulus::new(q).unwrap();
        let psi = plan(n, q).unwrap().psi();
        t[0].extend(tables::mod_params(&m, n).unwrap());
        let [a, b, c, d] = tables::twiddles(&m, n, psi).unwrap();
        t[1].extend(a);
        t[2].extend(b);
        t[3].extend(c);
        t[4].extend(d);
    }
    t
}

fn random(prng: &mut Prng, moduli: &[u64], limb_mod: &[u32], polys: usize, n: usize) -> Vec<u64> {
    let mut v = vec![0u64; polys * limb_mod.len() * n];
    for (r, row) in v.chunks_exact_mut(n).enumerate() {
        let m = Modulus::new(moduli[limb_mod[r % limb_mod.len()] as usize]).unwrap();
        prng.fill_uniform(&m, row);
    }
    v
}

fn ntt_case(exe: &PathBuf, log_n: u32, polys: usize) {
    let n = 1usize << log_n;
    let moduli = primes(n, 3);
    let limb_mod = [2u32, 0, 1];
    let mut prng = Prng::from_seed([log_n as u8; 32]);
    let input = random(&mut prng, &moduli, &limb_mod, polys, n);
    let [params, fw, fws, iw, iws] = ring_tables(n, &moduli);
    let rows = (polys * limb_mod.len()) as u64;
    let mut emu = Emu::default();
    let data = emu.buf64(&input);
    let bufs = [
        emu.buf64(&fw),
        emu.buf64(&fws),
        emu.buf64(&iw),
        emu.buf64(&iws),
        emu.buf64(&params),
        emu.buf32(&limb_mod),
    ];
    let copy = emu.buf64(&input);
    let args = |d: usize, tw: usize, tws: usize| {
        [
            Arg::Buf(d),
            Arg::Buf(tw),
            Arg::Buf(tws),
            Arg::Buf(bufs[4]),
            Arg::Buf(bufs[5]),
            Arg::U32(limb_mod.len() as u32),
            Arg::U32(log_n),
            Arg::U32(kernels::ntt_chunk_log(log_n)),
            Arg::U64(rows),
        ]
    };
    // data: forward; copy: forward then inverse.
    for s in kernels::ntt_launches(log_n, rows, true).unwrap() {
        emu.launch(&s, &args(data, bufs[0], bufs[1]));
        emu.launch(&s, &args(copy, bufs[0], bufs[1]));
    }
    for s in kernels::ntt_launches(log_n, rows, false).unwrap() {
        emu.launch(&s, &args(copy, bufs[2], bufs[3]));
    }
    let out = emu.run(exe);
    let mut expect = input.clone();
    for (r, row) in expect.chunks_exact_mut(n).enumerate() {
        let q = moduli[limb_mod[r % 3] as usize];
        plan(n, q).unwrap().forward(row).unwrap();
    }
    assert!(out[data] == expect, "forward NTT differs, N = 2^{log_n}");
    assert!(out[copy] == input, "inverse NTT differs, N = 2^{log_n}");
    println!("NTT N=2^{log_n}, {rows} limbs: forward and inverse bit-identical to he-core");
}

#[test]
fn ntt_matches_he_core() {
    let Some(exe) = harness() else { return };
    for log_n in [4u32, 5, 10, 11, 12] {
        ntt_case(exe, log_n, 2);
    }
    for log_n in [13u32, 14, 15, 16, 17] {
        ntt_case(exe, log_n, 1);
    }
}

#[test]
fn elementwise_and_automorphisms_match_he_core() {
    let Some(exe) = harness() else { return };
    for log_n in [4u32, 12] {
        let n = 1usize << log_n;
        let moduli = primes(n, 3);
        let ring = RingContext::new(n, &moduli).unwrap();
        let limb_mod = [0u32, 1, 2];
        let mut prng = Prng::from_seed([7; 32]);
        let polys = 2;
        let a = random(&mut prng, &moduli, &limb_mod, polys, n);
        let b = random(&mut prng, &moduli, &limb_mod, polys, n);
        let c = random(&mut prng, &moduli, &limb_mod, polys, n);
        let s: Vec<u64> = moduli.iter().map(|q| prng.next_u64() % q).collect();
        let s_shoup: Vec<u64> = moduli
            .iter()
            .zip(&s)
            .map(|(q, x)| Modulus::new(*q).unwrap().shoup(*x))
            .collect();
        let [params, ..] = ring_tables(n, &moduli);
        let total = (a.len()) as u64;
        let mut emu = Emu::default();
        let (pa, pm) = (emu.buf64(&params), emu.buf32(&limb_mod));
        let (ba, bb, bc) = (emu.buf64(&a), emu.buf64(&b), emu.buf64(&c));
        let (bs, bss) = (emu.buf64(&s), emu.buf64(&s_shoup));
        let outs: Vec<usize> = (0..9).map(|_| emu.buf64(&vec![0; a.len()])).collect();
        emu.bufs[outs[4]] = emu.bufs[bc].clone(); // mul_acc accumulates into a copy of c
        let k = 5u64;
        let perm = tables::eval_permutation(n, k).unwrap();
        let bp = emu.buf32(&perm);
        let sh = |kernel| LaunchShape {
            kernel,
            grid: (3, 1, 1),
            block: 64,
            shared_bytes: 0,
        };
        let common = [
            Arg::Buf(pa),
            Arg::Buf(pm),
            Arg::U32(3),
            Arg::U32(log_n),
            Arg::U64(total),
        ];
        let with = |head: &[Arg]| -> Vec<Arg> { head.iter().chain(&common).copied().collect() };
        emu.launch(
            &sh("poly_add"),
            &with(&[Arg::Buf(outs[0]), Arg::Buf(ba), Arg::Buf(bb)]),
        );
        emu.launch(
            &sh("poly_sub"),
            &with(&[Arg::Buf(outs[1]), Arg::Buf(ba), Arg::Buf(bb)]),
        );
        emu.launch(&sh("poly_neg"), &with(&[Arg::Buf(outs[2]), Arg::Buf(ba)]));
        emu.launch(
            &sh("poly_mul"),
            &with(&[Arg::Buf(outs[3]), Arg::Buf(ba), Arg::Buf(bb)]),
        );
        emu.launch(
            &sh("poly_mul_acc"),
            &with(&[Arg::Buf(outs[4]), Arg::Buf(ba), Arg::Buf(bb)]),
        );
        emu.launch(
            &sh("poly_mul_scalar"),
            &with(&[Arg::Buf(outs[5]), Arg::Buf(ba), Arg::Buf(bs), Arg::Buf(bss)]),
        );
        emu.launch(
            &sh("poly_sub_mul_scalar"),
            &with(&[
                Arg::Buf(outs[6]),
                Arg::Buf(ba),
                Arg::Buf(bb),
                Arg::Buf(bs),
                Arg::Buf(bss),
            ]),
        );
        emu.launch(
            &sh("automorphism_eval"),
            &[
                Arg::Buf(outs[7]),
                Arg::Buf(ba),
                Arg::Buf(bp),
                Arg::U32(log_n),
                Arg::U64(total),
            ],
        );
        emu.launch(
            &sh("automorphism_coeff"),
            &with(&[Arg::Buf(outs[8]), Arg::Buf(ba), Arg::U64(k)]),
        );
        let out = emu.run(exe);

        let per = 3 * n;
        for p in 0..polys {
            let view = |v: &[u64]| v[p * per..(p + 1) * per].to_vec();
            let pa = Poly::<Eval, _>::from_container(view(&a), n, 3).unwrap();
            let pb = Poly::<Eval, _>::from_container(view(&b), n, 3).unwrap();
            let pc = Poly::<Eval, _>::from_container(view(&c), n, 3).unwrap();
            let got = |i: usize| out[outs[i]][p * per..(p + 1) * per].to_vec();
            assert_eq!(got(0), ring.add(&pa, &pb).unwrap().as_slice(), "add");
            assert_eq!(got(1), ring.sub(&pa, &pb).unwrap().as_slice(), "sub");
            let mut neg = pa.to_owned_poly();
            ring.neg_assign(&mut neg).unwrap();
            assert_eq!(got(2), neg.as_slice(), "neg");
            assert_eq!(got(3), ring.mul(&pa, &pb).unwrap().as_slice(), "mul");
            let mut acc = pc.to_owned_poly();
            ring.mul_add_assign(&mut acc, &pa, &pb).unwrap();
            assert_eq!(got(4), acc.as_slice(), "mul_acc");
            let mut sc = pa.to_owned_poly();
            ring.mul_rns_scalar_assign(&mut sc, &s).unwrap();
            assert_eq!(got(5), sc.as_slice(), "mul_scalar");
            let mut d = ring.sub(&pa, &pb).unwrap();
            ring.mul_rns_scalar_assign(&mut d, &s).unwrap();
            assert_eq!(got(6), d.as_slice(), "sub_mul_scalar");
            assert_eq!(
                got(7),
                ring.automorphism_eval(&pa, k).unwrap().as_slice(),
                "aut eval"
            );
            let ca = Poly::<Coeff, _>::from_container(view(&a), n, 3).unwrap();
            assert_eq!(
                got(8),
                ring.automorphism_coeff(&ca, k).unwrap().as_slice(),
                "aut coeff"
            );
        }
        println!("element-wise kernels and automorphisms N=2^{log_n}: bit-identical to he-core");
    }
}

#[test]
fn base_conversion_matches_he_core() {
    let Some(exe) = harness() else { return };
    let n = 1usize << 10;
    // ka = 20 exercises the every-15-terms reduction; kb = 11 a partial output tile.
    for (ka, kb) in [(1usize, 3usize), (4, 9), (20, 11)] {
        let moduli = primes(n, ka + kb);
        let ring_mods: Vec<Modulus> = moduli.iter().map(|q| Modulus::new(*q).unwrap()).collect();
        let from: Vec<u32> = (0..ka as u32).collect();
        let to: Vec<u32> = (ka as u32..(ka + kb) as u32).collect();
        let polys = 2;
        let mut prng = Prng::from_seed([ka as u8; 32]);
        let input = random(&mut prng, &moduli, &from, polys, n);
        let (inv, inv_s, hat) =
            tables::base_conversion_constants(&ring_mods[..ka], &ring_mods[ka..]).unwrap();
        let [params, ..] = ring_tables(n, &moduli);
        let mut emu = Emu::default();
        let out_buf = emu.buf64(&vec![0; polys * kb * n]);
        let bi = emu.buf64(&input);
        let bp = emu.buf64(&params);
        let (bf, bt) = (emu.buf32(&from), emu.buf32(&to));
        let (b1, b2, b3) = (emu.buf64(&inv), emu.buf64(&inv_s), emu.buf64(&hat));
        let shape = kernels::base_convert_launch(n, polys, kb).unwrap();
        emu.launch(
            &shape,
            &[
                Arg::Buf(out_buf),
                Arg::Buf(bi),
                Arg::Buf(bp),
                Arg::Buf(bf),
                Arg::Buf(bt),
                Arg::U32(ka as u32),
                Arg::U32(kb as u32),
                Arg::U32(n.trailing_zeros()),
                Arg::Buf(b1),
                Arg::Buf(b2),
                Arg::Buf(b3),
            ],
        );
        let out = emu.run(exe);
        let conv =
            BaseConverter::new(&RnsBasis::new(&moduli[..ka]).unwrap(), &ring_mods[ka..]).unwrap();
        for p in 0..polys {
            let mut expect = vec![0u64; kb * n];
            conv.convert_approx(&input[p * ka * n..(p + 1) * ka * n], &mut expect, n)
                .unwrap();
            assert!(
                out[out_buf][p * kb * n..(p + 1) * kb * n] == expect[..],
                "base conversion {ka} -> {kb} differs"
            );
        }
        println!("base conversion {ka} -> {kb} limbs, N=2^10: bit-identical to he-core");
    }
}

#[test]
fn key_switch_inner_product_matches_cpu() {
    let Some(exe) = harness() else { return };
    let n = 1usize << 8;
    // Key over Q (L+1 = 5 limbs) and P (2 limbs), 17 digits (exercises the 15-term reduction);
    // used at level l = 2 (3 Q limbs) with 16 digits.
    let (key_q, p_limbs, dnum) = (5usize, 2usize, 17usize);
    let (q_rows, digits) = (3usize, 16usize);
    let moduli = primes(n, key_q + p_limbs);
    let ms: Vec<Modulus> = moduli.iter().map(|q| Modulus::new(*q).unwrap()).collect();
    let limb_mod: Vec<u32> = (0..q_rows as u32)
        .chain(key_q as u32..(key_q + p_limbs) as u32)
        .collect();
    let rows = limb_mod.len();
    let mut prng = Prng::from_seed([3; 32]);
    let key_mod: Vec<u32> = (0..(key_q + p_limbs) as u32).collect();
    let key = random(&mut prng, &moduli, &key_mod, 2 * dnum, n);
    let dig = random(&mut prng, &moduli, &limb_mod, digits, n);
    let acc0 = random(&mut prng, &moduli, &limb_mod, 2, n);
    let [params, ..] = ring_tables(n, &moduli);
    let mut emu = Emu::default();
    let (ba, bd, bk) = (emu.buf64(&acc0), emu.buf64(&dig), emu.buf64(&key));
    let (bp, bm) = (emu.buf64(&params), emu.buf32(&limb_mod));
    emu.launch(
        &LaunchShape {
            kernel: "ks_inner_product",
            grid: (2, 1, 1),
            block: 128,
            shared_bytes: 0,
        },
        &[
            Arg::Buf(ba),
            Arg::Buf(bd),
            Arg::Buf(bk),
            Arg::Buf(bp),
            Arg::Buf(bm),
            Arg::U32(rows as u32),
            Arg::U32(q_rows as u32),
            Arg::U32(key_q as u32),
            Arg::U32(digits as u32),
            Arg::U32(n.trailing_zeros()),
        ],
    );
    let out = emu.run(exe);
    let comp = (key_q + p_limbs) * n;
    let mut expect = acc0.clone();
    for c in 0..2 {
        for r in 0..rows {
            let m = &ms[limb_mod[r] as usize];
            let kr = if r < q_rows { r } else { key_q + r - q_rows };
            for i in 0..n {
                let mut s = expect[(c * rows + r) * n + i];
                for j in 0..digits {
                    let d = dig[(j * rows + r) * n + i];
                    let k = key[(2 * j + c) * comp + kr * n + i];
                    s = m.add(s, m.mul(d, k));
                }
                expect[(c * rows + r) * n + i] = s;
            }
        }
    }
    assert!(out[ba] == expect, "key-switching inner product differs");
    println!("key-switching inner product ({digits} digits, {rows} limbs): matches the CPU");
}
