//! Versioned binary serialization of parameters, plaintexts, ciphertexts and keys.
//!
//! Every blob is `header ‖ payload`:
//!
//! ```text
//! offset  size  field
//!      0     8  magic "HOMEFHE\0"
//!      8     2  format version (2), little-endian
//!     10     2  object type: the tag of its [`ObjectKind`] (the registry shared with
//!                 `pmem-store`; tags 1..=7 are the only ones a blob carries)
//!     12     4  flags (bit 0: seeded form)
//!     16     8  hash of the parameters (Parameters::hash)
//!     24     8  payload length in bytes
//!     32     8  XXH3-64 of bytes 0..32 followed by the payload
//! ```
//!
//! Version 2 added the [`KeyId`] of the secret key to ciphertexts, public keys,
//! key-switching keys and secret keys; version-1 blobs are refused with a message saying so.
//! The type tags are those of the one object registry, [`ObjectKind`], which `pmem-store`'s
//! index records use too; tags 1 to 7 have not changed since version 1, so sharing the
//! registry changed no blob and needed no version bump.
//!
//! Residues are little-endian `u64`, limb-major, copied with `bytemuck`. Decoders check, in
//! order: length of the header, magic, version, type, checksum, the parameters' hash, and the
//! payload length *computed from the parameters* against the bytes present — before any
//! allocation proportional to the input — then every residue against its modulus, and the
//! object's meaning: a level within the chain, a finite scale in `[1, Q_level)`, a component
//! count the object can have, a key kind its use asks for
//! ([`KeySwitchKey::from_bytes_as`]). Seeded forms store a 32-byte seed instead of the uniform
//! component (`c_1` of fresh secret-key ciphertexts, `a` of public keys, the `a_j` of
//! key-switching keys), about halving their size.
//!
//! A key-switching key may be level-limited ([`MaxLevel`](crate::rlwe::MaxLevel)): its payload
//! names its digit count, and its Q-limb count follows from the payload length, which must be
//! exactly that of `dnum` digits over `q_limbs + k` limbs with `1 ≤ q_limbs ≤ L + 1` and
//! `dnum = ⌈q_limbs/α⌉` — still decided from the header before allocating. A full key's blob
//! is unchanged, and a reader from before level-limited keys refuses a level-limited blob
//! (digit count or length) rather than misreading it.
//!
//! **The checksum detects corruption, not tampering.** XXH3 is not a MAC: anyone who can
//! modify a blob can recompute it, so a blob from an untrusted party is exactly as trustworthy
//! as its sender. The semantic checks above make a forged blob fail with a typed error rather
//! than crash or mislead the decoder, but they cannot tell a forged ciphertext or key from an
//! honest one; authenticate blobs (a signature or MAC over the bytes) where that matters.
//!
//! The secret key has no [`Serializable`] implementation on purpose: it is written only by the
//! explicitly named [`secret_key_to_bytes`].
#![deny(clippy::indexing_slicing)]

use crate::ckks::{Ciphertext, Plaintext};
use crate::math::Prng;
use crate::ring::keyswitch::PolyQP;
use crate::ring::{zeroed_limbs, Eval, Poly, RingContext};
use crate::rlwe::params::MAX_CHAIN_PRIMES;
use crate::rlwe::{
    KeyId, Parameters, ParametersLiteral, PublicKey, SecretDistribution, SecretKey, Security,
};
use crate::{Error, Result};
use std::sync::Arc;
use zeroize::Zeroizing;

mod circuits;
mod ksk;
mod registry;

#[cfg(target_endian = "big")]
compile_error!("HomE's serialization assumes a little-endian target");

/// Magic bytes at the start of every blob.
pub const MAGIC: [u8; 8] = *b"HOMEFHE\0";
/// Current format version (2: key identifiers).
pub const FORMAT_VERSION: u16 = 2;
/// Header length in bytes.
pub const HEADER_LEN: usize = 40;
const FLAG_SEEDED: u32 = 1;

pub use registry::ObjectKind;
/// The name this module gave the registry before it was shared with `pmem-store`: the same
/// type as [`ObjectKind`].
pub type ObjectType = ObjectKind;

