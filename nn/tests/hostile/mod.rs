//! Shared helpers for the hostile-input tests: a counting global allocator (per thread, so
//! parallel tests do not see each other), a tiny ONNX model covering most supported
//! operators, and deterministic structured mutations of decoded models.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_nn::onnx::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto, SUPPORTED_OPERATORS,
};
use prost::Message;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Requests above this are refused (the process then aborts with "memory allocation of N
/// bytes failed"): on the original code the 550 GB and 24 GB requests end the test there
/// deterministically instead of depending on the machine's overcommit policy.
pub const REFUSE_ABOVE: usize = 1 << 31;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static BIGGEST: Cell<usize> = const { Cell::new(0) };
}

/// A global allocator over [`System`] that tracks, per thread, the live bytes, their peak
/// since [`reset`], and the largest single request.
pub struct Counting;

fn on_alloc(size: usize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + size as isize;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
    let _ = BIGGEST.try_with(|b| b.set(b.get().max(size)));
}
fn on_free(size: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get() - size as isize));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > REFUSE_ABOVE {
            on_alloc(layout.size());
            return std::ptr::null_mut();
        }
        on_alloc(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > REFUSE_ABOVE {
            on_alloc(layout.size());
            return std::ptr::null_mut();
        }
        on_alloc(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_free(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > REFUSE_ABOVE {
            on_alloc(new_size);
            return std::ptr::null_mut();
        }
        on_free(layout.size());
        on_alloc(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Starts a new measurement on this thread.
pub fn reset() {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    BIGGEST.with(|b| b.set(0));
}
/// Peak live bytes on this thread since [`reset`].
pub fn peak() -> usize {
    PEAK.with(|p| p.get().max(0) as usize)
}
/// Largest single request on this thread since [`reset`].
pub fn biggest() -> usize {
    BIGGEST.with(|b| b.get())
}

fn tensor(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: 1,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        name: name.into(),
        ..Default::default()
    }
}
fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: 7,
        ints: v.to_vec(),
        ..Default::default()
    }
}
fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: 2,
        i: v,
        ..Default::default()
    }
}
fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: 1,
        f: v,
        ..Default::default()
    }
}
fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: format!("{output}_node"),
        op_type: op.into(),
        attribute,
        ..Default::default()
    }
}
fn vals(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as u32 * 7 + seed) % 11) as f32 / 8.0 - 0.6)
        .collect()
}

/// A tiny model, x[N, 2, 6, 6] -> Conv(2->3, k3, p1) -> BatchNormalization -> Relu ->
/// AveragePool(k2, s2) -> Mul by a per-channel constant -> Add(x, x) (residual) -> Reshape
/// [0, -1] -> MatMul(27x4) -> Add(bias) -> Pow(., Constant 2) -> Gemm(4->2, transB, alpha,
/// beta) -> Sub(constant) -> Identity. Committed as `nn/tests/data/tiny_cnn.onnx`;
/// `tiny_model_files_are_current` checks the file against this builder.
pub fn tiny_model() -> Vec<u8> {
    model(Sizes {
        cin: 2,
        hw: 6,
        cout: 3,
        k: 3,
        pad: 1,
        pool_stride: 2,
        hidden: 4,
    })
}

/// The same graph at the smallest sizes (x[N, 1, 3, 3], Conv(1->2, k2), AveragePool(k2, s1),
/// MatMul(2x2)): `nn/tests/data/micro_cnn.onnx`, which the `onnx_import` fuzz target embeds.
pub fn micro_model() -> Vec<u8> {
    model(Sizes {
        cin: 1,
        hw: 3,
        cout: 2,
        k: 2,
        pad: 0,
        pool_stride: 1,
        hidden: 2,
    })
}

struct Sizes {
    cin: i64,
    hw: i64,
    cout: i64,
    k: i64,
    pad: i64,
    pool_stride: i64,
    hidden: i64,
}

