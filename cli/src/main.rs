//! `home`: encrypted batch inference with HomE from the command line.
//!
//! ```text
//! home plan    MODEL.onnx [--mode throughput|latency] [--dnum D]   plan, parameters, estimates
//! home keygen  MODEL.onnx --out KEYS                               KEYS/secret.key + KEYS/server
//! home encrypt --keys KEYS --in INPUT --out BATCH                  .npy, IDX or a PNG folder
//! home infer   MODEL.onnx --keys KEYS/server --in BATCH --out RESULT [--shard I/N]
//! home decrypt --keys KEYS --in RESULT --out predictions.csv|.npy
//! home inspect FILE                                                what a HomE file is, validated
//! home run     MODEL.onnx --in INPUT [--labels L]                  all of it in one process
//! ```
//!
//! Errors are one line on stderr and a non-zero exit status; `--json` prints one JSON object
//! on stdout (`{"ok": false, "error": ...}` on failure).

mod commands;
mod crypto;
mod error;
mod files;
mod input;
mod meta;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Encrypted batch inference with HomE (CKKS): plan, keygen, encrypt, infer, decrypt.
#[derive(Parser, Debug)]
#[command(name = "home", version, about, long_about = None)]
pub struct Cli {
    /// Print one machine-readable JSON object on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log to stderr: -v info, -vv debug, -vvv trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Worker threads (default: all cores; in a Slurm job, SLURM_CPUS_PER_TASK).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// The subcommand.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Plan shaping options shared by `plan`, `keygen` and `run`.
#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    /// Packing: throughput (slot i = image i, N/2 images per ciphertext) or latency (one image
    /// per ciphertext, rotations).
    #[arg(long, default_value = "throughput")]
    pub mode: String,
    /// Key-switching digits (default: the fewest that stay 128-bit secure).
    #[arg(long)]
    pub dnum: Option<usize>,
    /// log2 of the ring degree (default: the smallest secure one).
    #[arg(long)]
    pub log_n: Option<u32>,
    /// Scale bits (default: the largest of 30..=58 that fits).
    #[arg(long)]
    pub scale_bits: Option<u32>,
    /// Degree of the polynomials that replace ReLU/GELU/SiLU.
    #[arg(long, default_value_t = 7)]
    pub activation_degree: usize,
    /// Interval half-width of those polynomials (needed when the model has such activations
    /// and no --calibrate data is given).
    #[arg(long)]
    pub activation_bound: Option<f64>,
    /// Inputs to calibrate value ranges on (the first 64 are used).
    #[arg(long)]
    pub calibrate: Option<PathBuf>,
    /// Preprocessing of integer inputs: x = raw * input_scale + input_shift (default: from
    /// the model's JSON sidecar, else 1/255).
    #[arg(long)]
    pub input_scale: Option<f64>,
    /// See --input-scale (default: from the sidecar, else 0).
    #[arg(long)]
    pub input_shift: Option<f64>,
    /// Plan without noise flooding of the predictions. Only for predictions that never leave
    /// this machine: unflooded CKKS results leak the secret key to whoever sees them
    /// (IND-CPA-D). Flooding costs ~26 bits, so it needs N >= 2^14 and scales of ~50 bits.
    #[arg(long)]
    pub no_noise_flooding: bool,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Show the plan of a model: parameters, levels, keys, memory and time estimates.
    Plan {
        /// The ONNX model.
        model: PathBuf,
        /// Plan options.
        #[command(flatten)]
        plan: PlanArgs,
        /// Skip the timing of one operation of each kind (no time estimate).
        #[arg(long)]
        no_time_estimate: bool,
    },
    /// Generate the keys a model needs: KEYS/secret.key (0600) and KEYS/server (pmem-store
    /// with the parameters, public key and exactly the evaluation keys of the plan).
    Keygen {
        /// The ONNX model.
        model: PathBuf,
        /// Key directory to create.
        #[arg(long)]
        out: PathBuf,
        /// Plan options.
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Encrypt inputs (.npy, IDX ubyte, or a folder of PNG images) into a batch directory.
    Encrypt {
        /// Key directory (the public key is used; --symmetric uses the secret key).
        #[arg(long)]
        keys: PathBuf,
        /// Inputs.
        #[arg(long = "in")]
        input: PathBuf,
        /// Batch directory to create.
        #[arg(long)]
        out: PathBuf,
        /// Inputs per chunk (the unit of work of `infer` shards); default: a full ciphertext
        /// (N/2) in throughput mode, 1 in latency mode.
        #[arg(long)]
        batch_size: Option<usize>,
        /// Encrypt only the first K inputs.
        #[arg(long)]
        limit: Option<usize>,
        /// Encrypt with the secret key: seeded ciphertexts, half the size to upload.
        #[arg(long)]
        symmetric: bool,
    },
    /// Run a model on an encrypted batch (server side: never reads the secret key).
    Infer {
        /// The ONNX model.
        model: PathBuf,
        /// The server-side key directory (KEYS/server, or KEYS).
        #[arg(long)]
        keys: PathBuf,
        /// Batch directory.
        #[arg(long = "in")]
        input: PathBuf,
        /// Result directory (created or resumed).
        #[arg(long)]
        out: PathBuf,
        /// This shard, I/N (0-based); default from SLURM_ARRAY_TASK_ID/COUNT, else 0/1.
        #[arg(long)]
        shard: Option<String>,
        /// Run on a CUDA GPU (an error when there is none; never a silent CPU fallback).
        #[arg(long)]
        gpu: bool,
        /// DRAM budget for mapped keys, in MiB (default 1024).
        #[arg(long)]
        key_budget_mib: Option<u64>,
    },
    /// Decrypt a result directory into predictions (.csv or .npy by extension).
    Decrypt {
        /// Key directory (with secret.key).
        #[arg(long)]
        keys: PathBuf,
        /// Result directory.
        #[arg(long = "in")]
        input: PathBuf,
        /// Output file: .csv (image, prediction, logits) or .npy (float64 logits).
        #[arg(long)]
        out: PathBuf,
        /// Labels (IDX1, .npy, or one integer a line): also report the accuracy.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Decrypt without noise flooding. Only for predictions that never leave this machine:
        /// unflooded CKKS results leak the secret key to whoever sees them (IND-CPA-D).
        #[arg(long)]
        no_noise_flooding: bool,
    },
    /// Say what a HomE file or directory is (type, parameters, level, scale, size), validated.
    Inspect {
        /// File or directory.
        file: PathBuf,
    },
    /// Plan, keygen, encrypt, infer and decrypt in one process; prints accuracy and agreement
    /// with a cleartext run of the same model.
    Run {
        /// The ONNX model.
        model: PathBuf,
        /// Inputs.
        #[arg(long = "in")]
        input: PathBuf,
        /// Labels (IDX1, .npy, or one integer a line) for accuracy.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Reference logits (JSON list of lists, e.g. onnxruntime's) to compare with.
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Use only the first K inputs.
        #[arg(long)]
        limit: Option<usize>,
        /// Write the predictions here (.csv or .npy).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Plan options.
        #[command(flatten)]
        plan: PlanArgs,
    },
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .try_init();
}

fn print_json(v: &serde_json::Value) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{v}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let json = cli.json;
    match commands::dispatch(cli) {
        Ok(report) => {
            if json {
                print_json(&report);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                print_json(&serde_json::json!({"ok": false, "error": e.to_string()}));
            }
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
