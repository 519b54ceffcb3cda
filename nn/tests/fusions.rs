//! The importer's fusions (`he_nn::fuse`, `Linear::then`): ONNX models built here, imported
//! with and without the fusion pass (`onnx::import_model_unfused`), must compute the same
//! function (f64 `forward`, 1e-9 relative), with fewer linear layers and a smaller plan
//! depth, and name every fusion in the import notes. The ResNet blocks are also checked
//! against an independent f64 computation (naive convolution, BatchNorm, ReLU, residual add).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use he_nn::onnx::{
    import_model_unfused, import_onnx, AttributeProto, Dimension, GraphProto, ImportLimits,
    ImportOptions, ImportedModel, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};
use he_nn::sim::Gaussian;
use he_nn::{Linear, Mode, Network, Op, Plan, PlanOptions};
use proptest::prelude::*;
use prost::Message;

// ---- building ONNX models ----

fn tensor(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    assert_eq!(dims.iter().product::<usize>(), data.len(), "{name}");
    TensorProto {
        dims: dims.iter().map(|d| *d as i64).collect(),
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

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: name.into(),
        op_type: op.into(),
        attribute: attrs,
        ..Default::default()
    }
}

fn value(name: &str, dims: &[usize]) -> ValueInfoProto {
    let dim = std::iter::once(None)
        .chain(dims.iter().map(|d| Some(*d as i64)))
        .map(|d| Dimension {
            dim_value: d,
            dim_param: d.is_none().then(|| "N".to_string()),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

fn model(
    nodes: Vec<NodeProto>,
    init: Vec<TensorProto>,
    input: &[usize],
    output: &str,
) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        producer_name: "he-nn fusion tests".into(),
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer: init,
            input: vec![value("x", input)],
            output: vec![value(output, &[])],
        }),
    }
}

/// A Conv node `name` reading `x`, weights `{name}_w` (and bias `{name}_b` when given).
struct Conv<'a> {
    name: &'a str,
    input: &'a str,
    output: &'a str,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    bias: bool,
}

impl<'a> Conv<'a> {
    /// Without a bias; `[cin, cout, k, stride, pad]`.
    fn new(name: &'a str, input: &'a str, output: &'a str, sizes: [usize; 5]) -> Self {
        let [cin, cout, k, stride, pad] = sizes;
        Self {
            name,
            input,
            output,
            cin,
            cout,
            k,
            stride,
            pad,
            bias: false,
        }
    }

    fn biased(self) -> Self {
        Self { bias: true, ..self }
    }

    fn add(&self, g: &mut Gaussian, nodes: &mut Vec<NodeProto>, init: &mut Vec<TensorProto>) {
        let w = format!("{}_w", self.name);
        let b = format!("{}_b", self.name);
        let scale = 1.0 / ((self.cin * self.k * self.k) as f64).sqrt();
        init.push(tensor(
            &w,
            &[self.cout, self.cin, self.k, self.k],
            &rnd(g, self.cout * self.cin * self.k * self.k, scale),
        ));
        let mut inputs = vec![self.input, w.as_str()];
        if self.bias {
            init.push(tensor(&b, &[self.cout], &rnd(g, self.cout, 0.1)));
            inputs.push(b.as_str());
        }
        let (k, s, p) = (self.k as i64, self.stride as i64, self.pad as i64);
        nodes.push(node(
            "Conv",
            self.name,
            &inputs,
            self.output,
            vec![
                ints("kernel_shape", &[k, k]),
                ints("strides", &[s, s]),
                ints("pads", &[p; 4]),
            ],
        ));
    }
}

