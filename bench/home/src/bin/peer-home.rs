//! HomE's side of the CKKS peer benchmark (bench/peer): the same operations as the SEAL and
//! OpenFHE scripts, at the same ring degree and prime sizes ([60] + [40] x L + special [60],
//! scale 2^40, one prime per key-switching digit like SEAL), printed as JSON lines.
//!
//! Usage: peer-home --logn 14 --threads 1 --reps 20

use he_bench::{json_line, median_cpu_us, median_us};
use he_core::ckks::{Decryptor, Encoder, Encryptor, Evaluator};
use he_core::rlwe::{EvalKeySet, KeyGenerator, Parameters, ParametersLiteral, PublicKey, SecretDistribution, SecretKey, Security};
use std::sync::Arc;

fn arg(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).ok_or(format!("{name} needs a value"))?.parse().map_err(|e| format!("{name}: {e}")),
        None => Ok(default),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    let logn = arg(&args, "--logn", 14)? as u32;
    let threads = arg(&args, "--threads", 1)?;
    let reps = arg(&args, "--reps", 10)?;
    // --cpu: report process CPU time instead of wall time (diagnostics on a loaded machine).
    let cpu = args.iter().any(|a| a == "--cpu");
    let median = |reps: usize, f: &mut dyn FnMut()| if cpu { median_cpu_us(reps, f) } else { median_us(reps, f) };
    let alpha = arg(&args, "--alpha", 1)?;
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let depth = match logn {
        14 => 6,
        15 => 14,
        16 => 30,
        _ => return Err(format!("--logn must be 14, 15 or 16, got {logn}").into()),
    };
    let special = alpha.div_ceil(1).max(1);
    let params = Parameters::new(ParametersLiteral {
        log_n: logn,
        log_q: [vec![60], vec![40; depth]].concat(),
        log_p: vec![60; special],
        alpha: Some(alpha),
        log_scale: 40.0,
        secret: SecretDistribution::UniformTernary,
        security: Security::Bits128,
    })?;
    eprintln!("HomE peer bench: {}", params.describe());
    let lib = "HomE 0.1";
    let levels = params.q().len();
    let dnum = params.dnum();
    pool.install(|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let sk = SecretKey::generate(&params)?;
        let pk = PublicKey::generate(&sk)?;
        let kg = KeyGenerator::new(&sk);
        let rlk = kg.relinearization_key()?;
        let gk = kg.galois_key(5)?;
        let mut keys = EvalKeySet::new();
        keys.insert(rlk);
        keys.insert(gk);
        let eval = Evaluator::with_keys(&params, Arc::new(keys))?;
        let ecd = Encoder::new(&params)?;
        let enc = Encryptor::new(&params, pk)?;
        let dec = Decryptor::new(&sk);
        let vals: Vec<f64> = (0..params.slots()).map(|i| (i as f64 * 0.001).sin()).collect();
        let pt = ecd.encode(&vals, params.max_level(), params.default_scale())?;
        let ct = enc.encrypt(&pt)?;
        let ct2 = enc.encrypt(&pt)?;
        let prod = eval.mul_relin(&ct, &ct2)?;
        let tensor = eval.mul(&ct, &ct2)?;
        let mut out = Vec::new();
        let want = |op: &str| only.as_deref().is_none_or(|o| o == op);
        let mut emit = |op: &str, us: f64| out.push(json_line(lib, logn, threads, op, us, reps, levels, dnum));
        if want("mul_relin") {
            emit("mul_relin", median(reps, &mut || drop(eval.mul_relin(&ct, &ct2))));
        }
        if want("mul") {
            emit("mul", median(reps, &mut || drop(eval.mul(&ct, &ct2))));
        }
        if want("relin") {
            emit("relin", median(reps, &mut || drop(eval.relinearize(&tensor))));
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
            emit("keygen_relin", median(reps.min(5), &mut || drop(kg.relinearization_key())));
        }
        if want("keygen_galois_1") {
            emit("keygen_galois_1", median(reps.min(5), &mut || drop(kg.galois_key(5))));
        }
        for l in out {
            println!("{l}");
        }
        Ok(())
    })
}
