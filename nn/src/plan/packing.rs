//! Latency-mode packing: vectors in slots ([`PackedLayout`], contiguous or multiplexed
//! [`SlotMap`]s) and linear layers as blocks of generalized diagonals ([`PackedLinear`]).

use crate::error::{shape_err, NnError, Result};
use crate::network::Linear;
use he_core::circuits::lintrans::{rotations_for, BabySteps, Diagonals};
use he_core::ckks::Complex64;
use std::collections::{BTreeMap, BTreeSet};

/// The relative cost of one rotation (a key switch, hoisted or not) against one diagonal
/// (a plaintext-ciphertext multiplication and addition over `Q_l ∪ P`): a key switch is
/// `dnum` forward and inverse NTTs of a polynomial over `Q_l ∪ P` plus `2·dnum` inner
/// products, about 20 plaintext multiplications at `log N = 16`, `dnum = 3`.
pub const ROTATION_COST: usize = 20;
/// The relative cost of one diagonal (see [`ROTATION_COST`]).
pub const DIAGONAL_COST: usize = 1;

/// A `[C, H, W]` tensor multiplexed into the gaps of a finer grid (Lee et al., "Low-complexity
/// deep convolutional neural networks on FHE using multiplexed parallel convolutions",
/// ICML 2022): with gap `g` the base grid is `H·g × W·g`, and element `(c, y, x)`,
/// `c = c_hi·g² + c_lo`, `c_lo = iy·g + ix`, sits at position
/// `c_hi·(H g · W g) + (y·g + iy)·(W g) + (x·g + ix)`.
///
/// A stride-2 convolution from gap `g` to gap `2g` and a same-resolution one within gap `g`
/// then read inputs at a few slot offsets only (per channel-block difference, `(2k−1)²`-ish
/// for a `k×k` kernel), instead of nearly one per slot in the contiguous layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Multiplexed {
    /// Channels `C`.
    pub channels: usize,
    /// Height `H`.
    pub height: usize,
    /// Width `W`.
    pub width: usize,
    /// Gap `g` (a power of two, at least 2: gap 1 is the contiguous layout).
    pub gap: usize,
}

impl Multiplexed {
    /// The multiplexed layout of a `[C, H, W]` tensor with gap `gap`.
    pub fn new(shape: [usize; 3], gap: usize) -> Result<Self> {
        let [channels, height, width] = shape;
        if !gap.is_power_of_two() || gap < 2 {
            return Err(shape_err("multiplexed gap", "a power of two >= 2", gap));
        }
        if channels == 0 || height == 0 || width == 0 {
            return Err(shape_err(
                "multiplexed tensor",
                "[C, H, W] >= 1",
                format!("{shape:?}"),
            ));
        }
        Ok(Self {
            channels,
            height,
            width,
            gap,
        })
    }

    /// Elements `C·H·W`.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Always false (every dimension is at least 1).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Channel blocks `⌈C / g²⌉`.
    pub fn channel_blocks(&self) -> usize {
        self.channels.div_ceil(self.gap * self.gap)
    }

    /// Positions one channel block takes, `H g · W g`.
    pub fn block(&self) -> usize {
        self.height * self.gap * self.width * self.gap
    }

    /// Positions the layout spans (before rounding up to a power-of-two period).
    pub fn span(&self) -> usize {
        self.channel_blocks() * self.block()
    }

    /// Position of element `e` (`e < len`, channel-major flat index).
    pub fn position(&self, e: usize) -> usize {
        let (g, w) = (self.gap, self.width);
        let hw = self.height * w;
        let (c, r) = (e / hw, e % hw);
        let (y, x) = (r / w, r % w);
        let (hi, lo) = (c / (g * g), c % (g * g));
        let (iy, ix) = (lo / g, lo % g);
        hi * self.block() + (y * g + iy) * (w * g) + x * g + ix
    }
}

/// Where the elements of a packed vector lie within one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotMap {
    /// Element `e` at position `e mod period` of tile `e / period` (the flat, channel-major
    /// order; the only map that tiles over several ciphertexts).
    Contiguous,
    /// A `[C, H, W]` tensor multiplexed with a gap (one ciphertext).
    Multiplexed(Multiplexed),
}