/// Header flags for an object stored in seeded form or not.
fn seeded_flag(seeded: bool) -> u32 {
    if seeded {
        FLAG_SEEDED
    } else {
        0
    }
}

/// A parsed, checksum-verified header and its payload.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// Object type.
    pub object: ObjectKind,
    /// Flags.
    pub flags: u32,
    /// Parameters' hash.
    pub params_hash: u64,
    /// Payload length.
    pub payload_len: u64,
}

fn err(what: &'static str, reason: impl Into<String>) -> Error {
    Error::Decode {
        what,
        reason: reason.into(),
    }
}

fn checksum(head: &[u8], payload: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(head);
    h.update(payload);
    h.digest()
}

/// Wraps a payload in a header.
pub fn seal(object: ObjectKind, flags: u32, params_hash: u64, payload: &[u8]) -> Vec<u8> {
    let mut head = Vec::with_capacity(32);
    head.extend_from_slice(&MAGIC);
    head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    head.extend_from_slice(&(object as u16).to_le_bytes());
    head.extend_from_slice(&flags.to_le_bytes());
    head.extend_from_slice(&params_hash.to_le_bytes());
    head.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let c = checksum(&head, payload);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(&c.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Parses and verifies the header of `bytes` (magic, version, type, length, checksum);
/// returns it and the payload.
pub fn open(bytes: &[u8], expected: ObjectKind) -> Result<(Header, &[u8])> {
    let what = "HomE blob";
    let (Some(head), Some(payload)) = (bytes.get(..HEADER_LEN), bytes.get(HEADER_LEN..)) else {
        return Err(err(
            what,
            format!(
                "truncated: {} bytes, the header alone is {HEADER_LEN}",
                bytes.len()
            ),
        ));
    };
    let mut r = Reader { buf: head, what };
    if r.take(8)? != MAGIC {
        return Err(err(what, "bad magic: not a HomE object"));
    }
    let version = r.u16()?;
    if version != FORMAT_VERSION {
        let hint = if version < FORMAT_VERSION {
            " (written before key identifiers were added; re-create the object with this version)"
        } else {
            " (written by a newer HomE)"
        };
        return Err(err(
            what,
            format!(
                "format version {version}, this build reads version {FORMAT_VERSION} only{hint}"
            ),
        ));
    }
    let tag = r.u16()?;
    let object = ObjectKind::from_tag(tag)
        .ok_or_else(|| err(what, format!("unknown object type tag {tag}")))?;
    if object != expected {
        return Err(err(
            what,
            format!("object type {object:?}, expected {expected:?}"),
        ));
    }
    let flags = r.u32()?;
    let params_hash = r.u64()?;
    let payload_len = r.u64()?;
    let stored = r.u64()?;
    if payload_len != payload.len() as u64 {
        return Err(err(
            what,
            format!(
                "payload of {} bytes, header says {payload_len}",
                payload.len()
            ),
        ));
    }
    let covered = head
        .get(..32)
        .ok_or_else(|| err(what, "truncated header"))?;
    if checksum(covered, payload) != stored {
        return Err(err(
            what,
            "checksum mismatch: the data is corrupted (the checksum detects corruption, not tampering)",
        ));
    }
    Ok((
        Header {
            object,
            flags,
            params_hash,
            payload_len,
        },
        payload,
    ))
}

/// A little-endian cursor over a payload that never reads past the end.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        match (self.buf.get(..n), self.buf.get(n..)) {
            (Some(a), Some(b)) => {
                self.buf = b;
                Ok(a)
            }
            _ => Err(err(
                self.what,
                format!("truncated: needed {n} more bytes, {} left", self.buf.len()),
            )),
        }
    }
    fn array<const K: usize>(&mut self) -> Result<[u8; K]> {
        let mut a = [0u8; K];
        a.copy_from_slice(self.take(K)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(u8::from_le_bytes(self.array()?))
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn seed(&mut self) -> Result<[u8; 32]> {
        self.array()
    }
    /// An optional key identifier (0 = none).
    fn key_id(&mut self) -> Result<Option<KeyId>> {
        Ok(KeyId::from_u64(self.u64()?))
    }
    /// A key identifier that must be present.
    fn required_key_id(&mut self) -> Result<KeyId> {
        self.key_id()?.ok_or_else(|| {
            err(
                self.what,
                "key identifier 0: a key must carry its secret's identifier",
            )
        })
    }
    fn finish(&self) -> Result<()> {
        if !self.buf.is_empty() {
            return Err(err(self.what, format!("{} trailing bytes", self.buf.len())));
        }
        Ok(())
    }
    /// Reads `limbs x n` residues into a polynomial and checks them against `ring`.
    fn poly(&mut self, ring: &RingContext, limbs: usize) -> Result<Poly<Eval>> {
        let n = ring.degree();
        let words = limbs
            .checked_mul(n)
            .ok_or_else(|| err(self.what, "size overflows"))?;
        let bytes = self.take(
            words
                .checked_mul(8)
                .ok_or_else(|| err(self.what, "size overflows"))?,
        )?;
        let mut data = zeroed_limbs(words);
        bytemuck::cast_slice_mut::<u64, u8>(data.as_mut_slice()).copy_from_slice(bytes);
        let p = Poly::from_container(data, n, limbs)?;
        ring.check(&p).map_err(|e| err(self.what, e.to_string()))?;
        Ok(p)
    }
}

fn put_poly(out: &mut Vec<u8>, p: &[u64]) {
    out.extend_from_slice(bytemuck::cast_slice(p));
}

/// Objects with a versioned binary form, loaded against parameters.
pub trait Serializable: Sized {
    /// The object's type tag.
    const OBJECT: ObjectKind;
    /// Encodes (seeded form where available).
    fn to_bytes(&self) -> Vec<u8>;
    /// Decodes and validates against `params`.
    fn from_bytes(params: &Arc<Parameters>, bytes: &[u8]) -> Result<Self>;
}

fn check_params(params: &Parameters, h: &Header) -> Result<()> {
    params.check_hash(h.params_hash)
}

impl Parameters {
    /// Encodes the parameters (primes included, so loading does not regenerate them).
    pub fn to_bytes(&self) -> Vec<u8> {
        let lit = self.literal();
        let mut p = Vec::new();
        p.extend_from_slice(&lit.log_n.to_le_bytes());
        p.extend_from_slice(&(self.q().len() as u32).to_le_bytes());
        self.q()
            .iter()
            .for_each(|x| p.extend_from_slice(&x.to_le_bytes()));
        p.extend_from_slice(&(self.p().len() as u32).to_le_bytes());
        self.p()
            .iter()
            .for_each(|x| p.extend_from_slice(&x.to_le_bytes()));
        p.extend_from_slice(&(lit.alpha.unwrap_or(0) as u32).to_le_bytes());
        p.extend_from_slice(&lit.log_scale.to_bits().to_le_bytes());
        match lit.secret {
            SecretDistribution::UniformTernary => p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0]),
            SecretDistribution::HammingWeight(h) => {
                p.push(1);
                p.extend_from_slice(&(h as u64).to_le_bytes());
            }
        }
        p.push(match lit.security {
            Security::Bits128 => 0,
            Security::InsecureForTesting => 1,
        });
        seal(ObjectKind::Parameters, 0, self.hash(), &p)
    }

    /// Decodes parameters and runs every check of [`Parameters::new`] on them (degree, primes,
    /// digits, scale, secret distribution, the 128-bit table). A blob that declares itself
    /// [`Security::InsecureForTesting`] is refused with [`Error::InvalidParameters`]: the blob's
    /// own flag is not trusted; a caller that means to load test parameters says so with
    /// [`Parameters::from_bytes_allow_insecure`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Arc<Self>> {
        Self::decode(bytes, false)
    }

    /// [`from_bytes`](Self::from_bytes) that also accepts sets saved as
    /// [`Security::InsecureForTesting`]: the name is the opt-in, for tests and toy examples
    /// only. A set saved as 128-bit is still checked against the table.
    pub fn from_bytes_allow_insecure(bytes: &[u8]) -> Result<Arc<Self>> {
        Self::decode(bytes, true)
    }

    fn decode(bytes: &[u8], allow_insecure: bool) -> Result<Arc<Self>> {
        let (h, payload) = open(bytes, ObjectKind::Parameters)?;
        let mut r = Reader {
            buf: payload,
            what: "parameters",
        };
        let log_n = r.u32()?;
        if !(4..=17).contains(&log_n) {
            return Err(err("parameters", format!("log N = {log_n} outside 4..=17")));
        }
        let nq = r.u32()? as usize;
        if nq == 0 || nq > MAX_CHAIN_PRIMES {
            return Err(err(
                "parameters",
                format!("{nq} ciphertext primes, expected 1..={MAX_CHAIN_PRIMES}"),
            ));
        }
        let q = (0..nq).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
        let np = r.u32()? as usize;
        if np == 0 || np > 64 {
            return Err(err(
                "parameters",
                format!("{np} special primes, expected 1..=64"),
            ));
        }
        let p = (0..np).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
        let alpha = r.u32()? as usize;
        if alpha == 0 || alpha > nq {
            return Err(err(
                "parameters",
                format!("alpha = {alpha} primes per digit, expected 1..={nq}"),
            ));
        }
        let log_scale = r.f64()?;
        let secret = match r.u8()? {
            0 => {
                r.u64()?;
                SecretDistribution::UniformTernary
            }
            1 => SecretDistribution::HammingWeight(
                usize::try_from(r.u64()?)
                    .map_err(|_| err("parameters", "Hamming weight overflows"))?,
            ),
            t => {
                return Err(err(
                    "parameters",
                    format!("unknown secret distribution tag {t}"),
                ))
            }
        };
        let security = match r.u8()? {
            0 => Security::Bits128,
            1 => Security::InsecureForTesting,
            t => return Err(err("parameters", format!("unknown security tag {t}"))),
        };
        r.finish()?;
        if security == Security::InsecureForTesting && !allow_insecure {
            return Err(Error::InvalidParameters(
                "the blob holds parameters saved as InsecureForTesting: refused by \
                 Parameters::from_bytes; load test parameters with \
                 Parameters::from_bytes_allow_insecure"
                    .into(),
            ));
        }
        let lit = ParametersLiteral {
            log_n,
            log_q: vec![],
            log_p: vec![],
            alpha: Some(alpha),
            log_scale,
            secret,
            security,
        };
        let params = Parameters::from_primes(lit, q, p)?;
        params.check_hash(h.params_hash)?;
        Ok(params)
    }
}

