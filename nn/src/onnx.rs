//! ONNX import (PyTorch-style exports, opset >= 13) into a [`Network`].
//!
//! The protobuf messages are decoded with hand-written `prost` message structs covering the
//! subset of `onnx.proto` needed (no code generation, no `protoc`; unknown fields are skipped).
//!
//! Supported operators (exactly the set [`import_onnx`] accepts): `Conv` (1-D/2-D, stride,
//! pads, dilations, group), `Gemm`, `MatMul` (with a constant right operand), `Add`/`Sub` (a
//! constant bias folded into the preceding linear layer, or a residual addition of two tensors),
//! `Mul` (`Mul(x, x)` is a square; by a constant, folded into the preceding or the following
//! linear layer), `Pow(x, 2)`, `AveragePool`, `GlobalAveragePool`, `BatchNormalization`
//! (folded into the preceding linear layer, or the following one), `Flatten`, `Reshape`,
//! `Relu`/`Gelu` -> polynomial approximations, `Identity`/`Dropout` (inference no-ops),
//! `Constant`. Anything else gives [`NnError::UnsupportedOperator`] naming the operator and
//! the node.
//!
//! # Fusions
//!
//! Every linear step left on its own costs one CKKS level, so the importer fuses what a
//! compiler would, and reports each fusion (and each refusal) in [`ImportedModel::notes`]:
//!
//! * while importing, a constant `Add`/`Sub`/`Mul` and a `BatchNormalization` right after a
//!   linear layer that nobody else reads fold into it (`a ⊙ (W·x + b) + c`);
//! * after importing, one pass over the network ([`crate::fuse::fuse`]) merges every linear
//!   layer or constant addition into the linear layer or constant addition that is its only
//!   reader (through `Flatten`/`Reshape`): `Conv → AveragePool` and `Conv →
//!   GlobalAveragePool` become one layer (`W2·W1`, bias `W2·b1 + b2`, [`Linear::then`]), and a
//!   per-channel affine or constant `Mul` after an activation folds into the following
//!   `Conv`/`Gemm` (`(W·diag(a))·x + (W·c + b)`). A product that would be too large (more
//!   than 16 times the nonzeros of its two factors, or over [`ImportLimits::max_layer_weights`]
//!   / [`ImportLimits::max_total_weights`]) is kept as two layers, with a note; the rules are
//!   in [`crate::fuse`]. [`import_model_unfused`] skips this pass.
//!
//! # Hostile files
//!
//! A model file is untrusted input. Every size is computed with checked arithmetic and checked
//! before anything is allocated: against the file itself (an initializer's declared shape must
//! match its data length exactly) and against the stated [`ImportLimits`] (file size, node
//! count, tensor rank, elements of any tensor and of all constants, weights of one lowered
//! layer and of the whole network). Convolution and pooling hyper-parameters are checked
//! against the input they apply to: every pad is at most the (dilated) kernel extent, the
//! kernel extent and the stride fit in the padded input, the padded input is itself within
//! `max_tensor_elements`, strides and dilations are at least 1 and the weight's shape agrees
//! with the input channels and `group`. Malformed files give [`NnError::Onnx`] or
//! [`NnError::Shape`], files over a limit [`NnError::LimitExceeded`] naming the limit; the
//! importer does not panic. [`import_onnx`] uses [`ImportLimits::default`];
//! [`import_onnx_with_limits`] (and [`import_model_with_limits`] for a decoded model) take
//! others, e.g. to accept a larger model:
//!
//! ```
//! use he_nn::onnx::{import_onnx_with_limits, ImportLimits, ImportOptions};
//! let mut limits = ImportLimits::default();
//! limits.max_tensor_elements = 1 << 26;
//! assert!(import_onnx_with_limits(b"not a model", &ImportOptions::default(), &limits).is_err());
//! ```
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::error::{shape_err, NnError, Result};
use crate::fuse;
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

/// Stated limits on what an imported model may ask for. A file over any of them is refused
/// with [`NnError::LimitExceeded`] naming the field, before the memory is allocated. The
/// defaults accept the shipped models with a wide margin (their largest tensor has 16,384
/// elements) and CIFAR/ImageNet-sized CNNs of the kind HE inference can run; raise a field by
/// name for a larger model:
///
/// ```
/// let mut limits = he_nn::onnx::ImportLimits::default();
/// limits.max_layer_weights = 1 << 28;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportLimits {
    /// Largest model file, in bytes (default 512 MiB).
    pub max_model_bytes: usize,
    /// Most nodes in the graph (default 10,000).
    pub max_nodes: usize,
    /// Highest rank of any tensor: initializers, constants, the input (batch included) and
    /// Reshape targets (default 8).
    pub max_rank: usize,
    /// Most elements of any one tensor: an initializer or constant, the graph input or an
    /// intermediate activation (default 2^24 = 16,777,216).
    pub max_tensor_elements: usize,
    /// Most weights of one lowered linear layer, counted as output length × window size
    /// (the nonzeros its sparse matrix may hold; 16 bytes each) (default 2^26 = 67,108,864).
    pub max_layer_weights: usize,
    /// Most weights and constant vector entries of the whole network, summed over its layers
    /// (default 2^27 = 134,217,728, about 2 GiB as `(column, weight)` pairs).
    pub max_total_weights: usize,
    /// Most elements of all initializers and `Constant` tensors together, as `f64` (default
    /// 2^27). (The protobuf decoding before it holds at most a small multiple of the file,
    /// itself bounded by `max_model_bytes`.)
    pub max_total_constant_elements: usize,
}

impl ImportLimits {
    /// The bounds of the importer's fusion pass: `max_layer_weights` and `max_total_weights`
    /// as here, the default growth factor ([`fuse::FusionRules`]).
    pub fn fusion_rules(&self) -> fuse::FusionRules {
        fuse::FusionRules {
            max_layer_weights: self.max_layer_weights,
            max_total_weights: self.max_total_weights,
            ..fuse::FusionRules::default()
        }
    }
}

