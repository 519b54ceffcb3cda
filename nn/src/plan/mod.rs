//! The planner: network + input shape -> parameters, per-layer levels and scales, packing,
//! the exact Galois elements needed, and a memory estimate.
//!
//! Scales are *canonical per level*: the input is encrypted at level `L` with scale
//! `Δ_L = 2^scale_bits`, and `Δ_{l-1} = Δ_l² / q_l`. Every operation lands exactly on the
//! canonical scale of its output level (a product of two level-`l` values rescales to
//! `Δ_l²/q_l`; weights are encoded at scale `Δ_l`, so a weighted sum rescales to the same),
//! hence additions never meet mismatched scales, whatever path the operands took.

use crate::activation::{Approximation, ReluApproximation, ReluChooser};
use crate::error::{NnError, Result};
use crate::flooding::OutputFlooding;
use crate::network::{Activation, Linear, Network, Op};
use crate::poly::{FittedPoly, PolyFunction};
use he_core::circuits::bootstrapping::{BootstrapConfig, BootstrapPreset, Bootstrapper};
use he_core::ckks::FloodingConfig;
use he_core::rlwe::{
    galois_element_for_rotation, KeySwitching, KsDemand, Parameters, ParametersIntent,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

mod bootstrap;
mod layout;
mod packing;
mod report;

pub use bootstrap::Bootstrapping;
pub use layout::candidates;
pub use packing::{
    LinearCost, Multiplexed, PackedBlock, PackedLayout, PackedLinear, SlotMap, DIAGONAL_COST,
    ROTATION_COST,
};

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

/// How the planner chooses key-switching digits (`dnum`) and special primes for parameters it
/// derives (one chain, no bootstrapping). Explicit parameters
/// ([`PlanOptions::parameters`]) and bootstrapping's preset chains keep their own digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeySwitchingChoice {
    /// The fewest digits that stay secure, 60-bit special primes
    /// ([`KeySwitching::Fewest`]; the default, the choice before the cost model).
    #[default]
    Fewest,
    /// Exactly this many digits ([`KeySwitching::Digits`]).
    Digits(usize),
    /// he-core's cost model ([`he_core::rlwe::ks_cost`]) for this plan's own demand: its
    /// relinearisation and Galois keys, its key switches per level (rotations of the packed
    /// layers, relinearisations), and at most `key_budget_bytes` for all keys together. A
    /// budget no digit count meets at a scale makes the planner try smaller scales (more room
    /// for special primes, fewer digits) and then larger degrees.
    Auto {
        /// Most bytes of all evaluation keys together (`None`: no limit, fastest switching).
        key_budget_bytes: Option<u64>,
    },
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
    /// Bootstrapping (latency mode): default [`Bootstrapping::Auto`], only when the network
    /// fits no secure chain.
    pub bootstrapping: Bootstrapping,
    /// Latency mode, weights served by a provider: the most bytes of encoded diagonals one
    /// part of a layer holds ([`Plan::weight_parts`]); a layer is applied part by part, so
    /// this bounds the weight memory of a served engine. Default 256 MiB (at least one giant
    /// step per part).
    pub weight_part_bytes: usize,
    /// How ReLU activations are approximated ([`crate::activation`]): default
    /// [`ReluApproximation::Declared`], the interpolant of the degree the network declares;
    /// [`ReluApproximation::Auto`] chooses per layer the cheapest interpolant or composite
    /// minimax ReLU whose measured error on the layer's interval `[-B, B]` is at most
    /// `B·2^-precision_bits`. SiLU and GELU keep their declared interpolants.
    pub relu: ReluApproximation,
    /// Per-layer overrides of [`relu`](Self::relu), by node name.
    pub relu_layers: BTreeMap<String, ReluApproximation>,
    /// Key-switching digits and special primes of derived parameters (default
    /// [`KeySwitchingChoice::Fewest`]).
    pub key_switching: KeySwitchingChoice,
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
            bootstrapping: Bootstrapping::Auto,
            weight_part_bytes: 256 << 20,
            relu: ReluApproximation::Declared,
            relu_layers: BTreeMap::new(),
            key_switching: KeySwitchingChoice::Fewest,
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
    /// Polynomial activation `p(x/B)` (an interpolant or a composite minimax ReLU);
    /// `prescale`: `1/B` could not be folded into the preceding linear layer and costs one
    /// extra level.
    Poly {
        /// The approximation, evaluated on `x/B` ([`Approximation::evaluate`]).
        poly: Approximation,
        /// Whether the input still has to be multiplied by `1/B`.
        prescale: bool,
    },
    /// Residual addition.
    Add,
    /// Shape change only.
    Reshape,
    /// CKKS bootstrapping (latency mode): the value `v` is divided by `divide` (a re-labelled
    /// scale, no level), bootstrapped back to the levels the configuration leaves, and
    /// multiplied by the integer `multiply` (no level); see [`Bootstrapping`].
    Bootstrap {
        /// Divisor bringing the value into `[-1, 1]`.
        divide: f64,
        /// Integer factor applied after.
        multiply: u64,
    },
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
    /// Bootstrapping's pre-encoded DFT factors (exactly what the engine's bootstrapper
    /// encodes), 0 without bootstraps.
    pub bootstrap_plaintexts: usize,
    /// Latency mode, weights served by a provider ([`Plan::weight_parts`]): the most weight
    /// bytes a served engine holds at once, the largest part of a layer for each output tile
    /// evaluated in parallel plus the layer's biases.
    pub served_plaintexts: usize,
    /// Working memory of the largest linear layer: the hoisted baby-step rotations of its
    /// inputs, kept in `Q_l ∪ P` across the layer's giant steps, and their decompositions.
    pub transform_work: usize,
    /// The plan's own cleartext weights: every block's diagonals (complex, one per slot of
    /// the block), held by the plan (and so by an engine) whatever serves the encoded ones.
    pub cleartext_weights: usize,
}