/// A vector packed in slots (latency mode): element `e` of the vector is in tile `t` at every
/// slot `s` with `s mod period == pos`, where `(t, pos)` = [`PackedLayout::position`]`(e)`
/// (one tile: replicated `slots / period` times). Positions holding no element hold zero
/// when packed and, after layers, values that no later layer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PackedLayout {
    /// Vector length.
    pub len: usize,
    /// Period (a power of two dividing the slot count).
    pub period: usize,
    /// Number of ciphertexts.
    pub tiles: usize,
    /// Element -> position within the period.
    pub map: SlotMap,
}

impl PackedLayout {
    /// The contiguous layout of a length-`len` vector with `slots` slots per ciphertext.
    pub fn new(len: usize, slots: usize) -> Self {
        if len <= slots {
            Self {
                len,
                period: len.max(1).next_power_of_two(),
                tiles: 1,
                map: SlotMap::Contiguous,
            }
        } else {
            Self {
                len,
                period: slots,
                tiles: len.div_ceil(slots),
                map: SlotMap::Contiguous,
            }
        }
    }

    /// The multiplexed layout `m` in one ciphertext of `slots` slots (an error when its span
    /// exceeds the slots).
    pub fn multiplexed(m: Multiplexed, slots: usize) -> Result<Self> {
        let period = m.span().next_power_of_two();
        if period > slots {
            return Err(shape_err(
                format!("multiplexed layout {m:?}"),
                format!("a span of at most {slots} slots"),
                period,
            ));
        }
        Ok(Self {
            len: m.len(),
            period,
            tiles: 1,
            map: SlotMap::Multiplexed(m),
        })
    }

    /// Whether this is the contiguous layout.
    pub fn is_contiguous(&self) -> bool {
        self.map == SlotMap::Contiguous
    }

    /// The multiplexing gap (1: contiguous).
    pub fn gap(&self) -> usize {
        match self.map {
            SlotMap::Contiguous => 1,
            SlotMap::Multiplexed(m) => m.gap,
        }
    }

    /// `(tile, position within the period)` of element `e < len`.
    pub fn position(&self, e: usize) -> (usize, usize) {
        match self.map {
            SlotMap::Contiguous => (e / self.period, e % self.period),
            SlotMap::Multiplexed(m) => (0, m.position(e)),
        }
    }

    /// One line, for reports.
    pub fn describe(&self) -> String {
        match self.map {
            SlotMap::Contiguous => format!("contiguous, period {}", self.period),
            SlotMap::Multiplexed(m) => format!(
                "multiplexed [{}, {}, {}] gap {}, period {}",
                m.channels, m.height, m.width, m.gap, self.period
            ),
        }
    }

    /// Slot vectors of `x` (one per tile; elements past `x.len()` are zero).
    pub fn pack(&self, x: &[f64], slots: usize) -> Vec<Vec<f64>> {
        let mut out = vec![vec![0.0; slots]; self.tiles];
        let period = self.period.max(1);
        for (e, v) in x.iter().take(self.len).enumerate() {
            let (t, pos) = self.position(e);
            if let Some(tile) = out.get_mut(t) {
                tile.iter_mut()
                    .skip(pos)
                    .step_by(period)
                    .for_each(|s| *s = *v);
            }
        }
        out
    }

    /// The vector back from slot vectors (missing slots read as zero).
    pub fn unpack(&self, tiles: &[Vec<f64>], _slots: usize) -> Vec<f64> {
        (0..self.len)
            .map(|e| {
                let (t, pos) = self.position(e);
                tiles
                    .get(t)
                    .and_then(|v| v.get(pos))
                    .copied()
                    .unwrap_or(0.0)
            })
            .collect()
    }
}

/// One block `(out tile, in tile)` of a packed linear layer: its nonzero generalized
/// diagonals `d_k[t] = M[out elem at t mod p_out][in elem at (t + k) mod p_in]` on
/// `n = max(p_out, p_in)` slots, in he-core's convention ([`Diagonals`]:
/// `y = Σ_k d_k ⊙ rot_k(x)` on every period-`n` block).
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

