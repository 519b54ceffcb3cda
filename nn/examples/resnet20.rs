//! ResNet-20 (CIFAR-10 shape) planned with automatic bootstrapping, and optionally run
//! encrypted on the committed sample inputs.
//!
//! ```text
//! cargo run --release -p he-nn --example resnet20 -- [MODEL.onnx] [--run K] [--degree D] [--on-demand]
//! ```
//!
//! `MODEL.onnx` defaults to `nn/models/resnet20_w16_random.onnx` (made by
//! `nn/scripts/resnet20.py`; its `.json` sidecar holds the sample inputs and onnxruntime's
//! logits). Without `--run` the plan is printed: bootstraps, levels, diagonals, keys and
//! weight bytes. `--run K` also generates the keys and runs the first `K` samples encrypted,
//! comparing with the cleartext simulator and with onnxruntime; `--on-demand` encodes each
//! weight when its layer runs instead of holding them all (ResNet-20's 42 GiB of encoded
//! weights do not fit this machine's memory).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_core::ckks::{Decryptor, Encoder, Encryptor};
use he_nn::data::{argmax, read_samples_json, Samples};
use he_nn::onnx::{load_onnx, ImportOptions};
use he_nn::{Engine, Mode, Plan, PlanOptions};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = args
        .iter()
        .find(|a| a.ends_with(".onnx"))
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("models/resnet20_w16_random.onnx"));
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let run = flag("--run").unwrap_or(0);
    let degree = flag("--degree").unwrap_or(7);
    let Samples {
        inputs: samples,
        reference: ort,
    } = read_samples_json(&model.with_extension("json"))?;
    let t = Instant::now();
    let imported = load_onnx(
        &model,
        &ImportOptions {
            activation_degree: degree,
            ..ImportOptions::default()
        },
    )?;
    let mut opts = PlanOptions::new(Mode::Latency);
    opts.calibration = samples.clone();
    opts.flooding = None;
    let plan = Plan::new(&imported.network, &opts)?;
    println!("{}", plan.describe());
    let diagonals: usize = plan
        .steps
        .iter()
        .filter_map(|s| s.packed.as_ref().map(|p| p.diagonal_count()))
        .sum();
    println!(
        "planned in {:.1} s: {} bootstraps, depth {}, {} rotation keys, {} diagonals",
        t.elapsed().as_secs_f64(),
        plan.bootstrap_count(),
        plan.depth,
        plan.rotation_steps.len(),
        diagonals
    );
    let sim = plan.simulate(&samples, None)?;
    let agree = sim
        .iter()
        .zip(&ort)
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    println!(
        "simulator (polynomial activations, no noise) vs onnxruntime: {agree}/{} argmax agree",
        sim.len()
    );
    if run == 0 {
        return Ok(());
    }
    let t = Instant::now();
    let keys = plan.generate_keys()?;
    println!(
        "keys: {:.1} s, {:.2} GiB",
        t.elapsed().as_secs_f64(),
        keys.eval.bytes() as f64 / (1u64 << 30) as f64
    );
    let t = Instant::now();
    let engine = if args.iter().any(|a| a == "--on-demand") {
        let w = std::sync::Arc::new(he_nn::exec::EncodeOnDemand::new(&plan)?);
        Engine::with_weights(&plan, keys.eval.clone(), keys.encapsulation.clone(), w)?
    } else {
        Engine::with_encapsulation(&plan, keys.eval.clone(), keys.encapsulation.clone())?
    };
    println!(
        "engine (weights and DFT factors encoded): {:.1} s, {:.2} GiB of weights",
        t.elapsed().as_secs_f64(),
        engine.weight_bytes() as f64 / (1u64 << 30) as f64
    );
    let encoder = Encoder::new(&plan.params)?;
    let encryptor = Encryptor::new(&plan.params, keys.public.clone())?;
    let decryptor = Decryptor::new(&keys.secret);
    for (i, x) in samples.iter().take(run).enumerate() {
        let ct = plan.encrypt(&encoder, &encryptor, std::slice::from_ref(x))?;
        let t = Instant::now();
        let (out, times) = engine.run_profiled(ct)?;
        let secs = t.elapsed().as_secs_f64();
        let boot: f64 = plan
            .steps
            .iter()
            .skip(1)
            .zip(&times)
            .filter(|(s, _)| matches!(s.op, he_nn::plan::StepOp::Bootstrap { .. }))
            .map(|(_, t)| t.1)
            .sum();
        println!("  bootstraps {boot:.1} s, other steps {:.1} s", secs - boot);
        let got = plan
            .decrypt_unflooded(&encoder, &decryptor, &out)?
            .remove(0);
        let err = got
            .iter()
            .zip(&sim[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!(
            "sample {i}: {secs:.1} s, class {} (simulator {}, onnxruntime {}), max |enc - sim| = {err:.2e}",
            argmax(&got),
            argmax(&sim[i]),
            argmax(&ort[i])
        );
    }
    Ok(())
}
