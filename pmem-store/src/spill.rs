//! [`PmemSpill`]: ciphertexts parked in a store ([`CiphertextSpill`]), durable and checksummed
//! when `spill` returns, read back (checked against the parameters) by `restore`.

use crate::error::StoreError;
use crate::object::{ObjectMeta, ObjectType};
use crate::store::Store;
use he_core::circuits::spill::CiphertextSpill;
use he_core::ckks::Ciphertext;
use he_core::rlwe::Parameters;
use he_core::serialize::ObjectKind;
use std::sync::Arc;

/// Spills ciphertexts into a [`Store`] under a name prefix: ciphertext `k` of `name` is the
/// object `{prefix}{name}/{k}` ([`Store::put_object`]), and `{prefix}{name}/n` holds the count
/// (written last, removed first, so that a name is either whole or absent).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use he_core::circuits::spill::CiphertextSpill;
/// use he_core::ckks::{Encoder, Encryptor};
/// use he_core::rlwe::{Parameters, ParametersLiteral, PublicKey, SecretDistribution, SecretKey,
///     Security};
/// use pmem_store::{PmemSpill, Store, StoreConfig};
/// use std::sync::Arc;
///
/// let params = Parameters::new(ParametersLiteral {
///     log_n: 10, log_q: vec![55, 45], log_p: vec![60], alpha: None, log_scale: 45.0,
///     secret: SecretDistribution::UniformTernary, security: Security::InsecureForTesting,
/// })?;
/// let sk = SecretKey::generate(&params)?;
/// let enc = Encryptor::new(&params, PublicKey::generate(&sk)?)?;
/// let ct = enc.encrypt(&Encoder::new(&params)?.encode(&[0.5], 1, params.default_scale())?)?;
/// let dir = std::env::temp_dir().join(format!("pmem-spill-doc-{}", std::process::id()));
/// let store = Arc::new(Store::create(&dir, StoreConfig::new(Some(params.hash())))?);
/// let spill = PmemSpill::new(Arc::clone(&store), "spill/");
/// spill.spill("run0/step3", &[ct.clone(), ct.clone()])?;
/// assert_eq!(spill.restore("run0/step3", &params)?, vec![ct.clone(), ct]);
/// spill.release("run0/step3")?;
/// assert!(spill.restore("run0/step3", &params).is_err());
/// # drop(store); std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PmemSpill {
    store: Arc<Store>,
    prefix: String,
}

impl PmemSpill {
    /// Spills into `store` under `prefix`.
    pub fn new(store: Arc<Store>, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.to_string(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn count_key(&self, name: &str) -> String {
        format!("{}{name}/n", self.prefix)
    }

    fn object_key(&self, name: &str, k: usize) -> String {
        format!("{}{name}/{k}", self.prefix)
    }

    fn count(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let key = self.count_key(name);
        if !self.store.contains(&key) {
            return Ok(None);
        }
        let h = self.store.get_typed(&key, ObjectType::Bytes)?;
        let bytes: [u8; 8] = h
            .bytes()
            .try_into()
            .map_err(|_| StoreError::InvalidObject {
                key: key.clone(),
                reason: format!("a spill count of {} bytes, expected 8", h.bytes().len()),
            })?;
        Ok(Some(u64::from_le_bytes(bytes)))
    }

    fn delete_if_present(&self, key: &str) -> Result<(), StoreError> {
        match self.store.delete(key) {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn to_core(e: StoreError, name: &str) -> he_core::Error {
    crate::error::object_error_to_core(e, name, ObjectKind::Ciphertext, "pmem spill")
}

impl CiphertextSpill for PmemSpill {
    fn spill(&self, name: &str, cts: &[Ciphertext]) -> he_core::Result<()> {
        self.release(name)?;
        for (k, ct) in cts.iter().enumerate() {
            self.store
                .put_object(&self.object_key(name, k), ct)
                .map_err(|e| to_core(e, name))?;
        }
        let hash = self.store.params_hash().unwrap_or(0);
        self.store
            .put(
                &self.count_key(name),
                &ObjectMeta::new(ObjectType::Bytes, hash),
                &(cts.len() as u64).to_le_bytes(),
            )
            .map_err(|e| to_core(e, name))?;
        Ok(())
    }

    fn restore(&self, name: &str, params: &Arc<Parameters>) -> he_core::Result<Vec<Ciphertext>> {
        let n = self
            .count(name)
            .map_err(|e| to_core(e, name))?
            .ok_or_else(|| he_core::Error::MissingObject {
                kind: ObjectKind::Ciphertext,
                name: name.to_string(),
                reason: format!("not spilled under {:?}", self.prefix),
            })?;
        (0..n as usize)
            .map(|k| {
                self.store
                    .get_object::<Ciphertext>(&self.object_key(name, k), params)
                    .map_err(|e| to_core(e, name))
            })
            .collect()
    }

    fn release(&self, name: &str) -> he_core::Result<()> {
        let Some(n) = self.count(name).map_err(|e| to_core(e, name))? else {
            return Ok(());
        };
        self.delete_if_present(&self.count_key(name))
            .map_err(|e| to_core(e, name))?;
        for k in 0..n as usize {
            self.delete_if_present(&self.object_key(name, k))
                .map_err(|e| to_core(e, name))?;
        }
        Ok(())
    }
}