/// The modelled cost of a packed linear layer (see [`ROTATION_COST`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinearCost {
    /// Diagonal plaintexts.
    pub diagonals: usize,
    /// Distinct rotation steps (baby, giant and folds).
    pub rotations: usize,
}

impl LinearCost {
    /// `rotations·ROTATION_COST + diagonals·DIAGONAL_COST`.
    pub fn weighted(&self) -> usize {
        self.rotations * ROTATION_COST + self.diagonals * DIAGONAL_COST
    }
}

/// Where `M[out at r][in at c]` goes: `(t, k)` with `d_k[t]`, for output position `r < p_out`
/// and input position `c < p_in`. With `p_out <= p_in` the transform works on `p_in` slots and
/// the folds sum positions congruent mod `p_out`; otherwise on `p_out` slots, reading the
/// `p_in`-periodic input.
fn place(r: usize, c: usize, p_in: usize, p_out: usize) -> (usize, usize) {
    if p_out <= p_in {
        let delta = (c + p_in - r % p_in) % p_in;
        (r + (delta / p_out) * p_out, delta % p_out)
    } else {
        (r, (c + p_in - r % p_in) % p_in)
    }
}

/// The `n1` minimizing baby + giant rotations for these indices, and that count.
fn best_n1(ks: &BTreeSet<usize>, d_max: usize) -> (usize, usize) {
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
    (best.1, best.0)
}

/// The fold steps `p_out, 2 p_out, ... < p_in`.
fn folds(p_in: usize, p_out: usize) -> Vec<i64> {
    let mut fold_steps = Vec::new();
    let mut s = p_out;
    while s < p_in {
        fold_steps.push(s as i64);
        s *= 2;
    }
    fold_steps
}

