//! The subcommands.

use crate::crypto::{
    chunk_bytes, decode_outputs, encrypt_rows, infer_chunk, load_chunk_ciphertexts,
};
use crate::error::{fail, io_ctx, Context, Result};
use crate::files::{
    decode_chunk, hex64, is_chunk, peak_rss_bytes, read, remove_stale_temps, write_atomic,
    ChunkHeader, ChunkKind, StagedDir,
};
use crate::input::{argmax, encode_predictions, read_inputs, read_labels, read_reference_logits};
use crate::meta::{
    file_xxh3, load_model, mode_name, parse_mode, plan_for_keys, plan_new, result_file,
    write_server_store, ChunkEntry, KeyInfo, Manifest, PlanChoice, ServerKeys, KEY_PREFIX,
    MANIFEST, SECRET_KEY_FILE, SERVER_DIR,
};
use crate::{Cli, Cmd, PlanArgs};
use he_core::ckks::{Ciphertext, Decryptor, Encoder, Encryptor, Evaluator};
use he_core::rlwe::{EvalKeySet, KeyGenerator, Parameters, PublicKey, SecretKey};
use he_core::serialize::{open, secret_key_from_bytes, secret_key_to_bytes, ObjectType};
use he_nn::plan::StepOp;
use he_nn::{Engine, Mode, Plan};
use indicatif::{ProgressBar, ProgressStyle};
use pmem_store::PmemKeyStore;
use rayon::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};

/// Text output unless `--json`.
struct Out {
    json: bool,
}

