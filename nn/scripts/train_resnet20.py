#!/usr/bin/env python3
"""Train a ResNet-20 on Fashion-MNIST with numpy only, export it to ONNX, check it with onnxruntime.

Architecture: exactly the graph of nn/scripts/resnet20.py (built by its Builder, so the ONNX op
set is the same: Conv, BatchNormalization, Relu, Add, GlobalAveragePool, Flatten, Gemm) with one
input channel:

    conv3x3(1->16) BN ReLU
    3 stages x 3 basic blocks, 16/32/64 channels; the first block of stages 2 and 3 strides by 2
    and its shortcut is a 1x1 stride-2 conv + BN
    GlobalAveragePool, Flatten, Gemm(64->10)

Input: a Fashion-MNIST image zero-padded from 28x28 to 32x32 (2 pixels on each side), as
float32 pixel/255, shape [1, 1, 32, 32]. The padded image *is* the model's input, so the
encrypted shapes equal CIFAR-10's ResNet-20 except for the single input channel.

Training (numpy, float32, NHWC, im2col + matmul, hand-written backward): BatchNormalization
with batch statistics (running statistics, momentum 0.1, are exported), SGD with momentum 0.9,
linear warm-up then cosine decay, weight decay on conv/fc weights, no augmentation. The loss
adds lam * sum(relu(|v| - B)^2) / batch over the input v of every ReLU, so that |v| <= B:
the encrypted model replaces ReLU by a polynomial on an interval measured from data, and
bounded activations keep that interval small and the test images inside it.

Outputs: nn/models/resnet20_fashion.onnx, nn/models/resnet20_fashion.json (sidecar: split,
licence, settings, accuracies by onnxruntime, activation bounds, `samples` +
`onnxruntime_logits` of the first 16 test images as nn/src/data.rs `read_samples_json` reads
them), and with --export-test the padded test split for the Rust side (git-ignored):
nn/data/full/fashion32_test.idx3, fashion32_test_labels.idx1, fashion32_ort_pred.idx1,
fashion32_ort_logits.json, and fashion32_calib.idx3 (the first 512 training images, padded: the
planner's calibration inputs in nn/examples/simulate_accuracy.rs).

Deterministic for a given seed and numpy/OpenBLAS build (run with OPENBLAS_NUM_THREADS=1).

Usage: python train_resnet20.py [--train-subset N] [--steps 700] [--batch 64] [--seed 0]
       [--time-batches K]  (only time K training batches and exit)
       python train_resnet20.py --export-test-only   (re-export nn/data/full/ from the model)
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

import common
import resnet20

EPS = 1e-5
PAD = 2  # 28 -> 32
SIZE = 32
NCLS = 10
N_SAMPLES = 16
NAME = "resnet20_fashion"


def pad32(x_u8: np.ndarray) -> np.ndarray:
    """(N,28,28) uint8 -> (N,32,32) uint8, zero border of 2 pixels."""
    return np.pad(x_u8, ((0, 0), (PAD, PAD), (PAD, PAD)))


# ---------------------------------------------------------------- layers (NHWC, float32)


def conv_fwd(x, w, k, s):
    """x (N,H,W,C); w (k*k*C, cout), rows ordered (kh, kw, cin). pad = k//2 as resnet20.py."""
    n, h, wd, c = x.shape
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0))) if p else x
    ho = (h + 2 * p - k) // s + 1
    wo = (wd + 2 * p - k) // s + 1
    if k == 1:
        cols = np.ascontiguousarray(xp[:, : s * (ho - 1) + 1 : s, : s * (wo - 1) + 1 : s, :])
    else:
        cols = np.concatenate(
            [xp[:, i : i + s * (ho - 1) + 1 : s, j : j + s * (wo - 1) + 1 : s, :] for i in range(k) for j in range(k)],
            axis=-1,
        )
    y = (cols.reshape(-1, k * k * c) @ w).reshape(n, ho, wo, -1)
    return y, (cols, x.shape, k, s)