impl Default for ImportLimits {
    fn default() -> Self {
        Self {
            max_model_bytes: 512 << 20,
            max_nodes: 10_000,
            max_rank: 8,
            max_tensor_elements: 1 << 24,
            max_layer_weights: 1 << 26,
            max_total_weights: 1 << 27,
            max_total_constant_elements: 1 << 27,
        }
    }
}

fn limit_err(
    what: impl Into<String>,
    limit_name: &'static str,
    limit: usize,
    found: Option<usize>,
) -> NnError {
    NnError::LimitExceeded {
        what: what.into(),
        limit_name,
        limit: limit as u64,
        found: found.map_or_else(|| "more than 2^64".to_string(), |f| f.to_string()),
    }
}

/// `Some(v)` when `v <= limit`, else the limit error (`None`: the computation overflowed);
/// `what` is only formatted for the error.
fn within<W: Into<String>>(
    v: Option<usize>,
    limit: usize,
    limit_name: &'static str,
    what: impl FnOnce() -> W,
) -> Result<usize> {
    match v {
        Some(v) if v <= limit => Ok(v),
        v => Err(limit_err(what(), limit_name, limit, v)),
    }
}

/// Product of `dims` (`None` on overflow).
fn product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |a, d| a.checked_mul(*d))
}

fn onnx_err(
    what: impl std::fmt::Display,
    expected: impl std::fmt::Display,
    found: impl std::fmt::Display,
) -> NnError {
    NnError::Onnx(format!("{what}: expected {expected}, found {found}"))
}

impl TensorProto {
    /// The values as `f64` (float, double, int32, int64; raw or typed fields), within
    /// [`ImportLimits::default`].
    pub fn to_tensor(&self) -> Result<Tensor> {
        self.to_tensor_with(&ImportLimits::default())
    }

