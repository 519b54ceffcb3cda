//! ONNX import (shipped models, a synthetic model covering more operators, an unsupported
//! operator) and planner checks (refusal of a too-deep network, Galois elements, layouts).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{max_abs_diff, test_params};
use he_nn::data::{read_images, read_logits_json};
use he_nn::network::Linear;
use he_nn::onnx::{
    import_model_unfused, import_onnx, load_onnx, AttributeProto, GraphProto, ImportLimits,
    ImportOptions, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, ValueInfoProto,
};
use he_nn::sim::Gaussian;
use he_nn::{Activation, Conv2dSpec, Mode, Network, NnError, Op, Plan, PlanOptions, PolyFunction};

use prost::Message;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_models_import_and_match_onnxruntime() {
    for ds in ["mnist", "fashion"] {
        let m = load_onnx(
            &root().join(format!("models/{ds}_cnn.onnx")),
            &ImportOptions::default(),
        )
        .unwrap();
        let kinds: Vec<String> = m
            .network
            .nodes
            .iter()
            .map(|n| match &n.op {
                Op::Input => "input".into(),
                Op::Linear(l) => format!("linear {}->{}", l.in_len, l.out_len),
                Op::Activation(Activation::Square) => "square".into(),
                Op::Reshape => "reshape".into(),
                o => format!("{o:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "input",
                "linear 784->256",
                "square",
                "reshape",
                "linear 256->64",
                "square",
                "linear 64->10"
            ]
        );
        assert_eq!(m.opset, 13);
        let xs = read_images(
            &root().join(format!("data/{ds}_sample.idx3")),
            1.0 / 255.0,
            0.0,
        )
        .unwrap();
        let ort = read_logits_json(&root().join(format!("data/{ds}_sample_logits.json"))).unwrap();
        let ours: Vec<Vec<f64>> = xs.iter().map(|x| m.network.forward(x).unwrap()).collect();
        let d = max_abs_diff(&ours, &ort);
        println!("{ds}: f64 forward vs onnxruntime logits: {d:.2e}");
        assert!(d < 1e-4, "{ds}: {d}");
    }
}

fn tensor(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: 1,
        float_data: data.to_vec(),
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
fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: name.into(),
        op_type: op.into(),
        attribute,
        ..Default::default()
    }
}
fn value(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: None,
    }
}
fn model(
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
    input_dims: &[i64],
    output: &str,
) -> Vec<u8> {
    use he_nn::onnx::{Dimension, TensorShapeProto, TensorTypeProto, TypeProto};
    let dim = std::iter::once(Dimension {
        dim_value: None,
        dim_param: Some("N".into()),
    })
    .chain(input_dims.iter().map(|d| Dimension {
        dim_value: Some(*d),
        dim_param: None,
    }))
    .collect();
    let input = ValueInfoProto {
        name: "x".into(),
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
        producer_name: "test".into(),
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer,
            input: vec![input],
            output: vec![value(output)],
        }),
    }
    .encode_to_vec()
}

fn rnd(g: &mut Gaussian, n: usize, s: f64) -> Vec<f32> {
    (0..n).map(|_| (g.normal() * s) as f32).collect()
}

