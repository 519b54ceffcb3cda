#!/usr/bin/env python3
"""TenSEAL side-by-side: encrypted inference of nn/models/{dataset}_cnn.onnx.

Follows TenSEAL's own encrypted-CNN tutorial ("Tutorial 4 - Encrypted Convolution on MNIST"):
  enc_x, windows_nb = ts.im2col_encoding(ctx, image, 7, 7, 3)
  per output channel: enc_x.conv2d_im2col(kernel, windows_nb) + bias
  ts.CKKSVector.pack_vectors(channels) -> square_ -> mm(fc1.W^T) + b -> square_ -> mm(fc2.W^T) + b
CKKS: poly_modulus_degree 8192, coeff_mod_bit_sizes [31,26,26,26,26,26,26,31], global scale 2^26,
galois keys generated. Single process; TenSEAL/SEAL threading left at its defaults.

Inputs: nn/data/{ds}_sample.idx3 (+ _labels.idx1, _sample_logits.json); with --images K > 64
the full test split in nn/data/full/ (see nn/scripts/export_test_sets.py) is used.
Prints one JSON line per dataset (stdout) and a human summary (stderr).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import tenseal as ts
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "nn" / "scripts"))
import common  # noqa: E402

BITS = [31, 26, 26, 26, 26, 26, 26, 31]
SCALE_BITS = 26
POLY = 8192


def load_weights(path: Path):
    """Pull Conv/Gemm weights out of the ONNX graph and check it has the expected shape."""
    m = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in m.graph.initializer}
    ops = [n.op_type for n in m.graph.node]
    want = ["Conv", "Mul", "Flatten", "Gemm", "Mul", "Gemm"]
    if ops != want:
        raise SystemExit(f"{path}: unexpected graph {ops}, want {want}")
    conv = m.graph.node[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    assert list(attrs["pads"]) == [0, 0, 0, 0], attrs
    assert attrs["strides"][0] == attrs["strides"][1]
    gemms = [n for n in m.graph.node if n.op_type == "Gemm"]
    for g in gemms:
        ga = {a.name: onnx.helper.get_attribute_value(a) for a in g.attribute}
        assert ga.get("transB", 0) == 1 and ga.get("transA", 0) == 0
    cw = init[conv.input[1]]  # (4,1,7,7)
    return {
        "conv_w": cw[:, 0],  # (4,7,7)
        "conv_b": init[conv.input[2]],
        "stride": int(attrs["strides"][0]),
        "kernel": (cw.shape[2], cw.shape[3]),
        "fc1_wT": init[gemms[0].input[1]].T,  # (256,64)
        "fc1_b": init[gemms[0].input[2]],
        "fc2_wT": init[gemms[1].input[1]].T,  # (64,10)
        "fc2_b": init[gemms[1].input[2]],
    }


def make_context():
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=POLY, coeff_mod_bit_sizes=BITS)
    ctx.global_scale = 2**SCALE_BITS
    ctx.generate_galois_keys()
    return ctx


def enc_forward(w, enc_x, windows_nb):
    # Exactly the tutorial's EncConvNet.forward.
    enc_channels = []
    for kernel, bias in zip(w["conv_w_l"], w["conv_b_l"]):
        y = enc_x.conv2d_im2col(kernel, windows_nb) + bias
        enc_channels.append(y)
    enc_x = ts.CKKSVector.pack_vectors(enc_channels)
    enc_x.square_()
    enc_x = enc_x.mm(w["fc1_wT_l"]) + w["fc1_b_l"]
    enc_x.square_()
    enc_x = enc_x.mm(w["fc2_wT_l"]) + w["fc2_b_l"]
    return enc_x


def load_images(ds: str, k: int):
    d = common.DATA
    if k <= 64:
        X = common.read_idx(d / f"{ds}_sample.idx3")[:k]
        y = common.read_idx(d / f"{ds}_sample_labels.idx1")[:k]
    else:
        f = common.FULL
        if not (f / f"{ds}_test.idx3").exists():
            raise SystemExit(f"{f} has no {ds} test split; run nn/scripts/export_test_sets.py")
        X = common.read_idx(f / f"{ds}_test.idx3")[:k]
        y = common.read_idx(f / f"{ds}_test_labels.idx1")[:k]
    return X, y


def run(ds: str, k: int, warmup: int):
    model = common.model_path(ds)
    w = load_weights(model)
    w["conv_w_l"] = w["conv_w"].tolist()
    w["conv_b_l"] = w["conv_b"].tolist()
    for n in ("fc1_wT", "fc1_b", "fc2_wT", "fc2_b"):
        w[n + "_l"] = w[n].tolist()
    kh, kw = w["kernel"]
    X, y = load_images(ds, k)
    x = X.astype(np.float64) / 255.0  # nn/models/{ds}_cnn.json: input_scale 1/255, shift 0

    # onnxruntime reference on the same images (and a check against the committed sample logits).
    ref = common.ort_logits(model, X)
    ref_pred = ref.argmax(1)
    sample_json = common.DATA / f"{ds}_sample_logits.json"
    if sample_json.exists():
        sj = np.array(json.loads(sample_json.read_text()))
        n = min(len(sj), len(ref))
        if np.abs(sj[:n] - ref[:n]).max() > 1e-3:
            print(f"warning: {sample_json.name} differs from onnxruntime now", file=sys.stderr)

    t = time.perf_counter()
    ctx = make_context()
    keygen_ms = (time.perf_counter() - t) * 1e3

    for i in range(min(warmup, len(x))):
        e, nb = ts.im2col_encoding(ctx, x[i].tolist(), kh, kw, w["stride"])
        enc_forward(w, e, nb).decrypt()

    enc_ms, eval_ms, dec_ms, tot_ms = [], [], [], []
    out = np.zeros((len(x), 10))
    for i in range(len(x)):
        t0 = time.perf_counter()
        enc_x, windows_nb = ts.im2col_encoding(ctx, x[i].tolist(), kh, kw, w["stride"])
        t1 = time.perf_counter()
        enc_out = enc_forward(w, enc_x, windows_nb)
        t2 = time.perf_counter()
        out[i] = enc_out.decrypt()
        t3 = time.perf_counter()
        enc_ms.append((t1 - t0) * 1e3)
        eval_ms.append((t2 - t1) * 1e3)
        dec_ms.append((t3 - t2) * 1e3)
        tot_ms.append((t3 - t0) * 1e3)
    pred = out.argmax(1)
    ct_bytes = len(enc_x.serialize())
    res = {
        "lib": f"TenSEAL {ts.__version__}",
        "dataset": ds,
        "model": str(model.relative_to(ROOT)),
        "images": int(len(x)),
        "ckks": {"poly_modulus_degree": POLY, "coeff_mod_bit_sizes": BITS, "scale_bits": SCALE_BITS},
        "keygen_ms": round(keygen_ms, 1),
        "median_encrypt_ms": round(statistics.median(enc_ms), 2),
        "median_eval_ms": round(statistics.median(eval_ms), 2),
        "median_decrypt_ms": round(statistics.median(dec_ms), 3),
        "median_total_ms": round(statistics.median(tot_ms), 2),
        "accuracy": float((pred == y).mean()),
        "ort_accuracy": float((ref_pred == y).mean()),
        "agree_with_ort": float((pred == ref_pred).mean()),
        "max_abs_logit_err_vs_ort": float(np.abs(out - ref).max()),
        "input_ciphertext_bytes": ct_bytes,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=common.DATASETS, action="append")
    ap.add_argument("--images", type=int, default=64, help="K images (<=64: committed sample)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    args = ap.parse_args()
    for ds in args.dataset or common.DATASETS:
        r = run(ds, args.images, args.warmup)
        line = json.dumps(r)
        print(line, flush=True)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with open(args.out, "a") as f:
                f.write(line + "\n")
        print(f"{r['lib']} {ds}: {r['images']} images, accuracy {r['accuracy']:.4f} "
              f"(onnxruntime {r['ort_accuracy']:.4f}), agreement with onnxruntime {r['agree_with_ort']:.4f}, "
              f"max |logit err| {r['max_abs_logit_err_vs_ort']:.2e}; median per image: encrypt "
              f"{r['median_encrypt_ms']:.1f} ms, eval {r['median_eval_ms']:.1f} ms, decrypt "
              f"{r['median_decrypt_ms']:.2f} ms, total {r['median_total_ms']:.1f} ms; keygen "
              f"{r['keygen_ms']:.0f} ms; peak RSS {r['peak_rss_mib']:.0f} MiB", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
