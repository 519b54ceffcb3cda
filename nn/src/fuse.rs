//! Fusion of consecutive affine steps of a [`Network`]: every unfused linear layer costs one
//! CKKS level, so two in a row become one.
//!
//! One forward pass over the DAG, in topological order. A node `q` that is a linear layer or
//! a constant addition absorbs the node `p` it reads when
//!
//! * `p` is a linear layer or a constant addition other than the input,
//! * `p` has exactly one reader (`q`, possibly through [`Op::Reshape`] nodes that have
//!   exactly one reader each; the network output counts as a reader), and
//! * for two linear layers, the product is not too large (below).
//!
//! The merged node takes `q`'s place and shape, reads `p`'s input and is named `"{p}+{q}"`
//! (names and kinds longer than 200 bytes are cut to `"…+{q}"`, so a long chain stays small);
//! `p` and the Reshapes between are removed and the remaining indices renumbered. Because the
//! pass runs forward, a chain `L1 → L2 → L3` fuses into one layer. The algebra:
//!
//! | `p`            | `q`            | merged                                   | levels saved |
//! |----------------|----------------|------------------------------------------|--------------|
//! | `W1·x + b1`    | `W2·y + b2`    | `(W2·W1)·x + (W2·b1 + b2)` ([`Linear::then`]) | 1      |
//! | `x + c`        | `W·y + b`      | `W·x + (W·c + b)`                         | 0            |
//! | `W·x + b`      | `y + c`        | `W·x + (b + c)`                           | 0            |
//! | `x + c1`       | `y + c2`       | `x + (c1 + c2)`                           | 0            |
//!
//! A per-channel affine map or constant `Mul` that could not fold into the layer before it
//! (it follows an activation) is a diagonal linear layer, so the first row folds it into the
//! following Conv/Gemm: `W·(a⊙x + c) + b = (W·diag(a))·x + (W·c + b)`, with exactly the
//! nonzeros of `W`.
//!
//! # When two linear layers stay apart
//!
//! With `n1`, `n2` the nonzeros of the two layers, `m` the multiply-adds of the product
//! ([`Linear::product_multiply_adds`], counted first, in `O(n1 + n2)`) and `n` its
//! structural nonzeros ([`Linear::product_nonzeros`], counted next, without allocating the
//! product), the pair is fused only if all of these hold ([`FusionRules`]):
//!
//! 1. `m <= max_layer_weights`, and the multiply-adds of all fusions so far `<= max_total_weights`
//!    (the work of the pass is bounded like the weights of the network);
//! 2. `n <= max_growth · (n1 + n2)` (default 16: a global average pool over 8×8 into a
//!    10-way classifier grows 8.6× and fuses; a 784→16→784 bottleneck grows 24× and does not);
//! 3. `n <= max_layer_weights`, and the network's weights after the fusion (the sum of its
//!    layers' nonzeros and constant entries) `<= max_total_weights`.
//!
//! Otherwise both layers are kept and the refusal is reported ([`Outcome::Kept`]). A
//! convolution followed by a global average pool, or by an average pool whose windows do not
//! overlap (stride >= kernel), always passes rule 2: each row of the product is the union of
//! the convolution rows it averages, and each convolution row is averaged at most once, so
//! the product has at most the convolution's nonzeros.
//!
//! ```
//! use he_nn::{fuse, Activation, Linear, Network};
//! # fn main() -> he_nn::Result<()> {
//! let mut net = Network::new(&[1, 4, 4]);
//! let (conv, s) = Linear::conv2d([1, 4, 4], &[0.5; 18], &he_nn::Conv2dSpec::new(2, 3, 1, 1), None)?;
//! net.linear(conv, s.to_vec())?;
//! let (pool, s) = Linear::avg_pool2d(s, [2, 2], [2, 2], [0; 4], false)?;
//! net.linear(pool, s.to_vec())?;
//! net.activation(Activation::Square)?;
//! let (fused, report) = fuse::fuse(net.clone(), &fuse::FusionRules::default())?;
//! assert_eq!(fused.nodes.len(), net.nodes.len() - 1);
//! assert_eq!(report.len(), 1);
//! let x: Vec<f64> = (0..16).map(|i| i as f64 / 8.0).collect();
//! let (a, b) = (fused.forward(&x)?, net.forward(&x)?);
//! assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() <= 1e-12 * b.abs().max(1.0)));
//! # Ok(()) }
//! ```
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::error::{NnError, Result};
use crate::network::{joined, Linear, Network, Node, Op};