/// A BatchNormalization node over `c` channels with random statistics.
fn batch_norm(
    g: &mut Gaussian,
    name: &str,
    input: &str,
    output: &str,
    c: usize,
    nodes: &mut Vec<NodeProto>,
    init: &mut Vec<TensorProto>,
) {
    let names: Vec<String> = ["s", "b", "m", "v"]
        .iter()
        .map(|p| format!("{name}_{p}"))
        .collect();
    let scale: Vec<f32> = rnd(g, c, 0.3).iter().map(|v| 1.0 + v).collect();
    let var: Vec<f32> = rnd(g, c, 0.3).iter().map(|v| 0.5 + v.abs()).collect();
    init.push(tensor(&names[0], &[c], &scale));
    init.push(tensor(&names[1], &[c], &rnd(g, c, 0.2)));
    init.push(tensor(&names[2], &[c], &rnd(g, c, 0.2)));
    init.push(tensor(&names[3], &[c], &var));
    let mut inputs = vec![input];
    inputs.extend(names.iter().map(String::as_str));
    nodes.push(node("BatchNormalization", name, &inputs, output, vec![]));
}

fn rnd(g: &mut Gaussian, n: usize, s: f64) -> Vec<f32> {
    (0..n).map(|_| (g.normal() * s) as f32).collect()
}

// ---- importing and comparing ----

fn options() -> ImportOptions {
    ImportOptions {
        activation_degree: 7,
        activation_bound: Some(4.0),
    }
}

/// (fused, unfused) imports of `m`.
fn import_both(m: &ModelProto) -> (ImportedModel, ImportedModel) {
    let fused = import_onnx(&m.encode_to_vec(), &options()).unwrap();
    let unfused = import_model_unfused(m, &options(), &ImportLimits::default()).unwrap();
    for n in &fused.notes {
        println!("{} ({}): {}", n.node, n.op, n.became);
    }
    (fused, unfused)
}

fn linear_nodes(net: &Network) -> usize {
    net.nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Linear(_)))
        .count()
}

/// `max |a - b| <= 1e-9 · max(1, max |b|)`.
fn assert_close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let err = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        err <= 1e-9 * scale,
        "{what}: error {err:e} at scale {scale}"
    );
}

/// Both networks agree on random inputs; returns those inputs.
fn assert_same_function(fused: &Network, unfused: &Network) -> Vec<Vec<f64>> {
    let n = unfused.nodes[0].len();
    let mut g = Gaussian::new(99);
    let xs: Vec<Vec<f64>> = (0..4)
        .map(|_| (0..n).map(|_| g.normal()).collect())
        .collect();
    for x in &xs {
        assert_close(
            &fused.forward(x).unwrap(),
            &unfused.forward(x).unwrap(),
            "fused vs unfused",
        );
    }
    xs
}

fn depth(net: &Network) -> usize {
    let mut opts = PlanOptions::new(Mode::Latency);
    opts.flooding = None;
    Plan::new(net, &opts).unwrap().depth
}

/// The note on node `second` says it was fused with `first`.
fn assert_fusion_noted(m: &ImportedModel, second: &str, op: &str, first: &str) {
    let want = format!("fused with the preceding `{first}`");
    assert!(
        m.notes
            .iter()
            .any(|n| n.node == second && n.op == op && n.became.contains(&want)),
        "no note `{want}` on {second} ({op}): {:#?}",
        m.notes
    );
}

// ---- the cases ----

#[test]
fn conv_then_average_pool_is_one_linear_layer() {
    // x[2,6,6] -> Conv(2->4, k3, p1, bias) -> AveragePool(k2, s2) -> Relu
    let mut g = Gaussian::new(1);
    let (mut nodes, mut init) = (vec![], vec![]);
    Conv::new("conv", "x", "c", [2, 4, 3, 1, 1])
        .biased()
        .add(&mut g, &mut nodes, &mut init);
    nodes.push(node(
        "AveragePool",
        "pool",
        &["c"],
        "p",
        vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
    ));
    nodes.push(node("Relu", "relu", &["p"], "y", vec![]));
    let (fused, unfused) = import_both(&model(nodes, init, &[2, 6, 6], "y"));
    assert_eq!(linear_nodes(&unfused.network), 2);
    assert_eq!(linear_nodes(&fused.network), 1);
    assert_eq!(fused.network.nodes.len(), 3, "input, Conv+AvgPool, Relu");
    assert_same_function(&fused.network, &unfused.network);
    assert_eq!(depth(&fused.network) + 1, depth(&unfused.network));
    assert_fusion_noted(&fused, "pool", "AveragePool", "conv");
}

