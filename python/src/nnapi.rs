//! Model bindings (`he-nn`): `Model`, `Plan`, `EncryptedTensor`, and the sample-data readers.
//!
//! The split follows nn's own: the client plans, generates keys (`Plan.keygen`), encrypts
//! (`Plan.encrypt_input`) and decrypts (`Plan.decrypt_output`); the server needs only the
//! model, the parameters and the public evaluation keys (`Plan.run`, which builds nn's
//! `Engine` from the plan and an `EvalKeyProvider`, never from a secret key).

use crate::ckks::{Ctx, KeysInner, PyContext, PyEvalKeys, PyPublicKey, PySecretKey};
use crate::container::{self, Meta, TENSOR_MAGIC};
use crate::{bytes_of, caught, count_secret_key, guard, restorer, Failure, Res};
use he_core::ckks::{Ciphertext as CoreCt, Decryptor, Encryptor};
use he_core::rlwe::{EvalKeyProvider, EvalKeySet, PublicKey as CorePk, SecretKey as CoreSk};
use he_core::serialize::Serializable;
use he_nn::exec::{EncryptedTensor, Engine, TensorLayout};
use he_nn::onnx::{import_onnx, ImportOptions};
use he_nn::plan::PackedLayout;
use he_nn::{Mode, Plan, PlanOptions};
use numpy::{AllowTypeChange, PyArray1, PyArray2, PyArrayLikeDyn, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use std::sync::{Arc, Mutex};

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Throughput => "throughput",
        Mode::Latency => "latency",
    }
}

fn parse_mode(s: &str) -> PyResult<Mode> {
    match s {
        "throughput" | "batch" => Ok(Mode::Throughput),
        "latency" => Ok(Mode::Latency),
        _ => Err(PyValueError::new_err(format!(
            "mode = {s:?}: expected \"throughput\" (batch) or \"latency\""
        ))),
    }
}

/// A batch of flat inputs from a numpy array: `(len,)` is one input, `(B, ...)` is `B` inputs
/// whose trailing dimensions hold `len` values each.
fn batch_of(x: &PyArrayLikeDyn<'_, f64, AllowTypeChange>, len: usize) -> PyResult<Vec<Vec<f64>>> {
    let a = x.as_array();
    let shape = a.shape().to_vec();
    let flat: Vec<f64> = a.iter().copied().collect();
    let (b, per) = match shape.as_slice() {
        [] => (1, 1),
        [n] => (1, *n),
        [b, rest @ ..] => (*b, rest.iter().product::<usize>()),
    };
    if per != len {
        return Err(PyValueError::new_err(format!(
            "input of shape {shape:?}: the model takes {len} values per input (give shape ({len},) or (batch, ...) with {len} values per row)"
        )));
    }
    if b == 0 {
        return Err(PyValueError::new_err("an empty batch"));
    }
    Ok(flat.chunks(per.max(1)).map(|c| c.to_vec()).collect())
}

fn to_2d<'py>(
    py: Python<'py>,
    rows: Vec<Vec<f64>>,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let n = rows.len();
    let flat: Vec<f64> = rows.into_iter().flatten().collect();
    if flat.len() != n * cols {
        return Err(Failure::Invalid(format!(
            "output rows of uneven length: {} values for {n} x {cols}",
            flat.len()
        ))
        .into());
    }
    PyArray1::from_vec(py, flat).reshape([n, cols])
}

// ----- Model -----------------------------------------------------------------------------------

/// A network imported from ONNX (what PyTorch exports): convolutions, dense layers, pooling,
/// batch norm folded, activations as `x²` or polynomial approximations.
#[pyclass(module = "homefhe", name = "Model", frozen)]
pub(crate) struct PyModel {
    net: he_nn::Network,
    notes: Vec<(String, String, String)>,
    onnx: Arc<Vec<u8>>,
    opts: ImportOptions,
}

