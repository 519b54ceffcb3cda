//! ONNX import (PyTorch-style exports, opset >= 13) into a [`Network`].
//!
//! The protobuf messages are decoded with hand-written `prost` message structs covering the
//! subset of `onnx.proto` needed (no code generation, no `protoc`; unknown fields are skipped).
//!
//! Supported operators: `Conv` (1-D/2-D, stride, pads, dilations, group), `Gemm`, `MatMul`
//! (with a constant right operand), `Add` (bias folded into the preceding linear layer, or a
//! residual addition of two tensors), `Mul` (`Mul(x, x)` is a square; by a constant, folded),
//! `Pow(x, 2)`, `AveragePool`, `GlobalAveragePool`, `BatchNormalization` (folded into the
//! preceding linear layer), `Flatten`, `Reshape`, `Relu`/`Gelu`/`Sigmoid·x` -> polynomial
//! approximations, `Identity`/`Dropout` (inference no-ops), `Constant`. Anything else gives
//! [`NnError::UnsupportedOperator`] naming the operator and the node.

use crate::error::{shape_err, NnError, Result};
use crate::network::{Activation, Conv2dSpec, Linear, Network, Op};
use crate::poly::PolyFunction;
use std::collections::HashMap;
use std::path::Path;

/// `onnx.ModelProto` (subset).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// IR version.
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// Operator sets.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// Producer.
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// The graph.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
}

/// `onnx.OperatorSetIdProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// Domain ("" = ai.onnx).
    #[prost(string, tag = "1")]
    pub domain: String,
    /// Version.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `onnx.GraphProto` (subset).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// Nodes, topologically sorted.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// Name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Constant tensors.
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// Inputs (may include initializers in old exports).
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// Outputs.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// `onnx.NodeProto` (subset).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// Input value names.
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// Output value names.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// Node name.
    #[prost(string, tag = "3")]
    pub name: String,
    /// Operator.
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// Domain.
    #[prost(string, tag = "7")]
    pub domain: String,
    /// Attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// `onnx.AttributeProto` (subset: scalars, lists, tensors).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `AttributeType`.
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    /// Float.
    #[prost(float, tag = "2")]
    pub f: f32,
    /// Int.
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// Bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    /// Tensor.
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// Floats.
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    /// Ints.
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
}

/// `onnx.TensorProto` (subset).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Dimensions.
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    /// `DataType` (1 float, 6 int32, 7 int64, 11 double).
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// Float data.
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    /// Int32 data.
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    /// Int64 data.
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    /// Name.
    #[prost(string, tag = "8")]
    pub name: String,
    /// Raw little-endian data.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    /// Double data.
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    /// Where the data lives (1 = external: unsupported).
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

/// `onnx.ValueInfoProto` (subset).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Type.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// `onnx.TypeProto` (tensor types only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// Tensor type.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TensorTypeProto>,
}

/// `onnx.TypeProto.Tensor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorTypeProto {
    /// Element type.
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    /// Shape.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// `onnx.TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// Dimensions.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `onnx.TensorShapeProto.Dimension`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    /// Fixed size.
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    /// Symbolic size.
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

/// A constant tensor as `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f64>,
}

impl TensorProto {
    /// The values as `f64` (float, double, int32, int64; raw or typed fields).
    pub fn to_tensor(&self) -> Result<Tensor> {
        if self.data_location == 1 {
            return Err(NnError::Onnx(format!(
                "tensor {}: external data is not supported",
                self.name
            )));
        }
        let dims: Vec<usize> = self.dims.iter().map(|d| (*d).max(0) as usize).collect();
        let raw = &self.raw_data;
        let data: Vec<f64> = match self.data_type {
            1 if !raw.is_empty() => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect(),
            1 => self.float_data.iter().map(|v| *v as f64).collect(),
            11 if !raw.is_empty() => raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            11 => self.double_data.clone(),
            6 if !raw.is_empty() => raw
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect(),
            6 => self.int32_data.iter().map(|v| *v as f64).collect(),
            7 if !raw.is_empty() => raw
                .chunks_exact(8)
                .map(|c| {
                    i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64
                })
                .collect(),
            7 => self.int64_data.iter().map(|v| *v as f64).collect(),
            t => {
                return Err(NnError::Onnx(format!(
                    "tensor {}: data type {t} is not supported (float, double, int32, int64)",
                    self.name
                )))
            }
        };
        let n: usize = dims.iter().product();
        if data.len() != n {
            return Err(shape_err(format!("tensor {}", self.name), n, data.len()));
        }
        Ok(Tensor { dims, data })
    }
}

