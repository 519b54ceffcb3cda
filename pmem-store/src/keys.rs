//! [`PmemKeyStore`]: evaluation keys served to an evaluator straight from the store.

use crate::cache::ScheduleStream;
use crate::error::StoreError;
use crate::object::ObjectType;
use crate::store::Store;
use he_core::rlwe::{EvalKeyProvider, KeyId, KeyKind, KeySwitchKey, KeyUse};

/// Caller-metadata tag under which a key's [`KeyId`] is stored (followed by 8 bytes, LE).
const KEY_ID_TAG: &[u8] = b"key-id:";

pub(crate) fn key_id_meta(id: Option<KeyId>) -> Vec<u8> {
    match id {
        Some(id) => [KEY_ID_TAG, &id.get().to_le_bytes()].concat(),
        None => Vec::new(),
    }
}

fn key_id_from_meta(user: &[u8]) -> Option<KeyId> {
    let word = user.strip_prefix(KEY_ID_TAG)?;
    KeyId::from_u64(u64::from_le_bytes(word.try_into().ok()?))
}
use std::sync::Arc;

/// An [`EvalKeyProvider`] backed by a [`Store`]: the relinearization key is the object
/// `"{prefix}relin"`, the Galois key for element `g` the object `"{prefix}galois/{g}"`.
///
/// A Galois key may also have level-limited variants, `"{prefix}galois/{g}@{L}"`
/// ([`insert_level_variant`](Self::insert_level_variant)): a key restricted to levels
/// `0..=L`, fewer digits and limbs, so fewer bytes to read. [`EvalKeyProvider::galois_key_at`]
/// and the announcements with levels serve the smallest of the key and its variants that
/// covers the level asked for (a bootstrap's SlotToCoeff, at level 12 of 26 in `N16Levels9`,
/// reads 35 % of the full keys' bytes).
///
/// Keys are mapped on demand and used in place (the `KeySwitchKey` borrows the mapping through
/// its `Arc<dyn LimbStorage>`), checked against the store's parameters, and
/// [`EvalKeyProvider::prefetch`] hands the upcoming Galois elements to the store's prefetcher.
#[derive(Debug, Clone)]
pub struct PmemKeyStore {
    store: Arc<Store>,
    prefix: String,
}