impl PyModel {
    fn import(py: Python<'_>, bytes: Vec<u8>, opts: ImportOptions) -> PyResult<Self> {
        let (m, bytes) = guard(py, None, move || {
            let m = import_onnx(&bytes, &opts)?;
            Ok((m, bytes))
        })?;
        Ok(Self {
            notes: m
                .notes
                .iter()
                .map(|n| (n.node.clone(), n.op.clone(), n.became.clone()))
                .collect(),
            net: m.network,
            onnx: Arc::new(bytes),
            opts,
        })
    }
}

#[pymethods]
impl PyModel {
    /// Imports an ONNX file. `activation_degree`: degree of the polynomial replacing ReLU/GELU;
    /// `activation_bound`: its interval half-width (None: measured from `plan(calibration=)`).
    #[staticmethod]
    #[pyo3(signature = (path, activation_degree=7, activation_bound=None))]
    fn from_onnx(
        py: Python<'_>,
        path: std::path::PathBuf,
        activation_degree: usize,
        activation_bound: Option<f64>,
    ) -> PyResult<Self> {
        let bytes = std::fs::read(&path).map_err(|e| {
            Failure::Nn(he_nn::NnError::Io {
                path: path.display().to_string(),
                source: e,
            })
        })?;
        Self::import(
            py,
            bytes,
            ImportOptions {
                activation_degree,
                activation_bound,
            },
        )
    }

    /// Imports ONNX bytes (as `from_onnx`).
    #[staticmethod]
    #[pyo3(signature = (data, activation_degree=7, activation_bound=None))]
    fn from_onnx_bytes(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        activation_degree: usize,
        activation_bound: Option<f64>,
    ) -> PyResult<Self> {
        let b = bytes_of(data)?.into_owned();
        Self::import(
            py,
            b,
            ImportOptions {
                activation_degree,
                activation_bound,
            },
        )
    }

    /// Input shape (batch dimension excluded).
    #[getter]
    fn input_shape(&self) -> Vec<usize> {
        self.net.input_shape().to_vec()
    }
    /// Values per input.
    #[getter]
    fn input_len(&self) -> usize {
        self.net.input_shape().iter().product()
    }
    /// Values per output.
    #[getter]
    fn output_len(&self) -> usize {
        self.net.output_len()
    }
    /// What import did with each ONNX node: `(node, op, became)`.
    #[getter]
    fn notes(&self) -> Vec<(String, String, String)> {
        self.notes.clone()
    }

