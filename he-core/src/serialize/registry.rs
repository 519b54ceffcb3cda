//! The one object registry of HomE ([`ObjectKind`]), shared by serialized blobs and
//! `pmem-store` records.

use crate::rlwe::KeyKind;
use std::fmt;

/// The one object registry of HomE: every kind of object a blob or a store record can hold,
/// with the `u16` tag persisted for it. The serialized-blob header (`he_core::serialize`) and
/// `pmem-store`'s index records both write [`ObjectKind::tag`], so a tag means the same object
/// in both places.
///
/// | tag | kind                 | serialized blob (`he_core::serialize`)        | `pmem-store` record payload                       |
/// |----:|----------------------|-----------------------------------------------|---------------------------------------------------|
/// |   1 | `Parameters`         | `Parameters::to_bytes`                        | the blob                                          |
/// |   2 | `Plaintext`          | [`Serializable`](super::Serializable)         | the blob (`Store::put_plaintext`)                 |
/// |   3 | `Ciphertext`         | `Serializable`                                | the blob                                          |
/// |   4 | `PublicKey`          | `Serializable`                                | the blob                                          |
/// |   5 | `KeySwitchKey`       | `Serializable` (its kind inside the payload)  | the blob                                          |
/// |   6 | `SecretKey`          | only [`secret_key_to_bytes`](super::secret_key_to_bytes) | **refused**: a store never holds a secret |
/// |   7 | `LinearTransform`    | `Serializable`                                | the blob (`Store::put_transform`)                 |
/// |   8 | `RelinKey`           | none                                          | raw limb-major words, used in place               |
/// |   9 | `GaloisKey`          | none                                          | raw words; the record's `aux` is the element      |
/// |  10 | `SparseToDenseKey`   | none                                          | raw words (bootstrapping's encapsulation switch)  |
/// |  11 | `Tensor`             | none                                          | raw `u64` words; the record's `dims` its shape    |
/// |  12 | `Bytes`              | none                                          | raw bytes                                         |
///
/// Tags 1 to 7 are those of serialize format version 2, unchanged. Tags are never reused:
/// a kind that is retired keeps its number, and new kinds take the next free one.
///
/// ```
/// use he_core::serialize::ObjectKind;
///
/// assert_eq!(ObjectKind::LinearTransform.tag(), 7);
/// assert_eq!(ObjectKind::from_tag(9), Some(ObjectKind::GaloisKey));
/// assert_eq!(ObjectKind::from_tag(0), None);
/// assert!(ObjectKind::SecretKey.is_secret());
/// assert_eq!(ObjectKind::GaloisKey.to_string(), "galois-key");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
#[non_exhaustive]
pub enum ObjectKind {
    /// [`Parameters`](crate::rlwe::Parameters).
    Parameters = 1,
    /// [`Plaintext`](crate::ckks::Plaintext), e.g. an encoded model weight.
    Plaintext = 2,
    /// [`Ciphertext`](crate::ckks::Ciphertext).
    Ciphertext = 3,
    /// [`PublicKey`](crate::rlwe::PublicKey).
    PublicKey = 4,
    /// [`KeySwitchKey`](crate::rlwe::KeySwitchKey) in serialized form (its
    /// [`KeyKind`] inside the payload).
    KeySwitchKey = 5,
    /// [`SecretKey`](crate::rlwe::SecretKey): written only by the explicitly named functions,
    /// never held by a store.
    SecretKey = 6,
    /// [`LinearTransform`](crate::circuits::lintrans::LinearTransform): pre-encoded diagonals.
    LinearTransform = 7,
    /// The relinearization key as raw limb-major words (a store's in-place form).
    RelinKey = 8,
    /// A Galois (rotation) key as raw words.
    GaloisKey = 9,
    /// Bootstrapping's sparse-to-dense switching key as raw words.
    SparseToDenseKey = 10,
    /// A raw tensor of `u64` words.
    Tensor = 11,
    /// Raw bytes.
    Bytes = 12,
}

