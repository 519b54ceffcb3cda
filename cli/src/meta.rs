//! The key directory, the batch and result manifests, and how a plan is rebuilt from them.
//!
//! ```text
//! KEYS/secret.key        the secret key (mode 0600; the data owner's machine only)
//! KEYS/server/           a pmem-store: everything the server needs, and nothing secret
//!     home/params          the CKKS parameters (he-core blob)
//!     home/keyinfo         JSON: the model, mode, levels, keys, preprocessing (KeyInfo)
//!     home/public          the public key (he-core blob, seeded)
//!     keys/relin           relinearization key, if the plan multiplies ciphertexts
//!     keys/galois/<g>      Galois keys: exactly the elements the plan rotates by
//! BATCH/manifest.json    batch manifest (Manifest), written last
//! BATCH/chunk-NNNNN.bin  encrypted inputs, one chunk file per work unit
//! RESULT/manifest.json   the batch manifest, copied by `infer`
//! RESULT/chunk-NNNNN.res encrypted results, one per input chunk
//! ```

use crate::error::{fail, io_ctx, Context, Result};
use crate::files::{hex64, read};
use he_core::rlwe::Parameters;
use he_nn::onnx::{load_onnx, ImportOptions, ImportedModel};
use he_nn::{Mode, Plan, PlanOptions};
use pmem_store::{ObjectMeta, ObjectType, Store, StoreConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the secret key file in a key directory.
pub const SECRET_KEY_FILE: &str = "secret.key";
/// Name of the server-side store in a key directory.
pub const SERVER_DIR: &str = "server";
/// Store object holding the parameters.
pub const OBJ_PARAMS: &str = "home/params";
/// Store object holding the [`KeyInfo`] JSON.
pub const OBJ_KEYINFO: &str = "home/keyinfo";
/// Store object holding the public key.
pub const OBJ_PUBLIC: &str = "home/public";
/// Prefix of the evaluation keys in the store.
pub const KEY_PREFIX: &str = "keys/";
/// Name of a manifest.
pub const MANIFEST: &str = "manifest.json";

/// Mode names as they appear on the command line and in files.
pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Throughput => "throughput",
        Mode::Latency => "latency",
    }
}

/// Parses a mode name.
pub fn parse_mode(s: &str) -> Result<Mode> {
    match s {
        "throughput" => Ok(Mode::Throughput),
        "latency" => Ok(Mode::Latency),
        m => fail(format!("mode {m:?}, expected throughput or latency")),
    }
}

/// What the keys were made for: everything `encrypt`, `infer` and `decrypt` need to agree
/// with `keygen` without the secret key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyInfo {
    /// `"home-keys"`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// File name of the model the keys were generated for.
    pub model: String,
    /// XXH3-64 of the model file (hex).
    pub model_xxh3: String,
    /// Packing mode.
    pub mode: String,
    /// Parameters' hash (hex).
    pub params_hash: String,
    /// Identity of this key set: XXH3-64 of the public key blob (hex). Batches record it, so
    /// keys of another `keygen` with the same parameters are told apart.
    pub key_id: String,
    /// Ring degree.
    pub degree: usize,
    /// Levels of the parameters.
    pub max_level: usize,
    /// Level at which inputs are encrypted.
    pub top_level: usize,
    /// Input length (flattened).
    pub input_len: usize,
    /// Output length.
    pub output_len: usize,
    /// Input shape without the batch dimension.
    pub input_shape: Vec<usize>,
    /// `x = raw * input_scale + input_shift` for integer (uint8) inputs.
    pub input_scale: f64,
    /// See `input_scale`.
    pub input_shift: f64,
    /// Degree of polynomial activations at import.
    pub activation_degree: usize,
    /// Interval of polynomial activations at import (`None`: none needed).
    pub activation_bound: Option<f64>,
    /// Whether a relinearization key was generated.
    pub relinearization: bool,
    /// Galois elements of the generated keys.
    pub galois_elements: Vec<u64>,
    /// Rotation steps of those keys.
    pub rotation_steps: Vec<i64>,
    /// The noise flooding `decrypt` applies to the predictions (from the plan at keygen;
    /// absent in key directories made before flooding existed).
    #[serde(default)]
    pub flooding: Option<FloodingInfo>,
}

/// The plan's output flooding, as recorded in `keys.json` (see `he_nn::flooding`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct FloodingInfo {
    /// Statistical security `s`.
    pub statistical_security: u32,
    /// Shared decryptions `t`.
    pub decryptions: u64,
    /// Simulated RMS error of an output.
    pub simulated_rms: f64,
    /// `log2` of the flooding noise per output.
    pub log2_sigma: f64,
    /// `log2` of the simulated error before flooding.
    pub log2_rms_before: f64,
}

