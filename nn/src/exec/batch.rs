//! Throughput mode's linear layers: integer-encoded weights, each input ciphertext streamed
//! once per group of rows (fused multiply-accumulate with lazy Shoup products).

use super::{int_const, Engine};
use crate::error::{shape_err, NnError, Result};
use he_core::ckks::Ciphertext;
use he_core::ring::{Eval, Poly};
use rayon::prelude::*;
use std::collections::BTreeMap;

impl Engine {
    /// Throughput mode: `y_i = Σ_j W_ij x_j + b_i` with integer-encoded weights at scale
    /// `Δ_l`, then one rescale (to `Δ_l²/q_l = Δ_{l-1}`). Rows reading the same inputs (all
    /// output channels of a convolution at one position, all rows of a dense layer) are
    /// accumulated together, so that each input ciphertext is streamed once per group.
    pub(super) fn batch_linear(
        &self,
        l: &crate::network::Linear,
        x: &[Ciphertext],
        out_level: usize,
    ) -> Result<Vec<Ciphertext>> {
        let x0 = x
            .first()
            .ok_or_else(|| NnError::Invalid("empty input tensor".into()))?;
        let (lvl, scale) = (x0.level(), x0.scale());
        debug_assert_eq!(lvl, out_level + 1);
        if let Some(bad) = x.iter().find(|c| c.level() != lvl || c.size() != 2) {
            return Err(NnError::Invalid(format!(
                "linear layer inputs must share one level and be relinearized: level {} (size {}) vs {lvl}",
                bad.level(),
                bad.size()
            )));
        }
        // Group rows by their column sets, at most GROUP rows per group.
        const GROUP: usize = 64;
        let mut by_cols: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
        for (i, row) in l.rows.iter().enumerate() {
            by_cols
                .entry(row.iter().map(|e| e.0).collect())
                .or_default()
                .push(i);
        }
        let groups: Vec<(Vec<usize>, Vec<usize>)> = by_cols
            .into_iter()
            .flat_map(|(cols, rows)| {
                rows.chunks(GROUP)
                    .map(|c| (cols.clone(), c.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        if let Some(&j) = groups
            .iter()
            .flat_map(|g| g.0.iter())
            .find(|j| **j >= x.len())
        {
            return Err(shape_err("linear input", l.in_len, j + 1));
        }
        let done = groups
            .par_iter()
            .map(|(cols, rows)| -> Result<Vec<(usize, Ciphertext)>> {
                // weights[r][c]: integer weight of row rows[r] on column cols[c].
                let weights = rows
                    .iter()
                    .map(|&r| {
                        l.rows[r]
                            .iter()
                            .map(|&(_, w)| int_const(w, scale))
                            .collect::<Result<Vec<i64>>>()
                    })
                    .collect::<Result<Vec<_>>>()?;
                let inputs: Vec<&Ciphertext> = cols.iter().map(|&j| &x[j]).collect();
                let accs = self.multi_dot_int(x0, &inputs, &weights)?;
                rows.iter()
                    .zip(accs)
                    .map(|(&r, mut acc)| {
                        // The integer weights were chosen for scale Δ: the sum is the
                        // result at scale Δ² (a reinterpretation, by design).
                        self.eval.set_scale(&mut acc, scale * scale)?;
                        self.eval.rescale_assign(&mut acc)?;
                        self.eval.add_const_assign(&mut acc, l.bias[r])?;
                        Ok((r, acc))
                    })
                    .collect()
            })
            .collect::<Result<Vec<_>>>()?;
        let mut out: Vec<Option<Ciphertext>> = vec![None; l.out_len];
        for (r, c) in done.into_iter().flatten() {
            out[r] = Some(c);
        }
        out.into_iter()
            .map(|c| c.ok_or_else(|| NnError::Invalid("internal: missing output row".into())))
            .collect()
    }

    /// `acc_r = Σ_c weights[r][c]·inputs[c]` for every row `r`, fused: per limb and block of
    /// coefficients, each input is read once and multiplied into every row's accumulator with
    /// lazy Shoup products (Harvey 2014) kept in `[0, 2q)`. The scale is that of the inputs
    /// (the caller sets the product scale).
    fn multi_dot_int(
        &self,
        like: &Ciphertext,
        inputs: &[&Ciphertext],
        weights: &[Vec<i64>],
    ) -> Result<Vec<Ciphertext>> {
        const BLOCK: usize = 512;
        let rq = self.plan.params.ring_q();
        let (n, limbs, comps) = (self.plan.params.degree(), like.level() + 1, like.size());
        let rows = weights.len();
        let internal = || NnError::Invalid("internal: limb index".into());
        // One task per (limb, component): rows x n residues each.
        let tasks: Vec<(usize, usize)> = (0..limbs)
            .flat_map(|i| (0..comps).map(move |c| (i, c)))
            .collect();
        let results = tasks
            .par_iter()
            .map(|&(i, c)| -> Result<Vec<u64>> {
                let m = &rq.moduli()[i];
                let (q, q2) = (m.value(), 2 * m.value());
                let ws: Vec<Vec<(u64, u64)>> = weights
                    .iter()
                    .map(|row| {
                        row.iter()
                            .map(|k| {
                                let w = m.reduce_i64(*k);
                                (w, m.shoup(w))
                            })
                            .collect()
                    })
                    .collect();
                let xs = inputs
                    .iter()
                    .map(|x| x.parts()[c].limb(i).ok_or_else(internal))
                    .collect::<Result<Vec<&[u64]>>>()?;
                let mut res = vec![0u64; rows * n];
                let mut acc = vec![0u64; rows * BLOCK];
                for start in (0..n).step_by(BLOCK) {
                    let len = BLOCK.min(n - start);
                    acc.iter_mut().for_each(|a| *a = 0);
                    for (col, xv) in xs.iter().enumerate() {
                        let xb = &xv[start..start + len];
                        for (r, a) in acc.chunks_exact_mut(BLOCK).enumerate() {
                            let (w, wsh) = ws[r][col];
                            if w == 0 {
                                continue;
                            }
                            for (av, v) in a[..len].iter_mut().zip(xb) {
                                let s = *av + m.mul_shoup_lazy(*v, w, wsh);
                                *av = if s >= q2 { s - q2 } else { s };
                            }
                        }
                    }
                    for (r, a) in acc.chunks_exact(BLOCK).enumerate() {
                        let dst = &mut res[r * n + start..r * n + start + len];
                        for (d, v) in dst.iter_mut().zip(&a[..len]) {
                            *d = if *v >= q { *v - q } else { *v };
                        }
                    }
                }
                Ok(res)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut out: Vec<Vec<Poly<Eval>>> = (0..rows)
            .map(|_| (0..comps).map(|_| Poly::zero(n, limbs)).collect())
            .collect();
        for (&(i, c), res) in tasks.iter().zip(&results) {
            for (r, parts) in out.iter_mut().enumerate() {
                parts[c]
                    .limb_mut(i)
                    .ok_or_else(internal)?
                    .copy_from_slice(&res[r * n..(r + 1) * n]);
            }
        }
        out.into_iter()
            .map(|parts| {
                Ok(
                    Ciphertext::from_parts(parts, like.scale(), like.params_hash())?
                        .with_key_id(like.key_id()),
                )
            })
            .collect()
    }
}
