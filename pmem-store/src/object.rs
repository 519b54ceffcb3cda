//! What the store holds: typed objects, their metadata and their place on disk.

use he_core::rlwe::{KeyKind, KeyShape, KeySwitchKey};
use std::fmt;

/// The type tag of a stored object (persisted as a `u16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ObjectType {
    /// A ciphertext (limb-major residues of its polynomials).
    Ciphertext,
    /// A plaintext, e.g. an encoded model weight.
    Plaintext,
    /// The relinearization key (a key-switching key `s^2 -> s`).
    RelinKey,
    /// A Galois (rotation) key; [`ObjectMeta::aux`] holds the Galois element.
    GaloisKey,
    /// A raw tensor of `u64` words; [`ObjectMeta::dims`] holds its shape.
    Tensor,
    /// Raw bytes.
    Bytes,
}

impl ObjectType {
    /// The persisted tag.
    pub fn tag(self) -> u16 {
        match self {
            Self::Ciphertext => 1,
            Self::Plaintext => 2,
            Self::RelinKey => 3,
            Self::GaloisKey => 4,
            Self::Tensor => 5,
            Self::Bytes => 6,
        }
    }
    /// The type of a persisted tag, if known.
    pub fn from_tag(tag: u16) -> Option<Self> {
        Some(match tag {
            1 => Self::Ciphertext,
            2 => Self::Plaintext,
            3 => Self::RelinKey,
            4 => Self::GaloisKey,
            5 => Self::Tensor,
            6 => Self::Bytes,
            _ => return None,
        })
    }
    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ciphertext => "ciphertext",
            Self::Plaintext => "plaintext",
            Self::RelinKey => "relin-key",
            Self::GaloisKey => "galois-key",
            Self::Tensor => "tensor",
            Self::Bytes => "bytes",
        }
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
    /// Shape words: for keys `[n, q_limbs, p_limbs, dnum]`; for ciphertexts and plaintexts
    /// `[n, limbs, polys, 0]` by convention; for tensors their dimensions.
    pub dims: [u64; 4],
    /// One more word: the Galois element of a Galois key, a scale's bits, ...
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
    /// Metadata describing a key-switching key (relinearization or Galois).
    pub fn for_key(key: &KeySwitchKey) -> Self {
        let s = key.shape();
        let (ty, aux) = match key.kind() {
            KeyKind::Relinearization => (ObjectType::RelinKey, 0),
            KeyKind::Galois(g) => (ObjectType::GaloisKey, g),
            // Non-Galois switching keys share the type; aux tells them apart.
            KeyKind::SparseToDense => (ObjectType::RelinKey, 1),
        };
        Self::new(ty, key.params_hash())
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
        let kind = match self.ty {
            ObjectType::RelinKey if self.aux == 1 => KeyKind::SparseToDense,
            ObjectType::RelinKey => KeyKind::Relinearization,
            ObjectType::GaloisKey => KeyKind::Galois(self.aux),
            _ => return None,
        };
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
