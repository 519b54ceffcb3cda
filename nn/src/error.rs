//! The crate's error type.

use thiserror::Error;

/// Errors returned by `he-nn`. Every variant says what was expected and what was found.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NnError {
    /// An error from the CKKS layer (`he-core`).
    #[error("he-core: {0}")]
    Core(#[from] he_core::Error),
    /// The network needs more multiplicative levels than the parameters have.
    #[error("network needs {needed} levels, parameters provide {available}")]
    DepthExceeded {
        /// Levels (rescalings) the plan consumes.
        needed: usize,
        /// Levels the parameters provide (`max_level`).
        available: usize,
    },
    /// An ONNX operator this crate cannot evaluate homomorphically.
    #[error("unsupported ONNX operator `{op}` at node `{node}`: {reason}")]
    UnsupportedOperator {
        /// `op_type` of the node.
        op: String,
        /// Name of the node (or its first output when unnamed).
        node: String,
        /// Why, and what is supported instead.
        reason: String,
    },
    /// The ONNX file is malformed or uses a feature outside the supported subset.
    #[error("ONNX model: {0}")]
    Onnx(String),
    /// Shapes that do not fit together.
    #[error("shape error in {what}: expected {expected}, found {found}")]
    Shape {
        /// Where.
        what: String,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// An invalid argument (option, input value, layout).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// An I/O error while reading a model or data file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A model or data file asks for more than a stated import limit (a hostile or corrupt
    /// file, or a model larger than the defaults allow: raise the named limit to accept it).
    #[error("{what}: {found} exceeds the limit of {limit} (`{limit_name}`; raise it by name to accept this file)")]
    LimitExceeded {
        /// What was being sized (a tensor, a layer, the node count, ...).
        what: String,
        /// The limit's field name, e.g. `ImportLimits::max_tensor_elements`.
        limit_name: &'static str,
        /// The limit in force.
        limit: u64,
        /// What the file asked for (may be "more than 2^64" when the product overflows).
        found: String,
    },
    /// No activation approximation meets the requested precision within the stated limits
    /// (see [`crate::activation::ReluApproximation`]).
    #[error("no approximation of {function} meets {wanted}; tried {tried}: lower the precision or raise the depth limit")]
    NoApproximation {
        /// The function.
        function: String,
        /// The bound and limits asked for.
        wanted: String,
        /// The candidates tried.
        tried: String,
    },
    /// A malformed IDX data file: the header disagrees with itself or with the file length.
    #[error("IDX file {path}: expected {expected}, found {found}")]
    Idx {
        /// The file (or `<memory>` for in-memory parsing).
        path: String,
        /// What a well-formed file has.
        expected: String,
        /// What this one has.
        found: String,
    },
}

/// `Result` with [`NnError`].
pub type Result<T> = std::result::Result<T, NnError>;

pub(crate) fn shape_err(
    what: impl Into<String>,
    expected: impl ToString,
    found: impl ToString,
) -> NnError {
    NnError::Shape {
        what: what.into(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}