impl Serializable for Plaintext {
    const OBJECT: ObjectKind = ObjectKind::Plaintext;
    fn to_bytes(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(12 + self.poly().as_slice().len() * 8);
        p.extend_from_slice(&(self.level() as u32).to_le_bytes());
        p.extend_from_slice(&self.scale().to_bits().to_le_bytes());
        put_poly(&mut p, self.poly().as_slice());
        seal(Self::OBJECT, 0, self.params_hash(), &p)
    }
    fn from_bytes(params: &Arc<Parameters>, bytes: &[u8]) -> Result<Self> {
        let (h, payload) = open(bytes, Self::OBJECT)?;
        check_params(params, &h)?;
        let mut r = Reader {
            buf: payload,
            what: "plaintext",
        };
        let level = r.u32()? as usize;
        let scale = r.f64()?;
        check_level_scale(params, level, scale, "plaintext")?;
        let expect = 12 + (level + 1) * params.degree() * 8;
        if payload.len() != expect {
            return Err(err(
                "plaintext",
                format!(
                    "payload of {} bytes, level {level} needs {expect}",
                    payload.len()
                ),
            ));
        }
        let poly = r.poly(params.ring_q(), level + 1)?;
        r.finish()?;
        Ok(Plaintext::new(poly, scale, params.hash()))
    }
}

