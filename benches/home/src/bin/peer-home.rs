//! HomE's side of the CKKS peer benchmark (benches/peer): the same operations as the SEAL and
//! OpenFHE scripts, at the same ring degree and ciphertext chain ([60] + [40] x L, scale 2^40),
//! printed as JSON lines, in two key-switching configurations:
//!
//! - `HomE α=1`: one prime per digit and one 60-bit special prime — SEAL's layout;
//! - `HomE α=max`: special primes filling what the 128-bit bound on log2(QP) leaves, as few as
//!   possible below 2^50 (they take the double-precision NTT), and the largest digit they cover
//!   to within 2 bits (dnum = 3 at 2^14, 2^15 and 2^16, OpenFHE's own choice).
//!
//! Usage: peer-home --logn 14 --threads 1 --reps 20 [--alpha 1|max] [--only OP] [--cpu]

use he_bench::{json_line, median_cpu_us, median_us};
use he_core::ckks::{Decryptor, Encoder, Encryptor, Evaluator, PrecisionStats};
use he_core::rlwe::params::max_log_qp_128;
use he_core::rlwe::{
    EvalKeySet, KeyGenerator, Parameters, ParametersLiteral, PublicKey, SecretDistribution,
    SecretKey, Security,
};
use std::sync::Arc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn arg(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .ok_or(format!("{name} needs a value"))?
            .parse()
            .map_err(|e| format!("{name}: {e}")),
        None => Ok(default),
    }
}

/// One benchmark configuration.
struct Config<'a> {
    lib: &'a str,
    logn: u32,
    depth: usize,
    alpha: usize,
    special: usize,
    pbits: u32,
    threads: usize,
    reps: usize,
    cpu: bool,
    only: Option<&'a str>,
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let logn = arg(&args, "--logn", 14)? as u32;
    let threads = arg(&args, "--threads", 1)?;
    let reps = arg(&args, "--reps", 10)?;
    // --cpu: report process CPU time instead of wall time (diagnostics on a loaded machine).
    let cpu = args.iter().any(|a| a == "--cpu");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let alphas: Vec<&str> = match args
        .iter()
        .position(|a| a == "--alpha")
        .and_then(|i| args.get(i + 1))
    {
        Some(a) => vec![a.as_str()],
        None => vec!["1", "max"],
    };
    let depth = match logn {
        14 => 6,
        15 => 14,
        16 => 30,
        _ => return Err(format!("--logn must be 14, 15 or 16, got {logn}").into()),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    for a in alphas {
        let (alpha, special, pbits, lib) = if a == "max" {
            let (alpha, k, pbits) = fastest_special_primes(logn, depth);
            (alpha, k, pbits, "HomE α=max")
        } else {
            (
                a.parse::<usize>().map_err(|e| format!("--alpha: {e}"))?,
                1,
                60,
                "HomE α=1",
            )
        };
        let cfg = Config {
            lib,
            logn,
            depth,
            alpha,
            special,
            pbits,
            threads,
            reps,
            cpu,
            only,
        };
        pool.install(|| run(&cfg))?;
    }
    Ok(())
}

/// The special primes `P` and digit size `α` of the `HomE α=max` column: `P` fills what the
/// 128-bit bound on log2(QP) leaves, either with the fewest 60-bit primes or with the fewest
/// primes below 2^50 (which take the double-precision NTT); `α` is the largest digit size whose
/// biggest digit is at most `P` + 2 bits (key-switching noise at most 4x that of `P >= D`).
/// Of the two layouts, the one with the smaller modelled key-switching time is used; the model
/// counts NTT butterflies (0.4 ns below 2^50, 0.95 ns above: `tfhe-ntt` on AVX2), base
/// conversion terms (1.2 ns) and inner-product terms (1.5 ns), as `ks-breakdown` measures them
/// on the benchmark machine. Returns `(α, number of special primes, bits of each)`.
fn fastest_special_primes(logn: u32, depth: usize) -> (usize, usize, u32) {
    let bound = max_log_qp_128(1 << logn).unwrap_or(0);
    let q_bits: Vec<u32> = [vec![60], vec![40; depth]].concat();
    let budget = bound.saturating_sub(q_bits.iter().sum());
    let mut layouts = vec![(budget / 60, 60u32)];
    let k = budget.div_ceil(49).max(1);
    layouts.push((k, (budget / k).min(49)));
    let ell = q_bits.len();
    let n = (1usize << logn) as f64;
    let ntt = |bits: u32| n / 2.0 * logn as f64 * if bits < 50 { 0.4 } else { 0.95 };
    let mut best = (f64::INFINITY, (1, 1, 60));
    for (k, pbits) in layouts.into_iter().filter(|(k, _)| *k > 0) {
        let p_total = k * pbits;
        // Largest α with digit bits (primes taken from q_0 upward) <= P + 2.
        let alpha = (1..=ell)
            .take_while(|a| q_bits.iter().take(*a).sum::<u32>() <= p_total + 2)
            .last()
            .unwrap_or(1);
        let k = k as usize;
        let digits: Vec<std::ops::Range<usize>> = (0..ell.div_ceil(alpha))
            .map(|j| j * alpha..((j + 1) * alpha).min(ell))
            .collect();
        let q_ntt: f64 = q_bits.iter().map(|b| ntt(*b)).sum();
        let p_ntt = k as f64 * ntt(pbits);
        let mut t = q_ntt; // INTT of the input
        let mut conv = 0.0;
        for r in &digits {
            let own: f64 = q_bits[r.clone()].iter().map(|b| ntt(*b)).sum();
            t += q_ntt - own + p_ntt;
            conv += (r.len() * (ell - r.len() + k)) as f64 * n;
        }
        t += 2.0 * (p_ntt + q_ntt); // ModDown of both components
        conv += 2.0 * (k * ell) as f64 * n;
        let inner = (digits.len() * (ell + k) * 2) as f64 * n;
        let cost = t + 1.2 * conv + 1.5 * inner;
        if cost < best.0 {
            best = (cost, (alpha, k, pbits));
        }
    }
    best.1
}

