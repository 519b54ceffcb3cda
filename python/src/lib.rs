//! # homefhe — Python bindings of HomE
//!
//! PyO3 (abi3) bindings of `he-core` (CKKS: parameters, keys, encryption, the evaluator,
//! serialization, bootstrapping) and `he-nn` (ONNX models, the planner, the cleartext simulator, encrypted
//! inference split into client and server). The Python package `homefhe` (python/homefhe)
//! re-exports this native module `homefhe._homefhe` and adds the `.pyi` stubs.
//!
//! Conventions kept by every binding:
//! - every call into the library goes through [`guard`]: the GIL is released
//!   (`py.allow_threads`), the call runs in the configured rayon pool, and a Rust panic is caught
//!   (`catch_unwind`) and raised as `homefhe.InternalError`, so a `PanicException` never reaches
//!   Python;
//! - library errors become `homefhe.HomeError` (or a subclass) with the Rust error's message;
//! - objects serialize through HomE's versioned, checksummed format (`he_core::serialize`);
//!   the secret key only through the explicitly named `export_secret_bytes`.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView};
use std::borrow::Cow;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

mod boot;
mod ckks;
mod container;
mod nnapi;

create_exception!(
    homefhe,
    HomeError,
    PyException,
    "Base class of every error raised by HomE; the message is the Rust library's."
);
create_exception!(
    homefhe,
    DecodeError,
    HomeError,
    "Serialized bytes were rejected (truncated, corrupted, wrong type or version)."
);
create_exception!(
    homefhe,
    ParameterMismatchError,
    HomeError,
    "An object made under other parameters than the context it is used with."
);
create_exception!(
    homefhe,
    MissingKeyError,
    HomeError,
    "An operation needs an evaluation key (relinearization, rotation) that was not generated."
);
create_exception!(
    homefhe,
    InternalError,
    HomeError,
    "A bug inside HomE (a Rust panic caught at the boundary); please report it."
);

/// A failure on the Rust side, converted to a Python exception at the boundary.
#[derive(Debug)]
pub(crate) enum Failure {
    /// From he-core.
    Core(he_core::Error),
    /// From he-nn.
    Nn(he_nn::NnError),
    /// A malformed container (framing added by these bindings).
    Decode(String),
    /// An invalid argument.
    Invalid(String),
    /// An operation this object does not support (e.g. bootstrapping a context that is not
    /// bootstrappable).
    Unsupported(String),
    /// A caught panic.
    Panic(String),
}

impl From<he_core::Error> for Failure {
    fn from(e: he_core::Error) -> Self {
        Failure::Core(e)
    }
}

impl From<he_nn::NnError> for Failure {
    fn from(e: he_nn::NnError) -> Self {
        match e {
            he_nn::NnError::Core(c) => Failure::Core(c),
            other => Failure::Nn(other),
        }
    }
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        use he_core::Error as E;
        match f {
            Failure::Core(e) => {
                let msg = e.to_string();
                match e {
                    E::Decode { .. } => DecodeError::new_err(msg),
                    E::ParameterMismatch { .. } => ParameterMismatchError::new_err(msg),
                    E::MissingKey(_) => MissingKeyError::new_err(msg),
                    _ => HomeError::new_err(msg),
                }
            }
            Failure::Nn(e) => HomeError::new_err(e.to_string()),
            Failure::Decode(m) => DecodeError::new_err(m),
            Failure::Invalid(m) => HomeError::new_err(format!("invalid argument: {m}")),
            Failure::Unsupported(m) => HomeError::new_err(m),
            Failure::Panic(m) => InternalError::new_err(format!(
                "internal error in HomE (a Rust panic, caught; please report): {m}"
            )),
        }
    }
}

/// Result type of the Rust side of the bindings.
pub(crate) type Res<T> = std::result::Result<T, Failure>;

/// Runs `f` without the GIL, in the thread pool chosen by `threads` (or the configured one),
/// and turns a panic into [`Failure::Panic`]. Every call into HomE goes through here.
pub(crate) fn guard<T, F>(py: Python<'_>, threads: Option<usize>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> Res<T> + Send,
{
    let pool = pool_for(threads)?;
    py.allow_threads(move || run_caught(pool, f))
        .map_err(PyErr::from)
}

/// [`guard`] for the short calls that must keep the GIL (they touch Python objects between
/// Rust calls): the panic is still caught.
pub(crate) fn caught<T, F>(f: F) -> PyResult<T>
where
    F: FnOnce() -> Res<T>,
{
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(PyErr::from),
        Err(p) => Err(Failure::Panic(panic_message(p.as_ref())).into()),
    }
}

fn run_caught<T: Send, F: FnOnce() -> Res<T> + Send>(
    pool: Option<Arc<rayon::ThreadPool>>,
    f: F,
) -> Res<T> {
    let call = move || match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(Failure::Panic(panic_message(p.as_ref()))),
    };
    match pool {
        Some(p) => p.install(call),
        None => call(),
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".into()
    }
}

