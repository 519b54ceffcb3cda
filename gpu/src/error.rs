//! The crate's one error type.

use thiserror::Error;

/// Errors returned by `he-gpu`. Every variant says what was expected and what was found.
/// Marked `#[non_exhaustive]`: new failure modes may be added.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The crate was built without the `cuda` feature.
    #[error("he-gpu was built without the `cuda` feature: no device support compiled in")]
    CudaDisabled,
    /// The CUDA driver library could not be loaded (no NVIDIA driver on this machine).
    #[error(
        "no CUDA driver (libcuda.so not found); install the NVIDIA driver or run on a GPU node"
    )]
    NoDriver,
    /// NVRTC (`libnvrtc.so.12`) could not be loaded, so no kernel can be compiled.
    #[error("NVRTC not found (libnvrtc.so.12); add its directory to LD_LIBRARY_PATH, set HE_GPU_NVRTC_LIB to the file, or run gpu/scripts/install-nvrtc.sh")]
    NoNvrtc,
    /// The requested device ordinal does not exist.
    #[error("no CUDA device with ordinal {ordinal}: {count} device(s) present")]
    NoDevice {
        /// Ordinal asked for.
        ordinal: usize,
        /// Devices present.
        count: usize,
    },
    /// A CUDA driver call failed.
    #[error("CUDA driver error in {operation}: {message}")]
    Driver {
        /// What was being done.
        operation: &'static str,
        /// The driver's error, printed.
        message: String,
    },
    /// NVRTC failed to compile a kernel source.
    #[error("NVRTC failed to compile {source_name} for {arch}: {log}")]
    Compile {
        /// Which source (file name under `gpu/kernels/`).
        source_name: &'static str,
        /// Target virtual architecture (e.g. `compute_90`).
        arch: &'static str,
        /// The compiler log.
        log: String,
    },
    /// Two operands (or an operand and a table) disagree in a size.
    #[error("shape mismatch in {what}: expected {expected}, found {found}")]
    Shape {
        /// What was compared.
        what: &'static str,
        /// Expected value.
        expected: usize,
        /// Found value.
        found: usize,
    },
    /// Two operands use different moduli for their limbs, or live on different rings/devices.
    #[error("moduli mismatch in {what}: {detail}")]
    Moduli {
        /// What was compared.
        what: &'static str,
        /// Which moduli (indices into the device ring) differ.
        detail: String,
    },
    /// A value outside what the device code supports.
    #[error("unsupported by the GPU backend: {0}")]
    Unsupported(String),
    /// An error from `he-core` (parameter validation, NTT planning).
    #[error(transparent)]
    Core(#[from] he_core::Error),
}

/// Result alias with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for he_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(c) => c,
            other => he_core::Error::Backend(other.to_string()),
        }
    }
}
