//! [`Serializable`] for [`KeySwitchKey`], full or level-limited.
//!
//! A key-switching key's payload does not name its Q-limb count: the reader derives it from
//! the payload length, which is `24 + 2·dnum·(q_limbs + k)·N·8` bytes (unseeded) or
//! `24 + dnum·(q_limbs + k)·N·8 + 32` (seeded), `k` and `N` the parameters', and then requires
//! `1 ≤ q_limbs ≤ L + 1` and `dnum` to be exactly the digit count `⌈q_limbs/α⌉` of those
//! limbs — a full key (`q_limbs = L + 1`, `dnum` the parameters') or a level-limited one
//! ([`crate::rlwe::MaxLevel`]). So a full key's blob is byte for byte what it was before
//! level-limited keys existed, and a reader from before them refuses a level-limited blob
//! (its digit count or its payload length is not a full key's) with a decoding error rather
//! than misreading it. All of this is decided from the header's payload length before any
//! allocation.

use super::{check_params, err, open, put_poly, seal, seeded_flag, Reader, Serializable};
use super::{ObjectKind, FLAG_SEEDED};
use crate::math::Prng;
use crate::ring::{zeroed_limbs, Eval, Poly};
use crate::rlwe::{KeyId, KeyKind, KeyShape, KeySwitchKey, Parameters};
use crate::Result;
use std::sync::Arc;

/// Fixed part of a key-switching-key payload.
pub(super) const KSK_FIXED: usize = 24;

/// The shape of a key of `dnum` digits whose payload is `payload_len` bytes, or a decoding
/// error when no key of `params` has that payload.
fn key_shape(
    params: &Parameters,
    dnum: usize,
    payload_len: usize,
    seeded: bool,
) -> Result<KeyShape> {
    let what = "key-switching key";
    let (n, k, chain) = (params.degree(), params.p().len(), params.q().len());
    if dnum == 0 || dnum > params.dnum() {
        return Err(err(
            what,
            format!(
                "{dnum} digits, parameters use {} (at most that many for a level-limited key)",
                params.dnum()
            ),
        ));
    }
    // Bytes per limb of every component stored, and the fixed bytes after the header fields.
    let (per_limb, extra) = if seeded {
        (dnum * n * 8, 32)
    } else {
        (2 * dnum * n * 8, 0)
    };
    let body = payload_len
        .checked_sub(KSK_FIXED + extra)
        .filter(|b| per_limb > 0 && b % per_limb == 0);
    let limbs = body.map(|b| b / per_limb);
    let Some(q_limbs) = limbs
        .and_then(|l| l.checked_sub(k))
        .filter(|q| (1..=chain).contains(q))
    else {
        let full = KSK_FIXED + extra + per_limb * (chain + k);
        return Err(err(
            what,
            format!(
                "payload of {payload_len} bytes is no key of {dnum} digits: expected                  {KSK_FIXED} + {extra} + {per_limb}·(q_limbs + {k}) bytes with q_limbs in                  1..={chain} ({full} for a full key)"
            ),
        ));
    };
    let want = params.key_switch_basis().digits(q_limbs - 1);
    if dnum != want {
        return Err(err(
            what,
            format!(
                "{dnum} digits over {q_limbs} Q-limbs: a key over {q_limbs} Q-limbs has                  exactly {want} (α = {})",
                params.key_switch_basis().alpha()
            ),
        ));
    }
    Ok(KeyShape {
        n,
        q_limbs,
        p_limbs: k,
        dnum,
    })
}