// ----- threads -----------------------------------------------------------------------------

/// Environment variable read at import: the number of worker threads of HomE's pool.
pub(crate) const THREADS_ENV: &str = "HOMEFHE_NUM_THREADS";

fn pools() -> &'static Mutex<HashMap<usize, Arc<rayon::ThreadPool>>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn default_threads() -> &'static Mutex<Option<usize>> {
    static DEFAULT: OnceLock<Mutex<Option<usize>>> = OnceLock::new();
    DEFAULT.get_or_init(|| {
        let env = std::env::var(THREADS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0);
        Mutex::new(env)
    })
}

fn pool_for(threads: Option<usize>) -> PyResult<Option<Arc<rayon::ThreadPool>>> {
    let n = match threads {
        Some(0) => {
            return Err(HomeError::new_err(
                "invalid argument: threads must be >= 1 (or None for the default)",
            ))
        }
        Some(n) => Some(n),
        None => *default_threads().lock().unwrap_or_else(|e| e.into_inner()),
    };
    let Some(n) = n else { return Ok(None) };
    let mut map = pools().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = map.get(&n) {
        return Ok(Some(p.clone()));
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("homefhe-{i}"))
        .build()
        .map_err(|e| HomeError::new_err(format!("cannot start {n} threads: {e}")))?;
    let p = Arc::new(p);
    map.insert(n, p.clone());
    Ok(Some(p))
}

/// Sets the number of threads HomE uses for every later call that does not pass `threads=`
/// (`None`: rayon's default, one per core, or `RAYON_NUM_THREADS`). The environment variable
/// `HOMEFHE_NUM_THREADS` sets the initial value.
#[pyfunction]
#[pyo3(signature = (threads))]
fn set_num_threads(threads: Option<usize>) -> PyResult<()> {
    if threads == Some(0) {
        return Err(HomeError::new_err("invalid argument: threads must be >= 1"));
    }
    *default_threads().lock().unwrap_or_else(|e| e.into_inner()) = threads;
    Ok(())
}

/// The number of threads HomE's calls run on now.
#[pyfunction]
fn get_num_threads() -> PyResult<usize> {
    Ok(match pool_for(None)? {
        Some(p) => p.current_num_threads(),
        None => rayon::current_num_threads(),
    })
}

// ----- secret-key accounting ----------------------------------------------------------------

static SECRET_KEYS: AtomicUsize = AtomicUsize::new(0);

/// Records that a secret key came into existence in this process (generated or imported).
pub(crate) fn count_secret_key() {
    SECRET_KEYS.fetch_add(1, Ordering::Relaxed);
}

/// How many secret keys this process has generated or loaded: a server that only evaluates
/// reports 0 (the client/server example asserts it).
#[pyfunction]
fn secret_keys_created() -> usize {
    SECRET_KEYS.load(Ordering::Relaxed)
}

/// Panics inside the guard, to prove that a Rust panic reaches Python as `InternalError` and
/// never as `PanicException` (used by the test suite).
#[pyfunction]
fn _debug_panic(py: Python<'_>) -> PyResult<()> {
    guard(py, None, || -> Res<()> {
        let v: Vec<u8> = Vec::new();
        // An out-of-bounds index: a genuine panic inside Rust code.
        let i = v.len() + 1;
        let _x = v[i];
        Ok(())
    })
}

// ----- bytes helpers ------------------------------------------------------------------------

/// Accepts `bytes`, `bytearray` or `memoryview` (anything else is a `TypeError`).
pub(crate) fn bytes_of<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = obj.downcast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(b) = obj.downcast::<PyByteArray>() {
        return Ok(Cow::Owned(b.to_vec()));
    }
    if let Ok(m) = obj.downcast::<PyMemoryView>() {
        let b = m.call_method0("tobytes")?;
        let b = b.downcast_into::<PyBytes>()?;
        return Ok(Cow::Owned(b.as_bytes().to_vec()));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "expected bytes, bytearray or memoryview, got {}",
        obj.get_type().name()?
    )))
}

/// The pure-Python reconstructor used by `__reduce__` (importable by pickle).
pub(crate) fn restorer(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import("homefhe")?.getattr("_restore")
}

/// The native module.
#[pymodule]
fn _homefhe(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("HomeError", py.get_type::<HomeError>())?;
    m.add("DecodeError", py.get_type::<DecodeError>())?;
    m.add(
        "ParameterMismatchError",
        py.get_type::<ParameterMismatchError>(),
    )?;
    m.add("MissingKeyError", py.get_type::<MissingKeyError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(secret_keys_created, m)?)?;
    m.add_function(wrap_pyfunction!(_debug_panic, m)?)?;
    m.add("THREADS_ENV", THREADS_ENV)?;
    ckks::register(m)?;
    boot::register(m)?;
    nnapi::register(m)?;
    Ok(())
}