    /// Exact cleartext forward pass (no CKKS approximation): numpy `(B, output_len)`.
    fn forward<'py>(
        &self,
        py: Python<'py>,
        x: PyArrayLikeDyn<'_, f64, AllowTypeChange>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let xs = batch_of(&x, self.input_len())?;
        let net = &self.net;
        let out = guard(py, None, move || {
            xs.iter()
                .map(|x| Ok(net.forward(x)?))
                .collect::<Res<Vec<_>>>()
        })?;
        to_2d(py, out, self.net.output_len())
    }

    /// Plans the model for CKKS: parameters, levels and scales, packing, the exact keys
    /// needed. `mode`: "throughput" (one input per slot, up to N/2 per batch, no rotations) or
    /// "latency" (one input per ciphertext set). `context`: use these parameters (the server
    /// does, with the client's `EvalKeys.context`) instead of deriving them; `calibration`:
    /// inputs for measuring activation intervals and the output range. `noise_flooding`
    /// (default True): `decrypt_output` adds noise flooding (IND-CPA-D, s = 30) so that the
    /// outputs can be shared; the planner chooses the scale for it (it costs ~26 bits, and
    /// needs N >= 2^14). `noise_flooding=False` only for outputs that never leave the client.
    #[pyo3(signature = (mode="throughput", context=None, log_n=None, scale_bits=None, min_scale_bits=None, max_scale_bits=None, int_bits=None, calibration=None, noise_flooding=true))]
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        py: Python<'_>,
        mode: &str,
        context: Option<PyRef<'_, PyContext>>,
        log_n: Option<u32>,
        scale_bits: Option<u32>,
        min_scale_bits: Option<u32>,
        max_scale_bits: Option<u32>,
        int_bits: Option<u32>,
        calibration: Option<PyArrayLikeDyn<'_, f64, AllowTypeChange>>,
        noise_flooding: bool,
    ) -> PyResult<PyPlan> {
        let mut o = PlanOptions::new(parse_mode(mode)?);
        // One chain only: a bootstrapping plan's encapsulation key has no bytes form yet, and
        // the client/server split ships keys as bytes.
        o.bootstrapping = he_nn::plan::Bootstrapping::Off;
        if !noise_flooding {
            o.flooding = None;
        }
        o.parameters = context.map(|c| c.ctx.params.clone());
        o.log_n = log_n;
        o.scale_bits = scale_bits;
        if let Some(m) = min_scale_bits {
            o.min_scale_bits = m;
        }
        if let Some(m) = max_scale_bits {
            o.max_scale_bits = m;
        }
        o.int_bits = int_bits;
        if let Some(c) = calibration {
            o.calibration = batch_of(&c, self.input_len())?;
        }
        let calibration = o.calibration.clone();
        let net = &self.net;
        let (plan, ctx) = guard(py, None, move || {
            let p = Plan::new(net, &o)?;
            let ctx = Ctx::of(p.params.clone())?;
            Ok((p, ctx))
        })?;
        Ok(PyPlan {
            plan: Arc::new(plan),
            ctx,
            engine: Mutex::new(None),
            onnx: self.onnx.clone(),
            opts: self.opts,
            calibration,
        })
    }

    /// The ONNX bytes the model was imported from (load with `Model.from_onnx_bytes`).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.onnx)
    }

    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let args = PyTuple::new(
            py,
            [
                "Model".into_pyobject(py)?.into_any(),
                PyBytes::new(py, &self.onnx).into_any(),
                self.opts.activation_degree.into_pyobject(py)?.into_any(),
                self.opts.activation_bound.into_pyobject(py)?.into_any(),
            ],
        )?;
        Ok((restorer(py)?, args))
    }

    fn __repr__(&self) -> String {
        format!(
            "Model(input_shape={:?}, output_len={}, nodes={}, onnx_bytes={})",
            self.net.input_shape(),
            self.net.output_len(),
            self.net.nodes.len(),
            self.onnx.len()
        )
    }
}

// ----- Plan --------------------------------------------------------------------------------------

/// A planned model. `print(plan)` shows nn's report (parameters, per-step levels and scales,
/// keys, approximations, memory). Client side: `keygen`, `encrypt_input`, `decrypt_output`;
/// server side: `run(ciphertexts, eval_keys)` (public keys only).
#[pyclass(module = "homefhe", name = "Plan", frozen)]
pub(crate) struct PyPlan {
    plan: Arc<Plan>,
    ctx: Arc<Ctx>,
    /// The engine of the last evaluation keys used (weights are encoded once per engine); the
    /// keys are held so that identity by pointer stays valid.
    engine: Mutex<Option<(Arc<KeysInner>, Arc<Engine>)>>,
    /// The model's ONNX bytes and import options, and the calibration inputs (for pickling:
    /// a plan is rebuilt from the model, its parameters and these).
    onnx: Arc<Vec<u8>>,
    opts: ImportOptions,
    calibration: Vec<Vec<f64>>,
}

impl PyPlan {
    fn check_ctx(&self, other: &Ctx) -> PyResult<()> {
        caught(|| Ok(self.ctx.params.check_hash(other.params.hash())?))
    }

    fn engine(
        &self,
        py: Python<'_>,
        keys: &PyEvalKeys,
        threads: Option<usize>,
    ) -> PyResult<Arc<Engine>> {
        {
            let g = self.engine.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((k, e)) = g.as_ref() {
                if Arc::ptr_eq(k, &keys.inner) {
                    return Ok(e.clone());
                }
            }
        }
        let plan = self.plan.clone();
        let set: Arc<dyn EvalKeyProvider> = keys.inner.set.clone();
        let e = Arc::new(guard(py, threads, move || Ok(Engine::new(&plan, set)?))?);
        *self.engine.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((keys.inner.clone(), e.clone()));
        Ok(e)
    }
}