def conv_bwd(dy, w, cache):
    cols, xshape, k, s = cache
    n, h, wd, c = xshape
    p = k // 2
    _, ho, wo, cout = dy.shape
    dy2 = dy.reshape(-1, cout)
    dw = cols.reshape(-1, k * k * c).T @ dy2
    dcols = (dy2 @ w.T).reshape(n, ho, wo, k * k, c)
    dxp = np.zeros((n, h + 2 * p, wd + 2 * p, c), np.float32)
    t = 0
    for i in range(k):
        for j in range(k):
            dxp[:, i : i + s * (ho - 1) + 1 : s, j : j + s * (wo - 1) + 1 : s, :] += dcols[:, :, :, t, :]
            t += 1
    dx = dxp[:, p : p + h, p : p + wd, :] if p else dxp
    return dx, dw


def bn_fwd(y, bn, train, mom=0.1):
    if train:
        mean = y.mean((0, 1, 2))
        var = y.var((0, 1, 2))
        m = y.size // y.shape[-1]
        bn["rm"] = (1 - mom) * bn["rm"] + mom * mean
        bn["rv"] = (1 - mom) * bn["rv"] + mom * var * (m / max(m - 1, 1))
    else:
        mean, var = bn["rm"], bn["rv"]
    inv = (1.0 / np.sqrt(var + EPS)).astype(np.float32)
    xhat = (y - mean) * inv
    return xhat * bn["g"] + bn["b"], (xhat, inv)


def bn_bwd(dout, bn, cache):
    xhat, inv = cache
    m = dout.size // dout.shape[-1]
    dg = (dout * xhat).sum((0, 1, 2))
    db = dout.sum((0, 1, 2))
    dxhat = dout * bn["g"]
    dx = inv / m * (m * dxhat - dxhat.sum((0, 1, 2)) - xhat * (dxhat * xhat).sum((0, 1, 2)))
    return dx.astype(np.float32), dg, db


def relu_pen(v, bound, lam, nb):
    """ReLU with the range penalty on its input; returns output, penalty, backward closure."""
    e = np.maximum(np.abs(v) - bound, 0.0)
    pen = lam * float((e * e).sum()) / nb
    mask = v > 0

    def back(dout):
        return np.where(mask, dout, 0.0).astype(np.float32) + (lam * 2.0 / nb) * e * np.sign(v)

    return np.where(mask, v, 0.0), pen, back


# ---------------------------------------------------------------- the network


def layer_specs(width=16, blocks=3):
    """The conv+BN units in resnet20.Builder's creation order: (name, cin, cout, k, stride)."""
    specs = [("stem", 1, width, 3, 1)]
    cin = width
    for stage, cout in enumerate((width, 2 * width, 4 * width)):
        for i in range(blocks):
            s = 2 if (stage > 0 and i == 0) else 1
            specs.append((f"s{stage}b{i}c1", cin, cout, 3, s))
            specs.append((f"s{stage}b{i}c2", cout, cout, 3, 1))
            if s != 1 or cin != cout:
                specs.append((f"s{stage}b{i}sc", cin, cout, 1, s))
            cin = cout
    return specs


def init_params(rng, width=16, blocks=3):
    p = {}
    for name, cin, cout, k, _ in layer_specs(width, blocks):
        p[name] = {
            "w": rng.normal(0.0, np.sqrt(2.0 / (cin * k * k)), (k * k * cin, cout)).astype(np.float32),
            "g": np.ones(cout, np.float32),
            "b": np.zeros(cout, np.float32),
            "rm": np.zeros(cout, np.float32),
            "rv": np.ones(cout, np.float32),
        }
    c = 4 * width
    bnd = 1.0 / np.sqrt(c)
    p["fc"] = {"w": rng.uniform(-bnd, bnd, (c, NCLS)).astype(np.float32), "b": np.zeros(NCLS, np.float32)}
    return p