fn run(c: &Config) -> Result<(), BoxError> {
    let params = Parameters::new(ParametersLiteral {
        log_n: c.logn,
        log_q: [vec![60], vec![40; c.depth]].concat(),
        log_p: vec![c.pbits; c.special],
        alpha: Some(c.alpha),
        log_scale: 40.0,
        secret: SecretDistribution::UniformTernary,
        security: Security::Bits128,
    })?;
    eprintln!("{}: {}", c.lib, params.describe());
    let (levels, dnum) = (params.q().len(), params.dnum());
    let median = |reps: usize, f: &mut dyn FnMut()| {
        if c.cpu {
            median_cpu_us(reps, f)
        } else {
            median_us(reps, f)
        }
    };
    let want = |op: &str| c.only.is_none_or(|o| o == op);
    let sk = SecretKey::generate(&params)?;
    let pk = PublicKey::generate(&sk)?;
    let kg = KeyGenerator::new(&sk);
    let mut keys = EvalKeySet::new();
    keys.insert(kg.relinearization_key()?);
    keys.insert(kg.galois_key(5)?);
    let eval = Evaluator::with_keys(&params, Arc::new(keys))?;
    let ecd = Encoder::new(&params)?;
    let enc = Encryptor::new(&params, pk)?;
    let dec = Decryptor::new(&sk);
    let vals: Vec<f64> = (0..params.slots())
        .map(|i| (i as f64 * 0.001).sin())
        .collect();
    let pt = ecd.encode(&vals, params.max_level(), params.default_scale())?;
    let (ct, ct2) = (enc.encrypt(&pt)?, enc.encrypt(&pt)?);
    let prod = eval.mul_relin(&ct, &ct2)?;
    let tensor = eval.mul(&ct, &ct2)?;
    let mut out = Vec::new();
    let mut emit = |op: &str, us: f64| {
        out.push(json_line(
            c.lib, c.logn, c.threads, op, us, c.reps, levels, dnum,
        ))
    };
    let reps = c.reps;
    if want("mul_relin") {
        emit(
            "mul_relin",
            median(reps, &mut || drop(eval.mul_relin(&ct, &ct2))),
        );
    }
    if want("mul") {
        emit("mul", median(reps, &mut || drop(eval.mul(&ct, &ct2))));
    }
    if want("relin") {
        emit(
            "relin",
            median(reps, &mut || drop(eval.relinearize(&tensor))),
        );
    }
    if want("rescale") {
        emit("rescale", median(reps, &mut || drop(eval.rescale(&prod))));
    }
    if want("rotate") {
        emit("rotate", median(reps, &mut || drop(eval.rotate(&ct, 1))));
    }
    if want("add") {
        emit("add", median(reps, &mut || drop(eval.add(&ct, &ct2))));
    }
    if want("encrypt") {
        emit("encrypt", median(reps, &mut || drop(enc.encrypt(&pt))));
    }
    if want("decrypt") {
        emit("decrypt", median(reps, &mut || drop(dec.decrypt(&ct))));
    }
    if want("keygen_relin") {
        emit(
            "keygen_relin",
            median(reps.min(3), &mut || drop(kg.relinearization_key())),
        );
    }
    if want("keygen_galois_1") {
        emit(
            "keygen_galois_1",
            median(reps.min(3), &mut || drop(kg.galois_key(5))),
        );
    }
    for l in out {
        println!("{l}");
    }
    // Precision of what was timed (the speed must not come from a noisier configuration).
    let want_sq: Vec<f64> = vals.iter().map(|v| v * v).collect();
    let mut rescaled = prod.clone();
    eval.rescale_assign(&mut rescaled)?;
    let got = ecd.decode(&dec.decrypt(&rescaled)?)?;
    let p_mul = PrecisionStats::compare(&want_sq, &got);
    let rotated = eval.rotate(&ct, 1)?;
    let want_rot: Vec<f64> = (0..vals.len())
        .map(|i| vals[(i + 1) % vals.len()])
        .collect();
    let p_rot = PrecisionStats::compare(&want_rot, &ecd.decode(&dec.decrypt(&rotated)?)?);
    eprintln!(
        "{}: precision bits (mean / min): mul_relin+rescale {:.1} / {:.1}, rotate {:.1} / {:.1}",
        c.lib, p_mul.mean_bits, p_mul.min_bits, p_rot.mean_bits, p_rot.min_bits
    );
    Ok(())
}