#[test]
fn conv_then_global_average_pool_and_gemm_fuse_into_one_layer() {
    // x[2,6,6] -> Conv(2->3, k3, p1) -> Relu -> Conv(3->4, k3, p1, bias) -> GlobalAveragePool
    //   -> Flatten -> Gemm(4->3, transB)
    let mut g = Gaussian::new(2);
    let (mut nodes, mut init) = (vec![], vec![]);
    Conv::new("conv1", "x", "c1", [2, 3, 3, 1, 1]).add(&mut g, &mut nodes, &mut init);
    nodes.push(node("Relu", "relu", &["c1"], "r", vec![]));
    Conv::new("conv2", "r", "c2", [3, 4, 3, 1, 1])
        .biased()
        .add(&mut g, &mut nodes, &mut init);
    nodes.push(node("GlobalAveragePool", "gap", &["c2"], "p", vec![]));
    nodes.push(node("Flatten", "flat", &["p"], "f", vec![]));
    init.push(tensor("fc_w", &[3, 4], &rnd(&mut g, 12, 0.5)));
    init.push(tensor("fc_b", &[3], &rnd(&mut g, 3, 0.1)));
    nodes.push(node(
        "Gemm",
        "fc",
        &["f", "fc_w", "fc_b"],
        "y",
        vec![int("transB", 1)],
    ));
    let (fused, unfused) = import_both(&model(nodes, init, &[2, 6, 6], "y"));
    assert_eq!(linear_nodes(&unfused.network), 4);
    assert_eq!(linear_nodes(&fused.network), 2, "conv1, then conv2+gap+fc");
    assert_same_function(&fused.network, &unfused.network);
    assert_eq!(depth(&fused.network) + 2, depth(&unfused.network));
    assert_fusion_noted(&fused, "gap", "GlobalAveragePool", "conv2");
    assert_fusion_noted(&fused, "fc", "Gemm", "conv2+gap");
}

#[test]
fn constant_mul_after_an_activation_folds_into_the_following_conv() {
    // x[2,5,5] -> Conv(2->3, k3, p1) -> Relu -> Mul(per-channel [3,1,1]) -> Add(per-channel)
    //   -> Conv(3->2, k3, p1, bias)
    let mut g = Gaussian::new(3);
    let (mut nodes, mut init) = (vec![], vec![]);
    Conv::new("conv1", "x", "c1", [2, 3, 3, 1, 1])
        .biased()
        .add(&mut g, &mut nodes, &mut init);
    nodes.push(node("Relu", "relu", &["c1"], "r", vec![]));
    init.push(tensor("a", &[3, 1, 1], &[0.5, -1.5, 2.0]));
    init.push(tensor("c", &[3, 1, 1], &[0.25, 0.0, -0.75]));
    nodes.push(node("Mul", "mul", &["r", "a"], "m", vec![]));
    nodes.push(node("Add", "shift", &["m", "c"], "s", vec![]));
    Conv::new("conv2", "s", "y", [3, 2, 3, 1, 1])
        .biased()
        .add(&mut g, &mut nodes, &mut init);
    let (fused, unfused) = import_both(&model(nodes, init, &[2, 5, 5], "y"));
    // The Add folds into the Mul's scaling layer at import; the pass folds that into conv2.
    assert_eq!(linear_nodes(&unfused.network), 3);
    assert_eq!(linear_nodes(&fused.network), 2);
    let conv2 = fused.network.nodes.last().unwrap();
    let Op::Linear(l) = &conv2.op else {
        panic!("{conv2:?}")
    };
    // W·diag(a): exactly the nonzeros of conv2 (no weight is zero).
    assert_eq!(l.nnz(), {
        let Op::Linear(u) = &unfused.network.nodes.last().unwrap().op else {
            panic!()
        };
        u.nnz()
    });
    assert_same_function(&fused.network, &unfused.network);
    assert_eq!(depth(&fused.network) + 1, depth(&unfused.network));
    assert_fusion_noted(&fused, "conv2", "Conv", "mul");
}