/// Bounds on the fusions [`fuse`] performs (see the module documentation for the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FusionRules {
    /// Most nonzeros of a fused layer, and most multiply-adds to compute it (default 2^26,
    /// as `onnx::ImportLimits::max_layer_weights`).
    pub max_layer_weights: usize,
    /// Most weights of the network after a fusion, and most multiply-adds of all fusions
    /// together (default 2^27, as `onnx::ImportLimits::max_total_weights`).
    pub max_total_weights: usize,
    /// A fused layer may hold at most this many times the nonzeros of its two factors
    /// together (default 16).
    pub max_growth: usize,
}

impl Default for FusionRules {
    fn default() -> Self {
        Self {
            max_layer_weights: 1 << 26,
            max_total_weights: 1 << 27,
            max_growth: 16,
        }
    }
}

/// What happened to one candidate pair.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The two nodes are now one.
    Fused {
        /// Name of the merged node.
        name: String,
        /// What the merged node computes (its [`Linear::kind`], or `"constant addition"`).
        kind: String,
        /// Nonzeros of the merged layer (0 for a constant addition).
        nonzeros: usize,
        /// CKKS levels saved: 1 for two linear layers, 0 when a constant addition was folded.
        levels_saved: usize,
    },
    /// Both were kept.
    Kept {
        /// Which rule refused the fusion, with the numbers.
        reason: String,
    },
}

/// One fusion considered by [`fuse`]: node `first` feeding node `second`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fusion {
    /// The earlier node (absorbed when fused).
    pub first: String,
    /// The later node (the one that takes the merged operation).
    pub second: String,
    /// Fused or kept.
    pub outcome: Outcome,
}

impl Fusion {
    /// One line for a report, e.g. ``fused with the preceding `conv` into one linear layer
    /// `conv+pool` (Conv2d(...)+AvgPool2d(...), 48 nonzeros): one level saved``.
    pub fn describe(&self) -> String {
        match &self.outcome {
            Outcome::Fused {
                name,
                kind,
                nonzeros,
                levels_saved,
            } => {
                let saved = match levels_saved {
                    0 => "no level to save, one step fewer".to_string(),
                    1 => "one level saved".to_string(),
                    n => format!("{n} levels saved"),
                };
                format!(
                    "fused with the preceding `{}` into `{name}` ({kind}, {nonzeros} nonzeros): {saved}",
                    self.first
                )
            }
            Outcome::Kept { reason } => {
                format!("kept apart from the preceding `{}`: {reason}", self.first)
            }
        }
    }
}

/// Whether a node's operation is affine and fusable.
fn affine(op: &Op) -> bool {
    matches!(op, Op::Linear(_) | Op::AddConst(_))
}

/// Weights a node holds (nonzeros of a layer, entries of a constant).
fn weights(op: &Op) -> usize {
    match op {
        Op::Linear(l) => l.nnz(),
        Op::AddConst(c) => c.len(),
        _ => 0,
    }
}

/// Running totals of one pass.
struct Budget<'a> {
    rules: &'a FusionRules,
    /// Weights of the network as it stands.
    weights: usize,
    /// Multiply-adds of the fusions so far.
    work: usize,
}

