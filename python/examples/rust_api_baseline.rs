//! The Rust-API baseline for the Python-overhead measurement (benches/nn-peer/homefhe_py.py):
//! the same work as the Python harness — the committed MNIST CNN planned in latency mode at
//! N = 2^13 (`min_scale_bits` 24, no calibration, as `Model.plan(mode="latency", log_n=13,
//! min_scale_bits=24)`), secret-key (seeded) encryption of one image, `Engine::run`,
//! decryption — timed per image through `he-nn` directly. Prints one JSON line.
//!
//! ```text
//! cargo run --release -p homefhe --example rust_api_baseline -- [IMAGES] [WARMUP]
//! ```

use he_core::ckks::{Decryptor, Encoder};
use he_nn::data::{argmax, read_images, read_logits_json};
use he_nn::onnx::{load_onnx, ImportOptions};
use he_nn::{Engine, Mode, Plan, PlanOptions};
use std::path::PathBuf;
use std::time::Instant;

/// Encrypt, evaluate and decrypt times (ms) and the logits of one image.
type Timed = Result<(f64, f64, f64, Vec<f64>), Box<dyn std::error::Error>>;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let k: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(16);
    let warmup: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut images = read_images(&root.join("nn/data/mnist_sample.idx3"), 1.0 / 255.0, 0.0)?;
    images.truncate(k);
    let ort = read_logits_json(&root.join("nn/data/mnist_sample_logits.json"))?;
    let model = load_onnx(
        &root.join("nn/models/mnist_cnn.onnx"),
        &ImportOptions::default(),
    )?;
    let mut opts = PlanOptions::new(Mode::Latency);
    opts.log_n = Some(13);
    opts.min_scale_bits = 24;
    // The same plan as the Python benchmark's (noise_flooding=False, N = 2^13).
    opts.flooding = None;
    let plan = Plan::new(&model.network, &opts)?;
    let t = Instant::now();
    let keys = plan.generate_keys()?;
    let keygen_ms = t.elapsed().as_secs_f64() * 1e3;
    let encoder = Encoder::new(&plan.params)?;
    let decryptor = Decryptor::new(&keys.secret);
    let engine = Engine::new(&plan, keys.eval.clone())?;
    let one = |x: &[Vec<f64>]| -> Timed {
        let t0 = Instant::now();
        let ct = plan.encrypt_symmetric(&encoder, &decryptor, x)?;
        let t1 = Instant::now();
        let out = engine.run(ct)?;
        let t2 = Instant::now();
        let y = plan.decrypt(&encoder, &decryptor, &out)?;
        let t3 = Instant::now();
        let row = y.into_iter().next().unwrap_or_default();
        Ok((
            (t1 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3,
            (t3 - t2).as_secs_f64() * 1e3,
            row,
        ))
    };
    for x in images.iter().take(warmup) {
        one(std::slice::from_ref(x))?;
    }
    let (mut enc, mut ev, mut dec, mut tot) = (vec![], vec![], vec![], vec![]);
    let (mut agree, mut err) = (0usize, 0.0f64);
    for (x, o) in images.iter().zip(&ort) {
        let (a, b, c, y) = one(std::slice::from_ref(x))?;
        enc.push(a);
        ev.push(b);
        dec.push(c);
        tot.push(a + b + c);
        agree += usize::from(argmax(&y) == argmax(o));
        err = y
            .iter()
            .zip(o)
            .map(|(p, q)| (p - q).abs())
            .fold(err, f64::max);
    }
    println!(
        "{{\"lib\": \"HomE Rust API (he-nn)\", \"images\": {}, \"keygen_ms\": {keygen_ms:.1}, \"median_encrypt_ms\": {:.2}, \"median_eval_ms\": {:.2}, \"median_decrypt_ms\": {:.3}, \"median_total_ms\": {:.2}, \"agree_with_ort\": {:.4}, \"max_abs_logit_err_vs_ort\": {err:.3e}, \"params\": \"{}\"}}",
        images.len(),
        median(enc),
        median(ev),
        median(dec),
        median(tot),
        agree as f64 / images.len().max(1) as f64,
        plan.params.describe()
    );
    Ok(())
}
