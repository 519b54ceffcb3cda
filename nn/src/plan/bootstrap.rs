//! Bootstrap placement: where a deep network runs out of levels, the planner inserts
//! [`StepOp::Bootstrap`] steps (he-core's CKKS bootstrapping) and assigns every step its
//! level, in the spirit of Orion's automatic level management (Ebel, Garimella, Reagen,
//! ASPLOS 2025).
//!
//! # Algorithm
//!
//! The lowered steps are visited in topological order with the level each value is at
//! (inputs are encrypted at `L`, the levels a bootstrapped ciphertext has left). A step that
//! consumes `c` levels needs every input at a level `≥ c`; an input below that is bootstrapped
//! there, as late as possible, which on a chain minimises the number of bootstraps (a
//! bootstrap placed earlier could only leave fewer levels at the point where the next one
//! becomes necessary). A residual addition consumes no level and takes the lower of its
//! operands' levels (the engine aligns the other), so a skip connection is not bootstrapped
//! merely because the branch it meets was. A value read by several steps is bootstrapped once
//! and the result shared.
//!
//! # Value range
//!
//! Bootstrapping is precise for slot values in `[-1, 1]` (EvalMod approximates the modular
//! reduction around the message; larger values lose precision quadratically). The planner
//! bounds every bootstrapped value with the calibration data (the maximum over the calibration
//! inputs, times `bound_margin`) and divides it by `d` before bootstrapping and multiplies by
//! `m` after, both without a level:
//!
//! - the division re-labels the ciphertext's scale (`Δ → Δ·d`): the same residues now encrypt
//!   `v/d`, and bootstrapping's ScaleUp takes whatever scale it is given;
//! - the multiplication is by an integer (no rescale).
//!
//! Generally `d = m = 2^b` with `2^b ≥ bound`. When the only reader is a polynomial activation
//! `p(x/B)` whose `1/B` could not be folded into a linear layer, the bootstrap divides by `B`
//! itself and multiplies by nothing, which saves the activation its extra level.

use super::{cost, Step, StepOp};
use crate::error::{NnError, Result};
use he_core::circuits::bootstrapping::BootstrapConfig;

/// Whether and how the planner bootstraps (latency mode only).
#[derive(Debug, Clone, PartialEq)]
pub enum Bootstrapping {
    /// Never: the network must fit in one chain of a secure degree.
    Off,
    /// Only when the network fits no secure chain (latency mode, derived parameters): then
    /// with [`BootstrapPreset::N16Levels9`](he_core::circuits::bootstrapping::BootstrapPreset::N16Levels9),
    /// bootstraps placed automatically.
    Auto,
    /// Always with this configuration: its chain gives the parameters, and bootstraps are
    /// placed wherever the levels left after bootstrapping run out.
    With(BootstrapConfig),
}

/// The steps with the bootstraps inserted, and what the planner keeps per step.
#[derive(Debug)]
pub(super) struct Placed {
    /// Steps in topological order, bootstraps included, inputs renumbered.
    pub steps: Vec<Step>,
    /// Calibrated maximum `|value|` per step (0 without calibration).
    pub maxabs: Vec<f64>,
}

/// The value of every lowered step on one input, in `f64` (flat, unpacked): the exact function
/// the plan computes, folds and polynomial approximations included.
pub(super) fn lowered_forward(steps: &[Step], x: &[f64]) -> Result<Vec<Vec<f64>>> {
    let mut vals: Vec<Vec<f64>> = Vec::with_capacity(steps.len());
    for st in steps {
        let input = |k: usize| -> Result<&Vec<f64>> {
            st.inputs
                .get(k)
                .and_then(|&j| vals.get(j))
                .ok_or_else(|| NnError::Invalid(format!("internal: input {k} of {}", st.name)))
        };
        let v = match &st.op {
            StepOp::Input => x.to_vec(),
            StepOp::Linear(l) => l.apply(input(0)?)?,
            StepOp::AddConst(c) => input(0)?.iter().zip(c).map(|(a, b)| a + b).collect(),
            StepOp::Square => input(0)?.iter().map(|a| a * a).collect(),
            StepOp::Poly { poly, prescale } => input(0)?
                .iter()
                .map(|&v| poly.eval_normalized(if *prescale { v / poly.bound() } else { v }))
                .collect(),
            StepOp::Add => {
                let (a, b) = (input(0)?, input(1)?);
                a.iter().zip(b).map(|(x, y)| x + y).collect()
            }
            StepOp::Reshape => input(0)?.clone(),
            StepOp::Bootstrap { divide, multiply } => {
                let f = *multiply as f64 / *divide;
                input(0)?.iter().map(|v| v * f).collect()
            }
        };
        vals.push(v);
    }
    Ok(vals)
}

/// Maximum `|value|` per lowered step over the calibration inputs.
pub(super) fn lowered_maxabs(steps: &[Step], calibration: &[Vec<f64>]) -> Result<Vec<f64>> {
    let mut m = vec![0.0f64; steps.len()];
    for x in calibration {
        for (mi, v) in m.iter_mut().zip(lowered_forward(steps, x)?) {
            *mi = v.iter().fold(*mi, |a, b| a.max(b.abs()));
        }
    }
    Ok(m)
}

