//! The planner: network + input shape -> parameters, per-layer levels and scales, packing,
//! the exact Galois elements needed, and a memory estimate.
//!
//! Scales are *canonical per level*: the input is encrypted at level `L` with scale
//! `Δ_L = 2^scale_bits`, and `Δ_{l-1} = Δ_l² / q_l`. Every operation lands exactly on the
//! canonical scale of its output level (a product of two level-`l` values rescales to
//! `Δ_l²/q_l`; weights are encoded at scale `Δ_l`, so a weighted sum rescales to the same),
//! hence additions never meet mismatched scales, whatever path the operands took.

use crate::error::{NnError, Result};
use crate::flooding::OutputFlooding;
use crate::network::{Activation, Linear, Network, Op};
use crate::poly::FittedPoly;
use he_core::circuits::lintrans::{rotations_for, BabySteps, Diagonals};
use he_core::ckks::Complex64;
use he_core::ckks::FloodingConfig;
use he_core::rlwe::{galois_element_for_rotation, Parameters, ParametersIntent};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How inputs are packed into ciphertext slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Throughput (batch) mode, after CryptoNets (Gilad-Bachrach et al. 2016): slot `i` of
    /// every ciphertext holds input `i`, one ciphertext per tensor element, no rotations;
    /// up to `N/2` inputs per batch.
    Throughput,
    /// Latency mode: one input packed across the slots (channel-major, replicated with a
    /// power-of-two period, or tiled over several ciphertexts when larger than `N/2`);
    /// linear layers by the baby-step giant-step diagonal method (Halevi–Shoup 2014), as
    /// he-core's double-hoisted [`LinearTransform`](he_core::circuits::lintrans::LinearTransform)s.
    Latency,
}

/// Options of the planner.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Packing mode.
    pub mode: Mode,
    /// Use these parameters (checked against the depth) instead of deriving them.
    pub parameters: Option<Arc<Parameters>>,
    /// `log2 N` to derive parameters for (`None`: the smallest secure degree).
    pub log_n: Option<u32>,
    /// Scale bits; `None`: the largest in `min_scale_bits..=max_scale_bits` that the smallest
    /// secure degree admits.
    pub scale_bits: Option<u32>,
    /// Lower bound on the chosen scale bits (precision floor).
    pub min_scale_bits: u32,
    /// Upper bound on the chosen scale bits.
    pub max_scale_bits: u32,
    /// Bits above the scale in `q_0`; `None`: from the calibrated output range (+4 bits of
    /// margin), or 12 without calibration data.
    pub int_bits: Option<u32>,
    /// Calibration inputs (flat, network input length), used to measure activation intervals
    /// and the output range.
    pub calibration: Vec<Vec<f64>>,
    /// Factor applied to measured activation ranges (default 1.1).
    pub bound_margin: f64,
    /// Noise flooding of the decrypted outputs (IND-CPA-D, see [`crate::flooding`]); default
    /// `Some(FloodingConfig::default())`. `None` opts out: only for results that never leave
    /// the client.
    pub flooding: Option<FloodingConfig>,
    /// With flooding: the flooding noise per output must be at most `2^-bits` (value units);
    /// the planner raises the degree until it is (at each degree it already takes the largest
    /// scale that fits). Default 6: about 0.016 of noise per logit at most.
    pub flooded_output_bits: u32,
}

impl PlanOptions {
    /// Defaults for `mode`: 128-bit-secure derived parameters, 30..=58 scale bits, noise
    /// flooding of the outputs at `s = 30` with at most `2^-6` of flooding noise per output.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            parameters: None,
            log_n: None,
            scale_bits: None,
            min_scale_bits: 30,
            max_scale_bits: 58,
            int_bits: None,
            calibration: Vec::new(),
            bound_margin: 1.1,
            flooding: Some(FloodingConfig::default()),
            flooded_output_bits: 6,
        }
    }
}

/// The operation of a plan step (the lowered network).
#[derive(Debug, Clone)]
pub enum StepOp {
    /// The input.
    Input,
    /// `W·x + b` (one level).
    Linear(Arc<Linear>),
    /// `x + c` (no level).
    AddConst(Vec<f64>),
    /// `x²` (one level).
    Square,
    /// Polynomial activation `p(x/B)`; `prescale`: `1/B` could not be folded into the
    /// preceding linear layer and costs one extra level.
    Poly {
        /// The fitted polynomial.
        poly: FittedPoly,
        /// Whether the input still has to be multiplied by `1/B`.
        prescale: bool,
    },
    /// Residual addition.
    Add,
    /// Shape change only.
    Reshape,
}

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

