//! A ResNet end to end (nn/tests/data/resnet8_w2.onnx: ResNet-8, the ResNet-20 graph with one
//! basic block per stage, width 2, 3x8x8 inputs, random weights, made by
//! nn/scripts/resnet20.py): imported from ONNX (BatchNormalization folded, the pooling and the
//! classifier fused), stride-2 layers in multiplexed layouts, bootstraps placed by the
//! planner (N = 2^12, insecure test parameters with 5 levels after each bootstrap), run
//! encrypted: the outputs agree with the cleartext simulator and the classes with
//! onnxruntime's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_core::circuits::bootstrapping::{BootstrapConfig, BootstrapPreset};
use he_core::ckks::{Decryptor, Encoder, Encryptor};
use he_nn::data::{argmax, read_samples_json, Samples};
use he_nn::onnx::{load_onnx, ImportOptions};
use he_nn::plan::{Bootstrapping, StepOp};
use he_nn::{Engine, Mode, Plan, PlanOptions};
use std::path::PathBuf;

#[test]
fn resnet8_runs_encrypted_with_bootstraps_and_agrees() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let Samples {
        inputs: samples,
        reference: ort,
    } = read_samples_json(&root.join("resnet8_w2.json")).unwrap();
    let m = load_onnx(&root.join("resnet8_w2.onnx"), &ImportOptions::default()).unwrap();
    // The classifier absorbed the global average pooling.
    assert!(
        m.notes
            .iter()
            .any(|n| n.op == "Gemm" && n.became.contains("fused")),
        "{:#?}",
        m.notes
    );
    let mut config = BootstrapConfig::preset(BootstrapPreset::N12InsecureForTesting);
    config.residual_bits = vec![40; 5];
    let mut opts = PlanOptions::new(Mode::Latency);
    opts.bootstrapping = Bootstrapping::With(config);
    opts.flooding = None;
    opts.calibration = samples.clone();
    let plan = Plan::new(&m.network, &opts).unwrap();
    println!("{}", plan.describe());
    assert!(plan.bootstrap_count() >= 4, "{}", plan.bootstrap_count());
    // Both stride-2 convolutions (and their shortcuts) keep the input grid: gap 2, then 4.
    let gaps: Vec<usize> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.op, StepOp::Linear(_)))
        .map(|s| s.layout.gap())
        .collect();
    assert!(gaps.contains(&2) && gaps.contains(&4), "{gaps:?}");
    let sim = plan.simulate(&samples, None).unwrap();
    let sim_agree = sim
        .iter()
        .zip(&ort)
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    println!(
        "simulator vs onnxruntime: {sim_agree}/{} classes agree",
        sim.len()
    );

    let keys = plan.generate_keys().unwrap();
    let engine =
        Engine::with_encapsulation(&plan, keys.eval.clone(), keys.encapsulation.clone()).unwrap();
    let encoder = Encoder::new(&plan.params).unwrap();
    let encryptor = Encryptor::new(&plan.params, keys.public.clone()).unwrap();
    let decryptor = Decryptor::new(&keys.secret);
    for (i, x) in samples.iter().take(2).enumerate() {
        let ct = plan
            .encrypt(&encoder, &encryptor, std::slice::from_ref(x))
            .unwrap();
        let t = std::time::Instant::now();
        let out = engine.run(ct).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let got = plan
            .decrypt_unflooded(&encoder, &decryptor, &out)
            .unwrap()
            .remove(0);
        let range = sim[i].iter().fold(1.0f64, |a, v| a.max(v.abs()));
        let err = got
            .iter()
            .zip(&sim[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!(
            "sample {i}: {secs:.1} s, {} bootstraps, |encrypted - simulated| = 2^{:.1} (range {range:.2}), class {} (simulator {}, onnxruntime {})",
            plan.bootstrap_count(),
            err.log2(),
            argmax(&got),
            argmax(&sim[i]),
            argmax(&ort[i])
        );
        assert!(
            err < range * 2f64.powi(-10),
            "sample {i}: error 2^{:.1}",
            err.log2()
        );
        assert_eq!(argmax(&got), argmax(&sim[i]), "sample {i}");
        if argmax(&sim[i]) == argmax(&ort[i]) {
            assert_eq!(argmax(&got), argmax(&ort[i]));
        }
    }
    // The planner's memory estimate against the process's peak resident set: within 10 %.
    if let Some(hwm) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
    {
        let est = plan.memory.total() as f64 / (1u64 << 20) as f64;
        println!(
            "memory: estimate {est:.0} MiB, VmHWM {:.0} MiB (estimate / measured {:.2})",
            hwm / 1024.0,
            est * 1024.0 / hwm
        );
        let ratio = est * 1024.0 / hwm;
        assert!(
            (0.9..=1.1).contains(&ratio),
            "memory estimate {est:.0} MiB is {ratio:.2} of VmHWM"
        );
    }
}