    /// The values as `f64` within `limits`: the declared dims must be non-negative, of rank
    /// at most `max_rank`, with at most `max_tensor_elements` elements, and the data (raw
    /// bytes or the typed field) must hold exactly that many values. Checked before converting.
    pub fn to_tensor_with(&self, limits: &ImportLimits) -> Result<Tensor> {
        let what = || format!("tensor `{}`", self.name);
        if self.data_location == 1 {
            return Err(NnError::Onnx(format!(
                "{}: external data is not supported",
                what()
            )));
        }
        within(
            Some(self.dims.len()),
            limits.max_rank,
            "ImportLimits::max_rank",
            || format!("{}: rank", what()),
        )?;
        let dims: Vec<usize> = self
            .dims
            .iter()
            .map(|d| {
                usize::try_from(*d)
                    .map_err(|_| onnx_err(format!("{}: dims", what()), "dimensions >= 0", d))
            })
            .collect::<Result<_>>()?;
        let n = within(
            product(&dims),
            limits.max_tensor_elements,
            "ImportLimits::max_tensor_elements",
            || format!("{}: elements of shape {dims:?}", what()),
        )?;
        let raw = &self.raw_data;
        let (width, typed_len) = match self.data_type {
            1 => (4, self.float_data.len()),
            11 => (8, self.double_data.len()),
            6 => (4, self.int32_data.len()),
            7 => (8, self.int64_data.len()),
            t => {
                return Err(NnError::Onnx(format!(
                    "{}: data type {t} is not supported (1 float, 11 double, 6 int32, 7 int64)",
                    what()
                )))
            }
        };
        let found = if raw.is_empty() {
            typed_len
        } else {
            if !raw.len().is_multiple_of(width) {
                return Err(shape_err(
                    format!("{}: raw data", what()),
                    format!("a multiple of {width} bytes"),
                    format!("{} bytes", raw.len()),
                ));
            }
            raw.len() / width
        };
        if found != n {
            return Err(shape_err(
                format!("{}: values for shape {dims:?}", what()),
                n,
                found,
            ));
        }
        let data: Vec<f64> = match (self.data_type, raw.is_empty()) {
            (1, false) => raw
                .chunks_exact(4)
                .filter_map(|c| <[u8; 4]>::try_from(c).ok())
                .map(|c| f32::from_le_bytes(c) as f64)
                .collect(),
            (1, true) => self.float_data.iter().map(|v| *v as f64).collect(),
            (11, false) => raw
                .chunks_exact(8)
                .filter_map(|c| <[u8; 8]>::try_from(c).ok())
                .map(f64::from_le_bytes)
                .collect(),
            (11, true) => self.double_data.clone(),
            (6, false) => raw
                .chunks_exact(4)
                .filter_map(|c| <[u8; 4]>::try_from(c).ok())
                .map(|c| i32::from_le_bytes(c) as f64)
                .collect(),
            (6, true) => self.int32_data.iter().map(|v| *v as f64).collect(),
            (_, false) => raw
                .chunks_exact(8)
                .filter_map(|c| <[u8; 8]>::try_from(c).ok())
                .map(|c| i64::from_le_bytes(c) as f64)
                .collect(),
            (_, true) => self.int64_data.iter().map(|v| *v as f64).collect(),
        };
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

/// Loads an ONNX file within [`ImportLimits::default`].
pub fn load_onnx(path: &Path, opts: &ImportOptions) -> Result<ImportedModel> {
    load_onnx_with_limits(path, opts, &ImportLimits::default())
}

/// Loads an ONNX file within `limits` (the file size is checked before it is read).
pub fn load_onnx_with_limits(
    path: &Path,
    opts: &ImportOptions,
    limits: &ImportLimits,
) -> Result<ImportedModel> {
    let io = |source| NnError::Io {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    within(
        usize::try_from(len).ok(),
        limits.max_model_bytes,
        "ImportLimits::max_model_bytes",
        || format!("model file {}: bytes", path.display()),
    )?;
    let bytes = std::fs::read(path).map_err(io)?;
    import_onnx_with_limits(&bytes, opts, limits)
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

/// An `ints` attribute as `len` values `>= min` (the default when absent).
fn attr_ints(
    n: &NodeProto,
    name: &str,
    len: usize,
    min: usize,
    default: usize,
) -> Result<Vec<usize>> {
    let Some(a) = attr(n, name) else {
        return Ok(vec![default; len]);
    };
    let what = || format!("node `{}` ({}): attribute {name}", node_name(n), n.op_type);
    if a.ints.len() != len {
        return Err(onnx_err(what(), format!("{len} values"), a.ints.len()));
    }
    a.ints
        .iter()
        .map(|v| match usize::try_from(*v) {
            Ok(v) if v >= min => Ok(v),
            _ => Err(onnx_err(what(), format!("values >= {min}"), v)),
        })
        .collect()
}

/// Output extent of a convolution or pooling window along one axis, checked against the
/// input: every pad at most the dilated kernel extent, the extent and the stride within the
/// padded input (all with checked arithmetic), the padded input within `max_tensor_elements`.
#[allow(clippy::too_many_arguments)]
fn window_out(
    n: &NodeProto,
    axis: &str,
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pads: [usize; 2],
    limits: &ImportLimits,
) -> Result<usize> {
    let what = || format!("node `{}` ({}): {axis} axis", node_name(n), n.op_type);
    if kernel == 0 || stride == 0 || dilation == 0 {
        return Err(onnx_err(
            what(),
            "kernel, stride and dilation >= 1",
            format!("kernel {kernel}, stride {stride}, dilation {dilation}"),
        ));
    }
    let extent = (kernel - 1)
        .checked_mul(dilation)
        .and_then(|e| e.checked_add(1))
        .ok_or_else(|| onnx_err(what(), "a dilated kernel extent below 2^64", "an overflow"))?;
    if pads.iter().any(|p| *p > extent) {
        return Err(onnx_err(
            what(),
            format!("pads at most the kernel extent {extent}"),
            format!("pads {pads:?}"),
        ));
    }
    // pads <= extent, so this cannot overflow unless `input` is near 2^64 (checked anyway).
    let padded = input
        .checked_add(pads[0])
        .and_then(|v| v.checked_add(pads[1]))
        .ok_or_else(|| onnx_err(what(), "a padded size below 2^64", "an overflow"))?;
    // The padded input is a tensor itself: bounding it keeps every index computation of the
    // lowering (kernel offsets, dilations, pads) far from overflow.
    within(
        Some(padded),
        limits.max_tensor_elements,
        "ImportLimits::max_tensor_elements",
        || format!("{}: padded input size", what()),
    )?;
    if extent > padded || stride > padded {
        return Err(onnx_err(
            what(),
            format!("kernel extent and stride <= the padded input {padded}"),
            format!("kernel extent {extent}, stride {stride}"),
        ));
    }
    Ok((padded - extent) / stride + 1)
}

struct Importer<'a> {
    opts: &'a ImportOptions,
    limits: &'a ImportLimits,
    net: Network,
    consts: HashMap<&'a str, Tensor>,
    /// Value name -> node index.
    values: HashMap<&'a str, usize>,
    /// Number of readers of each value name.
    readers: HashMap<&'a str, usize>,
    notes: Vec<ImportNote>,
    /// Weights and constant entries of the layers built so far.
    total_weights: usize,
    /// Elements of the initializers and constants decoded so far.
    const_elements: usize,
}

/// Converts a constant, counting its elements against `max_total_constant_elements`.
fn add_constant(t: &TensorProto, limits: &ImportLimits, total: &mut usize) -> Result<Tensor> {
    let v = t.to_tensor_with(limits)?;
    *total = within(
        total.checked_add(v.data.len()),
        limits.max_total_constant_elements,
        "ImportLimits::max_total_constant_elements",
        || format!("tensor `{}`: constant elements in all so far", t.name),
    )?;
    Ok(v)
}

/// Imports an ONNX model from bytes within [`ImportLimits::default`].
pub fn import_onnx(bytes: &[u8], opts: &ImportOptions) -> Result<ImportedModel> {
    import_onnx_with_limits(bytes, opts, &ImportLimits::default())
}

/// Imports an ONNX model from bytes within `limits`.
pub fn import_onnx_with_limits(
    bytes: &[u8],
    opts: &ImportOptions,
    limits: &ImportLimits,
) -> Result<ImportedModel> {
    within(
        Some(bytes.len()),
        limits.max_model_bytes,
        "ImportLimits::max_model_bytes",
        || "model bytes",
    )?;
    let model = <ModelProto as prost::Message>::decode(bytes)
        .map_err(|e| NnError::Onnx(format!("protobuf decoding failed: {e}")))?;
    import_model_with_limits(&model, opts, limits)
}

/// Imports a decoded ONNX model within `limits` (all the checks of [`import_onnx_with_limits`]
/// but the file size), then fuses consecutive affine steps ([`crate::fuse`], under
/// [`ImportLimits::fusion_rules`]); each fusion considered adds one note, on the later node.
pub fn import_model_with_limits(
    model: &ModelProto,
    opts: &ImportOptions,
    limits: &ImportLimits,
) -> Result<ImportedModel> {
    let mut m = import_model_unfused(model, opts, limits)?;
    let ops: HashMap<String, &str> = model
        .graph
        .iter()
        .flat_map(|g| &g.node)
        .map(|n| (node_name(n), n.op_type.as_str()))
        .collect();
    let (network, fusions) = fuse::fuse(m.network, &limits.fusion_rules())?;
    m.network = network;
    m.notes.extend(fusions.iter().map(|f| {
        ImportNote {
            op: ops
                .get(&f.second)
                .map_or_else(|| "(generated)".to_string(), |o| o.to_string()),
            node: f.second.clone(),
            became: f.describe(),
        }
    }));
    Ok(m)
}

/// [`import_model_with_limits`] without the fusion pass: one node per ONNX operator that is
/// not folded at import (the reference the fused network is checked against, and the input
/// for [`fuse::fuse`] under other [`fuse::FusionRules`]).
pub fn import_model_unfused(
    model: &ModelProto,
    opts: &ImportOptions,
    limits: &ImportLimits,
) -> Result<ImportedModel> {
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(0);
    if opset < 13 {
        return Err(NnError::Onnx(format!(
            "opset: expected >= 13, found {opset}"
        )));
    }
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| NnError::Onnx("the model has no graph".into()))?;
    within(
        Some(graph.node.len()),
        limits.max_nodes,
        "ImportLimits::max_nodes",
        || "graph nodes",
    )?;
    let mut consts = HashMap::new();
    let mut const_elements = 0usize;
    for t in &graph.initializer {
        consts.insert(
            t.name.as_str(),
            add_constant(t, limits, &mut const_elements)?,
        );
    }
    let inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|v| !consts.contains_key(v.name.as_str()))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(onnx_err(
            "graph inputs (initializers excluded)",
            1,
            inputs.len(),
        ));
    };
    let dims: Vec<Option<i64>> = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .map(|s| s.dim.iter().map(|d| d.dim_value).collect())
        .ok_or_else(|| NnError::Onnx(format!("input {} has no tensor shape", input.name)))?;
    within(
        Some(dims.len()),
        limits.max_rank,
        "ImportLimits::max_rank",
        || format!("input {}: rank", input.name),
    )?;
    // Drop the batch dimension (symbolic or 1).
    let shape: Vec<usize> = dims
        .iter()
        .skip(1)
        .map(|d| {
            d.and_then(|v| usize::try_from(v).ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    onnx_err(
                        format!("input {}: non-batch dimension", input.name),
                        "a fixed size >= 1",
                        d.map_or_else(|| "a symbolic size".to_string(), |v| v.to_string()),
                    )
                })
        })
        .collect::<Result<_>>()?;
    within(
        product(&shape),
        limits.max_tensor_elements,
        "ImportLimits::max_tensor_elements",
        || format!("input {}: elements of shape {shape:?}", input.name),
    )?;
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for n in &graph.node {
        for i in &n.input {
            *readers.entry(i.as_str()).or_default() += 1;
        }
    }
    for o in &graph.output {
        *readers.entry(o.name.as_str()).or_default() += 1;
    }
    let mut imp = Importer {
        opts,
        limits,
        net: Network::new(&shape),
        consts,
        values: HashMap::from([(input.name.as_str(), 0)]),
        readers,
        notes: Vec::new(),
        total_weights: 0,
        const_elements,
    };
    for n in &graph.node {
        imp.node(n)?;
    }
    let [out] = graph.output.as_slice() else {
        return Err(onnx_err("graph outputs", 1, graph.output.len()));
    };
    let last = *imp
        .values
        .get(out.name.as_str())
        .ok_or_else(|| NnError::Onnx(format!("output {} is not computed", out.name)))?;
    if last != imp.net.last() {
        let shape = imp.shape(last);
        imp.net.push("output", Op::Reshape, vec![last], shape)?;
    }
    Ok(ImportedModel {
        network: imp.net,
        notes: imp.notes,
        opset,
    })
}

