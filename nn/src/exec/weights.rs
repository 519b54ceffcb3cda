//! Where a latency-mode engine's weights live: encoded once and held in memory, or served by a
//! [`WeightProvider`] (e.g. `pmem-store`'s `PmemWeightStore`, under a DRAM budget) and fetched
//! step by step, the next steps announced ahead through
//! [`WeightProvider::prefetch`] in the plan's order.
//!
//! Every weight object of a plan has a stable name, [`Plan::weight_names`]:
//! `"{step:05}/block{b}"` for the `b`-th block of a linear layer (a
//! [`LinearTransform`]), `"{step:05}/bias{t}"` for its bias on output tile `t`, and
//! `"{step:05}/const{t}"` for a constant addition (both [`Plaintext`]s). [`Plan::encode_weights`]
//! encodes them one at a time for a sink, so that a store can be filled without ever holding
//! all of them in memory.

use super::{Encoded, EncodedLinear, Engine};
use crate::error::{NnError, Result};
use crate::plan::{Mode, Plan, StepOp};
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
    /// A linear layer's block of diagonals.
    Block,
    /// A linear layer's bias on one output tile.
    Bias,
    /// A constant addition's tile.
    Const,
}

impl WeightPart {
    fn tag(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Bias => "bias",
            Self::Const => "const",
        }
    }
}

fn name(step: usize, what: WeightPart, k: usize) -> String {
    format!("{step:05}/{}{k}", what.tag())
}

/// The inverse of [`name`].
fn parse_name(name: &str) -> Option<(usize, WeightPart, usize)> {
    let (step, rest) = name.split_once('/')?;
    let step = step.parse().ok()?;
    [WeightPart::Block, WeightPart::Bias, WeightPart::Const]
        .into_iter()
        .find_map(|w| {
            let k = rest.strip_prefix(w.tag())?.parse().ok()?;
            Some((step, w, k))
        })
}

impl Plan {
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
            (StepOp::Linear(_), Some(p)) => (0..p.blocks.len())
                .map(|b| name(step, WeightPart::Block, b))
                .chain((0..p.bias.len()).map(|t| name(step, WeightPart::Bias, t)))
                .collect(),
            (StepOp::AddConst(_), _) => (0..st.layout.tiles)
                .map(|t| name(step, WeightPart::Const, t))
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

