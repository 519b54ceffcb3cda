//! HomE's side of the CKKS peer benchmark (bench/peer): the same operations as the SEAL and
//! OpenFHE scripts, at the same ring degree and ciphertext chain ([60] + [40] x L, scale 2^40),
//! printed as JSON lines, in two key-switching configurations:
//!
//! - `HomE α=1`: one prime per digit and one 60-bit special prime — SEAL's layout;
//! - `HomE α=max`: as many 60-bit special primes as the 128-bit bound on log2(QP) leaves room
//!   for, and the largest digit they cover (OpenFHE's own choice at 2^15 and 2^16: dnum = 3).
//!
//! Usage: peer-home --logn 14 --threads 1 --reps 20 [--alpha 1|max] [--only OP] [--cpu]

use he_bench::{json_line, median_cpu_us, median_us};
use he_core::ckks::{Decryptor, Encoder, Encryptor, Evaluator};
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
        let (alpha, special, lib) = if a == "max" {
            let bound = max_log_qp_128(1 << logn).unwrap_or(0);
            let log_q = 60 + 40 * depth as u32;
            let k = (bound.saturating_sub(log_q) / 60).max(1);
            // The largest α whose biggest digit (q0 and 40-bit primes) fits under P = 60·k bits.
            let alpha = ((60 * k - 60) / 40 + 1).min(depth as u32 + 1) as usize;
            (alpha, k as usize, "HomE α=max")
        } else {
            (
                a.parse::<usize>().map_err(|e| format!("--alpha: {e}"))?,
                1,
                "HomE α=1",
            )
        };
        let cfg = Config {
            lib,
            logn,
            depth,
            alpha,
            special,
            threads,
            reps,
            cpu,
            only,
        };
        pool.install(|| run(&cfg))?;
    }
    Ok(())
}

fn run(c: &Config) -> Result<(), BoxError> {
    let params = Parameters::new(ParametersLiteral {
        log_n: c.logn,
        log_q: [vec![60], vec![40; c.depth]].concat(),
        log_p: vec![60; c.special],
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
    Ok(())
}