/// Import options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImportOptions {
    /// Degree of the polynomial replacing `Relu` (and `Gelu`, SiLU).
    pub activation_degree: usize,
    /// Interval half-width for those polynomials; `None`: measured by the planner.
    pub activation_bound: Option<f64>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            activation_degree: 7,
            activation_bound: None,
        }
    }
}

/// What happened to an ONNX node during import (for reports).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportNote {
    /// Node name.
    pub node: String,
    /// Operator.
    pub op: String,
    /// What it became.
    pub became: String,
}

/// An imported model: the network and a per-node import report.
#[derive(Debug, Clone)]
pub struct ImportedModel {
    /// The network (input shape without the batch dimension).
    pub network: Network,
    /// Per-node notes (folds, approximations).
    pub notes: Vec<ImportNote>,
    /// Opset version of the default domain.
    pub opset: i64,
}

/// Loads an ONNX file.
pub fn load_onnx(path: &Path, opts: &ImportOptions) -> Result<ImportedModel> {
    let bytes = std::fs::read(path).map_err(|source| NnError::Io {
        path: path.display().to_string(),
        source,
    })?;
    import_onnx(&bytes, opts)
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}
fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map(|a| a.i).unwrap_or(default)
}
fn attr_f(n: &NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).map(|a| a.f).unwrap_or(default)
}
fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<usize>> {
    attr(n, name).map(|a| a.ints.iter().map(|v| (*v).max(0) as usize).collect())
}

struct Importer<'a> {
    opts: &'a ImportOptions,
    net: Network,
    consts: HashMap<String, Tensor>,
    /// Value name -> node index.
    values: HashMap<String, usize>,
    /// Number of readers of each value name.
    readers: HashMap<String, usize>,
    notes: Vec<ImportNote>,
}

/// Imports an ONNX model from bytes.
pub fn import_onnx(bytes: &[u8], opts: &ImportOptions) -> Result<ImportedModel> {
    let model = <ModelProto as prost::Message>::decode(bytes)
        .map_err(|e| NnError::Onnx(format!("protobuf decoding failed: {e}")))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(0);
    if opset < 13 {
        return Err(NnError::Onnx(format!(
            "opset {opset} is not supported (need >= 13)"
        )));
    }
    let graph = model
        .graph
        .ok_or_else(|| NnError::Onnx("the model has no graph".into()))?;
    let mut consts = HashMap::new();
    for t in &graph.initializer {
        consts.insert(t.name.clone(), t.to_tensor()?);
    }
    let inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|v| !consts.contains_key(&v.name))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(NnError::Onnx(format!(
            "expected one graph input, found {}",
            inputs.len()
        )));
    };
    let dims: Vec<Option<i64>> = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .map(|s| s.dim.iter().map(|d| d.dim_value).collect())
        .ok_or_else(|| NnError::Onnx(format!("input {} has no tensor shape", input.name)))?;
    // Drop the batch dimension (symbolic or 1).
    let shape: Vec<usize> = dims
        .iter()
        .skip(1)
        .map(|d| {
            d.filter(|v| *v > 0).map(|v| v as usize).ok_or_else(|| {
                NnError::Onnx(format!(
                    "input {}: non-batch dimensions must be fixed",
                    input.name
                ))
            })
        })
        .collect::<Result<_>>()?;
    let mut readers: HashMap<String, usize> = HashMap::new();
    for n in &graph.node {
        for i in &n.input {
            *readers.entry(i.clone()).or_default() += 1;
        }
    }
    for o in &graph.output {
        *readers.entry(o.name.clone()).or_default() += 1;
    }
    let mut imp = Importer {
        opts,
        net: Network::new(&shape),
        consts,
        values: HashMap::from([(input.name.clone(), 0)]),
        readers,
        notes: Vec::new(),
    };
    for n in &graph.node {
        imp.node(n)?;
    }
    let [out] = graph.output.as_slice() else {
        return Err(NnError::Onnx(format!(
            "expected one graph output, found {}",
            graph.output.len()
        )));
    };
    let last = *imp
        .values
        .get(&out.name)
        .ok_or_else(|| NnError::Onnx(format!("output {} is not computed", out.name)))?;
    if last != imp.net.last() {
        let shape = imp.net.nodes[last].shape.clone();
        imp.net.push("output", Op::Reshape, vec![last], shape)?;
    }
    Ok(ImportedModel {
        network: imp.net,
        notes: imp.notes,
        opset,
    })
}

