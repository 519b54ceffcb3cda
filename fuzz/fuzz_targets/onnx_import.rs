//! Fuzzes he-nn's ONNX importer. Half of the inputs (first byte even) are structured: the
//! committed micro CNN (`nn/tests/data/micro_cnn.onnx`, x[1, 3, 3]: Conv, BatchNormalization,
//! Relu, AveragePool, Mul, Add, Reshape, MatMul, Constant, Pow, Gemm, Sub, Identity) is
//! decoded once, then each input clones it and mutates it as the fuzz bytes say (dimensions,
//! attributes, initializers, op types, names, nodes, opset, outputs, to edge values or raw
//! 64-bit ones) and imports it: re-encoded and imported from bytes when bit 4 of the first
//! byte is set, else passed decoded to `import_model_with_limits` (faster). So the importer's
//! shape inference and conversions are reached past the protobuf decoding; the other half are
//! raw bytes. Every input gives Ok or a typed error, never a panic. Tight `ImportLimits` keep
//! each execution fast (the limit checks are the same code at any size).
#![no_main]
use he_nn::onnx::{
    import_model_with_limits, import_onnx_with_limits, AttributeProto, Dimension, ImportLimits,
    ImportOptions, ModelProto, SUPPORTED_OPERATORS,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::sync::OnceLock;

static MICRO: &[u8] = include_bytes!("../../nn/tests/data/micro_cnn.onnx");

const EDGES: [i64; 16] = [
    0,
    1,
    2,
    3,
    -1,
    -2,
    4,
    6,
    27,
    (1 << 31) - 1,
    1 << 31,
    1 << 32,
    1 << 62,
    i64::MAX,
    i64::MIN,
    108,
];
/// Operator types a mutation sets: every supported one, then three the importer refuses.
fn op_type(i: usize) -> &'static str {
    const REFUSED: [&str; 3] = ["Softmax", "", "MaxPool"];
    SUPPORTED_OPERATORS
        .get(i)
        .or_else(|| REFUSED.get(i.checked_sub(SUPPORTED_OPERATORS.len())?))
        .copied()
        .unwrap_or("")
}
const OP_TYPES: usize = SUPPORTED_OPERATORS.len() + 3;
const ATTRS: [&str; 12] = [
    "pads",
    "strides",
    "dilations",
    "kernel_shape",
    "group",
    "axis",
    "auto_pad",
    "ceil_mode",
    "transA",
    "transB",
    "value",
    "count_include_pad",
];

struct Bytes<'a>(&'a [u8]);
impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }
    fn idx(&mut self, n: usize) -> usize {
        usize::from(self.u8()) % n.max(1)
    }
    /// An edge value, a small one, or 8 raw bytes.
    fn val(&mut self) -> i64 {
        let b = self.u8();
        match b {
            0..=127 => EDGES[usize::from(b) % EDGES.len()],
            128..=223 => i64::from(b & 31),
            _ => i64::from_le_bytes(std::array::from_fn(|_| self.u8())),
        }
    }
    fn f32(&mut self) -> f32 {
        f32::from_le_bytes(std::array::from_fn(|_| self.u8()))
    }
}

fn names(m: &ModelProto) -> Vec<String> {
    let Some(g) = m.graph.as_ref() else {
        return vec![];
    };
    let mut v: Vec<String> = g.input.iter().map(|i| i.name.clone()).collect();
    v.extend(g.initializer.iter().map(|t| t.name.clone()));
    v.extend(g.node.iter().flat_map(|n| n.output.iter().cloned()));
    v.push(String::new());
    v
}

