//! Every subcommand of `home`, good and bad input, on the committed MNIST sample (latency mode
//! at N = 2^13 to stay fast) and a tiny generated model (throughput mode, PNG and .npy input).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn plan_reports_levels_keys_memory_and_time() {
    let d = tempdir("plan");
    let m = mnist_model();
    let v = ok_json(
        &d,
        &[
            "plan",
            s(&m),
            "--mode",
            "latency",
            "--log-n",
            "13",
            "--no-noise-flooding",
        ],
    );
    assert_eq!(v["depth"], 5);
    assert_eq!(v["galois_elements"].as_array().unwrap().len(), 35);
    assert!(v["memory_bytes"]["total"].as_u64().unwrap() > 0);
    assert!(v["time_estimate_seconds_per_batch"].as_f64().unwrap() > 0.0);
    let v = ok_json(&d, &["plan", s(&m), "--no-time-estimate"]);
    assert_eq!(v["mode"], "throughput");
    assert_eq!(v["galois_elements"].as_array().unwrap().len(), 0);
    assert_eq!(v["relinearization"], true);
    let v = ok_json(&d, &["plan", s(&m), "--dnum", "3", "--no-time-estimate"]);
    assert_eq!(v["dnum"], 3);
    let text = ok(
        &d,
        &[
            "plan",
            s(&m),
            "--mode",
            "latency",
            "--log-n",
            "13",
            "--no-noise-flooding",
        ],
    );
    assert!(
        text.contains("memory estimate") && text.contains("time estimate"),
        "{text}"
    );
    fails(&d, &["plan", "missing.onnx"], &[], "does not exist");
    fails(&d, &["plan", s(&m), "--mode", "fast"], &[], "mode");
}

