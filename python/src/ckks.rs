//! CKKS bindings: `Context`, `SecretKey`, `PublicKey`, `EvalKeys`, `Plaintext`, `Ciphertext`.
//! (The bootstrapping methods call into [`crate::boot`].)

use crate::boot::{self, BootInner, PyBootstrapKeys};
use crate::container::{self, KEYSET_MAGIC};
use crate::{bytes_of, caught, count_secret_key, guard, restorer, Failure, Res};
use he_core::ckks::Plaintext as CorePt;
use he_core::ckks::{Ciphertext as CoreCt, Complex64, Decryptor, Encoder, Encryptor, Evaluator};
use he_core::rlwe::{
    EvalKeyProvider, EvalKeySet, KeyGenerator, KeyKind, KeySwitchKey, Parameters, ParametersIntent,
    ParametersLiteral, PublicKey as CorePk, SecretDistribution, SecretKey as CoreSk, Security,
};
use he_core::serialize::{self, Serializable};
use numpy::{AllowTypeChange, PyArray1, PyArrayLike1};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

// ----- the shared context --------------------------------------------------------------------

/// Parameters with their encoder and a key-less evaluator, shared by every object made under
/// them; optionally the evaluation keys attached with `Context.set_eval_keys`.
pub(crate) struct Ctx {
    pub(crate) params: Arc<Parameters>,
    pub(crate) encoder: Arc<Encoder>,
    bare: Evaluator,
    attached: RwLock<Option<Arc<KeysInner>>>,
    attached_boot: RwLock<Option<Arc<BootInner>>>,
}

/// An evaluation-key set and the evaluator that uses it.
pub(crate) struct KeysInner {
    pub(crate) set: Arc<EvalKeySet>,
    pub(crate) eval: Evaluator,
}

impl KeysInner {
    pub(crate) fn new(ctx: &Ctx, set: EvalKeySet) -> Res<Self> {
        let set = Arc::new(set);
        let eval = Evaluator::with_keys(&ctx.params, set.clone())?;
        Ok(Self { set, eval })
    }
}

/// Live contexts by parameters' hash.
type Cache = Mutex<Vec<(u64, Weak<Ctx>)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Vec::new()))
}

/// Whether a loader accepts parameters saved as insecure-for-testing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InsecureParams {
    /// Refused with a typed error (the default).
    Refuse,
    /// Accepted: the caller opted in by name (`allow_insecure=True`).
    Allow,
}

fn cached(hash: u64) -> Option<Arc<Ctx>> {
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    c.retain(|(_, w)| w.strong_count() > 0);
    c.iter()
        .find(|(h, _)| *h == hash)
        .and_then(|(_, w)| w.upgrade())
}

impl Ctx {
    /// The shared context of `params` (one per parameter set in the process, so that objects
    /// loaded separately work together).
    pub(crate) fn of(params: Arc<Parameters>) -> Res<Arc<Ctx>> {
        if let Some(c) = cached(params.hash()) {
            return Ok(c);
        }
        let encoder = Arc::new(Encoder::new(&params)?);
        let bare = Evaluator::new(&params)?;
        let ctx = Arc::new(Ctx {
            params,
            encoder,
            bare,
            attached: RwLock::new(None),
            attached_boot: RwLock::new(None),
        });
        let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
        c.push((ctx.params.hash(), Arc::downgrade(&ctx)));
        Ok(ctx)
    }

    /// Loads parameters from HomE's format, fully validated, reusing a live context of the
    /// same parameters. A set saved as insecure-for-testing loads only with
    /// [`InsecureParams::Allow`], or when this process already holds a context of exactly
    /// those parameters (it opted in when it made them; the pickle round trip).
    pub(crate) fn from_bytes(bytes: &[u8], insecure: InsecureParams) -> Res<Arc<Ctx>> {
        let params = Parameters::from_bytes_allow_insecure(bytes)?;
        if let Some(c) = cached(params.hash()) {
            return Ok(c);
        }
        if insecure == InsecureParams::Refuse {
            // The strict loader gives the typed refusal (or accepts a 128-bit set).
            return Ctx::of(Parameters::from_bytes(bytes)?);
        }
        Ctx::of(params)
    }

    fn attached(&self) -> Option<Arc<KeysInner>> {
        self.attached
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The bootstrapping keys attached with `Context.set_bootstrap_keys`, if any.
    pub(crate) fn attached_boot(&self) -> Option<Arc<BootInner>> {
        self.attached_boot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The evaluator to use: the given keys', the attached keys', or the key-less one.
    fn evaluator(&self, keys: Option<&Arc<KeysInner>>) -> Evaluator {
        match keys.cloned().or_else(|| self.attached()) {
            Some(k) => k.eval.clone(),
            None => self.bare.clone(),
        }
    }

    fn describe_short(&self) -> String {
        let lit = self.params.literal();
        format!(
            "N=2^{}, levels={}, log2(QP)={:.1}, scale=2^{}, dnum={}, security={}",
            lit.log_n,
            self.params.max_level(),
            self.params.log_qp(),
            lit.log_scale,
            self.params.dnum(),
            security_name(lit.security)
        )
    }
}

fn security_name(s: Security) -> &'static str {
    match s {
        Security::Bits128 => "128",
        Security::InsecureForTesting => "insecure-for-testing",
    }
}

fn parse_security(s: &Bound<'_, PyAny>) -> PyResult<Security> {
    if let Ok(n) = s.extract::<i64>() {
        return match n {
            128 => Ok(Security::Bits128),
            _ => Err(PyValueError::new_err(format!(
                "security = {n}: HomE enforces 128-bit security (128) or, for tests, \"insecure-for-testing\""
            ))),
        };
    }
    let t: String = s.extract()?;
    match t.as_str() {
        "128" | "128-bit" | "bits128" => Ok(Security::Bits128),
        "insecure-for-testing" | "insecure_for_testing" => Ok(Security::InsecureForTesting),
        _ => Err(PyValueError::new_err(format!(
            "security = {t:?}: expected 128 or \"insecure-for-testing\""
        ))),
    }
}

pub(crate) fn same_params(ctx: &Ctx, other: &Ctx) -> Res<()> {
    ctx.params.check_hash(other.params.hash())?;
    Ok(())
}

fn to_f64(values: &PyArrayLike1<'_, f64, AllowTypeChange>) -> Vec<f64> {
    values.as_array().iter().copied().collect()
}

// ----- Context ---------------------------------------------------------------------------------

/// CKKS parameters: ring degree, modulus chain, scale and security. Build one from intent
/// with `Context.ckks(depth=..., scale_bits=...)` or from explicit sizes or primes with
/// `Context.from_moduli(...)`. Every other object belongs to one context.
#[pyclass(module = "homefhe", name = "Context", frozen)]
pub(crate) struct PyContext {
    pub(crate) ctx: Arc<Ctx>,
}

impl PyContext {
    pub(crate) fn wrap(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }
}

#[pymethods]
impl PyContext {
    /// Parameters from intent: `depth` rescalings of `scale_bits`-bit primes, a base prime
    /// of `scale_bits + int_bits` bits; the smallest 128-bit-secure ring degree (or `log_n`)
    /// and the fewest key-switching digits that stay secure (or `dnum`).
    #[staticmethod]
    #[pyo3(signature = (depth, scale_bits=40, int_bits=20, log_n=None, dnum=None, security=None))]
    fn ckks(
        py: Python<'_>,
        depth: usize,
        scale_bits: u32,
        int_bits: u32,
        log_n: Option<u32>,
        dnum: Option<usize>,
        security: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        if let Some(s) = security {
            if parse_security(s)? != Security::Bits128 {
                return Err(PyValueError::new_err(
                    "Context.ckks derives 128-bit-secure parameters; for insecure test parameters use Context.from_moduli(..., security=\"insecure-for-testing\")",
                ));
            }
        }
        let intent = ParametersIntent {
            depth,
            scale_bits,
            int_bits,
            log_n,
            dnum,
            key_switching: he_core::rlwe::KeySwitching::Fewest,
        };
        let ctx = guard(py, None, move || Ctx::of(Parameters::from_intent(&intent)?))?;
        Ok(Self::wrap(ctx))
    }