impl<'a> Importer<'a> {
    fn unsupported(n: &NodeProto, reason: impl Into<String>) -> NnError {
        NnError::UnsupportedOperator {
            op: n.op_type.clone(),
            node: node_name(n),
            reason: reason.into(),
        }
    }

    fn value(&self, n: &'a NodeProto, name: &str) -> Result<usize> {
        self.values.get(name).copied().ok_or_else(|| {
            Self::unsupported(
                n,
                format!(
                    "input `{name}` is neither a computed tensor nor handled as a constant here"
                ),
            )
        })
    }

    /// The node's first (data) input (checked non-empty in [`Self::node`]).
    fn first_input(n: &'a NodeProto) -> Result<&'a str> {
        n.input
            .first()
            .map(String::as_str)
            .ok_or_else(|| Self::unsupported(n, "the node has no data input"))
    }

    /// Shape of node `idx` (every index in `values` names a node).
    fn shape(&self, idx: usize) -> Vec<usize> {
        self.net
            .nodes
            .get(idx)
            .map(|n| n.shape.clone())
            .unwrap_or_default()
    }

    /// Element count of node `idx` (bounded by `max_tensor_elements` when it was pushed).
    fn len(&self, idx: usize) -> usize {
        self.net
            .nodes
            .get(idx)
            .and_then(|n| product(&n.shape))
            .unwrap_or(0)
    }

    fn constant(&self, name: &str) -> Option<&Tensor> {
        self.consts.get(name)
    }

    fn note(&mut self, n: &'a NodeProto, became: impl Into<String>) {
        self.notes.push(ImportNote {
            node: node_name(n),
            op: n.op_type.clone(),
            became: became.into(),
        });
    }

    fn out(&mut self, n: &'a NodeProto, idx: usize) -> Result<()> {
        let o = n
            .output
            .first()
            .ok_or_else(|| NnError::Onnx(format!("node {} has no output", node_name(n))))?;
        self.values.insert(o.as_str(), idx);
        Ok(())
    }

    /// Checks an output shape before the layer producing it is built: at least one element,
    /// at most `max_tensor_elements`; returns its length.
    fn check_shape(&self, n: &'a NodeProto, shape: &[usize]) -> Result<usize> {
        let len = within(
            product(shape),
            self.limits.max_tensor_elements,
            "ImportLimits::max_tensor_elements",
            || {
                format!(
                    "node `{}` ({}): output elements of shape {shape:?}",
                    node_name(n),
                    n.op_type
                )
            },
        )?;
        if len == 0 {
            return Err(onnx_err(
                format!("node `{}` ({}): output shape", node_name(n), n.op_type),
                "at least one element",
                format!("{shape:?}"),
            ));
        }
        Ok(len)
    }

    /// Reserves `weights` (a layer's weight bound) against the per-layer and total limits.
    fn reserve(&mut self, n: &'a NodeProto, weights: Option<usize>) -> Result<()> {
        let what = || format!("node `{}` ({}): layer weights", node_name(n), n.op_type);
        let w = within(
            weights,
            self.limits.max_layer_weights,
            "ImportLimits::max_layer_weights",
            what,
        )?;
        self.total_weights = within(
            self.total_weights.checked_add(w),
            self.limits.max_total_weights,
            "ImportLimits::max_total_weights",
            || format!("{} (network total so far)", what()),
        )?;
        Ok(())
    }

    /// If `src` is a linear node read only by this ONNX node, returns it for folding.
    fn foldable_linear(&self, n: &'a NodeProto, src_name: &str, src: usize) -> bool {
        self.readers.get(src_name).copied() == Some(1)
            && matches!(self.net.nodes.get(src).map(|s| &s.op), Some(Op::Linear(_)))
            && src == self.net.last()
            && n.input.first().map(String::as_str) == Some(src_name)
    }

    fn push(
        &mut self,
        n: &'a NodeProto,
        op: Op,
        inputs: Vec<usize>,
        shape: Vec<usize>,
    ) -> Result<usize> {
        self.check_shape(n, &shape)?;
        self.net.push(node_name(n), op, inputs, shape)
    }

    fn node(&mut self, n: &'a NodeProto) -> Result<()> {
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(Self::unsupported(
                n,
                format!("domain `{}` is not supported", n.domain),
            ));
        }
        if n.input.first().is_none_or(String::is_empty) && n.op_type != "Constant" {
            return Err(Self::unsupported(n, "the node has no data input"));
        }
        match n.op_type.as_str() {
            "Constant" => {
                let t = attr(n, "value").and_then(|a| a.t.as_ref()).ok_or_else(|| {
                    Self::unsupported(n, "only tensor-valued Constant is supported")
                })?;
                let t = add_constant(t, self.limits, &mut self.const_elements)?;
                if let Some(o) = n.output.first() {
                    self.consts.insert(o.as_str(), t);
                }
                Ok(())
            }
            "Identity" | "Dropout" => {
                let x = self.value(n, Self::first_input(n)?)?;
                self.note(n, "no-op at inference");
                self.out(n, x)
            }
            "Flatten" | "Reshape" => self.reshape(n),
            "Conv" => self.conv(n),
            "Gemm" | "MatMul" => self.gemm(n),
            "Add" | "Sub" => self.add(n),
            "Mul" => self.mul(n),
            "Pow" => {
                let x = self.value(n, Self::first_input(n)?)?;
                let e = n
                    .input
                    .get(1)
                    .and_then(|s| self.constant(s))
                    .map(|t| t.data.as_slice());
                if e != Some(&[2.0]) {
                    return Err(Self::unsupported(
                        n,
                        "only Pow(x, 2) (a square) is supported",
                    ));
                }
                let shape = self.shape(x);
                let idx = self.push(n, Op::Activation(Activation::Square), vec![x], shape)?;
                self.note(n, "square");
                self.out(n, idx)
            }
            "Relu" | "Gelu" => {
                let x = self.value(n, Self::first_input(n)?)?;
                let function = if n.op_type == "Relu" {
                    PolyFunction::Relu
                } else {
                    PolyFunction::Gelu
                };
                let a = Activation::Poly {
                    function,
                    degree: self.opts.activation_degree,
                    bound: self.opts.activation_bound,
                };
                let shape = self.shape(x);
                let idx = self.push(n, Op::Activation(a), vec![x], shape)?;
                self.note(
                    n,
                    format!(
                        "polynomial approximation of degree {} (Chebyshev interpolation) on {}",
                        self.opts.activation_degree,
                        self.opts
                            .activation_bound
                            .map(|b| format!("[-{b}, {b}]"))
                            .unwrap_or_else(|| "an interval measured on calibration data".into())
                    ),
                );
                self.out(n, idx)
            }
            "AveragePool" => self.avg_pool(n),
            "GlobalAveragePool" => {
                let x = self.value(n, Self::first_input(n)?)?;
                let s = self.shape(x);
                let Some((&c, rest)) = s.split_first() else {
                    return Err(Self::unsupported(n, "input needs a channel dimension"));
                };
                // The input's length is bounded by `max_tensor_elements`.
                let spatial = product(rest).unwrap_or(0);
                let mut shape = vec![c];
                shape.extend(std::iter::repeat_n(1, rest.len()));
                self.check_shape(n, &shape)?;
                self.reserve(n, c.checked_mul(spatial))?;
                let l = Linear::global_avg_pool(c, spatial)?;
                let idx = self.push(n, Op::Linear(l), vec![x], shape)?;
                self.note(n, "linear layer (averaging matrix)");
                self.out(n, idx)
            }
            "BatchNormalization" => {
                let x = self.value(n, Self::first_input(n)?)?;
                let ch = self.shape(x).first().copied().unwrap_or(1);
                let get = |i: usize| {
                    let t = n
                        .input
                        .get(i)
                        .and_then(|s| self.constant(s))
                        .ok_or_else(|| {
                            Self::unsupported(n, "scale, B, mean and var must be constants")
                        })?;
                    if t.data.len() != ch {
                        return Err(shape_err(
                            format!("BatchNormalization input {i} at {}", node_name(n)),
                            ch,
                            t.data.len(),
                        ));
                    }
                    Ok(t.data.clone())
                };
                let (g, b, m, v) = (get(1)?, get(2)?, get(3)?, get(4)?);
                let eps = attr_f(n, "epsilon", 1e-5) as f64;
                let a: Vec<f64> = g
                    .iter()
                    .zip(&v)
                    .map(|(g, v)| g / (v + eps).sqrt())
                    .collect();
                let c: Vec<f64> = b
                    .iter()
                    .zip(&m)
                    .zip(&a)
                    .map(|((b, m), a)| b - m * a)
                    .collect();
                self.channel_affine(n, x, &a, &c, "BatchNorm")
            }
            op => Err(Self::unsupported(
                n,
                format!(
                    "`{op}` has no homomorphic evaluation here; supported: {}",
                    SUPPORTED_OPERATORS.join(", ")
                ),
            )),
        }
    }

