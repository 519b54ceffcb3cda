//! Encrypted execution of a [`Plan`]: key generation for exactly what the plan needs,
//! encryption in the plan's layout, the evaluator for both packing modes, decryption.

use crate::error::{shape_err, NnError, Result};
use crate::plan::{Mode, PackedLayout, PackedLinear, Plan, StepOp};
use he_core::circuits::bootstrapping::{Bootstrapper, EncapsulationKey};
use he_core::circuits::lintrans::LinearTransform;
use he_core::circuits::polynomial::PolynomialEvaluator;
use he_core::ckks::{Ciphertext, Decryptor, Encoder, Encryptor, Evaluator, Plaintext};
use he_core::rlwe::{EvalKeyProvider, KeyUse};
use rayon::prelude::*;
use std::sync::Arc;

mod batch;
mod keys;
mod spill;
mod weights;

pub use keys::Keys;

pub use spill::SpillStats;
use weights::WeightSource;
pub use weights::{EncodeOnDemand, EncodedWeight};

/// How an [`EncryptedTensor`] is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorLayout {
    /// Throughput mode: one ciphertext per element, slot `i` = input `i` of the batch.
    Batch {
        /// Inputs in the batch.
        batch: usize,
        /// Elements (= ciphertexts).
        len: usize,
    },
    /// Latency mode: one input in slots.
    Packed(PackedLayout),
}

/// Ciphertexts holding a tensor (a batch of them, in throughput mode).
#[derive(Debug, Clone)]
pub struct EncryptedTensor {
    /// Layout.
    pub layout: TensorLayout,
    /// The ciphertexts.
    pub cts: Vec<Ciphertext>,
}

impl EncryptedTensor {
    /// Total bytes of the ciphertext data.
    pub fn bytes(&self) -> usize {
        self.cts
            .iter()
            .map(|c| {
                c.parts()
                    .iter()
                    .map(|p| p.as_slice().len() * 8)
                    .sum::<usize>()
            })
            .sum()
    }
}

impl Plan {
    /// Encrypts inputs (flat, input length each): a batch of up to `N/2` in throughput mode,
    /// exactly one in latency mode.
    pub fn encrypt(
        &self,
        encoder: &Encoder,
        encryptor: &Encryptor,
        inputs: &[Vec<f64>],
    ) -> Result<EncryptedTensor> {
        self.encrypt_with(encoder, inputs, &|pt| Ok(encryptor.encrypt(pt)?))
    }

    /// Like [`encrypt`](Self::encrypt) with the secret key (the data owner's usual case):
    /// seeded ciphertexts, cheaper to produce, half the size to upload.
    pub fn encrypt_symmetric(
        &self,
        encoder: &Encoder,
        decryptor: &Decryptor<'_>,
        inputs: &[Vec<f64>],
    ) -> Result<EncryptedTensor> {
        self.encrypt_with(encoder, inputs, &|pt| Ok(decryptor.encrypt_symmetric(pt)?))
    }