/// The semantic checks shared by every object with a level and a scale: the level within the
/// chain, and the scale finite, at least 1 and below `Q_level` (a larger scale leaves no room
/// for the message: it would decrypt to a wrapped value).
fn check_level_scale(
    params: &Parameters,
    level: usize,
    scale: f64,
    what: &'static str,
) -> Result<()> {
    if level > params.max_level() {
        return Err(err(
            what,
            format!(
                "level {level}, parameters have levels 0..={}",
                params.max_level()
            ),
        ));
    }
    if !(scale.is_finite() && scale >= 1.0) {
        return Err(err(
            what,
            format!("scale {scale}: expected a finite number >= 1"),
        ));
    }
    let log_q = params.log_q_at(level);
    if scale.log2() >= log_q {
        return Err(err(
            what,
            format!(
                "scale 2^{:.2} at level {level}: expected below Q_{level} = 2^{log_q:.2}",
                scale.log2()
            ),
        ));
    }
    Ok(())
}

impl Serializable for Ciphertext {
    const OBJECT: ObjectKind = ObjectKind::Ciphertext;
    /// Payload: `u8 size | 3 × 0 | u32 level | f64 scale | u64 key id (0: none)` then the
    /// components (or `c_0` and the 32-byte seed of `c_1`).
    fn to_bytes(&self) -> Vec<u8> {
        let seeded = self.seed().is_some() && self.size() == 2;
        let words: usize = self.parts().iter().map(|c| c.as_slice().len()).sum();
        let mut p = Vec::with_capacity(CT_FIXED + words * 8);
        p.push(self.size() as u8);
        p.extend_from_slice(&[0, 0, 0]);
        p.extend_from_slice(&(self.level() as u32).to_le_bytes());
        p.extend_from_slice(&self.scale().to_bits().to_le_bytes());
        p.extend_from_slice(&KeyId::to_word(self.key_id()).to_le_bytes());
        match (self.seed(), self.parts().first()) {
            (Some(seed), Some(c0)) if seeded => {
                put_poly(&mut p, c0.as_slice());
                p.extend_from_slice(&seed);
            }
            _ => self
                .parts()
                .iter()
                .for_each(|c| put_poly(&mut p, c.as_slice())),
        }
        seal(Self::OBJECT, seeded_flag(seeded), self.params_hash(), &p)
    }
    fn from_bytes(params: &Arc<Parameters>, bytes: &[u8]) -> Result<Self> {
        let what = "ciphertext";
        let (h, payload) = open(bytes, Self::OBJECT)?;
        check_params(params, &h)?;
        let mut r = Reader { buf: payload, what };
        let size = r.u8()? as usize;
        if r.take(3)? != [0, 0, 0] {
            return Err(err(what, "reserved bytes are not zero"));
        }
        let level = r.u32()? as usize;
        let scale = r.f64()?;
        let key_id = r.key_id()?;
        if !(2..=3).contains(&size) {
            return Err(err(what, format!("{size} components, expected 2 or 3")));
        }
        check_level_scale(params, level, scale, what)?;
        let seeded = h.flags & FLAG_SEEDED != 0;
        if h.flags & !FLAG_SEEDED != 0 {
            return Err(err(what, format!("unknown flags {:#x}", h.flags)));
        }
        if seeded && size != 2 {
            return Err(err(what, "a seeded ciphertext must have 2 components"));
        }
        let poly_bytes = (level + 1) * params.degree() * 8;
        let expect = CT_FIXED
            + if seeded {
                poly_bytes + 32
            } else {
                size * poly_bytes
            };
        if payload.len() != expect {
            return Err(err(
                what,
                format!(
                    "payload of {} bytes, {size} components at level {level} need {expect}",
                    payload.len()
                ),
            ));
        }
        let rq = params.ring_q();
        let mut c = Vec::with_capacity(size);
        let mut seed = None;
        if seeded {
            c.push(r.poly(rq, level + 1)?);
            let s = r.seed()?;
            c.push(rq.uniform::<Eval>(&mut Prng::from_seed(s), level + 1)?);
            seed = Some(s);
        } else {
            for _ in 0..size {
                c.push(r.poly(rq, level + 1)?);
            }
        }
        r.finish()?;
        let mut ct = Ciphertext::from_parts(c, scale, params.hash())?.with_key_id(key_id);
        ct.seed = seed;
        Ok(ct)
    }
}