impl Importer<'_> {
    fn unsupported(n: &NodeProto, reason: impl Into<String>) -> NnError {
        NnError::UnsupportedOperator {
            op: n.op_type.clone(),
            node: node_name(n),
            reason: reason.into(),
        }
    }

    fn value(&self, n: &NodeProto, name: &str) -> Result<usize> {
        self.values.get(name).copied().ok_or_else(|| {
            Self::unsupported(
                n,
                format!(
                    "input `{name}` is neither a computed tensor nor handled as a constant here"
                ),
            )
        })
    }

    fn constant(&self, name: &str) -> Option<&Tensor> {
        self.consts.get(name)
    }

    fn note(&mut self, n: &NodeProto, became: impl Into<String>) {
        self.notes.push(ImportNote {
            node: node_name(n),
            op: n.op_type.clone(),
            became: became.into(),
        });
    }

    fn out(&mut self, n: &NodeProto, idx: usize) -> Result<()> {
        let o = n
            .output
            .first()
            .ok_or_else(|| NnError::Onnx(format!("node {} has no output", node_name(n))))?;
        self.values.insert(o.clone(), idx);
        Ok(())
    }

    /// If `src` is a linear node read only by this ONNX node, returns it for folding.
    fn foldable_linear(&self, n: &NodeProto, src_name: &str, src: usize) -> bool {
        self.readers.get(src_name).copied() == Some(1)
            && matches!(self.net.nodes[src].op, Op::Linear(_))
            && src == self.net.last()
            && n.input.first().map(String::as_str) == Some(src_name)
    }

    fn node(&mut self, n: &NodeProto) -> Result<()> {
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(Self::unsupported(
                n,
                format!("domain `{}` is not supported", n.domain),
            ));
        }
        let name = node_name(n);
        if n.input.first().is_none_or(String::is_empty) && n.op_type != "Constant" {
            return Err(Self::unsupported(n, "the node has no data input"));
        }
        match n.op_type.as_str() {
            "Constant" => {
                let t = attr(n, "value").and_then(|a| a.t.as_ref()).ok_or_else(|| Self::unsupported(n, "only tensor-valued Constant is supported"))?;
                let t = t.to_tensor()?;
                if let Some(o) = n.output.first() {
                    self.consts.insert(o.clone(), t);
                }
                Ok(())
            }
            "Identity" | "Dropout" => {
                let x = self.value(n, &n.input[0])?;
                self.note(n, "no-op at inference");
                self.out(n, x)
            }
            "Flatten" | "Reshape" => {
                let x = self.value(n, &n.input[0])?;
                let len = self.net.nodes[x].len();
                let shape = if n.op_type == "Flatten" {
                    let axis = attr_i(n, "axis", 1);
                    if axis != 1 {
                        return Err(Self::unsupported(n, format!("Flatten axis {axis}: only axis = 1 (keep the batch) is supported")));
                    }
                    vec![len]
                } else {
                    let s = n.input.get(1).and_then(|s| self.constant(s)).ok_or_else(|| Self::unsupported(n, "Reshape needs a constant shape"))?;
                    reshape_target(&s.data, &self.net.nodes[x].shape).map_err(|e| Self::unsupported(n, e))?
                };
                let idx = self.net.push(name, Op::Reshape, vec![x], shape)?;
                self.out(n, idx)
            }
            "Conv" => self.conv(n),
            "Gemm" | "MatMul" => self.gemm(n),
            "Add" | "Sub" => self.add(n),
            "Mul" => self.mul(n),
            "Pow" => {
                let x = self.value(n, &n.input[0])?;
                let e = n.input.get(1).and_then(|s| self.constant(s)).map(|t| t.data.clone());
                if e.as_deref() != Some(&[2.0]) {
                    return Err(Self::unsupported(n, "only Pow(x, 2) (a square) is supported"));
                }
                let shape = self.net.nodes[x].shape.clone();
                let idx = self.net.push(name, Op::Activation(Activation::Square), vec![x], shape)?;
                self.note(n, "square");
                self.out(n, idx)
            }
            "Relu" | "Gelu" => {
                let x = self.value(n, &n.input[0])?;
                let function = if n.op_type == "Relu" { PolyFunction::Relu } else { PolyFunction::Gelu };
                let a = Activation::Poly { function, degree: self.opts.activation_degree, bound: self.opts.activation_bound };
                let shape = self.net.nodes[x].shape.clone();
                let idx = self.net.push(name, Op::Activation(a), vec![x], shape)?;
                self.note(
                    n,
                    format!(
                        "polynomial approximation of degree {} (Chebyshev interpolation) on {}",
                        self.opts.activation_degree,
                        self.opts.activation_bound.map(|b| format!("[-{b}, {b}]")).unwrap_or_else(|| "an interval measured on calibration data".into())
                    ),
                );
                self.out(n, idx)
            }
            "AveragePool" => {
                let x = self.value(n, &n.input[0])?;
                let s = self.net.nodes[x].shape.clone();
                let [c, h, w] = <[usize; 3]>::try_from(s.as_slice()).map_err(|_| Self::unsupported(n, "only 2-D AveragePool on [C, H, W] is supported"))?;
                let k = attr_ints(n, "kernel_shape").ok_or_else(|| Self::unsupported(n, "kernel_shape missing"))?;
                let st = attr_ints(n, "strides").unwrap_or(vec![1, 1]);
                let p = attr_ints(n, "pads").unwrap_or(vec![0; 4]);
                check_auto_pad(n)?;
                if attr_i(n, "ceil_mode", 0) != 0 || k.len() != 2 || st.len() != 2 || p.len() != 4 {
                    return Err(Self::unsupported(n, "2-D kernel, strides, pads, ceil_mode = 0 required"));
                }
                let (l, out) = Linear::avg_pool2d([c, h, w], [k[0], k[1]], [st[0], st[1]], [p[0], p[1], p[2], p[3]], attr_i(n, "count_include_pad", 0) != 0)?;
                let idx = self.net.push(name, Op::Linear(l), vec![x], out.to_vec())?;
                self.note(n, "linear layer (averaging matrix)");
                self.out(n, idx)
            }
            "GlobalAveragePool" => {
                let x = self.value(n, &n.input[0])?;
                let s = self.net.nodes[x].shape.clone();
                let c = *s.first().ok_or_else(|| Self::unsupported(n, "input needs a channel dimension"))?;
                let spatial: usize = s[1..].iter().product();
                let l = Linear::global_avg_pool(c, spatial)?;
                let mut shape = vec![c];
                shape.extend(std::iter::repeat_n(1, s.len() - 1));
                let idx = self.net.push(name, Op::Linear(l), vec![x], shape)?;
                self.note(n, "linear layer (averaging matrix)");
                self.out(n, idx)
            }
            "BatchNormalization" => {
                let x = self.value(n, &n.input[0])?;
                let get = |i: usize| n.input.get(i).and_then(|s| self.constant(s)).map(|t| t.data.clone()).ok_or_else(|| Self::unsupported(n, "scale, B, mean and var must be constants"));
                let (g, b, m, v) = (get(1)?, get(2)?, get(3)?, get(4)?);
                let eps = attr_f(n, "epsilon", 1e-5) as f64;
                let a: Vec<f64> = g.iter().zip(&v).map(|(g, v)| g / (v + eps).sqrt()).collect();
                let c: Vec<f64> = b.iter().zip(&m).zip(&a).map(|((b, m), a)| b - m * a).collect();
                self.channel_affine(n, x, &a, &c, "BatchNorm")
            }
            op => Err(Self::unsupported(
                n,
                format!("`{op}` has no homomorphic evaluation here; supported: Conv, Gemm, MatMul, Add, Sub, Mul, Pow(x,2), AveragePool, GlobalAveragePool, BatchNormalization, Flatten, Reshape, Relu, Gelu, Identity, Dropout, Constant"),
            )),
        }
    }

    /// `y = a_c·x + c_c` per channel: folded into the previous linear layer when possible.
    fn channel_affine(
        &mut self,
        n: &NodeProto,
        x: usize,
        a: &[f64],
        c: &[f64],
        what: &str,
    ) -> Result<()> {
        let shape = self.net.nodes[x].shape.clone();
        let ch = *shape.first().unwrap_or(&1);
        let spatial: usize = shape.iter().skip(1).product();
        if a.len() != ch || c.len() != ch {
            return Err(shape_err(
                format!("{what} at {}", node_name(n)),
                ch,
                a.len(),
            ));
        }
        let full_a: Vec<f64> = (0..ch * spatial).map(|i| a[i / spatial]).collect();
        let full_c: Vec<f64> = (0..ch * spatial).map(|i| c[i / spatial]).collect();
        if self.foldable_linear(n, &n.input[0], x) {
            if let Op::Linear(l) = &mut self.net.nodes[x].op {
                l.fold_output_affine(&full_a, &full_c)?;
                l.kind = format!("{}+{what}", l.kind);
            }
            self.note(n, format!("{what} folded into the preceding linear layer"));
            return self.out(n, x);
        }
        let l = Linear::channel_affine(ch, spatial, a, c)?;
        let idx = self.net.push(node_name(n), Op::Linear(l), vec![x], shape)?;
        self.note(
            n,
            format!("{what} as a per-channel affine layer (could not be folded: one level)"),
        );
        self.out(n, idx)
    }

    fn conv(&mut self, n: &NodeProto) -> Result<()> {
        let x = self.value(n, &n.input[0])?;
        let w = n
            .input
            .get(1)
            .and_then(|s| self.constant(s))
            .cloned()
            .ok_or_else(|| Self::unsupported(n, "the weight must be a constant"))?;
        let b = n
            .input
            .get(2)
            .filter(|s| !s.is_empty())
            .map(|s| {
                self.constant(s)
                    .cloned()
                    .ok_or_else(|| Self::unsupported(n, "the bias must be a constant"))
            })
            .transpose()?;
        check_auto_pad(n)?;
        let groups = attr_i(n, "group", 1).max(1) as usize;
        let s = self.net.nodes[x].shape.clone();
        let (l, shape) = match (s.len(), w.dims.len()) {
            (3, 4) => {
                let k = [w.dims[2], w.dims[3]];
                let st = attr_ints(n, "strides").unwrap_or(vec![1, 1]);
                let p = attr_ints(n, "pads").unwrap_or(vec![0; 4]);
                let d = attr_ints(n, "dilations").unwrap_or(vec![1, 1]);
                if st.len() != 2 || p.len() != 4 || d.len() != 2 {
                    return Err(Self::unsupported(n, "malformed strides/pads/dilations"));
                }
                let spec = Conv2dSpec {
                    out_channels: w.dims[0],
                    kernel: k,
                    stride: [st[0], st[1]],
                    pads: [p[0], p[1], p[2], p[3]],
                    dilation: [d[0], d[1]],
                    groups,
                };
                let (l, o) = Linear::conv2d(
                    [s[0], s[1], s[2]],
                    &w.data,
                    &spec,
                    b.as_ref().map(|b| b.data.as_slice()),
                )?;
                (l, o.to_vec())
            }
            (2, 3) => {
                let st = attr_ints(n, "strides").unwrap_or(vec![1]);
                let p = attr_ints(n, "pads").unwrap_or(vec![0; 2]);
                let d = attr_ints(n, "dilations").unwrap_or(vec![1]);
                if st.len() != 1 || p.len() != 2 || d.len() != 1 {
                    return Err(Self::unsupported(n, "malformed strides/pads/dilations"));
                }
                let (l, o) = Linear::conv1d(
                    [s[0], s[1]],
                    &w.data,
                    w.dims[0],
                    w.dims[2],
                    st[0],
                    [p[0], p[1]],
                    d[0],
                    groups,
                    b.as_ref().map(|b| b.data.as_slice()),
                )?;
                (l, o.to_vec())
            }
            _ => {
                return Err(Self::unsupported(
                    n,
                    format!(
                        "input rank {} with weight rank {}: only Conv1d and Conv2d are supported",
                        s.len() + 1,
                        w.dims.len()
                    ),
                ))
            }
        };
        self.note(n, format!("{} as a sparse matrix", l.kind));
        let idx = self.net.push(node_name(n), Op::Linear(l), vec![x], shape)?;
        self.out(n, idx)
    }

    fn gemm(&mut self, n: &NodeProto) -> Result<()> {
        let x = self.value(n, &n.input[0])?;
        let in_len = self.net.nodes[x].len();
        let w = n
            .input
            .get(1)
            .and_then(|s| self.constant(s))
            .cloned()
            .ok_or_else(|| Self::unsupported(n, "the right operand must be a constant weight"))?;
        if w.dims.len() != 2 {
            return Err(Self::unsupported(n, "the weight must be a matrix"));
        }
        let gemm = n.op_type == "Gemm";
        let (alpha, beta) = if gemm {
            (
                attr_f(n, "alpha", 1.0) as f64,
                attr_f(n, "beta", 1.0) as f64,
            )
        } else {
            (1.0, 1.0)
        };
        if gemm && attr_i(n, "transA", 0) != 0 {
            return Err(Self::unsupported(n, "transA = 1 is not supported"));
        }
        let trans_b = gemm && attr_i(n, "transB", 0) != 0;
        let (out, k) = if trans_b {
            (w.dims[0], w.dims[1])
        } else {
            (w.dims[1], w.dims[0])
        };
        if k != in_len {
            return Err(shape_err(
                format!("{} at {}", n.op_type, node_name(n)),
                in_len,
                k,
            ));
        }
        // Row-major out x in.
        let wt: Vec<f64> = (0..out)
            .flat_map(|i| (0..k).map(move |j| (i, j)))
            .map(|(i, j)| {
                alpha
                    * if trans_b {
                        w.data[i * k + j]
                    } else {
                        w.data[j * out + i]
                    }
            })
            .collect();
        let bias = match n.input.get(2).filter(|s| !s.is_empty()) {
            Some(s) => {
                let c = self
                    .constant(s)
                    .ok_or_else(|| Self::unsupported(n, "the bias must be a constant"))?;
                Some(
                    broadcast(&c.data, out)
                        .ok_or_else(|| {
                            shape_err(format!("Gemm bias at {}", node_name(n)), out, c.data.len())
                        })?
                        .iter()
                        .map(|v| v * beta)
                        .collect::<Vec<_>>(),
                )
            }
            None => None,
        };
        let l = Linear::dense(&wt, out, k, bias.as_deref())?;
        self.note(
            n,
            format!("{} ({k}->{out})", if gemm { "Gemm" } else { "MatMul" }),
        );
        let idx = self
            .net
            .push(node_name(n), Op::Linear(l), vec![x], vec![out])?;
        self.out(n, idx)
    }

    fn add(&mut self, n: &NodeProto) -> Result<()> {
        let sign = if n.op_type == "Sub" { -1.0 } else { 1.0 };
        let (a, b) = (&n.input[0], n.input.get(1).cloned().unwrap_or_default());
        if let Some(c) = self.constant(&b).cloned() {
            let x = self.value(n, a)?;
            let len = self.net.nodes[x].len();
            let shape = self.net.nodes[x].shape.clone();
            let cv: Vec<f64> = broadcast_to(&c, &shape)
                .ok_or_else(|| {
                    Self::unsupported(
                        n,
                        format!(
                            "constant of shape {:?} does not broadcast to {shape:?}",
                            c.dims
                        ),
                    )
                })?
                .iter()
                .map(|v| v * sign)
                .collect();
            if self.foldable_linear(n, a, x) {
                if let Op::Linear(l) = &mut self.net.nodes[x].op {
                    l.fold_output_affine(&vec![1.0; len], &cv)?;
                }
                self.note(n, "bias folded into the preceding linear layer");
                return self.out(n, x);
            }
            let idx = self
                .net
                .push(node_name(n), Op::AddConst(cv), vec![x], shape)?;
            self.note(n, "constant addition");
            return self.out(n, idx);
        }
        if self.constant(a).is_some() {
            return Err(Self::unsupported(
                n,
                "a constant left operand is not supported; put the constant second",
            ));
        }
        let x = self.value(n, a)?;
        let y = self.value(n, &b)?;
        if sign < 0.0 {
            return Err(Self::unsupported(
                n,
                "Sub of two computed tensors is not supported",
            ));
        }
        let idx = self.net.add(x, y)?;
        self.net.nodes[idx].name = node_name(n);
        self.note(n, "residual addition");
        self.out(n, idx)
    }

    fn mul(&mut self, n: &NodeProto) -> Result<()> {
        let (a, b) = (&n.input[0], n.input.get(1).cloned().unwrap_or_default());
        if *a == b {
            let x = self.value(n, a)?;
            let shape = self.net.nodes[x].shape.clone();
            let idx = self.net.push(
                node_name(n),
                Op::Activation(Activation::Square),
                vec![x],
                shape,
            )?;
            self.note(n, "square");
            return self.out(n, idx);
        }
        if let Some(c) = self.constant(&b).cloned() {
            let x = self.value(n, a)?;
            let shape = self.net.nodes[x].shape.clone();
            let len = self.net.nodes[x].len();
            let cv = broadcast_to(&c, &shape).ok_or_else(|| {
                Self::unsupported(
                    n,
                    format!(
                        "constant of shape {:?} does not broadcast to {shape:?}",
                        c.dims
                    ),
                )
            })?;
            if self.foldable_linear(n, a, x) {
                if let Op::Linear(l) = &mut self.net.nodes[x].op {
                    l.fold_output_affine(&cv, &vec![0.0; len])?;
                }
                self.note(n, "constant scaling folded into the preceding linear layer");
                return self.out(n, x);
            }
            let rows = (0..len).map(|i| vec![(i, cv[i])]).collect();
            let l = Linear {
                kind: "Scale".into(),
                in_len: len,
                out_len: len,
                rows,
                bias: vec![0.0; len],
            };
            let idx = self.net.push(node_name(n), Op::Linear(l), vec![x], shape)?;
            self.note(n, "constant scaling (one level)");
            return self.out(n, idx);
        }
        Err(Self::unsupported(
            n,
            "only Mul(x, x) (a square) or Mul by a constant is supported",
        ))
    }
}

