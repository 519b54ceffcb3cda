#!/usr/bin/env python3
"""Train the HE-friendly CryptoNets/TenSEAL-tutorial CNN with numpy only, export to ONNX,
verify with onnxruntime.

Network (same function in plaintext and under encryption):
    Conv2d(1->4, k=7, stride=3, pad=0) : 28x28 -> 4x8x8 = 256
    x*x
    Flatten
    Gemm(256->64)
    x*x
    Gemm(64->10)                        -> logits

Input to the exported ONNX model is pixel/255 (float32, [N,1,28,28]); the training-set
mean/std normalisation is folded into the conv weights/bias after training (exact, no padding).

Training keeps activations in a range that CKKS with scale 2^26 handles: a penalty
lam * sum(relu(|v| - T)^2) on the conv output, the fc1 output and the logits (T per layer,
see --bound-*) is added to the cross-entropy.

Usage: python train.py --dataset {mnist,fashion} [--epochs N] [--seed S]
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import common

K, S, C = 7, 3, 4  # kernel, stride, out channels
OUT_HW = (28 - K) // S + 1  # 8
NPATCH = OUT_HW * OUT_HW  # 64
HID = 64
NCLS = 10


def im2col(x: np.ndarray) -> np.ndarray:
    """x: (N,28,28) float -> (N, 64, 49) patches, windows row-major, kernel row-major."""
    w = sliding_window_view(x, (K, K), axis=(1, 2))[:, ::S, ::S]  # (N,8,8,7,7)
    return np.ascontiguousarray(w.reshape(len(x), NPATCH, K * K))


def forward(p, P):
    """P: (B,64,49). Returns logits and cache. Conv output flattened channel-major (as ONNX Flatten)."""
    c = P @ p["conv_w"].T + p["conv_b"]  # (B,64,4)
    h1 = c.transpose(0, 2, 1).reshape(len(P), C * NPATCH)  # (B,256) index = ch*64 + pos
    a1 = h1 * h1
    z2 = a1 @ p["fc1_w"].T + p["fc1_b"]
    a2 = z2 * z2
    z3 = a2 @ p["fc2_w"].T + p["fc2_b"]
    return z3, (h1, a1, z2, a2)


def range_pen(v, T):
    e = np.maximum(np.abs(v) - T, 0.0)
    return (e * e).sum(), 2.0 * e * np.sign(v)


def loss_grad(p, P, y, bounds, lam):
    B = len(P)
    z3, (h1, a1, z2, a2) = forward(p, P)
    zmax = z3.max(1, keepdims=True)
    ex = np.exp(z3 - zmax)
    sm = ex / ex.sum(1, keepdims=True)
    ce = -np.log(sm[np.arange(B), y] + 1e-12).mean()
    pen3, g3 = range_pen(z3, bounds[2])
    pen2, g2 = range_pen(z2, bounds[1])
    pen1, g1 = range_pen(h1, bounds[0])
    loss = ce + lam * (pen1 + pen2 + pen3) / B
    dz3 = sm.copy()
    dz3[np.arange(B), y] -= 1.0
    dz3 = dz3 / B + lam * g3 / B
    g = {}
    g["fc2_w"] = dz3.T @ a2
    g["fc2_b"] = dz3.sum(0)
    da2 = dz3 @ p["fc2_w"]
    dz2 = da2 * 2.0 * z2 + lam * g2 / B
    g["fc1_w"] = dz2.T @ a1
    g["fc1_b"] = dz2.sum(0)
    da1 = dz2 @ p["fc1_w"]
    dh1 = da1 * 2.0 * h1 + lam * g1 / B
    dc = dh1.reshape(B, C, NPATCH).transpose(0, 2, 1)  # (B,64,4)
    g["conv_w"] = np.einsum("bpc,bpk->ck", dc, P, optimize=True)
    g["conv_b"] = dc.sum((0, 1))
    return loss, ce, g, z3


def init_params(rng):
    """PyTorch-default-like init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""

    def u(shape, fan_in):
        b = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-b, b, size=shape).astype(np.float32)

    return {
        "conv_w": u((C, K * K), K * K),
        "conv_b": u((C,), K * K),
        "fc1_w": u((HID, C * NPATCH), C * NPATCH),
        "fc1_b": u((HID,), C * NPATCH),
        "fc2_w": u((NCLS, HID), HID),
        "fc2_b": u((NCLS,), HID),
    }


def shift_batch(x, rng, max_shift, fill):
    """Random translation by up to +-max_shift pixels (per image), filling with `fill`."""
    if max_shift <= 0:
        return x
    B = len(x)
    pad = np.pad(x, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)), constant_values=fill)
    win = sliding_window_view(pad, (28, 28), axis=(1, 2))  # (B, 2s+1, 2s+1, 28, 28)
    dy = rng.integers(0, 2 * max_shift + 1, B)
    dx = rng.integers(0, 2 * max_shift + 1, B)
    return win[np.arange(B), dy, dx]


def predict(p, P, batch=2000):
    return np.concatenate([forward(p, P[i : i + batch])[0] for i in range(0, len(P), batch)])


