#!/usr/bin/env python3
"""Export test images + onnxruntime reference outputs for the Rust side.

Writes, for each dataset in {mnist, fashion} (or --dataset):
  nn/data/{ds}_sample.idx3           first 64 images of the test split (IDX, ubyte, 64x28x28)
  nn/data/{ds}_sample_labels.idx1    their labels (IDX, ubyte)
  nn/data/{ds}_sample_logits.json    onnxruntime logits of nn/models/{ds}_cnn.onnx on them
                                     (list of 64 lists of 10 floats; input = pixel/255)
  nn/data/full/{ds}_test.idx3, {ds}_test_labels.idx1   the whole test split (gitignored)
  nn/data/full/{ds}_ort_pred.idx1    onnxruntime argmax prediction per test image
  nn/data/full/{ds}_ort_logits.json  onnxruntime logits per test image
Use --sample-only to skip nn/data/full/.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

import common

N_SAMPLE = 64


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=common.DATASETS, action="append")
    ap.add_argument("--sample-only", action="store_true")
    args = ap.parse_args()
    for ds in args.dataset or common.DATASETS:
        _, (Xte, yte), _ = common.load(ds)
        model = common.model_path(ds)
        logits = common.ort_logits(model, Xte)
        pred = logits.argmax(1).astype(np.uint8)
        acc = float((pred == yte).mean())

        d = common.DATA
        common.write_idx(d / f"{ds}_sample.idx3", Xte[:N_SAMPLE])
        common.write_idx(d / f"{ds}_sample_labels.idx1", yte[:N_SAMPLE])
        rows = [[float(v) for v in r] for r in logits[:N_SAMPLE]]
        (d / f"{ds}_sample_logits.json").write_text(json.dumps(rows) + "\n")
        sacc = float((pred[:N_SAMPLE] == yte[:N_SAMPLE]).mean())
        print(f"[{ds}] sample: {N_SAMPLE} images, onnxruntime accuracy {sacc:.4f}")

        # Round-trip check of the IDX writer.
        assert np.array_equal(common.read_idx(d / f"{ds}_sample.idx3"), Xte[:N_SAMPLE])
        assert np.array_equal(common.read_idx(d / f"{ds}_sample_labels.idx1"), yte[:N_SAMPLE])

        if not args.sample_only:
            f = common.FULL
            common.write_idx(f / f"{ds}_test.idx3", Xte)
            common.write_idx(f / f"{ds}_test_labels.idx1", yte)
            common.write_idx(f / f"{ds}_ort_pred.idx1", pred)
            (f / f"{ds}_ort_logits.json").write_text(json.dumps([[float(v) for v in r] for r in logits]) + "\n")
            print(f"[{ds}] full: {len(Xte)} test images, onnxruntime accuracy {acc:.4f} -> {f}")


if __name__ == "__main__":
    main()