impl ObjectKind {
    /// Every kind, in tag order.
    pub const ALL: [ObjectKind; 12] = [
        Self::Parameters,
        Self::Plaintext,
        Self::Ciphertext,
        Self::PublicKey,
        Self::KeySwitchKey,
        Self::SecretKey,
        Self::LinearTransform,
        Self::RelinKey,
        Self::GaloisKey,
        Self::SparseToDenseKey,
        Self::Tensor,
        Self::Bytes,
    ];

    /// The persisted tag.
    pub fn tag(self) -> u16 {
        self as u16
    }

    /// The kind of a persisted tag, or `None` for a tag this build does not know.
    pub fn from_tag(tag: u16) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.tag() == tag)
    }

    /// A short lowercase name (what listings print).
    pub fn name(self) -> &'static str {
        match self {
            Self::Parameters => "parameters",
            Self::Plaintext => "plaintext",
            Self::Ciphertext => "ciphertext",
            Self::PublicKey => "public-key",
            Self::KeySwitchKey => "key-switch-key",
            Self::SecretKey => "secret-key",
            Self::LinearTransform => "linear-transform",
            Self::RelinKey => "relin-key",
            Self::GaloisKey => "galois-key",
            Self::SparseToDenseKey => "sparse-to-dense-key",
            Self::Tensor => "tensor",
            Self::Bytes => "bytes",
        }
    }

    /// Whether objects of this kind are secret (a store refuses them).
    pub fn is_secret(self) -> bool {
        self == Self::SecretKey
    }

    /// The raw-word kind a store keeps a key-switching key of kind `kind` under.
    ///
    /// ```
    /// use he_core::rlwe::KeyKind;
    /// use he_core::serialize::ObjectKind;
    ///
    /// assert_eq!(ObjectKind::raw_key(KeyKind::Galois(5)), ObjectKind::GaloisKey);
    /// assert_eq!(ObjectKind::raw_key(KeyKind::SparseToDense), ObjectKind::SparseToDenseKey);
    /// ```
    pub fn raw_key(kind: KeyKind) -> Self {
        match kind {
            KeyKind::Relinearization => Self::RelinKey,
            KeyKind::Galois(_) => Self::GaloisKey,
            KeyKind::SparseToDense => Self::SparseToDenseKey,
        }
    }

    /// The key kind of a raw-word key object; `galois_element` is used for
    /// [`ObjectKind::GaloisKey`]. `None` for kinds that are not raw keys.
    pub fn raw_key_kind(self, galois_element: u64) -> Option<KeyKind> {
        match self {
            Self::RelinKey => Some(KeyKind::Relinearization),
            Self::GaloisKey => Some(KeyKind::Galois(galois_element)),
            Self::SparseToDenseKey => Some(KeyKind::SparseToDense),
            _ => None,
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The persisted numbers: changing one misreads every file written before.
    #[test]
    fn tags_are_pinned() {
        let table: Vec<(u16, &str)> = ObjectKind::ALL
            .iter()
            .map(|k| (k.tag(), k.name()))
            .collect();
        assert_eq!(
            table,
            [
                (1, "parameters"),
                (2, "plaintext"),
                (3, "ciphertext"),
                (4, "public-key"),
                (5, "key-switch-key"),
                (6, "secret-key"),
                (7, "linear-transform"),
                (8, "relin-key"),
                (9, "galois-key"),
                (10, "sparse-to-dense-key"),
                (11, "tensor"),
                (12, "bytes"),
            ]
        );
    }

    #[test]
    fn tags_round_trip_and_unknown_tags_are_none() {
        for k in ObjectKind::ALL {
            assert_eq!(ObjectKind::from_tag(k.tag()), Some(k));
        }
        for t in [0u16, 13, 255, u16::MAX] {
            assert_eq!(ObjectKind::from_tag(t), None);
        }
        let secret: Vec<_> = ObjectKind::ALL
            .into_iter()
            .filter(|k| k.is_secret())
            .collect();
        assert_eq!(secret, [ObjectKind::SecretKey]);
    }

    #[test]
    fn raw_key_kinds_invert() {
        for kind in [
            KeyKind::Relinearization,
            KeyKind::Galois(5),
            KeyKind::SparseToDense,
        ] {
            assert_eq!(ObjectKind::raw_key(kind).raw_key_kind(5), Some(kind));
        }
        assert_eq!(ObjectKind::KeySwitchKey.raw_key_kind(0), None);
    }
}