impl From<&he_nn::flooding::OutputFlooding> for FloodingInfo {
    fn from(f: &he_nn::flooding::OutputFlooding) -> Self {
        Self {
            statistical_security: f.config.statistical_security,
            decryptions: f.config.decryptions,
            simulated_rms: f.simulated_rms,
            log2_sigma: f.log2_sigma,
            log2_rms_before: f.log2_rms_before,
        }
    }
}

impl FloodingInfo {
    /// Back to nn's type.
    pub fn to_output_flooding(self) -> Result<he_nn::flooding::OutputFlooding> {
        if !(self.simulated_rms.is_finite() && self.simulated_rms > 0.0) {
            return fail(format!(
                "keys.json: noise-flooding bound {} is not a positive number",
                self.simulated_rms
            ));
        }
        Ok(he_nn::flooding::OutputFlooding {
            config: he_core::ckks::FloodingConfig {
                statistical_security: self.statistical_security,
                decryptions: self.decryptions,
            },
            simulated_rms: self.simulated_rms,
            log2_sigma: self.log2_sigma,
            log2_rms_before: self.log2_rms_before,
        })
    }
}

impl KeyInfo {
    /// The packing mode.
    pub fn mode(&self) -> Result<Mode> {
        parse_mode(&self.mode)
    }
    /// The import options the keys were planned with.
    pub fn import_options(&self) -> ImportOptions {
        ImportOptions {
            activation_degree: self.activation_degree,
            activation_bound: self.activation_bound,
        }
    }
}

/// One chunk of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChunkEntry {
    /// Chunk index.
    pub index: u32,
    /// File name in the batch directory.
    pub file: String,
    /// First image.
    pub first: u64,
    /// Images.
    pub images: u32,
    /// File size in bytes.
    pub bytes: u64,
    /// XXH3-64 of the file (hex).
    pub xxh3: String,
}

/// The manifest of an encrypted batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// `"home-batch"`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// Parameters' hash (hex).
    pub params_hash: String,
    /// The key set the batch was encrypted for ([`KeyInfo::key_id`]).
    pub key_id: String,
    /// Packing mode.
    pub mode: String,
    /// Input length.
    pub input_len: usize,
    /// Level of the input ciphertexts.
    pub level: usize,
    /// Images in the batch.
    pub images: u64,
    /// Images per chunk.
    pub batch_size: usize,
    /// Where the images came from.
    pub source: String,
    /// The chunks, in order.
    pub chunks: Vec<ChunkEntry>,
}

impl Manifest {
    /// Reads and checks `DIR/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        if !dir.is_dir() {
            return fail(format!("{} is not a directory", dir.display()));
        }
        if !path.exists() {
            return fail(format!(
                "{} has no {MANIFEST}: not a HomE batch, or an unfinished one",
                dir.display()
            ));
        }
        let m: Self = serde_json::from_slice(&read(&path)?).ctx(io_ctx("parsing", &path))?;
        if m.format != "home-batch" || m.version != 1 {
            return fail(format!(
                "{}: format {:?} version {}, expected home-batch version 1",
                path.display(),
                m.format,
                m.version
            ));
        }
        for (i, c) in m.chunks.iter().enumerate() {
            if c.index as usize != i || c.file.contains('/') || c.file.starts_with('.') {
                return fail(format!(
                    "{}: chunk entry {i} is malformed (index {}, file {:?})",
                    path.display(),
                    c.index,
                    c.file
                ));
            }
        }
        Ok(m)
    }
}

/// Name of the result file of chunk `index`.
pub fn result_file(index: u32) -> String {
    format!("chunk-{index:05}.res")
}

/// The server side of a key directory, opened read-only.
pub struct ServerKeys {
    /// The store.
    pub store: Arc<Store>,
    /// Its directory.
    pub dir: PathBuf,
    /// The parameters.
    pub params: Arc<Parameters>,
    /// What the keys were made for.
    pub info: KeyInfo,
}

/// The store directory of a key directory given as `KEYS` or `KEYS/server`. Never looks at
/// anything but the store.
pub fn server_dir(keys: &Path) -> Result<PathBuf> {
    if keys.join(pmem_store::INDEX_FILE).is_file() {
        return Ok(keys.to_path_buf());
    }
    let s = keys.join(SERVER_DIR);
    if s.join(pmem_store::INDEX_FILE).is_file() {
        return Ok(s);
    }
    if !keys.exists() {
        return fail(format!("key directory {} does not exist", keys.display()));
    }
    fail(format!(
        "{} is not a HomE key directory (no key store at {0} or {0}/{SERVER_DIR}; make one with `home keygen`)",
        keys.display()
    ))
}