class Net:
    def __init__(self, p, width=16, blocks=3):
        self.p, self.width, self.blocks = p, width, blocks
        self.specs = {s[0]: s for s in layer_specs(width, blocks)}

    def cbn(self, x, name, train, tape):
        _, _, _, k, s = self.specs[name]
        lp = self.p[name]
        y, cc = conv_fwd(x, lp["w"], k, s)
        z, bc = bn_fwd(y, lp, train)
        if tape is not None:
            tape.append(("cbn", name, cc, bc))
        return z

    def forward(self, x, train, bound=np.inf, lam=0.0, record=None):
        """x (N,32,32,1). Returns logits, penalty, tape (for backward; None when not training).
        `record`: list receiving max |ReLU input| per ReLU (19 entries)."""
        tape = [] if train else None
        nb = len(x)
        pen = 0.0

        def relu(v):
            nonlocal pen
            if record is not None:
                record.append(float(np.abs(v).max()))
            out, pn, back = relu_pen(v, bound, lam, nb)
            pen += pn
            if tape is not None:
                tape.append(("relu", back))
            return out

        h = relu(self.cbn(x, "stem", train, tape))
        cin = self.width
        for stage, cout in enumerate((self.width, 2 * self.width, 4 * self.width)):
            for i in range(self.blocks):
                s = 2 if (stage > 0 and i == 0) else 1
                pre = f"s{stage}b{i}"
                if tape is not None:
                    tape.append(("fork",))
                a = relu(self.cbn(h, pre + "c1", train, tape))
                a = self.cbn(a, pre + "c2", train, tape)
                if s != 1 or cin != cout:
                    if tape is not None:
                        tape.append(("branch", pre + "sc"))
                    sc = self.cbn(h, pre + "sc", train, tape)
                else:
                    if tape is not None:
                        tape.append(("branch", None))
                    sc = h
                if tape is not None:
                    tape.append(("add",))
                h = relu(a + sc)
                cin = cout
        hw = h.shape[1] * h.shape[2]
        z = h.mean((1, 2))
        logits = z @ self.p["fc"]["w"] + self.p["fc"]["b"]
        if tape is not None:
            tape.append(("head", z, h.shape))
        return logits, pen, tape

    def backward(self, dlogits, tape):
        """Walks the tape in reverse. Each block was recorded as
        fork, [c1 cbn, relu, c2 cbn], branch, [sc cbn], add, relu."""
        g = {k: {} for k in self.p}
        _, z, hshape = tape.pop()
        g["fc"]["w"] = z.T @ dlogits
        g["fc"]["b"] = dlogits.sum(0)
        dz = dlogits @ self.p["fc"]["w"].T
        n, hh, ww, c = hshape
        dh = np.broadcast_to((dz / (hh * ww))[:, None, None, :], hshape).astype(np.float32)

        def cbn_back(d, entry):
            _, name, cc, bc = entry
            lp = self.p[name]
            dy, dg, db = bn_bwd(d, lp, bc)
            dx, dw = conv_bwd(dy, lp["w"], cc)
            g[name]["w"], g[name]["g"], g[name]["b"] = dw, dg, db
            return dx

        # Stack machine over the tape, in reverse.
        while tape:
            e = tape.pop()
            if e[0] == "relu":
                dh = e[1](dh)
            elif e[0] == "cbn":
                dh = cbn_back(dh, e)
            elif e[0] == "add":
                # dh flows into both branches: first the shortcut (recorded after "branch").
                d_sum = dh
                sc_entry = tape.pop() if tape[-1][0] == "cbn" else None
                br = tape.pop()
                assert br[0] == "branch"
                d_short = cbn_back(d_sum, sc_entry) if sc_entry is not None else d_sum
                # main path: c2 cbn, relu, c1 cbn, then the fork.
                d = d_sum
                while True:
                    e2 = tape.pop()
                    if e2[0] == "fork":
                        break
                    d = e2[1](d) if e2[0] == "relu" else cbn_back(d, e2)
                dh = d + d_short
            else:
                raise RuntimeError(e[0])
        return g


# ---------------------------------------------------------------- ONNX export


class TrainedBuilder(resnet20.Builder):
    """resnet20.Builder taking trained weights in its creation order instead of random ones."""

    def __init__(self, p, specs):
        super().__init__(np.random.default_rng(0))
        self.p = p
        self.order = [s[0] for s in specs]
        self.ci = 0
        self.bi = 0

    def conv_weight(self, cin, cout, k):
        name = self.order[self.ci]
        self.ci += 1
        w = self.p[name]["w"].reshape(k, k, cin, cout).transpose(3, 2, 0, 1)  # -> (cout, cin, kh, kw)
        return w

    def bn_params(self, c):
        lp = self.p[self.order[self.bi]]
        self.bi += 1
        return lp["g"], lp["b"], lp["rm"], lp["rv"]

    def fc_params(self, cin, cout):
        return self.p["fc"]["w"].T, self.p["fc"]["b"]  # Gemm transB=1: weight (10, 64)


