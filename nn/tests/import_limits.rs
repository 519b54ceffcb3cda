//! `ImportLimits`: each limit refuses a model over it with `NnError::LimitExceeded` naming
//! the field, and accepts it once raised; in-memory IDX parsing; the tiny test model file; the
//! operator list of the documentation against what the importer accepts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hostile;

use he_nn::data::{parse_idx1, parse_idx3, parse_images};
use he_nn::onnx::{
    import_onnx, import_onnx_with_limits, load_onnx_with_limits, ImportLimits, ImportOptions,
    ModelProto, SUPPORTED_OPERATORS,
};
use he_nn::{NnError, Op};
use prost::Message;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mnist() -> Vec<u8> {
    std::fs::read(root().join("models/mnist_cnn.onnx")).unwrap()
}

type SetLimit = fn(&mut ImportLimits);

fn refused_by(bytes: &[u8], limits: &ImportLimits, field: &str) {
    match import_onnx_with_limits(bytes, &ImportOptions::default(), limits) {
        Err(e @ NnError::LimitExceeded { .. }) => {
            let NnError::LimitExceeded { limit_name, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*limit_name, format!("ImportLimits::{field}"), "{e}");
            assert!(e.to_string().contains(field), "{e}");
            println!("{field}: {e}");
        }
        other => panic!("{field}: expected LimitExceeded, got {other:?}"),
    }
}

#[test]
fn each_limit_refuses_by_name_and_can_be_raised() {
    let b = mnist();
    let d = ImportLimits::default();
    // The MNIST CNN: 70,148 bytes, 6 nodes, rank 4, largest tensor fc1.weight 16,384
    // elements, conv layer 256 x 49 = 12,544 weights, 29,364 in all (+ folded biases), 17,298
    // constant elements.
    let cases: [(&str, SetLimit); 7] = [
        ("max_model_bytes", |l| l.max_model_bytes = 70_000),
        ("max_nodes", |l| l.max_nodes = 5),
        ("max_rank", |l| l.max_rank = 3),
        ("max_tensor_elements", |l| l.max_tensor_elements = 16_383),
        ("max_layer_weights", |l| l.max_layer_weights = 12_543),
        ("max_total_weights", |l| l.max_total_weights = 20_000),
        ("max_total_constant_elements", |l| {
            l.max_total_constant_elements = 17_000
        }),
    ];
    for (field, set) in cases {
        let mut l = d;
        set(&mut l);
        refused_by(&b, &l, field);
    }
    // Exactly at the limits it imports.
    let mut l = d;
    l.max_model_bytes = b.len();
    l.max_nodes = 6;
    l.max_rank = 4;
    l.max_tensor_elements = 16_384;
    l.max_layer_weights = 16_384;
    import_onnx_with_limits(&b, &ImportOptions::default(), &l).unwrap();
    // Through a file: its size is checked before it is read.
    let mut l = d;
    l.max_model_bytes = 1000;
    assert!(matches!(
        load_onnx_with_limits(
            &root().join("models/mnist_cnn.onnx"),
            &ImportOptions::default(),
            &l
        ),
        Err(NnError::LimitExceeded { .. })
    ));
}

