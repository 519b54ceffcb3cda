//! Pre-encoded weights in the store: [`Store::put_transform`] / [`Store::get_transform`],
//! [`Store::put_plaintext`] / [`Store::get_plaintext`], and [`PmemWeightStore`], the
//! [`WeightProvider`] that serves them to an evaluator under the store's DRAM budget.
//!
//! A weight is stored as its `he-core` serialized blob (header with type tag, parameters'
//! hash and XXH3 checksum, then the residues) in an object of the same
//! [`ObjectType`] — the registry is shared, so the record's type and the blob's header tag are
//! the same number, and `get` checks both. A get maps the blob (counted against the DRAM
//! budget while mapped, evictable from the LRU cache afterwards), decodes and validates it
//! against the parameters, and returns an owned object: the decoded copy lives in the
//! caller's memory, outside the budget, for as long as the caller holds it.

use crate::cache::ScheduleStream;
use crate::error::{Result, StoreError};
use crate::object::{ObjectInfo, ObjectMeta, ObjectType};
use crate::store::Store;
use he_core::circuits::lintrans::LinearTransform;
use he_core::circuits::weights::WeightProvider;
use he_core::ckks::Plaintext;
use he_core::rlwe::Parameters;
use he_core::serialize::Serializable;
use std::sync::Arc;

impl Store {
    /// Stores any [`Serializable`] object as its blob, typed by its [`Serializable::OBJECT`]
    /// and tagged with the parameters' hash read back from the blob's header. Durable when it
    /// returns. Secret keys are not `Serializable` and cannot be stored this way (nor any
    /// other: [`StoreError::SecretKeyRefused`]).
    pub fn put_object<T: Serializable>(&self, key: &str, object: &T) -> Result<ObjectInfo> {
        self.put_blob(key, T::OBJECT, &object.to_bytes(), [0; 4], 0)
    }

    /// Reads an object stored by [`Store::put_object`] and decodes it against `params`.
    ///
    /// Checks, in order: the object exists ([`StoreError::NotFound`]), has type `T::OBJECT`
    /// ([`StoreError::TypeMismatch`]), was made for `params` ([`StoreError::ParamsMismatch`]),
    /// its payload matches its checksum ([`StoreError::CorruptObject`]) and decodes: header,
    /// length, residues ([`StoreError::Undecodable`], e.g. a truncated blob).
    pub fn get_object<T: Serializable>(&self, key: &str, params: &Arc<Parameters>) -> Result<T> {
        let handle = self.get_typed(key, T::OBJECT)?;
        let found = handle.info().meta.params_hash;
        if found != params.hash() {
            return Err(StoreError::ParamsMismatch {
                what: format!("object {key:?}"),
                expected: params.hash(),
                found,
            });
        }
        T::from_bytes(params, handle.bytes()).map_err(|source| StoreError::Undecodable {
            key: key.to_string(),
            ty: T::OBJECT,
            source,
        })
    }

    /// Stores a pre-encoded linear transform (its level, slots, `n1` and diagonal count in
    /// the metadata's `dims`, its scale's bits in `aux`, for listings).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use he_core::circuits::lintrans::{BabySteps, Diagonals, LinearTransform};
    /// use he_core::ckks::{Complex64, Encoder};
    /// use he_core::rlwe::{Parameters, ParametersLiteral, SecretDistribution, Security};
    /// use pmem_store::{Store, StoreConfig};
    ///
    /// let params = Parameters::new(ParametersLiteral {
    ///     log_n: 10, log_q: vec![55, 45], log_p: vec![60], alpha: None, log_scale: 45.0,
    ///     secret: SecretDistribution::UniformTernary, security: Security::InsecureForTesting,
    /// })?;
    /// let encoder = Encoder::new(&params)?;
    /// let mut diags = Diagonals::new(params.slots())?;
    /// diags.insert(0, vec![Complex64::new(2.0, 0.0); params.slots()])?;
    /// let level = params.max_level();
    /// let lt = LinearTransform::encode(&encoder, &diags, level, params.q()[level] as f64,
    ///     BabySteps::Auto)?;
    ///
    /// let dir = std::env::temp_dir().join(format!("pmem-doc-transform-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let store = Store::create(&dir, StoreConfig::new(Some(params.hash())))?;
    /// store.put_transform("fc1/weight", &lt)?;
    /// let back = store.get_transform("fc1/weight", &params)?;
    /// assert_eq!(back, lt);
    /// # drop(store);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn put_transform(&self, key: &str, transform: &LinearTransform) -> Result<ObjectInfo> {
        let dims = [
            transform.level() as u64,
            transform.slots() as u64,
            transform.n1() as u64,
            transform.diagonal_count() as u64,
        ];
        self.put_blob(
            key,
            ObjectType::LinearTransform,
            &transform.to_bytes(),
            dims,
            transform.scale().to_bits(),
        )
    }

    /// A linear transform stored by [`Store::put_transform`], decoded against `params`
    /// (the checks of [`Store::get_object`]).
    pub fn get_transform(&self, key: &str, params: &Arc<Parameters>) -> Result<LinearTransform> {
        self.get_object(key, params)
    }

    /// Stores an encoded plaintext (its level in `dims[0]`, its scale's bits in `aux`).
    pub fn put_plaintext(&self, key: &str, plaintext: &Plaintext) -> Result<ObjectInfo> {
        let dims = [plaintext.level() as u64, 0, 0, 0];
        self.put_blob(
            key,
            ObjectType::Plaintext,
            &plaintext.to_bytes(),
            dims,
            plaintext.scale().to_bits(),
        )
    }

    /// A plaintext stored by [`Store::put_plaintext`], decoded against `params` (the checks of
    /// [`Store::get_object`]).
    pub fn get_plaintext(&self, key: &str, params: &Arc<Parameters>) -> Result<Plaintext> {
        self.get_object(key, params)
    }

    /// Puts a serialized blob of type `ty`, with the parameters' hash of its header.
    fn put_blob(
        &self,
        key: &str,
        ty: ObjectType,
        blob: &[u8],
        dims: [u64; 4],
        aux: u64,
    ) -> Result<ObjectInfo> {
        let (header, _) =
            he_core::serialize::open(blob, ty).map_err(|source| StoreError::Undecodable {
                key: key.to_string(),
                ty,
                source,
            })?;
        let meta = ObjectMeta::new(ty, header.params_hash)
            .with_dims(dims)
            .with_aux(aux);
        self.put(key, &meta, blob)
    }
}

