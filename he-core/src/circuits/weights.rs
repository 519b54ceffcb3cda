//! The [`WeightProvider`] seam: pre-encoded weights ([`LinearTransform`]s and [`Plaintext`]s)
//! served by a caller-chosen name, parallel to [`EvalKeyProvider`](crate::rlwe::EvalKeyProvider)
//! for evaluation keys. [`WeightSet`] holds them in memory; `pmem-store`'s `PmemWeightStore`
//! serves them from a memory-mapped store under a DRAM budget, reading ahead what
//! [`WeightProvider::prefetch`] announces.
//!
//! A consumer that knows its order (an `nn` plan walking its layers) announces the names it
//! will ask for next, then asks for them one by one and drops each when done:
//!
//! ```
//! # fn main() -> he_core::Result<()> {
//! use he_core::circuits::lintrans::{BabySteps, Diagonals, LinearTransform};
//! use he_core::circuits::weights::{WeightProvider, WeightSet};
//! use he_core::ckks::{Complex64, Encoder};
//! use he_core::rlwe::{Parameters, ParametersLiteral, SecretDistribution, Security};
//!
//! let params = Parameters::new(ParametersLiteral {
//!     log_n: 10, log_q: vec![55, 45], log_p: vec![60], alpha: None, log_scale: 45.0,
//!     secret: SecretDistribution::UniformTernary, security: Security::InsecureForTesting,
//! })?;
//! let encoder = Encoder::new(&params)?;
//! let level = params.max_level();
//! let mut diags = Diagonals::new(params.slots())?;
//! diags.insert(1, vec![Complex64::new(0.5, 0.0); params.slots()])?;
//! let fc1 = LinearTransform::encode(&encoder, &diags, level, params.q()[level] as f64,
//!     BabySteps::Auto)?;
//! let bias = encoder.encode(&vec![0.25; params.slots()], level, params.default_scale())?;
//!
//! let mut weights = WeightSet::new();
//! weights.insert_transform("layer1/weight", fc1.clone());
//! weights.insert_plaintext("layer1/bias", bias.clone());
//!
//! let provider: &dyn WeightProvider = &weights;
//! provider.prefetch(&["layer1/weight", "layer1/bias"]); // a hint; a no-op in memory
//! assert_eq!(*provider.transform("layer1/weight")?, fc1);
//! assert_eq!(*provider.plaintext("layer1/bias")?, bias);
//! // Asking for a plaintext under a transform's name is a typed error, as is a missing name.
//! assert!(matches!(provider.plaintext("layer1/weight"),
//!     Err(he_core::Error::ObjectKindMismatch { .. })));
//! assert!(matches!(provider.transform("layer2/weight"),
//!     Err(he_core::Error::MissingObject { .. })));
//! # Ok(())
//! # }
//! ```

use crate::circuits::lintrans::LinearTransform;
use crate::ckks::Plaintext;
use crate::serialize::ObjectKind;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Serves pre-encoded weights by name: in memory ([`WeightSet`]) or from a store.
///
/// Names are the caller's (e.g. `"conv1/diagonals"`); one name holds one object, of one
/// kind. Implementations are `Send + Sync` so that one provider serves concurrent evaluators.
pub trait WeightProvider: Send + Sync {
    /// The linear transform named `name`: [`Error::MissingObject`] when there is none,
    /// [`Error::ObjectKindMismatch`] when `name` holds a plaintext.
    fn transform(&self, name: &str) -> Result<Arc<LinearTransform>>;
    /// The plaintext named `name`: [`Error::MissingObject`] when there is none,
    /// [`Error::ObjectKindMismatch`] when `name` holds a transform.
    fn plaintext(&self, name: &str) -> Result<Arc<Plaintext>>;
    /// Hint: these names will be asked for soon, in this order (a store reads them ahead
    /// within its DRAM budget). The default does nothing.
    fn prefetch(&self, _names: &[&str]) {}
}

/// One held weight.
#[derive(Debug, Clone)]
enum Weight {
    Transform(Arc<LinearTransform>),
    Plaintext(Arc<Plaintext>),
}

impl Weight {
    fn kind(&self) -> ObjectKind {
        match self {
            Weight::Transform(_) => ObjectKind::LinearTransform,
            Weight::Plaintext(_) => ObjectKind::Plaintext,
        }
    }
}