impl Budget<'_> {
    /// `Ok(product)` or `Err(reason)` for two linear layers under the rules.
    fn linear_pair(
        &mut self,
        a: &Linear,
        b: &Linear,
    ) -> Result<std::result::Result<Linear, String>> {
        let r = self.rules;
        let m = a.product_multiply_adds(b)?;
        if m > r.max_layer_weights {
            return Ok(Err(format!(
                "the product takes {m} multiply-adds, more than max_layer_weights = {}",
                r.max_layer_weights
            )));
        }
        let work = self.work.saturating_add(m);
        if work > r.max_total_weights {
            return Ok(Err(format!(
                "the fusions would take {work} multiply-adds in all, more than max_total_weights = {}",
                r.max_total_weights
            )));
        }
        self.work = work;
        let (n1, n2) = (a.nnz(), b.nnz());
        let n = a.product_nonzeros(b)?;
        let allowed = r.max_growth.saturating_mul(n1.saturating_add(n2));
        if n > allowed {
            return Ok(Err(format!(
                "the product would hold {n} nonzeros, more than {} × ({n1} + {n2})",
                r.max_growth
            )));
        }
        if n > r.max_layer_weights {
            return Ok(Err(format!(
                "the product would hold {n} nonzeros, more than max_layer_weights = {}",
                r.max_layer_weights
            )));
        }
        let total = self.weights.saturating_sub(n1 + n2).saturating_add(n);
        if total > r.max_total_weights {
            return Ok(Err(format!(
                "the network would hold {total} weights, more than max_total_weights = {}",
                r.max_total_weights
            )));
        }
        let p = a.then(b)?;
        self.weights = total.saturating_sub(n).saturating_add(p.nnz());
        Ok(Ok(p))
    }
}

/// `Ok(Ok(merged))`, `Ok(Err(reason))` (kept apart), or an error for malformed layers.
fn merge(
    p: &Op,
    q: &Op,
    budget: &mut Budget<'_>,
) -> Result<std::result::Result<(Op, usize), String>> {
    let sum = |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(x, y)| x + y).collect() };
    Ok(Ok(match (p, q) {
        (Op::Linear(a), Op::Linear(b)) => match budget.linear_pair(a, b)? {
            Ok(l) => (Op::Linear(l), 1),
            Err(reason) => return Ok(Err(reason)),
        },
        (Op::AddConst(c), Op::Linear(b)) => {
            let mut l = b.clone();
            l.bias = b.apply(c)?;
            l.kind = joined("AddConst", &b.kind);
            budget.weights = budget.weights.saturating_sub(c.len());
            (Op::Linear(l), 0)
        }
        (Op::Linear(a), Op::AddConst(c)) => {
            let mut l = a.clone();
            l.fold_output_affine(&vec![1.0; a.out_len], c)?;
            l.kind = joined(&a.kind, "AddConst");
            budget.weights = budget.weights.saturating_sub(c.len());
            (Op::Linear(l), 0)
        }
        (Op::AddConst(c1), Op::AddConst(c2)) if c1.len() == c2.len() => {
            budget.weights = budget.weights.saturating_sub(c1.len());
            (Op::AddConst(sum(c1, c2)), 0)
        }
        _ => {
            return Err(NnError::Invalid(format!(
                "fusion of non-affine or mismatched nodes: {p:?} then {q:?}"
            )))
        }
    }))
}

/// The node `q` would absorb: walks back from `q`'s input through single-reader Reshapes.
/// Returns the affine node and the Reshapes passed, or `None`.
fn candidate(nodes: &[Node], consumers: &[usize], q: usize) -> Option<(usize, Vec<usize>)> {
    let mut p = *nodes.get(q)?.inputs.first()?;
    let mut between = Vec::new();
    loop {
        let node = nodes.get(p)?;
        if consumers.get(p) != Some(&1) || p == 0 {
            return None;
        }
        match &node.op {
            Op::Reshape => {
                between.push(p);
                p = *node.inputs.first()?;
            }
            op if affine(op) => return Some((p, between)),
            _ => return None,
        }
    }
}