def export(p, path, width=16, blocks=3):
    import onnx

    specs = layer_specs(width, blocks)
    b = TrainedBuilder(p, specs)
    model = resnet20.build(width, 0, blocks, SIZE, in_channels=1, builder=b, name=NAME)
    assert b.ci == len(specs) and b.bi == len(specs)
    onnx.checker.check_model(model, full_check=True)
    path.write_bytes(model.SerializeToString())
    return model


def ort_session(model):
    """onnxruntime session of the model with a free batch dimension (same graph and weights)."""
    import onnx
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    m.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def ort_logits(sess, x32_u8, batch=500):
    outs = []
    for i in range(0, len(x32_u8), batch):
        xb = (x32_u8[i : i + batch].astype(np.float32) / np.float32(255.0))[:, None, :, :]
        outs.append(sess.run(None, {"input": xb})[0])
    return np.concatenate(outs, 0)


N_CALIB = 512


def export_test(sess, Xte32, yte, Xtr32):
    """The padded test split, onnxruntime's outputs on it, and calibration images for the
    planner (the first N_CALIB images of the training file, padded) into nn/data/full/."""
    logits = ort_logits(sess, Xte32)
    pred = logits.argmax(1).astype(np.uint8)
    d = common.FULL
    common.write_idx(d / "fashion32_calib.idx3", Xtr32[:N_CALIB])
    common.write_idx(d / "fashion32_test.idx3", Xte32)
    common.write_idx(d / "fashion32_test_labels.idx1", yte)
    common.write_idx(d / "fashion32_ort_pred.idx1", pred)
    (d / "fashion32_ort_logits.json").write_text(json.dumps([[float(v) for v in r] for r in logits]) + "\n")
    assert np.array_equal(common.read_idx(d / "fashion32_test.idx3"), Xte32)
    print(f"wrote {d}/fashion32_*: {len(Xte32)} images, onnxruntime accuracy {float((pred == yte).mean()):.4f}")
    return logits


def to_nhwc(x_u8):
    return (x_u8.astype(np.float32) / np.float32(255.0))[:, :, :, None]


