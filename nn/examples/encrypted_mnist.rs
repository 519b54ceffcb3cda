//! Encrypted MNIST / Fashion-MNIST inference with the shipped ONNX CNNs.
//!
//! ```text
//! cargo run --release -p he-nn --example encrypted_mnist -- \
//!     [--dataset mnist|fashion] [--images K] [--mode throughput|latency] \
//!     [--data-dir nn/data | nn/data/full] [--log-n 13|14] [--scale-bits B] \
//!     [--secret-key-encryption] [--no-noise-flooding]
//! ```
//! Loads the model and the committed sample (or the full test split), plans, simulates,
//! generates keys, encrypts, runs, decrypts, and compares with the onnxruntime logits.

use he_core::ckks::{Decryptor, Encoder, Encryptor};
use he_nn::data::{argmax, read_idx1, read_images, read_logits_json};
use he_nn::onnx::{load_onnx, ImportOptions};
use he_nn::{Engine, Mode, Plan, PlanOptions};
use std::path::PathBuf;
use std::time::Instant;

fn vm_hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

struct Args {
    dataset: String,
    images: usize,
    mode: Mode,
    data_dir: PathBuf,
    log_n: Option<u32>,
    scale_bits: Option<u32>,
    symmetric: bool,
    no_flooding: bool,
}