    fn reshape(&mut self, n: &'a NodeProto) -> Result<()> {
        let x = self.value(n, Self::first_input(n)?)?;
        let shape = if n.op_type == "Flatten" {
            let axis = attr_i(n, "axis", 1);
            if axis != 1 {
                return Err(Self::unsupported(
                    n,
                    format!("Flatten axis {axis}: only axis = 1 (keep the batch) is supported"),
                ));
            }
            vec![self.len(x)]
        } else {
            let s = n
                .input
                .get(1)
                .and_then(|s| self.constant(s))
                .ok_or_else(|| Self::unsupported(n, "Reshape needs a constant shape"))?;
            if s.data.len() > self.limits.max_rank {
                return Err(limit_err(
                    format!("node `{}` (Reshape): target rank", node_name(n)),
                    "ImportLimits::max_rank",
                    self.limits.max_rank,
                    Some(s.data.len()),
                ));
            }
            reshape_target(&s.data, &self.shape(x)).map_err(|e| Self::unsupported(n, e))?
        };
        let idx = self.push(n, Op::Reshape, vec![x], shape)?;
        self.out(n, idx)
    }

    /// `y = a_c·x + c_c` per channel: folded into the previous linear layer when possible.
    fn channel_affine(
        &mut self,
        n: &'a NodeProto,
        x: usize,
        a: &[f64],
        c: &[f64],
        what: &str,
    ) -> Result<()> {
        let shape = self.shape(x);
        let ch = shape.first().copied().unwrap_or(1);
        // Bounded by `max_tensor_elements` (the input's length).
        let spatial = shape.get(1..).and_then(product).unwrap_or(1);
        let len = self.len(x);
        if a.len() != ch || c.len() != ch || ch == 0 || spatial == 0 {
            return Err(shape_err(
                format!("{what} at {}", node_name(n)),
                ch,
                a.len(),
            ));
        }
        let per_channel = |v: &[f64]| -> Vec<f64> {
            v.iter()
                .flat_map(|x| std::iter::repeat_n(*x, spatial))
                .collect()
        };
        let src = Self::first_input(n)?;
        if self.foldable_linear(n, src, x) {
            self.reserve(n, len.checked_mul(2))?;
            let (full_a, full_c) = (per_channel(a), per_channel(c));
            if let Some(Op::Linear(l)) = self.net.nodes.get_mut(x).map(|s| &mut s.op) {
                l.fold_output_affine(&full_a, &full_c)?;
                l.kind = format!("{}+{what}", l.kind);
            }
            self.note(n, format!("{what} folded into the preceding linear layer"));
            return self.out(n, x);
        }
        self.reserve(n, len.checked_mul(2))?;
        let l = Linear::channel_affine(ch, spatial, a, c)?;
        let idx = self.push(n, Op::Linear(l), vec![x], shape)?;
        self.note(
            n,
            format!(
                "{what} as a per-channel affine layer (could not be folded into the layer before: \
                 one level, unless fused into the layer after)"
            ),
        );
        self.out(n, idx)
    }

