//! Serialization of the circuits layer's pre-encoded objects.
//!
//! A [`LinearTransform`] payload (object type 7):
//!
//! ```text
//! u32 slots | u32 level | f64 scale | u32 n1 | u32 E (diagonals)
//! E × (u32 giant index i, u32 baby index j)
//! E × (Q part: (level+1) × N residues, P part: k × N residues)
//! ```
//!
//! The payload length is computed from `level`, `E` and the parameters and compared with the
//! bytes present before any polynomial is allocated; every residue is checked against its prime.

use super::{
    check_level_scale, check_params, err, open, put_poly, seal, ObjectKind, Reader, Serializable,
};
use crate::circuits::lintrans::LinearTransform;
use crate::ring::keyswitch::PolyQP;
use crate::rlwe::Parameters;
use crate::Result;
use std::collections::BTreeMap;
use std::sync::Arc;

const WHAT: &str = "linear transform";

impl Serializable for LinearTransform {
    const OBJECT: ObjectKind = ObjectKind::LinearTransform;

    fn to_bytes(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(24 + self.bytes());
        let entries: Vec<(usize, usize, &PolyQP)> = self
            .groups()
            .iter()
            .flat_map(|(i, g)| g.iter().map(move |(j, pt)| (*i, *j, pt)))
            .collect();
        p.extend_from_slice(&(self.slots() as u32).to_le_bytes());
        p.extend_from_slice(&(self.level() as u32).to_le_bytes());
        p.extend_from_slice(&self.scale().to_bits().to_le_bytes());
        p.extend_from_slice(&(self.n1() as u32).to_le_bytes());
        p.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (i, j, _) in &entries {
            p.extend_from_slice(&(*i as u32).to_le_bytes());
            p.extend_from_slice(&(*j as u32).to_le_bytes());
        }
        for (_, _, pt) in &entries {
            put_poly(&mut p, pt.q.as_slice());
            put_poly(&mut p, pt.p.as_slice());
        }
        seal(Self::OBJECT, 0, self.params_hash(), &p)
    }

    fn from_bytes(params: &Arc<Parameters>, bytes: &[u8]) -> Result<Self> {
        let (h, payload) = open(bytes, Self::OBJECT)?;
        check_params(params, &h)?;
        let mut r = Reader {
            buf: payload,
            what: WHAT,
        };
        let slots = r.u32()? as usize;
        let level = r.u32()? as usize;
        let scale = r.f64()?;
        let n1 = r.u32()? as usize;
        let e = r.u32()? as usize;
        if !slots.is_power_of_two() || slots > params.slots() {
            return Err(err(
                WHAT,
                format!("{slots} slots (N/2 = {})", params.slots()),
            ));
        }
        if h.flags != 0 {
            return Err(err(WHAT, format!("unknown flags {:#x}", h.flags)));
        }
        check_level_scale(params, level, scale, WHAT)?;
        if !n1.is_power_of_two() || n1 > slots || e == 0 || e > slots {
            return Err(err(
                WHAT,
                format!("n1 = {n1}, {e} diagonals for {slots} slots"),
            ));
        }
        let (n, k) = (params.degree(), params.p().len());
        let per = (level + 1 + k) * n * 8;
        let expect = e
            .checked_mul(per + 8)
            .and_then(|x| x.checked_add(24))
            .ok_or_else(|| err(WHAT, "size overflows"))?;
        if payload.len() != expect {
            return Err(err(
                WHAT,
                format!(
                    "payload of {} bytes, {e} diagonals at level {level} need {expect}",
                    payload.len()
                ),
            ));
        }
        let mut index = Vec::with_capacity(e);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..e {
            let (i, j) = (r.u32()? as usize, r.u32()? as usize);
            // Diagonal k = i·n1 + j must be a distinct index below the slot count.
            if j >= n1
                || i.checked_mul(n1)
                    .and_then(|x| x.checked_add(j))
                    .is_none_or(|k| k >= slots)
            {
                return Err(err(
                    WHAT,
                    format!("diagonal ({i}, {j}): expected j < n1 = {n1} and i·n1 + j < {slots}"),
                ));
            }
            if !seen.insert((i, j)) {
                return Err(err(WHAT, format!("diagonal ({i}, {j}) appears twice")));
            }
            index.push((i, j));
        }
        let mut groups: BTreeMap<usize, Vec<(usize, PolyQP)>> = BTreeMap::new();
        for (i, j) in index {
            let q = r.poly(params.ring_q(), level + 1)?;
            let p = r.poly(params.ring_p(), k)?;
            groups.entry(i).or_default().push((j, PolyQP { q, p }));
        }
        r.finish()?;
        LinearTransform::from_parts(
            params.hash(),
            slots,
            level,
            scale,
            n1,
            groups.into_iter().collect(),
        )
        .map_err(|e| err(WHAT, e.to_string()))
    }
}