    fn encrypt_with(
        &self,
        encoder: &Encoder,
        inputs: &[Vec<f64>],
        encrypt: &(dyn Fn(&Plaintext) -> Result<Ciphertext> + Sync),
    ) -> Result<EncryptedTensor> {
        let n_in = self.input_len();
        if let Some(bad) = inputs.iter().find(|x| x.len() != n_in) {
            return Err(shape_err("input", n_in, bad.len()));
        }
        let (level, scale) = (self.top_level, self.scales[self.top_level]);
        let slots = self.params.slots();
        match self.mode {
            Mode::Throughput => {
                if inputs.is_empty() || inputs.len() > slots {
                    return Err(NnError::Invalid(format!(
                        "a batch holds 1..={slots} inputs, got {}",
                        inputs.len()
                    )));
                }
                let cts = (0..n_in)
                    .into_par_iter()
                    .map(|e| {
                        let v: Vec<f64> = inputs.iter().map(|x| x[e]).collect();
                        encrypt(&encoder.encode(&v, level, scale)?)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(EncryptedTensor {
                    layout: TensorLayout::Batch {
                        batch: inputs.len(),
                        len: n_in,
                    },
                    cts,
                })
            }
            Mode::Latency => {
                let [x] = inputs else {
                    return Err(NnError::Invalid(format!(
                        "latency mode encrypts one input at a time, got {}",
                        inputs.len()
                    )));
                };
                let layout = self.steps[0].layout;
                let cts = layout
                    .pack(x, slots)
                    .par_iter()
                    .map(|t| encrypt(&encoder.encode(t, level, scale)?))
                    .collect::<Result<Vec<_>>>()?;
                Ok(EncryptedTensor {
                    layout: TensorLayout::Packed(layout),
                    cts,
                })
            }
        }
    }

    /// Decrypts an output tensor into one vector per input, with the plan's noise flooding
    /// ([`crate::flooding`]; none if the plan opted out with `PlanOptions::flooding = None`).
    pub fn decrypt(
        &self,
        encoder: &Encoder,
        decryptor: &Decryptor<'_>,
        t: &EncryptedTensor,
    ) -> Result<Vec<Vec<f64>>> {
        let decoded = t
            .cts
            .iter()
            .map(|c| self.decrypt_output(encoder, decryptor, c))
            .collect::<Result<Vec<_>>>()?;
        self.unpack_outputs(t, decoded)
    }

    /// Decrypts without noise flooding, whatever the plan says. Only for results that never
    /// leave the client: the decrypted error is a function of the secret key.
    pub fn decrypt_unflooded(
        &self,
        encoder: &Encoder,
        decryptor: &Decryptor<'_>,
        t: &EncryptedTensor,
    ) -> Result<Vec<Vec<f64>>> {
        let decoded = t
            .cts
            .iter()
            .map(|c| Ok(encoder.decode(&decryptor.decrypt(c)?)?))
            .collect::<Result<Vec<_>>>()?;
        self.unpack_outputs(t, decoded)
    }

    /// Decrypts and decodes one output ciphertext with the plan's flooding.
    pub fn decrypt_output(
        &self,
        encoder: &Encoder,
        decryptor: &Decryptor<'_>,
        c: &he_core::ckks::Ciphertext,
    ) -> Result<Vec<f64>> {
        crate::flooding::decrypt_output(encoder, decryptor, self.flooding.as_ref(), c)
    }

    /// Slot vectors of the output ciphertexts into one vector per input.
    pub fn unpack_outputs(
        &self,
        t: &EncryptedTensor,
        decoded: Vec<Vec<f64>>,
    ) -> Result<Vec<Vec<f64>>> {
        let slots = self.params.slots();
        if let TensorLayout::Batch { batch, len } = t.layout {
            if decoded.len() != len || batch > slots {
                return Err(shape_err("batch tensor ciphertexts", len, decoded.len()));
            }
        }
        Ok(match t.layout {
            TensorLayout::Batch { batch, len } => (0..batch)
                .map(|i| (0..len).map(|e| decoded[e][i]).collect())
                .collect(),
            TensorLayout::Packed(l) => vec![l.unpack(&decoded, slots)],
        })
    }
}

/// Pre-encoded weights of a latency-mode linear layer.
#[derive(Debug)]
struct EncodedLinear {
    packed: Arc<PackedLinear>,
    /// The blocks' diagonals over `Q_l ∪ P` at the layer's input level `l`, plaintext scale
    /// `Δ_l`: held, or fetched part by part.
    blocks: Blocks,
    /// Per output tile: the packed bias at the output level and scale.
    bias: Vec<Arc<Plaintext>>,
}

/// A linear layer's encoded blocks.
#[derive(Debug)]
enum Blocks {
    /// Every block whole, in the plan's order.
    Resident(Vec<Arc<LinearTransform>>),
    /// Served by the engine's provider: the `(block, part)` pairs of step `step`
    /// ([`Plan::weight_parts`]), fetched one part at a time.
    Provided {
        step: usize,
        parts: Vec<(usize, usize)>,
    },
}

/// What a latency-mode step has encoded once, at engine setup.
#[derive(Debug)]
enum Encoded {
    /// A linear layer's diagonals and bias.
    Linear(EncodedLinear),
    /// A constant addition's packed constant, one plaintext per tile.
    AddConst(Vec<Arc<Plaintext>>),
}

/// The server side: an evaluator with the plan's evaluation keys and (latency mode) the weight
/// diagonals, biases and constants encoded once as plaintexts, or served by a
/// [`WeightProvider`](he_core::circuits::weights::WeightProvider)
/// ([`with_weights`](Self::with_weights)).
#[derive(Debug)]
pub struct Engine {
    plan: Plan,
    eval: Evaluator,
    weights: WeightSource,
    /// The bootstrapper of a plan with bootstrap steps.
    bootstrapper: Option<Bootstrapper>,
    /// The keys each step fetches, with their levels ([`Engine::key_look_ahead`]).
    key_uses: Vec<Vec<KeyUse>>,
    /// Where values held between steps go when they exceed a budget.
    spill: Option<spill::Spill>,
}

fn int_const(c: f64, scale: f64) -> Result<i64> {
    let v = (c * scale).round();
    if !v.is_finite() || v.abs() >= 2f64.powi(62) {
        return Err(NnError::Invalid(format!(
            "constant {c} times scale 2^{:.1} does not fit in 62 bits",
            scale.log2()
        )));
    }
    Ok(v as i64)
}

impl Engine {
    /// Builds the engine: in latency mode, encodes every linear layer's blocks as he-core
    /// [`LinearTransform`]s at the layer's input level and scale, and the biases and added
    /// constants at their levels and scales, so that a run encodes nothing. A plan with
    /// bootstraps whose configuration uses a sparse ephemeral secret needs
    /// [`with_encapsulation`](Self::with_encapsulation).
    pub fn new(plan: &Plan, keys: Arc<dyn EvalKeyProvider>) -> Result<Self> {
        Self::with_encapsulation(plan, keys, None)
    }

    /// As [`new`](Self::new), with the encapsulation key of a bootstrapping plan
    /// ([`Keys::encapsulation`]); the bootstrapper's DFT factors are encoded here too.
    pub fn with_encapsulation(
        plan: &Plan,
        keys: Arc<dyn EvalKeyProvider>,
        encapsulation: Option<EncapsulationKey>,
    ) -> Result<Self> {
        Self::build(plan, keys, encapsulation, None)
    }

    /// As [`with_encapsulation`](Self::with_encapsulation), the weights served by `weights`
    /// under the names [`Plan::weight_names`] (filled by [`Plan::encode_weights`]), fetched
    /// when their step runs, the next steps' announced ahead: nothing is encoded at setup but
    /// the bootstrapper's DFT factors.
    pub fn with_weights(
        plan: &Plan,
        keys: Arc<dyn EvalKeyProvider>,
        encapsulation: Option<EncapsulationKey>,
        weights: Arc<dyn he_core::circuits::weights::WeightProvider>,
    ) -> Result<Self> {
        Self::build(plan, keys, encapsulation, Some(weights))
    }

    fn build(
        plan: &Plan,
        keys: Arc<dyn EvalKeyProvider>,
        encapsulation: Option<EncapsulationKey>,
        weights: Option<Arc<dyn he_core::circuits::weights::WeightProvider>>,
    ) -> Result<Self> {
        let bootstrapper = match &plan.bootstrap {
            Some(config) if plan.bootstrap_count() > 0 => {
                if config.sparse_secret.is_some() && encapsulation.is_none() {
                    return Err(NnError::Invalid(
                        "the plan bootstraps with a sparse ephemeral secret: build the engine \
                         with Engine::with_encapsulation and the keys' encapsulation key"
                            .into(),
                    ));
                }
                Some(Bootstrapper::new(
                    &plan.params,
                    config,
                    keys.clone(),
                    encapsulation,
                )?)
            }
            _ => None,
        };
        let eval = Evaluator::with_keys(&plan.params, keys)?;
        let key_uses = plan
            .steps
            .iter()
            .map(|st| Self::step_key_uses(plan, bootstrapper.as_ref(), st))
            .collect();
        let weights = match weights {
            Some(p) => WeightSource::Provided(p),
            None => {
                let enc = eval.encoder().clone();
                WeightSource::Resident(
                    (0..plan.steps.len())
                        .map(|i| plan.encode_step(&enc, i))
                        .collect::<Result<Vec<_>>>()?,
                )
            }
        };
        Ok(Self {
            plan: plan.clone(),
            eval,
            weights,
            bootstrapper,
            key_uses,
            spill: None,
        })
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Bytes of the pre-encoded plaintexts (latency mode): weight diagonals over `Q_l ∪ P`,
    /// biases and constants over `Q_l`. The planner's
    /// [`MemoryEstimate::plaintexts`](crate::plan::MemoryEstimate::plaintexts) predicts it.
    /// (0 when a provider serves them.)
    pub fn weight_bytes(&self) -> usize {
        let pt_bytes = |p: &Arc<Plaintext>| p.poly().as_slice().len() * 8;
        let WeightSource::Resident(encoded) = &self.weights else {
            return 0;
        };
        encoded
            .iter()
            .flatten()
            .map(|e| match e {
                Encoded::Linear(e) => {
                    let blocks = match &e.blocks {
                        Blocks::Resident(b) => b.iter().map(|b| b.bytes()).sum::<usize>(),
                        Blocks::Provided { .. } => 0,
                    };
                    blocks + e.bias.iter().map(pt_bytes).sum::<usize>()
                }
                Encoded::AddConst(pts) => pts.iter().map(pt_bytes).sum(),
            })
            .sum()
    }

    /// Runs the plan on an encrypted input. The input is consumed so that its ciphertexts are
    /// freed as soon as the last layer reading them is done.
    pub fn run(&self, input: EncryptedTensor) -> Result<EncryptedTensor> {
        Ok(self.run_profiled(input)?.0)
    }

    /// Runs the plan and returns the wall time of every step (name, seconds).
    pub fn run_profiled(
        &self,
        input: EncryptedTensor,
    ) -> Result<(EncryptedTensor, Vec<(String, f64)>)> {
        let mut times = Vec::with_capacity(self.plan.steps.len());
        let plan = &self.plan;
        let steps = &plan.steps;
        match (plan.mode, input.layout) {
            (Mode::Throughput, TensorLayout::Batch { len, .. })
            | (Mode::Latency, TensorLayout::Packed(PackedLayout { len, .. }))
                if len == plan.input_len() => {}
            _ => {
                return Err(NnError::Invalid(format!(
                    "input layout {:?} does not match the plan ({:?}, input length {})",
                    input.layout,
                    plan.mode,
                    plan.input_len()
                )))
            }
        }
        // Last reader of each step, to free ciphertexts early.
        let mut last_use: Vec<usize> = (0..steps.len()).collect();
        for (i, s) in steps.iter().enumerate() {
            for &j in &s.inputs {
                last_use[j] = last_use[j].max(i);
            }
        }
        let mut vals: spill::Values = vec![None; steps.len()];
        let in_layout = input.layout;
        vals[0] = Some(Arc::new(input.cts));
        let mut parked = spill::SpillRun::new(self.spill.as_ref(), &plan.params, steps.len());
        for i in 1..steps.len() {
            let st = &steps[i];
            parked.restore(&st.inputs, &mut vals)?;
            let get = |k: usize| -> Result<Arc<Vec<Ciphertext>>> {
                vals[st.inputs[k]].clone().ok_or_else(|| {
                    NnError::Invalid(format!("internal: value of step {} freed", st.inputs[k]))
                })
            };
            let x = get(0)?;
            let t0 = std::time::Instant::now();
            if matches!(st.op, StepOp::Reshape) {
                // Same ciphertexts, new shape: share them.
                times.push((st.name.clone(), 0.0));
                vals[i] = Some(x);
                if last_use[st.inputs[0]] == i {
                    vals[st.inputs[0]] = None;
                }
                continue;
            }
            // This step's weights (fetched now when a provider serves them), and the next
            // two weighted steps' announced to the provider.
            let fetched = self.step_weights(i)?;
            self.prefetch_after(i, 2);
            let _relin = self.hold_keys_for(i)?;
            let weights: Option<&Encoded> = match (&self.weights, &fetched) {
                (WeightSource::Resident(e), _) => e.get(i).and_then(Option::as_ref),
                (_, Some(f)) => Some(f.as_ref()),
                _ => None,
            };
            let out: Vec<Ciphertext> = match &st.op {
                StepOp::Input => {
                    return Err(NnError::Invalid("internal: second input step".into()))
                }
                StepOp::Reshape => (*x).clone(),
                StepOp::Linear(l) => match weights {
                    Some(Encoded::Linear(e)) => self.packed_linear(e, &x, st.level)?,
                    _ if plan.mode == Mode::Latency => {
                        return Err(NnError::Invalid(format!(
                            "internal: linear step {} has no encoded weights",
                            st.name
                        )))
                    }
                    _ => self.batch_linear(l, &x, st.level)?,
                },
                StepOp::AddConst(c) => match (plan.mode, weights) {
                    (Mode::Throughput, _) => x
                        .par_iter()
                        .zip(c.par_iter())
                        .map(|(ct, v)| {
                            let mut ct = ct.clone();
                            self.eval.add_const_assign(&mut ct, *v)?;
                            Ok(ct)
                        })
                        .collect::<Result<Vec<_>>>()?,
                    (Mode::Latency, Some(Encoded::AddConst(pts))) => {
                        if pts.len() != x.len() {
                            return Err(shape_err("constant tiles", pts.len(), x.len()));
                        }
                        x.par_iter()
                            .zip(pts.par_iter())
                            .map(|(ct, pt)| {
                                let mut ct = ct.clone();
                                self.eval.add_plain_assign(&mut ct, pt.as_ref())?;
                                Ok(ct)
                            })
                            .collect::<Result<Vec<_>>>()?
                    }
                    (Mode::Latency, _) => {
                        return Err(NnError::Invalid(format!(
                            "internal: constant step {} has no encoded constant",
                            st.name
                        )))
                    }
                },
                StepOp::Square => x
                    .par_iter()
                    .map(|ct| {
                        let mut y = self.eval.square_relin(ct)?;
                        self.eval.rescale_assign(&mut y)?;
                        Ok(y)
                    })
                    .collect::<Result<Vec<_>>>()?,
                StepOp::Poly { poly, prescale } => {
                    let target = plan.scales[st.level];
                    let pe = PolynomialEvaluator::new(&self.eval);
                    x.par_iter()
                        .map(|ct| {
                            let u = if *prescale {
                                self.const_mul_rescale(ct, 1.0 / poly.bound())?
                            } else {
                                ct.clone()
                            };
                            Ok(poly.evaluate(&pe, &u, target)?)
                        })
                        .collect::<Result<Vec<_>>>()?
                }
                StepOp::Bootstrap { divide, multiply } => {
                    let boot = self.bootstrapper.as_ref().ok_or_else(|| {
                        NnError::Invalid(format!(
                            "internal: bootstrap step {} without a bootstrapper",
                            st.name
                        ))
                    })?;
                    // Sequential: bootstrapping parallelises inside (and holds gigabytes).
                    x.iter()
                        .map(|ct| {
                            let mut c = ct.clone();
                            if *divide != 1.0 {
                                // Re-label: the same residues encrypt v / divide.
                                let s = c.scale() * divide;
                                self.eval.set_scale(&mut c, s)?;
                            }
                            let mut y = boot.bootstrap(&c)?;
                            if *multiply != 1 {
                                self.eval.mul_int_assign(&mut y, *multiply as i64)?;
                            }
                            Ok(y)
                        })
                        .collect::<Result<Vec<_>>>()?
                }
                StepOp::Add => {
                    let y = get(1)?;
                    x.par_iter()
                        .zip(y.par_iter())
                        .map(|(a, b)| {
                            let a = self.align(a, st.level)?;
                            let b = self.align(b, st.level)?;
                            Ok(self.eval.add(&a, &b)?)
                        })
                        .collect::<Result<Vec<_>>>()?
                }
            };
            times.push((st.name.clone(), t0.elapsed().as_secs_f64()));
            vals[i] = Some(Arc::new(out));
            for &j in &st.inputs {
                if last_use[j] == i {
                    vals[j] = None;
                }
            }
            parked.fit(i, steps, &mut vals)?;
        }
        let last = steps.len() - 1;
        let cts = vals[last]
            .take()
            .map(|a| Arc::try_unwrap(a).unwrap_or_else(|a| (*a).clone()))
            .unwrap_or_default();
        let layout = match in_layout {
            TensorLayout::Batch { batch, .. } => TensorLayout::Batch {
                batch,
                len: plan.output_len(),
            },
            TensorLayout::Packed(_) => TensorLayout::Packed(steps[last].layout),
        };
        Ok((EncryptedTensor { layout, cts }, times))
    }

    /// `c·x` then rescale, landing exactly on the canonical scale of the next level.
    fn const_mul_rescale(&self, x: &Ciphertext, c: f64) -> Result<Ciphertext> {
        let l = x.level();
        let q = self.plan.params.q();
        let target = x.scale() * x.scale() / q[l] as f64;
        let mut y = x.clone();
        self.eval.mul_const_to_scale_assign(&mut y, c, target)?;
        self.eval.rescale_assign(&mut y)?;
        Ok(y)
    }

    /// Brings `x` (canonical at its level) to the canonical scale of `level <= x.level()`:
    /// multiply by 1 encoded at the right scale, rescale, drop the remaining limbs.
    fn align(&self, x: &Ciphertext, level: usize) -> Result<Ciphertext> {
        if x.level() == level {
            return Ok(x.clone());
        }
        let mut y = x.clone();
        self.eval
            .mul_const_to_scale_assign(&mut y, 1.0, self.plan.scales[level])?;
        self.eval.rescale_assign(&mut y)?;
        self.eval.drop_to_level(&mut y, level)?;
        Ok(y)
    }

    /// Latency mode: per output tile, one double-hoisted sum of its blocks' linear transforms
    /// (he-core's BSGS, giant steps shared across the blocks), one rescale (`Δ_l²/q_l =
    /// Δ_{l-1}`), the folds, the bias.
    fn packed_linear(
        &self,
        e: &EncodedLinear,
        x: &[Ciphertext],
        out_level: usize,
    ) -> Result<Vec<Ciphertext>> {
        let p = &e.packed;
        let lin = out_level + 1;
        // The transforms are encoded at the layer's input level; bring any higher input there.
        let inputs = (0..p.input.tiles)
            .map(|t| {
                let ct = x
                    .get(t)
                    .ok_or_else(|| shape_err("packed input tiles", p.input.tiles, x.len()))?;
                if ct.level() > lin {
                    Ok(std::borrow::Cow::Owned(self.align(ct, lin)?))
                } else {
                    Ok(std::borrow::Cow::Borrowed(ct))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        (0..p.output.tiles)
            .into_par_iter()
            .map(|a| {
                // This tile's blocks: (block index, its input ciphertext).
                let tile_blocks: Vec<(usize, &Ciphertext)> = p
                    .blocks
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.out_tile == a)
                    .map(|(bi, b)| {
                        let ct = inputs.get(b.in_tile).ok_or_else(|| {
                            shape_err("packed input tiles", p.input.tiles, b.in_tile + 1)
                        })?;
                        Ok((bi, ct.as_ref()))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut y = if tile_blocks.is_empty() {
                    // An all-zero output tile.
                    let mut z = inputs
                        .first()
                        .ok_or_else(|| NnError::Invalid("empty input tensor".into()))?
                        .as_ref()
                        .clone();
                    self.eval.mul_int_assign(&mut z, 0)?;
                    let s = z.scale() * z.scale();
                    self.eval.set_scale(&mut z, s)?;
                    z
                } else {
                    match &e.blocks {
                        Blocks::Resident(lts) => {
                            let terms = tile_blocks
                                .iter()
                                .map(|&(bi, ct)| {
                                    let lt = lts.get(bi).ok_or_else(|| {
                                        shape_err("encoded blocks", p.blocks.len(), lts.len())
                                    })?;
                                    Ok((ct, lt.as_ref()))
                                })
                                .collect::<Result<Vec<_>>>()?;
                            self.eval.apply_linear_transform_sum(&terms)?
                        }
                        Blocks::Provided { step, parts } => {
                            self.streamed_tile(*step, parts, &tile_blocks)?
                        }
                    }
                };
                self.eval.rescale_assign(&mut y)?;
                for s in &p.fold_steps {
                    let r = self.eval.rotate(&y, *s)?;
                    self.eval.add_assign(&mut y, &r)?;
                }
                let bias = e
                    .bias
                    .get(a)
                    .ok_or_else(|| shape_err("bias tiles", p.output.tiles, e.bias.len()))?;
                self.eval.add_plain_assign(&mut y, bias)?;
                Ok(y)
            })
            .collect()
    }

    /// One output tile of a served layer: its blocks' parts fetched one part at a time and
    /// applied by he-core's streamed BSGS (the tile's blocks share each part's giant steps),
    /// the next part announced while the current one is applied.
    fn streamed_tile(
        &self,
        step: usize,
        parts: &[(usize, usize)],
        tile_blocks: &[(usize, &Ciphertext)],
    ) -> Result<Ciphertext> {
        let cts: Vec<&Ciphertext> = tile_blocks.iter().map(|(_, ct)| *ct).collect();
        let part_count = parts.iter().map(|(_, k)| k + 1).max().unwrap_or(0);
        let blocks_of = |k: usize| -> Vec<(usize, usize)> {
            // (position in this tile, block index) of the tile's blocks that have part k.
            tile_blocks
                .iter()
                .enumerate()
                .filter(|(_, (bi, _))| parts.contains(&(*bi, k)))
                .map(|(pos, (bi, _))| (pos, *bi))
                .collect()
        };
        let fetch = |k: usize| -> he_core::Result<Vec<(usize, Arc<LinearTransform>)>> {
            blocks_of(k)
                .into_iter()
                .map(|(pos, bi)| self.block_part(step, bi, k).map(|t| (pos, t)))
                .collect()
        };
        let prefetch = |k: usize| {
            let blocks: Vec<usize> = blocks_of(k).into_iter().map(|(_, bi)| bi).collect();
            self.prefetch_part(step, &blocks, k);
        };
        Ok(self
            .eval
            .apply_linear_transform_streamed(&cts, part_count, &fetch, &prefetch)?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::network::Network;
    use crate::plan::PlanOptions;
    use he_core::rlwe::{Parameters, ParametersLiteral, SecretDistribution, Security};
    use std::collections::BTreeSet;

    /// The Galois keys the planner lists are exactly the rotations of the encoded transforms
    /// plus the folds, and every transform sits at its layer's input level and scale.
    #[test]
    fn planned_rotations_are_exactly_those_of_the_encoded_transforms() {
        // N = 2^10, 512 slots: 700 inputs take 2 tiles, 600 hidden 2 tiles, 10 outputs 1.
        let params = Parameters::new(ParametersLiteral {
            log_n: 10,
            log_q: vec![50, 40, 40],
            log_p: vec![61],
            alpha: None,
            log_scale: 40.0,
            secret: SecretDistribution::UniformTernary,
            security: Security::InsecureForTesting,
        })
        .unwrap();
        let mut g = crate::sim::Gaussian::new(3);
        let mut w = |n: usize| (0..n).map(|_| 0.05 * g.normal()).collect::<Vec<f64>>();
        let mut net = Network::new(&[700]);
        net.dense(&w(600 * 700), 600, None).unwrap();
        net.dense(&w(10 * 600), 10, Some(&w(10))).unwrap();
        let mut opts = PlanOptions::new(Mode::Latency);
        opts.parameters = Some(params);
        opts.flooding = None;
        let plan = Plan::new(&net, &opts).unwrap();
        let keys = plan.generate_keys().unwrap();
        let engine = Engine::new(&plan, keys.eval.clone()).unwrap();
        let mut used = BTreeSet::new();
        let mut transforms = 0;
        let WeightSource::Resident(encoded) = &engine.weights else {
            panic!("resident weights expected");
        };
        for (st, e) in plan.steps.iter().zip(encoded) {
            let Some(Encoded::Linear(e)) = e else {
                continue;
            };
            let Blocks::Resident(blocks) = &e.blocks else {
                panic!("resident blocks expected");
            };
            assert_eq!(blocks.len(), e.packed.blocks.len());
            for lt in blocks {
                assert_eq!(lt.level(), st.level + 1);
                assert_eq!(lt.scale(), plan.scales[st.level + 1]);
                assert_eq!(lt.n1(), e.packed.n1);
                used.extend(lt.rotations());
                transforms += 1;
            }
            used.extend(e.packed.fold_steps.iter().copied());
        }
        assert_eq!(transforms, 4 + 2, "2x2 blocks, then 1x2");
        assert_eq!(plan.rotation_steps, used.into_iter().collect::<Vec<_>>());
        assert_eq!(engine.weight_bytes(), plan.memory.plaintexts);
    }
}