fn check_auto_pad(n: &NodeProto) -> Result<()> {
    match attr(n, "auto_pad").map(|a| String::from_utf8_lossy(&a.s).to_string()) {
        None => Ok(()),
        Some(s) if s.is_empty() || s == "NOTSET" || s == "VALID" => Ok(()),
        Some(s) => Err(Importer::unsupported(
            n,
            format!("auto_pad = {s}: give explicit pads"),
        )),
    }
}

fn node_name(n: &NodeProto) -> String {
    if n.name.is_empty() {
        n.output
            .first()
            .cloned()
            .unwrap_or_else(|| n.op_type.clone())
    } else {
        n.name.clone()
    }
}

fn broadcast(c: &[f64], len: usize) -> Option<Vec<f64>> {
    match c.len() {
        1 => Some(vec![c[0]; len]),
        l if l == len => Some(c.to_vec()),
        _ => None,
    }
}

/// Broadcasts a constant (scalar, per-element, or per-channel `[C,1,1]`) to `shape`.
fn broadcast_to(c: &Tensor, shape: &[usize]) -> Option<Vec<f64>> {
    let len: usize = shape.iter().product();
    let dims: Vec<usize> = c
        .dims
        .iter()
        .copied()
        .skip_while(|d| *d == 1 && c.dims.len() > shape.len())
        .collect();
    if c.data.len() == 1 || c.data.len() == len {
        return broadcast(&c.data, len);
    }
    let ch = *shape.first()?;
    if c.data.len() == ch && dims.first() == Some(&ch) {
        let spatial = len / ch;
        return Some((0..len).map(|i| c.data[i / spatial]).collect());
    }
    None
}

