//! ResNet-20 (CIFAR-10 shape) planned with automatic bootstrapping, and optionally run
//! encrypted on the committed sample inputs.
//!
//! ```text
//! cargo run --release -p he-nn --example resnet20 -- [MODEL.onnx] [--run K] [--degree D]
//!     [--on-demand] [--store DIR [--budget-mib M] [--verify-first-map] [--keep-page-cache]
//!     [--spill-mib S]] [--part-mib P]
//! ```
//!
//! `MODEL.onnx` defaults to `nn/models/resnet20_w16_random.onnx` (made by
//! `nn/scripts/resnet20.py`; its `.json` sidecar holds the sample inputs and onnxruntime's
//! logits). Without `--run` the plan is printed: bootstraps, levels, diagonals, keys and
//! weight bytes. `--run K` also generates the keys and runs the first `K` samples encrypted,
//! comparing with the cleartext simulator and with onnxruntime; `--on-demand` encodes each
//! weight part when its layer runs instead of holding them all (ResNet-20's 42 GiB of encoded
//! weights do not fit this machine's memory); `--store DIR` writes the evaluation keys and the
//! encoded weights into a new pmem-store at `DIR` and serves both from it under a DRAM budget
//! of `M` MiB (default a quarter of what the store holds; with `--on-demand` only the keys
//! go to the store; `--verify-first-map` checks each object's checksum the first time this
//! process maps it instead of every time; `--keep-page-cache` leaves evicted objects in the
//! kernel's page cache, which the store otherwise drops so that its DRAM footprint stays near
//! the budget; `--spill-mib S` parks the activations held between steps beyond `S` MiB in a
//! second store, `DIR.activations`). Weight parts hold at most `P` MiB
//! of diagonals (default 256). The peak memory of the runs (VmHWM, reset after setup) and of
//! the whole process are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_core::ckks::{Decryptor, Encoder, Encryptor};
use he_core::rlwe::{EvalKeyProvider, KeyKind};
use he_nn::data::{argmax, read_samples_json, Samples};
use he_nn::exec::EncodedWeight;
use he_nn::onnx::{load_onnx, ImportOptions};
use he_nn::{Engine, Mode, Plan, PlanOptions, WeightsFrom};
use pmem_store::{PmemKeyStore, PmemSpill, PmemWeightStore, Store, StoreConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// VmHWM of this process, MiB.
fn vm_hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// Resets VmHWM to the current resident size (Linux `clear_refs` 5).
fn reset_vm_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Fills a new store at `dir` with the evaluation keys, their level-limited variants
/// ([`Plan::generate_key_variants`]) and the plan's encoded weights, one object at a time;
/// returns the bytes stored and, of them, the variants' bytes.
fn fill_store(
    dir: &std::path::Path,
    plan: &Plan,
    keys: &he_nn::exec::Keys,
    weights: bool,
) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let _ = std::fs::remove_dir_all(dir);
    let store = Arc::new(Store::create(
        dir,
        StoreConfig::new(Some(plan.params.hash())),
    )?);
    let ks = PmemKeyStore::new(Arc::clone(&store), "keys/");
    let set = &keys.eval;
    ks.insert(set.relinearization_key()?.as_ref())?;
    for g in set.galois_elements() {
        ks.insert(set.galois_key(g)?.as_ref())?;
    }
    if let Ok(k) = set.switching_key(KeyKind::SparseToDense) {
        ks.insert(&k)?;
    }
    let mut variant_bytes = 0u64;
    for k in plan.generate_key_variants(&keys.secret)? {
        ks.insert_level_variant(&k)?;
        variant_bytes += k.shape().bytes() as u64;
    }
    let total = |s: &Store| s.list().iter().map(|o| o.len).sum::<u64>();
    if !weights {
        return Ok((total(&store), variant_bytes));
    }
    let ws = PmemWeightStore::new(Arc::clone(&store), &plan.params, "w/")?;
    let encoder = Encoder::new(&plan.params)?;
    plan.encode_weights(&encoder, &mut |name, obj| {
        match obj {
            EncodedWeight::Transform(t) => ws.insert_transform(name, &t),
            EncodedWeight::Plaintext(p) => ws.insert_plaintext(name, &p),
        }
        .map_err(|e| he_nn::NnError::Invalid(e.to_string()))
    })?;
    Ok((total(&store), variant_bytes))
}

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
    if let Some(p) = flag("--part-mib") {
        opts.weight_part_bytes = p << 20;
    }
    let plan = Plan::new(&imported.network, &opts)?;
    drop(imported);
    println!("{}", plan.describe());
    let diagonals: usize = plan
        .steps
        .iter()
        .filter_map(|s| s.packed.as_ref().map(|p| p.diagonal_count()))
        .sum();
    let most_parts = (0..plan.steps.len())
        .map(|i| plan.weight_parts(i).len())
        .max()
        .unwrap_or(0);
    println!(
        "planned in {:.1} s: {} bootstraps, depth {}, {} rotation keys, {} diagonals, at most {} \
         weight parts per layer",
        t.elapsed().as_secs_f64(),
        plan.bootstrap_count(),
        plan.depth,
        plan.rotation_steps.len(),
        diagonals,
        most_parts
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
    let mut keys = plan.generate_keys()?;
    println!(
        "keys: {:.1} s, {:.2} GiB",
        t.elapsed().as_secs_f64(),
        keys.eval.bytes() as f64 / (1u64 << 30) as f64
    );
    let store_dir = args
        .iter()
        .position(|a| a == "--store")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let t = Instant::now();
    let on_demand = args.iter().any(|a| a == "--on-demand");
    let mut store_budget = 0u64;
    let mut served: Option<Arc<Store>> = None;
    let engine = if let Some(dir) = &store_dir {
        let (stored, variants) = fill_store(dir, &plan, &keys, !on_demand)?;
        // The server holds no evaluation keys of its own from here: the store serves them.
        keys.eval = Arc::new(he_core::rlwe::EvalKeySet::new());
        // Checksums on every map (the store's default), or once per object per process.
        let verify = if args.iter().any(|a| a == "--verify-first-map") {
            pmem_store::Verify::FirstMap
        } else {
            pmem_store::Verify::EveryMap
        };
        // A quarter of the keys and weights an all-DRAM engine holds (the variants, which
        // only the store holds, not counted).
        let budget = flag("--budget-mib").map_or((stored - variants) / 4, |m| (m as u64) << 20);
        store_budget = budget;
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        println!(
            "store {}: {:.2} GiB of keys and weights (and {:.2} GiB of level-limited key \
             variants) written in {:.1} s; DRAM budget {:.2} GiB",
            dir.display(),
            gib(stored - variants),
            gib(variants),
            t.elapsed().as_secs_f64(),
            gib(budget)
        );
        let store = Arc::new(Store::open(
            dir,
            StoreConfig::new(Some(plan.params.hash()))
                .budget(budget)
                .verify(verify)
                .drop_page_cache(!args.iter().any(|a| a == "--keep-page-cache"))
                .read_only(true),
        )?);
        served = Some(Arc::clone(&store));
        let k = Arc::new(PmemKeyStore::new(Arc::clone(&store), "keys/"));
        let w: Arc<dyn he_core::circuits::weights::WeightProvider> = if on_demand {
            Arc::new(he_nn::exec::EncodeOnDemand::new(&plan)?)
        } else {
            Arc::new(PmemWeightStore::new(
                Arc::clone(&store),
                &plan.params,
                "w/",
            )?)
        };
        let engine = Engine::with_weights(&plan, k, keys.encapsulation.clone(), w)?;
        match flag("--spill-mib") {
            Some(m) => {
                // Activations beyond M MiB go to a second store next to it (this one is
                // opened read-only).
                let act_dir = dir.with_extension("activations");
                let _ = std::fs::remove_dir_all(&act_dir);
                let act = Arc::new(Store::create(
                    &act_dir,
                    StoreConfig::new(Some(plan.params.hash())),
                )?);
                println!("activations beyond {m} MiB spill to {}", act_dir.display());
                engine.with_activation_spill(Arc::new(PmemSpill::new(act, "act/")), m << 20)
            }
            None => engine,
        }
    } else if on_demand {
        let w = Arc::new(he_nn::exec::EncodeOnDemand::new(&plan)?);
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
    let setup_hwm = vm_hwm_mib();
    reset_vm_hwm();
    let mut total = 0.0;
    let mut agree = (0, 0);
    for (i, x) in samples.iter().take(run).enumerate() {
        let ct = plan.encrypt(&encoder, &encryptor, std::slice::from_ref(x))?;
        let before = served.as_ref().map(|s| s.stats());
        let t = Instant::now();
        let (out, times) = engine.run_profiled(ct)?;
        let secs = t.elapsed().as_secs_f64();
        if let (Some(s), Some(b)) = (&served, &before) {
            let a = s.stats();
            println!(
                "  store: {} gets hit, {} missed, {} objects prefetched, {} evicted",
                a.hits - b.hits,
                a.misses - b.misses,
                a.prefetched - b.prefetched,
                a.evictions - b.evictions
            );
        }
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
        total += secs;
        agree.0 += usize::from(argmax(&got) == argmax(&ort[i]));
        agree.1 += usize::from(argmax(&got) == argmax(&sim[i]));
    }
    let n = run.min(samples.len());
    let estimate = match (&store_dir, on_demand) {
        (Some(_), on_demand) => plan.memory.total_with_store(
            usize::try_from(store_budget).unwrap_or(usize::MAX),
            if on_demand {
                WeightsFrom::OnDemand
            } else {
                WeightsFrom::Store
            },
        ),
        (None, true) => plan.memory.total_served(),
        (None, false) => plan.memory.total(),
    } as f64
        / (1u64 << 20) as f64;
    println!(
        "memory estimate of this configuration {estimate:.0} MiB; VmHWM of the runs / estimate = {:.2}",
        vm_hwm_mib() / estimate
    );
    println!(
        "{n} samples: {:.1} s per image; class = onnxruntime {}/{n}, = simulator {}/{n}; peak \
         memory of the runs (VmHWM after setup) {:.0} MiB, of setup {setup_hwm:.0} MiB",
        total / n.max(1) as f64,
        agree.0,
        agree.1,
        vm_hwm_mib()
    );
    if let Some(stats) = engine.spill_stats() {
        println!(
            "activation spill: {} values ({:.1} MiB) parked and {} read back",
            stats.spills,
            stats.bytes as f64 / (1u64 << 20) as f64,
            stats.restores
        );
    }
    if let Some(dir) = &store_dir {
        drop(engine);
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(dir.with_extension("activations"));
    }
    Ok(())
}