#[test]
fn an_input_of_2_pow_31_is_refused_by_the_named_limit_with_its_size() {
    // A large but valid model is refused only by the stated limit: [N, 1, 2^31, 28] names
    // `max_tensor_elements`, with the element count it asked for.
    let mut m = ModelProto::decode(mnist().as_slice()).unwrap();
    let dim = &mut m.graph.as_mut().unwrap().input[0]
        .r#type
        .as_mut()
        .unwrap()
        .tensor_type
        .as_mut()
        .unwrap()
        .shape
        .as_mut()
        .unwrap()
        .dim[2];
    dim.dim_value = Some(1 << 31);
    match import_onnx(&m.encode_to_vec(), &ImportOptions::default()) {
        Err(NnError::LimitExceeded {
            limit_name, found, ..
        }) => {
            assert_eq!(limit_name, "ImportLimits::max_tensor_elements");
            assert_eq!(found, (28u64 << 31).to_string());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn idx_in_memory_known_answers_and_typed_errors() {
    let mut b: Vec<u8> = [0x0803u32, 3, 1, 2]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    b.extend([0, 255, 10, 20, 30, 40]);
    let (n, r, c, px) = parse_idx3(&b).unwrap();
    assert_eq!((n, r, c, px), (3, 1, 2, &[0u8, 255, 10, 20, 30, 40][..]));
    assert_eq!(
        parse_images(&b, 2.0, -1.0).unwrap(),
        vec![vec![-1.0, 509.0], vec![19.0, 39.0], vec![59.0, 79.0]]
    );
    // No images at all is a valid (empty) file.
    let empty: Vec<u8> = [0x0803u32, 0, 28, 28]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    assert!(parse_images(&empty, 1.0, 0.0).unwrap().is_empty());
    let labels = [0, 0, 8, 1, 0, 0, 0, 2, 7, 9];
    assert_eq!(parse_idx1(&labels).unwrap(), &[7, 9]);
    for (what, bytes, expected) in [
        ("one byte short", &b[..b.len() - 1], "22 bytes"),
        ("labels as images", &labels[..], "header of 16 bytes"),
        (
            "wrong magic",
            &[0u8, 0, 8, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
            "0x00000803",
        ),
    ] {
        match parse_idx3(bytes) {
            Err(e @ NnError::Idx { .. }) => {
                assert!(e.to_string().contains(expected), "{what}: {e}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    assert!(matches!(parse_idx1(&b), Err(NnError::Idx { .. })));
}

#[test]
fn tiny_model_files_are_current_and_import() {
    for (file, built) in [
        ("micro_cnn.onnx", hostile::micro_model()),
        ("tiny_cnn.onnx", hostile::tiny_model()),
    ] {
        let path = root().join("tests/data").join(file);
        if std::env::var_os("NN_WRITE_TINY_MODEL").is_some() {
            std::fs::write(&path, &built).unwrap();
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            built,
            "{file}: regenerate with NN_WRITE_TINY_MODEL=1"
        );
    }
    let built = hostile::tiny_model();
    assert!(import_onnx(&hostile::micro_model(), &ImportOptions::default()).is_ok());
    let m = import_onnx(&built, &ImportOptions::default()).unwrap();
    let kinds: Vec<&str> = m
        .network
        .nodes
        .iter()
        .map(|n| match &n.op {
            Op::Input => "input",
            Op::Linear(_) => "linear",
            Op::Activation(_) => "activation",
            Op::Add => "add",
            Op::AddConst(_) => "addconst",
            Op::Reshape => "reshape",
        })
        .collect();
    // Conv+BN, Relu, AvgPool (+ the per-channel Mul folded), residual Add, Reshape, MatMul
    // (+ bias), Pow, Gemm (+ the Sub folded; Identity is the same node).
    assert_eq!(
        kinds,
        [
            "input",
            "linear",
            "activation",
            "linear",
            "add",
            "reshape",
            "linear",
            "activation",
            "linear"
        ]
    );
    assert_eq!(m.network.output_len(), 2);
}

/// The operator names in the "Supported operators" sentence of a doc text.
fn listed(text: &str, start: &str, end: &str) -> Vec<String> {
    let from = text.find(start).unwrap();
    let to = from + text[from..].find(end).unwrap();
    let mut ops: Vec<String> = text[from..to]
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| SUPPORTED_OPERATORS.contains(w) || ["Sigmoid", "SiLU", "Softmax"].contains(w))
        .map(String::from)
        .collect();
    ops.sort();
    ops.dedup();
    ops
}

#[test]
fn documented_operators_are_exactly_the_accepted_ones() {
    let mut want: Vec<String> = SUPPORTED_OPERATORS.iter().map(|s| s.to_string()).collect();
    want.sort();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert_eq!(
        listed(&readme, "opset ≥ 13. Supported", "Anything else"),
        want
    );
    let src = std::fs::read_to_string(root().join("src/onnx.rs")).unwrap();
    assert_eq!(
        listed(&src, "//! Supported operators", "Anything else"),
        want
    );
    // Each listed operator reaches its own conversion (it is not refused by name), and
    // unlisted ones are refused by name.
    for op in SUPPORTED_OPERATORS
        .iter()
        .chain(&["Sigmoid", "Softmax", "MaxPool"])
    {
        let mut m = ModelProto::decode(hostile::tiny_model().as_slice()).unwrap();
        m.graph.as_mut().unwrap().node[2].op_type = op.to_string();
        let r = import_onnx(&m.encode_to_vec(), &ImportOptions::default());
        let by_name = matches!(&r, Err(NnError::UnsupportedOperator { reason, .. })
            if reason.contains("has no homomorphic evaluation"));
        assert_eq!(by_name, !SUPPORTED_OPERATORS.contains(op), "{op}: {r:?}");
    }
}