fn reshape_target(spec: &[f64], input: &[usize]) -> std::result::Result<Vec<usize>, String> {
    let len: usize = input.iter().product();
    let spec: Vec<i64> = spec.iter().map(|v| *v as i64).collect();
    let Some((&batch, rest)) = spec.split_first() else {
        return Err("empty target shape".into());
    };
    if batch != -1 && batch != 0 && batch != 1 {
        return Err(format!(
            "the first (batch) dimension must be 0, 1 or -1, found {batch}"
        ));
    }
    let mut out: Vec<usize> = Vec::new();
    let mut infer = None;
    for (i, &d) in rest.iter().enumerate() {
        match d {
            -1 => infer = Some(i),
            0 => out.push(*input.get(i).ok_or("0 refers to a missing dimension")?),
            d if d > 0 => out.push(d as usize),
            d => return Err(format!("invalid dimension {d}")),
        }
        if d == -1 {
            out.push(1);
        }
    }
    if batch == -1 && infer.is_some() {
        return Err("two inferred dimensions".into());
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !len.is_multiple_of(known) {
            return Err(format!(
                "cannot infer a dimension of {len} elements from {spec:?}"
            ));
        }
        out[i] = len / known;
    }
    if out.iter().product::<usize>() != len {
        return Err(format!(
            "target {spec:?} has a different element count than input {input:?}"
        ));
    }
    Ok(out)
}