fn parse() -> Result<Args, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        dataset: "mnist".into(),
        images: 64,
        mode: Mode::Throughput,
        data_dir: root.join("data"),
        log_n: None,
        scale_bits: None,
        symmetric: false,
        no_flooding: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--dataset" => a.dataset = v()?,
            "--images" => a.images = v()?.parse().map_err(|e| format!("--images: {e}"))?,
            "--mode" => {
                a.mode = match v()?.as_str() {
                    "throughput" => Mode::Throughput,
                    "latency" => Mode::Latency,
                    m => return Err(format!("unknown mode {m}")),
                }
            }
            "--data-dir" => a.data_dir = PathBuf::from(v()?),
            "--secret-key-encryption" => a.symmetric = true,
            "--no-noise-flooding" => a.no_flooding = true,
            "--log-n" => a.log_n = Some(v()?.parse().map_err(|e| format!("--log-n: {e}"))?),
            "--scale-bits" => a.scale_bits = Some(v()?.parse().map_err(|e| format!("--scale-bits: {e}"))?),
            "-h" | "--help" => return Err("usage: encrypted_mnist [--dataset mnist|fashion] [--images K] [--mode throughput|latency] [--data-dir DIR] [--log-n L] [--scale-bits B] [--secret-key-encryption] [--no-noise-flooding]".into()),
            _ => return Err(format!("unknown argument {k}")),
        }
    }
    if a.dataset != "mnist" && a.dataset != "fashion" {
        return Err(format!("unknown dataset {}", a.dataset));
    }
    Ok(a)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let a = parse()?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let ds = &a.dataset;
    let full = a.data_dir.join(format!("{ds}_test.idx3")).exists();
    let (img_f, lab_f, logit_f) = if full {
        (
            format!("{ds}_test.idx3"),
            format!("{ds}_test_labels.idx1"),
            format!("{ds}_ort_logits.json"),
        )
    } else {
        (
            format!("{ds}_sample.idx3"),
            format!("{ds}_sample_labels.idx1"),
            format!("{ds}_sample_logits.json"),
        )
    };
    let mut images = read_images(&a.data_dir.join(&img_f), 1.0 / 255.0, 0.0)?;
    let mut labels = read_idx1(&a.data_dir.join(&lab_f))?;
    let mut ort = read_logits_json(&a.data_dir.join(&logit_f))?;
    let k = a.images.min(images.len());
    images.truncate(k);
    labels.truncate(k);
    ort.truncate(k);
    println!(
        "dataset {ds}: {k} images from {}",
        a.data_dir.join(&img_f).display()
    );

    let model = load_onnx(
        &root.join(format!("models/{ds}_cnn.onnx")),
        &ImportOptions::default(),
    )?;
    for n in &model.notes {
        println!("  import {} ({}): {}", n.node, n.op, n.became);
    }
    let mut opts = PlanOptions::new(a.mode);
    opts.log_n = a.log_n;
    opts.scale_bits = a.scale_bits;
    if a.log_n == Some(13) && a.scale_bits.is_none() {
        opts.min_scale_bits = 24;
    }
    opts.calibration = images.iter().take(64).cloned().collect();
    if a.no_flooding {
        // Logits that never leave this process; N = 2^13 cannot absorb flooding.
        opts.flooding = None;
    }
    let t = Instant::now();
    let plan = Plan::new(&model.network, &opts)?;
    println!(
        "plan ({:.2} s):\n{}",
        t.elapsed().as_secs_f64(),
        plan.describe()
    );

    // Cleartext dry run with the identical plan and simulated CKKS noise.
    let t = Instant::now();
    let sim = plan.simulate(&images, Some(7))?;
    let sim_err = sim
        .iter()
        .zip(&ort)
        .flat_map(|(s, o)| s.iter().zip(o).map(|(a, b)| (a - b).abs()))
        .fold(0.0, f64::max);
    let sim_agree = sim
        .iter()
        .zip(&ort)
        .filter(|(s, o)| argmax(s) == argmax(o))
        .count();
    println!("simulation ({:.2} s): max |logit error| vs onnxruntime {sim_err:.2e} (expected encrypted error), agreement {sim_agree}/{k}", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let keys = plan.generate_keys()?;
    println!(
        "keygen: {:.2} s, evaluation keys {:.1} MiB ({} Galois keys)",
        t.elapsed().as_secs_f64(),
        keys.eval.bytes() as f64 / 1048576.0,
        plan.galois_elements.len()
    );
    let encoder = Encoder::new(&plan.params)?;
    let encryptor = Encryptor::new(&plan.params, keys.public.clone())?;
    let decryptor = Decryptor::new(&keys.secret);
    let t = Instant::now();
    let engine = Engine::new(&plan, keys.eval.clone())?;
    println!(
        "engine setup (weight encoding): {:.2} s, {:.1} MiB of weight plaintexts",
        t.elapsed().as_secs_f64(),
        engine.weight_bytes() as f64 / 1048576.0
    );

    let mut outputs: Vec<Vec<f64>> = Vec::with_capacity(k);
    let mut step_times: std::collections::BTreeMap<String, f64> = Default::default();
    let (mut t_enc, mut t_eval, mut t_dec) = (0.0, 0.0, 0.0);
    let batches: Vec<&[Vec<f64>]> = match a.mode {
        Mode::Throughput => images.chunks(plan.batch_capacity()).collect(),
        Mode::Latency => images.chunks(1).collect(),
    };
    for b in batches {
        let t = Instant::now();
        let ct = if a.symmetric {
            plan.encrypt_symmetric(&encoder, &decryptor, b)?
        } else {
            plan.encrypt(&encoder, &encryptor, b)?
        };
        t_enc += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (out, times) = engine.run_profiled(ct)?;
        t_eval += t.elapsed().as_secs_f64();
        for (name, secs) in times {
            *step_times.entry(name).or_insert(0.0) += secs;
        }
        let t = Instant::now();
        outputs.extend(plan.decrypt(&encoder, &decryptor, &out)?);
        t_dec += t.elapsed().as_secs_f64();
    }
    let err = outputs
        .iter()
        .zip(&ort)
        .flat_map(|(s, o)| s.iter().zip(o).map(|(a, b)| (a - b).abs()))
        .fold(0.0, f64::max);
    let agree = outputs
        .iter()
        .zip(&ort)
        .filter(|(s, o)| argmax(s) == argmax(o))
        .count();
    let acc_enc = outputs
        .iter()
        .zip(&labels)
        .filter(|(s, l)| argmax(s) == **l as usize)
        .count();
    let acc_ort = ort
        .iter()
        .zip(&labels)
        .filter(|(s, l)| argmax(s) == **l as usize)
        .count();
    println!(
        "results on {k} images ({:?} mode, {}):",
        a.mode,
        plan.params.describe()
    );
    println!("  accuracy encrypted {:.2} % ({acc_enc}/{k}), onnxruntime plaintext {:.2} % ({acc_ort}/{k})", 100.0 * acc_enc as f64 / k as f64, 100.0 * acc_ort as f64 / k as f64);
    println!(
        "  agreement with onnxruntime predictions {agree}/{k} ({:.2} %)",
        100.0 * agree as f64 / k as f64
    );
    println!("  max |logit error| vs onnxruntime {err:.3e}");
    println!("  time: encrypt {t_enc:.2} s, evaluate {t_eval:.2} s, decrypt {t_dec:.2} s");
    match a.mode {
        Mode::Latency => println!("  latency per image: {:.3} s evaluation, {:.3} s with encryption and decryption", t_eval / k as f64, (t_enc + t_eval + t_dec) / k as f64),
        Mode::Throughput => println!(
            "  amortized: {:.1} images/s evaluation only ({:.1} ms/image), {:.1} images/s end to end; a full batch holds {} images at the same cost",
            k as f64 / t_eval,
            1000.0 * t_eval / k as f64,
            k as f64 / (t_enc + t_eval + t_dec),
            plan.batch_capacity()
        ),
    }
    let per_step: Vec<String> = plan
        .steps
        .iter()
        .skip(1)
        .map(|s| {
            format!(
                "{} {:.2} s",
                s.name,
                step_times.get(&s.name).copied().unwrap_or(0.0)
            )
        })
        .collect();
    println!(
        "  evaluation by step (total over all batches): {}",
        per_step.join(", ")
    );
    println!("  peak memory (VmHWM) {:.0} MiB", vm_hwm_mib());
    Ok(())
}