fn report(
    py: Python<'_>,
    progress: Option<&Bound<'_, PyAny>>,
    done: usize,
    total: usize,
) -> PyResult<()> {
    let Some(p) = progress else { return Ok(()) };
    if p.is_none() {
        return Ok(());
    }
    if let Ok(flag) = p.extract::<bool>() {
        if flag {
            let width = 30;
            let fill = (width * done)
                .checked_div(total)
                .unwrap_or(width)
                .min(width);
            let line = format!(
                "\rhomefhe [{}{}] {done}/{total} batches",
                "#".repeat(fill),
                " ".repeat(width - fill)
            );
            let sys = py.import("sys")?;
            let err = sys.getattr("stderr")?;
            err.call_method1("write", (line + if done == total { "\n" } else { "" },))?;
            err.call_method0("flush")?;
        }
        return Ok(());
    }
    p.call1((done, total))?;
    Ok(())
}

#[pymethods]
impl PyPlan {
    /// The parameters the plan runs under.
    #[getter]
    fn context(&self) -> PyContext {
        PyContext::wrap(self.ctx.clone())
    }
    /// "throughput" or "latency".
    #[getter]
    fn mode(&self) -> &'static str {
        mode_name(self.plan.mode)
    }
    /// Multiplicative depth.
    #[getter]
    fn depth(&self) -> usize {
        self.plan.depth
    }
    /// Values per input.
    #[getter]
    fn input_len(&self) -> usize {
        self.plan.input_len()
    }
    /// Values per output.
    #[getter]
    fn output_len(&self) -> usize {
        self.plan.output_len()
    }
    /// Inputs per ciphertext batch (N/2 in throughput mode, 1 in latency mode).
    #[getter]
    fn batch_capacity(&self) -> usize {
        self.plan.batch_capacity()
    }
    /// Rotation steps whose Galois keys the plan needs (empty in throughput mode).
    #[getter]
    fn rotation_steps(&self) -> Vec<i64> {
        self.plan.rotation_steps.clone()
    }
    /// Whether the plan multiplies ciphertexts (needs the relinearization key).
    #[getter]
    fn needs_relinearization(&self) -> bool {
        self.plan.needs_relinearization()
    }
    /// Polynomial approximations made, one line each.
    #[getter]
    fn approximations(&self) -> Vec<String> {
        self.plan.approximations.clone()
    }
    /// The noise flooding `decrypt_output` applies: a dict with `statistical_security`,
    /// `decryptions`, `log2_error_before` (the simulated CKKS error of an output) and
    /// `log2_flooding_sigma` (the flooding noise per output after), or None when planned with
    /// `noise_flooding=False`.
    #[getter]
    fn noise_flooding<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(f) = &self.plan.flooding else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("statistical_security", f.config.statistical_security)?;
        d.set_item("decryptions", f.config.decryptions)?;
        d.set_item("log2_error_before", f.log2_rms_before)?;
        d.set_item("log2_flooding_sigma", f.log2_sigma)?;
        Ok(Some(d))
    }
    /// nn's multi-line report (`Plan::describe`).
    fn describe(&self) -> String {
        self.plan.describe()
    }
    fn __str__(&self) -> String {
        self.plan.describe()
    }
    /// Pickles as the model's ONNX bytes, the parameters, the mode and the calibration inputs;
    /// unpickling plans again under the same parameters (the identical plan).
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let calibration = if self.calibration.is_empty() {
            py.None().into_bound(py)
        } else {
            to_2d(py, self.calibration.clone(), self.plan.input_len())?.into_any()
        };
        let args = PyTuple::new(
            py,
            [
                "Plan".into_pyobject(py)?.into_any(),
                PyBytes::new(py, &self.ctx.params.to_bytes()).into_any(),
                PyBytes::new(py, &self.onnx).into_any(),
                self.opts.activation_degree.into_pyobject(py)?.into_any(),
                self.opts.activation_bound.into_pyobject(py)?.into_any(),
                mode_name(self.plan.mode).into_pyobject(py)?.into_any(),
                calibration,
                pyo3::types::PyBool::new(py, self.plan.flooding.is_some())
                    .to_owned()
                    .into_any(),
            ],
        )?;
        Ok((restorer(py)?, args))
    }
    fn __repr__(&self) -> String {
        format!(
            "Plan(mode={}, depth={}, input_len={}, output_len={}, batch_capacity={}, rotations={}, {})",
            mode_name(self.plan.mode),
            self.plan.depth,
            self.plan.input_len(),
            self.plan.output_len(),
            self.plan.batch_capacity(),
            self.plan.rotation_steps.len(),
            self.ctx.params.describe()
        )
    }

    /// Cleartext dry run of the identical plan in f64; `noise_seed` adds simulated CKKS noise.
    /// Returns numpy `(B, output_len)`.
    #[pyo3(signature = (x, noise_seed=None, threads=None))]
    fn simulate<'py>(
        &self,
        py: Python<'py>,
        x: PyArrayLikeDyn<'_, f64, AllowTypeChange>,
        noise_seed: Option<u64>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let xs = batch_of(&x, self.plan.input_len())?;
        let plan = self.plan.clone();
        let out = guard(py, threads, move || Ok(plan.simulate(&xs, noise_seed)?))?;
        to_2d(py, out, self.plan.output_len())
    }

    /// Client side: a fresh secret key and the evaluation keys this plan needs (and no others).
    /// Returns `(secret_key, eval_keys)`; the public key is `secret_key.public_key()`.
    #[pyo3(signature = (threads=None))]
    fn keygen(
        &self,
        py: Python<'_>,
        threads: Option<usize>,
    ) -> PyResult<(PySecretKey, PyEvalKeys)> {
        let plan = self.plan.clone();
        let ctx = self.ctx.clone();
        let (sk, ek) = guard(py, threads, move || {
            let sk = CoreSk::generate(&plan.params)?;
            let set = EvalKeySet::generate(
                &sk,
                plan.needs_relinearization(),
                &plan.rotation_steps,
                false,
            )?;
            let ek = PyEvalKeys::from_set(&ctx, set)?;
            Ok((sk, ek))
        })?;
        count_secret_key();
        Ok((
            PySecretKey {
                ctx: self.ctx.clone(),
                sk: Arc::new(sk),
            },
            ek,
        ))
    }

    /// Client side: encrypts numpy inputs (`(input_len,)` or `(B, ...)`) in the plan's layout,
    /// `batch_capacity` inputs per ciphertext batch. `key`: the `SecretKey` (seeded
    /// ciphertexts, half the upload) or a `PublicKey`.
    #[pyo3(signature = (x, key, threads=None))]
    fn encrypt_input(
        &self,
        py: Python<'_>,
        x: PyArrayLikeDyn<'_, f64, AllowTypeChange>,
        key: &Bound<'_, PyAny>,
        threads: Option<usize>,
    ) -> PyResult<PyEncryptedTensor> {
        let xs = batch_of(&x, self.plan.input_len())?;
        let count = xs.len();
        let plan = self.plan.clone();
        let enc = self.ctx.encoder.clone();
        let cap = plan.batch_capacity().max(1);
        let chunks = if let Ok(pk) = key.downcast::<PyPublicKey>() {
            let pk = pk.get();
            self.check_ctx(&pk.ctx)?;
            let pk: CorePk = (*pk.pk).clone();
            guard(py, threads, move || {
                let e = Encryptor::new(&plan.params, pk)?;
                xs.chunks(cap)
                    .map(|b| Ok(plan.encrypt(&enc, &e, b)?))
                    .collect::<Res<Vec<_>>>()
            })?
        } else if let Ok(sk) = key.downcast::<PySecretKey>() {
            let sk = sk.get();
            self.check_ctx(&sk.ctx)?;
            let sk = sk.sk.clone();
            guard(py, threads, move || {
                let d = Decryptor::new(&sk);
                xs.chunks(cap)
                    .map(|b| Ok(plan.encrypt_symmetric(&enc, &d, b)?))
                    .collect::<Res<Vec<_>>>()
            })?
        } else {
            return Err(PyTypeError::new_err(
                "key must be a homefhe.SecretKey or a homefhe.PublicKey",
            ));
        };
        Ok(PyEncryptedTensor {
            ctx: self.ctx.clone(),
            chunks,
            count,
        })
    }

    /// Server side: evaluates the model on encrypted inputs with the public evaluation keys
    /// only. `progress`: a callable `progress(done, total)` called after each ciphertext
    /// batch, or `True` for a bar on stderr. `threads`: worker threads for this call.
    #[pyo3(signature = (ciphertexts, eval_keys, progress=None, threads=None))]
    fn run(
        &self,
        py: Python<'_>,
        ciphertexts: PyRef<'_, PyEncryptedTensor>,
        eval_keys: PyRef<'_, PyEvalKeys>,
        progress: Option<&Bound<'_, PyAny>>,
        threads: Option<usize>,
    ) -> PyResult<PyEncryptedTensor> {
        self.check_ctx(&ciphertexts.ctx)?;
        self.check_ctx(&eval_keys.ctx)?;
        let engine = self.engine(py, &eval_keys, threads)?;
        let total = ciphertexts.chunks.len();
        let mut out = Vec::with_capacity(total);
        report(py, progress, 0, total)?;
        for (i, c) in ciphertexts.chunks.iter().enumerate() {
            let e = engine.clone();
            let input = c.clone();
            out.push(guard(py, threads, move || Ok(e.run(input)?))?);
            report(py, progress, i + 1, total)?;
        }
        Ok(PyEncryptedTensor {
            ctx: self.ctx.clone(),
            chunks: out,
            count: ciphertexts.count,
        })
    }

    /// Client side: decrypts the server's output to numpy `(B, output_len)`.
    #[pyo3(signature = (ciphertexts, secret_key, threads=None))]
    fn decrypt_output<'py>(
        &self,
        py: Python<'py>,
        ciphertexts: PyRef<'_, PyEncryptedTensor>,
        secret_key: PyRef<'_, PySecretKey>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.check_ctx(&ciphertexts.ctx)?;
        self.check_ctx(&secret_key.ctx)?;
        let (plan, sk, enc) = (
            self.plan.clone(),
            secret_key.sk.clone(),
            self.ctx.encoder.clone(),
        );
        let chunks = ciphertexts.chunks.clone();
        let out = guard(py, threads, move || {
            let d = Decryptor::new(&sk);
            let mut rows = Vec::new();
            for c in &chunks {
                rows.extend(plan.decrypt(&enc, &d, c)?);
            }
            Ok(rows)
        })?;
        let cols = out
            .first()
            .map(|r| r.len())
            .unwrap_or(self.plan.output_len());
        to_2d(py, out, cols)
    }
}