#[test]
fn keygen_encrypt_infer_decrypt_inspect_latency_sharded_and_resumable() {
    let d = tempdir("pipeline");
    let m = mnist_model();
    let v = ok_json(
        &d,
        &[
            "keygen",
            s(&m),
            "--out",
            "keys",
            "--mode",
            "latency",
            "--log-n",
            "13",
            "--no-noise-flooding",
        ],
    );
    assert_eq!(v["evaluation_keys"], 36);
    // The secret key is 0600 and nowhere in the server side.
    let sk = d.join("keys/secret.key");
    assert_eq!(
        std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_no_secret(&d.join("keys/server"), &sk);
    // The server gets a copy of keys/server only.
    std::fs::create_dir_all(d.join("cluster")).unwrap();
    for f in files_below(&d.join("keys/server")) {
        std::fs::copy(&f, d.join("cluster").join(f.file_name().unwrap())).unwrap();
    }
    let k = 12;
    let v = ok_json(
        &d,
        &[
            "encrypt",
            "--keys",
            "keys",
            "--in",
            s(&mnist_images()),
            "--out",
            "batch",
            "--limit",
            &k.to_string(),
        ],
    );
    assert_eq!(v["chunks"], k);
    // Three shards, on the server-only key copy.
    for i in 0..3 {
        let v = ok_json(
            &d,
            &[
                "infer",
                s(&m),
                "--keys",
                "cluster",
                "--in",
                "batch",
                "--out",
                "res",
                "--shard",
                &format!("{i}/3"),
                "--threads",
                "1",
            ],
        );
        assert_eq!(v["computed"], 4, "{v}");
    }
    // A rerun skips finished shards.
    let v = ok_json(
        &d,
        &[
            "infer",
            s(&m),
            "--keys",
            "cluster",
            "--in",
            "batch",
            "--out",
            "res",
            "--shard",
            "1/3",
        ],
    );
    assert_eq!(
        (v["computed"].as_u64(), v["skipped"].as_u64()),
        (Some(0), Some(4))
    );
    ok(
        &d,
        &[
            "decrypt",
            "--no-noise-flooding",
            "--keys",
            "keys",
            "--in",
            "res",
            "--out",
            "p.csv",
        ],
    );
    let first = read_predictions(&d.join("p.csv"));
    let ort = ort_predictions();
    assert_eq!(first, ort[..k], "encrypted vs onnxruntime predictions");
    // Keys planned with --no-noise-flooding carry no flooding bound: decrypting them without
    // saying --no-noise-flooding again is refused (flooding is the default), nothing written.
    let o = home(
        &d,
        &["decrypt", "--keys", "keys", "--in", "res", "--out", "q.csv"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("noise-flooding") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!d.join("q.csv").exists());
    // A half-written output (killed writer) and a damaged one are redone; the rest skipped.
    std::fs::write(d.join("res/.chunk-00005.res.tmp.4242"), b"half").unwrap();
    std::fs::remove_file(d.join("res/chunk-00005.res")).unwrap();
    let f6 = d.join("res/chunk-00006.res");
    let len = std::fs::metadata(&f6).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f6)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let v = ok_json(
        &d,
        &[
            "infer",
            s(&m),
            "--keys",
            "cluster",
            "--in",
            "batch",
            "--out",
            "res",
            "--shard",
            "1/3",
        ],
    );
    assert_eq!(
        (v["computed"].as_u64(), v["skipped"].as_u64()),
        (Some(2), Some(2)),
        "{v}"
    );
    assert!(!d.join("res/.chunk-00005.res.tmp.4242").exists());
    ok(
        &d,
        &[
            "decrypt",
            "--no-noise-flooding",
            "--keys",
            "keys",
            "--in",
            "res",
            "--out",
            "p2.csv",
        ],
    );
    assert_eq!(read_predictions(&d.join("p2.csv")), first);
    // .npy output: float64 logits [k, 10].
    ok(
        &d,
        &[
            "decrypt",
            "--no-noise-flooding",
            "--keys",
            "keys",
            "--in",
            "res",
            "--out",
            "p.npy",
        ],
    );
    let npy = std::fs::read(d.join("p.npy")).unwrap();
    assert!(npy.starts_with(b"\x93NUMPY"));
    let hlen = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    assert_eq!(npy.len(), 10 + hlen + k * 10 * 8);
    // inspect: every kind of file, validated.
    for (f, ty) in [
        ("keys", "key-store"),
        ("cluster", "key-store"),
        ("batch", "batch"),
        ("res", "result"),
        ("batch/chunk-00000.bin", "chunk"),
        ("res/chunk-00000.res", "chunk"),
        ("keys/secret.key", "SecretKey"),
        ("cluster/index.log", "key-store"),
    ] {
        let v = ok_json(&d, &["inspect", f]);
        assert_eq!(v["type"], ty, "{f}: {v}");
    }
    let v = ok_json(&d, &["inspect", "batch/chunk-00003.bin"]);
    assert_eq!(
        (v["level"].as_u64(), v["ciphertexts"].as_u64()),
        (Some(5), Some(1))
    );
    std::fs::write(d.join("junk.bin"), b"not a HomE file at all").unwrap();
    fails(&d, &["inspect", "junk.bin"], &[], "not a HomE file");
    // A flipped byte in a chunk is caught by inspect.
    let mut b = std::fs::read(d.join("batch/chunk-00002.bin")).unwrap();
    b[1000] ^= 1;
    std::fs::write(d.join("bad.bin"), &b).unwrap();
    fails(&d, &["inspect", "bad.bin"], &[], "checksum");
}

#[test]
fn throughput_mode_png_and_npy_inputs_tiny_model() {
    let d = tempdir("throughput");
    let m = d.join("tiny.onnx");
    tiny_model(&m);
    ok(
        &d,
        &[
            "keygen",
            s(&m),
            "--out",
            "keys",
            "--log-n",
            "13",
            "--no-noise-flooding",
            "--input-scale",
            "0.00392156862745098",
        ],
    );
    // Five 4x4 grayscale PNGs and the same pixels as a uint8 .npy.
    std::fs::create_dir_all(d.join("png")).unwrap();
    let mut all = Vec::new();
    for i in 0..5u8 {
        let px: Vec<u8> = (0..16u8)
            .map(|j| j.wrapping_mul(13).wrapping_add(i * 40))
            .collect();
        all.extend_from_slice(&px);
        let f = std::fs::File::create(d.join(format!("png/img{i}.png"))).unwrap();
        let mut e = png::Encoder::new(std::io::BufWriter::new(f), 4, 4);
        e.set_color(png::ColorType::Grayscale);
        e.set_depth(png::BitDepth::Eight);
        e.write_header().unwrap().write_image_data(&px).unwrap();
    }
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let mut h = "{'descr': '|u1', 'fortran_order': False, 'shape': (5, 1, 4, 4), }".to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    npy.extend_from_slice(&(h.len() as u16).to_le_bytes());
    npy.extend_from_slice(h.as_bytes());
    npy.extend_from_slice(&all);
    std::fs::write(d.join("x.npy"), &npy).unwrap();
    ok(
        &d,
        &[
            "encrypt",
            "--keys",
            "keys",
            "--in",
            "png",
            "--out",
            "b1",
            "--batch-size",
            "2",
        ],
    );
    ok(
        &d,
        &[
            "encrypt",
            "--keys",
            "keys",
            "--in",
            "x.npy",
            "--out",
            "b2",
            "--symmetric",
        ],
    );
    let v = ok_json(&d, &["inspect", "b1"]);
    assert_eq!(
        (v["images"].as_u64(), v["chunks"].as_u64()),
        (Some(5), Some(3))
    );
    ok(
        &d,
        &[
            "infer",
            s(&m),
            "--keys",
            "keys/server",
            "--in",
            "b1",
            "--out",
            "r1",
        ],
    );
    ok(
        &d,
        &[
            "infer",
            s(&m),
            "--keys",
            "keys/server",
            "--in",
            "b2",
            "--out",
            "r2",
        ],
    );
    ok(
        &d,
        &[
            "decrypt",
            "--no-noise-flooding",
            "--keys",
            "keys",
            "--in",
            "r1",
            "--out",
            "p1.npy",
        ],
    );
    ok(
        &d,
        &[
            "decrypt",
            "--no-noise-flooding",
            "--keys",
            "keys",
            "--in",
            "r2",
            "--out",
            "p2.npy",
        ],
    );
    // Same images through both paths: the same logits up to CKKS noise, and the cleartext run.
    let logits = |f: &str| -> Vec<f64> {
        let b = std::fs::read(d.join(f)).unwrap();
        let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
        b[10 + hl..]
            .chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let (a, b) = (logits("p1.npy"), logits("p2.npy"));
    assert_eq!(a.len(), 15);
    let net = he_nn::onnx::load_onnx(&m, &Default::default())
        .unwrap()
        .network;
    for i in 0..5 {
        let x: Vec<f64> = all[i * 16..(i + 1) * 16]
            .iter()
            .map(|p| *p as f64 / 255.0)
            .collect();
        let y = net.forward(&x).unwrap();
        for j in 0..3 {
            assert!(
                (a[i * 3 + j] - y[j]).abs() < 1e-2,
                "{} vs {}",
                a[i * 3 + j],
                y[j]
            );
            assert!(
                (b[i * 3 + j] - y[j]).abs() < 1e-2,
                "{} vs {}",
                b[i * 3 + j],
                y[j]
            );
        }
    }
    // Only the keys the plan needs: throughput mode multiplies but never rotates.
    let v = ok_json(&d, &["inspect", "keys"]);
    let keys: Vec<&str> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .filter(|k| k.starts_with("keys/"))
        .collect();
    assert_eq!(keys, ["keys/relin"]);
    // `run` on the same model and PNGs agrees with the cleartext run.
    let v = ok_json(
        &d,
        &[
            "run",
            s(&m),
            "--in",
            "png",
            "--log-n",
            "13",
            "--no-noise-flooding",
        ],
    );
    assert_eq!(v["agreement_cleartext"], 5);
}

/// The README's first command: throughput mode, parameters and noise flooding by default.
#[test]
fn run_readme_command_floods_and_agrees() {
    let d = tempdir("run-readme");
    let v = ok_json(
        &d,
        &[
            "run",
            s(&mnist_model()),
            "--in",
            s(&mnist_images()),
            "--labels",
            s(&mnist_labels()),
            "--reference",
            s(&mnist_ort_logits()),
        ],
    );
    assert_eq!(v["images"], 64);
    assert_eq!(v["agreement_reference"], 64, "{v}");
    let f = &v["noise_flooding"];
    assert_eq!(f["statistical_security"], 30, "{v}");
    let sigma = f["log2_flooding_sigma"].as_f64().unwrap();
    let before = f["log2_error_before"].as_f64().unwrap();
    assert!(sigma <= -6.0 && before < sigma - 20.0, "{f}");
}

#[test]
fn run_mnist_reports_accuracy_and_agreement() {
    let d = tempdir("run");
    let v = ok_json(
        &d,
        &[
            "run",
            s(&mnist_model()),
            "--in",
            s(&mnist_images()),
            "--labels",
            s(&mnist_labels()),
            "--reference",
            s(&mnist_ort_logits()),
            "--limit",
            "8",
            "--mode",
            "latency",
            "--log-n",
            "13",
            "--no-noise-flooding",
            "--out",
            "pred.csv",
        ],
    );
    assert_eq!(v["images"], 8);
    assert_eq!(v["agreement_cleartext"], 8);
    assert_eq!(v["agreement_reference"], 8);
    assert_eq!(
        read_predictions(&d.join("pred.csv")),
        ort_predictions()[..8]
    );
    let text = ok(
        &d,
        &[
            "run",
            s(&mnist_model()),
            "--in",
            s(&mnist_images()),
            "--labels",
            s(&mnist_labels()),
            "--limit",
            "4",
            "--mode",
            "latency",
            "--log-n",
            "13",
            "--no-noise-flooding",
        ],
    );
    assert!(
        text.contains("accuracy") && text.contains("agreement with the cleartext run"),
        "{text}"
    );
}

/// Bad input: a clear one-line error, exit status 1, and no output left behind.
#[test]
fn bad_input_fails_cleanly_without_partial_output() {
    let d = tempdir("bad");
    let m = mnist_model();
    let tiny = d.join("tiny.onnx");
    tiny_model(&tiny);
    ok(
        &d,
        &[
            "keygen",
            s(&m),
            "--out",
            "keys",
            "--mode",
            "latency",
            "--log-n",
            "13",
            "--no-noise-flooding",
        ],
    );
    ok(
        &d,
        &[
            "keygen",
            s(&m),
            "--out",
            "other",
            "--mode",
            "latency",
            "--log-n",
            "13",
            "--no-noise-flooding",
        ],
    );
    ok(
        &d,
        &[
            "keygen",
            s(&tiny),
            "--out",
            "tinykeys",
            "--mode",
            "latency",
            "--log-n",
            "13",
            "--no-noise-flooding",
        ],
    );
    ok(
        &d,
        &[
            "encrypt",
            "--keys",
            "keys",
            "--in",
            s(&mnist_images()),
            "--out",
            "batch",
            "--limit",
            "4",
        ],
    );
    let infer =
        |keys: &str, batch: &str, out: &str, extra: &[&str], env: &[(&str, &str)], needle: &str| {
            let mut a = vec!["infer", s(&m), "--keys", keys, "--in", batch, "--out", out];
            a.extend_from_slice(extra);
            fails(&d, &a, env, needle);
            assert!(!d.join(out).exists(), "{out} left behind");
        };
    // Wrong key directory: missing, not a key directory, keys of other parameters.
    infer("nowhere", "batch", "r", &[], &[], "does not exist");
    std::fs::create_dir_all(d.join("empty")).unwrap();
    infer("empty", "batch", "r", &[], &[], "not a HomE key directory");
    infer(
        "other/server",
        "batch",
        "r",
        &[],
        &[],
        "wrong key directory",
    );
    fails(
        &d,
        &[
            "decrypt",
            "--no-noise-flooding",
            "--keys",
            "other",
            "--in",
            "batch",
            "--out",
            "p.csv",
        ],
        &[],
        "wrong key directory",
    );
    // infer never needs, and decrypt insists on, the secret key.
    fails(
        &d,
        &[
            "decrypt",
            "--no-noise-flooding",
            "--keys",
            "keys/server",
            "--in",
            "batch",
            "--out",
            "p.csv",
        ],
        &[],
        "secret.key",
    );
    // A truncated batch.
    std::fs::create_dir_all(d.join("trunc")).unwrap();
    for f in files_below(&d.join("batch")) {
        std::fs::copy(&f, d.join("trunc").join(f.file_name().unwrap())).unwrap();
    }
    let c = d.join("trunc/chunk-00002.bin");
    let len = std::fs::metadata(&c).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&c)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    infer("keys/server", "trunc", "r", &[], &[], "truncated");
    fails(&d, &["inspect", "trunc/chunk-00002.bin"], &[], "truncated");
    // A batch without its manifest (an unfinished copy).
    std::fs::remove_file(d.join("trunc/manifest.json")).unwrap();
    infer("keys/server", "trunc", "r", &[], &[], "manifest");
    // A model that needs more levels than the keys have (tiny keys: 3 levels; MNIST CNN: 5).
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let mut h = "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 16), }".to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    npy.extend_from_slice(&(h.len() as u16).to_le_bytes());
    npy.extend_from_slice(h.as_bytes());
    (0..16).for_each(|i| npy.extend_from_slice(&(i as f64 / 16.0).to_le_bytes()));
    std::fs::write(d.join("x16.npy"), &npy).unwrap();
    ok(
        &d,
        &[
            "encrypt", "--keys", "tinykeys", "--in", "x16.npy", "--out", "tb",
        ],
    );
    infer("tinykeys/server", "tb", "r", &[], &[], "needs 5 levels");
    // Shard index out of range, from the flag and from Slurm's variables; malformed shards.
    infer(
        "keys/server",
        "batch",
        "r",
        &["--shard", "4/4"],
        &[],
        "out of range",
    );
    infer(
        "keys/server",
        "batch",
        "r",
        &["--shard", "0/0"],
        &[],
        "at least 1",
    );
    infer(
        "keys/server",
        "batch",
        "r",
        &["--shard", "one/4"],
        &[],
        "shard index",
    );
    infer(
        "keys/server",
        "batch",
        "r",
        &[],
        &[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ],
        "out of range",
    );
    // --gpu without a usable device (or, with one, the explicit refusal): never a silent CPU run.
    infer("keys/server", "batch", "r", &["--gpu"], &[], "--gpu");
    // encrypt: wrong input length, truncated input, existing output.
    fails(
        &d,
        &[
            "encrypt",
            "--keys",
            "tinykeys",
            "--in",
            s(&mnist_images()),
            "--out",
            "b2",
        ],
        &[],
        "the model takes 16",
    );
    assert!(!d.join("b2").exists());
    std::fs::write(
        d.join("short.idx3"),
        &std::fs::read(mnist_images()).unwrap()[..5000],
    )
    .unwrap();
    fails(
        &d,
        &[
            "encrypt",
            "--keys",
            "keys",
            "--in",
            "short.idx3",
            "--out",
            "b3",
        ],
        &[],
        "truncated",
    );
    assert!(!d.join("b3").exists());
    fails(
        &d,
        &[
            "encrypt",
            "--keys",
            "keys",
            "--in",
            s(&mnist_images()),
            "--out",
            "batch",
        ],
        &[],
        "already exists",
    );
    fails(
        &d,
        &[
            "encrypt",
            "--keys",
            "keys",
            "--in",
            s(&mnist_images()),
            "--out",
            "b4",
            "--batch-size",
            "2",
        ],
        &[],
        "latency",
    );
    assert!(!d.join("b4").exists());
    // keygen: existing directory, missing model.
    fails(
        &d,
        &["keygen", s(&m), "--out", "keys"],
        &[],
        "already exists",
    );
    fails(
        &d,
        &["keygen", "nope.onnx", "--out", "k2"],
        &[],
        "does not exist",
    );
    assert!(!d.join("k2").exists());
    // decrypt: an incomplete result leaves no prediction file.
    ok(
        &d,
        &[
            "infer",
            s(&m),
            "--keys",
            "keys/server",
            "--in",
            "batch",
            "--out",
            "part",
            "--shard",
            "0/2",
        ],
    );
    fails(
        &d,
        &[
            "decrypt",
            "--no-noise-flooding",
            "--keys",
            "keys",
            "--in",
            "part",
            "--out",
            "p.csv",
        ],
        &[],
        "incomplete",
    );
    assert!(!d.join("p.csv").exists());
    fails(
        &d,
        &[
            "decrypt",
            "--no-noise-flooding",
            "--keys",
            "keys",
            "--in",
            "part",
            "--out",
            "p.txt",
        ],
        &[],
        ".csv or .npy",
    );
    // Results of one batch cannot be mixed into another's directory.
    ok(
        &d,
        &[
            "encrypt",
            "--keys",
            "keys",
            "--in",
            s(&mnist_images()),
            "--out",
            "batch2",
            "--limit",
            "2",
        ],
    );
    fails(
        &d,
        &[
            "infer",
            s(&m),
            "--keys",
            "keys/server",
            "--in",
            "batch2",
            "--out",
            "part",
        ],
        &[],
        "another batch",
    );
}

#[test]
fn json_reports_errors_and_verbose_logs() {
    let d = tempdir("json");
    let o = home(&d, &["inspect", "nothing-here", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains("nothing-here"));
    let tiny = d.join("tiny.onnx");
    tiny_model(&tiny);
    let o = home(
        &d,
        &[
            "-v",
            "keygen",
            s(&tiny),
            "--out",
            "k",
            "--log-n",
            "13",
            "--no-noise-flooding",
        ],
    );
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("INFO") && err.contains("keygen plan"), "{err}");
    let o = home(&d, &["plan", s(&tiny), "--threads", "0"]);
    assert_eq!(o.status.code(), Some(1));
}