/// Fixed part of a ciphertext payload.
const CT_FIXED: usize = 24;

fn expand_public_a(params: &Parameters, seed: [u8; 32]) -> Result<PolyQP> {
    let (rq, rp) = (params.ring_q(), params.ring_p());
    let mut prng = Prng::from_seed(seed);
    Ok(PolyQP {
        q: rq.uniform::<Eval>(&mut prng, rq.max_limbs())?,
        p: rp.uniform::<Eval>(&mut prng, rp.max_limbs())?,
    })
}

impl Serializable for PublicKey {
    const OBJECT: ObjectKind = ObjectKind::PublicKey;
    /// Payload: `u64 key id | b (Q then P) | a (Q then P) or its 32-byte seed`.
    fn to_bytes(&self) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&KeyId::to_word(self.key_id()).to_le_bytes());
        put_poly(&mut p, self.b().q.as_slice());
        put_poly(&mut p, self.b().p.as_slice());
        match self.seed() {
            Some(seed) => p.extend_from_slice(&seed),
            None => {
                put_poly(&mut p, self.a().q.as_slice());
                put_poly(&mut p, self.a().p.as_slice());
            }
        }
        seal(
            Self::OBJECT,
            seeded_flag(self.seed().is_some()),
            self.params_hash(),
            &p,
        )
    }
    fn from_bytes(params: &Arc<Parameters>, bytes: &[u8]) -> Result<Self> {
        let what = "public key";
        let (h, payload) = open(bytes, Self::OBJECT)?;
        check_params(params, &h)?;
        if h.flags & !FLAG_SEEDED != 0 {
            return Err(err(what, format!("unknown flags {:#x}", h.flags)));
        }
        let (rq, rp) = (params.ring_q(), params.ring_p());
        let (lq, lp) = (rq.max_limbs(), rp.max_limbs());
        let comp = (lq + lp) * params.degree() * 8;
        let seeded = h.flags & FLAG_SEEDED != 0;
        let expect = 8 + if seeded { comp + 32 } else { 2 * comp };
        if payload.len() != expect {
            return Err(err(
                what,
                format!("payload of {} bytes, expected {expect}", payload.len()),
            ));
        }
        let mut r = Reader { buf: payload, what };
        let key_id = r.required_key_id()?;
        let b = PolyQP {
            q: r.poly(rq, lq)?,
            p: r.poly(rp, lp)?,
        };
        let (a, seed) = if seeded {
            let s = r.seed()?;
            (expand_public_a(params, s)?, Some(s))
        } else {
            (
                PolyQP {
                    q: r.poly(rq, lq)?,
                    p: r.poly(rp, lp)?,
                },
                None,
            )
        };
        r.finish()?;
        Ok(PublicKey::from_parts(params.hash(), b, a, seed).with_key_id(key_id))
    }
}

