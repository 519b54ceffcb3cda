//! Latency-mode packing: vectors in slots ([`PackedLayout`]) and linear layers as blocks of
//! generalized diagonals ([`PackedLinear`]).

use crate::error::Result;
use crate::network::Linear;
use he_core::circuits::lintrans::{rotations_for, BabySteps, Diagonals};
use he_core::ckks::Complex64;
use std::collections::{BTreeMap, BTreeSet};

/// A vector packed in slots (latency mode): element `e` of the vector is in tile
/// `e / slots` at every slot `s` with `s mod period == e mod slots` (one tile: replicated
/// `slots / period` times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedLayout {
    /// Vector length.
    pub len: usize,
    /// Period (a power of two dividing the slot count).
    pub period: usize,
    /// Number of ciphertexts.
    pub tiles: usize,
}

impl PackedLayout {
    /// The layout of a length-`len` vector with `slots` slots per ciphertext.
    pub fn new(len: usize, slots: usize) -> Self {
        if len <= slots {
            Self {
                len,
                period: len.max(1).next_power_of_two(),
                tiles: 1,
            }
        } else {
            Self {
                len,
                period: slots,
                tiles: len.div_ceil(slots),
            }
        }
    }

    /// Slot vectors of `x` (one per tile).
    pub fn pack(&self, x: &[f64], slots: usize) -> Vec<Vec<f64>> {
        (0..self.tiles)
            .map(|t| {
                (0..slots)
                    .map(|s| {
                        let e = t * slots + s % self.period;
                        if s % self.period < self.len && e < self.len {
                            x[e]
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// The vector back from slot vectors.
    pub fn unpack(&self, tiles: &[Vec<f64>], slots: usize) -> Vec<f64> {
        (0..self.len)
            .map(|e| {
                tiles
                    .get(e / slots)
                    .and_then(|t| t.get(e % slots))
                    .copied()
                    .unwrap_or(0.0)
            })
            .collect()
    }
}

/// One block `(out tile, in tile)` of a packed linear layer: its nonzero generalized
/// diagonals `d_k[t] = M[t mod p_out][(t + k) mod p_in]` on `n = max(p_out, p_in)` slots, in
/// he-core's convention ([`Diagonals`]: `y = Σ_k d_k ⊙ rot_k(x)` on every period-`n` block).
#[derive(Debug, Clone)]
pub struct PackedBlock {
    /// Output tile.
    pub out_tile: usize,
    /// Input tile.
    pub in_tile: usize,
    /// The diagonals `k -> d_k` (un-rotated; the linear transform pre-rotates them by its
    /// giant steps when it encodes them).
    pub diagonals: Diagonals,
}

/// A linear layer in latency mode (the "hybrid" diagonal method of GAZELLE, Juvekar et al.
/// 2018, with full-slot periodic layouts): per output tile, `y' = Σ_blocks Σ_k d_k ⊙ rot_k(x)`
/// by he-core's double-hoisted BSGS linear transforms with `n1` baby steps (one sum over the
/// tile's blocks sharing the giant steps, see
/// [`Evaluator::apply_linear_transform_sum`](he_core::ckks::Evaluator::apply_linear_transform_sum)),
/// then, when `p_in > p_out`, `log2(p_in/p_out)` rotate-and-add folds by multiples of `p_out`,
/// which leave the output periodic with period `p_out`.
#[derive(Debug, Clone)]
pub struct PackedLinear {
    /// Input layout.
    pub input: PackedLayout,
    /// Output layout.
    pub output: PackedLayout,
    /// Baby-step count (power of two), [`BabySteps::Fixed`] for every block.
    pub n1: usize,
    /// Blocks with at least one nonzero diagonal.
    pub blocks: Vec<PackedBlock>,
    /// Rotation steps of the final folds.
    pub fold_steps: Vec<i64>,
    /// Bias, packed (one slot vector per output tile).
    pub bias: Vec<Vec<f64>>,
}

impl PackedLinear {
    /// Packs `l` for `slots` slots.
    pub fn new(l: &Linear, slots: usize) -> Result<Self> {
        let input = PackedLayout::new(l.in_len, slots);
        let output = PackedLayout::new(l.out_len, slots);
        let (p_in, p_out) = (input.period, output.period);
        let big = p_in.max(p_out);
        let mut blocks: BTreeMap<(usize, usize), BTreeMap<usize, Vec<f64>>> = BTreeMap::new();
        for (i, row) in l.rows.iter().enumerate() {
            let (a, r) = (i / slots, i % slots);
            for &(j, w) in row {
                let (b, c) = (j / slots, j % slots);
                let (t, k) = if p_out <= p_in {
                    let delta = (c + p_in - r % p_in) % p_in;
                    (r + (delta / p_out) * p_out, delta % p_out)
                } else {
                    (r, (c + p_in - r % p_in) % p_in)
                };
                let d = blocks
                    .entry((a, b))
                    .or_default()
                    .entry(k)
                    .or_insert_with(|| vec![0.0; big]);
                d[t] += w;
            }
        }
        let ks: BTreeSet<usize> = blocks.values().flat_map(|m| m.keys().copied()).collect();
        let d_max = p_in.min(p_out);
        let mut best = (usize::MAX, 1usize);
        let mut n1 = 1;
        while n1 <= d_max {
            let baby: BTreeSet<usize> = ks.iter().map(|k| k % n1).filter(|j| *j != 0).collect();
            let giant: BTreeSet<usize> = ks.iter().map(|k| k / n1).filter(|i| *i != 0).collect();
            let cost = baby.len() + giant.len();
            if cost < best.0 {
                best = (cost, n1);
            }
            n1 *= 2;
        }
        let mut fold_steps = Vec::new();
        let mut s = p_out;
        while s < p_in {
            fold_steps.push(s as i64);
            s *= 2;
        }
        let bias = output.pack(&l.bias, slots);
        let blocks = blocks
            .into_iter()
            .map(|((a, b), diags)| {
                let mut diagonals = Diagonals::new(big)?;
                for (k, d) in diags {
                    diagonals.insert(
                        k as i64,
                        d.into_iter().map(|v| Complex64::new(v, 0.0)).collect(),
                    )?;
                }
                Ok(PackedBlock {
                    out_tile: a,
                    in_tile: b,
                    diagonals,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            input,
            output,
            n1: best.1,
            blocks,
            fold_steps,
            bias,
        })
    }

    /// How every block's diagonals are split into baby and giant steps.
    pub fn baby_steps(&self) -> BabySteps {
        BabySteps::Fixed(self.n1)
    }

    /// The rotation steps this layer needs keys for: those of each block's linear transform
    /// ([`rotations_for`], exactly what evaluation uses) and the folds.
    pub fn rotation_steps(&self) -> Result<BTreeSet<i64>> {
        let mut s = BTreeSet::new();
        for b in &self.blocks {
            s.extend(rotations_for(&b.diagonals, self.baby_steps())?);
        }
        s.extend(self.fold_steps.iter().copied());
        Ok(s)
    }

    /// Number of diagonal plaintexts.
    pub fn diagonal_count(&self) -> usize {
        self.blocks.iter().map(|b| b.diagonals.len()).sum()
    }
}