    /// Parameters from explicit modulus sizes (`q_bits`, `p_bits`: bit sizes, the chain is
    /// generated deterministically) or explicit primes (`q`, `p`). `alpha`: primes per
    /// key-switching digit (None: automatic). `security`: 128 (checked) or
    /// "insecure-for-testing".
    #[staticmethod]
    #[pyo3(signature = (log_n, q_bits=None, p_bits=None, scale_bits=40.0, q=None, p=None, alpha=None, security=None, hamming_weight=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_moduli(
        py: Python<'_>,
        log_n: u32,
        q_bits: Option<Vec<u32>>,
        p_bits: Option<Vec<u32>>,
        scale_bits: f64,
        q: Option<Vec<u64>>,
        p: Option<Vec<u64>>,
        alpha: Option<usize>,
        security: Option<&Bound<'_, PyAny>>,
        hamming_weight: Option<usize>,
    ) -> PyResult<Self> {
        let security = match security {
            Some(s) => parse_security(s)?,
            None => Security::Bits128,
        };
        let secret = match hamming_weight {
            Some(h) => SecretDistribution::HammingWeight(h),
            None => SecretDistribution::UniformTernary,
        };
        let mut lit = ParametersLiteral {
            log_n,
            log_q: q_bits.clone().unwrap_or_default(),
            log_p: p_bits.clone().unwrap_or_default(),
            alpha,
            log_scale: scale_bits,
            secret,
            security,
        };
        let ctx = match (q, p) {
            (Some(q), Some(p)) => {
                if q_bits.is_some() || p_bits.is_some() {
                    return Err(PyValueError::new_err(
                        "give either bit sizes (q_bits, p_bits) or primes (q, p), not both",
                    ));
                }
                lit.log_q = Vec::new();
                guard(py, None, move || {
                    Ctx::of(Parameters::from_primes(lit, q, p)?)
                })?
            }
            (None, None) => {
                if q_bits.is_none() || p_bits.is_none() {
                    return Err(PyValueError::new_err(
                        "give q_bits and p_bits (bit sizes), or q and p (primes)",
                    ));
                }
                guard(py, None, move || Ctx::of(Parameters::new(lit)?))?
            }
            _ => {
                return Err(PyValueError::new_err(
                    "give both q and p (explicit primes), or neither",
                ))
            }
        };
        Ok(Self::wrap(ctx))
    }

    /// The chain of a bootstrapping preset: `"n12-insecure-for-testing"` (N = 2^12, not
    /// secure, for tests), `"n16"` (N = 2^16, 128-bit, 9 levels after bootstrapping, arcsine
    /// correction) or `"n16-no-arcsine"` (faster; less precise on large constant components).
    /// The context remembers the preset: `Ciphertext.bootstrap` works on it.
    #[staticmethod]
    fn bootstrappable(py: Python<'_>, preset: &str) -> PyResult<Self> {
        boot::bootstrappable(py, preset)
    }