/// Writes a secret key (payload: `u64 key id | N coefficient bytes`, two's complement).
/// Named explicitly so that a secret is never serialized by accident; the returned buffer
/// zeroizes itself on drop. Store it only where the data owner's secrets go.
pub fn secret_key_to_bytes(sk: &SecretKey) -> Zeroizing<Vec<u8>> {
    let coeffs = Zeroizing::new(sk.to_ternary_coefficients());
    let mut payload: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(8 + coeffs.len()));
    payload.extend_from_slice(&sk.key_id().get().to_le_bytes());
    payload.extend(coeffs.iter().map(|c| *c as u8));
    Zeroizing::new(seal(ObjectKind::SecretKey, 0, sk.params().hash(), &payload))
}

/// Reads a secret key written by [`secret_key_to_bytes`], with its [`KeyId`].
pub fn secret_key_from_bytes(params: &Arc<Parameters>, bytes: &[u8]) -> Result<SecretKey> {
    let what = "secret key";
    let (h, payload) = open(bytes, ObjectKind::SecretKey)?;
    check_params(params, &h)?;
    if h.flags != 0 {
        return Err(err(what, format!("unknown flags {:#x}", h.flags)));
    }
    if payload.len() != 8 + params.degree() {
        return Err(err(
            what,
            format!(
                "payload of {} bytes, expected 8 + N = {}",
                payload.len(),
                8 + params.degree()
            ),
        ));
    }
    let mut r = Reader { buf: payload, what };
    let key_id = r.required_key_id()?;
    let raw = r.take(params.degree())?;
    r.finish()?;
    let coeffs: Zeroizing<Vec<i64>> = Zeroizing::new(raw.iter().map(|b| *b as i8 as i64).collect());
    SecretKey::from_ternary_with_id(params, &coeffs, key_id)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests;