// ----- EncryptedTensor -----------------------------------------------------------------------

/// Encrypted model inputs or outputs: one or more ciphertext batches in a plan's layout.
#[pyclass(module = "homefhe", name = "EncryptedTensor", frozen)]
pub(crate) struct PyEncryptedTensor {
    ctx: Arc<Ctx>,
    chunks: Vec<EncryptedTensor>,
    count: usize,
}

/// Writes an encrypted tensor: layouts in the metadata, ciphertexts as HomE blobs.
fn encode_tensor(ctx: &Ctx, chunks: &[EncryptedTensor], count: usize) -> Vec<u8> {
    let mut meta = Vec::new();
    let mut put = |v: usize| meta.extend_from_slice(&(v as u64).to_le_bytes());
    put(count);
    put(chunks.len());
    let mut blobs = Vec::new();
    for c in chunks {
        match c.layout {
            TensorLayout::Batch { batch, len } => {
                put(0);
                put(batch);
                put(len);
                put(0);
            }
            TensorLayout::Packed(l) => {
                put(1);
                put(l.len);
                put(l.period);
                put(l.tiles);
            }
        }
        put(c.cts.len());
        blobs.extend(c.cts.iter().map(|ct| ct.to_bytes()));
    }
    container::write(TENSOR_MAGIC, ctx.params.hash(), &meta, &blobs)
}