#[test]
fn batch_norm_after_an_activation_folds_into_the_following_gemm() {
    // x[2,4,4] -> Conv(2->3, k3, p1) -> Relu -> BatchNormalization -> Flatten -> Gemm(48->5)
    let mut g = Gaussian::new(4);
    let (mut nodes, mut init) = (vec![], vec![]);
    Conv::new("conv", "x", "c", [2, 3, 3, 1, 1])
        .biased()
        .add(&mut g, &mut nodes, &mut init);
    nodes.push(node("Relu", "relu", &["c"], "r", vec![]));
    batch_norm(&mut g, "bn", "r", "b", 3, &mut nodes, &mut init);
    nodes.push(node("Flatten", "flat", &["b"], "f", vec![]));
    init.push(tensor("fc_w", &[48, 5], &rnd(&mut g, 240, 0.2)));
    init.push(tensor("fc_b", &[5], &rnd(&mut g, 5, 0.1)));
    nodes.push(node("Gemm", "fc", &["f", "fc_w", "fc_b"], "y", vec![]));
    let (fused, unfused) = import_both(&model(nodes, init, &[2, 4, 4], "y"));
    assert_eq!(linear_nodes(&unfused.network), 3);
    assert_eq!(linear_nodes(&fused.network), 2);
    assert_eq!(fused.network.nodes.len(), 4, "input, conv, relu, bn+fc");
    assert_same_function(&fused.network, &unfused.network);
    assert_eq!(depth(&fused.network) + 1, depth(&unfused.network));
    assert_fusion_noted(&fused, "fc", "Gemm", "bn");
    assert!(unfused
        .notes
        .iter()
        .any(|n| n.node == "bn" && n.became.contains("could not be folded")));
}

#[test]
fn a_product_over_the_growth_rule_stays_two_layers_with_a_note() {
    // x[64] -> Gemm(64->1) -> Gemm(1->64): 128 nonzeros would become 4096 (32x > 16x).
    let mut g = Gaussian::new(5);
    let init = vec![
        tensor("w1", &[64, 1], &rnd(&mut g, 64, 0.2)),
        tensor("w2", &[1, 64], &rnd(&mut g, 64, 0.2)),
    ];
    let nodes = vec![
        node("MatMul", "down", &["x", "w1"], "h", vec![]),
        node("MatMul", "up", &["h", "w2"], "y", vec![]),
    ];
    let (fused, unfused) = import_both(&model(nodes, init, &[64], "y"));
    assert_eq!(fused.network, unfused.network);
    assert!(fused.notes.iter().any(|n| n.node == "up"
        && n.became.contains("kept apart from the preceding `down`")
        && n.became.contains("4096 nonzeros")));
}

// ---- ResNet blocks ----

/// Naive f64 reference of the ONNX operators used by the ResNet tests.
mod reference {
    use he_nn::onnx::TensorProto;
    use std::collections::HashMap;

    pub struct Tensors(pub HashMap<String, Vec<f64>>);

    impl Tensors {
        pub fn new(init: &[TensorProto]) -> Self {
            Self(
                init.iter()
                    .map(|t| (t.name.clone(), t.to_tensor().unwrap().data))
                    .collect(),
            )
        }
        pub fn get(&self, name: &str) -> &[f64] {
            &self.0[name]
        }
    }