def activations_max(p, P, batch=2000):
    names = ["conv", "square1", "fc1", "square2", "logits"]
    m = dict.fromkeys(names, 0.0)
    for i in range(0, len(P), batch):
        z3, (h1, a1, z2, a2) = forward(p, P[i : i + batch])
        for n, v in zip(names, (h1, a1, z2, a2, z3)):
            m[n] = max(m[n], float(np.abs(v).max()))
    return m


def fold(p, mean, std):
    """conv((x-mean)/std) == conv'(x) with W' = W/std, b' = b - mean/std * sum(W)."""
    q = {k: v.astype(np.float64) for k, v in p.items()}
    q["conv_b"] = q["conv_b"] - (mean / std) * q["conv_w"].sum(1)
    q["conv_w"] = q["conv_w"] / std
    return {k: v.astype(np.float32) for k, v in q.items()}


def export_onnx(p, path, dataset):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(p["conv_w"].reshape(C, 1, K, K), "conv1.weight"),
        numpy_helper.from_array(p["conv_b"], "conv1.bias"),
        numpy_helper.from_array(p["fc1_w"], "fc1.weight"),
        numpy_helper.from_array(p["fc1_b"], "fc1.bias"),
        numpy_helper.from_array(p["fc2_w"], "fc2.weight"),
        numpy_helper.from_array(p["fc2_b"], "fc2.bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["conv1_out"], name="/conv1/Conv",
                         dilations=[1, 1], group=1, kernel_shape=[K, K], pads=[0, 0, 0, 0], strides=[S, S]),
        helper.make_node("Mul", ["conv1_out", "conv1_out"], ["square1_out"], name="/Mul"),
        helper.make_node("Flatten", ["square1_out"], ["flatten_out"], name="/Flatten", axis=1),
        helper.make_node("Gemm", ["flatten_out", "fc1.weight", "fc1.bias"], ["fc1_out"], name="/fc1/Gemm",
                         alpha=1.0, beta=1.0, transB=1),
        helper.make_node("Mul", ["fc1_out", "fc1_out"], ["square2_out"], name="/Mul_1"),
        helper.make_node("Gemm", ["square2_out", "fc2.weight", "fc2.bias"], ["output"], name="/fc2/Gemm",
                         alpha=1.0, beta=1.0, transB=1),
    ]
    graph = helper.make_graph(
        nodes, f"{dataset}_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 1, 28, 28])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", NCLS])],
        initializer=inits,
    )
    model = helper.make_model(graph, producer_name="HomE nn/scripts/train.py", producer_version="1",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7  # IR version of ONNX 1.8, the release that introduced opset 13
    model.doc_string = ("HE-friendly CNN (Conv7x7s3 -> x*x -> Flatten -> Gemm256x64 -> x*x -> Gemm64x10). "
                        "Input: uint8 pixel / 255, shape [N,1,28,28]. Output: logits [N,10].")
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=common.DATASETS, required=True)
    ap.add_argument("--epochs", type=int, default=None, help="default: 150 (mnist), 30 (fashion)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=1e-4, help="decoupled weight decay (AdamW-style)")
    ap.add_argument("--lam", type=float, default=1.0, help="activation range penalty weight")
    ap.add_argument("--bound-conv", type=float, default=5.0)
    ap.add_argument("--bound-fc1", type=float, default=5.0)
    ap.add_argument("--bound-logits", type=float, default=10.0)
    ap.add_argument("--shift", type=int, default=None,
                    help="train-time random translation in pixels; default 2 (mnist), 1 (fashion)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    ds = args.dataset
    epochs = args.epochs or {"mnist": 150, "fashion": 30}[ds]
    shift = args.shift if args.shift is not None else {"mnist": 2, "fashion": 1}[ds]
    t0 = time.time()

    (Xtr, ytr), (Xte, yte), split = common.load(ds)
    xtr = Xtr.astype(np.float32) / np.float32(255.0)
    xte = Xte.astype(np.float32) / np.float32(255.0)
    mean, std = float(xtr.mean()), float(xtr.std())
    xtr_n = (xtr - mean) / std
    fill = np.float32(-mean / std)  # a 0 pixel after normalisation
    Pte_norm = im2col((xte - mean) / std)
    ytr_i = ytr.astype(np.int64)
    print(f"[{ds}] train {len(Xtr)} test {len(Xte)} mean {mean:.4f} std {std:.4f}")

    rng = np.random.default_rng(args.seed)
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    bounds = (args.bound_conv, args.bound_fc1, args.bound_logits)
    steps_per_epoch = int(np.ceil(len(xtr_n) / args.batch))
    total = epochs * steps_per_epoch
    step = 0
    for ep in range(epochs):
        order = rng.permutation(len(xtr_n))
        tl = tc = 0.0
        correct = 0
        for i in range(0, len(order), args.batch):
            idx = order[i : i + args.batch]
            Pb = im2col(shift_batch(xtr_n[idx], rng, shift, fill))
            loss, ce, g, z = loss_grad(p, Pb, ytr_i[idx], bounds, args.lam)
            if not np.isfinite(loss):
                raise SystemExit("diverged")
            step += 1
            lr = args.lr * 0.5 * (1 + np.cos(np.pi * step / total))  # cosine decay
            for k in p:
                gk = g[k].astype(np.float32)
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                mh = m[k] / (1 - b1**step)
                vh = v[k] / (1 - b2**step)
                p[k] -= (lr * (mh / (np.sqrt(vh) + eps) + args.wd * p[k])).astype(np.float32)
            tl += loss * len(idx)
            tc += ce * len(idx)
            correct += int((z.argmax(1) == ytr_i[idx]).sum())
        if ep % 5 == 4 or ep == epochs - 1:
            te_acc = float((predict(p, Pte_norm).argmax(1) == yte).mean())
            mx = activations_max(p, Pte_norm)
            print(f"[{ds}] epoch {ep+1:3d} loss {tl/len(xtr_n):.4f} ce {tc/len(xtr_n):.4f} "
                  f"train_acc {correct/len(xtr_n):.4f} test_acc {te_acc:.4f} "
                  f"max|conv| {mx['conv']:.2f} max|fc1| {mx['fc1']:.2f} max|logit| {mx['logits']:.2f} "
                  f"({time.time()-t0:.0f}s)", flush=True)

    # Fold normalisation into the conv so the network input is pixel/255.
    pf = fold(p, mean, std)
    Pte = im2col(xte)
    np_logits = predict(pf, Pte)
    np_acc = float((np_logits.argmax(1) == yte).mean())
    train_acc = float((predict(pf, im2col(xtr)).argmax(1) == ytr).mean())
    mx = activations_max(pf, Pte)
    mx = {"input": float(xte.max()), **mx}

    out = common.model_path(ds)
    export_onnx(pf, out, ds)
    ort_logits = common.ort_logits(out, Xte)
    ort_acc = float((ort_logits.argmax(1) == yte).mean())
    diff = float(np.abs(ort_logits - np_logits).max())
    agree = float((ort_logits.argmax(1) == np_logits.argmax(1)).mean())
    print(f"[{ds}] test accuracy: numpy {np_acc:.4f}  onnxruntime {ort_acc:.4f}  "
          f"(argmax agreement {agree:.4f}, max|logit diff| {diff:.2e})")
    print(f"[{ds}] max |activation| on test set: " + ", ".join(f"{k} {v:.3f}" for k, v in mx.items()))
    if abs(np_acc - ort_acc) > 1.0 / len(yte) + 1e-9:
        raise SystemExit("numpy and onnxruntime accuracies differ")

    import onnx
    import onnxruntime

    sidecar = {
        "name": f"{ds}_cnn",
        "onnx": out.name,
        "dataset": ds,
        "architecture": "Conv(1->4,k7,s3,p0) -> Mul(x,x) -> Flatten -> Gemm(256->64,transB=1) -> Mul(x,x) -> Gemm(64->10,transB=1)",
        "input_name": "input",
        "input_shape": ["batch_size", 1, 28, 28],
        "output_name": "output",
        "input_scale": 1.0 / 255.0,
        "input_shift": 0.0,
        "preprocessing": "x = uint8_pixel * input_scale + input_shift = pixel/255 (float32); "
                         "training-set mean/std normalisation already folded into conv1.weight/conv1.bias",
        "folded_normalization": {"mean": mean, "std": std,
                                 "rule": "W' = W/std, b' = b - (mean/std)*sum(W)"},
        "test_accuracy_numpy": np_acc,
        "test_accuracy_onnxruntime": ort_acc,
        "train_accuracy": train_acc,
        "numpy_ort_max_abs_logit_diff": diff,
        "max_abs_activation": mx,
        "max_abs_activation_note": "max over the whole test split (numpy, folded weights, input pixel/255); "
                                   "conv = Conv output, square1 = its square, fc1 = first Gemm output, "
                                   "square2 = its square, logits = final Gemm output",
        "n_train": int(len(Xtr)),
        "n_test": int(len(Xte)),
        "split": common.SPLIT_DESCRIPTION[ds],
        "training": {"epochs": epochs, "batch": args.batch, "optimizer": "Adam(b1=0.9,b2=0.999), cosine lr decay",
                     "lr": args.lr, "weight_decay": args.wd, "seed": args.seed,
                     "augmentation": f"random translation up to +-{shift} px (zero fill)" if shift else "none",
                     "range_penalty": {"lambda": args.lam, "bound_conv": bounds[0], "bound_fc1": bounds[1],
                                       "bound_logits": bounds[2]},
                     "seconds": round(time.time() - t0, 1)},
        "opset": 13,
        "ir_version": 7,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__},
    }
    if "test_indices" in split:
        sidecar["test_indices"] = [int(i) for i in split["test_indices"]]
    (common.MODELS / f"{ds}_cnn.json").write_text(json.dumps(sidecar, indent=1) + "\n")
    print(f"[{ds}] wrote {out} ({out.stat().st_size} bytes) and {ds}_cnn.json in {time.time()-t0:.0f}s")


if __name__ == "__main__":
    main()