fn bytes_object(store: &Store, key: &str, dir: &Path) -> Result<Vec<u8>> {
    let h = store
        .get_typed(key, ObjectType::Bytes)
        .ctx(format!("key store {}: object {key}", dir.display()))?;
    Ok(h.bytes().to_vec())
}

impl ServerKeys {
    /// Opens the server-side keys (read-only: any number of shards at once).
    pub fn open(keys: &Path, prefetch: bool) -> Result<Self> {
        Self::open_with_budget(keys, prefetch, None)
    }

    /// [`open`](Self::open) with a DRAM budget (bytes) for mapped objects.
    pub fn open_with_budget(keys: &Path, prefetch: bool, budget: Option<u64>) -> Result<Self> {
        let dir = server_dir(keys)?;
        let mut cfg = StoreConfig::new(None).read_only(true).prefetch(prefetch);
        if let Some(b) = budget {
            cfg = cfg.budget(b);
        }
        let store = Store::open(&dir, cfg).ctx(format!("opening key store {}", dir.display()))?;
        let params = Parameters::from_bytes(&bytes_object(&store, OBJ_PARAMS, &dir)?)
            .ctx(format!("{}: parameters", dir.display()))?;
        let info: KeyInfo = serde_json::from_slice(&bytes_object(&store, OBJ_KEYINFO, &dir)?)
            .ctx(format!("{}: key info", dir.display()))?;
        if info.params_hash != hex64(params.hash()) || info.key_id.is_empty() {
            return fail(format!(
                "{}: key info is for parameters {}, the stored parameters are {}",
                dir.display(),
                info.params_hash,
                hex64(params.hash())
            ));
        }
        Ok(Self {
            store: Arc::new(store),
            dir,
            params,
            info,
        })
    }

    /// The public key.
    pub fn public_key(&self) -> Result<he_core::rlwe::PublicKey> {
        use he_core::serialize::Serializable;
        let b = bytes_object(&self.store, OBJ_PUBLIC, &self.dir)?;
        if hex64(xxhash_rust::xxh3::xxh3_64(&b)) != self.info.key_id {
            return fail(format!(
                "{}: the public key is not the one of key set {}",
                self.dir.display(),
                self.info.key_id
            ));
        }
        he_core::rlwe::PublicKey::from_bytes(&self.params, &b)
            .ctx(format!("{}: public key", self.dir.display()))
    }

    /// Checks that a batch/result manifest belongs to these keys.
    pub fn check_manifest(&self, m: &Manifest, what: &Path) -> Result<()> {
        if m.params_hash != self.info.params_hash || m.key_id != self.info.key_id {
            return fail(format!(
                "{} was encrypted for key set {} (parameters {}), but {} holds key set {} (parameters {}): wrong key directory",
                what.display(),
                m.key_id,
                m.params_hash,
                self.dir.display(),
                self.info.key_id,
                self.info.params_hash
            ));
        }
        if m.mode != self.info.mode {
            return fail(format!(
                "{} is packed in {} mode, the keys were made for {} mode",
                what.display(),
                m.mode,
                self.info.mode
            ));
        }
        Ok(())
    }
}

/// Options that shape a plan (shared by `plan`, `keygen` and `run`).
#[derive(Debug, Clone)]
pub struct PlanChoice {
    /// Mode.
    pub mode: Mode,
    /// `log2 N`.
    pub log_n: Option<u32>,
    /// Scale bits.
    pub scale_bits: Option<u32>,
    /// Key-switching digits.
    pub dnum: Option<usize>,
    /// Calibration inputs.
    pub calibration: Vec<Vec<f64>>,
    /// Noise flooding of the predictions (`--no-noise-flooding` turns it off).
    pub flooding: Option<he_core::ckks::FloodingConfig>,
}

/// Loads a model with a one-line error.
pub fn load_model(path: &Path, import: &ImportOptions) -> Result<ImportedModel> {
    if !path.is_file() {
        return fail(format!("model {} does not exist", path.display()));
    }
    load_onnx(path, import).ctx(format!("model {}", path.display()))
}

/// XXH3-64 of a file.
pub fn file_xxh3(path: &Path) -> Result<u64> {
    Ok(xxhash_rust::xxh3::xxh3_64(&read(path)?))
}