#[test]
fn synthetic_model_covers_more_operators() {
    // x[2,6,6] -> Conv(2->3, k3, p1) -> BatchNorm (folded) -> Relu (poly) -> AveragePool(k2, s2)
    // -> Reshape[0,-1] -> MatMul(27x4) -> Add(bias, folded) -> Pow(.,2) -> Gemm(4->2, transB)
    let mut g = Gaussian::new(11);
    let (cw, cb) = (rnd(&mut g, 3 * 2 * 9, 0.3), rnd(&mut g, 3, 0.1));
    let (bs, bb, bm, bv) = (
        vec![1.5f32, 0.5, 1.0],
        vec![0.1f32, -0.2, 0.0],
        vec![0.05f32, 0.0, -0.1],
        vec![1.2f32, 0.8, 1.0],
    );
    let (mw, mb) = (rnd(&mut g, 27 * 4, 0.3), rnd(&mut g, 4, 0.1));
    let (gw, gb) = (rnd(&mut g, 2 * 4, 0.5), rnd(&mut g, 2, 0.1));
    let init = vec![
        tensor("cw", &[3, 2, 3, 3], &cw),
        tensor("cb", &[3], &cb),
        tensor("bs", &[3], &bs),
        tensor("bb", &[3], &bb),
        tensor("bm", &[3], &bm),
        tensor("bv", &[3], &bv),
        TensorProto {
            dims: vec![2],
            data_type: 7,
            int64_data: vec![0, -1],
            name: "shape".into(),
            ..Default::default()
        },
        tensor("mw", &[27, 4], &mw),
        tensor("mb", &[4], &mb),
        tensor("two", &[], &[2.0]),
        tensor("gw", &[2, 4], &gw),
        tensor("gb", &[2], &gb),
    ];
    let nodes = vec![
        node(
            "Conv",
            "conv",
            &["x", "cw", "cb"],
            "c",
            vec![ints("pads", &[1, 1, 1, 1]), ints("kernel_shape", &[3, 3])],
        ),
        node(
            "BatchNormalization",
            "bn",
            &["c", "bs", "bb", "bm", "bv"],
            "b",
            vec![],
        ),
        node("Relu", "relu", &["b"], "r", vec![]),
        node(
            "AveragePool",
            "pool",
            &["r"],
            "p",
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        ),
        node("Reshape", "reshape", &["p", "shape"], "f", vec![]),
        node("MatMul", "mm", &["f", "mw"], "m", vec![]),
        node("Add", "bias", &["m", "mb"], "a", vec![]),
        node("Pow", "pow", &["a", "two"], "s", vec![]),
        node(
            "Gemm",
            "fc",
            &["s", "gw", "gb"],
            "y",
            vec![AttributeProto {
                name: "transB".into(),
                r#type: 2,
                i: 1,
                ..Default::default()
            }],
        ),
    ];
    let bytes = model(nodes, init, &[2, 6, 6], "y");
    let opts = ImportOptions {
        activation_degree: 7,
        activation_bound: Some(4.0),
    };
    let m = import_onnx(&bytes, &opts).unwrap();
    for n in &m.notes {
        println!("{} ({}): {}", n.node, n.op, n.became);
    }
    // The same network by hand.
    let f = |v: &[f32]| v.iter().map(|x| *x as f64).collect::<Vec<f64>>();
    let mut net = Network::new(&[2, 6, 6]);
    let spec = Conv2dSpec {
        out_channels: 3,
        kernel: [3, 3],
        stride: [1, 1],
        pads: [1; 4],
        dilation: [1, 1],
        groups: 1,
    };
    let (mut conv, _) = Linear::conv2d([2, 6, 6], &f(&cw), &spec, Some(&f(&cb))).unwrap();
    let a: Vec<f64> = (0..3)
        .map(|c| bs[c] as f64 / (bv[c] as f64 + 1e-5).sqrt())
        .collect();
    let full_a: Vec<f64> = (0..108).map(|i| a[i / 36]).collect();
    let full_c: Vec<f64> = (0..108)
        .map(|i| bb[i / 36] as f64 - bm[i / 36] as f64 * a[i / 36])
        .collect();
    conv.fold_output_affine(&full_a, &full_c).unwrap();
    net.linear(conv, vec![3, 6, 6]).unwrap();
    net.activation(Activation::Poly {
        function: PolyFunction::Relu,
        degree: 7,
        bound: Some(4.0),
    })
    .unwrap();
    let (pool, out) = Linear::avg_pool2d([3, 6, 6], [2, 2], [2, 2], [0; 4], false).unwrap();
    net.linear(pool, out.to_vec()).unwrap();
    net.flatten().unwrap();
    let mwt: Vec<f64> = (0..4)
        .flat_map(|i| (0..27).map(move |j| (i, j)))
        .map(|(i, j)| mw[j * 4 + i] as f64)
        .collect();
    net.dense(&mwt, 4, Some(&f(&mb))).unwrap();
    net.activation(Activation::Square).unwrap();
    net.dense(&f(&gw), 2, Some(&f(&gb))).unwrap();
    let unfused = import_model_unfused(
        &ModelProto::decode(bytes.as_slice()).unwrap(),
        &opts,
        &ImportLimits::default(),
    )
    .unwrap();
    assert_eq!(
        unfused.network.nodes.len(),
        net.nodes.len(),
        "BatchNorm and the MatMul bias are folded"
    );
    assert_eq!(
        m.network.nodes.len(),
        net.nodes.len() - 2,
        "AveragePool, Reshape and MatMul are one layer"
    );
    let xs: Vec<Vec<f64>> = (0..4)
        .map(|_| (0..72).map(|_| g.normal()).collect())
        .collect();
    let got: Vec<Vec<f64>> = xs.iter().map(|x| m.network.forward(x).unwrap()).collect();
    let want: Vec<Vec<f64>> = xs.iter().map(|x| net.forward(x).unwrap()).collect();
    assert!(max_abs_diff(&got, &want) < 1e-9);
    // Plan it: Conv, the Relu polynomial (depth 3), AveragePool+MatMul, square, Gemm; 1/B
    // folded.
    // Encrypted (latency mode) against the simulator of the same plan.
    let (enc, sim, plan) =
        common::run_encrypted(&m.network, Mode::Latency, test_params(11, 8), &xs[..1]);
    println!("{}", plan.describe());
    assert_eq!(plan.depth, 1 + 3 + 1 + 1 + 1);
    let e = max_abs_diff(&enc, &sim);
    println!("encrypted vs simulated: {e:.2e}");
    assert!(e < 1e-6, "{e}");
}

