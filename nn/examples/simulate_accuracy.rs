//! Test-set accuracy of the cleartext simulator with its CKKS noise model, against the
//! plaintext network.
//!
//! ```text
//! cargo run --release -p he-nn --example simulate_accuracy -- [MODEL.onnx] [--limit K]
//!     [--skip S] [--calibration C] [--degree D] [--seed SEED] [--every E] [--no-plan]
//! ```
//!
//! `MODEL.onnx` defaults to `nn/models/resnet20_fashion.onnx`. The model is planned as its
//! encrypted run would be: latency mode, `Bootstrapping::Auto` (which picks the secure
//! `N = 2^16` bootstrapping parameters for a ResNet-20), ReLU replaced by degree-`D`
//! (default 127: the importer's default 7 is far too coarse for the trained ResNet-20, see
//! `nn/models/README.md`) Chebyshev interpolants on intervals measured on `C` (default 256)
//! calibration images, flooding off as in `examples/resnet20.rs`. The plan's steps (levels, scales,
//! bootstraps, approximations and their bounds) are printed unless `--no-plan`.
//!
//! Data (written by `nn/scripts/train_resnet20.py`, git-ignored, see `nn/data/README.md`):
//! `nn/data/full/fashion32_test.idx3` and `_labels.idx1` (the padded Fashion-MNIST test
//! split), `fashion32_ort_pred.idx1` (onnxruntime's class per test image) and
//! `fashion32_calib.idx3` (the calibration images, from the training split). Inputs are
//! `pixel/255`.
//!
//! For each of the test images `S..S+K` (all by default) it runs the exact `f64` forward pass
//! of the imported network (ReLU exact) and the simulator with noise (`Plan::simulate`, one
//! image per call, noise seed `SEED + index`), images in parallel over rayon's threads
//! (`RAYON_NUM_THREADS`). Every `E` images (default 100) and at the end it prints the counts
//! so far: onnxruntime's, the exact network's and the simulator's accuracy, the simulator's
//! accuracy minus onnxruntime's in percentage points, and the simulator's class agreement
//! with both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_nn::data::{argmax, read_idx1, read_images};
use he_nn::onnx::{load_onnx, ImportOptions};
use he_nn::{Mode, Plan, PlanOptions};
use rayon::prelude::*;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Default, Clone, Copy)]
struct Counts {
    n: usize,
    ort: usize,
    exact: usize,
    sim: usize,
    sim_ort: usize,
    sim_exact: usize,
    exact_ort: usize,
}

impl Counts {
    fn line(&self, secs: f64) -> String {
        let pct = |c: usize| 100.0 * c as f64 / self.n.max(1) as f64;
        format!(
            "{} images: accuracy onnxruntime {:.2} %, exact network {:.2} %, simulator {:.2} % \
             (simulator - onnxruntime {:+.2} pp); simulator class = onnxruntime's {:.2} %, \
             = exact network's {:.2} %; exact = onnxruntime {:.2} %; {:.1} s ({:.2} s per image)",
            self.n,
            pct(self.ort),
            pct(self.exact),
            pct(self.sim),
            pct(self.sim) - pct(self.ort),
            pct(self.sim_ort),
            pct(self.sim_exact),
            pct(self.exact_ort),
            secs,
            secs / self.n.max(1) as f64
        )
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = args
        .iter()
        .find(|a| a.ends_with(".onnx"))
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("models/resnet20_fashion.onnx"));
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let degree = flag("--degree").unwrap_or(127);
    let n_calib = flag("--calibration").unwrap_or(256);
    let seed = flag("--seed").unwrap_or(1) as u64;
    let every = flag("--every").unwrap_or(100).max(1);
    let skip = flag("--skip").unwrap_or(0);
    let full = root.join("data/full");
    let scale = 1.0 / 255.0;
    let test = read_images(&full.join("fashion32_test.idx3"), scale, 0.0)?;
    let labels = read_idx1(&full.join("fashion32_test_labels.idx1"))?;
    let ort = read_idx1(&full.join("fashion32_ort_pred.idx1"))?;
    let calib = read_images(&full.join("fashion32_calib.idx3"), scale, 0.0)?;
    let limit = flag("--limit").unwrap_or(test.len());
    let end = (skip + limit).min(test.len());
    assert!(
        labels.len() == test.len() && ort.len() == test.len(),
        "test images, labels and onnxruntime predictions differ in count"
    );

    let t = Instant::now();
    let imported = load_onnx(
        &model,
        &ImportOptions {
            activation_degree: degree,
            ..ImportOptions::default()
        },
    )?;
    let mut opts = PlanOptions::new(Mode::Latency);
    opts.calibration = calib.into_iter().take(n_calib).collect();
    opts.flooding = None;
    let plan = Plan::new(&imported.network, &opts)?;
    if !args.iter().any(|a| a == "--no-plan") {
        println!("{}", plan.describe());
    }
    println!(
        "{}: planned in {:.1} s on {} calibration images: {} bootstraps, depth {}, ReLU degree {degree}; \
         simulating test images {skip}..{end} with noise (seed {seed} + index), {} threads",
        model.display(),
        t.elapsed().as_secs_f64(),
        opts.calibration.len(),
        plan.bootstrap_count(),
        plan.depth,
        rayon::current_num_threads()
    );

    let t = Instant::now();
    let mut c = Counts::default();
    let mut start = skip;
    while start < end {
        let stop = (start + every).min(end);
        let chunk: Vec<(usize, usize, usize)> = (start..stop)
            .into_par_iter()
            .map(|i| {
                let x = &test[i];
                let exact = argmax(&imported.network.forward(x).expect("exact forward"));
                let sim = plan
                    .simulate(std::slice::from_ref(x), Some(seed + i as u64))
                    .expect("simulation");
                (i, exact, argmax(&sim[0]))
            })
            .collect();
        for (i, exact, sim) in chunk {
            let (label, o) = (labels[i] as usize, ort[i] as usize);
            c.n += 1;
            c.ort += usize::from(o == label);
            c.exact += usize::from(exact == label);
            c.sim += usize::from(sim == label);
            c.sim_ort += usize::from(sim == o);
            c.sim_exact += usize::from(sim == exact);
            c.exact_ort += usize::from(exact == o);
        }
        println!("{}", c.line(t.elapsed().as_secs_f64()));
        std::io::stdout().flush()?;
        start = stop;
    }
    println!("final: {}", c.line(t.elapsed().as_secs_f64()));
    Ok(())
}
