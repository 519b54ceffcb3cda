//! Networks as a small DAG of layers on flat (channel-major) vectors.
//!
//! Every linear layer — dense (Gemm/MatMul), Conv1d/Conv2d (stride, padding, dilation, groups),
//! average pooling, global average pooling, a folded BatchNorm — is lowered to one sparse
//! matrix plus a bias ([`Linear`]): the packing layouts then only ever see matrix–vector
//! products. Flatten/Reshape change the logical shape and nothing else.

use crate::error::{shape_err, NnError, Result};
use crate::poly::PolyFunction;

mod product;
pub(crate) use product::joined;

/// A sparse matrix (compressed rows) with a bias: `y = W·x + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// What the layer was (for reports), e.g. `Conv2d(1->4, k7, s3)`.
    pub kind: String,
    /// Input length.
    pub in_len: usize,
    /// Output length.
    pub out_len: usize,
    /// Row `i`: the nonzero `(column, weight)` pairs.
    pub rows: Vec<Vec<(usize, f64)>>,
    /// Bias, `out_len` values.
    pub bias: Vec<f64>,
}

impl Linear {
    /// A dense layer from a row-major `out_len x in_len` weight matrix (PyTorch `Linear`,
    /// ONNX `Gemm` with `transB = 1`) and a bias (`None`: zero).
    pub fn dense(
        weight: &[f64],
        out_len: usize,
        in_len: usize,
        bias: Option<&[f64]>,
    ) -> Result<Self> {
        if weight.len() != out_len * in_len {
            return Err(shape_err("dense weight", out_len * in_len, weight.len()));
        }
        let rows = (0..out_len)
            .map(|i| {
                (0..in_len)
                    .filter_map(|j| {
                        let w = weight[i * in_len + j];
                        (w != 0.0).then_some((j, w))
                    })
                    .collect()
            })
            .collect();
        Self::with_rows(
            format!("Dense({in_len}->{out_len})"),
            in_len,
            out_len,
            rows,
            bias,
        )
    }

    fn with_rows(
        kind: String,
        in_len: usize,
        out_len: usize,
        rows: Vec<Vec<(usize, f64)>>,
        bias: Option<&[f64]>,
    ) -> Result<Self> {
        let bias = match bias {
            Some(b) if b.len() == out_len => b.to_vec(),
            Some(b) => return Err(shape_err(format!("{kind} bias"), out_len, b.len())),
            None => vec![0.0; out_len],
        };
        Ok(Self {
            kind,
            in_len,
            out_len,
            rows,
            bias,
        })
    }