impl PyEncryptedTensor {
    /// [`encode_tensor`] without the GIL (a throughput batch is hundreds of MiB).
    fn encode_unlocked(&self, py: Python<'_>) -> PyResult<Vec<u8>> {
        let chunks = &self.chunks;
        let (ctx, count) = (self.ctx.clone(), self.count);
        guard(py, None, move || Ok(encode_tensor(&ctx, chunks, count)))
    }

    fn decode(ctx: &Arc<Ctx>, bytes: &[u8]) -> Res<Self> {
        const WHAT: &str = "encrypted tensor";
        let o = container::open(WHAT, TENSOR_MAGIC, bytes)?;
        ctx.params.check_hash(o.params_hash)?;
        let slots = ctx.params.slots();
        let bad = |r: String| Failure::Decode(format!("cannot decode {WHAT}: {r}"));
        let mut m = Meta::new(WHAT, o.meta);
        let nblobs = o.blobs.len();
        let count = m.usize_max(usize::MAX >> 1, "input count")?;
        let nchunks = m.usize_max(nblobs.max(1), "batch count")?;
        let mut blobs = o.blobs.into_iter();
        let mut chunks = Vec::with_capacity(nchunks);
        let mut inputs = 0usize;
        for _ in 0..nchunks {
            let tag = m.u64()?;
            let (a, b, c) = (
                m.usize_max(usize::MAX >> 1, "layout field")?,
                m.usize_max(usize::MAX >> 1, "layout field")?,
                m.usize_max(usize::MAX >> 1, "layout field")?,
            );
            let n = m.usize_max(nblobs, "ciphertext count")?;
            let layout = match tag {
                0 => {
                    if a == 0 || a > slots || n != b || c != 0 {
                        return Err(bad(format!(
                            "batch layout of {a} inputs x {b} elements with {n} ciphertexts (at most {slots} inputs, one ciphertext per element)"
                        )));
                    }
                    inputs += a;
                    TensorLayout::Batch { batch: a, len: b }
                }
                1 => {
                    let l = PackedLayout::new(a, slots);
                    if l.period != b || l.tiles != c || n != c {
                        return Err(bad(format!(
                            "packed layout len {a} period {b} tiles {c} with {n} ciphertexts, expected period {} tiles {}",
                            l.period, l.tiles
                        )));
                    }
                    inputs += 1;
                    TensorLayout::Packed(l)
                }
                t => return Err(bad(format!("unknown layout tag {t}"))),
            };
            let mut cts = Vec::with_capacity(n);
            for _ in 0..n {
                let blob = blobs
                    .next()
                    .ok_or_else(|| bad("fewer ciphertexts than the layouts need".into()))?;
                cts.push(CoreCt::from_bytes(&ctx.params, blob)?);
            }
            chunks.push(EncryptedTensor { layout, cts });
        }
        m.finish()?;
        if blobs.next().is_some() {
            return Err(bad("more ciphertexts than the layouts need".into()));
        }
        if inputs != count {
            return Err(bad(format!(
                "{count} inputs recorded, layouts hold {inputs}"
            )));
        }
        Ok(Self {
            ctx: ctx.clone(),
            chunks,
            count,
        })
    }
}