    /// The bootstrapping preset of these parameters, or `None` when not bootstrappable.
    #[getter]
    fn bootstrap_preset(&self) -> Option<&'static str> {
        boot::preset_of(self.ctx.params.hash()).map(boot::preset_name)
    }

    /// Levels a bootstrapped ciphertext has (`None` when not bootstrappable).
    #[getter]
    fn levels_after(&self) -> Option<usize> {
        boot::preset_of(self.ctx.params.hash())
            .map(|p| he_core::circuits::bootstrapping::BootstrapConfig::preset(p).levels_after())
    }

    /// Attaches bootstrapping keys: `Ciphertext.bootstrap()` uses them when no keys are passed.
    /// `None` detaches.
    fn set_bootstrap_keys(&self, keys: Option<PyRef<'_, PyBootstrapKeys>>) -> PyResult<()> {
        let k = match keys {
            Some(k) => {
                caught(|| same_params(&self.ctx, &k.ctx))?;
                Some(k.inner.clone())
            }
            None => None,
        };
        *self
            .ctx
            .attached_boot
            .write()
            .unwrap_or_else(|e| e.into_inner()) = k;
        Ok(())
    }

    /// The bootstrapping keys attached with `set_bootstrap_keys`, if any.
    fn bootstrap_keys(&self) -> Option<PyBootstrapKeys> {
        self.ctx
            .attached_boot()
            .map(|inner| PyBootstrapKeys::wrap(self.ctx.clone(), inner))
    }

    /// Ring degree `N`.
    #[getter]
    fn degree(&self) -> usize {
        self.ctx.params.degree()
    }
    /// Number of slots, `N/2`.
    #[getter]
    fn slots(&self) -> usize {
        self.ctx.params.slots()
    }
    /// Highest level (number of rescalings available).
    #[getter]
    fn max_level(&self) -> usize {
        self.ctx.params.max_level()
    }
    /// Default scale `Δ` of fresh encodings.
    #[getter]
    fn scale(&self) -> f64 {
        self.ctx.params.default_scale()
    }
    /// The ciphertext primes `q_0..q_L`.
    #[getter]
    fn q(&self) -> Vec<u64> {
        self.ctx.params.q().to_vec()
    }
    /// The special primes of key switching.
    #[getter]
    fn p(&self) -> Vec<u64> {
        self.ctx.params.p().to_vec()
    }
    /// log2 of the whole modulus `QP`.
    #[getter]
    fn log_qp(&self) -> f64 {
        self.ctx.params.log_qp()
    }
    /// Key-switching digits.
    #[getter]
    fn dnum(&self) -> usize {
        self.ctx.params.dnum()
    }
    /// "128" or "insecure-for-testing".
    #[getter]
    fn security(&self) -> &'static str {
        security_name(self.ctx.params.literal().security)
    }
    /// Fingerprint of the parameters (every serialized object carries it).
    #[getter]
    fn params_hash(&self) -> u64 {
        self.ctx.params.hash()
    }
    /// One-line description (he-core's `Parameters::describe`).
    fn describe(&self) -> String {
        self.ctx.params.describe()
    }

    /// Generates a fresh secret key (ternary, from the OS's randomness).
    fn keygen(&self, py: Python<'_>) -> PyResult<PySecretKey> {
        let ctx = self.ctx.clone();
        let sk = guard(py, None, move || Ok(CoreSk::generate(&ctx.params)?))?;
        count_secret_key();
        Ok(PySecretKey {
            ctx: self.ctx.clone(),
            sk: Arc::new(sk),
        })
    }

    /// Attaches evaluation keys to the context: ciphertext operators (`*`, `rotate`, `sum`,
    /// `dot`) use them when no keys are passed explicitly. `None` detaches.
    fn set_eval_keys(&self, keys: Option<PyRef<'_, PyEvalKeys>>) -> PyResult<()> {
        let k = match keys {
            Some(k) => {
                caught(|| same_params(&self.ctx, &k.ctx))?;
                Some(k.inner.clone())
            }
            None => None,
        };
        *self.ctx.attached.write().unwrap_or_else(|e| e.into_inner()) = k;
        Ok(())
    }

    /// The evaluation keys attached with `set_eval_keys`, if any.
    fn eval_keys(&self) -> Option<PyEvalKeys> {
        self.ctx.attached().map(|inner| PyEvalKeys {
            ctx: self.ctx.clone(),
            inner,
        })
    }

    /// Encodes real values (up to `slots`) at `level` (default: the top) and `scale`
    /// (default: the context's).
    #[pyo3(signature = (values, level=None, scale=None))]
    fn encode(
        &self,
        py: Python<'_>,
        values: PyArrayLike1<'_, f64, AllowTypeChange>,
        level: Option<usize>,
        scale: Option<f64>,
    ) -> PyResult<PyPlaintext> {
        let v = to_f64(&values);
        let len = v.len();
        let ctx = self.ctx.clone();
        let pt = guard(py, None, move || {
            let l = level.unwrap_or(ctx.params.max_level());
            let s = scale.unwrap_or(ctx.params.default_scale());
            Ok(ctx.encoder.encode(&v, l, s)?)
        })?;
        Ok(PyPlaintext {
            ctx: self.ctx.clone(),
            pt,
            len,
        })
    }

    /// Decodes a plaintext to numpy (its first `len` slots).
    fn decode<'py>(
        &self,
        py: Python<'py>,
        pt: PyRef<'_, PyPlaintext>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        caught(|| same_params(&self.ctx, &pt.ctx))?;
        let enc = self.ctx.encoder.clone();
        let core = pt.pt.clone();
        let len = pt.len;
        let mut v = guard(py, None, move || Ok(enc.decode(&core)?))?;
        v.truncate(len);
        Ok(PyArray1::from_vec(py, v))
    }

    /// Encrypts a 1-D array of real values (at most `slots`): with a `PublicKey`, or with the
    /// `SecretKey` (seeded form, half the size). `level`/`scale` default to the top level and
    /// the context's scale.
    #[pyo3(signature = (values, key, level=None, scale=None))]
    fn encrypt(
        &self,
        py: Python<'_>,
        values: PyArrayLike1<'_, f64, AllowTypeChange>,
        key: &Bound<'_, PyAny>,
        level: Option<usize>,
        scale: Option<f64>,
    ) -> PyResult<PyCiphertext> {
        let v = to_f64(&values);
        encrypt_values(py, &self.ctx, v, key, level, scale)
    }

    /// A noise bound for `SecretKey.decrypt_flooded`, from an estimation run: `decoded` the
    /// decrypted values of a ciphertext computed like the real one (complex, or real for a
    /// real computation), `expected` the exact results, `scale` that ciphertext's scale.
    /// Returns log2 of the bound on the error's ℓ2 norm (Parseval on the canonical embedding;
    /// a real computation's imaginary error is counted as large as its real error).
    #[pyo3(signature = (decoded, expected, scale))]
    fn noise_bound_bits(
        &self,
        py: Python<'_>,
        decoded: &Bound<'_, PyAny>,
        expected: &Bound<'_, PyAny>,
        scale: f64,
    ) -> PyResult<f64> {
        let d = complex_vec(py, decoded)?;
        let e = complex_vec(py, expected)?;
        let real = d.iter().chain(&e).all(|c| c.im == 0.0);
        let est = caught(|| {
            Ok(he_core::ckks::NoiseEstimate::from_reference(
                &self.ctx.params,
                &d,
                &e,
                scale,
            )?)
        })?;
        Ok(est.log2_l2_norm() + if real { 0.5 } else { 0.0 })
    }

    /// Decrypts with `secret_key` (same as `secret_key.decrypt(ct)`).
    #[pyo3(signature = (ciphertext, secret_key, complex=false))]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        ciphertext: PyRef<'_, PyCiphertext>,
        secret_key: PyRef<'_, PySecretKey>,
        complex: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        caught(|| same_params(&self.ctx, &ciphertext.ctx))?;
        decrypt_ct(py, &secret_key, &ciphertext, complex)
    }

    /// Rotation steps `[1, 2, 4, ...]` that `Ciphertext.sum()` and `dot()` need for vectors
    /// of `length` values.
    #[staticmethod]
    fn sum_rotations(length: usize) -> Vec<i64> {
        let mut v = Vec::new();
        let mut s = 1usize;
        while s < length.max(1).next_power_of_two() {
            v.push(s as i64);
            s *= 2;
        }
        v
    }

    /// HomE's serialized parameters (versioned, checksummed; primes included).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.ctx.params.to_bytes())
    }

    /// Loads parameters written by `to_bytes` (re-validated, security included). A set made
    /// with `security="insecure-for-testing"` is refused unless `allow_insecure=True`.
    #[staticmethod]
    #[pyo3(signature = (data, allow_insecure=false))]
    fn from_bytes(py: Python<'_>, data: &Bound<'_, PyAny>, allow_insecure: bool) -> PyResult<Self> {
        let b = bytes_of(data)?.into_owned();
        let mode = if allow_insecure {
            InsecureParams::Allow
        } else {
            InsecureParams::Refuse
        };
        Ok(Self::wrap(guard(py, None, move || {
            Ctx::from_bytes(&b, mode)
        })?))
    }

    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let b = PyBytes::new(py, &self.ctx.params.to_bytes());
        Ok((
            restorer(py)?,
            PyTuple::new(
                py,
                [
                    "Context".into_pyobject(py)?.into_any(),
                    b.clone().into_any(),
                    b.into_any(),
                ],
            )?,
        ))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.downcast::<PyContext>() {
            Ok(o) => o.get().ctx.params.hash() == self.ctx.params.hash(),
            Err(_) => false,
        }
    }

    fn __hash__(&self) -> u64 {
        self.ctx.params.hash()
    }

    fn __repr__(&self) -> String {
        format!("Context({})", self.ctx.describe_short())
    }
}