/// One step of a plan.
#[derive(Debug, Clone)]
pub struct Step {
    /// Node name.
    pub name: String,
    /// Operation.
    pub op: StepOp,
    /// Input step indices.
    pub inputs: Vec<usize>,
    /// Output length.
    pub len: usize,
    /// Output shape.
    pub shape: Vec<usize>,
    /// Level of the output.
    pub level: usize,
    /// Latency mode: packing of linear layers.
    pub packed: Option<Arc<PackedLinear>>,
    /// Latency mode: layout of the output.
    pub layout: PackedLayout,
}

/// Memory estimate in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryEstimate {
    /// Peak of simultaneously live ciphertexts.
    pub ciphertexts: usize,
    /// Evaluation keys (relinearization + Galois).
    pub keys: usize,
    /// Pre-encoded plaintexts (latency mode): weight diagonals over `Q_l ∪ P`, biases and
    /// constants over `Q_l`; exactly [`Engine::weight_bytes`](crate::Engine::weight_bytes).
    pub plaintexts: usize,
}

impl MemoryEstimate {
    /// Sum.
    pub fn total(&self) -> usize {
        self.ciphertexts + self.keys + self.plaintexts
    }
}

/// A compiled plan: the lowered network with levels, scales, packing and key requirements.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Packing mode.
    pub mode: Mode,
    /// Parameters.
    pub params: Arc<Parameters>,
    /// Steps in order (step 0 is the input).
    pub steps: Vec<Step>,
    /// Levels consumed by the network.
    pub depth: usize,
    /// Level at which inputs are encrypted (= depth).
    pub top_level: usize,
    /// Canonical scale per level (`scales[l]`, `l <= top_level`).
    pub scales: Vec<f64>,
    /// Rotation steps needed (latency mode; empty in throughput mode).
    pub rotation_steps: Vec<i64>,
    /// The Galois elements of those steps: keys are generated for exactly these.
    pub galois_elements: Vec<u64>,
    /// Memory estimate (throughput: for a full batch).
    pub memory: MemoryEstimate,
    /// Polynomial approximations used, one line each.
    pub approximations: Vec<String>,
    /// Maximum |value| seen per step on the calibration data (0 without calibration).
    pub calibrated_max: Vec<f64>,
    /// The noise flooding [`Plan::decrypt`] applies (`None`: opted out).
    pub flooding: Option<OutputFlooding>,
}

