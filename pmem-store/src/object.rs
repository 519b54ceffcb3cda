//! What the store holds: typed objects, their metadata and their place on disk.

use he_core::rlwe::{KeyKind, KeyShape, KeySwitchKey};

/// The type tag of a stored object (persisted as a `u16`): `he-core`'s one object registry,
/// [`he_core::serialize::ObjectKind`], so that a tag means the same in a store record and in a
/// serialized blob. Its documentation has the table of tags and of what a record of each kind
/// holds: kinds with a serialized form (plaintexts, linear transforms, ...) are stored as
/// their blob; key-switching keys as raw words used in place ([`ObjectType::RelinKey`],
/// [`ObjectType::GaloisKey`], [`ObjectType::SparseToDenseKey`]); tensors and bytes raw. A
/// [`ObjectType::SecretKey`] is refused by `put` ([`crate::StoreError::SecretKeyRefused`]).
pub use he_core::serialize::ObjectKind as ObjectType;

/// Largest user metadata blob per object.
pub const MAX_USER_META: usize = 64 * 1024;
/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Metadata stored with an object in its (checksummed) index record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Type tag.
    pub ty: ObjectType,
    /// Hash of the parameters the object was made for.
    pub params_hash: u64,
    /// Shape words: for raw keys `[n, q_limbs, p_limbs, dnum]`; for linear transforms
    /// `[level, slots, n1, diagonals]` and for plaintexts `[level, 0, 0, 0]` (informational:
    /// the blob is what is decoded); for tensors their dimensions.
    pub dims: [u64; 4],
    /// One more word: the Galois element of a Galois key, the scale's bits of a plaintext or
    /// linear transform, ...
    pub aux: u64,
    /// Free-form caller metadata (at most [`MAX_USER_META`] bytes), e.g. a serialized header.
    pub user: Vec<u8>,
}

impl ObjectMeta {
    /// Metadata of type `ty` for parameters `params_hash`, all other fields zero.
    pub fn new(ty: ObjectType, params_hash: u64) -> Self {
        Self {
            ty,
            params_hash,
            dims: [0; 4],
            aux: 0,
            user: Vec::new(),
        }
    }
    /// Sets the shape words.
    pub fn with_dims(mut self, dims: [u64; 4]) -> Self {
        self.dims = dims;
        self
    }
    /// Sets the auxiliary word.
    pub fn with_aux(mut self, aux: u64) -> Self {
        self.aux = aux;
        self
    }
    /// Sets the caller metadata.
    pub fn with_user(mut self, user: Vec<u8>) -> Self {
        self.user = user;
        self
    }
    /// Metadata describing a key-switching key: its raw-word kind
    /// ([`ObjectType::raw_key`]), shape, and for a Galois key the element in `aux`.
    pub fn for_key(key: &KeySwitchKey) -> Self {
        let s = key.shape();
        let aux = match key.kind() {
            KeyKind::Galois(g) => g,
            KeyKind::Relinearization | KeyKind::SparseToDense => 0,
        };
        Self::new(ObjectType::raw_key(key.kind()), key.params_hash())
            .with_dims([
                s.n as u64,
                s.q_limbs as u64,
                s.p_limbs as u64,
                s.dnum as u64,
            ])
            .with_aux(aux)
    }
    /// The key shape and kind, when this describes a key-switching key.
    pub fn key_shape(&self) -> Option<(KeyShape, KeyKind)> {
        let kind = self.ty.raw_key_kind(self.aux)?;
        let [n, q, p, d] = self.dims;
        let shape = KeyShape {
            n: usize::try_from(n).ok()?,
            q_limbs: usize::try_from(q).ok()?,
            p_limbs: usize::try_from(p).ok()?,
            dnum: usize::try_from(d).ok()?,
        };
        Some((shape, kind))
    }
}

/// A committed object: its key, metadata and location (from the index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key.
    pub key: String,
    /// Metadata.
    pub meta: ObjectMeta,
    /// Segment number (file `seg-NNNNNNNN.dat`).
    pub segment: u32,
    /// Byte offset of the payload in the segment (a multiple of [`crate::PAYLOAD_ALIGN`]).
    pub offset: u64,
    /// Payload length in bytes.
    pub len: u64,
    /// XXH3-64 checksum of the payload.
    pub checksum: u64,
    /// Generation number of the index record that committed it.
    pub generation: u64,
}