/// A [`WeightProvider`] backed by a [`Store`]: the weight named `name` is the object
/// `"{prefix}{name}"`, decoded against the parameters given at construction.
/// [`WeightProvider::prefetch`] hands the names to the store's prefetch thread, which maps and
/// reads ahead the next ones that fit in the DRAM budget.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use he_core::circuits::weights::WeightProvider;
/// use he_core::ckks::Encoder;
/// use he_core::rlwe::{Parameters, ParametersLiteral, SecretDistribution, Security};
/// use pmem_store::{PmemWeightStore, Store, StoreConfig};
/// use std::sync::Arc;
///
/// let params = Parameters::new(ParametersLiteral {
///     log_n: 10, log_q: vec![55, 45], log_p: vec![60], alpha: None, log_scale: 45.0,
///     secret: SecretDistribution::UniformTernary, security: Security::InsecureForTesting,
/// })?;
/// let encoder = Encoder::new(&params)?;
/// let bias = encoder.encode(&[0.5, -0.25], 1, params.default_scale())?;
///
/// let dir = std::env::temp_dir().join(format!("pmem-doc-weights-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let store = Arc::new(Store::create(&dir, StoreConfig::new(Some(params.hash())))?);
/// let weights = PmemWeightStore::new(Arc::clone(&store), &params, "model/")?;
/// weights.insert_plaintext("fc1/bias", &bias)?; // the object "model/fc1/bias"
///
/// // The consumer (an nn plan) announces its order, then asks in that order.
/// weights.prefetch(&["fc1/bias"]);
/// assert_eq!(*weights.plaintext("fc1/bias")?, bias);
/// assert!(matches!(weights.transform("fc1/bias"),
///     Err(he_core::Error::ObjectKindMismatch { .. })));
/// # drop((weights, store));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PmemWeightStore {
    store: Arc<Store>,
    params: Arc<Parameters>,
    prefix: String,
}

impl PmemWeightStore {
    /// Serves the weights named under `prefix` (e.g. `"model/"`, or `""`) from `store`,
    /// decoded against `params`. [`StoreError::ParamsMismatch`] when the store expects other
    /// parameters.
    pub fn new(
        store: Arc<Store>,
        params: &Arc<Parameters>,
        prefix: impl Into<String>,
    ) -> Result<Self> {
        if let Some(expected) = store.params_hash() {
            if expected != params.hash() {
                return Err(StoreError::ParamsMismatch {
                    what: format!("weight store over {}", store.dir().display()),
                    expected,
                    found: params.hash(),
                });
            }
        }
        Ok(Self {
            store,
            params: Arc::clone(params),
            prefix: prefix.into(),
        })
    }
    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
    /// The object key of the weight `name`.
    pub fn object_key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
    /// Stores `transform` as the weight `name`. Durable when it returns.
    pub fn insert_transform(&self, name: &str, transform: &LinearTransform) -> Result<()> {
        self.store
            .put_transform(&self.object_key(name), transform)
            .map(|_| ())
    }
    /// Stores `plaintext` as the weight `name`. Durable when it returns.
    pub fn insert_plaintext(&self, name: &str, plaintext: &Plaintext) -> Result<()> {
        self.store
            .put_plaintext(&self.object_key(name), plaintext)
            .map(|_| ())
    }
}

/// The weight store's mapping of store errors ([`crate::error::object_error_to_core`]).
fn to_core(e: StoreError, name: &str, want: ObjectType) -> he_core::Error {
    crate::error::object_error_to_core(e, name, want, "pmem weight store")
}

impl WeightProvider for PmemWeightStore {
    fn transform(&self, name: &str) -> he_core::Result<Arc<LinearTransform>> {
        self.store
            .get_transform(&self.object_key(name), &self.params)
            .map(Arc::new)
            .map_err(|e| to_core(e, name, ObjectType::LinearTransform))
    }

    fn plaintext(&self, name: &str) -> he_core::Result<Arc<Plaintext>> {
        self.store
            .get_plaintext(&self.object_key(name), &self.params)
            .map(Arc::new)
            .map_err(|e| to_core(e, name, ObjectType::Plaintext))
    }

    fn prefetch(&self, names: &[&str]) {
        let keys: Vec<String> = names.iter().map(|n| self.object_key(n)).collect();
        self.store.announce_in(ScheduleStream::WEIGHTS, &keys);
    }
}
