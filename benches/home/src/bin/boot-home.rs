//! HomE's side of the bootstrapping peer benchmark (benches/peer/boot_run.sh): one full-slot
//! bootstrap of inputs uniform in [-1, 1] (real parts; imaginary parts zero, as OpenFHE's
//! script encodes), timed `reps` times after one warm-up, printed as one JSON line with the
//! keys benches/peer/README.md lists.
//!
//! Usage: boot-home --logn 16|12 --threads T --reps R [--no-arcsine] [--phases] [--dry]
//! (`--dry`: parameters, rotation count and key-size estimate only, no key generation.)

use he_bench::process_cpu_us;
use he_core::circuits::bootstrapping::{
    BootstrapConfig, BootstrapKeys, BootstrapPreset, Bootstrapper,
};
use he_core::ckks::{Complex64, Decryptor, Encoder, Encryptor, PrecisionStats};
use he_core::math::Prng;
use he_core::rlwe::{PublicKey, SecretKey};
use std::sync::Arc;
use std::time::Instant;

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

/// Peak resident set (VmHWM) in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let logn = arg(&args, "--logn", 16)?;
    let threads = arg(&args, "--threads", 1)?;
    let reps = arg(&args, "--reps", 3)?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    let preset = match logn {
        16 if args.iter().any(|a| a == "--no-arcsine") => BootstrapPreset::N16Levels9NoArcSine,
        16 => BootstrapPreset::N16Levels9,
        14 if args.iter().any(|a| a == "--no-arcsine") => BootstrapPreset::N16Levels9NoArcSine,
        14 => BootstrapPreset::N16Levels9,
        12 => BootstrapPreset::N12InsecureForTesting,
        other => return Err(format!("--logn {other}: presets exist for 16 and 12").into()),
    };
    let mut config = BootstrapConfig::preset(preset);
    if logn == 14 {
        // A scaled-down copy of the N = 2^16 layout (insecure at N = 2^14): for tuning only.
        config.log_n = 14;
        config.log_slots = 13;
        config.security = he_core::rlwe::Security::InsecureForTesting;
    }
    if args.iter().any(|a| a == "--degree") {
        config.eval_mod.degree = arg(&args, "--degree", 63)?;
    }
    if args.iter().any(|a| a == "--double-angle") {
        config.eval_mod.double_angle = arg(&args, "--double-angle", 3)? as u32;
    }
    if args.iter().any(|a| a == "--stc-bits") {
        config.slots_to_coeff_input_bits = arg(&args, "--stc-bits", 61)? as u32;
    }
    let params = config.parameters()?;
    let rotations = Bootstrapper::rotations(&params, &config)?;
    eprintln!(
        "[boot-home] {} | {} rotations + conjugation + relin + sparse-to-dense | depth {}",
        params.describe(),
        rotations.len(),
        config.depth()
    );
    if args.iter().any(|a| a == "--dry") {
        return Ok(());
    }
    let sk = SecretKey::generate(&params)?;
    let t = Instant::now();
    let keys = BootstrapKeys::generate(&sk, &config)?;
    let keygen_s = t.elapsed().as_secs_f64();
    let key_bytes = keys.bytes();
    let BootstrapKeys {
        eval_keys,
        encapsulation,
    } = keys;
    let t = Instant::now();
    let bs = Bootstrapper::new(&params, &config, Arc::new(eval_keys), encapsulation)?;
    let setup_s = t.elapsed().as_secs_f64();
    eprintln!(
        "[boot-home] keygen {keygen_s:.1} s, keys {:.2} GiB, DFT plaintexts {:.2} GiB (encoded in {setup_s:.1} s)",
        key_bytes as f64 / (1u64 << 30) as f64,
        bs.plaintext_bytes() as f64 / (1u64 << 30) as f64
    );
    let ecd = Encoder::new(&params)?;
    let enc = Encryptor::new(&params, PublicKey::generate(&sk)?)?;
    let dec = Decryptor::new(&sk);
    let mut prng = Prng::from_os()?;
    let z: Vec<Complex64> = (0..params.slots())
        .map(|_| Complex64::new(prng.next_u64() as f64 / u64::MAX as f64 * 2.0 - 1.0, 0.0))
        .collect();
    let ct = enc.encrypt(&ecd.encode_complex(&z, 0, params.default_scale())?)?;
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    let mut out = bs.bootstrap(&ct)?; // warm-up
    for _ in 0..reps.max(1) {
        let (t, c) = (Instant::now(), process_cpu_us());
        out = bs.bootstrap(&ct)?;
        times.push(t.elapsed().as_secs_f64());
        cpu.push((process_cpu_us() - c) / 1e6);
    }
    cpu.sort_by(|a, b| a.total_cmp(b));
    let cpu_median = cpu[cpu.len() / 2];
    if args.iter().any(|a| a == "--micro") {
        // CPU seconds of the building blocks at the levels bootstrapping uses them.
        let ev = bs.evaluator();
        let time =
            |what: &str, f: &mut dyn FnMut() -> he_core::Result<()>| -> he_core::Result<()> {
                let t = process_cpu_us();
                f()?;
                eprintln!("[micro] {what}: {:.1} ms", (process_cpu_us() - t) / 1e3);
                Ok(())
            };
        let top = params.max_level();
        let x = enc.encrypt(&ecd.encode_complex(&z, top, params.default_scale())?)?;
        let x20 = {
            let mut y = x.clone();
            ev.drop_to_level(&mut y, 20)?;
            y
        };
        {
            use he_core::rlwe::keyswitch::{decompose, key_switch_decomposed_qp};
            let c1 = &x.parts()[1];
            let g = he_core::rlwe::galois_element_for_rotation(params.degree(), 1);
            let key = he_core::rlwe::KeyGenerator::new(&sk).galois_key(g)?;
            let rq = params.ring_q();
            let perm = rq.automorphism_eval_permutation(g)?;
            time("  INTT of c1 (top)", &mut || {
                rq.to_coeff(c1.clone()).map(|_| ())
            })?;
            time("  ModUp (decompose, top)", &mut || {
                decompose(&params, c1).map(|_| ())
            })?;
            let dec = decompose(&params, c1)?;
            time("  inner product, no perm (top)", &mut || {
                key_switch_decomposed_qp(&params, &dec, &key, None).map(|_| ())
            })?;
            time("  inner product, perm (top)", &mut || {
                key_switch_decomposed_qp(&params, &dec, &key, Some(&perm)).map(|_| ())
            })?;
            let [a0, _] = key_switch_decomposed_qp(&params, &dec, &key, None)?;
            time("  ModDown one poly (top)", &mut || {
                params.key_switch_basis().mod_down(a0.clone()).map(|_| ())
            })?;
            time("  NTT one poly (top, all limbs)", &mut || {
                rq.to_eval(rq.to_coeff(c1.clone())?).map(|_| ())
            })?;
        }
        time("rotate at top level", &mut || ev.rotate(&x, 1).map(|_| ()))?;
        time("rotate at level 20", &mut || ev.rotate(&x20, 1).map(|_| ()))?;
        time("mul_relin at level 20", &mut || {
            ev.mul_relin(&x20, &x20).map(|_| ())
        })?;
        time("rescale at level 20", &mut || ev.rescale(&x20).map(|_| ()))?;
        time("hoisted 16 rotations at top", &mut || {
            ev.rotate_hoisted(&x, &(1..=16).collect::<Vec<i64>>())
                .map(|_| ())
        })?;
        let (raised, ratio) = bs.mod_raise_ciphertext(&ct)?;
        time("CoeffToSlot", &mut || bs.coeff_to_slot(&raised).map(|_| ()))?;
        let y = bs.coeff_to_slot(&raised)?;
        time("EvalMod (both halves)", &mut || {
            bs.eval_mod_split(&y, ratio).map(|_| ())
        })?;
        let mut yy = ev.add(&y, &y)?;
        ev.set_scale(&mut yy, y.scale())?;
        time("one EvalMod", &mut || {
            bs.eval_mod()
                .evaluate(ev, &yy, ratio / (2.0 * std::f64::consts::PI), 2f64.powi(61))
                .map(|_| ())
        })?;
    }
    if args.iter().any(|a| a == "--phases") {
        // Process CPU time: with one thread, robust to other processes on the machine.
        let t = process_cpu_us();
        let (raised, ratio) = bs.mod_raise_ciphertext(&ct)?;
        let t1 = (process_cpu_us() - t) / 1e6;
        let y = bs.coeff_to_slot(&raised)?;
        let t2 = (process_cpu_us() - t) / 1e6;
        let u = bs.eval_mod_split(&y, ratio)?;
        let t3 = (process_cpu_us() - t) / 1e6;
        let _ = bs.slot_to_coeff(&u)?;
        let t4 = (process_cpu_us() - t) / 1e6;
        eprintln!(
            "[boot-home] phases (CPU s): ModRaise {t1:.2}, CoeffToSlot {:.2}, EvalMod {:.2}, SlotToCoeff {:.2}",
            t2 - t1,
            t3 - t2,
            t4 - t3
        );
    }
    let got = ecd.decode_complex(&dec.decrypt(&out)?)?;
    // Lattigo's statistics: per slot, the real part's error (the input is real).
    let re_want: Vec<f64> = z.iter().map(|c| c.re).collect();
    let re_got: Vec<f64> = got.iter().map(|c| c.re).collect();
    let s = PrecisionStats::compare(&re_want, &re_got);
    let sc = PrecisionStats::compare_complex(&z, &got);
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let median = sorted[sorted.len() / 2];
    let all: Vec<String> = times.iter().map(|t| format!("{t:.3}")).collect();
    println!(
        "{{\"peer\": \"{}\", \"version\": \"{}\", \"logn\": {logn}, \"slots\": {}, \"threads\": {threads}, \"secret\": \"uniform\", \"encapsulation_h\": {}, \"levels_after\": {}, \"boot_s_median\": {median:.3}, \"boot_s_all\": [{}], \"boot_cpu_s_median\": {cpu_median:.3}, \"keygen_s\": {:.2}, \"keygen_only_s\": {keygen_s:.2}, \"setup_s\": {setup_s:.2}, \"key_bytes\": {key_bytes}, \"plaintext_bytes\": {}, \"peak_rss_mib\": {:.0}, \"prec_min_bits\": {:.2}, \"prec_mean_bits\": {:.2}, \"prec_mean_slot_bits\": {:.2}, \"prec_median_bits\": {:.2}, \"max_abs_error\": {:.3e}, \"prec_complex_mean_bits\": {:.2}, \"log_qp\": {:.1}, \"dnum\": {}}}",
        if config.eval_mod.arcsine == he_core::circuits::bootstrapping::ArcSine::None {
            "home-noarcsine"
        } else {
            "home"
        },
        env!("CARGO_PKG_VERSION"),
        params.slots(),
        config.sparse_secret.unwrap_or(0),
        out.level(),
        all.join(", "),
        keygen_s + setup_s,
        bs.plaintext_bytes(),
        peak_rss_mib(),
        s.min_bits,
        s.mean_error_bits,
        s.mean_bits,
        s.median_bits,
        s.max_abs_error,
        sc.mean_error_bits,
        params.log_qp(),
        params.dnum()
    );
    Ok(())
}
