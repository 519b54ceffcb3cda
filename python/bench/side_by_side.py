#!/usr/bin/env python3
"""homefhe (Python) vs TenSEAL (Python) vs HomE's Rust API on the MNIST encrypted-CNN tutorial.

    python/bench/side_by_side.sh [IMAGES]        # sets up the venv, then runs this
    python python/bench/side_by_side.py --images 16 [--tenseal-json FILE] [--rounds 2]

Measures, per image (latency mode, one image per ciphertext set, N = 2^13 like TenSEAL's
tutorial), with homefhe: `plan.encrypt_input` (secret key, seeded), `plan.run`,
`plan.decrypt_output`; the same with the Rust API (python/examples/rust_api_baseline.rs, run as
a subprocess, alternating with the Python rounds so that machine load hits both alike); and
reads TenSEAL's numbers from benches/nn-peer/tenseal_cnn.py's JSON line. Counts the lines of user
code each library needs for the tutorial (non-blank, non-comment lines; see `count_lines`).
Prints one JSON object and a Markdown table.
"""

import argparse
import ast
import json
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np

import homefhe

ROOT = pathlib.Path(__file__).resolve().parents[2]
TENSEAL = ROOT / "bench" / "nn-peer" / "tenseal_cnn.py"
README = ROOT / "README.md"


def code_lines(text: str) -> int:
    return sum(1 for l in text.splitlines() if l.strip() and not l.strip().startswith("#"))


def count_lines() -> dict:
    """User code for the tutorial, counted the same way for both libraries.

    homefhe: the README quickstart (import, model, plan, data, keys, encrypt, run, decrypt,
    print). TenSEAL: the tutorial's user code in benches/nn-peer/tenseal_cnn.py: the context
    (`make_context`), getting the weights out of the model (`load_weights`), the encrypted
    forward pass (`enc_forward`), converting the weights to lists, and per image
    `im2col_encoding` + `decrypt` (data loading and timing excluded on both sides)."""
    readme = README.read_text()
    start = readme.index("```python\n", readme.index("## Python (`homefhe`)")) + len("```python\n")
    quick = readme[start:readme.index("```", start)]
    src = TENSEAL.read_text()
    tree = ast.parse(src)
    lines = src.splitlines()
    n_ts = 1  # import tenseal as ts
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in ("make_context", "load_weights", "enc_forward"):
            body = "\n".join(lines[node.lineno - 1:node.end_lineno])
            n_ts += code_lines("\n".join(l for l in body.splitlines() if not l.strip().startswith(('"""', "'''"))))
    # In run(): 6 lines of weight-to-list conversion, 1 kernel-shape line, im2col + forward + decrypt.
    n_ts += 6 + 1 + 3
    return {"homefhe": code_lines(quick), "tenseal": n_ts}


def python_round(plan, sk, ek, x, warmup):
    for i in range(warmup):
        plan.decrypt_output(plan.run(plan.encrypt_input(x[i:i + 1], sk), ek), sk)
    enc, ev, dec, out = [], [], [], []
    for i in range(len(x)):
        t0 = time.perf_counter()
        ct = plan.encrypt_input(x[i:i + 1], sk)
        t1 = time.perf_counter()
        r = plan.run(ct, ek)
        t2 = time.perf_counter()
        y = plan.decrypt_output(r, sk)
        t3 = time.perf_counter()
        enc.append((t1 - t0) * 1e3)
        ev.append((t2 - t1) * 1e3)
        dec.append((t3 - t2) * 1e3)
        out.append(y[0])
    return {
        "median_encrypt_ms": statistics.median(enc),
        "median_eval_ms": statistics.median(ev),
        "median_decrypt_ms": statistics.median(dec),
        "median_total_ms": statistics.median([a + b + c for a, b, c in zip(enc, ev, dec)]),
    }, np.array(out)


def rust_round(k, warmup):
    exe = ROOT / "target" / "release" / "examples" / "rust_api_baseline"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "homefhe", "--example", "rust_api_baseline"],
                       cwd=ROOT, check=True)
    p = subprocess.run([str(exe), str(k), str(warmup)], capture_output=True, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tenseal-json", type=pathlib.Path, help="tenseal_cnn.py's JSON line (mnist)")
    a = ap.parse_args()

    model = homefhe.Model.from_onnx(str(ROOT / "nn/models/mnist_cnn.onnx"))
    plan = model.plan(mode="latency", log_n=13, min_scale_bits=24, noise_flooding=False)
    t = time.perf_counter()
    sk, ek = plan.keygen()
    keygen_ms = (time.perf_counter() - t) * 1e3
    x = homefhe.read_idx_images(str(ROOT / "nn/data/mnist_sample.idx3"))[:a.images]
    ort = np.array(json.loads((ROOT / "nn/data/mnist_sample_logits.json").read_text()))[:a.images]

    py_rounds, rs_rounds = [], []
    for _ in range(a.rounds):
        rs_rounds.append(rust_round(a.images, a.warmup))
        r, logits = python_round(plan, sk, ek, x, a.warmup)
        py_rounds.append(r)
    med = lambda rows, key: statistics.median(r[key] for r in rows)  # noqa: E731
    py = {k: med(py_rounds, k) for k in py_rounds[0]}
    rs = {k: med(rs_rounds, k) for k in py_rounds[0]}
    res = {
        "images": a.images,
        "rounds": a.rounds,
        "params": plan.context.describe(),
        "homefhe_python": {**py, "keygen_ms": keygen_ms,
                           "agree_with_ort": float((logits.argmax(1) == ort.argmax(1)).mean()),
                           "max_abs_logit_err_vs_ort": float(np.abs(logits - ort).max())},
        "homefhe_rust_api": rs,
        "python_overhead_eval": py["median_eval_ms"] / rs["median_eval_ms"] - 1,
        "python_overhead_total": py["median_total_ms"] / rs["median_total_ms"] - 1,
        "rounds_detail": {"python": py_rounds, "rust": rs_rounds},
        "lines_of_user_code": count_lines(),
    }
    ts = None
    if a.tenseal_json and a.tenseal_json.exists():
        rows = [json.loads(l) for l in a.tenseal_json.read_text().splitlines() if l.strip()]
        rows = [r for r in rows if r.get("dataset") == "mnist"]
        ts = rows[-1] if rows else None
    res["tenseal"] = ts
    print(json.dumps(res))
    loc = res["lines_of_user_code"]
    print("\n| | homefhe (Python) | HomE Rust API | TenSEAL (Python) |")
    print("| --- | --- | --- | --- |")
    print(f"| lines of user code (MNIST tutorial) | {loc['homefhe']} | – | {loc['tenseal']} |")
    tsv = lambda k, f="{:.1f}": f.format(ts[k]) if ts else "n/a"  # noqa: E731
    for key, name in (("median_encrypt_ms", "encrypt ms/image"), ("median_eval_ms", "evaluate ms/image"),
                      ("median_decrypt_ms", "decrypt ms/image"), ("median_total_ms", "total ms/image")):
        print(f"| {name} | {py[key]:.1f} | {rs[key]:.1f} | {tsv(key)} |")
    print(f"| Python overhead over the Rust API | eval {100 * res['python_overhead_eval']:+.1f} %, "
          f"total {100 * res['python_overhead_total']:+.1f} % | – | – |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