    fn conv(&mut self, n: &'a NodeProto) -> Result<()> {
        let x = self.value(n, Self::first_input(n)?)?;
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
        let s = self.shape(x);
        let what = || format!("node `{}` (Conv)", node_name(n));
        // 1-D is lowered as 2-D with height 1.
        let (conv1d, [c, h, wd], [o, cg, kh, kw]) = match (s.as_slice(), w.dims.as_slice()) {
            (&[c, h, wd], &[o, cg, kh, kw]) => (false, [c, h, wd], [o, cg, kh, kw]),
            (&[c, l], &[o, cg, k]) => (true, [c, 1, l], [o, cg, 1, k]),
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
        let axes = if conv1d { 1 } else { 2 };
        let group = attr_i(n, "group", 1);
        let groups = usize::try_from(group)
            .ok()
            .filter(|g| *g >= 1 && c % g == 0 && o % g == 0)
            .ok_or_else(|| {
                onnx_err(
                    format!("{}: group", what()),
                    format!("a divisor of {c} and {o}"),
                    group,
                )
            })?;
        if o == 0 || cg.checked_mul(groups) != Some(c) {
            return Err(shape_err(
                format!("{}: weight [O, C/group, kernel...]", what()),
                format!("O >= 1 and C/group = {c}/{groups}"),
                format!("{:?}", w.dims),
            ));
        }
        if let Some(k) = attr(n, "kernel_shape") {
            let want: Vec<i64> = if conv1d {
                vec![kw as i64]
            } else {
                vec![kh as i64, kw as i64]
            };
            if k.ints != want {
                return Err(onnx_err(
                    format!("{}: kernel_shape", what()),
                    format!("{want:?} (the weight's)"),
                    format!("{:?}", k.ints),
                ));
            }
        }
        let st = attr_ints(n, "strides", axes, 1, 1)?;
        let p = attr_ints(n, "pads", 2 * axes, 0, 0)?;
        let d = attr_ints(n, "dilations", axes, 1, 1)?;
        // [sh, sw], [top, left, bottom, right], [dh, dw] (1-D: height axis trivial).
        let (st, p, d) = match (st.as_slice(), p.as_slice(), d.as_slice()) {
            (&[sw], &[pl, pr], &[dw]) => ([1, sw], [0, pl, 0, pr], [1, dw]),
            (&[sh, sw], &[pt, pl, pb, pr], &[dh, dw]) => ([sh, sw], [pt, pl, pb, pr], [dh, dw]),
            _ => return Err(Self::unsupported(n, "malformed strides/pads/dilations")),
        };
        let oh = window_out(n, "height", h, kh, st[0], d[0], [p[0], p[2]], self.limits)?;
        let ow = window_out(n, "width", wd, kw, st[1], d[1], [p[1], p[3]], self.limits)?;
        let out_shape = if conv1d { vec![o, ow] } else { vec![o, oh, ow] };
        let out_len = self.check_shape(n, &out_shape)?;
        // Each output reads one window of C/group x kh x kw inputs.
        self.reserve(n, product(&[out_len, cg, kh, kw]))?;
        if let Some(b) = &b {
            if b.data.len() != o {
                return Err(shape_err(format!("{}: bias", what()), o, b.data.len()));
            }
        }
        let bias = b.as_ref().map(|b| b.data.as_slice());
        let l = if conv1d {
            Linear::conv1d(
                [c, wd],
                &w.data,
                o,
                kw,
                st[1],
                [p[1], p[3]],
                d[1],
                groups,
                bias,
            )?
            .0
        } else {
            let spec = Conv2dSpec {
                out_channels: o,
                kernel: [kh, kw],
                stride: st,
                pads: p,
                dilation: d,
                groups,
            };
            Linear::conv2d([c, h, wd], &w.data, &spec, bias)?.0
        };
        self.note(n, format!("{} as a sparse matrix", l.kind));
        let idx = self.push(n, Op::Linear(l), vec![x], out_shape)?;
        self.out(n, idx)
    }

    fn avg_pool(&mut self, n: &'a NodeProto) -> Result<()> {
        let x = self.value(n, Self::first_input(n)?)?;
        let s = self.shape(x);
        let [c, h, w] = <[usize; 3]>::try_from(s.as_slice())
            .map_err(|_| Self::unsupported(n, "only 2-D AveragePool on [C, H, W] is supported"))?;
        check_auto_pad(n)?;
        if attr(n, "kernel_shape").is_none() {
            return Err(Self::unsupported(n, "kernel_shape missing"));
        }
        if attr_i(n, "ceil_mode", 0) != 0 {
            return Err(Self::unsupported(
                n,
                "2-D kernel, strides, pads, ceil_mode = 0 required",
            ));
        }
        if attr_ints(n, "dilations", 2, 1, 1)? != [1, 1] {
            return Err(Self::unsupported(n, "dilated AveragePool is not supported"));
        }
        let k = attr_ints(n, "kernel_shape", 2, 1, 1)?;
        let st = attr_ints(n, "strides", 2, 1, 1)?;
        let p = attr_ints(n, "pads", 4, 0, 0)?;
        let (&[kh, kw], &[sh, sw], &[pt, pl, pb, pr]) = (k.as_slice(), st.as_slice(), p.as_slice())
        else {
            return Err(Self::unsupported(
                n,
                "2-D kernel, strides, pads, ceil_mode = 0 required",
            ));
        };
        let oh = window_out(n, "height", h, kh, sh, 1, [pt, pb], self.limits)?;
        let ow = window_out(n, "width", w, kw, sw, 1, [pl, pr], self.limits)?;
        let out_shape = vec![c, oh, ow];
        let out_len = self.check_shape(n, &out_shape)?;
        self.reserve(n, product(&[out_len, kh, kw]))?;
        let (l, out) = Linear::avg_pool2d(
            [c, h, w],
            [kh, kw],
            [sh, sw],
            [pt, pl, pb, pr],
            attr_i(n, "count_include_pad", 0) != 0,
        )?;
        let idx = self.push(n, Op::Linear(l), vec![x], out.to_vec())?;
        self.note(n, "linear layer (averaging matrix)");
        self.out(n, idx)
    }

    fn gemm(&mut self, n: &'a NodeProto) -> Result<()> {
        let x = self.value(n, Self::first_input(n)?)?;
        let in_len = self.len(x);
        let w = n
            .input
            .get(1)
            .and_then(|s| self.constant(s))
            .cloned()
            .ok_or_else(|| Self::unsupported(n, "the right operand must be a constant weight"))?;
        let &[d0, d1] = w.dims.as_slice() else {
            return Err(Self::unsupported(n, "the weight must be a matrix"));
        };
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
        let (out, k) = if trans_b { (d0, d1) } else { (d1, d0) };
        if k != in_len {
            return Err(shape_err(
                format!("{} at {}", n.op_type, node_name(n)),
                in_len,
                k,
            ));
        }
        self.check_shape(n, &[out])?;
        // out·k = the weight's own (bounded) element count.
        self.reserve(n, out.checked_mul(k))?;
        // Row-major out x in.
        let wt: Vec<f64> = (0..out)
            .flat_map(|i| (0..k).map(move |j| (i, j)))
            .map(|(i, j)| {
                let at = if trans_b { i * k + j } else { j * out + i };
                alpha * w.data.get(at).copied().unwrap_or(0.0)
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
        let idx = self.push(n, Op::Linear(l), vec![x], vec![out])?;
        self.out(n, idx)
    }

    fn add(&mut self, n: &'a NodeProto) -> Result<()> {
        let sign = if n.op_type == "Sub" { -1.0 } else { 1.0 };
        let a = Self::first_input(n)?;
        let b = n.input.get(1).map(String::as_str).unwrap_or_default();
        if let Some(c) = self.constant(b) {
            let x = self.value(n, a)?;
            let len = self.len(x);
            let shape = self.shape(x);
            let cv: Vec<f64> = broadcast_to(c, &shape)
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
            self.reserve(n, Some(len))?;
            if self.foldable_linear(n, a, x) {
                if let Some(Op::Linear(l)) = self.net.nodes.get_mut(x).map(|s| &mut s.op) {
                    l.fold_output_affine(&vec![1.0; len], &cv)?;
                }
                self.note(n, "bias folded into the preceding linear layer");
                return self.out(n, x);
            }
            let idx = self.push(n, Op::AddConst(cv), vec![x], shape)?;
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
        let y = self.value(n, b)?;
        if sign < 0.0 {
            return Err(Self::unsupported(
                n,
                "Sub of two computed tensors is not supported",
            ));
        }
        let idx = self.net.add(x, y)?;
        if let Some(node) = self.net.nodes.get_mut(idx) {
            node.name = node_name(n);
        }
        self.note(n, "residual addition");
        self.out(n, idx)
    }

    fn mul(&mut self, n: &'a NodeProto) -> Result<()> {
        let a = Self::first_input(n)?;
        let b = n.input.get(1).map(String::as_str).unwrap_or_default();
        if a == b {
            let x = self.value(n, a)?;
            let shape = self.shape(x);
            let idx = self.push(n, Op::Activation(Activation::Square), vec![x], shape)?;
            self.note(n, "square");
            return self.out(n, idx);
        }
        if let Some(c) = self.constant(b) {
            let x = self.value(n, a)?;
            let shape = self.shape(x);
            let len = self.len(x);
            let cv = broadcast_to(c, &shape).ok_or_else(|| {
                Self::unsupported(
                    n,
                    format!(
                        "constant of shape {:?} does not broadcast to {shape:?}",
                        c.dims
                    ),
                )
            })?;
            self.reserve(n, Some(len))?;
            if self.foldable_linear(n, a, x) {
                if let Some(Op::Linear(l)) = self.net.nodes.get_mut(x).map(|s| &mut s.op) {
                    l.fold_output_affine(&cv, &vec![0.0; len])?;
                }
                self.note(n, "constant scaling folded into the preceding linear layer");
                return self.out(n, x);
            }
            let rows = cv.iter().enumerate().map(|(i, v)| vec![(i, *v)]).collect();
            let l = Linear {
                kind: "Scale".into(),
                in_len: len,
                out_len: len,
                rows,
                bias: vec![0.0; len],
            };
            let idx = self.push(n, Op::Linear(l), vec![x], shape)?;
            self.note(
                n,
                "constant scaling (one level, unless fused into the layer after)",
            );
            return self.out(n, idx);
        }
        Err(Self::unsupported(
            n,
            "only Mul(x, x) (a square) or Mul by a constant is supported",
        ))
    }
}

/// The operators [`import_onnx`] accepts (the module documentation and `nn/README.md` list
/// the same set).
pub const SUPPORTED_OPERATORS: &[&str] = &[
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Pow",
    "AveragePool",
    "GlobalAveragePool",
    "BatchNormalization",
    "Flatten",
    "Reshape",
    "Relu",
    "Gelu",
    "Identity",
    "Dropout",
    "Constant",
];

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

/// `c` as `len` values: a scalar repeated, or `len` values as they are.
fn broadcast(c: &[f64], len: usize) -> Option<Vec<f64>> {
    match c {
        [v] => Some(vec![*v; len]),
        c if c.len() == len => Some(c.to_vec()),
        _ => None,
    }
}

/// Broadcasts a constant (scalar, per-element, or per-channel `[C,1,1]`) to `shape`.
fn broadcast_to(c: &Tensor, shape: &[usize]) -> Option<Vec<f64>> {
    let len = product(shape)?;
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
    if ch > 0 && c.data.len() == ch && dims.first() == Some(&ch) {
        let spatial = len / ch;
        return Some(
            c.data
                .iter()
                .flat_map(|v| std::iter::repeat_n(*v, spatial))
                .collect(),
        );
    }
    None
}

/// The target of `Reshape` (batch dimension first, `0` copies, one `-1` inferred), with
/// checked arithmetic: the element count must equal the input's.
fn reshape_target(spec: &[f64], input: &[usize]) -> std::result::Result<Vec<usize>, String> {
    let len = product(input).ok_or("the input's element count overflows")?;
    let spec: Vec<i64> = spec
        .iter()
        .map(|v| {
            if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e18 {
                Ok(*v as i64)
            } else {
                Err(format!("target dimensions must be integers, found {v}"))
            }
        })
        .collect::<std::result::Result<_, _>>()?;
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
            -1 if infer.is_some() => return Err("two inferred dimensions".into()),
            -1 => {
                infer = Some(i);
                out.push(1);
            }
            0 => out.push(*input.get(i).ok_or("0 refers to a missing dimension")?),
            d if d > 0 => {
                out.push(usize::try_from(d).map_err(|_| format!("invalid dimension {d}"))?)
            }
            d => return Err(format!("invalid dimension {d}")),
        }
    }
    if batch == -1 && infer.is_some() {
        return Err("two inferred dimensions".into());
    }
    let known =
        product(&out).ok_or_else(|| format!("target {spec:?}: the element count overflows"))?;
    if let Some(i) = infer {
        if known == 0 || !len.is_multiple_of(known) {
            return Err(format!(
                "cannot infer a dimension of {len} elements from {spec:?}"
            ));
        }
        if let Some(slot) = out.get_mut(i) {
            *slot = len / known;
        }
    }
    if product(&out) != Some(len) {
        return Err(format!(
            "target {spec:?} has a different element count than input {input:?}"
        ));
    }
    Ok(out)
}