fn model(z: Sizes) -> Vec<u8> {
    let Sizes {
        cin,
        hw,
        cout,
        k,
        pad,
        pool_stride: ps,
        hidden,
    } = z;
    let conv_out = hw + 2 * pad - k + 1;
    let pool_out = (conv_out - 2) / ps + 1;
    let flat = cout * pool_out * pool_out;
    let u = |v: i64| v as usize;
    let per_ch = |v: [f32; 3]| v[..u(cout)].to_vec();
    let init = vec![
        tensor("cw", &[cout, cin, k, k], &vals(u(cout * cin * k * k), 1)),
        tensor("cb", &[cout], &vals(u(cout), 2)),
        tensor("bs", &[cout], &per_ch([1.5, 0.5, 1.0])),
        tensor("bb", &[cout], &per_ch([0.1, -0.2, 0.0])),
        tensor("bm", &[cout], &per_ch([0.05, 0.0, -0.1])),
        tensor("bv", &[cout], &per_ch([1.2, 0.8, 1.0])),
        tensor("sc", &[cout, 1, 1], &per_ch([0.5, 2.0, 1.0])),
        TensorProto {
            dims: vec![2],
            data_type: 7,
            int64_data: vec![0, -1],
            name: "shape".into(),
            ..Default::default()
        },
        tensor("mw", &[flat, hidden], &vals(u(flat * hidden), 3)),
        tensor("mb", &[hidden], &vals(u(hidden), 4)),
        tensor("gw", &[2, hidden], &vals(u(2 * hidden), 5)),
        tensor("gb", &[2], &vals(2, 6)),
        tensor("off", &[1], &[0.25]),
    ];
    let nodes = vec![
        node(
            "Conv",
            &["x", "cw", "cb"],
            "c",
            vec![
                ints("dilations", &[1, 1]),
                int("group", 1),
                ints("kernel_shape", &[k, k]),
                ints("pads", &[pad; 4]),
                ints("strides", &[1, 1]),
            ],
        ),
        node(
            "BatchNormalization",
            &["c", "bs", "bb", "bm", "bv"],
            "b",
            vec![float("epsilon", 1e-5)],
        ),
        node("Relu", &["b"], "r", vec![]),
        node(
            "AveragePool",
            &["r"],
            "p",
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &[ps, ps]),
                ints("pads", &[0, 0, 0, 0]),
                int("ceil_mode", 0),
                int("count_include_pad", 0),
            ],
        ),
        node("Mul", &["p", "sc"], "q", vec![]),
        node("Add", &["q", "q"], "res", vec![]),
        node("Reshape", &["res", "shape"], "f", vec![]),
        node("MatMul", &["f", "mw"], "m", vec![]),
        node("Add", &["m", "mb"], "a", vec![]),
        NodeProto {
            input: vec![],
            output: vec!["two".into()],
            name: "two_node".into(),
            op_type: "Constant".into(),
            attribute: vec![AttributeProto {
                name: "value".into(),
                r#type: 4,
                t: Some(tensor("two_t", &[], &[2.0])),
                ..Default::default()
            }],
            ..Default::default()
        },
        node("Pow", &["a", "two"], "s", vec![]),
        node(
            "Gemm",
            &["s", "gw", "gb"],
            "g",
            vec![
                float("alpha", 1.0),
                float("beta", 1.0),
                int("transA", 0),
                int("transB", 1),
            ],
        ),
        node("Sub", &["g", "off"], "o", vec![]),
        node("Identity", &["o"], "y", vec![]),
    ];
    let dim = [None, Some(cin), Some(hw), Some(hw)]
        .into_iter()
        .map(|d: Option<i64>| Dimension {
            dim_value: d,
            dim_param: d.is_none().then(|| "N".to_string()),
        })
        .collect();
    let value = |name: &str, dim: Vec<Dimension>| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        producer_name: "he-nn tests".into(),
        graph: Some(GraphProto {
            node: nodes,
            name: "tiny".into(),
            initializer: init,
            input: vec![value("x", dim)],
            output: vec![value("y", vec![])],
        }),
    }
    .encode_to_vec()
}

/// Edge values for integers: 0, ±1, small sizes, 2^31 - 1, 2^31, 2^32, 2^62, 2^63 - 1, -2^63.
pub const EDGES: [i64; 15] = [
    0,
    1,
    2,
    3,
    -1,
    -2,
    7,
    28,
    784,
    (1 << 31) - 1,
    1 << 31,
    1 << 32,
    1 << 62,
    i64::MAX,
    i64::MIN,
];