impl Plan {
    /// Plans `net` under `opts`.
    pub fn new(net: &Network, opts: &PlanOptions) -> Result<Self> {
        // 1. Calibration: exact f64 forward passes.
        let mut maxabs = vec![0.0f64; net.nodes.len()];
        for x in &opts.calibration {
            for (m, v) in maxabs.iter_mut().zip(net.forward_all(x)?) {
                *m = v.iter().fold(*m, |a, b| a.max(b.abs()));
            }
        }
        // 2. Lower: fit polynomials, fold 1/B into preceding linear layers.
        let consumers = net.consumers();
        let mut steps: Vec<Step> = Vec::with_capacity(net.nodes.len());
        let mut approximations = Vec::new();
        let dummy = PackedLayout {
            len: 0,
            period: 1,
            tiles: 1,
        };
        for node in &net.nodes {
            let op = match &node.op {
                Op::Input => StepOp::Input,
                Op::Linear(l) => StepOp::Linear(Arc::new(l.clone())),
                Op::AddConst(c) => StepOp::AddConst(c.clone()),
                Op::Reshape => StepOp::Reshape,
                Op::Add => StepOp::Add,
                Op::Activation(Activation::Square) => StepOp::Square,
                Op::Activation(Activation::Poly {
                    function,
                    degree,
                    bound,
                }) => {
                    let b = match bound {
                        Some(b) => *b,
                        None => {
                            let m = maxabs[node.inputs[0]];
                            if opts.calibration.is_empty() || m <= 0.0 {
                                return Err(NnError::Invalid(format!(
                                    "activation {} ({}) has no stated interval and no calibration data was given",
                                    node.name,
                                    function.name()
                                )));
                            }
                            m * opts.bound_margin
                        }
                    };
                    let poly = FittedPoly::fit(*function, *degree, b)?;
                    // Look through reshapes (identity on the data) to the producing layer.
                    let mut src = node.inputs[0];
                    while matches!(steps[src].op, StepOp::Reshape) && consumers[src] == 1 {
                        src = steps[src].inputs[0];
                    }
                    let foldable =
                        consumers[src] == 1 && matches!(steps[src].op, StepOp::Linear(_));
                    if foldable {
                        if let StepOp::Linear(l) = &mut steps[src].op {
                            let mut l2 = (**l).clone();
                            let a = vec![1.0 / b; l2.out_len];
                            l2.fold_output_affine(&a, &vec![0.0; l2.out_len])?;
                            *l = Arc::new(l2);
                        }
                    }
                    approximations.push(format!(
                        "{}: {}{}",
                        node.name,
                        poly.describe(),
                        if foldable {
                            ", 1/B folded into the previous layer"
                        } else {
                            ", +1 level for x/B"
                        }
                    ));
                    StepOp::Poly {
                        poly,
                        prescale: !foldable,
                    }
                }
            };
            steps.push(Step {
                name: node.name.clone(),
                op,
                inputs: node.inputs.clone(),
                len: node.len(),
                shape: node.shape.clone(),
                level: 0,
                packed: None,
                layout: dummy,
            });
        }
        // 3. Depth (levels relative to the top, as negative offsets).
        let mut rel = vec![0i64; steps.len()];
        for i in 1..steps.len() {
            let inl = steps[i].inputs.iter().map(|&j| rel[j]).min().unwrap_or(0);
            rel[i] = inl - cost(&steps[i].op) as i64;
        }
        let depth = (-rel.iter().copied().min().unwrap_or(0)) as usize;
        // 4. Parameters.
        let out_max = maxabs.last().copied().unwrap_or(0.0);
        let int_bits = opts.int_bits.unwrap_or(if out_max > 0.0 {
            (out_max * 2.0).log2().ceil().max(1.0) as u32 + 4
        } else {
            12
        });
        // 5. Parameters: explicit, or per degree the largest scale that fits; with flooding,
        // the first whose predicted flooding noise meets the target.
        let log_ns: Vec<u32> = match (&opts.parameters, opts.log_n) {
            (Some(p), _) => vec![p.degree().trailing_zeros()],
            (None, Some(l)) => vec![l],
            (None, None) => (12..=17).collect(),
        };
        let mut last_err = None;
        let mut best: Option<OutputFlooding> = None;
        for log_n in log_ns {
            let params = match &opts.parameters {
                Some(p) => p.clone(),
                None => match choose_parameters(depth, int_bits, log_n, opts) {
                    Ok(p) => p,
                    Err(e) => {
                        last_err = Some(e);
                        continue;
                    }
                },
            };
            let mut plan = Self::with_parameters(opts, params, steps.clone(), &rel, depth)?;
            plan.approximations = approximations.clone();
            plan.calibrated_max = maxabs.clone();
            let Some(config) = opts.flooding else {
                return Ok(plan);
            };
            let f = OutputFlooding::predict(&plan, config, &opts.calibration)?;
            if f.log2_sigma <= -(opts.flooded_output_bits as f64) {
                plan.flooding = Some(f);
                return Ok(plan);
            }
            if best.is_none_or(|b| f.log2_sigma < b.log2_sigma) {
                best = Some(f);
            }
        }
        if let Some(b) = best {
            return Err(NnError::Invalid(format!(
                "noise flooding of the outputs (s = {}) leaves 2^{:.1} of noise per output at best \
                 (before flooding 2^{:.1}), above the target 2^-{}: allow larger scales or degrees, \
                 lower flooded_output_bits, or opt out by name with PlanOptions::flooding = None \
                 if results never leave the client",
                b.config.statistical_security,
                b.log2_sigma,
                b.log2_rms_before,
                opts.flooded_output_bits
            )));
        }
        Err(last_err.unwrap_or(NnError::DepthExceeded {
            needed: depth,
            available: 0,
        }))
    }

