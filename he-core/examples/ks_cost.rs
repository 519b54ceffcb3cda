//! The key-switching cost model ([`he_core::rlwe::ks_cost`]) against measurement: for a chain,
//! the model's weights are calibrated from one limb NTT and one limb multiply-add, then for
//! several digit counts the real rotation time (at the top and a middle level) and the real
//! key bytes are printed next to the model's.
//!
//! Timings are the fastest of several runs, single-threaded.
//!
//! Run (N = 2^15 chain; `--n16` adds an N = 2^16 chain of 20 levels, about
//! 1 GiB at its largest digit count):
//! `cargo run --release -p he-core --example ks_cost [-- --n16]`

use he_core::ckks::{Complex64, Encoder, Encryptor, Evaluator};
use he_core::rlwe::ks_cost::{KsModel, KsWeights};
use he_core::rlwe::{
    EvalKeySet, Parameters, ParametersLiteral, PublicKey, SecretDistribution, SecretKey, Security,
};
use std::sync::Arc;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Fastest of `reps` timings of `f`, seconds (the minimum: the machine is shared, and other
/// load only ever adds time).
fn fastest(reps: usize, mut f: impl FnMut() -> Res<()>) -> Res<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let s = Instant::now();
        f()?;
        best = best.min(s.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// The model's weights measured on this machine with the chain's own NTT and multiply-add.
fn calibrate(params: &Parameters) -> Res<KsWeights> {
    let rq = params.ring_q();
    let (n, limbs) = (params.degree(), params.q().len());
    let mut prng = he_core::math::Prng::from_seed([7; 32]);
    let a = rq.uniform::<he_core::ring::Coeff>(&mut prng, limbs)?;
    let ntt = fastest(31, || {
        let _ = rq.to_eval(a.clone())?;
        Ok(())
    })?;
    let copy = fastest(31, || {
        let _ = std::hint::black_box(a.clone());
        Ok(())
    })?;
    let x = rq.uniform::<he_core::ring::Eval>(&mut prng, limbs)?;
    let y = rq.uniform::<he_core::ring::Eval>(&mut prng, limbs)?;
    let mut acc = rq.uniform::<he_core::ring::Eval>(&mut prng, limbs)?;
    let mac = fastest(31, || {
        rq.mul_add_assign(&mut acc, &x, &y)?;
        Ok(())
    })?;
    let per_limb = |t: f64| t / limbs as f64 * 1e9;
    Ok(KsWeights {
        ntt_ns: per_limb((ntt - copy).max(0.0)) / (n as f64 * (n as f64).log2()),
        mac_ns: per_limb(mac) / n as f64,
    })
}

/// One measured rotation: the model's NTT and multiply-add terms (ns at unit weights) and the
/// real time (ns).
type Sample = (f64, f64, f64);

fn measure(log_n: u32, log_q: &[u32], dnums: &[usize], samples: &mut Vec<Sample>) -> Res<()> {
    let base = KsModel::new(log_n, log_q)?;
    let first = base.candidate(*dnums.first().ok_or("no digit counts")?)?;
    let lit = |alpha: usize, log_p: Vec<u32>| ParametersLiteral {
        log_n,
        log_q: log_q.to_vec(),
        log_p,
        alpha: Some(alpha),
        log_scale: log_q.get(1).copied().unwrap_or(40) as f64,
        secret: SecretDistribution::UniformTernary,
        security: Security::Bits128,
    };
    let weights = calibrate(&*Parameters::new(lit(first.alpha, first.log_p.clone()))?)?;
    let model = base.clone().with_weights(weights);
    let defaults = base.clone();
    let unit_ntt = base.clone().with_weights(KsWeights {
        ntt_ns: 1.0,
        mac_ns: 0.0,
    });
    let unit_mac = base.with_weights(KsWeights {
        ntt_ns: 0.0,
        mac_ns: 1.0,
    });
    let top = log_q.len() - 1;
    let mid = top / 2;
    println!(
        "\nN = 2^{log_n}, L = {top}, Q bits {} ({} primes); calibrated: ntt {:.3} ns per coefficient per log2 N, multiply-add {:.3} ns per coefficient (defaults {:?})",
        log_q.iter().sum::<u32>(),
        log_q.len(),
        weights.ntt_ns,
        weights.mac_ns,
        KsWeights::default()
    );
    println!(
        "| dnum | alpha | k x bits | log2 QP | key MiB model | key MiB real | level | ms model (calibrated) | ms model (default weights) | ms real | real/calibrated | real/default |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &d in dnums {
        let c = model.candidate(d)?;
        let params = Parameters::new(lit(c.alpha, c.log_p.clone()))?;
        let sk = SecretKey::generate(&params)?;
        let keys = EvalKeySet::generate(&sk, false, &[1], false)?;
        let real_bytes = keys.bytes() as u64;
        let eval = Evaluator::with_keys(&params, Arc::new(keys))?;
        let encoder = Encoder::new(&params)?;
        let encryptor = Encryptor::new(&params, PublicKey::generate(&sk)?)?;
        let z: Vec<Complex64> = (0..params.slots())
            .map(|i| Complex64::new((i as f64 * 0.01).sin(), 0.0))
            .collect();
        for level in [top, mid] {
            let ct =
                encryptor.encrypt(&encoder.encode_complex(&z, level, params.default_scale())?)?;
            let t = fastest(9, || {
                let _ = eval.rotate(&ct, 1)?;
                Ok(())
            })?;
            let m = model.switch_ns(c.alpha, c.k(), level) * 1e-9;
            let md = defaults.switch_ns(c.alpha, c.k(), level) * 1e-9;
            samples.push((
                unit_ntt.switch_ns(c.alpha, c.k(), level),
                unit_mac.switch_ns(c.alpha, c.k(), level),
                t * 1e9,
            ));
            println!(
                "| {} | {} | {} x {} | {} | {:.1} | {:.1} | {level} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
                c.dnum,
                c.alpha,
                c.k(),
                c.log_p.first().copied().unwrap_or(0),
                c.log_qp,
                c.key_bytes as f64 / (1u64 << 20) as f64,
                real_bytes as f64 / (1u64 << 20) as f64,
                m * 1e3,
                md * 1e3,
                t * 1e3,
                t / m,
                t / md
            );
        }
    }
    Ok(())
}

fn main() -> Res<()> {
    let n16 = std::env::args().any(|a| a == "--n16");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    pool.install(|| -> Res<()> {
        // N = 2^15: q_0 of 50 bits, 20 primes of 30 bits (881-bit bound: 4..=21 digits secure).
        let chain15: Vec<u32> = std::iter::once(50)
            .chain(std::iter::repeat_n(30, 20))
            .collect();
        let mut samples = Vec::new();
        measure(15, &chain15, &[4, 5, 7, 11, 21], &mut samples)?;
        if n16 {
            // N = 2^16: q_0 of 60 bits, 20 primes of 40 bits (1747-bit bound: all secure).
            let chain16: Vec<u32> = std::iter::once(60)
                .chain(std::iter::repeat_n(40, 20))
                .collect();
            measure(16, &chain16, &[1, 3, 7, 21], &mut samples)?;
        }
        // Least squares of real = ntt_ns·a + mac_ns·b over every measured rotation.
        let (mut s11, mut s12, mut s22, mut t1, mut t2) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (a, b, y) in &samples {
            s11 += a * a;
            s12 += a * b;
            s22 += b * b;
            t1 += a * y;
            t2 += b * y;
        }
        let det = s11 * s22 - s12 * s12;
        if det.abs() > 0.0 {
            let fit = KsWeights {
                ntt_ns: (t1 * s22 - t2 * s12) / det,
                mac_ns: (s11 * t2 - s12 * t1) / det,
            };
            let ratios: Vec<f64> = samples
                .iter()
                .map(|(a, b, y)| y / (fit.ntt_ns * a + fit.mac_ns * b))
                .collect();
            let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ratios.iter().copied().fold(0.0, f64::max);
            println!(
                "\nleast-squares weights over {} rotations: {fit:?}; real/fitted in {lo:.2}..{hi:.2}",
                samples.len()
            );
        }
        Ok(())
    })
}