fn check_lengths(l: &Linear, input: &PackedLayout, output: &PackedLayout) -> Result<()> {
    if l.in_len != input.len {
        return Err(shape_err("packed linear input", l.in_len, input.len));
    }
    if l.out_len != output.len || l.rows.len() != l.out_len {
        return Err(shape_err("packed linear output", l.out_len, output.len));
    }
    if input.period == 0 || output.period == 0 {
        return Err(NnError::Invalid("packed layout with period 0".into()));
    }
    Ok(())
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
    /// Packs `l` reading `input` and writing `output` (any element -> slot maps), for `slots`
    /// slots. The diagonals read only positions holding input elements.
    pub fn new(
        l: &Linear,
        input: &PackedLayout,
        output: &PackedLayout,
        slots: usize,
    ) -> Result<Self> {
        check_lengths(l, input, output)?;
        let (p_in, p_out) = (input.period, output.period);
        let big = p_in.max(p_out);
        let mut blocks: BTreeMap<(usize, usize), BTreeMap<usize, Vec<f64>>> = BTreeMap::new();
        for (i, row) in l.rows.iter().enumerate() {
            let (a, r) = output.position(i);
            for &(j, w) in row {
                let (b, c) = input.position(j);
                let (t, k) = place(r, c, p_in, p_out);
                let d = blocks
                    .entry((a, b))
                    .or_default()
                    .entry(k)
                    .or_insert_with(|| vec![0.0; big]);
                d[t] += w;
            }
        }
        let ks: BTreeSet<usize> = blocks.values().flat_map(|m| m.keys().copied()).collect();
        let (n1, _) = best_n1(&ks, p_in.min(p_out));
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
            input: *input,
            output: *output,
            n1,
            blocks,
            fold_steps: folds(p_in, p_out),
            bias,
        })
    }

    /// The cost of packing `l` from `input` to `output`, without building the diagonals:
    /// the diagonal count is exact, the rotations are the distinct baby and giant steps of
    /// the best `n1` (what [`rotations_for`] gives) plus the folds.
    pub fn estimate(l: &Linear, input: &PackedLayout, output: &PackedLayout) -> Result<LinearCost> {
        check_lengths(l, input, output)?;
        let (p_in, p_out) = (input.period, output.period);
        let d_max = p_in.min(p_out);
        let tiles_in = input.tiles;
        let mut seen: Vec<Option<Vec<bool>>> = vec![None; output.tiles * tiles_in];
        for (i, row) in l.rows.iter().enumerate() {
            let (a, r) = output.position(i);
            for &(j, _) in row {
                let (b, c) = input.position(j);
                let (_, k) = place(r, c, p_in, p_out);
                if let Some(block) = seen.get_mut(a * tiles_in + b) {
                    let v = block.get_or_insert_with(|| vec![false; d_max]);
                    if let Some(s) = v.get_mut(k) {
                        *s = true;
                    }
                }
            }
        }
        let mut ks = BTreeSet::new();
        let mut diagonals = 0;
        for v in seen.iter().flatten() {
            for (k, _) in v.iter().enumerate().filter(|(_, s)| **s) {
                ks.insert(k);
                diagonals += 1;
            }
        }
        let (_, rot) = best_n1(&ks, d_max);
        Ok(LinearCost {
            diagonals,
            rotations: rot + folds(p_in, p_out).len(),
        })
    }

    /// Per block, its giant steps `i` (diagonals `k = i·n1 + j`), ascending: what
    /// [`Plan::weight_parts`](crate::Plan::weight_parts) splits the layer by.
    pub fn block_giant_steps(&self) -> Vec<Vec<usize>> {
        self.blocks
            .iter()
            .map(|b| {
                let mut g: Vec<usize> = b.diagonals.indices().map(|k| k / self.n1.max(1)).collect();
                g.dedup();
                g
            })
            .collect()
    }

    /// How every block's diagonals are split into baby and giant steps.
    pub fn baby_steps(&self) -> BabySteps {
        BabySteps::Fixed(self.n1)
    }

    /// The rotation steps this layer needs keys for: those of each block's linear transform
    /// ([`rotations_for`], exactly what evaluation uses) and the folds.
    pub fn rotation_steps(&self) -> Result<BTreeSet<i64>> {
        let mut s = self.transform_rotation_steps()?;
        s.extend(self.fold_steps.iter().copied());
        Ok(s)
    }

    /// The rotation steps of the blocks' linear transforms alone, applied at the layer's
    /// input level (the folds, [`fold_steps`](Self::fold_steps), come after the rescale, one
    /// level lower).
    pub fn transform_rotation_steps(&self) -> Result<BTreeSet<i64>> {
        let mut s = BTreeSet::new();
        for b in &self.blocks {
            s.extend(rotations_for(&b.diagonals, self.baby_steps())?);
        }
        Ok(s)
    }

    /// Number of diagonal plaintexts.
    pub fn diagonal_count(&self) -> usize {
        self.blocks.iter().map(|b| b.diagonals.len()).sum()
    }

    /// The modelled cost of this packing.
    pub fn cost(&self) -> Result<LinearCost> {
        Ok(LinearCost {
            diagonals: self.diagonal_count(),
            rotations: self.rotation_steps()?.len(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::network::Conv2dSpec;
    use crate::sim::{packed_linear_f64, Gaussian};

    fn rand(g: &mut Gaussian, n: usize) -> Vec<f64> {
        (0..n).map(|_| g.normal()).collect()
    }

    fn try_layout(shape: [usize; 3], gap: usize, slots: usize) -> Result<PackedLayout> {
        if gap == 1 {
            Ok(PackedLayout::new(shape.iter().product(), slots))
        } else {
            PackedLayout::multiplexed(Multiplexed::new(shape, gap)?, slots)
        }
    }

    fn layout(shape: [usize; 3], gap: usize, slots: usize) -> PackedLayout {
        try_layout(shape, gap, slots).unwrap()
    }

    #[test]
    fn multiplexed_positions_are_distinct_and_follow_the_formula() {
        // [8, 4, 4] gap 2: grid 8×8, two channel blocks of 64. (c, y, x) = (5, 1, 2):
        // c_hi = 1, c_lo = 1 = (iy 0, ix 1): 64 + (2 + 0)·8 + (4 + 1) = 85.
        let m = Multiplexed::new([8, 4, 4], 2).unwrap();
        assert_eq!((m.channel_blocks(), m.block(), m.span()), (2, 64, 128));
        assert_eq!(m.position(5 * 16 + 4 + 2), 85);
        for (shape, gap) in [
            ([8, 4, 4], 2),
            ([5, 3, 7], 2),
            ([64, 8, 8], 4),
            ([3, 2, 2], 4),
        ] {
            let m = Multiplexed::new(shape, gap).unwrap();
            let pos: BTreeSet<usize> = (0..m.len()).map(|e| m.position(e)).collect();
            assert_eq!(pos.len(), m.len(), "{m:?}");
            assert!(pos.iter().all(|p| *p < m.span()), "{m:?}");
        }
        assert!(Multiplexed::new([4, 4, 4], 3).is_err());
        assert!(Multiplexed::new([4, 4, 4], 1).is_err());
        assert!(PackedLayout::multiplexed(m, 64).is_err());
    }

    #[test]
    fn pack_unpack_round_trip_and_replication() {
        let mut g = Gaussian::new(1);
        let slots = 512;
        for l in [
            layout([5, 3, 7], 2, slots),
            layout([5, 3, 7], 1, slots),
            PackedLayout::new(1300, slots),
        ] {
            let x = rand(&mut g, l.len);
            let packed = l.pack(&x, slots);
            assert_eq!(packed.len(), l.tiles);
            assert_eq!(l.unpack(&packed, slots), x, "{}", l.describe());
            for e in [0, l.len / 2, l.len - 1] {
                let (t, pos) = l.position(e);
                for s in (pos..slots).step_by(l.period) {
                    assert_eq!(packed[t][s], x[e]);
                }
            }
        }
    }

    /// `M x` through the packing equals the dense product, and the estimate is the built
    /// layer's diagonal and rotation count, for every pair of input and output layouts.
    #[test]
    fn packed_linear_is_exact_between_any_layouts() {
        let mut g = Gaussian::new(2);
        let slots = 1024;
        let spec = [
            ([4, 8, 8], Conv2dSpec::new(8, 3, 2, 1)),
            ([4, 8, 8], Conv2dSpec::new(4, 3, 1, 1)),
            ([1, 4, 4], Conv2dSpec::new(16, 3, 1, 1)),
        ];
        for (shape, spec) in spec {
            let w = rand(&mut g, spec.out_channels * shape[0] * 9);
            let b = rand(&mut g, spec.out_channels);
            let (l, out) = Linear::conv2d(shape, &w, &spec, Some(&b)).unwrap();
            let x = rand(&mut g, l.in_len);
            let want = l.apply(&x).unwrap();
            for gi in [1, 2, 4] {
                for go in [1, 2, 4] {
                    let (Ok(mi), Ok(mo)) =
                        (try_layout(shape, gi, slots), try_layout(out, go, slots))
                    else {
                        continue;
                    };
                    let p = PackedLinear::new(&l, &mi, &mo, slots).unwrap();
                    let est = PackedLinear::estimate(&l, &mi, &mo).unwrap();
                    assert_eq!(est, p.cost().unwrap(), "{shape:?} gap {gi} -> {go}");
                    let y = packed_linear_f64(&p, &mi.pack(&x, slots), slots, None).unwrap();
                    let got = mo.unpack(&y, slots);
                    let e = got
                        .iter()
                        .zip(&want)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f64::max);
                    assert!(e < 1e-9, "{shape:?} gap {gi} -> {go}: {e}");
                }
            }
        }
    }

    #[test]
    fn tiled_contiguous_dense_is_exact() {
        let mut g = Gaussian::new(3);
        let slots = 256;
        let (n_in, n_out) = (700, 300);
        let l = Linear::dense(&rand(&mut g, n_in * n_out), n_out, n_in, None).unwrap();
        let (i, o) = (
            PackedLayout::new(n_in, slots),
            PackedLayout::new(n_out, slots),
        );
        let p = PackedLinear::new(&l, &i, &o, slots).unwrap();
        assert_eq!((i.tiles, o.tiles, p.blocks.len()), (3, 2, 6));
        let x = rand(&mut g, n_in);
        let y = o.unpack(
            &packed_linear_f64(&p, &i.pack(&x, slots), slots, None).unwrap(),
            slots,
        );
        let want = l.apply(&x).unwrap();
        assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-9));
        assert!(PackedLinear::new(&l, &o, &i, slots).is_err());
    }
}