#[pymethods]
impl PyEncryptedTensor {
    /// Number of inputs (images) held.
    fn __len__(&self) -> usize {
        self.count
    }
    /// Number of ciphertext batches.
    #[getter]
    fn batches(&self) -> usize {
        self.chunks.len()
    }
    /// Number of ciphertexts.
    #[getter]
    fn ciphertexts(&self) -> usize {
        self.chunks.iter().map(|c| c.cts.len()).sum()
    }
    /// Level of the ciphertexts (of the first one).
    #[getter]
    fn level(&self) -> Option<usize> {
        self.chunks
            .first()
            .and_then(|c| c.cts.first())
            .map(|c| c.level())
    }
    /// Scale of the ciphertexts (of the first one).
    #[getter]
    fn scale(&self) -> Option<f64> {
        self.chunks
            .first()
            .and_then(|c| c.cts.first())
            .map(|c| c.scale())
    }
    /// The context.
    #[getter]
    fn context(&self) -> PyContext {
        PyContext::wrap(self.ctx.clone())
    }
    /// A checksummed container of HomE-format ciphertexts with their layout.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = self.encode_unlocked(py)?;
        Ok(PyBytes::new(py, &b))
    }
    /// Loads a tensor written by `to_bytes`, validated against `context`.
    #[staticmethod]
    fn from_bytes(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        context: PyRef<'_, PyContext>,
    ) -> PyResult<Self> {
        let b = bytes_of(data)?.into_owned();
        let ctx = context.ctx.clone();
        guard(py, None, move || Self::decode(&ctx, &b))
    }
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let body = self.encode_unlocked(py)?;
        let args = PyTuple::new(
            py,
            [
                "EncryptedTensor".into_pyobject(py)?.into_any(),
                PyBytes::new(py, &self.ctx.params.to_bytes()).into_any(),
                PyBytes::new(py, &body).into_any(),
            ],
        )?;
        Ok((restorer(py)?, args))
    }
    fn __repr__(&self) -> String {
        let lvl = self.level().map(|l| l.to_string()).unwrap_or("-".into());
        let sc = self
            .scale()
            .map(|s| format!("2^{:.2}", s.log2()))
            .unwrap_or("-".into());
        format!(
            "EncryptedTensor(inputs={}, batches={}, ciphertexts={}, level={lvl}, scale={sc}, N=2^{})",
            self.count,
            self.chunks.len(),
            self.ciphertexts(),
            self.ctx.params.literal().log_n
        )
    }
}