    /// A 2-D convolution (cross-correlation, as in PyTorch/ONNX `Conv`) on a `[C, H, W]`
    /// input, lowered to its sparse matrix. `weight` is `[O, C/groups, kh, kw]` row-major,
    /// `pads` = `[top, left, bottom, right]`. Returns the layer and the output shape
    /// `[O, OH, OW]`.
    pub fn conv2d(
        input: [usize; 3],
        weight: &[f64],
        spec: &Conv2dSpec,
        bias: Option<&[f64]>,
    ) -> Result<(Self, [usize; 3])> {
        let [c, h, w] = input;
        let Conv2dSpec {
            out_channels: o,
            kernel: [kh, kw],
            stride: [sh, sw],
            pads,
            dilation: [dh, dw],
            groups,
        } = *spec;
        if groups == 0 || c % groups != 0 || o % groups != 0 {
            return Err(shape_err(
                "conv groups",
                format!("a divisor of {c} and {o}"),
                groups,
            ));
        }
        if sh == 0 || sw == 0 || dh == 0 || dw == 0 {
            return Err(NnError::Invalid(
                "conv stride and dilation must be >= 1".into(),
            ));
        }
        let cg = c / groups;
        if weight.len() != o * cg * kh * kw {
            return Err(shape_err("conv weight", o * cg * kh * kw, weight.len()));
        }
        let (hp, wp) = (h + pads[0] + pads[2], w + pads[1] + pads[3]);
        let (ekh, ekw) = (dh * (kh - 1) + 1, dw * (kw - 1) + 1);
        if hp < ekh || wp < ekw {
            return Err(shape_err(
                "conv input",
                format!(">= kernel {ekh}x{ekw}"),
                format!("{hp}x{wp}"),
            ));
        }
        let (oh, ow) = ((hp - ekh) / sh + 1, (wp - ekw) / sw + 1);
        let og = o / groups;
        let mut rows = Vec::with_capacity(o * oh * ow);
        for oc in 0..o {
            let g = oc / og;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut row = Vec::new();
                    for ic in 0..cg {
                        let cin = g * cg + ic;
                        for ky in 0..kh {
                            let iy = (oy * sh + ky * dh) as isize - pads[0] as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = (ox * sw + kx * dw) as isize - pads[1] as isize;
                                if ix < 0 || ix >= w as isize {
                                    continue;
                                }
                                let wt = weight[((oc * cg + ic) * kh + ky) * kw + kx];
                                if wt != 0.0 {
                                    row.push(((cin * h + iy as usize) * w + ix as usize, wt));
                                }
                            }
                        }
                    }
                    row.sort_by_key(|e| e.0);
                    rows.push(row);
                }
            }
        }
        let bias_full: Option<Vec<f64>> = match bias {
            Some(b) if b.len() == o => Some(
                b.iter()
                    .flat_map(|v| std::iter::repeat_n(*v, oh * ow))
                    .collect(),
            ),
            Some(b) => return Err(shape_err("conv bias", o, b.len())),
            None => None,
        };
        let kind = format!("Conv2d({c}->{o}, k{kh}x{kw}, s{sh}x{sw}, p{pads:?}, g{groups})");
        let l = Self::with_rows(kind, c * h * w, o * oh * ow, rows, bias_full.as_deref())?;
        Ok((l, [o, oh, ow]))
    }

    /// A 1-D convolution on a `[C, L]` input (`weight` `[O, C/groups, k]`), as a 2-D one
    /// with height 1. Returns the layer and `[O, OL]`.
    #[allow(clippy::too_many_arguments)]
    pub fn conv1d(
        input: [usize; 2],
        weight: &[f64],
        out_channels: usize,
        kernel: usize,
        stride: usize,
        pads: [usize; 2],
        dilation: usize,
        groups: usize,
        bias: Option<&[f64]>,
    ) -> Result<(Self, [usize; 2])> {
        let spec = Conv2dSpec {
            out_channels,
            kernel: [1, kernel],
            stride: [1, stride],
            pads: [0, pads[0], 0, pads[1]],
            dilation: [1, dilation],
            groups,
        };
        let (mut l, [o, _, ol]) = Self::conv2d([input[0], 1, input[1]], weight, &spec, bias)?;
        l.kind = format!(
            "Conv1d({}->{o}, k{kernel}, s{stride}, p{pads:?}, g{groups})",
            input[0]
        );
        Ok((l, [o, ol]))
    }

    /// Average pooling over `[C, H, W]` (`pads` `[top, left, bottom, right]`; with
    /// `count_include_pad = false` border windows divide by the number of real pixels).
    pub fn avg_pool2d(
        input: [usize; 3],
        kernel: [usize; 2],
        stride: [usize; 2],
        pads: [usize; 4],
        count_include_pad: bool,
    ) -> Result<(Self, [usize; 3])> {
        let [c, h, w] = input;
        let (hp, wp) = (h + pads[0] + pads[2], w + pads[1] + pads[3]);
        if hp < kernel[0] || wp < kernel[1] || stride[0] == 0 || stride[1] == 0 {
            return Err(shape_err(
                "avg pool",
                format!("kernel <= padded input {hp}x{wp}, stride >= 1"),
                format!("kernel {kernel:?}, stride {stride:?}"),
            ));
        }
        let (oh, ow) = (
            (hp - kernel[0]) / stride[0] + 1,
            (wp - kernel[1]) / stride[1] + 1,
        );
        let mut rows = Vec::with_capacity(c * oh * ow);
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut row = Vec::new();
                    for ky in 0..kernel[0] {
                        for kx in 0..kernel[1] {
                            let iy = (oy * stride[0] + ky) as isize - pads[0] as isize;
                            let ix = (ox * stride[1] + kx) as isize - pads[1] as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                row.push(((ch * h + iy as usize) * w + ix as usize, 1.0));
                            }
                        }
                    }
                    let denom = if count_include_pad {
                        (kernel[0] * kernel[1]) as f64
                    } else {
                        row.len().max(1) as f64
                    };
                    row.iter_mut().for_each(|e| e.1 /= denom);
                    rows.push(row);
                }
            }
        }
        let kind = format!("AvgPool2d(k{kernel:?}, s{stride:?})");
        Ok((
            Self::with_rows(kind, c * h * w, c * oh * ow, rows, None)?,
            [c, oh, ow],
        ))
    }

    /// Global average pooling `[C, spatial...]` -> `[C]`.
    pub fn global_avg_pool(channels: usize, spatial: usize) -> Result<Self> {
        if spatial == 0 {
            return Err(shape_err("global average pool", "spatial size >= 1", 0));
        }
        let rows = (0..channels)
            .map(|ch| {
                (0..spatial)
                    .map(|p| (ch * spatial + p, 1.0 / spatial as f64))
                    .collect()
            })
            .collect();
        Self::with_rows(
            format!("GlobalAvgPool({channels}x{spatial})"),
            channels * spatial,
            channels,
            rows,
            None,
        )
    }

    /// A per-channel affine map `y = a_c·x + b_c` over `[C, spatial]` (an unfolded BatchNorm).
    pub fn channel_affine(channels: usize, spatial: usize, a: &[f64], b: &[f64]) -> Result<Self> {
        if a.len() != channels || b.len() != channels {
            return Err(shape_err(
                "channel affine",
                channels,
                format!("{} and {}", a.len(), b.len()),
            ));
        }
        let n = channels * spatial;
        let rows = (0..n).map(|i| vec![(i, a[i / spatial])]).collect();
        let bias: Vec<f64> = (0..n).map(|i| b[i / spatial]).collect();
        Self::with_rows(
            format!("ChannelAffine({channels}x{spatial})"),
            n,
            n,
            rows,
            Some(&bias),
        )
    }

    /// Folds a following per-output affine map into this layer: `y' = a ⊙ (W·x + b) + c`
    /// (BatchNorm folding; also how the planner folds an activation's `1/bound`).
    pub fn fold_output_affine(&mut self, a: &[f64], c: &[f64]) -> Result<()> {
        if a.len() != self.out_len || c.len() != self.out_len {
            return Err(shape_err(
                "folded affine",
                self.out_len,
                format!("{} and {}", a.len(), c.len()),
            ));
        }
        for (i, row) in self.rows.iter_mut().enumerate() {
            row.iter_mut().for_each(|e| e.1 *= a[i]);
            self.bias[i] = self.bias[i] * a[i] + c[i];
        }
        Ok(())
    }

    /// `W·x + b` in `f64`.
    pub fn apply(&self, x: &[f64]) -> Result<Vec<f64>> {
        if x.len() != self.in_len {
            return Err(shape_err(
                format!("{} input", self.kind),
                self.in_len,
                x.len(),
            ));
        }
        Ok(self
            .rows
            .iter()
            .zip(&self.bias)
            .map(|(row, b)| b + row.iter().map(|(j, w)| w * x[*j]).sum::<f64>())
            .collect())
    }

    /// Number of nonzero weights.
    pub fn nnz(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }
}