def predict(net, X32, batch=500, record=None):
    outs = []
    for i in range(0, len(X32), batch):
        rec = [] if record is not None else None
        outs.append(net.forward(to_nhwc(X32[i : i + batch]), False, record=rec)[0])
        if record is not None:
            if not record:
                record.extend(rec)
            else:
                record[:] = [max(a, b) for a, b in zip(record, rec)]
    return np.concatenate(outs, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-subset", type=int, default=60000, help="first N of a seeded permutation of the 60k")
    ap.add_argument("--steps", type=int, default=400, help="SGD steps of --batch images")
    ap.add_argument("--numpy-eval", type=int, default=2000,
                    help="test images the numpy forward measures activation bounds (and agreement) on")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=30, help="linear warm-up steps")
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--lam", type=float, default=0.01, help="range penalty weight")
    ap.add_argument("--bound", type=float, default=6.0, help="B: penalise |ReLU input| > B")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-batches", type=int, default=0)
    ap.add_argument("--export-test-only", action="store_true")
    ap.add_argument("--from-checkpoint", action="store_true",
                    help="skip training: load the weights saved in nn/models/resnet20_fashion_ckpt.npz (git-ignored)")
    ap.add_argument("--eval-limit", type=int, default=0, help="(dry runs) evaluate on the first N test images only")
    ap.add_argument("--name", default=NAME, help="output name in nn/models (dry runs)")
    args = ap.parse_args()
    t0 = time.time()
    (Xtr, ytr), (Xte, yte), _ = common.load("fashion")
    Xtr32, Xte32 = pad32(Xtr), pad32(Xte)
    out = common.MODELS / f"{args.name}.onnx"
    ckpt = out.with_name(out.stem + "_ckpt.npz")
    if args.export_test_only:
        import onnx

        export_test(ort_session(onnx.load(str(out))), Xte32, yte, Xtr32)
        return

    rng = np.random.default_rng(args.seed)
    p = init_params(rng)
    net = Net(p)
    sub = rng.permutation(len(Xtr))[: args.train_subset]
    total = args.steps
    if args.time_batches:
        total = args.time_batches
    vel = {k: {kk: np.zeros_like(vv) for kk, vv in v.items() if kk in ("w", "g", "b")} for k, v in p.items()}
    ytr_i = ytr.astype(np.int64)
    step = 0
    seen = correct = 0
    tl = 0.0
    print(f"train subset {len(sub)}, {total} steps of {args.batch} ({total * args.batch / len(sub):.2f} epochs)", flush=True)
    while step < total and not args.from_checkpoint:
        order = sub[rng.permutation(len(sub))]
        for i in range(0, len(order), args.batch):
            if step >= total:
                break
            idx = order[i : i + args.batch]
            xb = to_nhwc(Xtr32[idx])
            yb = ytr_i[idx]
            nb = len(idx)
            ts = time.time()
            logits, pen, tape = net.forward(xb, True, args.bound, args.lam)
            zmax = logits.max(1, keepdims=True)
            ex = np.exp(logits - zmax)
            sm = ex / ex.sum(1, keepdims=True)
            ce = float(-np.log(sm[np.arange(nb), yb] + 1e-12).mean())
            d = sm
            d[np.arange(nb), yb] -= 1.0
            g = net.backward((d / nb).astype(np.float32), tape)
            step += 1
            if step <= args.warmup:
                lr = args.lr * step / args.warmup
            else:
                lr = args.lr * 0.5 * (1 + np.cos(np.pi * (step - args.warmup) / max(1, total - args.warmup)))
            for k, lp in p.items():
                for kk, gv in g[k].items():
                    if kk == "w":
                        gv = gv + args.wd * lp[kk]
                    vel[k][kk] = 0.9 * vel[k][kk] + gv.astype(np.float32)
                    lp[kk] -= np.float32(lr) * vel[k][kk]
            if not np.isfinite(ce):
                raise SystemExit("diverged")
            seen += nb
            correct += int((logits.argmax(1) == yb).sum())
            tl += (ce + pen) * nb
            if args.time_batches or step % 50 == 0 or step == total:
                print(f"step {step}/{total} lr {lr:.4f} loss {tl / seen:.4f} (pen {pen:.4f}) "
                      f"train_acc {correct / seen:.4f} batch {time.time() - ts:.2f}s total {time.time() - t0:.0f}s",
                      flush=True)
                seen = correct = 0
                tl = 0.0
    if args.time_batches:
        return
    if args.from_checkpoint:
        with np.load(ckpt) as f:
            for key in f.files:
                k, kk = key.split("/")
                if k not in p:
                    continue
                p[k][kk] = f[key]
            train_s = float(f["seconds/s"]) if "seconds/s" in f.files else 0.0
    else:
        train_s = time.time() - t0
        np.savez(ckpt, **{f"{k}/{kk}": v for k, d in p.items() for kk, v in d.items()},
                 **{"seconds/s": np.array(train_s)})
    if args.eval_limit:
        Xte32, yte = Xte32[: args.eval_limit], yte[: args.eval_limit]

    record = []
    n_np = min(args.numpy_eval, len(Xte32))
    np_logits = predict(net, Xte32[:n_np], record=record)
    np_acc = float((np_logits.argmax(1) == yte[:n_np]).mean())
    print(f"numpy accuracy on the first {n_np} test images {np_acc:.4f}; max |ReLU input| per ReLU: {[round(r, 2) for r in record]}", flush=True)

    model = export(p, out)
    sess = ort_session(model)
    logits = export_test(sess, Xte32, yte, Xtr32)
    ort_acc = float((logits.argmax(1) == yte).mean())
    diff = float(np.abs(logits[:n_np] - np_logits).max())
    agree = float((logits[:n_np].argmax(1) == np_logits.argmax(1)).mean())
    n_tr_eval = args.eval_limit or 5000
    tr_logits = ort_logits(sess, Xtr32[sub[:n_tr_eval]])
    tr_acc = float((tr_logits.argmax(1) == ytr[sub[:n_tr_eval]]).mean())
    print(f"onnxruntime test accuracy {ort_acc:.4f} (first {n_np}: numpy {np_acc:.4f}, argmax agreement {agree:.4f}, "
          f"max|logit diff| {diff:.2e}); train accuracy (first {n_tr_eval} of the subset) {tr_acc:.4f}")

    # The single-image model's outputs for the sidecar samples.
    import onnx
    import onnxruntime

    s1 = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    xs = Xte32[:N_SAMPLES].astype(np.float32) / np.float32(255.0)
    sample_logits = [s1.run(None, {"input": x[None, None]})[0][0].tolist() for x in xs]
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    side = {
        "model": out.name,
        "architecture": "ResNet-20 (3 stages x 3 basic blocks, 16/32/64 channels, option-B 1x1 stride-2 "
                        "conv+BN shortcuts), 1 input channel; graph built by nn/scripts/resnet20.py's Builder",
        "width": 16,
        "blocks": 3,
        "parameters": params,
        "dataset": "fashion",
        "licence": "Fashion-MNIST: (c) 2017 Zalando SE (Zalando Research), MIT licence "
                   "(Debian: Expat), https://github.com/zalandoresearch/fashion-mnist",
        "split": common.SPLIT_DESCRIPTION["fashion"],
        "train_subset": {"n": int(len(sub)), "rule": f"numpy default_rng({args.seed}).permutation(60000)"
                         f"[:{len(sub)}] (the first draw of the training rng)"},
        "n_test": int(len(Xte)),
        "preprocessing": "28x28 image zero-padded by 2 pixels on each side to 32x32 (numpy.pad), "
                         "then float32 pixel/255; input shape [1, 1, 32, 32]",
        "input_scale": 1.0 / 255.0,
        "input_shift": 0.0,
        "padding": {"from": [28, 28], "to": [32, 32], "border": PAD, "value": 0},
        "training": {
            "steps": total, "epochs": total * args.batch / len(sub), "batch": args.batch,
            "optimizer": "SGD momentum 0.9 (v = 0.9 v + g; w -= lr v)",
            "lr": args.lr, "schedule": f"linear warm-up {args.warmup} steps, then cosine to 0",
            "weight_decay": args.wd, "weight_decay_on": "conv and fc weights",
            "batchnorm": "batch statistics in training, running statistics (momentum 0.1, unbiased var) exported",
            "augmentation": "none", "seed": args.seed,
            "range_penalty": {"lambda": args.lam, "bound": args.bound,
                              "on": "the input of every ReLU (19), lam*sum(relu(|v|-B)^2)/batch"},
            "seconds": round(train_s, 1), "threads": "1 (OPENBLAS_NUM_THREADS=1)",
        },
        "test_accuracy_onnxruntime": ort_acc,
        "numpy_eval_images": n_np,
        "test_accuracy_numpy_first_images": np_acc,
        "train_accuracy_onnxruntime": tr_acc,
        "train_accuracy_note": f"first {n_tr_eval} images of the training subset, eval mode",
        "numpy_ort_max_abs_logit_diff": diff,
        "numpy_ort_argmax_agreement": agree,
        "max_abs_relu_input": record,
        "max_abs_relu_input_note": f"max |input| of each of the 19 ReLUs in graph order over the first "
                                   f"{n_np} test images (numpy, eval mode); numpy-vs-onnxruntime figures on those too",
        "max_abs_logit": float(np.abs(logits).max()),
        "samples_note": f"the first {N_SAMPLES} test images, padded, flat 1x32x32 pixel/255; "
                        "onnxruntime_logits from the exported model",
        "samples": xs.reshape(N_SAMPLES, -1).tolist(),
        "sample_labels": [int(v) for v in yte[:N_SAMPLES]],
        "onnxruntime_logits": sample_logits,
        "test_set_files": "nn/data/full/fashion32_test.idx3 (+ _labels.idx1, fashion32_ort_pred.idx1, "
                          "fashion32_ort_logits.json, fashion32_calib.idx3 = first 512 training images), "
                          "git-ignored; regenerate with "
                          "nn/scripts/train_resnet20.py --export-test-only",
        "opset": 13,
        "ir_version": 8,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__},
    }
    out.with_suffix(".json").write_text(json.dumps(side) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes, {params} parameters) and {out.with_suffix('.json').name} "
          f"in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
