//! Bootstrapping bindings: `Context.bootstrappable`, `SecretKey.bootstrap_keys`,
//! `BootstrapKeys`, `Ciphertext.bootstrap` (he-core's `circuits::bootstrapping`).
//!
//! A bootstrappable context is one whose parameters are a preset's chain; the preset is
//! remembered per parameters' hash for the life of the process, so every context of those
//! parameters (loaded from bytes, unpickled, or a ciphertext's) knows it.

use crate::ckks::{Ctx, KeysInner, PyContext, PyEvalKeys};
use crate::{Failure, Res};
use he_core::circuits::bootstrapping::{
    BootstrapConfig, BootstrapKeys, BootstrapPreset, Bootstrapper, EncapsulationKey,
};
use he_core::ckks::Ciphertext as CoreCt;
use he_core::rlwe::{EvalKeyProvider, SecretKey as CoreSk};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::sync::{Arc, Mutex, OnceLock};

/// The presets by their Python names.
const PRESETS: [(&str, BootstrapPreset); 3] = [
    (
        "n12-insecure-for-testing",
        BootstrapPreset::N12InsecureForTesting,
    ),
    ("n16", BootstrapPreset::N16Levels9),
    ("n16-no-arcsine", BootstrapPreset::N16Levels9NoArcSine),
];

/// The Python name of a preset.
pub(crate) fn preset_name(p: BootstrapPreset) -> &'static str {
    PRESETS
        .iter()
        .find(|(_, q)| *q == p)
        .map_or("unknown", |(n, _)| *n)
}

fn parse_preset(name: &str) -> PyResult<BootstrapPreset> {
    let n = name.trim().replace('_', "-").to_ascii_lowercase();
    PRESETS
        .iter()
        .find(|(k, _)| *k == n)
        .map(|(_, p)| *p)
        .ok_or_else(|| {
            let names: Vec<String> = PRESETS.iter().map(|(k, _)| format!("{k:?}")).collect();
            PyValueError::new_err(format!(
                "unknown bootstrapping preset {name:?}: expected one of {}",
                names.join(", ")
            ))
        })
}

/// Parameters' hashes of the bootstrappable chains made in this process, with their preset.
fn registry() -> &'static Mutex<Vec<(u64, BootstrapPreset)>> {
    static REGISTRY: OnceLock<Mutex<Vec<(u64, BootstrapPreset)>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Vec::new()))
}

/// The preset whose chain has parameters `hash`, if one was made in this process.
pub(crate) fn preset_of(hash: u64) -> Option<BootstrapPreset> {
    let r = registry().lock().unwrap_or_else(|e| e.into_inner());
    r.iter().find(|(h, _)| *h == hash).map(|(_, p)| *p)
}

/// The shared context of a preset's chain (the preset remembered for its hash).
fn context_of(preset: BootstrapPreset) -> Res<Arc<Ctx>> {
    let params = BootstrapConfig::preset(preset).parameters()?;
    let hash = params.hash();
    {
        let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
        if !r.iter().any(|(h, _)| *h == hash) {
            r.push((hash, preset));
        }
    }
    Ctx::of(params)
}

/// `Context.bootstrappable(preset)`.
pub(crate) fn bootstrappable(py: Python<'_>, preset: &str) -> PyResult<PyContext> {
    let p = parse_preset(preset)?;
    let ctx = crate::guard(py, None, move || context_of(p))?;
    Ok(PyContext::wrap(ctx))
}

/// The preset and configuration of `ctx`, or the error saying it is not bootstrappable.
fn require(ctx: &Ctx) -> Res<(BootstrapPreset, BootstrapConfig)> {
    match preset_of(ctx.params.hash()) {
        Some(p) => Ok((p, BootstrapConfig::preset(p))),
        None => Err(Failure::Unsupported(
            "this context is not bootstrappable: make it with Context.bootstrappable(preset) (its parameters are the preset's chain)".into(),
        )),
    }
}

/// The bootstrapping keys attached to `ctx`, or the error saying why there are none.
pub(crate) fn attached_or_missing(ctx: &Ctx) -> Res<Arc<BootInner>> {
    require(ctx)?;
    ctx.attached_boot().ok_or_else(|| {
        Failure::Core(he_core::Error::MissingKey(
            "no bootstrapping keys: pass keys= or attach them with Context.set_bootstrap_keys(sk.bootstrap_keys())".into(),
        ))
    })
}

