//! Where a latency-mode engine's weights live: encoded once and held in memory, or served by a
//! [`WeightProvider`] (e.g. `pmem-store`'s `PmemWeightStore`, under a DRAM budget) and fetched
//! part by part, the next ones announced ahead through [`WeightProvider::prefetch`] in the
//! plan's order.
//!
//! Every weight object of a plan has a stable name, [`Plan::weight_names`]:
//! `"{step:05}/block{b}.{k}"` for part `k` of the `b`-th block of a linear layer (a
//! [`LinearTransform`] holding the block's diagonals of the giant steps in
//! [`Plan::weight_parts`]`(step)[k]`), `"{step:05}/bias{t}"` for its bias on output tile `t`,
//! and `"{step:05}/const{t}"` for a constant addition (both [`Plaintext`]s). A served layer is
//! applied part by part (he-core's
//! [`apply_linear_transform_streamed`](he_core::ckks::Evaluator::apply_linear_transform_streamed)),
//! so at most one part of a layer is held at a time: the parts are sized by
//! [`PlanOptions::weight_part_bytes`](crate::plan::PlanOptions::weight_part_bytes).
//! [`Plan::encode_weights`] encodes them one at a time for a sink, so that a store can be
//! filled without ever holding all of them in memory.

use super::{Blocks, Encoded, EncodedLinear, Engine};
use crate::error::{NnError, Result};
use crate::plan::{Mode, Plan, Step, StepOp};
use he_core::circuits::lintrans::LinearTransform;
use he_core::circuits::weights::WeightProvider;
use he_core::ckks::{Encoder, Plaintext};
use he_core::serialize::ObjectKind;
use std::sync::Arc;

/// One encoded weight object, as [`Plan::encode_weights`] hands it to its sink.
#[derive(Debug)]
pub enum EncodedWeight {
    /// A linear layer's block of diagonals.
    Transform(LinearTransform),
    /// A bias or an added constant.
    Plaintext(Plaintext),
}

/// Where the engine takes its weights from.
pub(super) enum WeightSource {
    /// Encoded at engine setup (one entry per step).
    Resident(Vec<Option<Encoded>>),
    /// Served by a provider, by [`Plan::weight_names`].
    Provided(Arc<dyn WeightProvider>),
}

impl std::fmt::Debug for WeightSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Resident(e) => write!(f, "Resident({} steps)", e.len()),
            Self::Provided(_) => write!(f, "Provided"),
        }
    }
}

/// Which object of a step a weight name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WeightPart {
    /// Part `part` (giant-step range) of a linear layer's block `block`.
    Block { block: usize, part: usize },
    /// A linear layer's bias on one output tile.
    Bias(usize),
    /// A constant addition's tile.
    Const(usize),
}

fn name(step: usize, what: WeightPart) -> String {
    match what {
        WeightPart::Block { block, part } => format!("{step:05}/block{block}.{part}"),
        WeightPart::Bias(t) => format!("{step:05}/bias{t}"),
        WeightPart::Const(t) => format!("{step:05}/const{t}"),
    }
}

/// The inverse of [`name`].
fn parse_name(name: &str) -> Option<(usize, WeightPart)> {
    let (step, rest) = name.split_once('/')?;
    let step = step.parse().ok()?;
    if let Some(r) = rest.strip_prefix("block") {
        let (b, k) = r.split_once('.')?;
        return Some((
            step,
            WeightPart::Block {
                block: b.parse().ok()?,
                part: k.parse().ok()?,
            },
        ));
    }
    if let Some(t) = rest.strip_prefix("bias") {
        return Some((step, WeightPart::Bias(t.parse().ok()?)));
    }
    let t = rest.strip_prefix("const")?;
    Some((step, WeightPart::Const(t.parse().ok()?)))
}