pub(crate) fn encrypt_values(
    py: Python<'_>,
    ctx: &Arc<Ctx>,
    v: Vec<f64>,
    key: &Bound<'_, PyAny>,
    level: Option<usize>,
    scale: Option<f64>,
) -> PyResult<PyCiphertext> {
    let len = v.len();
    let c2 = ctx.clone();
    let ct = if let Ok(pk) = key.downcast::<PyPublicKey>() {
        let pk = pk.get();
        caught(|| same_params(ctx, &pk.ctx))?;
        let pk = pk.pk.clone();
        guard(py, None, move || {
            let l = level.unwrap_or(c2.params.max_level());
            let s = scale.unwrap_or(c2.params.default_scale());
            let pt = c2.encoder.encode(&v, l, s)?;
            Ok(Encryptor::new(&c2.params, (*pk).clone())?.encrypt(&pt)?)
        })?
    } else if let Ok(sk) = key.downcast::<PySecretKey>() {
        let sk = sk.borrow();
        caught(|| same_params(ctx, &sk.ctx))?;
        let skc = sk.sk.clone();
        guard(py, None, move || {
            let l = level.unwrap_or(c2.params.max_level());
            let s = scale.unwrap_or(c2.params.default_scale());
            let pt = c2.encoder.encode(&v, l, s)?;
            Ok(Decryptor::new(&skc).encrypt_symmetric(&pt)?)
        })?
    } else {
        return Err(PyTypeError::new_err(
            "key must be a homefhe.PublicKey or a homefhe.SecretKey",
        ));
    };
    Ok(PyCiphertext {
        ctx: ctx.clone(),
        ct,
        len,
    })
}

/// A 1-D array-like as complex values (through `numpy.asarray(x, complex128)`).
fn complex_vec(py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<Vec<Complex64>> {
    let a = py
        .import("numpy")?
        .call_method1("asarray", (x, "complex128"))?;
    if a.getattr("ndim")?.extract::<usize>()? != 1 {
        return Err(PyValueError::new_err("expected a 1-D array of values"));
    }
    let re: Vec<f64> = a.getattr("real")?.call_method0("tolist")?.extract()?;
    let im: Vec<f64> = a.getattr("imag")?.call_method0("tolist")?.extract()?;
    Ok(re
        .into_iter()
        .zip(im)
        .map(|(r, i)| Complex64::new(r, i))
        .collect())
}

fn decrypt_ct<'py>(
    py: Python<'py>,
    sk: &PySecretKey,
    ct: &PyCiphertext,
    complex: bool,
) -> PyResult<Bound<'py, PyAny>> {
    caught(|| same_params(&sk.ctx, &ct.ctx))?;
    let (skc, core, enc, len) = (sk.sk.clone(), ct.ct.clone(), sk.ctx.encoder.clone(), ct.len);
    if complex {
        let mut v: Vec<Complex64> = guard(py, None, move || {
            let pt = Decryptor::new(&skc).decrypt(&core)?;
            Ok(enc.decode_complex(&pt)?)
        })?;
        v.truncate(len);
        Ok(PyArray1::from_vec(py, v).into_any())
    } else {
        let mut v = guard(py, None, move || {
            let pt = Decryptor::new(&skc).decrypt(&core)?;
            Ok(enc.decode(&pt)?)
        })?;
        v.truncate(len);
        Ok(PyArray1::from_vec(py, v).into_any())
    }
}

// ----- keys --------------------------------------------------------------------------------

/// The secret key. It has no `to_bytes` and does not pickle: write it only with the explicit
/// `export_secret_bytes()` and read it with `SecretKey.import_secret_bytes(data, context)`.
/// Its `repr` never shows key material.
#[pyclass(module = "homefhe", name = "SecretKey", frozen)]
pub(crate) struct PySecretKey {
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) sk: Arc<CoreSk>,
}

#[pymethods]
impl PySecretKey {
    /// The context of this key.
    #[getter]
    fn context(&self) -> PyContext {
        PyContext::wrap(self.ctx.clone())
    }

    /// The public key of this secret key (fresh randomness each call).
    fn public_key(&self, py: Python<'_>) -> PyResult<PyPublicKey> {
        let sk = self.sk.clone();
        let pk = guard(py, None, move || Ok(CorePk::generate(&sk)?))?;
        Ok(PyPublicKey {
            ctx: self.ctx.clone(),
            pk: Arc::new(pk),
        })
    }

    /// Evaluation keys for exactly what is asked: relinearization (`relin`), one Galois key per
    /// rotation step in `rotations`, and conjugation.
    #[pyo3(signature = (relin=true, rotations=Vec::new(), conjugation=false))]
    fn eval_keys(
        &self,
        py: Python<'_>,
        relin: bool,
        rotations: Vec<i64>,
        conjugation: bool,
    ) -> PyResult<PyEvalKeys> {
        let (sk, ctx) = (self.sk.clone(), self.ctx.clone());
        let inner = guard(py, None, move || {
            let kg = KeyGenerator::new(&sk);
            let mut set = EvalKeySet::new();
            if relin {
                set.insert(kg.relinearization_key()?);
            }
            for k in kg.rotation_keys(&rotations, conjugation)? {
                set.insert(k);
            }
            KeysInner::new(&ctx, set)
        })?;
        Ok(PyEvalKeys {
            ctx: self.ctx.clone(),
            inner: Arc::new(inner),
        })
    }

    /// Bootstrapping keys for the context's preset (the context must come from
    /// `Context.bootstrappable`): everything `Ciphertext.bootstrap` needs, public.
    fn bootstrap_keys(&self, py: Python<'_>) -> PyResult<PyBootstrapKeys> {
        boot::generate(py, &self.ctx, &self.sk)
    }