fn mutate(m: &mut ModelProto, b: &mut Bytes) {
    let all = names(m);
    let kind = b.u8() % 16;
    if kind == 13 {
        if b.u8() & 1 == 0 {
            if let Some(o) = m.opset_import.first_mut() {
                o.version = b.val();
            }
        } else if let Some(o) = m.graph.as_mut().and_then(|g| g.output.first_mut()) {
            o.name = all.get(b.idx(all.len())).cloned().unwrap_or_default();
        }
        return;
    }
    let Some(g) = m.graph.as_mut() else { return };
    let nn = g.node.len();
    let ni = g.initializer.len();
    match kind {
        0 | 1 => {
            if let Some(d) = g
                .input
                .first_mut()
                .and_then(|i| i.r#type.as_mut())
                .and_then(|t| t.tensor_type.as_mut())
                .and_then(|t| t.shape.as_mut())
                .map(|s| &mut s.dim)
            {
                let v = b.val();
                let dim = Dimension {
                    dim_value: Some(v),
                    dim_param: None,
                };
                match (kind, b.u8() % 3) {
                    (0, _) => {
                        let i = b.idx(d.len());
                        if let Some(x) = d.get_mut(i) {
                            *x = dim;
                        }
                    }
                    (_, 0) => d.push(dim),
                    (_, 1) => {
                        d.pop();
                    }
                    _ => {
                        let i = b.idx(d.len());
                        if let Some(x) = d.get_mut(i) {
                            *x = Dimension {
                                dim_value: None,
                                dim_param: Some("N".into()),
                            };
                        }
                    }
                }
            }
        }
        2..=5 | 15 => {
            let t = b.idx(ni);
            let Some(t) = g.initializer.get_mut(t) else {
                return;
            };
            match kind {
                2 => {
                    let i = b.idx(t.dims.len());
                    let v = b.val();
                    if let Some(d) = t.dims.get_mut(i) {
                        *d = v;
                    }
                }
                3 => {
                    if b.u8() & 1 == 0 {
                        t.dims.push(b.val());
                    } else {
                        t.dims.pop();
                    }
                }
                4 => {
                    let n = usize::from(b.u8());
                    if b.u8() & 1 == 0 {
                        t.raw_data.truncate(t.raw_data.len().saturating_sub(n));
                        t.int64_data.truncate(t.int64_data.len().saturating_sub(n));
                    } else {
                        t.raw_data.extend(std::iter::repeat_n(0x3f, n));
                        t.int64_data.extend(std::iter::repeat_n(-1, n));
                    }
                }
                5 => t.data_type = i32::from(b.u8() as i8),
                _ => {
                    let f = b.f32().to_le_bytes();
                    for c in t.raw_data.chunks_exact_mut(4) {
                        c.copy_from_slice(&f);
                    }
                    let v = b.val();
                    t.int64_data.iter_mut().for_each(|x| *x = v);
                }
            }
        }
        6..=11 | 14 => {
            let n = b.idx(nn);
            let Some(node) = g.node.get_mut(n) else {
                return;
            };
            let na = node.attribute.len();
            match kind {
                6 => {
                    let a = b.idx(na);
                    let v = b.val();
                    if let Some(a) = node.attribute.get_mut(a) {
                        a.i = v;
                    }
                }
                7 => {
                    let a = b.idx(na);
                    if let Some(a) = node.attribute.get_mut(a) {
                        let j = b.idx(a.ints.len());
                        let v = b.val();
                        if let Some(x) = a.ints.get_mut(j) {
                            *x = v;
                        }
                    }
                }
                8 => {
                    let a = b.idx(na);
                    if let Some(a) = node.attribute.get_mut(a) {
                        if b.u8() & 1 == 0 {
                            a.ints.push(b.val());
                        } else {
                            a.ints.pop();
                        }
                    }
                }
                9 => {
                    if b.u8() & 1 == 0 {
                        let a = b.idx(na);
                        if a < na {
                            node.attribute.remove(a);
                        }
                    } else {
                        let name = ATTRS[b.idx(ATTRS.len())].to_string();
                        let v = b.val();
                        let len = usize::from(b.u8() % 5);
                        node.attribute.insert(
                            0,
                            AttributeProto {
                                name,
                                i: v,
                                ints: vec![v; len],
                                s: b"SAME_UPPER".to_vec(),
                                ..Default::default()
                            },
                        );
                    }
                }
                10 => node.op_type = op_type(b.idx(OP_TYPES)).to_string(),
                11 => {
                    let name = all.get(b.idx(all.len())).cloned().unwrap_or_default();
                    match b.u8() % 4 {
                        0 => {
                            let j = b.idx(node.input.len());
                            if let Some(i) = node.input.get_mut(j) {
                                *i = name;
                            }
                        }
                        1 => node.input.push(name),
                        2 => {
                            node.input.pop();
                        }
                        _ => {
                            if let Some(o) = node.output.first_mut() {
                                *o = name;
                            }
                        }
                    }
                }
                _ => {
                    let a = b.idx(na);
                    let f = b.f32();
                    if let Some(a) = node.attribute.get_mut(a) {
                        a.f = f;
                        if let Some(t) = a.t.as_mut() {
                            t.dims.push(b.val());
                        }
                    }
                }
            }
        }
        _ => {
            let n = b.idx(nn);
            match b.u8() % 3 {
                0 if n < nn => {
                    g.node.remove(n);
                }
                1 => {
                    if let Some(x) = g.node.get(n).cloned() {
                        g.node.insert(n, x);
                    }
                }
                _ => {
                    if n + 1 < nn {
                        g.node.swap(n, n + 1);
                    }
                }
            }
        }
    }
}

fn limits() -> ImportLimits {
    let mut l = ImportLimits::default();
    l.max_model_bytes = 1 << 20;
    l.max_nodes = 256;
    l.max_tensor_elements = 1 << 12;
    l.max_layer_weights = 1 << 15;
    l.max_total_weights = 1 << 17;
    l
}

fuzz_target!(|data: &[u8]| {
    static MODEL: OnceLock<ModelProto> = OnceLock::new();
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let opts = ImportOptions::default();
    let limits = limits();
    if sel & 1 == 1 {
        let _ = import_onnx_with_limits(rest, &opts, &limits);
        return;
    }
    let mut m = MODEL
        .get_or_init(|| ModelProto::decode(MICRO).expect("the committed micro model decodes"))
        .clone();
    let mut b = Bytes(rest);
    for _ in 0..1 + sel / 64 {
        mutate(&mut m, &mut b);
    }
    if sel & 0x10 != 0 {
        // Re-encoded and imported from bytes, as a file would be.
        let _ = import_onnx_with_limits(&m.encode_to_vec(), &opts, &limits);
    } else {
        let _ = import_model_with_limits(&m, &opts, &limits);
    }
});