impl Out {
    fn line(&self, s: impl AsRef<str>) {
        if !self.json {
            // A closed pipe (`home inspect ... | head`) is not an error worth a panic.
            use std::io::Write;
            let _ = writeln!(std::io::stdout().lock(), "{}", s.as_ref());
        }
    }
    /// A progress bar on stderr (hidden with --json and when stderr is not a terminal).
    fn bar(&self, len: u64, msg: &str) -> ProgressBar {
        if self.json {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new(len);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}",
        ) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.set_message(msg.to_string());
        pb
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

fn set_threads(threads: Option<usize>) -> Result<usize> {
    let t = threads.or_else(|| {
        std::env::var("SLURM_CPUS_PER_TASK")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(t) = t {
        if t == 0 {
            return fail("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .ctx("setting up the thread pool")?;
    }
    Ok(rayon::current_num_threads())
}

/// Runs the command; returns the JSON report.
pub fn dispatch(cli: Cli) -> Result<Value> {
    let out = Out { json: cli.json };
    let threads = set_threads(cli.threads)?;
    info!(threads, "thread pool");
    match cli.cmd {
        Cmd::Plan {
            model,
            plan,
            no_time_estimate,
        } => cmd_plan(&out, &model, &plan, !no_time_estimate),
        Cmd::Keygen {
            model,
            out: dir,
            plan,
        } => cmd_keygen(&out, &model, &dir, &plan),
        Cmd::Encrypt {
            keys,
            input,
            out: dir,
            batch_size,
            limit,
            symmetric,
        } => cmd_encrypt(&out, &keys, &input, &dir, batch_size, limit, symmetric),
        Cmd::Infer {
            model,
            keys,
            input,
            out: dir,
            shard,
            gpu,
            key_budget_mib,
        } => cmd_infer(
            &out,
            &InferArgs {
                model,
                keys,
                input,
                out: dir,
                shard,
                gpu,
                key_budget_mib,
                threads,
            },
        ),
        Cmd::Decrypt {
            keys,
            input,
            out: dir,
            labels,
            no_noise_flooding,
        } => cmd_decrypt(
            &out,
            &keys,
            &input,
            &dir,
            labels.as_deref(),
            if no_noise_flooding {
                NoiseFlooding::Off
            } else {
                NoiseFlooding::On
            },
        ),
        Cmd::Inspect { file } => cmd_inspect(&out, &file),
        Cmd::Run {
            model,
            input,
            labels,
            reference,
            limit,
            out: dest,
            plan,
        } => cmd_run(
            &out,
            &model,
            &input,
            labels.as_deref(),
            reference.as_deref(),
            limit,
            dest.as_deref(),
            &plan,
        ),
    }
}

/// `x = raw * scale + shift` for integer inputs: flags, else the model's JSON sidecar, else
/// `1/255, 0`.
fn preprocessing(model: &Path, a: &PlanArgs) -> (f64, f64) {
    let side: Option<Value> = std::fs::read(model.with_extension("json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let get = |k: &str| side.as_ref().and_then(|v| v.get(k)).and_then(Value::as_f64);
    (
        a.input_scale
            .or_else(|| get("input_scale"))
            .unwrap_or(1.0 / 255.0),
        a.input_shift.or_else(|| get("input_shift")).unwrap_or(0.0),
    )
}

fn choice(model: &Path, a: &PlanArgs, input_len: usize) -> Result<PlanChoice> {
    let (scale, shift) = preprocessing(model, a);
    let calibration = match &a.calibrate {
        Some(p) => {
            let mut rows = read_inputs(p, input_len, scale, shift)?.rows;
            rows.truncate(64);
            rows
        }
        None => Vec::new(),
    };
    Ok(PlanChoice {
        mode: parse_mode(&a.mode)?,
        log_n: a.log_n,
        scale_bits: a.scale_bits,
        dnum: a.dnum,
        calibration,
        flooding: (!a.no_noise_flooding).then(he_core::ckks::FloodingConfig::default),
    })
}

fn import_only(a: &PlanArgs) -> he_nn::onnx::ImportOptions {
    he_nn::onnx::ImportOptions {
        activation_degree: a.activation_degree,
        activation_bound: a.activation_bound,
    }
}

fn plan_json(plan: &Plan) -> Value {
    let lit = plan.params.literal();
    json!({
        "mode": mode_name(plan.mode),
        "parameters": plan.params.describe(),
        "params_hash": hex64(plan.params.hash()),
        "log_n": lit.log_n,
        "log_q": lit.log_q,
        "log_p": lit.log_p,
        "dnum": plan.params.dnum(),
        "log_qp": plan.params.log_qp(),
        "depth": plan.depth,
        "top_level": plan.top_level,
        "batch_capacity": plan.batch_capacity(),
        "input_len": plan.input_len(),
        "output_len": plan.output_len(),
        "relinearization": plan.needs_relinearization(),
        "rotation_steps": plan.rotation_steps,
        "galois_elements": plan.galois_elements,
        "memory_bytes": {
            "ciphertexts": plan.memory.ciphertexts,
            "keys": plan.memory.keys,
            "plaintexts": plan.memory.plaintexts,
            "total": plan.memory.total(),
        },
        "steps": plan.steps.iter().map(|s| json!({
            "name": s.name, "len": s.len, "level": s.level,
            "scale_log2": plan.scales[s.level].log2(),
        })).collect::<Vec<_>>(),
        "approximations": plan.approximations,
    })
}

/// Times one operation of each kind at the top level and sums them over the plan's steps
/// (per batch): a rough estimate of the evaluation time, seconds per step.
fn time_estimate(plan: &Plan) -> Result<Vec<(String, f64)>> {
    let params = &plan.params;
    let sk = SecretKey::generate(params).ctx("estimate")?;
    let rot = plan.mode == Mode::Latency;
    let keys =
        EvalKeySet::generate(&sk, true, if rot { &[1] } else { &[] }, false).ctx("estimate")?;
    let eval = Evaluator::with_keys(params, Arc::new(keys)).ctx("estimate")?;
    let enc = Encoder::new(params).ctx("estimate")?;
    let top = plan.top_level;
    let v = vec![0.5; params.slots()];
    let pt = enc
        .encode(&v, top, params.default_scale())
        .ctx("estimate")?;
    let ct = Decryptor::new(&sk).encrypt_symmetric(&pt).ctx("estimate")?;
    let time = |f: &dyn Fn() -> he_core::Result<()>| -> Result<f64> {
        let reps = 3;
        let t = Instant::now();
        for _ in 0..reps {
            f().ctx("estimate")?;
        }
        Ok(t.elapsed().as_secs_f64() / reps as f64)
    };
    let t_mac = time(&|| {
        let mut a = ct.clone();
        eval.mul_int_assign(&mut a, 3)?;
        eval.add_assign(&mut a, &ct)
    })?;
    let t_rescale = time(&|| {
        let mut a = ct.clone();
        eval.rescale_assign(&mut a)
    })?;
    let t_square = time(&|| {
        let mut a = eval.square_relin(&ct)?;
        eval.rescale_assign(&mut a)
    })?;
    let t_mulpt = time(&|| {
        let mut a = ct.clone();
        eval.mul_plain_assign(&mut a, &pt)
    })?;
    let t_rot = if rot {
        time(&|| eval.rotate(&ct, 1).map(|_| ()))?
    } else {
        0.0
    };
    let lvl = |l: usize| (l + 1) as f64 / (top + 1) as f64;
    let mut out = Vec::new();
    for s in plan.steps.iter().skip(1) {
        let f = lvl(s.level + 1);
        let t = match (&s.op, plan.mode) {
            (StepOp::Linear(l), Mode::Throughput) => {
                (l.nnz() as f64 * t_mac + l.out_len as f64 * t_rescale) * f
            }
            (StepOp::Linear(_), Mode::Latency) => s.packed.as_ref().map_or(0.0, |p| {
                let rots = p.rotation_steps().map_or(0, |r| r.len()) * p.blocks.len().max(1);
                (p.diagonal_count() as f64 * t_mulpt
                    + rots as f64 * t_rot
                    + p.output.tiles as f64 * t_rescale)
                    * f
            }),
            (StepOp::Square, m) => {
                let n = if m == Mode::Throughput {
                    s.len
                } else {
                    s.layout.tiles
                };
                n as f64 * t_square * f
            }
            (StepOp::Poly { poly, .. }, m) => {
                let n = if m == Mode::Throughput {
                    s.len
                } else {
                    s.layout.tiles
                };
                // One relinearised product each (counted by he-nn on a level tracker).
                let products = poly.multiplications().ctx("estimate")?;
                n as f64 * products as f64 * t_square * f
            }
            _ => 0.0,
        };
        out.push((s.name.clone(), t));
    }
    Ok(out)
}

fn cmd_plan(out: &Out, model_path: &Path, a: &PlanArgs, estimate: bool) -> Result<Value> {
    let model = load_model(model_path, &import_only(a))?;
    let input_len: usize = model.network.input_shape().iter().product();
    let c = choice(model_path, a, input_len)?;
    let t = Instant::now();
    let plan = plan_new(&model, &c)?;
    let plan_s = t.elapsed().as_secs_f64();
    out.line(format!("model {}", model_path.display()));
    for n in &model.notes {
        out.line(format!("  import {} ({}): {}", n.node, n.op, n.became));
    }
    out.line(plan.describe());
    let keys_needed = usize::from(plan.needs_relinearization()) + plan.galois_elements.len();
    out.line(format!(
        "keys: {} (relinearization {}, {} Galois), {:.1} MiB",
        keys_needed,
        if plan.needs_relinearization() {
            "yes"
        } else {
            "no"
        },
        plan.galois_elements.len(),
        mib(plan.memory.keys as u64)
    ));
    let mut report = plan_json(&plan);
    report["ok"] = json!(true);
    report["plan_seconds"] = json!(plan_s);
    if estimate {
        let steps = time_estimate(&plan)?;
        let total: f64 = steps.iter().map(|s| s.1).sum();
        let per = plan.batch_capacity() as f64;
        out.line(format!(
            "time estimate (one operation of each kind timed here, at the top level): {total:.2} s per batch of up to {} input(s){}",
            plan.batch_capacity(),
            if plan.mode == Mode::Throughput {
                format!(", {:.2} ms per input when full", 1000.0 * total / per)
            } else {
                String::new()
            }
        ));
        for (name, t) in &steps {
            out.line(format!("  {name:<28} {t:>8.3} s"));
        }
        report["time_estimate_seconds_per_batch"] = json!(total);
        report["time_estimate_steps"] = json!(steps
            .iter()
            .map(|(n, t)| json!({"step": n, "seconds": t}))
            .collect::<Vec<_>>());
    }
    Ok(report)
}

fn key_info(model_path: &Path, plan: &Plan, a: &PlanArgs, pk: &PublicKey) -> Result<KeyInfo> {
    use he_core::serialize::Serializable;
    let (input_scale, input_shift) = preprocessing(model_path, a);
    Ok(KeyInfo {
        format: "home-keys".into(),
        version: 1,
        model: model_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        model_xxh3: hex64(file_xxh3(model_path)?),
        mode: mode_name(plan.mode).into(),
        params_hash: hex64(plan.params.hash()),
        key_id: hex64(xxhash_rust::xxh3::xxh3_64(&pk.to_bytes())),
        degree: plan.params.degree(),
        max_level: plan.params.max_level(),
        top_level: plan.top_level,
        input_len: plan.input_len(),
        output_len: plan.output_len(),
        input_shape: plan
            .steps
            .first()
            .map(|s| s.shape.clone())
            .unwrap_or_default(),
        input_scale,
        input_shift,
        activation_degree: a.activation_degree,
        activation_bound: a.activation_bound,
        relinearization: plan.needs_relinearization(),
        galois_elements: plan.galois_elements.clone(),
        rotation_steps: plan.rotation_steps.clone(),
        flooding: plan.flooding.as_ref().map(crate::meta::FloodingInfo::from),
    })
}

fn cmd_keygen(out: &Out, model_path: &Path, dir: &Path, a: &PlanArgs) -> Result<Value> {
    let model = load_model(model_path, &import_only(a))?;
    let input_len: usize = model.network.input_shape().iter().product();
    let c = choice(model_path, a, input_len)?;
    let plan = plan_new(&model, &c)?;
    info!(params = %plan.params.describe(), depth = plan.depth, galois = plan.galois_elements.len(), "keygen plan");
    if plan
        .steps
        .iter()
        .any(|s| matches!(s.op, StepOp::Poly { .. }))
        && a.activation_bound.is_none()
    {
        return fail(
            "the model has polynomial activations: give their interval with --activation-bound B (infer must rebuild the identical plan without calibration data)",
        );
    }
    let staged = StagedDir::new(dir)?;
    let t = Instant::now();
    let sk = SecretKey::generate(&plan.params).ctx("secret key")?;
    write_atomic(
        &staged.path().join(SECRET_KEY_FILE),
        &secret_key_to_bytes(&sk),
        0o600,
    )?;
    let pk = PublicKey::generate(&sk).ctx("public key")?;
    let info = key_info(model_path, &plan, a, &pk)?;
    let store = write_server_store(&staged.path().join(SERVER_DIR), &plan.params, &info, &pk)?;
    let keystore = PmemKeyStore::new(Arc::new(store), KEY_PREFIX);
    let kg = KeyGenerator::new(&sk);
    let total = usize::from(plan.needs_relinearization()) + plan.galois_elements.len();
    let pb = out.bar(total as u64, "keys");
    let mut bytes = 0u64;
    if plan.needs_relinearization() {
        let k = kg.relinearization_key().ctx("relinearization key")?;
        bytes += k.shape().bytes() as u64;
        keystore.insert(&k).ctx("storing the relinearization key")?;
        pb.inc(1);
    }
    // Galois keys in parallel, stored as they come (a few at a time in memory).
    for group in plan
        .galois_elements
        .chunks(rayon::current_num_threads().max(1))
    {
        let keys = group
            .par_iter()
            .map(|g| kg.galois_key(*g).ctx(format!("Galois key {g}")))
            .collect::<Result<Vec<_>>>()?;
        for k in keys {
            bytes += k.shape().bytes() as u64;
            keystore.insert(&k).ctx("storing a Galois key")?;
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    drop(keystore);
    staged.commit()?;
    let secs = t.elapsed().as_secs_f64();
    out.line(format!(
        "keys for {} ({} mode, {}) in {}:",
        model_path.display(),
        info.mode,
        plan.params.describe(),
        dir.display()
    ));
    out.line(format!(
        "  {}/{SECRET_KEY_FILE}  secret key (mode 0600; keep it on this machine)",
        dir.display()
    ));
    out.line(format!(
        "  {}/{SERVER_DIR}/      server side: parameters, public key, {} evaluation key(s) ({} relinearization, {} Galois), {:.1} MiB",
        dir.display(),
        total,
        usize::from(plan.needs_relinearization()),
        plan.galois_elements.len(),
        mib(bytes)
    ));
    out.line(format!("  {secs:.2} s"));
    Ok(json!({
        "ok": true, "keys": dir, "secret_key": dir.join(SECRET_KEY_FILE),
        "server": dir.join(SERVER_DIR), "params_hash": info.params_hash, "mode": info.mode,
        "evaluation_keys": total, "relinearization": info.relinearization,
        "galois_elements": info.galois_elements, "evaluation_key_bytes": bytes,
        "top_level": info.top_level, "seconds": secs,
    }))
}

fn load_secret(keys_dir: &Path, params: &Arc<Parameters>) -> Result<SecretKey> {
    let p = keys_dir.join(SECRET_KEY_FILE);
    if !p.is_file() {
        return fail(format!(
            "{} has no {SECRET_KEY_FILE}: this needs the data owner's key directory from `home keygen`",
            keys_dir.display()
        ));
    }
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(&p) {
            if m.permissions().mode() & 0o077 != 0 {
                warn!(
                    "{} is readable by others (mode {:o}); chmod 600 it",
                    p.display(),
                    m.permissions().mode() & 0o777
                );
            }
        }
    }
    let b = zeroize::Zeroizing::new(read(&p)?);
    secret_key_from_bytes(params, &b).ctx(format!(
        "{} (not the secret key of these parameters?)",
        p.display()
    ))
}

#[allow(clippy::too_many_arguments)]
fn cmd_encrypt(
    out: &Out,
    keys_dir: &Path,
    input: &Path,
    dir: &Path,
    batch_size: Option<usize>,
    limit: Option<usize>,
    symmetric: bool,
) -> Result<Value> {
    let keys = ServerKeys::open(keys_dir, false)?;
    let info = &keys.info;
    let mode = info.mode()?;
    let params = keys.params.clone();
    let slots = params.slots();
    let mut inputs = read_inputs(input, info.input_len, info.input_scale, info.input_shift)?;
    info!(inputs = inputs.rows.len(), kind = inputs.kind, mode = %info.mode, "encrypt: inputs read");
    if let Some(k) = limit {
        inputs.rows.truncate(k.max(1));
    }
    let bs = match (mode, batch_size) {
        (Mode::Latency, None | Some(1)) => 1,
        (Mode::Latency, Some(b)) => {
            return fail(format!(
                "--batch-size {b}: latency mode packs one input per chunk"
            ))
        }
        (Mode::Throughput, None) => slots,
        (Mode::Throughput, Some(b)) if (1..=slots).contains(&b) => b,
        (Mode::Throughput, Some(b)) => {
            return fail(format!(
                "--batch-size {b}: a throughput chunk holds 1..={slots} inputs"
            ))
        }
    };
    let encoder = Encoder::new(&params).ctx("encoder")?;
    let sk = if symmetric {
        Some(load_secret(keys_dir, &params)?)
    } else {
        None
    };
    let encryptor = Encryptor::new(&params, keys.public_key()?).ctx("encryptor")?;
    let decryptor = sk.as_ref().map(Decryptor::new);
    let encrypt = |pt: &he_core::ckks::Plaintext| -> he_core::Result<Ciphertext> {
        match &decryptor {
            Some(d) => d.encrypt_symmetric(pt),
            None => encryptor.encrypt(pt),
        }
    };
    let staged = StagedDir::new(dir)?;
    let n = inputs.rows.len();
    let chunks: Vec<&[Vec<f64>]> = inputs.rows.chunks(bs).collect();
    let pb = out.bar(chunks.len() as u64, "encrypt");
    let t = Instant::now();
    let mut entries = Vec::with_capacity(chunks.len());
    let mut total = 0u64;
    for (i, rows) in chunks.iter().enumerate() {
        let cts = encrypt_rows(&encoder, &encrypt, mode, info.top_level, rows)?;
        let h = ChunkHeader {
            kind: ChunkKind::Input,
            index: i as u32,
            first: (i * bs) as u64,
            images: rows.len() as u32,
            params_hash: params.hash(),
            source: 0,
        };
        let bytes = chunk_bytes(&h, &cts);
        let file = format!("chunk-{i:05}.bin");
        info!(
            chunk = i,
            images = rows.len(),
            bytes = bytes.len(),
            "encrypt: chunk written"
        );
        write_atomic(&staged.path().join(&file), &bytes, 0o644)?;
        total += bytes.len() as u64;
        entries.push(ChunkEntry {
            index: i as u32,
            file,
            first: h.first,
            images: h.images,
            bytes: bytes.len() as u64,
            xxh3: hex64(xxhash_rust::xxh3::xxh3_64(&bytes)),
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    let manifest = Manifest {
        format: "home-batch".into(),
        version: 1,
        params_hash: info.params_hash.clone(),
        key_id: info.key_id.clone(),
        mode: info.mode.clone(),
        input_len: info.input_len,
        level: info.top_level,
        images: n as u64,
        batch_size: bs,
        source: input.display().to_string(),
        chunks: entries,
    };
    write_atomic(
        &staged.path().join(MANIFEST),
        &serde_json::to_vec_pretty(&manifest).ctx("encoding the manifest")?,
        0o644,
    )?;
    staged.commit()?;
    let secs = t.elapsed().as_secs_f64();
    out.line(format!(
        "encrypted {n} inputs ({}) from {} into {}: {} chunk(s) of up to {bs}, {:.1} MiB, {secs:.2} s{}",
        inputs.kind,
        input.display(),
        dir.display(),
        manifest.chunks.len(),
        mib(total),
        if symmetric { " (secret-key, seeded)" } else { " (public key)" }
    ));
    Ok(json!({
        "ok": true, "batch": dir, "images": n, "chunks": manifest.chunks.len(),
        "batch_size": bs, "bytes": total, "seconds": secs, "symmetric": symmetric,
        "mode": info.mode, "params_hash": info.params_hash,
    }))
}

/// `I/N` from `--shard`, else from Slurm's array variables, else `0/1`.
pub fn parse_shard(arg: Option<&str>) -> Result<(usize, usize)> {
    let num = |s: &str, what: &str| -> Result<usize> {
        s.trim()
            .parse::<usize>()
            .ctx(format!("{what} {s:?} is not a non-negative integer"))
    };
    let (i, n) = if let Some(s) = arg {
        let Some((i, n)) = s.split_once('/') else {
            return fail(format!("--shard {s:?}: expected I/N, e.g. 0/4"));
        };
        (num(i, "shard index")?, num(n, "shard count")?)
    } else if let Ok(id) = std::env::var("SLURM_ARRAY_TASK_ID") {
        let id = num(&id, "SLURM_ARRAY_TASK_ID")?;
        let count = match std::env::var("SLURM_ARRAY_TASK_COUNT") {
            Ok(c) => num(&c, "SLURM_ARRAY_TASK_COUNT")?,
            Err(_) => return fail(
                "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; pass --shard I/N",
            ),
        };
        let min = std::env::var("SLURM_ARRAY_TASK_MIN")
            .ok()
            .map(|v| num(&v, "SLURM_ARRAY_TASK_MIN"))
            .transpose()?
            .unwrap_or(0);
        let step = std::env::var("SLURM_ARRAY_TASK_STEP")
            .ok()
            .map(|v| num(&v, "SLURM_ARRAY_TASK_STEP"))
            .transpose()?
            .unwrap_or(1)
            .max(1);
        if id < min {
            return fail(format!(
                "SLURM_ARRAY_TASK_ID {id} below SLURM_ARRAY_TASK_MIN {min}"
            ));
        }
        ((id - min) / step, count)
    } else {
        (0, 1)
    };
    if n == 0 {
        return fail("shard count must be at least 1");
    }
    if i >= n {
        return fail(format!(
            "shard index {i} out of range: {n} shard(s) are numbered 0..={}",
            n - 1
        ));
    }
    Ok((i, n))
}

/// Chunks of shard `i` of `n` over `chunks` chunks: a contiguous range.
pub fn shard_range(i: usize, n: usize, chunks: usize) -> std::ops::Range<usize> {
    (i * chunks / n)..((i + 1) * chunks / n)
}

struct InferArgs {
    model: PathBuf,
    keys: PathBuf,
    input: PathBuf,
    out: PathBuf,
    shard: Option<String>,
    gpu: bool,
    key_budget_mib: Option<u64>,
    threads: usize,
}

fn gpu_check() -> Result<()> {
    match he_gpu::GpuContext::new(0) {
        Err(e) => fail(format!("--gpu: no usable CUDA device: {e}")),
        Ok(ctx) => fail(format!(
            "--gpu: found {ctx:?}, but he-nn's engine has no GPU execution path yet; run without --gpu (nothing falls back to the CPU silently)"
        )),
    }
}

fn valid_result(path: &Path, index: u32, source: u64) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    match decode_chunk(&b, &path.display().to_string()) {
        Ok(c) => {
            c.header.kind == ChunkKind::Result
                && c.header.index == index
                && c.header.source == source
        }
        Err(_) => false,
    }
}

fn cmd_infer(out: &Out, a: &InferArgs) -> Result<Value> {
    let t0 = Instant::now();
    if a.gpu {
        gpu_check()?;
    }
    let (shard, shards) = parse_shard(a.shard.as_deref())?;
    let keys = ServerKeys::open_with_budget(&a.keys, true, a.key_budget_mib.map(|m| m << 20))?;
    let manifest = Manifest::load(&a.input)?;
    keys.check_manifest(&manifest, &a.input)?;
    let model = load_model(&a.model, &keys.info.import_options())?;
    let plan = plan_for_keys(&model, &keys, &a.model)?;
    info!(params = %plan.params.describe(), depth = plan.depth, key_store = %keys.dir.display(), "infer plan");
    if manifest.level != plan.top_level || manifest.input_len != plan.input_len() {
        return fail(format!(
            "{}: inputs of length {} at level {}, the model takes length {} at level {}",
            a.input.display(),
            manifest.input_len,
            manifest.level,
            plan.input_len(),
            plan.top_level
        ));
    }
    let mode = plan.mode;
    let range = shard_range(shard, shards, manifest.chunks.len());
    let mine = &manifest.chunks[range.clone()];
    info!(shard, shards, chunks = mine.len(), "shard");
    // Check every input of this shard before writing anything.
    let mut sources = Vec::with_capacity(mine.len());
    for c in mine {
        let p = a.input.join(&c.file);
        let len = std::fs::metadata(&p)
            .ctx(format!("batch {}: chunk {}", a.input.display(), c.file))?
            .len();
        if len != c.bytes {
            return fail(format!(
                "batch {}: {} has {len} bytes, the manifest says {} (truncated or still being copied)",
                a.input.display(),
                c.file,
                c.bytes
            ));
        }
        let h = file_xxh3(&p)?;
        if hex64(h) != c.xxh3 {
            return fail(format!(
                "batch {}: {} does not match its checksum in the manifest (corrupted)",
                a.input.display(),
                c.file
            ));
        }
        sources.push(h);
    }
    // The result directory: created, or resumed if it holds this batch's results.
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).ctx("encoding the manifest")?;
    let rman = a.out.join(MANIFEST);
    if rman.exists() {
        let theirs = Manifest::load(&a.out)?;
        if theirs != manifest {
            return fail(format!(
                "{} holds results of another batch; choose another --out",
                a.out.display()
            ));
        }
    } else {
        std::fs::create_dir_all(&a.out).ctx(io_ctx("creating", &a.out))?;
        write_atomic(&rman, &manifest_bytes, 0o644)?;
    }
    let provider = Arc::new(PmemKeyStore::new(keys.store.clone(), KEY_PREFIX));
    provider_prefetch(&provider, &plan);
    let engine = Engine::new(&plan, provider).ctx("engine setup")?;
    // Half-written outputs of this shard's chunks (a killed run): removed, and redone below.
    let names: std::collections::BTreeSet<String> =
        mine.iter().map(|c| result_file(c.index)).collect();
    let stale = remove_stale_temps(&a.out, &|n| names.contains(n))?;
    if !stale.is_empty() {
        info!("removed half-written {stale:?}");
    }
    let mut redone = stale.len();
    let pb = out.bar(mine.len() as u64, &format!("shard {shard}/{shards}"));
    let (mut done, mut skipped, mut images) = (0usize, 0usize, 0u64);
    let t = Instant::now();
    for (c, src) in mine.iter().zip(&sources) {
        let dest = a.out.join(result_file(c.index));
        if dest.exists() {
            if valid_result(&dest, c.index, *src) {
                skipped += 1;
                pb.inc(1);
                continue;
            }
            warn!("{} is invalid; recomputing it", dest.display());
            redone += 1;
        }
        let bytes = read(&a.input.join(&c.file))?;
        let what = format!("{}/{}", a.input.display(), c.file);
        let tc = Instant::now();
        let (_, res) = infer_chunk(&engine, mode, &bytes, &what)?;
        drop(bytes);
        write_atomic(&dest, &res, 0o644)?;
        info!(
            chunk = c.index,
            images = c.images,
            seconds = tc.elapsed().as_secs_f64(),
            "chunk done"
        );
        done += 1;
        images += u64::from(c.images);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    let peak = peak_rss_bytes();
    out.line(format!(
        "shard {shard}/{shards}: chunks {}..{} of {}: {done} computed, {skipped} already done{}; {images} images in {secs:.2} s ({:.2} images/s), {} threads, peak memory {}",
        range.start,
        range.end,
        manifest.chunks.len(),
        if redone > 0 { format!(", {redone} half-written redone") } else { String::new() },
        if secs > 0.0 { images as f64 / secs } else { 0.0 },
        a.threads,
        peak.map_or("n/a".into(), |p| format!("{:.0} MiB", mib(p)))
    ));
    Ok(json!({
        "ok": true, "shard": shard, "shards": shards, "chunks_total": manifest.chunks.len(),
        "chunk_range": [range.start, range.end], "computed": done, "skipped": skipped,
        "redone": redone, "images": images, "seconds": secs,
        "wall_seconds": t0.elapsed().as_secs_f64(),
        "images_per_second": if secs > 0.0 { images as f64 / secs } else { 0.0 },
        "threads": a.threads, "peak_rss_bytes": peak, "result": a.out,
    }))
}

fn provider_prefetch(p: &PmemKeyStore, plan: &Plan) {
    use he_core::rlwe::EvalKeyProvider;
    if !plan.galois_elements.is_empty() {
        p.prefetch(&plan.galois_elements);
    }
}

/// Whether `decrypt` floods the predictions' noise (default on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoiseFlooding {
    On,
    Off,
}

fn cmd_decrypt(
    out: &Out,
    keys_dir: &Path,
    input: &Path,
    dest: &Path,
    labels: Option<&Path>,
    noise_flooding: NoiseFlooding,
) -> Result<Value> {
    let labels = labels.map(read_labels).transpose()?;
    let keys = ServerKeys::open(keys_dir, false)?;
    let sk = load_secret(keys_dir, &keys.params)?;
    let manifest = Manifest::load(input)?;
    keys.check_manifest(&manifest, input)?;
    if let Some(l) = &labels {
        if (l.len() as u64) < manifest.images {
            return fail(format!("{} labels for {} images", l.len(), manifest.images));
        }
    }
    // Check the output name before the work.
    encode_predictions(dest, &[])?;
    let missing: Vec<u32> = manifest
        .chunks
        .iter()
        .filter(|c| !input.join(result_file(c.index)).is_file())
        .map(|c| c.index)
        .collect();
    if !missing.is_empty() {
        return fail(format!(
            "{} is incomplete: {} of {} result chunk(s) missing (first: {:?}); rerun `home infer` for their shards",
            input.display(),
            missing.len(),
            manifest.chunks.len(),
            &missing[..missing.len().min(8)]
        ));
    }
    let mode = keys.info.mode()?;
    let flooding = match (keys.info.flooding, noise_flooding) {
        (_, NoiseFlooding::Off) => None,
        (Some(f), NoiseFlooding::On) => Some(f.to_output_flooding()?),
        (None, NoiseFlooding::On) => {
            return fail(format!(
                "{} carries no noise-flooding bound (keys made with --no-noise-flooding, or before flooding existed): pass --no-noise-flooding here too if the predictions never leave this machine, or regenerate the keys with `home keygen`",
                keys_dir.join("keys.json").display()
            ))
        }
    };
    let encoder = Encoder::new(&keys.params).ctx("encoder")?;
    let decryptor = Decryptor::new(&sk);
    info!(
        chunks = manifest.chunks.len(),
        images = manifest.images,
        "decrypt"
    );
    let pb = out.bar(manifest.chunks.len() as u64, "decrypt");
    let mut logits: Vec<Vec<f64>> = Vec::with_capacity(manifest.images as usize);
    for c in &manifest.chunks {
        let p = input.join(result_file(c.index));
        let b = read(&p)?;
        let what = p.display().to_string();
        let (h, cts) = load_chunk_ciphertexts(&keys.params, &b, &what)?;
        let src = crate::files::parse_hex64(&c.xxh3).unwrap_or(0);
        if h.kind != ChunkKind::Result
            || h.index != c.index
            || h.first != c.first
            || h.images != c.images
            || h.source != src
        {
            return fail(format!(
                "{what}: is not the result of chunk {} of this batch (index {}, first {}, images {}, source {:016x})",
                c.index, h.index, h.first, h.images, h.source
            ));
        }
        logits.extend(decode_outputs(
            &encoder,
            &decryptor,
            flooding.as_ref(),
            mode,
            c.images as usize,
            keys.info.output_len,
            &cts,
        )?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    if logits.len() as u64 != manifest.images {
        return fail(format!(
            "{}: {} predictions for {} images",
            input.display(),
            logits.len(),
            manifest.images
        ));
    }
    write_atomic(dest, &encode_predictions(dest, &logits)?, 0o644)?;
    let preds: Vec<usize> = logits.iter().map(|l| argmax(l)).collect();
    out.line(format!(
        "decrypted {} predictions from {} into {}",
        logits.len(),
        input.display(),
        dest.display()
    ));
    let mut report = json!({"ok": true, "images": logits.len(), "out": dest, "predictions": preds});
    if let Some(l) = labels {
        if l.len() < preds.len() {
            return fail(format!(
                "{} labels for {} predictions",
                l.len(),
                preds.len()
            ));
        }
        let right = preds.iter().zip(&l).filter(|(p, l)| p == l).count();
        out.line(format!(
            "accuracy {:.2} % ({right}/{})",
            100.0 * right as f64 / preds.len() as f64,
            preds.len()
        ));
        report["accuracy"] = json!(right as f64 / preds.len() as f64);
    }
    Ok(report)
}

fn describe_blob(b: &[u8], what: &str) -> Result<(String, Value)> {
    let ty = u16::from_le_bytes([
        b.get(10).copied().unwrap_or(0),
        b.get(11).copied().unwrap_or(0),
    ]);
    // The one registry's tags (he_core::serialize::ObjectKind), not a copy of them.
    let Some(obj) = ObjectType::from_tag(ty) else {
        return fail(format!("{what}: HomE blob of unknown object type {ty}"));
    };
    let (h, payload) = open(b, obj).ctx(what)?;
    let mut v = json!({
        "type": format!("{obj:?}"), "params_hash": hex64(h.params_hash),
        "seeded": h.flags & 1 != 0, "bytes": b.len(), "checksum": "ok",
    });
    let mut s = format!(
        "HomE {obj:?}, {} bytes, parameters {:016x}, checksum ok{}",
        b.len(),
        h.params_hash,
        if h.flags & 1 != 0 {
            ", seeded form"
        } else {
            ""
        }
    );
    match obj {
        ObjectType::Parameters => {
            let p = Parameters::from_bytes(b).ctx(what)?;
            s += &format!(
                "\n  {} (dnum {}, {} levels)",
                p.describe(),
                p.dnum(),
                p.max_level()
            );
            v["parameters"] = json!(p.describe());
            v["max_level"] = json!(p.max_level());
        }
        ObjectType::Ciphertext | ObjectType::Plaintext => {
            if let Some((level, scale, size)) = crate::files::ciphertext_level_scale(b) {
                let (level, scale) = if obj == ObjectType::Plaintext {
                    let lvl = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&payload[4..12]);
                    (lvl as usize, f64::from_le_bytes(a))
                } else {
                    (level, scale)
                };
                s += &format!("\n  level {level}, scale 2^{:.3}", scale.log2());
                if obj == ObjectType::Ciphertext {
                    s += &format!(", {size} components");
                }
                v["level"] = json!(level);
                v["scale_log2"] = json!(scale.log2());
            }
        }
        ObjectType::SecretKey => {
            s += &format!("\n  secret key, N = {}", payload.len());
            v["degree"] = json!(payload.len());
        }
        _ => {}
    }
    Ok((s, v))
}

fn cmd_inspect(out: &Out, path: &Path) -> Result<Value> {
    if path.is_dir() {
        if path.join(pmem_store::INDEX_FILE).is_file() {
            return inspect_store(out, path);
        }
        if path.join(SERVER_DIR).join(pmem_store::INDEX_FILE).is_file() {
            let mut v = inspect_store(out, &path.join(SERVER_DIR))?;
            let sk = path.join(SECRET_KEY_FILE);
            if sk.is_file() {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&sk)
                    .map(|m| m.permissions().mode() & 0o777)
                    .unwrap_or(0);
                out.line(format!("{}: secret key, mode {mode:o}", sk.display()));
                v["secret_key_mode"] = json!(format!("{mode:o}"));
            }
            return Ok(v);
        }
        if path.join(MANIFEST).is_file() {
            return inspect_batch(out, path);
        }
        return fail(format!(
            "{}: not a HomE key, batch or result directory",
            path.display()
        ));
    }
    // A file of a key store (segment, index, lock): the store it belongs to.
    if let Some(dir) = path.parent() {
        if dir.join(pmem_store::INDEX_FILE).is_file() {
            out.line(format!(
                "{}: part of the key store {}",
                path.display(),
                dir.display()
            ));
            return inspect_store(out, dir);
        }
    }
    let b = read(path)?;
    let what = path.display().to_string();
    if b.starts_with(&he_core::serialize::MAGIC) {
        let (s, mut v) = describe_blob(&b, &what)?;
        out.line(format!("{what}: {s}"));
        v["ok"] = json!(true);
        return Ok(v);
    }
    if is_chunk(&b) {
        let c = decode_chunk(&b, &what)?;
        let first = c
            .blobs
            .first()
            .and_then(|x| crate::files::ciphertext_level_scale(x));
        out.line(format!(
            "{what}: HomE chunk ({}), index {}, images {}..{}, {} ciphertexts{}, parameters {:016x}, {} bytes, checksums ok",
            c.header.kind.name(),
            c.header.index,
            c.header.first,
            c.header.first + u64::from(c.header.images),
            c.blobs.len(),
            first.map_or(String::new(), |(l, s, _)| format!(" at level {l}, scale 2^{:.3}", s.log2())),
            c.header.params_hash,
            b.len()
        ));
        return Ok(json!({
            "ok": true, "type": "chunk", "kind": c.header.kind.name(), "index": c.header.index,
            "first": c.header.first, "images": c.header.images, "ciphertexts": c.blobs.len(),
            "level": first.map(|f| f.0), "scale_log2": first.map(|f| f.1.log2()),
            "params_hash": hex64(c.header.params_hash), "bytes": b.len(),
        }));
    }
    if path.file_name().is_some_and(|n| n == MANIFEST) {
        if let Some(dir) = path.parent() {
            return inspect_batch(out, dir);
        }
    }
    fail(format!("{what}: not a HomE file (no HomE magic)"))
}

fn inspect_store(out: &Out, dir: &Path) -> Result<Value> {
    let keys = ServerKeys::open(dir, false)?;
    let r = keys.store.verify();
    let objects = keys.store.list();
    let secret = objects.iter().any(|o| o.key.contains("secret"));
    out.line(format!(
        "{}: HomE server key store for {} ({} mode), {}",
        keys.dir.display(),
        keys.info.model,
        keys.info.mode,
        keys.params.describe()
    ));
    for o in &objects {
        out.line(format!(
            "  {:<28} {:<11} {:>10.2} MiB",
            o.key,
            o.meta.ty,
            mib(o.len)
        ));
    }
    out.line(format!(
        "  {} objects, {} checksums verified, {} failed; secret key present: {}",
        r.objects,
        r.objects.saturating_sub(r.failures.len() as u64),
        r.failures.len(),
        if secret { "YES" } else { "no" }
    ));
    if !r.failures.is_empty() {
        return fail(format!(
            "{}: {}",
            keys.dir.display(),
            r.failures
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    Ok(json!({
        "ok": true, "type": "key-store", "model": keys.info.model, "mode": keys.info.mode,
        "params_hash": keys.info.params_hash, "parameters": keys.params.describe(),
        "objects": objects.iter().map(|o| json!({"key": o.key, "type": o.meta.ty.name(), "bytes": o.len})).collect::<Vec<_>>(),
        "verified": r.objects, "galois_elements": keys.info.galois_elements,
        "relinearization": keys.info.relinearization, "top_level": keys.info.top_level,
    }))
}

fn inspect_batch(out: &Out, dir: &Path) -> Result<Value> {
    let m = Manifest::load(dir)?;
    let (mut inputs, mut results, mut bad) = (0usize, 0usize, Vec::new());
    for c in &m.chunks {
        let p = dir.join(&c.file);
        if p.is_file() {
            match read(&p).and_then(|b| {
                decode_chunk(&b, &c.file)?;
                if hex64(xxhash_rust::xxh3::xxh3_64(&b)) != c.xxh3 {
                    return fail(format!("{}: checksum differs from the manifest", c.file));
                }
                Ok(())
            }) {
                Ok(()) => inputs += 1,
                Err(e) => bad.push(e.to_string()),
            }
        }
        let r = dir.join(result_file(c.index));
        if r.is_file() {
            match read(&r).and_then(|b| decode_chunk(&b, &result_file(c.index)).map(|_| ())) {
                Ok(()) => results += 1,
                Err(e) => bad.push(e.to_string()),
            }
        }
    }
    let kind = if results > 0 || inputs == 0 {
        "result"
    } else {
        "batch"
    };
    out.line(format!(
        "{}: HomE {kind} directory ({} mode, parameters {}), {} images in {} chunk(s) of up to {}, level {}; input chunks valid {inputs}, result chunks valid {results}/{}",
        dir.display(), m.mode, m.params_hash, m.images, m.chunks.len(), m.batch_size, m.level, m.chunks.len()
    ));
    if !bad.is_empty() {
        return fail(format!("{}: {}", dir.display(), bad.join("; ")));
    }
    Ok(json!({
        "ok": true, "type": kind, "mode": m.mode, "params_hash": m.params_hash, "images": m.images,
        "chunks": m.chunks.len(), "valid_inputs": inputs, "valid_results": results, "level": m.level,
    }))
}

#[allow(clippy::too_many_arguments)]
fn cmd_run(
    out: &Out,
    model_path: &Path,
    input: &Path,
    labels: Option<&Path>,
    reference: Option<&Path>,
    limit: Option<usize>,
    dest: Option<&Path>,
    a: &PlanArgs,
) -> Result<Value> {
    let t_all = Instant::now();
    let model = load_model(model_path, &import_only(a))?;
    let input_len: usize = model.network.input_shape().iter().product();
    let (scale, shift) = preprocessing(model_path, a);
    let mut rows = read_inputs(input, input_len, scale, shift)?.rows;
    if let Some(k) = limit {
        rows.truncate(k.max(1));
    }
    let n = rows.len();
    let labels = labels.map(read_labels).transpose()?;
    if let Some(l) = &labels {
        if l.len() < n {
            return fail(format!("{} labels for {n} inputs", l.len()));
        }
    }
    let reference = reference.map(read_reference_logits).transpose()?;
    if let Some(r) = &reference {
        if r.len() < n {
            return fail(format!("{} reference rows for {n} inputs", r.len()));
        }
    }
    if let Some(d) = dest {
        encode_predictions(d, &[])?;
    }
    let mut c = choice(model_path, a, input_len)?;
    if c.calibration.is_empty() {
        c.calibration = rows.iter().take(64).cloned().collect();
    }
    let t = Instant::now();
    let plan = plan_new(&model, &c)?;
    out.line(format!(
        "plan ({:.2} s): {} mode, {}, depth {}, batch capacity {}",
        t.elapsed().as_secs_f64(),
        mode_name(plan.mode),
        plan.params.describe(),
        plan.depth,
        plan.batch_capacity()
    ));
    let t = Instant::now();
    let keys = plan.generate_keys().ctx("keygen")?;
    let t_keygen = t.elapsed().as_secs_f64();
    out.line(format!(
        "keygen ({t_keygen:.2} s): {} evaluation key(s), {:.1} MiB",
        usize::from(plan.needs_relinearization()) + plan.galois_elements.len(),
        mib(keys.eval.bytes() as u64)
    ));
    let encoder = Encoder::new(&plan.params).ctx("encoder")?;
    let encryptor = Encryptor::new(&plan.params, keys.public.clone()).ctx("encryptor")?;
    let decryptor = Decryptor::new(&keys.secret);
    let engine = Engine::new(&plan, keys.eval.clone()).ctx("engine setup")?;
    let chunks: Vec<&[Vec<f64>]> = rows.chunks(plan.batch_capacity()).collect();
    let pb = out.bar(chunks.len() as u64, "run");
    let (mut t_enc, mut t_eval, mut t_dec) = (0.0, 0.0, 0.0);
    let mut logits = Vec::with_capacity(n);
    let encrypt = |pt: &he_core::ckks::Plaintext| encryptor.encrypt(pt);
    for ch in &chunks {
        let t = Instant::now();
        let cts = encrypt_rows(&encoder, &encrypt, plan.mode, plan.top_level, ch)?;
        t_enc += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let layout =
            crate::crypto::input_layout(plan.mode, ch.len(), input_len, plan.params.slots());
        let res = engine
            .run(he_nn::EncryptedTensor { layout, cts })
            .ctx("evaluation")?;
        t_eval += t.elapsed().as_secs_f64();
        let t = Instant::now();
        logits.extend(decode_outputs(
            &encoder,
            &decryptor,
            plan.flooding.as_ref(),
            plan.mode,
            ch.len(),
            plan.output_len(),
            &res.cts,
        )?);
        t_dec += t.elapsed().as_secs_f64();
        pb.inc(1);
    }
    pb.finish_and_clear();
    let clear: Vec<Vec<f64>> = rows
        .par_iter()
        .map(|x| model.network.forward(x).ctx("cleartext run"))
        .collect::<Result<_>>()?;
    let agree = |other: &[Vec<f64>]| {
        logits
            .iter()
            .zip(other)
            .filter(|(a, b)| argmax(a) == argmax(b))
            .count()
    };
    let max_err = |other: &[Vec<f64>]| {
        logits
            .iter()
            .zip(other)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
            .fold(0.0f64, f64::max)
    };
    let pct = |k: usize| 100.0 * k as f64 / n as f64;
    let agree_clear = agree(&clear);
    out.line(format!("results on {n} inputs from {}:", input.display()));
    let mut report = json!({
        "ok": true, "images": n, "mode": mode_name(plan.mode), "parameters": plan.params.describe(),
        "agreement_cleartext": agree_clear, "max_logit_error_cleartext": max_err(&clear),
        "seconds": {"keygen": t_keygen, "encrypt": t_enc, "evaluate": t_eval, "decrypt": t_dec,
                    "total": t_all.elapsed().as_secs_f64()},
        "peak_rss_bytes": peak_rss_bytes(),
        "predictions": logits.iter().map(|l| argmax(l)).collect::<Vec<_>>(),
    });
    if let Some(l) = &labels {
        let acc_enc = logits
            .iter()
            .zip(l)
            .filter(|(x, y)| argmax(x) == **y)
            .count();
        let acc_clear = clear
            .iter()
            .zip(l)
            .filter(|(x, y)| argmax(x) == **y)
            .count();
        out.line(format!(
            "  accuracy: encrypted {:.2} % ({acc_enc}/{n}), cleartext {:.2} % ({acc_clear}/{n})",
            pct(acc_enc),
            pct(acc_clear)
        ));
        report["accuracy_encrypted"] = json!(acc_enc as f64 / n as f64);
        report["accuracy_cleartext"] = json!(acc_clear as f64 / n as f64);
    }
    out.line(format!(
        "  agreement with the cleartext run: {agree_clear}/{n} ({:.2} %), max |logit error| {:.3e}",
        pct(agree_clear),
        max_err(&clear)
    ));
    if let Some(r) = &reference {
        let r = &r[..n];
        let ag = agree(r);
        out.line(format!(
            "  agreement with the reference logits: {ag}/{n} ({:.2} %), max |logit error| {:.3e}",
            pct(ag),
            max_err(r)
        ));
        report["agreement_reference"] = json!(ag);
        report["max_logit_error_reference"] = json!(max_err(r));
    }
    match &plan.flooding {
        Some(f) => {
            report["noise_flooding"] = json!({
                "statistical_security": f.config.statistical_security,
                "decryptions": f.config.decryptions,
                "log2_error_before": f.log2_rms_before,
                "log2_flooding_sigma": f.log2_sigma,
            });
            out.line(format!(
                "  noise flooding (IND-CPA-D, s = {}): simulated error 2^{:.1} before, flooding noise 2^{:.1} per logit after",
                f.config.statistical_security, f.log2_rms_before, f.log2_sigma
            ));
        }
        None => {
            report["noise_flooding"] = json!(null);
            out.line("  noise flooding: off (--no-noise-flooding: predictions must not leave this machine)");
        }
    }
    out.line(format!(
        "  time: keygen {t_keygen:.2} s, encrypt {t_enc:.2} s, evaluate {t_eval:.2} s, decrypt {t_dec:.2} s; {:.1} inputs/s end to end; peak memory {}",
        n as f64 / (t_enc + t_eval + t_dec).max(1e-9),
        peak_rss_bytes().map_or("n/a".into(), |p| format!("{:.0} MiB", mib(p)))
    ));
    if let Some(d) = dest {
        write_atomic(d, &encode_predictions(d, &logits)?, 0o644)?;
        out.line(format!("  predictions written to {}", d.display()));
    }
    Ok(report)
}