    /// Decrypts with noise flooding (IND-CPA-D: the result may then be shown to the party that
    /// computed the ciphertext). `noise_bound_bits`: log2 of a bound on the ℓ2 norm of the
    /// ciphertext's error, from an estimation run of the same computation
    /// (`Context.noise_bound_bits`). Adds a Gaussian `2^(s/2+1)·√t` times that bound; returns
    /// `(values, report)`, the report with `noise_bound_bits`, `log2_flooding_sigma` (per
    /// coefficient) and `log2_slot_sigma` (the flooding noise per value: about `-bits` kept).
    #[pyo3(signature = (ciphertext, noise_bound_bits, statistical_security=30, decryptions=1, complex=false))]
    fn decrypt_flooded<'py>(
        &self,
        py: Python<'py>,
        ciphertext: PyRef<'_, PyCiphertext>,
        noise_bound_bits: f64,
        statistical_security: u32,
        decryptions: u64,
        complex: bool,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, pyo3::types::PyDict>)> {
        caught(|| same_params(&self.ctx, &ciphertext.ctx))?;
        let (skc, core, enc, len) = (
            self.sk.clone(),
            ciphertext.ct.clone(),
            self.ctx.encoder.clone(),
            ciphertext.len,
        );
        let config = he_core::ckks::FloodingConfig {
            statistical_security,
            decryptions,
        };
        let (mut v, r) = guard(py, None, move || {
            let est = he_core::ckks::NoiseEstimate::from_log2_l2_norm(noise_bound_bits)?;
            let (pt, r) = Decryptor::new(&skc).decrypt_flooded(&core, &est, &config)?;
            Ok((enc.decode_complex(&pt)?, r))
        })?;
        v.truncate(len);
        let d = pyo3::types::PyDict::new(py);
        d.set_item("noise_bound_bits", r.noise_log2_l2)?;
        d.set_item("log2_flooding_sigma", r.flood_log2_sigma)?;
        d.set_item("log2_slot_sigma", r.slot_log2_sigma)?;
        let values = if complex {
            PyArray1::from_vec(py, v).into_any()
        } else {
            PyArray1::from_vec(py, v.into_iter().map(|c| c.re).collect::<Vec<f64>>()).into_any()
        };
        Ok((values, d))
    }

    /// Decrypts a ciphertext to numpy (float64, or complex128 with `complex=True`).
    ///
    /// The raw decryption: its error is a function of the secret key, so never show the
    /// result to the party that computed the ciphertext (IND-CPA-D, Li–Micciancio 2021); use
    /// `decrypt_flooded` for results that leave the client (model outputs: `Plan.decrypt_output`
    /// floods by default).
    #[pyo3(signature = (ciphertext, complex=false))]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        ciphertext: PyRef<'_, PyCiphertext>,
        complex: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        decrypt_ct(py, self, &ciphertext, complex)
    }

    /// Writes the secret key in HomE's format. Named explicitly on purpose: store the result
    /// only where the data owner's secrets go.
    fn export_secret_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let b = serialize::secret_key_to_bytes(&self.sk);
        PyBytes::new(py, &b)
    }

    /// Reads a secret key written by `export_secret_bytes`, checked against `context`.
    #[staticmethod]
    fn import_secret_bytes(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        context: PyRef<'_, PyContext>,
    ) -> PyResult<Self> {
        let b = bytes_of(data)?.into_owned();
        let ctx = context.ctx.clone();
        let c2 = ctx.clone();
        let sk = guard(py, None, move || {
            Ok(serialize::secret_key_from_bytes(&c2.params, &b)?)
        })?;
        count_secret_key();
        Ok(Self {
            ctx,
            sk: Arc::new(sk),
        })
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "a SecretKey does not pickle; write it explicitly with export_secret_bytes() and read it with SecretKey.import_secret_bytes(data, context)",
        ))
    }

    fn __repr__(&self) -> String {
        format!("SecretKey({}, <secret>)", self.ctx.describe_short())
    }
}

/// The public key (for public-key encryption). Pickles; `to_bytes` uses the seeded form.
#[pyclass(module = "homefhe", name = "PublicKey", frozen)]
pub(crate) struct PyPublicKey {
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) pk: Arc<CorePk>,
}

#[pymethods]
impl PyPublicKey {
    /// The context of this key.
    #[getter]
    fn context(&self) -> PyContext {
        PyContext::wrap(self.ctx.clone())
    }
    /// Whether the key is stored in seeded (half-size) form.
    #[getter]
    fn seeded(&self) -> bool {
        self.pk.seed().is_some()
    }
    /// HomE's serialized form (seeded where possible).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.pk.to_bytes())
    }
    /// Loads a public key, validated against `context`.
    #[staticmethod]
    fn from_bytes(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        context: PyRef<'_, PyContext>,
    ) -> PyResult<Self> {
        let b = bytes_of(data)?.into_owned();
        let ctx = context.ctx.clone();
        let c2 = ctx.clone();
        let pk = guard(py, None, move || Ok(CorePk::from_bytes(&c2.params, &b)?))?;
        Ok(Self {
            ctx,
            pk: Arc::new(pk),
        })
    }
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        reduce(py, "PublicKey", &self.ctx, self.pk.to_bytes())
    }
    fn __repr__(&self) -> String {
        format!(
            "PublicKey({}, seeded={})",
            self.ctx.describe_short(),
            self.pk.seed().is_some()
        )
    }
}

/// Evaluation keys: the relinearization key and Galois keys (rotations, conjugation), exactly
/// those generated. Public: give them to the server.
#[pyclass(module = "homefhe", name = "EvalKeys", frozen)]
pub(crate) struct PyEvalKeys {
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) inner: Arc<KeysInner>,
}

impl PyEvalKeys {
    pub(crate) fn from_set(ctx: &Arc<Ctx>, set: EvalKeySet) -> Res<Self> {
        Ok(Self {
            ctx: ctx.clone(),
            inner: Arc::new(KeysInner::new(ctx, set)?),
        })
    }

    fn blobs(&self) -> Res<Vec<Vec<u8>>> {
        let set = &self.inner.set;
        let mut out = Vec::new();
        if let Ok(k) = set.relinearization_key() {
            out.push(k.to_bytes());
        }
        for g in set.galois_elements() {
            out.push(set.galois_key(g)?.to_bytes());
        }
        Ok(out)
    }

    pub(crate) fn encode(&self) -> Res<Vec<u8>> {
        Ok(container::write(
            KEYSET_MAGIC,
            self.ctx.params.hash(),
            &[],
            &self.blobs()?,
        ))
    }

    /// [`encode`](Self::encode) without the GIL (key sets are tens of MiB).
    fn encode_unlocked(&self, py: Python<'_>) -> PyResult<Vec<u8>> {
        let me = Self {
            ctx: self.ctx.clone(),
            inner: self.inner.clone(),
        };
        guard(py, None, move || me.encode())
    }

    pub(crate) fn decode(ctx: &Arc<Ctx>, bytes: &[u8]) -> Res<Self> {
        let o = container::open("evaluation keys", KEYSET_MAGIC, bytes)?;
        ctx.params.check_hash(o.params_hash)?;
        if !o.meta.is_empty() {
            return Err(Failure::Decode(
                "cannot decode evaluation keys: unexpected metadata".into(),
            ));
        }
        let mut set = EvalKeySet::new();
        let mut seen_relin = false;
        let mut seen = std::collections::BTreeSet::new();
        let mut others = std::collections::BTreeSet::new();
        for b in o.blobs {
            let k = KeySwitchKey::from_bytes(&ctx.params, b)?;
            // Compared, not matched: he-core adds key kinds (bootstrapping's) over time.
            let kind = k.kind();
            let dup = if kind == KeyKind::Relinearization {
                std::mem::replace(&mut seen_relin, true)
            } else if let KeyKind::Galois(g) = kind {
                !seen.insert(g)
            } else {
                !others.insert(format!("{kind:?}"))
            };
            if dup {
                return Err(Failure::Decode(
                    "cannot decode evaluation keys: a key appears twice".into(),
                ));
            }
            set.insert(k);
        }
        Self::from_set(ctx, set)
    }
}