    /// Conv on `[c, h, w]`, square kernel `k`, stride `s`, pad `p`: `(out, [o, oh, ow])`.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        x: &[f64],
        [c, h, w]: [usize; 3],
        wt: &[f64],
        bias: Option<&[f64]>,
        o: usize,
        k: usize,
        s: usize,
        p: usize,
    ) -> (Vec<f64>, [usize; 3]) {
        let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        let mut y = vec![0.0; o * oh * ow];
        for oc in 0..o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(0.0, |b| b[oc]);
                    for ic in 0..c {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as isize - p as isize;
                                let ix = (ox * s + kx) as isize - p as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                acc += wt[((oc * c + ic) * k + ky) * k + kx]
                                    * x[(ic * h + iy as usize) * w + ix as usize];
                            }
                        }
                    }
                    y[(oc * oh + oy) * ow + ox] = acc;
                }
            }
        }
        (y, [o, oh, ow])
    }

    /// BatchNormalization (epsilon 1e-5, as the importer's default) named `bn`.
    pub fn bn(x: &[f64], c: usize, t: &Tensors, bn: &str) -> Vec<f64> {
        let spatial = x.len() / c;
        let [s, b, m, v] = ["s", "b", "m", "v"].map(|p| t.get(&format!("{bn}_{p}")));
        x.iter()
            .enumerate()
            .map(|(i, x)| {
                let ch = i / spatial;
                // The importer reads epsilon as f32.
                let eps = 1e-5f32 as f64;
                s[ch] * (x - m[ch]) / (v[ch] + eps).sqrt() + b[ch]
            })
            .collect()
    }

    pub fn relu(x: &[f64]) -> Vec<f64> {
        x.iter().map(|v| v.max(0.0)).collect()
    }

    pub fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
        a.iter().zip(b).map(|(a, b)| a + b).collect()
    }

    /// GlobalAveragePool -> Flatten -> Gemm(c -> k, transB) with `fc_w`, `fc_b`.
    pub fn head(x: &[f64], c: usize, k: usize, t: &Tensors) -> Vec<f64> {
        let spatial = x.len() / c;
        let pooled: Vec<f64> = (0..c)
            .map(|ch| x[ch * spatial..(ch + 1) * spatial].iter().sum::<f64>() / spatial as f64)
            .collect();
        let (w, b) = (t.get("fc_w"), t.get("fc_b"));
        (0..k)
            .map(|i| b[i] + (0..c).map(|j| w[i * c + j] * pooled[j]).sum::<f64>())
            .collect()
    }
}

/// The classifier head GlobalAveragePool -> Flatten -> Gemm(c -> 3), reading `input`.
fn head(
    g: &mut Gaussian,
    input: &str,
    c: usize,
    nodes: &mut Vec<NodeProto>,
    init: &mut Vec<TensorProto>,
) {
    nodes.push(node("GlobalAveragePool", "gap", &[input], "p", vec![]));
    nodes.push(node("Flatten", "flat", &["p"], "f", vec![]));
    init.push(tensor("fc_w", &[3, c], &rnd(g, 3 * c, 0.5)));
    init.push(tensor("fc_b", &[3], &rnd(g, 3, 0.1)));
    nodes.push(node(
        "Gemm",
        "fc",
        &["f", "fc_w", "fc_b"],
        "y",
        vec![int("transB", 1)],
    ));
}

