//! Latency-mode layout assignment: every step's output [`PackedLayout`], and every linear
//! layer's [`PackedLinear`] between its input's and its output's layouts.
//!
//! Rules:
//! * the input is contiguous (clients encrypt it without the model);
//! * a linear layer takes, of its candidate output layouts (contiguous, and for a `[C, H, W]`
//!   output the multiplexed ones of every gap that fits), the one of least modelled cost
//!   ([`LinearCost::weighted`]: rotations times [`ROTATION_COST`](super::packing::ROTATION_COST)
//!   plus diagonals times [`DIAGONAL_COST`](super::packing::DIAGONAL_COST)) given its input's
//!   layout; ties go to the earlier candidate, contiguous first;
//! * elementwise steps (activations, constant additions) and reshapes keep their input's
//!   layout (a reshape keeps the slots: the next layer reads the permuted positions);
//! * a residual addition needs both operands in one layout: where the greedy choice differs,
//!   one operand's producing linear layer is forced to the other's layout (of the two ways,
//!   the one of lower total cost);
//! * the network output is contiguous (clients decode it without the model), by forcing the
//!   linear layer producing it.
//!
//! If the constraints cannot be met by forcing (say, two operands that both trace back to the
//! input through elementwise steps only while one is multiplexed), every linear layer is
//! contiguous, which meets them all.

use super::packing::{LinearCost, Multiplexed, PackedLayout, PackedLinear};
use super::{Step, StepOp};
use crate::error::Result;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Largest gap tried.
const MAX_GAP: usize = 64;

/// Forced output layouts of linear steps.
type Forced = BTreeMap<usize, PackedLayout>;

/// Assigns every step's layout and every linear step's packing (latency mode); returns the
/// rotation steps the packed layers need.
pub(crate) fn assign_layouts(steps: &mut [Step], slots: usize) -> Result<BTreeSet<i64>> {
    let mut planner = Planner {
        steps,
        slots,
        costs: HashMap::new(),
    };
    let layouts = planner.solve()?;
    let mut rot = BTreeSet::new();
    for i in 0..steps.len() {
        let layout = layouts[i];
        let input = steps[i].inputs.first().map(|&j| layouts[j]);
        let s = &mut steps[i];
        s.layout = layout;
        if let (StepOp::Linear(l), Some(input)) = (&s.op, input) {
            let p = PackedLinear::new(l, &input, &layout, slots)?;
            rot.extend(p.rotation_steps()?);
            s.packed = Some(Arc::new(p));
        }
    }
    Ok(rot)
}

/// Candidate output layouts of a step of output shape `shape` and length `len`.
pub fn candidates(shape: &[usize], len: usize, slots: usize) -> Vec<PackedLayout> {
    let mut out = vec![PackedLayout::new(len, slots)];
    if let [c, h, w] = *shape {
        let mut g = 2;
        while g <= MAX_GAP && (g * g) / 4 < c {
            if let Ok(m) = Multiplexed::new([c, h, w], g) {
                if let Ok(l) = PackedLayout::multiplexed(m, slots) {
                    out.push(l);
                }
            }
            g *= 2;
        }
    }
    out
}

struct Planner<'a> {
    steps: &'a [Step],
    slots: usize,
    costs: HashMap<(usize, PackedLayout, PackedLayout), LinearCost>,
}

/// A constraint the greedy pass broke.
enum Violation {
    /// The operands of an addition in different layouts.
    Add(usize, usize),
    /// The output is not contiguous.
    Output,
}