    /// Steps 5-6 of planning for one parameter set: levels, scales, packing, keys, memory.
    fn with_parameters(
        opts: &PlanOptions,
        params: Arc<Parameters>,
        mut steps: Vec<Step>,
        rel: &[i64],
        depth: usize,
    ) -> Result<Self> {
        if depth > params.max_level() {
            return Err(NnError::DepthExceeded {
                needed: depth,
                available: params.max_level(),
            });
        }
        let top = depth;
        for (s, r) in steps.iter_mut().zip(rel) {
            s.level = (top as i64 + r) as usize;
        }
        let q = params.q();
        let mut scales = vec![0.0; top + 1];
        scales[top] = params.default_scale();
        for l in (1..=top).rev() {
            scales[l - 1] = scales[l] * scales[l] / q[l] as f64;
        }
        // Packing (latency mode) and rotation keys.
        let slots = params.slots();
        let mut rot: BTreeSet<i64> = BTreeSet::new();
        if opts.mode == Mode::Latency {
            for s in steps.iter_mut() {
                s.layout = PackedLayout::new(s.len, slots);
                if let StepOp::Linear(l) = &s.op {
                    let p = PackedLinear::new(l, slots)?;
                    rot.extend(p.rotation_steps()?);
                    s.packed = Some(Arc::new(p));
                }
            }
        }
        let n = params.degree();
        let rotation_steps: Vec<i64> = rot.into_iter().collect();
        let galois_elements = rotation_steps
            .iter()
            .map(|s| galois_element_for_rotation(n, *s))
            .collect();
        let mut plan = Self {
            mode: opts.mode,
            params,
            steps,
            depth,
            top_level: top,
            scales,
            rotation_steps,
            galois_elements,
            memory: MemoryEstimate::default(),
            approximations: Vec::new(),
            calibrated_max: Vec::new(),
            flooding: None,
        };
        plan.memory = plan.estimate_memory();
        Ok(plan)
    }

    /// Bytes of one ciphertext at `level`.
    pub fn ciphertext_bytes(&self, level: usize) -> usize {
        2 * (level + 1) * self.params.degree() * 8
    }

    /// Bytes of one key-switching key.
    pub fn key_bytes(&self) -> usize {
        let p = &self.params;
        p.dnum() * 2 * (p.q().len() + p.p().len()) * p.degree() * 8
    }

    /// Bytes of the plaintexts a step pre-encodes (latency mode): a linear layer's diagonals
    /// over `Q_l ∪ P` at its input level `l` (`l + 1` limbs of `Q` and all of `P`, as
    /// [`LinearTransform`](he_core::circuits::lintrans::LinearTransform) stores them) and its
    /// bias over `Q` at its output level; a constant addition's packed constant at its level.
    pub fn plaintext_bytes(&self, s: &Step) -> usize {
        let n8 = self.params.degree() * 8;
        if self.mode != Mode::Latency {
            return 0;
        }
        match (&s.op, &s.packed) {
            (StepOp::Linear(_), Some(p)) => {
                let diag_limbs = s.level + 2 + self.params.p().len();
                p.diagonal_count() * diag_limbs * n8 + p.output.tiles * (s.level + 1) * n8
            }
            (StepOp::AddConst(_), _) => s.layout.tiles * (s.level + 1) * n8,
            _ => 0,
        }
    }

