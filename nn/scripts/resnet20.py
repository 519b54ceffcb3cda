#!/usr/bin/env python3
"""Export a ResNet-20 (He et al. 2016, the CIFAR-10 variant) to ONNX, as PyTorch would.

    conv3x3(3->16) BN ReLU
    stage 1: 3 basic blocks, 16 channels, 32x32
    stage 2: 3 basic blocks, 32 channels, 16x16 (the first block strides by 2; its shortcut
             is a 1x1 stride-2 convolution with BatchNormalization, "option B")
    stage 3: 3 basic blocks, 64 channels, 8x8
    GlobalAveragePool, Flatten, Gemm(64->10)

A basic block is conv3x3 BN ReLU conv3x3 BN (+ shortcut) ReLU. 19 convolutions on the main
path, 2 shortcut convolutions, 19 ReLUs,
one dense layer: 274,042 parameters at width 16 (BatchNormalization's running statistics
included).

Weights: He-normal convolutions, BatchNormalization with random affine parameters and
running statistics (so that the importer's folding is exercised), seeded. The timing of an
encrypted ResNet-20 does not depend on the weights' values; `--width` scales the channels
(16 gives ResNet-20 proper; 4 a small model with the same graph, for tests).

Also writes `<out>.json` with onnxruntime's logits on `--samples` seeded random inputs in
[0, 1], the reference the encrypted run must agree with.

`--blocks 1 --size 8 --width 2` gives the ResNet-8 on 8x8 inputs that nn's tests run
encrypted (nn/tests/data/resnet8_w2.onnx).

Usage: python resnet20.py [--width 16] [--blocks 3] [--size 32] [--seed 0] [--samples 16] [--out PATH]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import common


class Builder:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, what: str) -> str:
        self.n += 1
        return f"{what}_{self.n}"

    def init(self, what: str, arr: np.ndarray) -> str:
        name = self.name(what)
        self.inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
        return name

    # The weights of each layer; subclasses (nn/scripts/train_resnet20.py) give trained ones.
    def conv_weight(self, cin: int, cout: int, k: int) -> np.ndarray:
        return self.rng.normal(0.0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k))

    def bn_params(self, c: int):
        gamma = self.rng.uniform(0.5, 1.0, c)
        beta = self.rng.normal(0.0, 0.1, c)
        mean = self.rng.normal(0.0, 0.1, c)
        var = self.rng.uniform(0.5, 1.5, c)
        return gamma, beta, mean, var

    def fc_params(self, cin: int, cout: int):
        return self.rng.normal(0.0, np.sqrt(1.0 / cin), (cout, cin)), np.zeros(cout)

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int) -> str:
        w = self.conv_weight(cin, cout, k)
        out = self.name("conv")
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, self.init("w", w)],
                [out],
                name=out,
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[k // 2] * 4,
            )
        )
        return out

    def bn(self, x: str, c: int) -> str:
        gamma, beta, mean, var = self.bn_params(c)
        out = self.name("bn")
        ins = [x] + [self.init(t, a) for t, a in zip(("g", "b", "m", "v"), (gamma, beta, mean, var))]
        self.nodes.append(helper.make_node("BatchNormalization", ins, [out], name=out, epsilon=1e-5))
        return out

    def op(self, kind: str, ins: list[str]) -> str:
        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, ins, [out], name=out))
        return out

    def block(self, x: str, cin: int, cout: int, stride: int) -> str:
        h = self.op("Relu", [self.bn(self.conv(x, cin, cout, 3, stride), cout)])
        h = self.bn(self.conv(h, cout, cout, 3, 1), cout)
        s = x if (stride == 1 and cin == cout) else self.bn(self.conv(x, cin, cout, 1, stride), cout)
        return self.op("Relu", [self.op("Add", [h, s])])


def build(
    width: int,
    seed: int,
    blocks: int = 3,
    size: int = 32,
    in_channels: int = 3,
    builder: Builder | None = None,
    name: str | None = None,
) -> onnx.ModelProto:
    """The ResNet graph; `builder` (default: random weights from `seed`) supplies the weights."""
    b = builder or Builder(np.random.default_rng(seed))
    x = b.op("Relu", [b.bn(b.conv("input", in_channels, width, 3, 1), width)])
    cin = width
    for stage, cout in enumerate((width, 2 * width, 4 * width)):
        for i in range(blocks):
            x = b.block(x, cin, cout, 2 if (stage > 0 and i == 0) else 1)
            cin = cout
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])])
    w, bias = b.fc_params(cin, 10)
    out = "logits"
    b.nodes.append(
        helper.make_node("Gemm", [x, b.init("fc_w", w), b.init("fc_b", bias)], [out], name="fc", transB=1)
    )
    graph = helper.make_graph(
        b.nodes,
        name or f"resnet{6 * blocks + 2}_w{width}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, in_channels, size, size])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 10])],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="home-resnet20")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--blocks", type=int, default=3, help="basic blocks per stage (3: ResNet-20)")
    ap.add_argument("--size", type=int, default=32, help="input height and width")
    a = ap.parse_args()
    depth = 6 * a.blocks + 2
    out = a.out or common.MODELS / f"resnet{depth}_w{a.width}_random.onnx"
    model = build(a.width, a.seed, a.blocks, a.size)
    out.write_bytes(model.SerializeToString())
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(a.seed + 1)
    xs = rng.uniform(0.0, 1.0, (a.samples, 3, a.size, a.size)).astype(np.float32)
    logits = [sess.run(None, {"input": x[None]})[0][0].tolist() for x in xs]
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    side = {
        "model": out.name,
        "architecture": f"ResNet-{depth} (3 stages x {a.blocks} basic blocks, option-B shortcuts), random weights",
        "width": a.width,
        "blocks": a.blocks,
        "parameters": params,
        "seed": a.seed,
        "inputs": {"shape": [3, a.size, a.size], "distribution": "uniform [0, 1)", "rng": f"numpy default_rng({a.seed + 1})"},
        "samples": xs.reshape(a.samples, -1).tolist(),
        "onnxruntime_logits": logits,
    }
    out.with_suffix(".json").write_text(json.dumps(side))
    print(f"wrote {out} ({out.stat().st_size} bytes, {params} parameters) and {out.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