#[test]
fn unsupported_operator_is_a_typed_error() {
    let bytes = model(
        vec![node("Softmax", "the_softmax", &["x"], "y", vec![])],
        vec![],
        &[10],
        "y",
    );
    match import_onnx(&bytes, &ImportOptions::default()) {
        Err(NnError::UnsupportedOperator { op, node, .. }) => {
            assert_eq!((op.as_str(), node.as_str()), ("Softmax", "the_softmax"));
        }
        other => panic!("expected UnsupportedOperator, got {other:?}"),
    }
    let e = import_onnx(&bytes, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("Softmax") && e.contains("the_softmax"), "{e}");
    // Garbage bytes: a decoding error, not a panic.
    assert!(matches!(
        import_onnx(&[0xff, 0xff, 0xff], &ImportOptions::default()),
        Err(NnError::Onnx(_))
    ));
}

#[test]
fn planner_refuses_a_network_deeper_than_the_parameters() {
    let m = load_onnx(
        &root().join("models/mnist_cnn.onnx"),
        &ImportOptions::default(),
    )
    .unwrap();
    let mut opts = PlanOptions::new(Mode::Throughput);
    opts.parameters = Some(test_params(10, 3));
    let err = Plan::new(&m.network, &opts).unwrap_err();
    assert!(
        matches!(
            err,
            NnError::DepthExceeded {
                needed: 5,
                available: 3
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("needs 5 levels, parameters provide 3"),
        "{err}"
    );
}

#[test]
fn planner_derives_secure_parameters_and_exact_galois_elements() {
    let m = load_onnx(
        &root().join("models/mnist_cnn.onnx"),
        &ImportOptions::default(),
    )
    .unwrap();
    let t = Plan::new(&m.network, &PlanOptions::new(Mode::Throughput)).unwrap();
    assert_eq!(t.depth, 5);
    assert!(
        t.galois_elements.is_empty(),
        "throughput mode needs no Galois keys"
    );
    assert_eq!(t.params.max_level(), 5);
    let l = Plan::new(&m.network, &PlanOptions::new(Mode::Latency)).unwrap();
    // conv 784(1024)->256: 256 diagonals, n1 = 16, folds 256, 512; fc1 256->64: 64 diagonals,
    // n1 = 8, fold 64, 128; fc2 64->10(16): 16 diagonals, n1 = 4, folds 16, 32.
    let n = l.params.degree();
    let want: std::collections::BTreeSet<i64> = (1..16)
        .chain((1..16).map(|i| 16 * i))
        .chain([256, 512])
        .chain((1..8).chain((1..8).map(|i| 8 * i)).chain([64, 128]))
        .chain((1..4).chain((1..4).map(|i| 4 * i)).chain([16, 32]))
        .collect();
    assert_eq!(l.rotation_steps, want.iter().copied().collect::<Vec<_>>());
    let ge: Vec<u64> = want
        .iter()
        .map(|s| he_core::rlwe::galois_element_for_rotation(n, *s))
        .collect();
    assert_eq!(l.galois_elements, ge);
    println!("{}", l.describe());
}
