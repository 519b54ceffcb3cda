#!/usr/bin/env python3
"""The server of HomE's two-process encrypted MNIST example: evaluates the model on encrypted
images with the public evaluation keys only. It reads DIR/shared/{params,eval_keys,input}.bin
and job.json, writes DIR/shared/output.bin and DIR/shared/server_report.json.

    python examples/python/server.py --shared DIR/shared [--threads N]

The report records every file the process opened (through an audit hook) and
`homefhe.secret_keys_created()`, which a server must leave at 0.
"""

import argparse
import json
import pathlib
import sys
import time

opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" and args else None)

import homefhe  # noqa: E402 - after the audit hook, so that every open is seen

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=pathlib.Path, required=True)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    shared = a.shared
    try:
        job = json.loads((shared / "job.json").read_text())
        context = homefhe.Context.from_bytes((shared / "params.bin").read_bytes())
        eval_keys = homefhe.EvalKeys.from_bytes((shared / "eval_keys.bin").read_bytes(), context)
        encrypted = homefhe.EncryptedTensor.from_bytes((shared / "input.bin").read_bytes(), context)
        model = homefhe.Model.from_onnx(str(ROOT / job["model"]))
        # The client's parameters, so that the plan is the one the keys were made for.
        plan = model.plan(mode=job["mode"], context=context)
        t = time.time()
        output = plan.run(encrypted, eval_keys, progress=True, threads=a.threads)
        seconds = time.time() - t
        (shared / "output.bin").write_bytes(output.to_bytes())
    except homefhe.HomeError as e:
        print(f"server: error: {e}", file=sys.stderr)
        return 1
    report = {
        "secret_keys_created": homefhe.secret_keys_created(),
        "opened": opened,
        "images": len(encrypted),
        "eval_seconds": seconds,
        "seconds_per_image": seconds / max(1, len(encrypted)),
    }
    (shared / "server_report.json").write_text(json.dumps(report))
    print(f"server: {len(encrypted)} images in {seconds:.2f} s, secret keys in this process: "
          f"{report['secret_keys_created']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