impl MemoryEstimate {
    /// Sum, all weights held in memory.
    pub fn total(&self) -> usize {
        self.ciphertexts
            + self.keys
            + self.plaintexts
            + self.bootstrap_plaintexts
            + self.transform_work
            + self.cleartext_weights
    }

    /// Sum for an engine whose weights a provider serves part by part (`served_plaintexts`
    /// instead of all of them); keys are counted held (a store serving them too needs at
    /// most its DRAM budget instead: [`total_with_store`](Self::total_with_store)).
    pub fn total_served(&self) -> usize {
        self.ciphertexts
            + self.keys
            + self.served_plaintexts
            + self.bootstrap_plaintexts
            + self.transform_work
            + self.cleartext_weights
    }

    /// Sum for an engine whose evaluation keys a store serves under a DRAM budget of
    /// `budget` bytes (its mappings never exceed it), with the weights either encoded part
    /// by part on demand (`served_plaintexts` held) or served by the same store (inside the
    /// budget).
    ///
    /// ```
    /// use he_nn::{MemoryEstimate, WeightsFrom};
    /// let m = MemoryEstimate { keys: 8 << 30, plaintexts: 1 << 30, served_plaintexts: 1 << 28,
    ///     ciphertexts: 1 << 27, ..MemoryEstimate::default() };
    /// assert_eq!(m.total_with_store(2 << 30, WeightsFrom::Store), (2 << 30) + (1 << 27));
    /// assert_eq!(m.total_with_store(2 << 30, WeightsFrom::OnDemand),
    ///     (2 << 30) + (1 << 28) + (1 << 27));
    /// // A budget above what the store holds counts what it holds.
    /// assert_eq!(m.total_with_store(64 << 30, WeightsFrom::Store), m.total());
    /// ```
    pub fn total_with_store(&self, budget: usize, weights: WeightsFrom) -> usize {
        let (stored, held) = match weights {
            WeightsFrom::OnDemand => (self.keys, self.served_plaintexts),
            WeightsFrom::Store => (self.keys + self.plaintexts, 0),
        };
        self.ciphertexts
            + stored.min(budget)
            + held
            + self.bootstrap_plaintexts
            + self.transform_work
            + self.cleartext_weights
    }
}