    /// Encodes one weight object of step `step`: block `k` of a linear layer (at the layer's
    /// input level and scale), its bias on output tile `k`, or a constant addition's tile `k`
    /// (at the step's level and scale).
    fn encode_object(
        &self,
        enc: &Encoder,
        step: usize,
        what: WeightPart,
        k: usize,
    ) -> Result<EncodedWeight> {
        let st = self
            .steps
            .get(step)
            .ok_or_else(|| NnError::Invalid(format!("no step {step} in the plan")))?;
        let missing = || NnError::Invalid(format!("step {step} ({}) has no {what:?} {k}", st.name));
        match (&st.op, st.packed.as_ref(), what) {
            (StepOp::Linear(_), Some(p), WeightPart::Block) => {
                let b = p.blocks.get(k).ok_or_else(missing)?;
                let lin = st.level + 1;
                Ok(EncodedWeight::Transform(LinearTransform::encode(
                    enc,
                    &b.diagonals,
                    lin,
                    self.scale_at(lin)?,
                    p.baby_steps(),
                )?))
            }
            (StepOp::Linear(_), Some(p), WeightPart::Bias) => {
                let b = p.bias.get(k).ok_or_else(missing)?;
                Ok(EncodedWeight::Plaintext(enc.encode(
                    b,
                    st.level,
                    self.scale_at(st.level)?,
                )?))
            }
            (StepOp::AddConst(c), _, WeightPart::Const) => {
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
        let transform = |k| match self.encode_object(enc, step, WeightPart::Block, k)? {
            EncodedWeight::Transform(t) => Ok(Arc::new(t)),
            EncodedWeight::Plaintext(_) => Err(NnError::Invalid("internal: block kind".into())),
        };
        let plaintext = |what, k| match self.encode_object(enc, step, what, k)? {
            EncodedWeight::Plaintext(p) => Ok(Arc::new(p)),
            EncodedWeight::Transform(_) => Err(NnError::Invalid("internal: plaintext kind".into())),
        };
        match (&st.op, st.packed.as_ref()) {
            (StepOp::Linear(_), Some(p)) => Ok(Some(Encoded::Linear(EncodedLinear {
                packed: p.clone(),
                blocks: (0..p.blocks.len()).map(transform).collect::<Result<_>>()?,
                bias: (0..p.bias.len())
                    .map(|t| plaintext(WeightPart::Bias, t))
                    .collect::<Result<_>>()?,
            }))),
            (StepOp::AddConst(_), _) => Ok(Some(Encoded::AddConst(
                (0..st.layout.tiles)
                    .map(|t| plaintext(WeightPart::Const, t))
                    .collect::<Result<_>>()?,
            ))),
            _ => Ok(None),
        }
    }

    /// Encodes every weight object of the plan, one step at a time, and hands each to `sink`
    /// with its name (e.g. to put it in a `pmem-store`); peak memory is one step's weights.
    pub fn encode_weights(
        &self,
        encoder: &Encoder,
        sink: &mut dyn FnMut(&str, EncodedWeight) -> Result<()>,
    ) -> Result<()> {
        for i in 0..self.steps.len() {
            let names = self.weight_names(i);
            let objects: Vec<EncodedWeight> = match self.encode_step(encoder, i)? {
                Some(Encoded::Linear(e)) => e
                    .blocks
                    .into_iter()
                    .map(|b| EncodedWeight::Transform(Arc::unwrap_or_clone(b)))
                    .chain(
                        e.bias
                            .into_iter()
                            .map(|p| EncodedWeight::Plaintext(Arc::unwrap_or_clone(p))),
                    )
                    .collect(),
                Some(Encoded::AddConst(pts)) => pts
                    .into_iter()
                    .map(|p| EncodedWeight::Plaintext(Arc::unwrap_or_clone(p)))
                    .collect(),
                None => Vec::new(),
            };
            if objects.len() != names.len() {
                return Err(NnError::Invalid(format!(
                    "internal: step {i} has {} weight names and {} objects",
                    names.len(),
                    objects.len()
                )));
            }
            for (n, o) in names.iter().zip(objects) {
                sink(n, o)?;
            }
        }
        Ok(())
    }
}

impl Engine {
    /// Step `i`'s weights: held, or fetched from the provider (checked against the plan:
    /// level, scale and baby steps of every block).
    pub(super) fn step_weights(&self, i: usize) -> Result<Option<Arc<Encoded>>> {
        let provider = match &self.weights {
            WeightSource::Resident(_) => return Ok(None),
            WeightSource::Provided(p) => p,
        };
        let st = &self.plan.steps[i];
        let names = self.plan.weight_names(i);
        if names.is_empty() {
            return Ok(None);
        }
        let fetched = match (&st.op, &st.packed) {
            (StepOp::Linear(_), Some(p)) => {
                let lin_scale = self.plan.scale_at(st.level + 1)?;
                let (blocks, bias) = names.split_at(p.blocks.len());
                let blocks = blocks
                    .iter()
                    .map(|n| {
                        let t = provider.transform(n)?;
                        if t.level() != st.level + 1 || t.scale() != lin_scale || t.n1() != p.n1 {
                            return Err(NnError::Invalid(format!(
                                "weight {n}: level {}, scale 2^{:.3}, n1 {} does not match the \
                                 plan (level {}, scale 2^{:.3}, n1 {})",
                                t.level(),
                                t.scale().log2(),
                                t.n1(),
                                st.level + 1,
                                lin_scale.log2(),
                                p.n1
                            )));
                        }
                        Ok(t)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let bias = bias
                    .iter()
                    .map(|n| Ok(provider.plaintext(n)?))
                    .collect::<Result<Vec<_>>>()?;
                Encoded::Linear(EncodedLinear {
                    packed: p.clone(),
                    blocks,
                    bias,
                })
            }
            (StepOp::AddConst(_), _) => Encoded::AddConst(
                names
                    .iter()
                    .map(|n| Ok(provider.plaintext(n)?))
                    .collect::<Result<Vec<_>>>()?,
            ),
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(fetched)))
    }

    /// Announces to the provider the weights of the next steps that have any, after `i`, up
    /// to `ahead` such steps (the plan's order is the order they will be read).
    pub(super) fn prefetch_after(&self, i: usize, ahead: usize) {
        if let WeightSource::Provided(p) = &self.weights {
            let names: Vec<String> = (i + 1..self.plan.steps.len())
                .map(|j| self.plan.weight_names(j))
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
        let (step, what, k) =
            parse_name(name).ok_or_else(|| missing("not a weight name of an nn plan".into()))?;
        self.plan
            .encode_object(&self.encoder, step, what, k)
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