/// Restores the nn objects for `_restore_native`.
pub(crate) fn restore(
    py: Python<'_>,
    kind: &str,
    ctx: &Arc<Ctx>,
    data: &Bound<'_, PyAny>,
    _length: Option<usize>,
) -> PyResult<PyObject> {
    match kind {
        "EncryptedTensor" => {
            let b = bytes_of(data)?.into_owned();
            let c = ctx.clone();
            let t = guard(py, None, move || PyEncryptedTensor::decode(&c, &b))?;
            Ok(t.into_pyobject(py)?.into_any().unbind())
        }
        other => Err(PyValueError::new_err(format!(
            "unknown object kind {other:?}"
        ))),
    }
}

// ----- data readers ---------------------------------------------------------------------------

/// Reads an IDX3 image file (MNIST format) as numpy `(n, rows*cols)`, `pixel * scale + shift`
/// (default `pixel / 255`, the committed models' preprocessing).
#[pyfunction]
#[pyo3(signature = (path, scale=1.0/255.0, shift=0.0))]
fn read_idx_images<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    scale: f64,
    shift: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (rows, per) = guard(py, None, move || {
        let (_, r, c, _) = he_nn::data::read_idx3(&path)?;
        Ok((he_nn::data::read_images(&path, scale, shift)?, r * c))
    })?;
    to_2d(py, rows, per)
}

/// Reads an IDX1 label file as a numpy `uint8` array.
#[pyfunction]
fn read_idx_labels<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
) -> PyResult<Bound<'py, PyArray1<u8>>> {
    let v = guard(py, None, move || Ok(he_nn::data::read_idx1(&path)?))?;
    Ok(PyArray1::from_vec(py, v))
}

/// Registers the classes and functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyModel>()?;
    m.add_class::<PyPlan>()?;
    m.add_class::<PyEncryptedTensor>()?;
    m.add_function(wrap_pyfunction!(read_idx_images, m)?)?;
    m.add_function(wrap_pyfunction!(read_idx_labels, m)?)?;
    Ok(())
}