/// Fuses consecutive affine nodes of `net` under `rules` (module documentation); returns the
/// fused network, which computes the same function, and every fusion considered, in order.
/// Errors only for a malformed network (a layer whose sizes disagree with itself).
pub fn fuse(net: Network, rules: &FusionRules) -> Result<(Network, Vec<Fusion>)> {
    let consumers = net.consumers();
    let mut nodes = net.nodes;
    let mut alive = vec![true; nodes.len()];
    let mut budget = Budget {
        rules,
        weights: nodes
            .iter()
            .map(|n| weights(&n.op))
            .fold(0usize, usize::saturating_add),
        work: 0,
    };
    let mut report = Vec::new();
    for q in 1..nodes.len() {
        if !nodes.get(q).is_some_and(|n| affine(&n.op)) {
            continue;
        }
        let Some((p, between)) = candidate(&nodes, &consumers, q) else {
            continue;
        };
        let name_of = |i: usize| nodes.get(i).map(|n| n.name.clone()).unwrap_or_default();
        let (first, second) = (name_of(p), name_of(q));
        let inputs = nodes.get(p).map(|n| n.inputs.clone()).unwrap_or_default();
        // Taken out, so that an absorbed layer is freed as soon as the product replaces it.
        let (Some(p_op), Some(q_op)) = (take_op(&mut nodes, p), take_op(&mut nodes, q)) else {
            continue;
        };
        let outcome = match merge(&p_op, &q_op, &mut budget)? {
            Ok((op, levels_saved)) => {
                drop((p_op, q_op));
                let name = joined(&first, &second);
                let (kind, nonzeros) = match &op {
                    Op::Linear(l) => (l.kind.clone(), l.nnz()),
                    _ => ("constant addition".to_string(), 0),
                };
                if let Some(qn) = nodes.get_mut(q) {
                    qn.op = op;
                    qn.inputs = inputs;
                    qn.name = name.clone();
                }
                for i in between.into_iter().chain([p]) {
                    if let Some(a) = alive.get_mut(i) {
                        *a = false;
                    }
                }
                Outcome::Fused {
                    name,
                    kind,
                    nonzeros,
                    levels_saved,
                }
            }
            Err(reason) => {
                for (i, op) in [(p, p_op), (q, q_op)] {
                    if let Some(n) = nodes.get_mut(i) {
                        n.op = op;
                    }
                }
                Outcome::Kept { reason }
            }
        };
        report.push(Fusion {
            first,
            second,
            outcome,
        });
    }
    Ok((compact(nodes, &alive)?, report))
}

/// Moves node `i`'s operation out (a placeholder `Reshape` left in its place).
fn take_op(nodes: &mut [Node], i: usize) -> Option<Op> {
    nodes
        .get_mut(i)
        .map(|n| std::mem::replace(&mut n.op, Op::Reshape))
}