#[test]
fn resnet_basic_block_imports_and_matches_a_direct_computation() {
    // x[4,6,6] -> Conv(k3,p1) -> BN -> Relu -> Conv(k3,p1) -> BN -> Add(x) -> Relu -> head
    let mut g = Gaussian::new(6);
    let (mut nodes, mut init) = (vec![], vec![]);
    Conv::new("conv1", "x", "c1", [4, 4, 3, 1, 1]).add(&mut g, &mut nodes, &mut init);
    batch_norm(&mut g, "bn1", "c1", "b1", 4, &mut nodes, &mut init);
    nodes.push(node("Relu", "relu1", &["b1"], "r1", vec![]));
    Conv::new("conv2", "r1", "c2", [4, 4, 3, 1, 1]).add(&mut g, &mut nodes, &mut init);
    batch_norm(&mut g, "bn2", "c2", "b2", 4, &mut nodes, &mut init);
    nodes.push(node("Add", "residual", &["b2", "x"], "a", vec![]));
    nodes.push(node("Relu", "relu2", &["a"], "r2", vec![]));
    head(&mut g, "r2", 4, &mut nodes, &mut init);
    let t = reference::Tensors::new(&init);
    let (fused, unfused) = import_both(&model(nodes, init, &[4, 6, 6], "y"));
    let xs = assert_same_function(&fused.network, &unfused.network);
    for x in &xs {
        let (c1, s) = reference::conv(x, [4, 6, 6], t.get("conv1_w"), None, 4, 3, 1, 1);
        let r1 = reference::relu(&reference::bn(&c1, 4, &t, "bn1"));
        let (c2, _) = reference::conv(&r1, s, t.get("conv2_w"), None, 4, 3, 1, 1);
        let r2 = reference::relu(&reference::add(&reference::bn(&c2, 4, &t, "bn2"), x));
        let want = reference::head(&r2, 4, 3, &t);
        assert_close(
            &fused.network.forward(x).unwrap(),
            &want,
            "basic block vs direct",
        );
    }
    // conv1+bn1, conv2+bn2, and gap+fc (the Add reads conv2, so the head is what fuses).
    assert_eq!(linear_nodes(&unfused.network), 4);
    assert_eq!(linear_nodes(&fused.network), 3);
    assert_eq!(depth(&fused.network) + 1, depth(&unfused.network));
    for bn in ["bn1", "bn2"] {
        assert!(fused
            .notes
            .iter()
            .any(|n| n.node == bn && n.became.contains("folded into the preceding linear layer")));
    }
    assert!(fused
        .notes
        .iter()
        .any(|n| n.node == "residual" && n.became == "residual addition"));
    assert_fusion_noted(&fused, "fc", "Gemm", "gap");
}

#[test]
fn resnet_downsampling_block_imports_and_matches_a_direct_computation() {
    // x[2,6,6] -> Conv(2->4, k3, s2, p1) -> BN -> Relu -> Conv(4->4, k3, p1) -> BN ---+
    //          \-> Conv(2->4, k1, s2) -> BN (shortcut) ------------------------------ Add -> Relu -> head
    let mut g = Gaussian::new(7);
    let (mut nodes, mut init) = (vec![], vec![]);
    Conv::new("conv1", "x", "c1", [2, 4, 3, 2, 1]).add(&mut g, &mut nodes, &mut init);
    batch_norm(&mut g, "bn1", "c1", "b1", 4, &mut nodes, &mut init);
    nodes.push(node("Relu", "relu1", &["b1"], "r1", vec![]));
    Conv::new("conv2", "r1", "c2", [4, 4, 3, 1, 1]).add(&mut g, &mut nodes, &mut init);
    batch_norm(&mut g, "bn2", "c2", "b2", 4, &mut nodes, &mut init);
    Conv::new("down", "x", "d", [2, 4, 1, 2, 0]).add(&mut g, &mut nodes, &mut init);
    batch_norm(&mut g, "bn_down", "d", "bd", 4, &mut nodes, &mut init);
    nodes.push(node("Add", "residual", &["b2", "bd"], "a", vec![]));
    nodes.push(node("Relu", "relu2", &["a"], "r2", vec![]));
    head(&mut g, "r2", 4, &mut nodes, &mut init);
    let t = reference::Tensors::new(&init);
    let (fused, unfused) = import_both(&model(nodes, init, &[2, 6, 6], "y"));
    let xs = assert_same_function(&fused.network, &unfused.network);
    for x in &xs {
        let (c1, s) = reference::conv(x, [2, 6, 6], t.get("conv1_w"), None, 4, 3, 2, 1);
        assert_eq!(s, [4, 3, 3]);
        let r1 = reference::relu(&reference::bn(&c1, 4, &t, "bn1"));
        let (c2, _) = reference::conv(&r1, s, t.get("conv2_w"), None, 4, 3, 1, 1);
        let (d, sd) = reference::conv(x, [2, 6, 6], t.get("down_w"), None, 4, 1, 2, 0);
        assert_eq!(sd, s);
        let main = reference::bn(&c2, 4, &t, "bn2");
        let short = reference::bn(&d, 4, &t, "bn_down");
        let r2 = reference::relu(&reference::add(&main, &short));
        let want = reference::head(&r2, 4, 3, &t);
        assert_close(
            &fused.network.forward(x).unwrap(),
            &want,
            "downsampling block vs direct",
        );
    }
    assert_eq!(linear_nodes(&unfused.network), 5);
    assert_eq!(linear_nodes(&fused.network), 4);
    assert_eq!(depth(&fused.network) + 1, depth(&unfused.network));
    assert!(fused.notes.iter().any(
        |n| n.node == "bn_down" && n.became.contains("folded into the preceding linear layer")
    ));
    assert_fusion_noted(&fused, "fc", "Gemm", "gap");
}