impl PmemKeyStore {
    /// Serves keys named under `prefix` (e.g. `"keys/"`, or `""`) from `store`.
    pub fn new(store: Arc<Store>, prefix: impl Into<String>) -> Self {
        Self {
            store,
            prefix: prefix.into(),
        }
    }
    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
    /// Object key of the relinearization key.
    pub fn relin_name(&self) -> String {
        format!("{}relin", self.prefix)
    }
    /// Object key of the Galois key for `galois_element`.
    pub fn galois_name(&self, galois_element: u64) -> String {
        format!("{}galois/{galois_element}", self.prefix)
    }
    /// Object key of the bootstrapping's sparse-to-dense switching key.
    pub fn sparse_to_dense_name(&self) -> String {
        format!("{}switch/sparse-to-dense", self.prefix)
    }
    /// Object key of the variant of the Galois key for `galois_element` limited to levels
    /// `0..=max_level`.
    pub fn galois_variant_name(&self, galois_element: u64, max_level: usize) -> String {
        format!("{}galois/{galois_element}@{max_level}", self.prefix)
    }
    /// Stores the level-limited Galois key `key` as a variant of the full one (beside it, under
    /// [`galois_variant_name`](Self::galois_variant_name) with its highest level), with its
    /// [`KeyId`]. Durable when it returns. Errors: [`StoreError::InvalidObject`] for a key
    /// that is not a Galois key or has no Q-limb.
    pub fn insert_level_variant(&self, key: &KeySwitchKey) -> Result<(), StoreError> {
        let (KeyKind::Galois(g), Some(max_level)) =
            (key.kind(), key.shape().q_limbs.checked_sub(1))
        else {
            return Err(StoreError::InvalidObject {
                key: format!("{}galois/?", self.prefix),
                reason: format!(
                    "a level variant must be a Galois key with Q-limbs, not a {:?} key of {} Q-limbs",
                    key.kind(),
                    key.shape().q_limbs
                ),
            });
        };
        self.store
            .put_key(&self.galois_variant_name(g, max_level), key)
            .map(|_| ())
    }
    /// The object serving the Galois key for `galois_element` at `level`: of the key and its
    /// level variants, the one of fewest Q-limbs that covers `level`; the key itself when none
    /// does (the key switch then reports the shortfall) or when it is absent from the index.
    pub fn galois_name_at(&self, galois_element: u64, level: usize) -> String {
        let full = self.galois_name(galois_element);
        let levels_of = |o: &crate::object::ObjectInfo| {
            o.meta
                .key_shape()
                .and_then(|(s, _)| s.q_limbs.checked_sub(1))
        };
        let mut best: Option<(usize, String)> = self
            .store
            .info(&full)
            .and_then(|o| levels_of(&o))
            .filter(|l| *l >= level)
            .map(|l| (l, full.clone()));
        for o in self.store.list_prefix(&format!("{full}@")) {
            if let Some(l) = levels_of(&o).filter(|l| *l >= level) {
                if best.as_ref().is_none_or(|(b, _)| l < *b) {
                    best = Some((l, o.key));
                }
            }
        }
        best.map_or(full, |(_, name)| name)
    }
    /// Object key a use of a key fetches ([`galois_name_at`](Self::galois_name_at) for a
    /// Galois key).
    fn name_of_use(&self, kind: KeyKind, level: Option<usize>) -> String {
        match (kind, level) {
            (KeyKind::Relinearization, _) => self.relin_name(),
            (KeyKind::Galois(g), Some(l)) => self.galois_name_at(g, l),
            (KeyKind::Galois(g), None) => self.galois_name(g),
            (KeyKind::SparseToDense, _) => self.sparse_to_dense_name(),
        }
    }
    /// Stores `key` under the name its kind calls for, with its [`KeyId`] in the object's
    /// caller metadata. Durable when it returns.
    pub fn insert(&self, key: &KeySwitchKey) -> Result<(), StoreError> {
        let name = match key.kind() {
            KeyKind::Relinearization => self.relin_name(),
            KeyKind::Galois(g) => self.galois_name(g),
            KeyKind::SparseToDense => self.sparse_to_dense_name(),
        };
        self.store.put_key(&name, key).map(|_| ())
    }

    /// The key, with the [`KeyId`] restored from the metadata by [`Store::get_key`] (a key
    /// stored without one has none, and key switching refuses it).
    fn fetch(&self, name: &str, want: KeyKind) -> he_core::Result<Arc<KeySwitchKey>> {
        let key = self.store.get_key(name).map_err(|e| to_core(e, name))?;
        if key.kind() != want {
            return Err(he_core::Error::MissingKey(format!(
                "object {name:?} holds a {:?} key, expected {want:?}",
                key.kind()
            )));
        }
        Ok(Arc::new(key))
    }
}

/// Maps a store error to `he-core`'s error type (which has no storage variant yet: I/O and
/// integrity failures travel as `Backend` with the store's full message).
fn to_core(e: StoreError, name: &str) -> he_core::Error {
    match e {
        StoreError::NotFound { .. } => {
            he_core::Error::MissingKey(format!("no object {name:?} in the key store"))
        }
        StoreError::ParamsMismatch {
            expected, found, ..
        } => he_core::Error::ParameterMismatch { expected, found },
        StoreError::Core(c) => c,
        other => he_core::Error::Storage(format!("pmem key store: {other}")),
    }
}

impl EvalKeyProvider for PmemKeyStore {
    fn relinearization_key(&self) -> he_core::Result<Arc<KeySwitchKey>> {
        self.fetch(&self.relin_name(), KeyKind::Relinearization)
    }

    fn galois_key(&self, galois_element: u64) -> he_core::Result<Arc<KeySwitchKey>> {
        self.fetch(
            &self.galois_name(galois_element),
            KeyKind::Galois(galois_element),
        )
    }

    fn switching_key(&self, kind: KeyKind) -> he_core::Result<Arc<KeySwitchKey>> {
        match kind {
            KeyKind::Relinearization => self.relinearization_key(),
            KeyKind::Galois(g) => self.galois_key(g),
            KeyKind::SparseToDense => self.fetch(&self.sparse_to_dense_name(), kind),
        }
    }