/// Weights held in memory: the default [`WeightProvider`].
#[derive(Debug, Clone, Default)]
pub struct WeightSet {
    weights: BTreeMap<String, Weight>,
}

impl WeightSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Holds `transform` under `name`, replacing whatever `name` held.
    pub fn insert_transform(&mut self, name: impl Into<String>, transform: LinearTransform) {
        self.weights
            .insert(name.into(), Weight::Transform(Arc::new(transform)));
    }
    /// Holds `plaintext` under `name`, replacing whatever `name` held.
    pub fn insert_plaintext(&mut self, name: impl Into<String>, plaintext: Plaintext) {
        self.weights
            .insert(name.into(), Weight::Plaintext(Arc::new(plaintext)));
    }
    /// The names held, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.weights.keys().map(String::as_str)
    }
    /// Number of weights held.
    pub fn len(&self) -> usize {
        self.weights.len()
    }
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    fn lookup(&self, name: &str, want: ObjectKind) -> Result<&Weight> {
        self.weights.get(name).ok_or_else(|| Error::MissingObject {
            kind: want,
            name: name.to_string(),
            reason: format!("not among the {} weights of this in-memory set", self.len()),
        })
    }
}

fn mismatch(name: &str, expected: ObjectKind, found: &Weight) -> Error {
    Error::ObjectKindMismatch {
        name: name.to_string(),
        expected,
        found: found.kind(),
    }
}

impl WeightProvider for WeightSet {
    fn transform(&self, name: &str) -> Result<Arc<LinearTransform>> {
        let want = ObjectKind::LinearTransform;
        match self.lookup(name, want)? {
            Weight::Transform(t) => Ok(Arc::clone(t)),
            other => Err(mismatch(name, want, other)),
        }
    }

    fn plaintext(&self, name: &str) -> Result<Arc<Plaintext>> {
        let want = ObjectKind::Plaintext;
        match self.lookup(name, want)? {
            Weight::Plaintext(p) => Ok(Arc::clone(p)),
            other => Err(mismatch(name, want, other)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::circuits::lintrans::{BabySteps, Diagonals};
    use crate::ckks::{Complex64, Encoder};
    use crate::rlwe::{Parameters, ParametersLiteral, SecretDistribution, Security};

    #[test]
    fn weight_set_serves_by_name_and_kind() {
        let params = Parameters::new(ParametersLiteral {
            log_n: 6,
            log_q: vec![50, 40],
            log_p: vec![55],
            alpha: None,
            log_scale: 40.0,
            secret: SecretDistribution::UniformTernary,
            security: Security::InsecureForTesting,
        })
        .unwrap();
        let ecd = Encoder::new(&params).unwrap();
        let mut d = Diagonals::new(params.slots()).unwrap();
        d.insert(0, vec![Complex64::new(1.0, 0.0); params.slots()])
            .unwrap();
        let lt =
            LinearTransform::encode(&ecd, &d, 1, params.q()[1] as f64, BabySteps::Auto).unwrap();
        let pt = ecd.encode(&[1.0, 2.0], 1, params.default_scale()).unwrap();
        let mut w = WeightSet::new();
        assert!(w.is_empty());
        w.insert_transform("t", lt.clone());
        w.insert_plaintext("p", pt.clone());
        assert_eq!(w.names().collect::<Vec<_>>(), ["p", "t"]);
        assert_eq!(*w.transform("t").unwrap(), lt);
        assert_eq!(*w.plaintext("p").unwrap(), pt);
        assert_eq!(
            w.transform("p").unwrap_err(),
            Error::ObjectKindMismatch {
                name: "p".into(),
                expected: ObjectKind::LinearTransform,
                found: ObjectKind::Plaintext
            }
        );
        assert!(matches!(
            w.plaintext("t"),
            Err(Error::ObjectKindMismatch { .. })
        ));
        assert!(matches!(
            w.plaintext("nope"),
            Err(Error::MissingObject {
                kind: ObjectKind::Plaintext,
                ..
            })
        ));
        // Replacing a name replaces its kind.
        w.insert_plaintext("t", pt);
        assert!(w.plaintext("t").is_ok());
        assert_eq!(w.len(), 2);
    }
}