/// Where an engine whose keys a store serves gets its weight plaintexts
/// ([`MemoryEstimate::total_with_store`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFrom {
    /// Encoded from the plan's diagonals part by part when their layer runs
    /// ([`EncodeOnDemand`](crate::exec::EncodeOnDemand)).
    OnDemand,
    /// Read from the same store as the keys, within its budget.
    Store,
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
    /// Levels consumed by the network (all segments between bootstraps together).
    pub depth: usize,
    /// Level at which inputs are encrypted (= depth without bootstrapping, the levels a
    /// bootstrap leaves with it).
    pub top_level: usize,
    /// The bootstrapping configuration when the plan has [`StepOp::Bootstrap`] steps.
    pub bootstrap: Option<BootstrapConfig>,
    /// Canonical scale per level (`scales[l]`, `l <= top_level`).
    pub scales: Vec<f64>,
    /// Rotation steps needed (latency mode; empty in throughput mode).
    pub rotation_steps: Vec<i64>,
    /// The Galois elements of those steps: keys are generated for exactly these.
    pub galois_elements: Vec<u64>,
    /// With bootstrapping: the rotation steps only the network uses (not bootstrapping); their
    /// keys are generated up to `top_level` only (he-core's level-limited keys, about 5×
    /// smaller at `N16Levels9`), since the network never rotates above it.
    pub level_limited_rotations: Vec<i64>,
    /// Memory estimate (throughput: for a full batch).
    pub memory: MemoryEstimate,
    /// Polynomial approximations used, one line each.
    pub approximations: Vec<String>,
    /// Maximum |value| seen per step on the calibration data (0 without calibration).
    pub calibrated_max: Vec<f64>,
    /// The noise flooding [`Plan::decrypt`] applies (`None`: opted out).
    pub flooding: Option<OutputFlooding>,
    /// [`PlanOptions::weight_part_bytes`]: the size bound of the weight parts
    /// ([`Plan::weight_parts`]).
    pub weight_part_bytes: usize,
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
        let mut relu_chooser = ReluChooser::new();
        let dummy = PackedLayout::new(0, 1);
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
                    let setting = opts.relu_layers.get(&node.name).unwrap_or(&opts.relu);
                    let poly = match function {
                        PolyFunction::Relu => {
                            relu_chooser
                                .choose(setting, *degree, b)
                                .map_err(|e| match e {
                                    NnError::NoApproximation {
                                        function,
                                        wanted,
                                        tried,
                                    } => NnError::NoApproximation {
                                        function: format!("{function} at layer {}", node.name),
                                        wanted,
                                        tried,
                                    },
                                    e => e,
                                })?
                        }
                        _ => Approximation::Interpolant(FittedPoly::fit(*function, *degree, b)?),
                    };
                    let chosen = match (function, setting) {
                        (
                            PolyFunction::Relu,
                            ReluApproximation::Auto { precision_bits, .. }
                            | ReluApproximation::Composite { precision_bits, .. },
                        ) => format!(
                            ", {} non-scalar products; chosen by {} for error ≤ B·2^-{precision_bits}",
                            poly.multiplications()?,
                            if matches!(setting, ReluApproximation::Auto { .. }) {
                                "Auto"
                            } else {
                                "Composite"
                            }
                        ),
                        _ => String::new(),
                    };
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
                        "{}: {}{chosen}{}",
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
        let lowered = Lowered {
            steps,
            rel,
            depth,
            maxabs,
            approximations,
        };
        match &opts.bootstrapping {
            Bootstrapping::Off => Self::plan_one_chain(opts, &lowered),
            Bootstrapping::With(c) => Self::plan_bootstrapped(opts, lowered, c),
            Bootstrapping::Auto => {
                let c = BootstrapConfig::preset(BootstrapPreset::N16Levels9);
                let one = Self::plan_one_chain(opts, &lowered);
                // Bootstrapping can only help a latency-mode network deeper than the levels
                // it leaves, with derived parameters.
                if opts.mode != Mode::Latency
                    || opts.parameters.is_some()
                    || lowered.depth <= c.levels_after()
                {
                    return one;
                }
                // Otherwise the cheaper in memory of the two (keys and weights dominate
                // both time and space); one chain where both fail, for its error.
                match (one, Self::plan_bootstrapped(opts, lowered, &c)) {
                    (Ok(a), Ok(b)) if a.memory.total() <= b.memory.total() => Ok(a),
                    (_, Ok(b)) => Ok(b),
                    (one, Err(_)) => one,
                }
            }
        }
    }

    /// Planning without bootstraps: the whole network in one chain.
    fn plan_one_chain(opts: &PlanOptions, lowered: &Lowered) -> Result<Self> {
        let Lowered {
            steps,
            rel,
            depth,
            maxabs,
            approximations,
        } = lowered;
        let depth = *depth;
        let mut steps = steps.clone();
        for (s, r) in steps.iter_mut().zip(rel) {
            s.level = (depth as i64 + r).max(0) as usize;
        }
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
                None => match key_switching_for(opts, &steps, log_n)
                    .and_then(|ks| choose_parameters(depth, int_bits, log_n, opts, &ks))
                {
                    Ok(p) => p,
                    Err(e) => {
                        last_err = Some(e);
                        continue;
                    }
                },
            };
            if depth > params.max_level() {
                return Err(NnError::DepthExceeded {
                    needed: depth,
                    available: params.max_level(),
                });
            }
            let mut plan = Self::with_parameters(opts, params, steps.clone(), depth, depth, None)?;
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

    /// Planning with bootstraps: the configuration's chain, inputs encrypted at the levels a
    /// bootstrap leaves, bootstraps placed where they run out ([`Bootstrapping`]).
    fn plan_bootstrapped(
        opts: &PlanOptions,
        lowered: Lowered,
        config: &BootstrapConfig,
    ) -> Result<Self> {
        if opts.mode != Mode::Latency {
            return Err(NnError::Invalid(
                "bootstrapping needs latency mode (throughput mode would bootstrap every \
                 element's ciphertext): use Mode::Latency or a shallower network"
                    .into(),
            ));
        }
        let params = match &opts.parameters {
            Some(p) => {
                config.check(p)?;
                p.clone()
            }
            None => config.parameters()?,
        };
        let top = config.levels_after();
        let step_max = bootstrap::lowered_maxabs(&lowered.steps, &opts.calibration)?;
        let placed = bootstrap::place_bootstraps(
            lowered.steps,
            top,
            (!opts.calibration.is_empty()).then_some(step_max.as_slice()),
            opts.bound_margin,
        )?;
        let mut plan = Self::with_parameters(
            opts,
            params,
            placed.steps,
            top,
            lowered.depth,
            Some(config.clone()),
        )?;
        plan.approximations = lowered.approximations;
        // Activations whose 1/B a bootstrap applies: say so in their approximation line.
        for st in &plan.steps {
            if let (
                StepOp::Poly {
                    prescale: false, ..
                },
                Some(&j),
            ) = (&st.op, st.inputs.first())
            {
                let absorbed = matches!(
                    plan.steps.get(j).map(|s| &s.op),
                    Some(StepOp::Bootstrap { multiply: 1, .. })
                );
                let prefix = format!("{}: ", st.name);
                if let (true, Some(a)) = (
                    absorbed,
                    plan.approximations
                        .iter_mut()
                        .find(|a| a.starts_with(&prefix)),
                ) {
                    *a = a.replace(
                        ", +1 level for x/B",
                        ", 1/B applied by the bootstrap before it",
                    );
                }
            }
        }
        plan.calibrated_max = placed.maxabs;
        if let Some(config) = opts.flooding {
            let f = OutputFlooding::predict(&plan, config, &opts.calibration)?;
            if f.log2_sigma > -(opts.flooded_output_bits as f64) {
                return Err(NnError::Invalid(format!(
                    "noise flooding of the outputs (s = {}) leaves 2^{:.1} of noise per output \
                     (before flooding 2^{:.1}) with bootstrapping, above the target 2^-{}: lower \
                     flooded_output_bits, or opt out by name with PlanOptions::flooding = None \
                     if results never leave the client",
                    f.config.statistical_security,
                    f.log2_sigma,
                    f.log2_rms_before,
                    opts.flooded_output_bits
                )));
            }
            plan.flooding = Some(f);
        }
        Ok(plan)
    }

    /// The last steps of planning for one parameter set, the steps' levels assigned (inputs
    /// at `top`): scales, packing, keys, memory.
    fn with_parameters(
        opts: &PlanOptions,
        params: Arc<Parameters>,
        mut steps: Vec<Step>,
        top: usize,
        depth: usize,
        bootstrap: Option<BootstrapConfig>,
    ) -> Result<Self> {
        if top > params.max_level() {
            return Err(NnError::DepthExceeded {
                needed: top,
                available: params.max_level(),
            });
        }
        let q = params.q();
        let mut scales = vec![0.0; top + 1];
        scales[top] = params.default_scale();
        for l in (1..=top).rev() {
            scales[l - 1] = scales[l] * scales[l] / q[l] as f64;
        }
        // Δ_{l-1} = Δ_l²/q_l doubles any relative gap between Δ and the primes per level: a
        // long chain drifts away from its primes. Refused: a scale that falls more than 2 bits
        // below the default (precision lost) or leaves the base prime less than 4 bits above
        // it (no room for the values).
        let delta = params.default_scale();
        let q0 = q[0] as f64;
        if let Some((l, s)) = scales
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s >= delta / 4.0 && **s * 16.0 <= q0))
        {
            return Err(NnError::Invalid(format!(
                "the canonical scale drifts to 2^{:.1} at level {l} (default 2^{:.1}, q_0 2^{:.1}) \
                 over a chain of {top} levels: too deep for one chain with these primes; \
                 bootstrap (PlanOptions::bootstrapping) or use fewer levels",
                s.log2(),
                delta.log2(),
                q0.log2()
            )));
        }
        // Packing (latency mode) and rotation keys.
        let slots = params.slots();
        let mut rot: BTreeSet<i64> = if opts.mode == Mode::Latency {
            layout::assign_layouts(&mut steps, slots)?
        } else {
            BTreeSet::new()
        };
        // Bootstrapping's rotations and DFT plaintext bytes, from one build of its factors.
        let footprint = match &bootstrap {
            Some(c) => Some(Bootstrapper::footprint(&params, c)?),
            None => None,
        };
        let mut level_limited_rotations = Vec::new();
        if let Some(f) = &footprint {
            let boot: BTreeSet<i64> = f.rotations.iter().copied().collect();
            level_limited_rotations = rot.difference(&boot).copied().collect();
            rot.extend(boot);
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
            bootstrap,
            scales,
            rotation_steps,
            galois_elements,
            level_limited_rotations,
            memory: MemoryEstimate::default(),
            approximations: Vec::new(),
            calibrated_max: Vec::new(),
            flooding: None,
            weight_part_bytes: opts.weight_part_bytes,
        };
        plan.memory = plan.estimate_memory(
            footprint.as_ref().map_or(0, |f| f.plaintext_bytes),
            footprint.as_ref().map_or(0, |f| f.work_bytes),
        );
        Ok(plan)
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
    key_switching: &KeySwitching,
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
            key_switching: key_switching.clone(),
        };
        match Parameters::from_intent(&intent) {
            // The rescaling primes lie below 2^sb, so the canonical scales drift upwards
            // towards the bottom: give q_0 those bits too, so that the output keeps its
            // integer headroom.
            Ok(p) => match drift_bits(scale_drift_bits(&p, depth)) {
                Some(0) => return Ok(p),
                Some(d) if q0 + d <= 61 => {
                    let wider = ParametersIntent {
                        int_bits: int_bits + d,
                        ..intent
                    };
                    match Parameters::from_intent(&wider) {
                        Ok(p) => return Ok(p),
                        Err(e) => last = Some(e),
                    }
                }
                _ => {}
            },
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

/// The intent's key-switching choice at `N = 2^log_n`: for
/// [`KeySwitchingChoice::Auto`], the plan's demand (keys, switches per level) from the
/// packing this degree gives (`steps` with their levels assigned).
fn key_switching_for(opts: &PlanOptions, steps: &[Step], log_n: u32) -> Result<KeySwitching> {
    let key_budget_bytes = match opts.key_switching {
        KeySwitchingChoice::Fewest => return Ok(KeySwitching::Fewest),
        KeySwitchingChoice::Digits(d) => return Ok(KeySwitching::Digits(d)),
        KeySwitchingChoice::Auto { key_budget_bytes } => key_budget_bytes,
    };
    let mut steps = steps.to_vec();
    let rotations = if opts.mode == Mode::Latency {
        layout::assign_layouts(&mut steps, 1usize << log_n.saturating_sub(1))?.len()
    } else {
        0
    };
    let top = steps.iter().map(|s| s.level).max().unwrap_or(0);
    let mut switches = vec![0u64; top + 2];
    let mut relin = false;
    for s in &steps {
        let count = match opts.mode {
            Mode::Throughput => s.len,
            Mode::Latency => s.layout.tiles,
        } as u64;
        // Key switches happen at the input's level (one above a one-level step's output).
        let at = s
            .inputs
            .first()
            .and_then(|&j| steps.get(j))
            .map_or(s.level, |i| i.level);
        let n = match (&s.op, &s.packed) {
            (StepOp::Linear(_), Some(p)) => p.rotation_steps()?.len() as u64 * count,
            (StepOp::Square, _) => count,
            // A polynomial: its ciphertext products (each relinearised), counted by running
            // its evaluation on a level-tracking backend.
            (StepOp::Poly { poly, .. }, _) => poly.multiplications()? as u64 * count,
            _ => 0,
        };
        relin |= matches!(s.op, StepOp::Square | StepOp::Poly { .. });
        if let Some(x) = switches.get_mut(at) {
            *x += n;
        }
    }
    Ok(KeySwitching::Auto(KsDemand {
        keys: rotations + usize::from(relin),
        switches_per_level: switches,
        budget_bytes: key_budget_bytes,
    }))
}

/// Whole bits of an upward drift (0 for none or a downward one), `None` past 61 bits or
/// not finite (a chain no q_0 can absorb).
fn drift_bits(drift: f64) -> Option<u32> {
    match drift.ceil() {
        d if !d.is_finite() || d > 61.0 => None,
        d if d <= 0.0 => Some(0),
        d => Some(d as u32),
    }
}

/// `log2(Δ_0 / Δ_top)` of the canonical scales `Δ_{l-1} = Δ_l²/q_l` of a `depth`-level
/// chain starting at the default scale.
fn scale_drift_bits(params: &Parameters, depth: usize) -> f64 {
    let q = params.q();
    let top = params.default_scale();
    let mut s = top;
    for l in (1..=depth.min(q.len().saturating_sub(1))).rev() {
        s = s * s / q[l] as f64;
    }
    (s / top).log2()
}

/// The lowered network, before levels are assigned.
#[derive(Debug)]
struct Lowered {
    steps: Vec<Step>,
    /// Levels relative to the input (without bootstrapping), as negative offsets.
    rel: Vec<i64>,
    /// Levels the network consumes.
    depth: usize,
    /// Calibrated maximum per network node.
    maxabs: Vec<f64>,
    approximations: Vec<String>,
}