/// Inserts bootstraps into `steps` (whose inputs are encrypted at `top`) so that no step runs
/// out of levels; see the module documentation. `maxabs` bounds each step's value (from
/// [`lowered_maxabs`]; `None` without calibration data, when no bootstrap can be bounded),
/// `margin` is applied on top.
pub(super) fn place_bootstraps(
    steps: Vec<Step>,
    top: usize,
    maxabs: Option<&[f64]>,
    margin: f64,
) -> Result<Placed> {
    let n = steps.len();
    let mut readers = vec![0usize; n];
    for s in &steps {
        for &j in &s.inputs {
            if let Some(r) = readers.get_mut(j) {
                *r += 1;
            }
        }
    }
    let mut out: Vec<Step> = Vec::with_capacity(n);
    let mut levels: Vec<usize> = Vec::with_capacity(n);
    let mut out_max: Vec<f64> = Vec::with_capacity(n);
    let mut index_of = vec![0usize; n];
    // Shared bootstrap of an original value, by original index.
    let mut shared: Vec<Option<usize>> = vec![None; n];
    for (i, mut st) in steps.into_iter().enumerate() {
        let mut need = cost(&st.op);
        // An activation whose 1/B costs the level too many: its bootstrap will divide by B.
        let must_absorb = need > top
            && matches!(&st.op, StepOp::Poly { poly, prescale: true } if poly.depth() <= top);
        if need > top && !must_absorb {
            return Err(NnError::DepthExceeded {
                needed: need,
                available: top,
            });
        }
        if !matches!(st.op, StepOp::Input) {
            let originals = st.inputs.clone();
            let mut inputs = Vec::with_capacity(originals.len());
            for &j in &originals {
                let src = *index_of
                    .get(j)
                    .ok_or_else(|| NnError::Invalid(format!("internal: input {j} of step {i}")))?;
                if levels[src] >= need {
                    inputs.push(src);
                    continue;
                }
                let Some(maxabs) = maxabs else {
                    return Err(NnError::Invalid(format!(
                        "step {} needs a bootstrap of its input {}, and bootstrapping needs \
                         calibration inputs to bound the value (PlanOptions::calibration)",
                        st.name, out[src].name
                    )));
                };
                let bound = maxabs.get(j).copied().unwrap_or(0.0) * margin;
                // The only reader is an activation whose 1/B was not folded: divide by B here.
                let absorb = match &mut st.op {
                    StepOp::Poly { poly, prescale }
                        if *prescale && (readers[j] == 1 || must_absorb) =>
                    {
                        *prescale = false;
                        need = poly.depth();
                        Some(poly.bound())
                    }
                    _ => None,
                };
                let b = match absorb {
                    Some(bound) => bound,
                    None => match shared[j] {
                        Some(k) => {
                            inputs.push(k);
                            continue;
                        }
                        None => power_of_two_at_least(bound)?,
                    },
                };
                let (divide, multiply) = match absorb {
                    Some(_) => (b, 1),
                    None => (b, b as u64),
                };
                let k = out.len();
                out.push(Step {
                    name: format!("bootstrap({})", out[src].name),
                    op: StepOp::Bootstrap { divide, multiply },
                    inputs: vec![src],
                    len: out[src].len,
                    shape: out[src].shape.clone(),
                    level: top,
                    packed: None,
                    layout: out[src].layout,
                });
                levels.push(top);
                out_max.push(out_max[src] * multiply as f64 / divide);
                if absorb.is_none() {
                    shared[j] = Some(k);
                }
                inputs.push(k);
            }
            st.inputs = inputs;
        }
        let level = match &st.op {
            StepOp::Input => top,
            _ => {
                let inl =
                    st.inputs.iter().map(|&k| levels[k]).min().ok_or_else(|| {
                        NnError::Invalid(format!("step {} has no input", st.name))
                    })?;
                inl.checked_sub(need).ok_or_else(|| {
                    NnError::Invalid(format!("internal: step {} below level 0", st.name))
                })?
            }
        };
        index_of[i] = out.len();
        out_max.push(maxabs.and_then(|m| m.get(i)).copied().unwrap_or(0.0));
        levels.push(level);
        st.level = level;
        out.push(st);
    }
    Ok(Placed {
        steps: out,
        maxabs: out_max,
    })
}