// ---- Linear::then / compose against dense matrix multiplication ----

/// A `rows x cols` matrix, about half its entries zero, and a bias.
fn sparse_matrix(rows: usize, cols: usize) -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (
        prop::collection::vec(prop_oneof![Just(0.0), -4.0..4.0f64], rows * cols),
        prop::collection::vec(-2.0..2.0f64, rows),
    )
}

proptest! {
    #[test]
    fn compose_equals_dense_multiplication(
        ((m, k, n), (w1, b1), (w2, b2)) in (1usize..7, 1usize..7, 1usize..7).prop_flat_map(|(m, k, n)| {
            (Just((m, k, n)), sparse_matrix(k, m), sparse_matrix(n, k))
        })
    ) {
        // first: m -> k, second: k -> n.
        let first = Linear::dense(&w1, k, m, Some(&b1)).unwrap();
        let second = Linear::dense(&w2, n, k, Some(&b2)).unwrap();
        let p = second.compose(&first).unwrap();
        prop_assert_eq!(&p, &first.then(&second).unwrap());
        prop_assert_eq!((p.in_len, p.out_len), (m, n));
        let mut structural = 0;
        for i in 0..n {
            let mut dense_row = vec![0.0; m];
            let mut touched = vec![false; m];
            for (kk, w) in (0..k).map(|kk| (kk, w2[i * k + kk])) {
                for j in 0..m {
                    dense_row[j] += w * w1[kk * m + j];
                    touched[j] |= w != 0.0 && w1[kk * m + j] != 0.0;
                }
            }
            structural += touched.iter().filter(|t| **t).count();
            let got: Vec<(usize, f64)> = p.rows[i].clone();
            // Sorted, no zero stored, and equal to the dense row.
            prop_assert!(got.windows(2).all(|e| e[0].0 < e[1].0));
            prop_assert!(got.iter().all(|e| e.1 != 0.0));
            let mut sparse_row = vec![0.0; m];
            for (j, w) in got {
                sparse_row[j] = w;
            }
            for j in 0..m {
                prop_assert!((sparse_row[j] - dense_row[j]).abs() <= 1e-12 * (1.0 + dense_row[j].abs()));
            }
            let bias = b2[i] + (0..k).map(|kk| w2[i * k + kk] * b1[kk]).sum::<f64>();
            prop_assert!((p.bias[i] - bias).abs() <= 1e-12 * (1.0 + bias.abs()));
        }
        let nz = first.product_nonzeros(&second).unwrap();
        prop_assert_eq!(nz, structural);
        prop_assert!(p.nnz() <= nz);
        prop_assert!(nz <= first.product_multiply_adds(&second).unwrap());
        prop_assert_eq!(
            first.product_multiply_adds(&second).unwrap(),
            (0..n).flat_map(|i| (0..k).map(move |kk| (i, kk)))
                .filter(|&(i, kk)| w2[i * k + kk] != 0.0)
                .map(|(_, kk)| (0..m).filter(|&j| w1[kk * m + j] != 0.0).count())
                .sum::<usize>()
        );
    }
}