/// Bootstrapping keys and the bootstrapper built over them (on first use: it pre-encodes the
/// DFT factors).
pub(crate) struct BootInner {
    preset: BootstrapPreset,
    config: BootstrapConfig,
    keys: Arc<KeysInner>,
    encapsulation: Option<EncapsulationKey>,
    bootstrapper: Mutex<Option<Arc<Bootstrapper>>>,
}

impl BootInner {
    fn generate(ctx: &Ctx, sk: &CoreSk) -> Res<Self> {
        let (preset, config) = require(ctx)?;
        let BootstrapKeys {
            eval_keys,
            encapsulation,
        } = BootstrapKeys::generate(sk, &config)?;
        Ok(Self {
            preset,
            config,
            keys: Arc::new(KeysInner::new(ctx, eval_keys)?),
            encapsulation,
            bootstrapper: Mutex::new(None),
        })
    }

    fn bootstrapper(&self, ctx: &Ctx) -> Res<Arc<Bootstrapper>> {
        let mut slot = self.bootstrapper.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = slot.as_ref() {
            return Ok(b.clone());
        }
        let b = Arc::new(Bootstrapper::new(
            &ctx.params,
            &self.config,
            self.keys.set.clone(),
            self.encapsulation.clone(),
        )?);
        *slot = Some(b.clone());
        Ok(b)
    }

    /// Bootstraps `ct` (dropped to level 0 first): `levels_after` levels, the default scale.
    pub(crate) fn bootstrap(&self, ctx: &Ctx, ct: &CoreCt) -> Res<CoreCt> {
        Ok(self.bootstrapper(ctx)?.bootstrap(ct)?)
    }

    fn bytes(&self) -> usize {
        self.keys.set.bytes() + self.encapsulation.as_ref().map_or(0, |e| e.bytes())
    }
}

/// `SecretKey.bootstrap_keys()`.
pub(crate) fn generate(
    py: Python<'_>,
    ctx: &Arc<Ctx>,
    sk: &Arc<CoreSk>,
) -> PyResult<PyBootstrapKeys> {
    let (c, s) = (ctx.clone(), sk.clone());
    let inner = crate::guard(py, None, move || BootInner::generate(&c, &s))?;
    Ok(PyBootstrapKeys {
        ctx: ctx.clone(),
        inner: Arc::new(inner),
    })
}

/// Everything bootstrapping needs, from `SecretKey.bootstrap_keys()`: relinearization,
/// conjugation, the DFTs' rotations, and the two keys of sparse-secret encapsulation. Public
/// (no secret material); held in memory only: they do not serialize yet.
#[pyclass(module = "homefhe", name = "BootstrapKeys", frozen)]
pub(crate) struct PyBootstrapKeys {
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) inner: Arc<BootInner>,
}

impl PyBootstrapKeys {
    pub(crate) fn wrap(ctx: Arc<Ctx>, inner: Arc<BootInner>) -> Self {
        Self { ctx, inner }
    }
}

#[pymethods]
impl PyBootstrapKeys {
    /// The context of these keys.
    #[getter]
    fn context(&self) -> PyContext {
        PyContext::wrap(self.ctx.clone())
    }
    /// The preset's name.
    #[getter]
    fn preset(&self) -> &'static str {
        preset_name(self.inner.preset)
    }
    /// Level of a bootstrapped ciphertext.
    #[getter]
    fn levels_after(&self) -> usize {
        self.inner.config.levels_after()
    }
    /// The evaluation keys inside (relinearization, conjugation, rotations), usable for the
    /// ciphertext operators, e.g. `ctx.set_eval_keys(bk.eval_keys)`.
    #[getter]
    fn eval_keys(&self) -> PyEvalKeys {
        PyEvalKeys {
            ctx: self.ctx.clone(),
            inner: self.inner.keys.clone(),
        }
    }
    /// Bytes of key material held in memory.
    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.bytes()
    }
    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "BootstrapKeys do not serialize (he-core has no serialized form of the encapsulation key yet); generate them in the process that bootstraps",
        ))
    }
    fn __repr__(&self) -> String {
        format!(
            "BootstrapKeys(preset={:?}, levels_after={}, galois_keys={}, encapsulation={}, {:.1} MiB)",
            preset_name(self.inner.preset),
            self.inner.config.levels_after(),
            self.inner.keys.set.galois_elements().len(),
            self.inner.encapsulation.is_some(),
            self.inner.bytes() as f64 / 1048576.0
        )
    }
}

/// Registers the class.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBootstrapKeys>()
}