/// Hyper-parameters of a 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dSpec {
    /// Output channels `O`.
    pub out_channels: usize,
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Zero padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Dilation `[dh, dw]`.
    pub dilation: [usize; 2],
    /// Groups (1: dense convolution).
    pub groups: usize,
}

impl Conv2dSpec {
    /// `out_channels`, square kernel `k`, stride `s`, symmetric padding `p`, no dilation, one group.
    pub fn new(out_channels: usize, k: usize, s: usize, p: usize) -> Self {
        Self {
            out_channels,
            kernel: [k, k],
            stride: [s, s],
            pads: [p; 4],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// An activation.
#[derive(Debug, Clone, PartialEq)]
pub enum Activation {
    /// `x²` (CryptoNets): one multiplication, one level.
    Square,
    /// A function approximated by a polynomial of `degree` on `[-bound, bound]` (Chebyshev
    /// interpolation). `bound = None`: measured by the planner on calibration data.
    Poly {
        /// The function.
        function: PolyFunction,
        /// Polynomial degree.
        degree: usize,
        /// Half-width of the approximation interval, if stated by the user.
        bound: Option<f64>,
    },
}

/// The operation of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The network input (node 0 only).
    Input,
    /// `W·x + b`.
    Linear(Linear),
    /// Adds a constant vector (a bias that could not be folded).
    AddConst(Vec<f64>),
    /// Element-wise activation.
    Activation(Activation),
    /// Residual addition of the node's two inputs.
    Add,
    /// Flatten / Reshape: the data is unchanged (flat, channel-major), only the shape.
    Reshape,
}

/// A node: an operation, the nodes it reads, and its output shape (batch dimension excluded).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Name (ONNX node name or a generated one).
    pub name: String,
    /// Operation.
    pub op: Op,
    /// Input node indices (earlier nodes only).
    pub inputs: Vec<usize>,
    /// Output shape, batch excluded.
    pub shape: Vec<usize>,
}

impl Node {
    /// Number of elements of the output.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether the output is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A network: nodes in topological order, node 0 the input, the last node the output.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// The nodes.
    pub nodes: Vec<Node>,
}

impl Network {
    /// A network with only its input, of shape `input_shape` (batch excluded).
    pub fn new(input_shape: &[usize]) -> Self {
        Self {
            nodes: vec![Node {
                name: "input".into(),
                op: Op::Input,
                inputs: vec![],
                shape: input_shape.to_vec(),
            }],
        }
    }