/// Plans `model` from scratch (parameters chosen for it).
pub fn plan_new(model: &ImportedModel, c: &PlanChoice) -> Result<Plan> {
    let mut opts = PlanOptions::new(c.mode);
    // Bootstrapping plans need the encapsulation key on the server, which has no serialized
    // form yet: the CLI plans networks that fit one chain (a deeper one gets DepthExceeded).
    opts.bootstrapping = he_nn::plan::Bootstrapping::Off;
    opts.log_n = c.log_n;
    opts.scale_bits = c.scale_bits;
    if c.log_n == Some(13) && c.scale_bits.is_none() {
        opts.min_scale_bits = 24;
    }
    opts.calibration = c.calibration.clone();
    opts.flooding = c.flooding;
    let plan = Plan::new(&model.network, &opts).ctx("planning")?;
    let Some(dnum) = c.dnum else {
        return Ok(plan);
    };
    // Same chain, the asked number of key-switching digits.
    let lit = plan.params.literal();
    let scale_bits = lit.log_scale.round() as u32;
    let q0 = lit.log_q.first().copied().unwrap_or(scale_bits);
    let intent = he_core::rlwe::ParametersIntent {
        depth: plan.depth,
        scale_bits,
        int_bits: q0.saturating_sub(scale_bits),
        log_n: Some(lit.log_n),
        dnum: Some(dnum),
        key_switching: he_core::rlwe::KeySwitching::Fewest,
    };
    let params = Parameters::from_intent(&intent).ctx(format!("--dnum {dnum}"))?;
    opts.parameters = Some(params);
    Plan::new(&model.network, &opts).ctx("planning")
}

/// Plans `model` under the parameters of existing keys (what `infer` does): refuses a model
/// that needs more levels than the keys have, or rotations the keys lack.
pub fn plan_for_keys(model: &ImportedModel, keys: &ServerKeys, model_path: &Path) -> Result<Plan> {
    let mode = keys.info.mode()?;
    let mut opts = PlanOptions::new(mode);
    opts.bootstrapping = he_nn::plan::Bootstrapping::Off;
    opts.parameters = Some(keys.params.clone());
    // The server never decrypts; the client's flooding bound was fixed at keygen.
    opts.flooding = None;
    let plan = match Plan::new(&model.network, &opts) {
        Ok(p) => p,
        Err(he_nn::NnError::DepthExceeded { needed, available }) => {
            return fail(format!(
                "model {} needs {needed} levels, the keys in {} provide {available} (generate keys for this model with `home keygen`)",
                model_path.display(),
                keys.dir.display()
            ))
        }
        Err(e) => return Err(e).ctx(format!("planning {}", model_path.display())),
    };
    if plan.top_level != keys.info.top_level {
        return fail(format!(
            "model {} starts at level {}, the keys in {} were made for a model starting at level {} (inputs are encrypted there)",
            model_path.display(),
            plan.top_level,
            keys.dir.display(),
            keys.info.top_level
        ));
    }
    if plan.input_len() != keys.info.input_len {
        return fail(format!(
            "model {} takes inputs of length {}, the keys were made for length {}",
            model_path.display(),
            plan.input_len(),
            keys.info.input_len
        ));
    }
    let have: std::collections::BTreeSet<u64> = keys.info.galois_elements.iter().copied().collect();
    let missing: Vec<u64> = plan
        .galois_elements
        .iter()
        .copied()
        .filter(|g| !have.contains(g))
        .collect();
    if !missing.is_empty() {
        return fail(format!(
            "model {} needs {} Galois keys that {} lacks (elements {:?}...): generate keys for this model",
            model_path.display(),
            missing.len(),
            keys.dir.display(),
            &missing[..missing.len().min(4)]
        ));
    }
    if plan.needs_relinearization() && !keys.info.relinearization {
        return fail(format!(
            "model {} multiplies ciphertexts but {} has no relinearization key",
            model_path.display(),
            keys.dir.display()
        ));
    }
    Ok(plan)
}

/// Writes the server store of a new key directory (`dir` must not hold a store yet).
pub fn write_server_store(
    dir: &Path,
    params: &Parameters,
    info: &KeyInfo,
    public: &he_core::rlwe::PublicKey,
) -> Result<Store> {
    use he_core::serialize::Serializable;
    let h = params.hash();
    let store = Store::create(dir, StoreConfig::new(Some(h)).prefetch(false))
        .ctx(format!("creating key store {}", dir.display()))?;
    let meta = ObjectMeta::new(ObjectType::Bytes, h);
    let info_json = serde_json::to_vec_pretty(info).ctx("encoding key info")?;
    for (k, v) in [
        (OBJ_PARAMS, params.to_bytes()),
        (OBJ_KEYINFO, info_json),
        (OBJ_PUBLIC, public.to_bytes()),
    ] {
        store
            .put(k, &meta, &v)
            .ctx(format!("writing {k} to {}", dir.display()))?;
    }
    Ok(store)
}