#[pymethods]
impl PyEvalKeys {
    /// The context of these keys.
    #[getter]
    fn context(&self) -> PyContext {
        PyContext::wrap(self.ctx.clone())
    }
    /// Whether the relinearization key is present.
    #[getter]
    fn has_relin(&self) -> bool {
        self.inner.set.relinearization_key().is_ok()
    }
    /// Galois elements of the rotation/conjugation keys held.
    #[getter]
    fn galois_elements(&self) -> Vec<u64> {
        self.inner.set.galois_elements()
    }
    /// Rotation steps covered (left rotations in `0 < s < slots`; negative steps map here).
    #[getter]
    fn rotations(&self) -> Vec<i64> {
        let n = self.ctx.params.degree();
        let have = self.inner.set.galois_elements();
        (1..self.ctx.params.slots() as i64)
            .filter(|s| have.contains(&he_core::rlwe::galois_element_for_rotation(n, *s)))
            .collect()
    }
    /// Whether the conjugation key is present.
    #[getter]
    fn has_conjugation(&self) -> bool {
        let g = he_core::rlwe::galois_element_conjugate(self.ctx.params.degree());
        self.inner.set.galois_elements().contains(&g)
    }
    /// Bytes of key material held in memory.
    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.set.bytes()
    }
    /// A container of HomE-format keys (each seeded, half size), checksummed.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = self.encode_unlocked(py)?;
        Ok(PyBytes::new(py, &b))
    }
    /// Loads keys written by `to_bytes`, validated against `context`.
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
        let b = self.encode_unlocked(py)?;
        reduce(py, "EvalKeys", &self.ctx, b)
    }
    fn __repr__(&self) -> String {
        format!(
            "EvalKeys({}, relin={}, galois_keys={}, conjugation={}, {:.1} MiB)",
            self.ctx.describe_short(),
            self.has_relin(),
            self.inner.set.galois_elements().len(),
            self.has_conjugation(),
            self.inner.set.bytes() as f64 / 1048576.0
        )
    }
}

fn reduce<'py>(
    py: Python<'py>,
    kind: &str,
    ctx: &Ctx,
    body: Vec<u8>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
    let args = PyTuple::new(
        py,
        [
            kind.into_pyobject(py)?.into_any(),
            PyBytes::new(py, &ctx.params.to_bytes()).into_any(),
            PyBytes::new(py, &body).into_any(),
        ],
    )?;
    Ok((restorer(py)?, args))
}

// ----- plaintexts ----------------------------------------------------------------------------

/// An encoded (unencrypted) vector at a level and scale.
#[pyclass(module = "homefhe", name = "Plaintext", frozen)]
pub(crate) struct PyPlaintext {
    ctx: Arc<Ctx>,
    pt: CorePt,
    len: usize,
}

#[pymethods]
impl PyPlaintext {
    /// Level.
    #[getter]
    fn level(&self) -> usize {
        self.pt.level()
    }
    /// Scale `Δ`.
    #[getter]
    fn scale(&self) -> f64 {
        self.pt.scale()
    }
    fn __len__(&self) -> usize {
        self.len
    }
    /// HomE's serialized form.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.pt.to_bytes())
    }
    /// Loads a plaintext, validated against `context`; `length`: values to decode (default all).
    #[staticmethod]
    #[pyo3(signature = (data, context, length=None))]
    fn from_bytes(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        context: PyRef<'_, PyContext>,
        length: Option<usize>,
    ) -> PyResult<Self> {
        let b = bytes_of(data)?.into_owned();
        let ctx = context.ctx.clone();
        let c2 = ctx.clone();
        let pt = guard(py, None, move || Ok(CorePt::from_bytes(&c2.params, &b)?))?;
        let len = checked_len(length, &ctx)?;
        Ok(Self { ctx, pt, len })
    }
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let (f, args) = reduce(py, "Plaintext", &self.ctx, self.pt.to_bytes())?;
        let args = args
            .add(PyTuple::new(py, [self.len])?)?
            .downcast_into::<PyTuple>()?;
        Ok((f, args))
    }
    fn __repr__(&self) -> String {
        format!(
            "Plaintext(len={}, level={}, scale=2^{:.2}, N=2^{})",
            self.len,
            self.pt.level(),
            self.pt.scale().log2(),
            self.ctx.params.literal().log_n
        )
    }
}

fn checked_len(length: Option<usize>, ctx: &Ctx) -> PyResult<usize> {
    let slots = ctx.params.slots();
    match length {
        None => Ok(slots),
        Some(l) if l <= slots => Ok(l),
        Some(l) => Err(PyValueError::new_err(format!(
            "length {l} exceeds the {slots} slots"
        ))),
    }
}

// ----- ciphertexts -------------------------------------------------------------------------

/// A CKKS ciphertext of a vector of up to `slots` real values.
///
/// Operators: `+`, `-` (ciphertext, numpy array or scalar — a scalar is added to the first
/// `len(self)` values only, the other slots stay zero; levels are aligned by dropping
/// limbs, which is exact; scales must match), `*` (by a ciphertext: multiply and relinearize
/// when a relinearization key is available; by an array or a scalar: encoded at the scale of
/// the prime the next `rescale()` removes, so rescaling restores the scale exactly), unary `-`.
/// `rotate`, `conjugate`, `sum`, `dot` need Galois keys (attached to the context with
/// `Context.set_eval_keys`, or passed as `keys=`).
#[pyclass(module = "homefhe", name = "Ciphertext", frozen)]
pub(crate) struct PyCiphertext {
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) ct: CoreCt,
    pub(crate) len: usize,
}

enum Operand {
    Ct(CoreCt),
    Values(Vec<f64>),
    Scalar(f64),
}

fn operand(ctx: &Ctx, o: &Bound<'_, PyAny>) -> PyResult<Operand> {
    if let Ok(c) = o.downcast::<PyCiphertext>() {
        let c = c.get();
        caught(|| same_params(ctx, &c.ctx))?;
        return Ok(Operand::Ct(c.ct.clone()));
    }
    if o.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err("a bool is not a CKKS operand"));
    }
    if let Ok(x) = o.extract::<f64>() {
        if o.downcast::<numpy::PyUntypedArray>().is_err() {
            return Ok(Operand::Scalar(x));
        }
    }
    let a: PyArrayLike1<'_, f64, AllowTypeChange> = o.extract().map_err(|_| {
        PyTypeError::new_err(
            "expected a homefhe.Ciphertext, a 1-D array of real numbers, or a real scalar",
        )
    })?;
    Ok(Operand::Values(to_f64(&a)))
}

#[derive(Clone, Copy)]
enum Bin {
    Add,
    Sub,
    RSub,
    Mul,
}

fn align_levels(ev: &Evaluator, a: &mut CoreCt, b: &mut CoreCt) -> Res<()> {
    let l = a.level().min(b.level());
    if a.level() > l {
        ev.drop_to_level(a, l)?;
    }
    if b.level() > l {
        ev.drop_to_level(b, l)?;
    }
    Ok(())
}