    /// Index of the last node.
    pub fn last(&self) -> usize {
        self.nodes.len() - 1
    }

    /// Input shape.
    pub fn input_shape(&self) -> &[usize] {
        &self.nodes[0].shape
    }

    /// Output length.
    pub fn output_len(&self) -> usize {
        self.nodes[self.last()].len()
    }

    /// Appends a node reading `inputs`; checks shapes; returns its index.
    pub fn push(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: Vec<usize>,
        shape: Vec<usize>,
    ) -> Result<usize> {
        let name = name.into();
        let n = self.nodes.len();
        if inputs.iter().any(|&i| i >= n) || (inputs.is_empty() && op != Op::Input) {
            return Err(NnError::Invalid(format!(
                "node {name}: inputs {inputs:?} must name earlier nodes"
            )));
        }
        let in_len = |k: usize| self.nodes[inputs[k]].len();
        let out_len: usize = shape.iter().product();
        match &op {
            Op::Input => return Err(NnError::Invalid("only node 0 is the input".into())),
            Op::Linear(l) if l.in_len != in_len(0) || l.out_len != out_len => {
                return Err(shape_err(
                    format!("node {name} ({})", l.kind),
                    format!("{} -> {}", in_len(0), out_len),
                    format!("{} -> {}", l.in_len, l.out_len),
                ));
            }
            Op::AddConst(c) if c.len() != in_len(0) || out_len != in_len(0) => {
                return Err(shape_err(
                    format!("node {name} (AddConst)"),
                    in_len(0),
                    c.len(),
                ));
            }
            Op::Add if inputs.len() != 2 || in_len(0) != in_len(1) || out_len != in_len(0) => {
                return Err(shape_err(
                    format!("node {name} (Add)"),
                    "two inputs of the output's length",
                    format!("{inputs:?}"),
                ));
            }
            Op::Activation(_) | Op::Reshape | Op::AddConst(_) if out_len != in_len(0) => {
                return Err(shape_err(format!("node {name}"), in_len(0), out_len));
            }
            _ => {}
        }
        self.nodes.push(Node {
            name,
            op,
            inputs,
            shape,
        });
        Ok(n)
    }