    fn galois_key_at(
        &self,
        galois_element: u64,
        level: usize,
    ) -> he_core::Result<Arc<KeySwitchKey>> {
        self.fetch(
            &self.galois_name_at(galois_element, level),
            KeyKind::Galois(galois_element),
        )
    }

    fn galois_elements(&self) -> Vec<u64> {
        let want = self.store.params_hash();
        let mut v: Vec<u64> = self
            .store
            .list()
            .into_iter()
            .filter(|o| {
                o.meta.ty == ObjectType::GaloisKey
                    && o.key.starts_with(&self.prefix)
                    && want.is_none_or(|h| h == o.meta.params_hash)
            })
            .map(|o| o.meta.aux)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Announces the keys in the keys' stream ([`Store::announce_in`]): a schedule that
    /// already holds them all pending (a bootstrap's whole sequence, announced first) stays in
    /// place, and other providers' look-ahead (a network's weights) is kept.
    fn prefetch(&self, galois_elements: &[u64]) {
        let names: Vec<String> = galois_elements
            .iter()
            .map(|&g| self.galois_name(g))
            .collect();
        self.store.announce_in(ScheduleStream::KEYS, &names);
    }

    fn prefetch_at(&self, galois_elements: &[u64], level: usize) {
        let names: Vec<String> = galois_elements
            .iter()
            .map(|&g| self.galois_name_at(g, level))
            .collect();
        self.store.announce_in(ScheduleStream::KEYS, &names);
    }

    fn prefetch_kinds(&self, kinds: &[KeyKind]) {
        let names: Vec<String> = kinds.iter().map(|k| self.name_of_use(*k, None)).collect();
        self.store.announce_in(ScheduleStream::KEYS, &names);
    }

    /// Announces each use's object ([`galois_name_at`](Self::galois_name_at) at its level) in
    /// the keys' stream.
    fn prefetch_uses(&self, uses: &[KeyUse]) {
        let names: Vec<String> = uses
            .iter()
            .map(|u| self.name_of_use(u.kind, Some(u.level)))
            .collect();
        self.store.announce_in(ScheduleStream::KEYS, &names);
    }
}

/// Words a key of `shape` holds, or `None` if that count does not fit in a `usize`
/// ([`he_core::rlwe::KeyShape::words`] does not check). Every intermediate product of
/// `KeyShape::words` and `KeyShape::bytes`, in their order of evaluation, is checked, so
/// that when this returns `Some` those methods cannot overflow either.
pub(crate) fn checked_key_words(shape: &he_core::rlwe::KeyShape) -> Option<usize> {
    let component = shape
        .q_limbs
        .checked_add(shape.p_limbs)?
        .checked_mul(shape.n)?;
    let words = 2usize.checked_mul(shape.dnum)?.checked_mul(component)?;
    words.checked_mul(8)?;
    Some(words)
}

/// Turns the metadata and payload of the object `key` into a [`KeySwitchKey`], as
/// [`Store::get_key`] does with a mapped payload (used in place, not copied). Pure: the
/// `store_get_key` fuzz target runs it on arbitrary metadata and payloads.
///
/// Errors: [`StoreError::TypeMismatch`] (not a key object), [`StoreError::InvalidObject`]
/// (a shape whose size overflows, or a payload of another length than the shape needs).
pub fn decode_key(
    key: &str,
    meta: &crate::object::ObjectMeta,
    payload: Arc<dyn he_core::rlwe::LimbStorage>,
) -> Result<KeySwitchKey, StoreError> {
    let (shape, kind) = meta.key_shape().ok_or_else(|| StoreError::TypeMismatch {
        key: key.to_string(),
        expected: ObjectType::GaloisKey,
        found: meta.ty,
    })?;
    let words = checked_key_words(&shape).ok_or_else(|| StoreError::InvalidObject {
        key: key.to_string(),
        reason: format!("key shape {shape:?} has more words than the address space holds"),
    })?;
    let found = payload.words().len();
    if found != words {
        return Err(StoreError::InvalidObject {
            key: key.to_string(),
            reason: format!("key shape {shape:?} needs {words} words, payload has {found}"),
        });
    }
    Ok(
        KeySwitchKey::from_storage(shape, kind, meta.params_hash, payload)?
            .with_key_id(key_id_from_meta(&meta.user)),
    )
}