fn binop(
    ctx: &Ctx,
    ev: &Evaluator,
    a: &CoreCt,
    b: Operand,
    op: Bin,
    have_relin: bool,
) -> Res<CoreCt> {
    let mut x = a.clone();
    match (op, b) {
        (Bin::Add | Bin::Sub | Bin::RSub, Operand::Ct(mut y)) => {
            align_levels(ev, &mut x, &mut y)?;
            match op {
                Bin::Add => ev.add_assign(&mut x, &y)?,
                Bin::Sub => ev.sub_assign(&mut x, &y)?,
                _ => {
                    ev.sub_assign(&mut y, &x)?;
                    x = y;
                }
            }
        }
        (Bin::Add | Bin::Sub | Bin::RSub, Operand::Scalar(c)) => {
            if matches!(op, Bin::RSub) {
                ev.negate_assign(&mut x)?;
            }
            ev.add_const_assign(&mut x, if matches!(op, Bin::Sub) { -c } else { c })?;
        }
        (Bin::Add | Bin::Sub | Bin::RSub, Operand::Values(v)) => {
            let pt = ctx.encoder.encode(&v, x.level(), x.scale())?;
            match op {
                Bin::Add => ev.add_plain_assign(&mut x, &pt)?,
                Bin::Sub => ev.sub_plain_assign(&mut x, &pt)?,
                _ => {
                    ev.negate_assign(&mut x)?;
                    ev.add_plain_assign(&mut x, &pt)?;
                }
            }
        }
        (Bin::Mul, Operand::Ct(mut y)) => {
            align_levels(ev, &mut x, &mut y)?;
            x = if have_relin && x.size() == 2 && y.size() == 2 {
                ev.mul_relin(&x, &y)?
            } else {
                ev.mul(&x, &y)?
            };
        }
        (Bin::Mul, Operand::Scalar(c)) => ev.mul_const_assign(&mut x, c)?,
        (Bin::Mul, Operand::Values(v)) => {
            let l = x.level();
            let ql = *ctx.params.q().get(l).ok_or_else(|| {
                Failure::Invalid(format!("ciphertext level {l} outside the chain"))
            })? as f64;
            let pt = ctx.encoder.encode(&v, l, ql)?;
            ev.mul_plain_assign(&mut x, &pt)?;
        }
    }
    Ok(x)
}

impl PyCiphertext {
    fn keys_of(&self, keys: Option<PyRef<'_, PyEvalKeys>>) -> PyResult<Option<Arc<KeysInner>>> {
        match keys {
            Some(k) => {
                caught(|| same_params(&self.ctx, &k.ctx))?;
                Ok(Some(k.inner.clone()))
            }
            None => Ok(self.ctx.attached()),
        }
    }

    fn derive(&self, ct: CoreCt, len: usize) -> Self {
        Self {
            ctx: self.ctx.clone(),
            ct,
            len,
        }
    }

    fn binary(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        op: Bin,
        keys: Option<Arc<KeysInner>>,
    ) -> PyResult<Self> {
        let mut b = operand(&self.ctx, other)?;
        // A scalar is added to the vector's `len` values only, so that the slots after them
        // stay zero (what `sum` and `dot` rely on).
        if let (Operand::Scalar(c), Bin::Add | Bin::Sub | Bin::RSub) = (&b, op) {
            if self.len < self.ctx.params.slots() {
                b = Operand::Values(vec![*c; self.len]);
            }
        }
        let len = match &b {
            Operand::Ct(_) => {
                let o = other.downcast::<PyCiphertext>()?.get().len;
                self.len.max(o)
            }
            Operand::Values(v) => self.len.max(v.len()),
            Operand::Scalar(_) => self.len,
        };
        let keys = keys.or_else(|| self.ctx.attached());
        let ev = self.ctx.evaluator(keys.as_ref());
        let have_relin = keys
            .as_ref()
            .is_some_and(|k| k.set.relinearization_key().is_ok());
        let (ctx, a) = (self.ctx.clone(), self.ct.clone());
        let ct = guard(py, None, move || binop(&ctx, &ev, &a, b, op, have_relin))?;
        Ok(self.derive(ct, len))
    }

    fn unary(
        &self,
        py: Python<'_>,
        keys: Option<PyRef<'_, PyEvalKeys>>,
        len: usize,
        f: impl FnOnce(&Evaluator, &CoreCt) -> Res<CoreCt> + Send,
    ) -> PyResult<Self> {
        let keys = self.keys_of(keys)?;
        let ev = self.ctx.evaluator(keys.as_ref());
        let a = self.ct.clone();
        let ct = guard(py, None, move || f(&ev, &a))?;
        Ok(self.derive(ct, len))
    }
}

#[pymethods]
impl PyCiphertext {
    /// `None`: numpy defers `array + ciphertext` (and `-`, `*`) to the ciphertext's reflected
    /// operators instead of broadcasting element by element.
    #[classattr]
    fn __array_ufunc__(py: Python<'_>) -> PyObject {
        py.None()
    }
    /// Level (rescalings left).
    #[getter]
    fn level(&self) -> usize {
        self.ct.level()
    }
    /// Scale `Δ`.
    #[getter]
    fn scale(&self) -> f64 {
        self.ct.scale()
    }
    /// Number of components (2; 3 after a product without relinearization).
    #[getter]
    fn size(&self) -> usize {
        self.ct.size()
    }
    /// Whether the ciphertext is in seeded (half-size) form: fresh secret-key encryptions.
    #[getter]
    fn seeded(&self) -> bool {
        self.ct.seed().is_some()
    }
    /// The context.
    #[getter]
    fn context(&self) -> PyContext {
        PyContext::wrap(self.ctx.clone())
    }
    /// Number of values `decrypt` returns.
    fn __len__(&self) -> usize {
        self.len
    }