    /// Appends a linear layer after the last node.
    pub fn linear(&mut self, l: Linear, shape: Vec<usize>) -> Result<usize> {
        let last = self.last();
        let name = format!("n{}_{}", self.nodes.len(), l.kind);
        self.push(name, Op::Linear(l), vec![last], shape)
    }

    /// Appends a dense layer (`out x in` row-major weights) after the last node.
    pub fn dense(&mut self, weight: &[f64], out_len: usize, bias: Option<&[f64]>) -> Result<usize> {
        let in_len = self.nodes[self.last()].len();
        let l = Linear::dense(weight, out_len, in_len, bias)?;
        self.linear(l, vec![out_len])
    }

    /// Appends a Conv2d after the last node (whose shape must be `[C, H, W]`).
    pub fn conv2d(
        &mut self,
        weight: &[f64],
        spec: &Conv2dSpec,
        bias: Option<&[f64]>,
    ) -> Result<usize> {
        let s = self.nodes[self.last()].shape.clone();
        let [c, h, w] = <[usize; 3]>::try_from(s.as_slice())
            .map_err(|_| shape_err("conv2d input", "[C, H, W]", format!("{s:?}")))?;
        let (l, out) = Linear::conv2d([c, h, w], weight, spec, bias)?;
        self.linear(l, out.to_vec())
    }

    /// Appends an activation after the last node.
    pub fn activation(&mut self, a: Activation) -> Result<usize> {
        let last = self.last();
        let shape = self.nodes[last].shape.clone();
        let name = format!("n{}_act", self.nodes.len());
        self.push(name, Op::Activation(a), vec![last], shape)
    }

    /// Appends a Flatten after the last node.
    pub fn flatten(&mut self) -> Result<usize> {
        let last = self.last();
        let len = self.nodes[last].len();
        self.push(
            format!("n{}_flatten", self.nodes.len()),
            Op::Reshape,
            vec![last],
            vec![len],
        )
    }

    /// Appends a residual addition of nodes `a` and `b`.
    pub fn add(&mut self, a: usize, b: usize) -> Result<usize> {
        let shape = self
            .nodes
            .get(a)
            .map(|n| n.shape.clone())
            .unwrap_or_default();
        self.push(
            format!("n{}_add", self.nodes.len()),
            Op::Add,
            vec![a, b],
            shape,
        )
    }

    /// Number of nodes reading each node (the output counts as one reader).
    pub fn consumers(&self) -> Vec<usize> {
        let mut c = vec![0; self.nodes.len()];
        for n in &self.nodes {
            for &i in &n.inputs {
                c[i] += 1;
            }
        }
        c[self.last()] += 1;
        c
    }

    /// Evaluates the network in `f64` with exact activations (the reference the polynomial
    /// approximations are measured against). Returns every node's output.
    pub fn forward_all(&self, x: &[f64]) -> Result<Vec<Vec<f64>>> {
        if x.len() != self.nodes[0].len() {
            return Err(shape_err("network input", self.nodes[0].len(), x.len()));
        }
        let mut vals: Vec<Vec<f64>> = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let v = match &n.op {
                Op::Input => x.to_vec(),
                Op::Linear(l) => l.apply(&vals[n.inputs[0]])?,
                Op::AddConst(c) => vals[n.inputs[0]]
                    .iter()
                    .zip(c)
                    .map(|(a, b)| a + b)
                    .collect(),
                Op::Activation(Activation::Square) => {
                    vals[n.inputs[0]].iter().map(|a| a * a).collect()
                }
                Op::Activation(Activation::Poly { function, .. }) => vals[n.inputs[0]]
                    .iter()
                    .map(|a| function.eval(*a))
                    .collect(),
                Op::Add => vals[n.inputs[0]]
                    .iter()
                    .zip(&vals[n.inputs[1]])
                    .map(|(a, b)| a + b)
                    .collect(),
                Op::Reshape => vals[n.inputs[0]].clone(),
            };
            vals.push(v);
        }
        Ok(vals)
    }

    /// The exact `f64` output.
    pub fn forward(&self, x: &[f64]) -> Result<Vec<f64>> {
        Ok(self.forward_all(x)?.pop().unwrap_or_default())
    }
}
