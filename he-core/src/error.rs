//! The crate's one error type.
//!
//! Every variant says what was expected and what was found, so that a failing call can be
//! diagnosed from its message alone (the convention of fhe.rs and SEAL's parameter checks).

use thiserror::Error;

/// Errors returned by `he-core`. Marked `#[non_exhaustive]`: new failure modes may be added.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A ring degree that is not a supported power of two.
    #[error("ring degree {found} is invalid: expected a power of two between {min} and {max}")]
    InvalidDegree {
        /// The degree given.
        found: usize,
        /// Smallest supported degree.
        min: usize,
        /// Largest supported degree.
        max: usize,
    },
    /// A modulus that cannot be used (not prime, wrong size, not NTT-friendly, repeated).
    #[error("invalid modulus {modulus}: {reason}")]
    InvalidModulus {
        /// The offending modulus.
        modulus: u64,
        /// Why it was refused.
        reason: String,
    },
    /// Not enough NTT-friendly primes of the requested size exist (or remain unused).
    #[error("cannot find {wanted} primes of {bits} bits congruent to 1 mod {two_n}: only {found} available")]
    NotEnoughPrimes {
        /// Bit size asked for.
        bits: u32,
        /// 2N, the required congruence modulus.
        two_n: u64,
        /// How many were wanted.
        wanted: usize,
        /// How many were found.
        found: usize,
    },
    /// Two operands (or an operand and its buffer) have different lengths.
    #[error("length mismatch in {what}: expected {expected}, found {found}")]
    LengthMismatch {
        /// What was being compared.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Found length.
        found: usize,
    },
    /// Operands live at different levels (different number of RNS limbs).
    #[error("level mismatch: {left_what} at level {left}, {right_what} at level {right}")]
    LevelMismatch {
        /// Description of the left operand.
        left_what: &'static str,
        /// Level of the left operand.
        left: usize,
        /// Description of the right operand.
        right_what: &'static str,
        /// Level of the right operand.
        right: usize,
    },
    /// Operands carry different CKKS scales.
    #[error("scale mismatch: {left_what} has scale 2^{left_log2:.4}, {right_what} has scale 2^{right_log2:.4}")]
    ScaleMismatch {
        /// Description of the left operand.
        left_what: &'static str,
        /// log2 of the left scale.
        left_log2: f64,
        /// Description of the right operand.
        right_what: &'static str,
        /// log2 of the right scale.
        right_log2: f64,
    },
    /// An operation needs a level the operand does not have.
    #[error("{operation} needs level >= {needed}, operand is at level {found}")]
    OutOfLevels {
        /// The operation attempted.
        operation: &'static str,
        /// Minimum level needed.
        needed: usize,
        /// Level available.
        found: usize,
    },
    /// A key-switching key generated up to a lower level (a level-limited key) than the
    /// level of the ciphertext it is asked to switch.
    #[error("the {kind} key is usable up to level {max_level}, the ciphertext is at level {level}: generate the key up to level {level} or higher, or lower the ciphertext to level {max_level} first")]
    KeyLevelExceeded {
        /// The key's kind, printed.
        kind: String,
        /// The ciphertext's level.
        level: usize,
        /// The highest level the key serves (its Q-limb count minus one).
        max_level: usize,
    },
    /// A value outside its allowed range (a residue >= its modulus, a slot count too large, ...).
    #[error("{what} out of range: {found} (allowed: {allowed})")]
    OutOfRange {
        /// What was checked.
        what: &'static str,
        /// The value found, printed.
        found: String,
        /// The allowed range, printed.
        allowed: String,
    },
    /// Parameters that are well-formed but below the requested security level.
    #[error("insecure parameters: log2(QP) = {log_qp} bits exceeds the {max_log_qp}-bit bound for 128-bit security at N = {n} (HomomorphicEncryption.org table, ternary secret); use an explicit insecure-for-testing opt-in to proceed")]
    Insecure {
        /// Ring degree.
        n: usize,
        /// Total modulus bits found.
        log_qp: u32,
        /// Largest allowed for 128-bit security.
        max_log_qp: u32,
    },
    /// No secure key-switching digit count keeps the evaluation keys within a byte budget
    /// ([`KsModel::choose`](crate::rlwe::ks_cost::KsModel::choose)).
    #[error("{keys} key-switching keys need at least {smallest_bytes} bytes with any secure digit count, above the budget of {budget_bytes} bytes: raise the budget, hold fewer keys, or allow a smaller scale or a larger ring degree (more room for special primes, fewer digits)")]
    KeyBudgetExceeded {
        /// Keys to hold.
        keys: usize,
        /// The budget, bytes.
        budget_bytes: u64,
        /// The least bytes those keys take with a secure digit count.
        smallest_bytes: u64,
    },
    /// Invalid parameter combination.
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),
    /// A key is missing (no Galois key for an element, no relinearization key, ...).
    #[error("missing key: {0}")]
    MissingKey(String),
    /// An object was made with other parameters than the ones it is used with.
    #[error(
        "parameter mismatch: object made for parameters {found:016x}, context has {expected:016x}"
    )]
    ParameterMismatch {
        /// Hash of the expected parameters.
        expected: u64,
        /// Hash of the parameters the object carries.
        found: u64,
    },
    /// Objects under different secret keys were combined, or a ciphertext was decrypted or
    /// key-switched with a key of another secret (see [`KeyId`](crate::rlwe::KeyId)). "none"
    /// is an object built without a key identifier (e.g. by `Ciphertext::from_parts`), which
    /// fails closed wherever keys meet.
    #[error(
        "key mismatch in {operation}: expected an object under key {}, found {} under key {}",
        crate::rlwe::KeyId::describe(*.expected), .found_what, crate::rlwe::KeyId::describe(*.found)
    )]
    KeyMismatch {
        /// The operation that refused.
        operation: &'static str,
        /// The key identifier required (of the key, or of the first operand).
        expected: Option<crate::rlwe::KeyId>,
        /// What carried the other identifier.
        found_what: &'static str,
        /// The identifier found.
        found: Option<crate::rlwe::KeyId>,
    },
    /// A named object (an encoded weight, a pre-encoded linear transform) that a provider
    /// does not hold.
    #[error("missing {kind} {name:?}: {reason}")]
    MissingObject {
        /// The kind asked for.
        kind: crate::serialize::ObjectKind,
        /// The caller's name for it.
        name: String,
        /// Where it was looked for.
        reason: String,
    },
    /// A named object held with another kind than the one asked for.
    #[error("object {name:?} is a {found}, expected a {expected}")]
    ObjectKindMismatch {
        /// The caller's name for it.
        name: String,
        /// The kind asked for.
        expected: crate::serialize::ObjectKind,
        /// The kind held.
        found: crate::serialize::ObjectKind,
    },
    /// Malformed serialized input.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// Object being decoded.
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// Failure of the operating system's randomness source.
    #[error("OS randomness unavailable: {0}")]
    Randomness(String),
    /// A storage tier (file, memory-mapped store, PMEM) failed or returned damaged data.
    #[error("storage error: {0}")]
    Storage(String),
    /// A backend (e.g. a GPU) failed.
    #[error("backend error: {0}")]
    Backend(String),
}

/// Result alias with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