/// Operator types a mutation sets: every supported one, then three the importer refuses.
const REFUSED_OPS: [&str; 3] = ["Softmax", "", "Sigmoid"];

/// One structured mutation of a decoded model.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Graph input dimension `i` set to a value (`None`: symbolic).
    InputDim(usize, Option<i64>),
    /// A dimension appended to / removed from the graph input.
    InputDimPush(i64),
    InputDimPop,
    /// Initializer `t`: dimension `i` set, appended, removed.
    InitDim(usize, usize, i64),
    InitDimPush(usize, i64),
    InitDimPop(usize),
    /// Initializer `t`: raw data cut or grown by some bytes, or emptied.
    InitRawCut(usize, usize),
    InitRawGrow(usize, usize),
    /// Initializer `t`: data type set.
    InitType(usize, i32),
    /// Initializer `t`: every value set to one (NaN, infinities, huge, zero).
    InitFill(usize, f32),
    /// Initializer `t` renamed (so its readers lose it) or removed.
    InitRename(usize),
    InitRemove(usize),
    /// Node `n`, attribute `a`: `i` set; `ints[j]` set; a value appended / removed; removed;
    /// `f` set.
    AttrI(usize, usize, i64),
    AttrInt(usize, usize, usize, i64),
    AttrIntsPush(usize, usize, i64),
    AttrIntsPop(usize, usize),
    AttrRemove(usize, usize),
    AttrF(usize, usize, f32),
    /// Node `n`: a new attribute with this name and ints value.
    AttrAdd(usize, &'static str, i64),
    /// Node `n`: op type set.
    OpType(usize, &'static str),
    /// Node `n`: input `j` renamed to the name of value `k` of the model's names.
    NodeInput(usize, usize, usize),
    NodeInputRemove(usize, usize),
    NodeInputPush(usize, usize),
    NodeOutput(usize, usize),
    /// Node `n` removed, duplicated, or swapped with the next one.
    NodeRemove(usize),
    NodeDup(usize),
    NodeSwap(usize),
    /// Node `n`'s Constant tensor (if any): dimension set.
    ConstDim(usize, i64),
    /// Opset set; graph output renamed to value `k`; outputs removed / duplicated.
    Opset(i64),
    Output(usize),
    OutputRemove,
    OutputDup,
}

fn names(m: &ModelProto) -> Vec<String> {
    let g = m.graph.as_ref().unwrap();
    let mut v: Vec<String> = g.input.iter().map(|i| i.name.clone()).collect();
    v.extend(g.initializer.iter().map(|t| t.name.clone()));
    v.extend(g.node.iter().flat_map(|n| n.output.iter().cloned()));
    v.push(String::new());
    v.push("missing".into());
    v
}

/// Every single mutation of `m` (deterministic order).
pub fn single_mutations(m: &ModelProto) -> Vec<Mutation> {
    use Mutation::*;
    let g = m.graph.as_ref().unwrap();
    let nnames = names(m).len();
    let mut out = Vec::new();
    let rank = g
        .input
        .first()
        .and_then(|i| i.r#type.as_ref())
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .map_or(0, |s| s.dim.len());
    for i in 0..rank {
        out.push(InputDim(i, None));
        out.extend(EDGES.iter().map(|v| InputDim(i, Some(*v))));
    }
    out.extend(EDGES.iter().map(|v| InputDimPush(*v)));
    out.push(InputDimPop);
    for (t, init) in g.initializer.iter().enumerate() {
        for i in 0..init.dims.len() {
            out.extend(EDGES.iter().map(|v| InitDim(t, i, *v)));
        }
        out.extend(EDGES.iter().map(|v| InitDimPush(t, *v)));
        out.push(InitDimPop(t));
        for b in [1, 3, 4, 8, usize::MAX] {
            out.push(InitRawCut(t, b));
        }
        for b in [1, 4, 8, 4096] {
            out.push(InitRawGrow(t, b));
        }
        for ty in [0, 1, 2, 6, 7, 10, 11, 99, -1] {
            out.push(InitType(t, ty));
        }
        for f in [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            0.0,
            -1.0,
        ] {
            out.push(InitFill(t, f));
        }
        out.push(InitRename(t));
        out.push(InitRemove(t));
    }
    for (n, node) in g.node.iter().enumerate() {
        for (a, at) in node.attribute.iter().enumerate() {
            out.extend(EDGES.iter().map(|v| AttrI(n, a, *v)));
            for j in 0..at.ints.len() {
                out.extend(EDGES.iter().map(|v| AttrInt(n, a, j, *v)));
            }
            out.extend([0, 1, 1 << 31].iter().map(|v| AttrIntsPush(n, a, *v)));
            out.push(AttrIntsPop(n, a));
            out.push(AttrRemove(n, a));
            for f in [f32::NAN, f32::INFINITY, 0.0, -1.0, 1e30] {
                out.push(AttrF(n, a, f));
            }
        }
        for name in [
            "pads",
            "strides",
            "dilations",
            "kernel_shape",
            "group",
            "axis",
            "auto_pad",
            "ceil_mode",
            "transA",
        ] {
            out.extend(
                [0, 1, -1, 1 << 31, i64::MAX]
                    .iter()
                    .map(|v| AttrAdd(n, name, *v)),
            );
        }
        out.extend(
            SUPPORTED_OPERATORS
                .iter()
                .chain(&REFUSED_OPS)
                .map(|o| OpType(n, o)),
        );
        for j in 0..node.input.len() {
            out.extend((0..nnames).map(|k| NodeInput(n, j, k)));
            out.push(NodeInputRemove(n, j));
        }
        out.extend((0..nnames).map(|k| NodeInputPush(n, k)));
        out.extend((0..nnames).map(|k| NodeOutput(n, k)));
        out.push(NodeRemove(n));
        out.push(NodeDup(n));
        out.push(NodeSwap(n));
        out.extend(EDGES.iter().map(|v| ConstDim(n, *v)));
    }
    out.extend(
        [0, 1, 12, 13, 17, 100, -1, i64::MAX]
            .iter()
            .map(|v| Opset(*v)),
    );
    out.extend((0..nnames).map(Output));
    out.push(OutputRemove);
    out.push(OutputDup);
    out
}

/// Applies `mu` to `m` (a no-op where the site does not exist).
pub fn apply(m: &mut ModelProto, mu: &Mutation) {
    use Mutation::*;
    let all = names(m);
    let name = |k: usize| all.get(k).cloned().unwrap_or_default();
    if let Opset(v) = mu {
        if let Some(o) = m.opset_import.first_mut() {
            o.version = *v;
        }
        return;
    }
    let Some(g) = m.graph.as_mut() else { return };
    let in_dims = g
        .input
        .first_mut()
        .and_then(|i| i.r#type.as_mut())
        .and_then(|t| t.tensor_type.as_mut())
        .and_then(|t| t.shape.as_mut())
        .map(|s| &mut s.dim);
    let dim = |v: Option<i64>| Dimension {
        dim_value: v,
        dim_param: v.is_none().then(|| "N".to_string()),
    };
    match mu {
        InputDim(i, v) => {
            if let Some(d) = in_dims.and_then(|d| d.get_mut(*i)) {
                *d = dim(*v);
            }
        }
        InputDimPush(v) => {
            if let Some(d) = in_dims {
                d.push(dim(Some(*v)));
            }
        }
        InputDimPop => {
            if let Some(d) = in_dims {
                d.pop();
            }
        }
        InitDim(t, i, v) => {
            if let Some(d) = g.initializer.get_mut(*t).and_then(|t| t.dims.get_mut(*i)) {
                *d = *v;
            }
        }
        InitDimPush(t, v) => {
            if let Some(t) = g.initializer.get_mut(*t) {
                t.dims.push(*v);
            }
        }
        InitDimPop(t) => {
            if let Some(t) = g.initializer.get_mut(*t) {
                t.dims.pop();
            }
        }
        InitRawCut(t, b) => {
            if let Some(t) = g.initializer.get_mut(*t) {
                let l = t.raw_data.len().saturating_sub(*b);
                t.raw_data.truncate(l);
                t.int64_data.truncate(t.int64_data.len().saturating_sub(*b));
            }
        }
        InitRawGrow(t, b) => {
            if let Some(t) = g.initializer.get_mut(*t) {
                t.raw_data.extend(std::iter::repeat_n(0x41, *b));
                t.int64_data.extend(std::iter::repeat_n(7, *b));
            }
        }
        InitType(t, ty) => {
            if let Some(t) = g.initializer.get_mut(*t) {
                t.data_type = *ty;
            }
        }
        InitFill(t, f) => {
            if let Some(t) = g.initializer.get_mut(*t) {
                for c in t.raw_data.chunks_exact_mut(4) {
                    c.copy_from_slice(&f.to_le_bytes());
                }
                t.float_data.iter_mut().for_each(|v| *v = *f);
            }
        }
        InitRename(t) => {
            if let Some(t) = g.initializer.get_mut(*t) {
                t.name.push_str("_renamed");
            }
        }
        InitRemove(t) => {
            if *t < g.initializer.len() {
                g.initializer.remove(*t);
            }
        }
        AttrI(n, a, v) => {
            if let Some(a) = g.node.get_mut(*n).and_then(|n| n.attribute.get_mut(*a)) {
                a.i = *v;
            }
        }
        AttrInt(n, a, j, v) => {
            if let Some(x) = g
                .node
                .get_mut(*n)
                .and_then(|n| n.attribute.get_mut(*a))
                .and_then(|a| a.ints.get_mut(*j))
            {
                *x = *v;
            }
        }
        AttrIntsPush(n, a, v) => {
            if let Some(a) = g.node.get_mut(*n).and_then(|n| n.attribute.get_mut(*a)) {
                a.ints.push(*v);
            }
        }
        AttrIntsPop(n, a) => {
            if let Some(a) = g.node.get_mut(*n).and_then(|n| n.attribute.get_mut(*a)) {
                a.ints.pop();
            }
        }
        AttrRemove(n, a) => {
            if let Some(n) = g.node.get_mut(*n) {
                if *a < n.attribute.len() {
                    n.attribute.remove(*a);
                }
            }
        }
        AttrF(n, a, f) => {
            if let Some(a) = g.node.get_mut(*n).and_then(|n| n.attribute.get_mut(*a)) {
                a.f = *f;
            }
        }
        AttrAdd(n, name, v) => {
            if let Some(n) = g.node.get_mut(*n) {
                n.attribute.insert(
                    0,
                    AttributeProto {
                        name: name.to_string(),
                        i: *v,
                        ints: vec![*v; 4],
                        s: b"SAME_UPPER".to_vec(),
                        ..Default::default()
                    },
                );
            }
        }
        OpType(n, o) => {
            if let Some(n) = g.node.get_mut(*n) {
                n.op_type = o.to_string();
            }
        }
        NodeInput(n, j, k) => {
            if let Some(i) = g.node.get_mut(*n).and_then(|n| n.input.get_mut(*j)) {
                *i = name(*k);
            }
        }
        NodeInputRemove(n, j) => {
            if let Some(n) = g.node.get_mut(*n) {
                if *j < n.input.len() {
                    n.input.remove(*j);
                }
            }
        }
        NodeInputPush(n, k) => {
            if let Some(n) = g.node.get_mut(*n) {
                n.input.push(name(*k));
            }
        }
        NodeOutput(n, k) => {
            if let Some(o) = g.node.get_mut(*n).and_then(|n| n.output.first_mut()) {
                *o = name(*k);
            }
        }
        NodeRemove(n) => {
            if *n < g.node.len() {
                g.node.remove(*n);
            }
        }
        NodeDup(n) => {
            if let Some(x) = g.node.get(*n).cloned() {
                g.node.insert(*n, x);
            }
        }
        NodeSwap(n) => {
            if *n + 1 < g.node.len() {
                g.node.swap(*n, *n + 1);
            }
        }
        ConstDim(n, v) => {
            if let Some(t) = g
                .node
                .get_mut(*n)
                .and_then(|n| n.attribute.first_mut())
                .and_then(|a| a.t.as_mut())
            {
                t.dims.push(*v);
            }
        }
        Output(k) => {
            if let Some(o) = g.output.first_mut() {
                o.name = name(*k);
            }
        }
        OutputRemove => g.output.clear(),
        OutputDup => {
            if let Some(o) = g.output.first().cloned() {
                g.output.push(o);
            }
        }
        Opset(_) => {}
    }
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
