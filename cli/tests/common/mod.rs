//! Helpers shared by the CLI tests: running `home`, temporary directories, a tiny ONNX model,
//! the committed MNIST sample and its onnxruntime reference.
#![allow(dead_code)]

use he_nn::onnx::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
pub fn mnist_model() -> PathBuf {
    root().join("nn/models/mnist_cnn.onnx")
}
pub fn mnist_images() -> PathBuf {
    root().join("nn/data/mnist_sample.idx3")
}
pub fn mnist_labels() -> PathBuf {
    root().join("nn/data/mnist_sample_labels.idx1")
}
pub fn mnist_ort_logits() -> PathBuf {
    root().join("nn/data/mnist_sample_logits.json")
}
/// onnxruntime's predicted classes for the committed sample.
pub fn ort_predictions() -> Vec<usize> {
    let b = std::fs::read(mnist_ort_logits()).unwrap();
    let l: Vec<Vec<f64>> = serde_json::from_slice(&b).unwrap();
    l.iter().map(|v| he_nn::data::argmax(v)).collect()
}

/// A fresh, empty directory for one test, removed when the test ends (set HOME_KEEP_TEST_DIRS=1
/// to keep it for a look).
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("HOME_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn tempdir(name: &str) -> TempDir {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

/// `home ARGS` in `dir`, with one worker thread per call unless asked otherwise.
pub fn home(dir: &Path, args: &[&str]) -> Output {
    home_env(dir, args, &[])
}

pub fn home_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_home"));
    c.current_dir(dir).args(args);
    for k in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_STEP",
        "SLURM_CPUS_PER_TASK",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Runs and asserts success; returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let o = home(dir, args);
    assert!(
        o.status.success(),
        "home {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs with --json and parses the report.
pub fn ok_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let s = ok(dir, &a);
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Runs, asserts failure with exactly one stderr line `error: ...` containing `needle`.
pub fn fails(dir: &Path, args: &[&str], env: &[(&str, &str)], needle: &str) -> String {
    let o = home_env(dir, args, env);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success(),
        "home {args:?} should fail; stderr: {err}"
    );
    assert_eq!(o.status.code(), Some(1), "exit status of home {args:?}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one error line expected from home {args:?}, got: {err}"
    );
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(
        lines[0].to_lowercase().contains(&needle.to_lowercase()),
        "error of home {args:?} should mention {needle:?}: {err}"
    );
    err
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

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: format!("{op}_{output}"),
        op_type: op.into(),
        attribute,
        ..Default::default()
    }
}

/// A small ONNX model on 4x4 single-channel images: Flatten -> Gemm(16->8) -> x*x ->
/// Gemm(8->3): depth 3, deterministic weights.
pub fn tiny_model(path: &Path) {
    let w1: Vec<f32> = (0..8 * 16)
        .map(|i| (((i * 37) % 17) as f32 - 8.0) / 40.0)
        .collect();
    let b1: Vec<f32> = (0..8).map(|i| i as f32 / 20.0 - 0.2).collect();
    let w2: Vec<f32> = (0..3 * 8)
        .map(|i| (((i * 11) % 7) as f32 - 3.0) / 6.0)
        .collect();
    let b2 = vec![0.1f32, -0.1, 0.0];
    let trans_b = AttributeProto {
        name: "transB".into(),
        r#type: 2,
        i: 1,
        ..Default::default()
    };
    let nodes = vec![
        node("Flatten", &["x"], "f", vec![]),
        node("Gemm", &["f", "w1", "b1"], "h", vec![trans_b.clone()]),
        node("Mul", &["h", "h"], "s", vec![]),
        node("Gemm", &["s", "w2", "b2"], "y", vec![trans_b]),
    ];
    let dims = [None, Some(1), Some(4), Some(4)];
    let input = ValueInfoProto {
        name: "x".into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            dim_value: *d,
                            dim_param: d.is_none().then(|| "N".to_string()),
                        })
                        .collect(),
                }),
            }),
        }),
    };
    let m = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        producer_name: "home-cli test".into(),
        graph: Some(GraphProto {
            node: nodes,
            name: "tiny".into(),
            initializer: vec![
                tensor("w1", &[8, 16], &w1),
                tensor("b1", &[8], &b1),
                tensor("w2", &[3, 8], &w2),
                tensor("b2", &[3], &b2),
            ],
            input: vec![input],
            output: vec![ValueInfoProto {
                name: "y".into(),
                r#type: None,
            }],
        }),
    };
    std::fs::write(path, m.encode_to_vec()).unwrap();
}

/// Reads `image,prediction,...` CSV predictions.
pub fn read_predictions(path: &Path) -> Vec<usize> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

/// All files below `dir`, recursively.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that no file below `server` holds the secret key of `keys` (its blob header, its
/// coefficient payload, or any HomE secret-key object at all).
pub fn assert_no_secret(server: &Path, secret_key_file: &Path) {
    let sk = std::fs::read(secret_key_file).unwrap();
    let header = &sk[..40];
    let payload = &sk[40..40 + 256];
    // Magic, format version 1, object type 6 (SecretKey).
    let any_secret: &[u8] = b"HOMEFHE\0\x01\x00\x06\x00";
    for f in files_below(server) {
        let b = std::fs::read(&f).unwrap();
        assert!(
            !contains(&b, header),
            "{} holds the secret key's blob",
            f.display()
        );
        assert!(
            !contains(&b, any_secret),
            "{} holds a secret-key object",
            f.display()
        );
        assert!(
            !contains(&b, payload),
            "{} holds the secret key's coefficients",
            f.display()
        );
        assert!(
            !f.file_name().unwrap().to_string_lossy().contains("secret"),
            "{}",
            f.display()
        );
    }
}