impl Plan {
    /// The giant-step ranges step `step`'s blocks are split into (empty for steps without
    /// diagonals): ranges of `G` giant steps, `G` the most whose plaintexts, at `n1`
    /// diagonals per giant step and block, stay within
    /// [`weight_part_bytes`](Self::weight_part_bytes) (at least 1); ranges where no block has
    /// a diagonal are left out. A part of a layer is what a served engine holds at once.
    pub fn weight_parts(&self, step: usize) -> Vec<std::ops::Range<usize>> {
        let Some(Step {
            op: StepOp::Linear(_),
            packed: Some(p),
            level,
            ..
        }) = self.steps.get(step)
        else {
            return Vec::new();
        };
        let giants = p.block_giant_steps();
        let Some(&last) = giants.iter().flatten().max() else {
            return Vec::new();
        };
        let per_giant = self
            .diagonal_bytes(*level)
            .max(1)
            .saturating_mul(p.n1)
            .saturating_mul(p.blocks.len().max(1));
        let g = (self.weight_part_bytes / per_giant).max(1);
        (0..=last)
            .step_by(g)
            .map(|start| start..(start + g).min(last + 1))
            .filter(|r| giants.iter().flatten().any(|i| r.contains(i)))
            .collect()
    }

    /// The `(block, part)` pairs of step `step` that hold diagonals, part-major (the order a
    /// served engine reads them).
    fn block_parts(&self, step: usize) -> Vec<(usize, usize)> {
        let parts = self.weight_parts(step);
        let Some(Step {
            packed: Some(p), ..
        }) = self.steps.get(step)
        else {
            return Vec::new();
        };
        let giants = p.block_giant_steps();
        parts
            .iter()
            .enumerate()
            .flat_map(|(k, r)| {
                giants
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| g.iter().any(|i| r.contains(i)))
                    .map(move |(b, _)| (b, k))
            })
            .collect()
    }

    /// The names of step `step`'s weight objects (see the module documentation), in the
    /// order the engine reads them; empty for steps without weights and in throughput mode.
    pub fn weight_names(&self, step: usize) -> Vec<String> {
        let Some(st) = self.steps.get(step) else {
            return Vec::new();
        };
        if self.mode != Mode::Latency {
            return Vec::new();
        }
        match (&st.op, &st.packed) {
            (StepOp::Linear(_), Some(p)) => self
                .block_parts(step)
                .into_iter()
                .map(|(block, part)| name(step, WeightPart::Block { block, part }))
                .chain((0..p.bias.len()).map(|t| name(step, WeightPart::Bias(t))))
                .collect(),
            (StepOp::AddConst(_), _) => (0..st.layout.tiles)
                .map(|t| name(step, WeightPart::Const(t)))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn scale_at(&self, level: usize) -> Result<f64> {
        self.scales
            .get(level)
            .copied()
            .ok_or_else(|| NnError::Invalid(format!("internal: no scale for level {level}")))
    }

    /// Encodes one weight object of step `step`: a part of a linear layer's block (at the
    /// layer's input level and scale), its bias on an output tile, or a constant addition's
    /// tile (at the step's level and scale).
    fn encode_object(&self, enc: &Encoder, step: usize, what: WeightPart) -> Result<EncodedWeight> {
        let st = self
            .steps
            .get(step)
            .ok_or_else(|| NnError::Invalid(format!("no step {step} in the plan")))?;
        let missing = || NnError::Invalid(format!("step {step} ({}) has no {what:?}", st.name));
        match (&st.op, st.packed.as_ref(), what) {
            (StepOp::Linear(_), Some(p), WeightPart::Block { block, part }) => {
                let b = p.blocks.get(block).ok_or_else(missing)?;
                let range = self
                    .weight_parts(step)
                    .get(part)
                    .cloned()
                    .ok_or_else(missing)?;
                let lin = st.level + 1;
                LinearTransform::encode_giant_steps(
                    enc,
                    &b.diagonals,
                    lin,
                    self.scale_at(lin)?,
                    p.baby_steps(),
                    range,
                )?
                .map(EncodedWeight::Transform)
                .ok_or_else(missing)
            }
            (StepOp::Linear(_), Some(p), WeightPart::Bias(k)) => {
                let b = p.bias.get(k).ok_or_else(missing)?;
                Ok(EncodedWeight::Plaintext(enc.encode(
                    b,
                    st.level,
                    self.scale_at(st.level)?,
                )?))
            }
            (StepOp::AddConst(c), _, WeightPart::Const(k)) => {
                let tiles = st.layout.pack(c, self.params.slots());
                let v = tiles.get(k).ok_or_else(missing)?;
                Ok(EncodedWeight::Plaintext(enc.encode(
                    v,
                    st.level,
                    self.scale_at(st.level)?,
                )?))
            }
            _ => Err(missing()),
        }
    }

    /// Encodes step `step`'s weights: the blocks at the layer's input level and scale, the
    /// bias and constants at the step's level and scale.
    pub(super) fn encode_step(&self, enc: &Encoder, step: usize) -> Result<Option<Encoded>> {
        let st = self
            .steps
            .get(step)
            .ok_or_else(|| NnError::Invalid(format!("internal: no step {step}")))?;
        if self.mode != Mode::Latency {
            return Ok(None);
        }
        let plaintext = |what| match self.encode_object(enc, step, what)? {
            EncodedWeight::Plaintext(p) => Ok(Arc::new(p)),
            EncodedWeight::Transform(_) => Err(NnError::Invalid("internal: plaintext kind".into())),
        };
        match (&st.op, st.packed.as_ref()) {
            (StepOp::Linear(_), Some(p)) => Ok(Some(Encoded::Linear(EncodedLinear {
                packed: p.clone(),
                blocks: Blocks::Resident(
                    p.blocks
                        .iter()
                        .map(|b| {
                            let lin = st.level + 1;
                            Ok(Arc::new(LinearTransform::encode(
                                enc,
                                &b.diagonals,
                                lin,
                                self.scale_at(lin)?,
                                p.baby_steps(),
                            )?))
                        })
                        .collect::<Result<_>>()?,
                ),
                bias: (0..p.bias.len())
                    .map(|t| plaintext(WeightPart::Bias(t)))
                    .collect::<Result<_>>()?,
            }))),
            (StepOp::AddConst(_), _) => Ok(Some(Encoded::AddConst(
                (0..st.layout.tiles)
                    .map(|t| plaintext(WeightPart::Const(t)))
                    .collect::<Result<_>>()?,
            ))),
            _ => Ok(None),
        }
    }

    /// Encodes every weight object of the plan, one at a time, and hands each to `sink` with
    /// its name (e.g. to put it in a `pmem-store`); peak memory is one object (one part of a
    /// block).
    pub fn encode_weights(
        &self,
        encoder: &Encoder,
        sink: &mut dyn FnMut(&str, EncodedWeight) -> Result<()>,
    ) -> Result<()> {
        for i in 0..self.steps.len() {
            for n in self.weight_names(i) {
                let (step, what) = parse_name(&n)
                    .ok_or_else(|| NnError::Invalid(format!("internal: weight name {n}")))?;
                sink(&n, self.encode_object(encoder, step, what)?)?;
            }
        }
        Ok(())
    }
}

impl Engine {
    /// Step `i`'s weights when a provider serves them: the biases or constants fetched now,
    /// the blocks' parts left to [`packed_linear`](Engine::packed_linear), which fetches them
    /// one part at a time (`None` for resident weights).
    pub(super) fn step_weights(&self, i: usize) -> Result<Option<Arc<Encoded>>> {
        let provider = match &self.weights {
            WeightSource::Resident(_) => return Ok(None),
            WeightSource::Provided(p) => p,
        };
        let st = self
            .plan
            .steps
            .get(i)
            .ok_or_else(|| NnError::Invalid(format!("internal: no step {i}")))?;
        if self.plan.mode != Mode::Latency {
            return Ok(None);
        }
        let fetched = match (&st.op, &st.packed) {
            (StepOp::Linear(_), Some(p)) => Encoded::Linear(EncodedLinear {
                packed: p.clone(),
                blocks: Blocks::Provided {
                    step: i,
                    parts: self.plan.block_parts(i),
                },
                bias: (0..p.bias.len())
                    .map(|t| Ok(provider.plaintext(&name(i, WeightPart::Bias(t)))?))
                    .collect::<Result<Vec<_>>>()?,
            }),
            (StepOp::AddConst(_), _) => Encoded::AddConst(
                (0..st.layout.tiles)
                    .map(|t| Ok(provider.plaintext(&name(i, WeightPart::Const(t)))?))
                    .collect::<Result<Vec<_>>>()?,
            ),
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(fetched)))
    }

    /// Part `part` of block `block` of step `step` from the provider, checked against the
    /// plan (level, scale and baby steps).
    pub(super) fn block_part(
        &self,
        step: usize,
        block: usize,
        part: usize,
    ) -> he_core::Result<Arc<LinearTransform>> {
        let WeightSource::Provided(provider) = &self.weights else {
            return Err(he_core::Error::InvalidParameters(
                "internal: no weight provider".into(),
            ));
        };
        let n = name(step, WeightPart::Block { block, part });
        let plan_shape = match self.plan.steps.get(step) {
            Some(Step {
                packed: Some(p),
                level,
                ..
            }) => self
                .plan
                .scales
                .get(level + 1)
                .map(|s| (level + 1, *s, p.n1)),
            _ => None,
        };
        let Some((lin, lin_scale, n1)) = plan_shape else {
            return Err(he_core::Error::InvalidParameters(format!(
                "internal: step {step} has no blocks"
            )));
        };
        let t = provider.transform(&n)?;
        if t.level() != lin || t.scale() != lin_scale || t.n1() != n1 {
            return Err(he_core::Error::InvalidParameters(format!(
                "weight {n}: level {}, scale 2^{:.3}, n1 {} does not match the plan (level \
                 {lin}, scale 2^{:.3}, n1 {n1})",
                t.level(),
                t.scale().log2(),
                t.n1(),
                lin_scale.log2(),
            )));
        }
        Ok(t)
    }

    /// Announces part `part` of the given blocks of step `step` to the provider.
    pub(super) fn prefetch_part(&self, step: usize, blocks: &[usize], part: usize) {
        if let WeightSource::Provided(p) = &self.weights {
            let names: Vec<String> = blocks
                .iter()
                .map(|&block| name(step, WeightPart::Block { block, part }))
                .collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            p.prefetch(&refs);
        }
    }

    /// Announces to the provider the weights of the next steps that have any, after `i`, up
    /// to `ahead` such steps (the plan's order is the order they will be read).
    pub(super) fn prefetch_after(&self, i: usize, ahead: usize) {
        if let WeightSource::Provided(p) = &self.weights {
            // Of a linear layer, its first part and its biases (the later parts are announced
            // one by one as the layer runs).
            let names: Vec<String> = (i + 1..self.plan.steps.len())
                .map(|j| {
                    self.plan
                        .weight_names(j)
                        .into_iter()
                        .filter(|n| {
                            !matches!(
                                parse_name(n),
                                Some((_, WeightPart::Block { part, .. })) if part > 0
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .filter(|n| !n.is_empty())
                .take(ahead)
                .flatten()
                .collect();
            if !names.is_empty() {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                p.prefetch(&refs);
            }
        }
    }
}

/// A [`WeightProvider`] that holds no encoded weights at all: it encodes each object from the
/// plan's cleartext diagonals when the engine asks for it (one special FFT and `l + 1 + k`
/// NTTs per diagonal), and the engine drops it after the step. For models whose encoded
/// weights exceed memory and no store is at hand: memory for time.
#[derive(Debug)]
pub struct EncodeOnDemand {
    plan: Plan,
    encoder: Encoder,
}

impl EncodeOnDemand {
    /// The provider for `plan`'s weights.
    pub fn new(plan: &Plan) -> Result<Self> {
        Ok(Self {
            plan: plan.clone(),
            encoder: Encoder::new(&plan.params)?,
        })
    }

    fn encode(&self, name: &str, want: ObjectKind) -> he_core::Result<EncodedWeight> {
        let missing = |reason: String| he_core::Error::MissingObject {
            kind: want,
            name: name.to_string(),
            reason,
        };
        let (step, what) =
            parse_name(name).ok_or_else(|| missing("not a weight name of an nn plan".into()))?;
        self.plan
            .encode_object(&self.encoder, step, what)
            .map_err(|e| missing(e.to_string()))
    }
}

impl WeightProvider for EncodeOnDemand {
    fn transform(&self, name: &str) -> he_core::Result<Arc<LinearTransform>> {
        match self.encode(name, ObjectKind::LinearTransform)? {
            EncodedWeight::Transform(t) => Ok(Arc::new(t)),
            EncodedWeight::Plaintext(_) => Err(he_core::Error::ObjectKindMismatch {
                name: name.to_string(),
                expected: ObjectKind::LinearTransform,
                found: ObjectKind::Plaintext,
            }),
        }
    }

    fn plaintext(&self, name: &str) -> he_core::Result<Arc<Plaintext>> {
        match self.encode(name, ObjectKind::Plaintext)? {
            EncodedWeight::Plaintext(p) => Ok(Arc::new(p)),
            EncodedWeight::Transform(_) => Err(he_core::Error::ObjectKindMismatch {
                name: name.to_string(),
                expected: ObjectKind::Plaintext,
                found: ObjectKind::LinearTransform,
            }),
        }
    }
}
