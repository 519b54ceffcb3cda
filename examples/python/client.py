#!/usr/bin/env python3
"""The client (data owner) of HomE's two-process encrypted MNIST example.

    python examples/python/client.py encrypt --work DIR [--images K]
    python examples/python/server.py --shared DIR/shared
    python examples/python/client.py decrypt --work DIR

`encrypt` plans the committed model, generates the keys, keeps the secret key in DIR/client/
and writes only public material to DIR/shared/: the parameters, the evaluation keys, the
encrypted images and the job description. `decrypt` reads the server's DIR/shared/output.bin,
decrypts with the secret key and compares with onnxruntime's logits.
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

import homefhe

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Default planning: 128-bit parameters chosen for the model, and noise flooding of the decrypted
# logits (IND-CPA-D), so that they may be shared with the server.
JOB = {"model": "nn/models/mnist_cnn.onnx", "mode": "throughput"}


def plan_for(job, context=None):
    model = homefhe.Model.from_onnx(str(ROOT / job["model"]))
    return model.plan(mode=job["mode"], context=context)


def encrypt(work: pathlib.Path, images: int) -> None:
    client, shared = work / "client", work / "shared"
    client.mkdir(parents=True, exist_ok=True)
    shared.mkdir(parents=True, exist_ok=True)
    plan = plan_for(JOB)
    print(plan)
    t = time.time()
    secret_key, eval_keys = plan.keygen()
    x = homefhe.read_idx_images(str(ROOT / "nn/data/mnist_sample.idx3"))[:images]
    encrypted = plan.encrypt_input(x, secret_key)  # seeded: half the upload
    (client / "secret_key.bin").write_bytes(secret_key.export_secret_bytes())
    (shared / "params.bin").write_bytes(plan.context.to_bytes())
    (shared / "eval_keys.bin").write_bytes(eval_keys.to_bytes())
    (shared / "input.bin").write_bytes(encrypted.to_bytes())
    (shared / "job.json").write_text(json.dumps({**JOB, "images": images}))
    mib = sum(f.stat().st_size for f in shared.iterdir()) / 2**20
    print(f"client: {images} images encrypted, keys made, {mib:.1f} MiB of public files in {shared} "
          f"({time.time() - t:.2f} s)")


def decrypt(work: pathlib.Path) -> None:
    client, shared = work / "client", work / "shared"
    job = json.loads((shared / "job.json").read_text())
    context = homefhe.Context.from_bytes((shared / "params.bin").read_bytes())
    plan = plan_for(job, context)
    secret_key = homefhe.SecretKey.import_secret_bytes((client / "secret_key.bin").read_bytes(), context)
    output = homefhe.EncryptedTensor.from_bytes((shared / "output.bin").read_bytes(), context)
    logits = plan.decrypt_output(output, secret_key)
    k = job["images"]
    ort = np.array(json.loads((ROOT / "nn/data/mnist_sample_logits.json").read_text()))[:k]
    labels = homefhe.read_idx_labels(str(ROOT / "nn/data/mnist_sample_labels.idx1"))[:k]
    result = {
        "images": k,
        "accuracy": float((logits.argmax(1) == labels).mean()),
        "agree_with_onnxruntime": float((logits.argmax(1) == ort.argmax(1)).mean()),
        "max_abs_logit_error": float(np.abs(logits - ort).max()),
        "noise_flooding": plan.noise_flooding,
    }
    (client / "result.json").write_text(json.dumps(result))
    print("client:", json.dumps(result))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["encrypt", "decrypt"])
    ap.add_argument("--work", type=pathlib.Path, required=True)
    ap.add_argument("--images", type=int, default=4)
    a = ap.parse_args()
    try:
        encrypt(a.work, a.images) if a.step == "encrypt" else decrypt(a.work)
    except homefhe.HomeError as e:
        print(f"client: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