impl Planner<'_> {
    fn solve(&mut self) -> Result<Vec<PackedLayout>> {
        let mut forced = Forced::new();
        for _ in 0..=self.steps.len() + 1 {
            let (layouts, _) = self.forward(&forced)?;
            let Some(v) = self.violation(&layouts) else {
                return Ok(layouts);
            };
            let mut options = Vec::new();
            match v {
                Violation::Add(a, b) => {
                    for (x, want) in [(b, layouts[a]), (a, layouts[b])] {
                        let mut f = forced.clone();
                        if self.require(x, want, &layouts, &mut f) {
                            options.push(f);
                        }
                    }
                }
                Violation::Output => {
                    let last = self.steps.len() - 1;
                    let want = PackedLayout::new(self.steps[last].len, self.slots);
                    let mut f = forced.clone();
                    if self.require(last, want, &layouts, &mut f) {
                        options.push(f);
                    }
                }
            }
            let mut best: Option<(usize, Forced)> = None;
            for f in options {
                let (_, cost) = self.forward(&f)?;
                if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                    best = Some((cost, f));
                }
            }
            match best {
                Some((_, f)) if f != forced => forced = f,
                _ => break,
            }
        }
        // Fallback: everything contiguous meets every constraint.
        let all: Forced = self
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.op, StepOp::Linear(_)))
            .map(|(i, s)| (i, PackedLayout::new(s.len, self.slots)))
            .collect();
        Ok(self.forward(&all)?.0)
    }

    /// The greedy pass under `forced`: layouts and the total modelled cost.
    fn forward(&mut self, forced: &Forced) -> Result<(Vec<PackedLayout>, usize)> {
        let mut layouts: Vec<PackedLayout> = Vec::with_capacity(self.steps.len());
        let mut total = 0;
        for (i, s) in self.steps.iter().enumerate() {
            let input = s.inputs.first().and_then(|&j| layouts.get(j)).copied();
            let layout = match (&s.op, input) {
                (StepOp::Linear(_), Some(inp)) => {
                    let cands = match forced.get(&i) {
                        Some(f) => vec![*f],
                        None => candidates(&s.shape, s.len, self.slots),
                    };
                    let mut best: Option<(usize, PackedLayout)> = None;
                    for c in cands {
                        let cost = self.cost(i, inp, c)?.weighted();
                        if best.is_none_or(|(b, _)| cost < b) {
                            best = Some((cost, c));
                        }
                    }
                    let (cost, l) = best.unwrap_or((0, PackedLayout::new(s.len, self.slots)));
                    total += cost;
                    l
                }
                (StepOp::Input, _) | (_, None) => PackedLayout::new(s.len, self.slots),
                (_, Some(inp)) => inp,
            };
            layouts.push(layout);
        }
        Ok((layouts, total))
    }

    fn cost(&mut self, i: usize, input: PackedLayout, output: PackedLayout) -> Result<LinearCost> {
        if let Some(c) = self.costs.get(&(i, input, output)) {
            return Ok(*c);
        }
        let c = match &self.steps[i].op {
            StepOp::Linear(l) => PackedLinear::estimate(l, &input, &output)?,
            _ => LinearCost::default(),
        };
        self.costs.insert((i, input, output), c);
        Ok(c)
    }

    fn violation(&self, layouts: &[PackedLayout]) -> Option<Violation> {
        for s in self.steps {
            if let (StepOp::Add, &[a, b]) = (&s.op, s.inputs.as_slice()) {
                if layouts.get(a) != layouts.get(b) {
                    return Some(Violation::Add(a, b));
                }
            }
        }
        match layouts.last() {
            Some(l) if !l.is_contiguous() => Some(Violation::Output),
            _ => None,
        }
    }

    /// Forces the linear layers producing step `x` (through elementwise steps, reshapes and
    /// additions) to output `want`; false when that is impossible (the input in another
    /// layout, or a layer already forced to another one).
    fn require(
        &self,
        x: usize,
        want: PackedLayout,
        layouts: &[PackedLayout],
        f: &mut Forced,
    ) -> bool {
        let mut stack = vec![x];
        let mut seen = BTreeSet::new();
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            let s = &self.steps[i];
            match &s.op {
                StepOp::Linear(_) => {
                    if f.get(&i).is_some_and(|l| *l != want) {
                        return false;
                    }
                    f.insert(i, want);
                }
                StepOp::Input => {
                    if layouts[i] != want {
                        return false;
                    }
                }
                StepOp::Add => stack.extend(s.inputs.iter().copied()),
                StepOp::AddConst(_)
                | StepOp::Square
                | StepOp::Poly { .. }
                | StepOp::Reshape
                | StepOp::Bootstrap { .. } => stack.extend(s.inputs.first().copied()),
            }
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_contiguous_then_the_gaps_that_fit() {
        let gaps = |shape: &[usize], slots| -> Vec<usize> {
            let len = shape.iter().product();
            candidates(shape, len, slots)
                .iter()
                .map(|l| l.gap())
                .collect()
        };
        // 32×16×16: gap 2 (8 blocks of 32×32), 4 (2 of 64×64), 8 (1 of 128×128, half full).
        assert_eq!(gaps(&[32, 16, 16], 32768), [1, 2, 4, 8]);
        // At 8192 slots gap 8 (16384 slots) does not fit.
        assert_eq!(gaps(&[32, 16, 16], 8192), [1, 2, 4]);
        // Not a [C, H, W] shape: contiguous only.
        assert_eq!(gaps(&[64], 32768), [1]);
        assert_eq!(gaps(&[4, 10], 32768), [1]);
    }
}