    fn __add__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.binary(py, o, Bin::Add, None)
    }
    fn __radd__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.binary(py, o, Bin::Add, None)
    }
    fn __sub__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.binary(py, o, Bin::Sub, None)
    }
    fn __rsub__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.binary(py, o, Bin::RSub, None)
    }
    fn __mul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.binary(py, o, Bin::Mul, None)
    }
    fn __rmul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.binary(py, o, Bin::Mul, None)
    }
    fn __neg__(&self, py: Python<'_>) -> PyResult<Self> {
        self.unary(py, None, self.len, |ev, a| {
            let mut x = a.clone();
            ev.negate_assign(&mut x)?;
            Ok(x)
        })
    }

    /// `self + other` (explicit keys unused; for symmetry with `mul`).
    fn add(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.binary(py, other, Bin::Add, None)
    }
    /// `self - other`.
    fn sub(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Self> {
        self.binary(py, other, Bin::Sub, None)
    }
    /// `self * other`, relinearized with `keys` (or the context's attached keys).
    #[pyo3(signature = (other, keys=None))]
    fn mul(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        keys: Option<PyRef<'_, PyEvalKeys>>,
    ) -> PyResult<Self> {
        let k = self.keys_of(keys)?;
        self.binary(py, other, Bin::Mul, k)
    }
    /// Relinearizes a 3-component product.
    #[pyo3(signature = (keys=None))]
    fn relinearize(&self, py: Python<'_>, keys: Option<PyRef<'_, PyEvalKeys>>) -> PyResult<Self> {
        self.unary(py, keys, self.len, |ev, a| Ok(ev.relinearize(a)?))
    }
    /// Divides by the last prime of the chain: one level down, scale divided by that prime.
    fn rescale(&self, py: Python<'_>) -> PyResult<Self> {
        self.unary(py, None, self.len, |ev, a| Ok(ev.rescale(a)?))
    }
    /// Drops limbs down to `level` (exact; the scale is unchanged).
    fn drop_to_level(&self, py: Python<'_>, level: usize) -> PyResult<Self> {
        self.unary(py, None, self.len, move |ev, a| {
            let mut x = a.clone();
            ev.drop_to_level(&mut x, level)?;
            Ok(x)
        })
    }
    /// Overrides the recorded scale (the data is unchanged): for callers managing scales by
    /// hand, e.g. to add values whose scales differ by a known, negligible ratio.
    fn with_scale(&self, scale: f64) -> PyResult<Self> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(PyValueError::new_err(format!(
                "scale must be finite and positive, got {scale}"
            )));
        }
        // Rebuilt from its parts (the public constructor), the data unchanged.
        let ct = caught(|| {
            Ok(
                CoreCt::from_parts(self.ct.parts().to_vec(), scale, self.ct.params_hash())?
                    .with_key_id(self.ct.key_id()),
            )
        })?;
        Ok(self.derive(ct, self.len))
    }
    /// Rotates the slots left by `steps` (negative: right), as `numpy.roll(x, -steps)` over
    /// all `slots` slots. Needs the Galois key of `steps`.
    #[pyo3(signature = (steps, keys=None))]
    fn rotate(
        &self,
        py: Python<'_>,
        steps: i64,
        keys: Option<PyRef<'_, PyEvalKeys>>,
    ) -> PyResult<Self> {
        let slots = self.ctx.params.slots();
        self.unary(py, keys, slots, move |ev, a| Ok(ev.rotate(a, steps)?))
    }
    /// Complex conjugation of every slot (needs the conjugation key).
    #[pyo3(signature = (keys=None))]
    fn conjugate(&self, py: Python<'_>, keys: Option<PyRef<'_, PyEvalKeys>>) -> PyResult<Self> {
        self.unary(py, keys, self.len, |ev, a| Ok(ev.conjugate(a)?))
    }
    /// Sum of the first `len(self)` values (zeros assumed after them, as after `encrypt`),
    /// in slot 0 (length-1 result). Needs the keys of `Context.sum_rotations(len(self))`.
    #[pyo3(signature = (keys=None))]
    fn sum(&self, py: Python<'_>, keys: Option<PyRef<'_, PyEvalKeys>>) -> PyResult<Self> {
        let count = self.len.max(1).next_power_of_two();
        self.unary(py, keys, 1, move |ev, a| Ok(ev.sum_slots(a, count)?))
    }
    /// Inner product with a ciphertext or an array: `(self * other).rescale().sum()`.
    #[pyo3(signature = (other, keys=None))]
    fn dot(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        keys: Option<PyRef<'_, PyEvalKeys>>,
    ) -> PyResult<Self> {
        let k = self.keys_of(keys)?;
        let prod = self.binary(py, other, Bin::Mul, k.clone())?;
        let prod = prod.unary(py, None, prod.len, |ev, a| Ok(ev.rescale(a)?))?;
        let count = prod.len.max(1).next_power_of_two();
        let ev = self.ctx.evaluator(k.as_ref());
        let a = prod.ct.clone();
        let ct = guard(py, None, move || Ok(ev.sum_slots(&a, count)?))?;
        Ok(self.derive(ct, 1))
    }
    /// Bootstraps (any level; dropped to level 0 first): the result has
    /// `context.levels_after` levels and the default scale. Uses `keys` or the keys attached
    /// with `Context.set_bootstrap_keys`.
    #[pyo3(signature = (keys=None))]
    fn bootstrap(
        &self,
        py: Python<'_>,
        keys: Option<PyRef<'_, PyBootstrapKeys>>,
    ) -> PyResult<Self> {
        let inner = match keys {
            Some(k) => {
                caught(|| same_params(&self.ctx, &k.ctx))?;
                k.inner.clone()
            }
            None => caught(|| boot::attached_or_missing(&self.ctx))?,
        };
        let (ctx, a) = (self.ctx.clone(), self.ct.clone());
        let ct = guard(py, None, move || inner.bootstrap(&ctx, &a))?;
        Ok(self.derive(ct, self.len))
    }
    /// Decrypts with `secret_key` (same as `secret_key.decrypt(self)`).
    #[pyo3(signature = (secret_key, complex=false))]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        secret_key: PyRef<'_, PySecretKey>,
        complex: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        decrypt_ct(py, &secret_key, self, complex)
    }
    /// HomE's serialized form (seeded, half size, for fresh secret-key encryptions).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.ct.to_bytes())
    }
    /// Loads a ciphertext, validated against `context`; `length`: values `decrypt` returns
    /// (default all slots).
    #[staticmethod]
    #[pyo3(signature = (data, context, length=None))]
    fn from_bytes(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        context: PyRef<'_, PyContext>,
        length: Option<usize>,
    ) -> PyResult<Self> {
        let b = bytes_of(data)?.into_owned();
        let ctx = context.ctx.clone();
        let len = checked_len(length, &ctx)?;
        let c2 = ctx.clone();
        let ct = guard(py, None, move || Ok(CoreCt::from_bytes(&c2.params, &b)?))?;
        Ok(Self { ctx, ct, len })
    }
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let (f, args) = reduce(py, "Ciphertext", &self.ctx, self.ct.to_bytes())?;
        let args = args
            .add(PyTuple::new(py, [self.len])?)?
            .downcast_into::<PyTuple>()?;
        Ok((f, args))
    }
    fn __repr__(&self) -> String {
        format!(
            "Ciphertext(len={}, level={}, scale=2^{:.2}, size={}, seeded={}, N=2^{}, params={:016x})",
            self.len,
            self.ct.level(),
            self.ct.scale().log2(),
            self.ct.size(),
            self.ct.seed().is_some(),
            self.ctx.params.literal().log_n,
            self.ctx.params.hash()
        )
    }
}

/// Rebuilds an object from `__reduce__`'s tuple: kind, parameters' bytes, object bytes
/// (and the length for vectors).
#[pyfunction]
#[pyo3(signature = (kind, params, data, length=None))]
pub(crate) fn _restore_native(
    py: Python<'_>,
    kind: &str,
    params: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    length: Option<usize>,
) -> PyResult<PyObject> {
    let pb = bytes_of(params)?.into_owned();
    let ctx = guard(py, None, move || {
        Ctx::from_bytes(&pb, InsecureParams::Refuse)
    })?;
    let pyctx = Py::new(py, PyContext::wrap(ctx.clone()))?;
    let pyctx = pyctx.bind(py).borrow();
    Ok(match kind {
        "Context" => PyContext::wrap(ctx).into_pyobject(py)?.into_any().unbind(),
        "PublicKey" => PyPublicKey::from_bytes(py, data, pyctx)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "EvalKeys" => PyEvalKeys::from_bytes(py, data, pyctx)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "Plaintext" => PyPlaintext::from_bytes(py, data, pyctx, length)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "Ciphertext" => PyCiphertext::from_bytes(py, data, pyctx, length)?
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        other => crate::nnapi::restore(py, other, &ctx, data, length)?,
    })
}

/// Registers the classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyContext>()?;
    m.add_class::<PySecretKey>()?;
    m.add_class::<PyPublicKey>()?;
    m.add_class::<PyEvalKeys>()?;
    m.add_class::<PyPlaintext>()?;
    m.add_class::<PyCiphertext>()?;
    m.add_function(wrap_pyfunction!(_restore_native, m)?)?;
    Ok(())
}