/// Drops the nodes not `alive` and renumbers the inputs of the others.
fn compact(nodes: Vec<Node>, alive: &[bool]) -> Result<Network> {
    let mut new_index = vec![None; nodes.len()];
    let mut kept = Vec::with_capacity(nodes.len());
    for (i, mut n) in nodes.into_iter().enumerate() {
        if !alive.get(i).copied().unwrap_or(false) {
            continue;
        }
        for input in &mut n.inputs {
            *input = new_index.get(*input).copied().flatten().ok_or_else(|| {
                NnError::Invalid(format!(
                    "fusion: node {} reads node {input}, which was removed",
                    n.name
                ))
            })?;
        }
        if let Some(slot) = new_index.get_mut(i) {
            *slot = Some(kept.len());
        }
        kept.push(n);
    }
    Ok(Network { nodes: kept })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;
    use crate::network::Activation;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0))
    }

    #[test]
    fn a_chain_of_three_becomes_one_and_indices_are_renumbered() {
        let mut net = Network::new(&[3]);
        net.dense(&[1.0, 2.0, 0.0, -1.0, 0.5, 1.0], 2, Some(&[0.1, 0.2]))
            .unwrap();
        net.flatten().unwrap();
        net.dense(&[2.0, 1.0, 0.0, 3.0], 2, None).unwrap();
        net.dense(&[1.0, 1.0], 1, Some(&[-1.0])).unwrap();
        let sq = net.activation(Activation::Square).unwrap();
        net.add(sq, sq).unwrap();
        let (f, report) = fuse(net.clone(), &FusionRules::default()).unwrap();
        // input, fused linear, square, add.
        assert_eq!(f.nodes.len(), 4);
        assert_eq!(f.nodes[3].inputs, vec![2, 2]);
        assert_eq!(report.len(), 2);
        assert!(report.iter().all(|r| matches!(
            r.outcome,
            Outcome::Fused {
                levels_saved: 1,
                ..
            }
        )));
        let x = [0.3, -1.2, 2.0];
        assert!(close(&f.forward(&x).unwrap(), &net.forward(&x).unwrap()));
    }

    #[test]
    fn a_value_with_two_readers_is_not_fused() {
        let mut net = Network::new(&[2]);
        let a = net.dense(&[1.0, 2.0, 3.0, 4.0], 2, None).unwrap();
        let b = net.dense(&[1.0, 0.0, 0.0, 1.0], 2, None).unwrap();
        net.add(a, b).unwrap();
        let (f, report) = fuse(net.clone(), &FusionRules::default()).unwrap();
        assert_eq!(f, net);
        assert!(report.is_empty());
    }

    #[test]
    fn growth_and_limits_keep_layers_apart() {
        // 8 -> 1 -> 8: 16 nonzeros become 64.
        let mut net = Network::new(&[8]);
        net.dense(&[1.0; 8], 1, None).unwrap();
        net.dense(&[1.0; 8], 8, None).unwrap();
        let rules = FusionRules {
            max_growth: 3,
            ..FusionRules::default()
        };
        let (f, report) = fuse(net.clone(), &rules).unwrap();
        assert_eq!(f, net);
        assert!(
            matches!(&report[0].outcome, Outcome::Kept { reason } if reason.contains("3 × (8 + 8)")),
            "{report:?}"
        );
        let rules = FusionRules {
            max_layer_weights: 63,
            ..FusionRules::default()
        };
        let (f, report) = fuse(net.clone(), &rules).unwrap();
        assert_eq!(f, net);
        assert!(report[0].describe().contains("max_layer_weights"));
        let (f, _) = fuse(net.clone(), &FusionRules::default()).unwrap();
        assert_eq!(f.nodes.len(), 2);
        let x: Vec<f64> = (0..8).map(f64::from).collect();
        assert!(close(&f.forward(&x).unwrap(), &net.forward(&x).unwrap()));
    }

    #[test]
    fn a_long_chain_keeps_names_and_kinds_bounded() {
        let mut net = Network::new(&[1]);
        for _ in 0..300 {
            net.dense(&[1.001], 1, Some(&[0.01])).unwrap();
        }
        let (f, report) = fuse(net.clone(), &FusionRules::default()).unwrap();
        assert_eq!(f.nodes.len(), 2);
        assert_eq!(report.len(), 299);
        let Op::Linear(l) = &f.nodes[1].op else {
            panic!("{:?}", f.nodes[1])
        };
        assert!(l.kind.len() <= 200 && f.nodes[1].name.len() <= 200, "{l:?}");
        assert!(close(
            &f.forward(&[0.5]).unwrap(),
            &net.forward(&[0.5]).unwrap()
        ));
    }

    #[test]
    fn constants_fold_on_either_side() {
        let mut net = Network::new(&[2]);
        net.activation(Activation::Square).unwrap();
        let last = net.last();
        net.push("c1", Op::AddConst(vec![1.0, -2.0]), vec![last], vec![2])
            .unwrap();
        net.dense(&[1.0, 2.0, 3.0, 4.0], 2, Some(&[0.5, 0.5]))
            .unwrap();
        let last = net.last();
        net.push("c2", Op::AddConst(vec![3.0, 4.0]), vec![last], vec![2])
            .unwrap();
        let (f, report) = fuse(net.clone(), &FusionRules::default()).unwrap();
        assert_eq!(f.nodes.len(), 3);
        assert_eq!(report.len(), 2);
        assert!(report[0].describe().contains("no level to save"));
        let x = [0.7, -0.4];
        assert!(close(&f.forward(&x).unwrap(), &net.forward(&x).unwrap()));
    }
}