/// The smallest power of two `≥ bound` (at least 1), as the divisor of a bootstrapped value.
fn power_of_two_at_least(bound: f64) -> Result<f64> {
    if !bound.is_finite() {
        return Err(NnError::Invalid(format!(
            "a bootstrapped value is unbounded on the calibration data ({bound})"
        )));
    }
    let b = bound.max(1.0).log2().ceil();
    if b > 20.0 {
        return Err(NnError::Invalid(format!(
            "a bootstrapped value reaches {bound:.3e} on the calibration data: above 2^20, \
             bootstrapping cannot keep its precision"
        )));
    }
    Ok(2f64.powi(b as i32))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::activation::Approximation;
    use crate::network::Linear;
    use crate::plan::PackedLayout;
    use crate::poly::{FittedPoly, PolyFunction};
    use std::sync::Arc;

    fn step(name: &str, op: StepOp, inputs: Vec<usize>) -> Step {
        Step {
            name: name.into(),
            op,
            inputs,
            len: 2,
            shape: vec![2],
            level: 0,
            packed: None,
            layout: PackedLayout::new(2, 8),
        }
    }

    fn lin() -> StepOp {
        StepOp::Linear(Arc::new(
            Linear::dense(&[1.0, 0.5, -0.5, 1.0], 2, 2, None).unwrap(),
        ))
    }

    /// A chain of six one-level layers with two levels per bootstrap: bootstraps before the
    /// 3rd and 5th layers, exactly, and every level in range.
    #[test]
    fn chain_bootstraps_as_late_as_possible() {
        let mut steps = vec![step("in", StepOp::Input, vec![])];
        for i in 1..=6 {
            steps.push(step(&format!("l{i}"), lin(), vec![i - 1]));
        }
        let p = place_bootstraps(steps, 2, Some(&[0.5; 7]), 1.1).unwrap();
        let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "in",
                "l1",
                "l2",
                "bootstrap(l2)",
                "l3",
                "l4",
                "bootstrap(l4)",
                "l5",
                "l6"
            ]
        );
        let levels: Vec<usize> = p.steps.iter().map(|s| s.level).collect();
        assert_eq!(levels, [2, 1, 0, 2, 1, 0, 2, 1, 0]);
        assert!(matches!(
            p.steps[3].op,
            StepOp::Bootstrap {
                divide: 1.0,
                multiply: 1
            }
        ));
    }

    /// A residual block: the skip connection is not bootstrapped, the add takes the lower
    /// level, a shared value is bootstrapped once, and an activation's 1/B is absorbed.
    #[test]
    fn residual_shares_and_absorbs() {
        let poly = Approximation::Interpolant(FittedPoly::fit(PolyFunction::Relu, 3, 5.0).unwrap());
        let steps = vec![
            step("in", StepOp::Input, vec![]),
            step("c1", lin(), vec![0]),
            step("c2", lin(), vec![1]),
            step("add", StepOp::Add, vec![2, 0]),
            step(
                "act",
                StepOp::Poly {
                    poly,
                    prescale: true,
                },
                vec![3],
            ),
        ];
        // Top 2: c1 at 1, c2 at 0, add at 0; act needs 3 levels with the prescale, 2 without.
        let p = place_bootstraps(steps, 2, Some(&[1.0, 1.0, 1.0, 3.0, 1.0]), 1.1).unwrap();
        let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["in", "c1", "c2", "add", "bootstrap(add)", "act"]);
        let levels: Vec<usize> = p.steps.iter().map(|s| s.level).collect();
        assert_eq!(levels, [2, 1, 0, 0, 2, 0]);
        match (&p.steps[4].op, &p.steps[5].op) {
            (StepOp::Bootstrap { divide, multiply }, StepOp::Poly { prescale, .. }) => {
                assert_eq!((*divide, *multiply), (5.0, 1));
                assert!(!prescale);
            }
            _ => panic!("unexpected ops"),
        }
        // Without calibration the planner refuses rather than guess the range.
        let steps2 = vec![
            step("in", StepOp::Input, vec![]),
            step("c1", lin(), vec![0]),
            step("c2", lin(), vec![1]),
        ];
        assert!(place_bootstraps(steps2, 1, None, 1.1).is_err());
    }

    /// A value read by two one-level layers is bootstrapped once, divided by the power of two
    /// above its bound.
    #[test]
    fn shared_bootstrap_scales_by_power_of_two() {
        let steps = vec![
            step("in", StepOp::Input, vec![]),
            step("c1", lin(), vec![0]),
            step("a", lin(), vec![1]),
            step("b", lin(), vec![1]),
            step("add", StepOp::Add, vec![2, 3]),
        ];
        let p = place_bootstraps(steps, 1, Some(&[1.0, 3.0, 1.0, 1.0, 1.0]), 1.1).unwrap();
        let boots: Vec<&Step> = p
            .steps
            .iter()
            .filter(|s| matches!(s.op, StepOp::Bootstrap { .. }))
            .collect();
        assert_eq!(boots.len(), 1);
        assert!(matches!(
            boots[0].op,
            StepOp::Bootstrap {
                divide: 4.0,
                multiply: 4
            }
        ));
        // A step needing more than a bootstrap leaves is refused.
        let poly = Approximation::Interpolant(FittedPoly::fit(PolyFunction::Relu, 7, 1.0).unwrap());
        let deep = vec![
            step("in", StepOp::Input, vec![]),
            step(
                "act",
                StepOp::Poly {
                    poly,
                    prescale: false,
                },
                vec![0],
            ),
        ];
        assert!(matches!(
            place_bootstraps(deep, 2, Some(&[1.0; 2]), 1.1),
            Err(NnError::DepthExceeded {
                needed: 3,
                available: 2
            })
        ));
    }
}