    /// Whether relinearization is needed (any ciphertext product).
    pub fn needs_relinearization(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.op, StepOp::Square | StepOp::Poly { .. }))
    }

    fn estimate_memory(&self) -> MemoryEstimate {
        let last_use: Vec<usize> = {
            let mut lu: Vec<usize> = (0..self.steps.len()).collect();
            for (i, s) in self.steps.iter().enumerate() {
                for &j in &s.inputs {
                    lu[j] = lu[j].max(i);
                }
            }
            if let Some(l) = lu.last_mut() {
                *l = usize::MAX;
            }
            lu
        };
        let count = |s: &Step| match self.mode {
            Mode::Throughput => s.len,
            Mode::Latency => s.layout.tiles,
        };
        let mut peak = 0;
        for i in 0..self.steps.len() {
            let live: usize = (0..=i)
                .filter(|&j| last_use[j] >= i && !matches!(self.steps[j].op, StepOp::Reshape))
                .map(|j| count(&self.steps[j]) * self.ciphertext_bytes(self.steps[j].level))
                .sum();
            peak = peak.max(live);
        }
        let keys = (usize::from(self.needs_relinearization()) + self.galois_elements.len())
            * self.key_bytes();
        let plaintexts = self.steps.iter().map(|s| self.plaintext_bytes(s)).sum();
        MemoryEstimate {
            ciphertexts: peak,
            keys,
            plaintexts,
        }
    }

    /// Input length.
    pub fn input_len(&self) -> usize {
        self.steps[0].len
    }

    /// Output length.
    pub fn output_len(&self) -> usize {
        self.steps.last().map(|s| s.len).unwrap_or(0)
    }

    /// Maximum inputs per batch: `N/2` in throughput mode, 1 in latency mode.
    pub fn batch_capacity(&self) -> usize {
        match self.mode {
            Mode::Throughput => self.params.slots(),
            Mode::Latency => 1,
        }
    }

    /// A multi-line human-readable report: parameters, per-step levels and scales, keys,
    /// approximations, memory.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "mode {:?}; parameters {}\ndepth {} (inputs encrypted at level {}), batch capacity {}\n",
            self.mode,
            self.params.describe(),
            self.depth,
            self.top_level,
            self.batch_capacity()
        );
        for (i, st) in self.steps.iter().enumerate() {
            let what = match &st.op {
                StepOp::Input => "input".to_string(),
                StepOp::Linear(l) => format!("{} ({} nonzeros)", l.kind, l.nnz()),
                StepOp::AddConst(_) => "add constant".into(),
                StepOp::Square => "square".into(),
                StepOp::Poly { poly, prescale } => format!(
                    "poly deg {} (depth {}{})",
                    poly.degree(),
                    poly.depth(),
                    if *prescale { " +1" } else { "" }
                ),
                StepOp::Add => format!("add {:?}", st.inputs),
                StepOp::Reshape => "reshape".into(),
            };
            let pack = match &st.packed {
                Some(p) => format!(
                    ", {} diagonals in {} blocks, n1 = {}, period {} -> {}",
                    p.diagonal_count(),
                    p.blocks.len(),
                    p.n1,
                    p.input.period,
                    p.output.period
                ),
                None => String::new(),
            };
            s += &format!(
                "  [{i}] {:<28} {:<44} len {:>5} level {} scale 2^{:.3}{pack}\n",
                st.name,
                what,
                st.len,
                st.level,
                self.scales[st.level].log2()
            );
        }
        if self.mode == Mode::Latency {
            s += &format!(
                "rotation steps ({}): {:?}\n",
                self.rotation_steps.len(),
                self.rotation_steps
            );
        }
        for a in &self.approximations {
            s += &format!("approximation {a}\n");
        }
        s += &match &self.flooding {
            Some(f) => format!(
                "noise flooding of outputs: s = {}, t = {}; simulated error 2^{:.1} before, flooding noise 2^{:.1} per output after\n",
                f.config.statistical_security, f.config.decryptions, f.log2_rms_before, f.log2_sigma
            ),
            None => "noise flooding of outputs: off (results must not leave the client)\n".into(),
        };
        let mb = |b: usize| b as f64 / (1u64 << 20) as f64;
        s += &format!(
            "memory estimate: ciphertexts {:.0} MiB, keys {:.0} MiB, weight plaintexts {:.0} MiB, total {:.0} MiB",
            mb(self.memory.ciphertexts),
            mb(self.memory.keys),
            mb(self.memory.plaintexts),
            mb(self.memory.total())
        );
        s
    }
}

/// Levels consumed by a step.
pub fn cost(op: &StepOp) -> usize {
    match op {
        StepOp::Linear(_) | StepOp::Square => 1,
        StepOp::Poly { poly, prescale } => poly.depth() + usize::from(*prescale),
        _ => 0,
    }
}

/// The largest scale in the options' range that fits a 128-bit-secure chain of `depth` levels
/// at `N = 2^log_n` (or the explicit `scale_bits`).
fn choose_parameters(
    depth: usize,
    int_bits: u32,
    log_n: u32,
    opts: &PlanOptions,
) -> Result<Arc<Parameters>> {
    use he_core::rlwe::params::max_log_qp_128;
    let bound = max_log_qp_128(1 << log_n).unwrap_or(0);
    let range: Vec<u32> = match opts.scale_bits {
        Some(b) => vec![b],
        None => (opts.min_scale_bits..=opts.max_scale_bits).rev().collect(),
    };
    let mut last = None;
    for sb in range {
        // q_0 holds the scale and the output's integer bits; a prime has at most 61 bits.
        if sb + int_bits > 61 {
            continue;
        }
        let q0 = sb + int_bits;
        // Cheapest chain: one prime per digit, one 60-bit special prime.
        if q0 + depth as u32 * sb + 60 > bound {
            continue;
        }
        let intent = ParametersIntent {
            depth,
            scale_bits: sb,
            int_bits,
            log_n: Some(log_n),
            dnum: None,
        };
        match Parameters::from_intent(&intent) {
            Ok(p) => return Ok(p),
            Err(e) => last = Some(e),
        }
    }
    if let Some(e) = last {
        return Err(NnError::Core(e));
    }
    // Nothing fits: report how many levels this degree could give.
    let sb = opts.scale_bits.unwrap_or(opts.min_scale_bits);
    let available = bound.saturating_sub((sb + int_bits).min(61) + 60) / sb.max(1);
    Err(NnError::DepthExceeded {
        needed: depth,
        available: available as usize,
    })
}