impl Serializable for KeySwitchKey {
    const OBJECT: ObjectKind = ObjectKind::KeySwitchKey;
    /// Payload: `u8 kind | 3 × 0 | u32 dnum | u64 Galois element | u64 key id`, then for each
    /// digit `b_j` and `a_j` (each Q-limbs then P-limbs), or every `b_j` and the 32-byte seed
    /// of the `a_j`. The Q-limb count is not written: the reader derives it from the payload
    /// length (see the module documentation), so a full key's blob is what it always was.
    fn to_bytes(&self) -> Vec<u8> {
        let s = self.shape();
        let mut p = Vec::with_capacity(KSK_FIXED + s.bytes());
        let (tag, g) = match self.kind() {
            KeyKind::Relinearization => (0u8, 0u64),
            KeyKind::Galois(g) => (1u8, g),
            KeyKind::SparseToDense => (2u8, 0u64),
        };
        p.push(tag);
        p.extend_from_slice(&[0, 0, 0]);
        p.extend_from_slice(&(s.dnum as u32).to_le_bytes());
        p.extend_from_slice(&g.to_le_bytes());
        p.extend_from_slice(&KeyId::to_word(self.key_id()).to_le_bytes());
        let cw = s.component_words().max(1);
        let w = self.words();
        match self.seed() {
            Some(seed) => {
                // Components alternate b_0, a_0, b_1, a_1, ...: the b_j are the even ones.
                for b in w.chunks_exact(cw).step_by(2) {
                    put_poly(&mut p, b);
                }
                p.extend_from_slice(&seed);
            }
            None => put_poly(&mut p, w),
        }
        seal(
            Self::OBJECT,
            seeded_flag(self.seed().is_some()),
            self.params_hash(),
            &p,
        )
    }
    fn from_bytes(params: &Arc<Parameters>, bytes: &[u8]) -> Result<Self> {
        let what = "key-switching key";
        let (h, payload) = open(bytes, Self::OBJECT)?;
        check_params(params, &h)?;
        if h.flags & !FLAG_SEEDED != 0 {
            return Err(err(what, format!("unknown flags {:#x}", h.flags)));
        }
        let mut r = Reader { buf: payload, what };
        let tag = r.u8()?;
        if r.take(3)? != [0, 0, 0] {
            return Err(err(what, "reserved bytes are not zero"));
        }
        let dnum = r.u32()? as usize;
        let g = r.u64()?;
        let key_id = r.required_key_id()?;
        let n = params.degree();
        let kind = match (tag, g) {
            (0, 0) => KeyKind::Relinearization,
            (1, g) if g % 2 == 1 && g > 1 && g < 2 * n as u64 => KeyKind::Galois(g),
            (1, g) => {
                return Err(err(
                    what,
                    format!("Galois element {g}: expected odd, in 3..{} (2N)", 2 * n),
                ))
            }
            (2, 0) => KeyKind::SparseToDense,
            (0 | 2, g) => {
                return Err(err(
                    what,
                    format!("kind {tag} carries element {g}, expected 0"),
                ))
            }
            (t, _) => return Err(err(what, format!("unknown key kind {t}"))),
        };
        let shape = key_shape(params, dnum, payload.len(), h.flags & FLAG_SEEDED != 0)?;
        let (rq, rp) = (params.ring_q(), params.ring_p());
        let cw = shape.component_words();
        let seeded = h.flags & FLAG_SEEDED != 0;
        let mut data = zeroed_limbs(shape.words());
        let qw = shape.q_limbs * n;
        let fill = |dst: &mut [u64], q: &Poly<Eval>, p: &Poly<Eval>| -> Result<()> {
            let (dq, dp) = dst
                .split_at_mut_checked(qw)
                .ok_or_else(|| err(what, "internal: component layout"))?;
            if dq.len() != q.as_slice().len() || dp.len() != p.as_slice().len() {
                return Err(err(what, "internal: component layout"));
            }
            dq.copy_from_slice(q.as_slice());
            dp.copy_from_slice(p.as_slice());
            Ok(())
        };
        let mut seed = None;
        if seeded {
            for dst in data.chunks_exact_mut(cw).step_by(2) {
                let q = r.poly(rq, shape.q_limbs)?;
                let p = r.poly(rp, shape.p_limbs)?;
                fill(dst, &q, &p)?;
            }
            let s = r.seed()?;
            let mut prng = Prng::from_seed(s);
            for dst in data.chunks_exact_mut(cw).skip(1).step_by(2) {
                let aq = rq.uniform::<Eval>(&mut prng, shape.q_limbs)?;
                let ap = rp.uniform::<Eval>(&mut prng, shape.p_limbs)?;
                fill(dst, &aq, &ap)?;
            }
            seed = Some(s);
        } else {
            for dst in data.chunks_exact_mut(cw) {
                let q = r.poly(rq, shape.q_limbs)?;
                let p = r.poly(rp, shape.p_limbs)?;
                fill(dst, &q, &p)?;
            }
        }
        r.finish()?;
        let key = KeySwitchKey::from_storage(shape, kind, params.hash(), Arc::new(data))?
            .with_key_id(key_id);
        Ok(match seed {
            Some(s) => key.with_seed(s),
            None => key,
        })
    }
}

impl KeySwitchKey {
    /// [`Serializable::from_bytes`] for a key of the kind its use needs: a relinearization key
    /// read where a Galois key is expected (or any other mix-up) is an error naming both.
    pub fn from_bytes_as(params: &Arc<Parameters>, bytes: &[u8], want: KeyKind) -> Result<Self> {
        let key = <Self as Serializable>::from_bytes(params, bytes)?;
        if key.kind() != want {
            return Err(err(
                "key-switching key",
                format!("a {:?} key, expected a {want:?} key", key.kind()),
            ));
        }
        Ok(key)
    }
}
