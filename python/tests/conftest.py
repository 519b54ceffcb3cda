"""Shared fixtures: small parameters so that the whole suite runs in a few minutes on 2 cores."""

import pathlib

import numpy as np
import pytest

import homefhe

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "nn" / "models" / "mnist_cnn.onnx"
IMAGES = ROOT / "nn" / "data" / "mnist_sample.idx3"
LOGITS = ROOT / "nn" / "data" / "mnist_sample_logits.json"


def small_context(log_n=12, q_bits=(50, 40, 40), scale_bits=40):
    """N = 2^12, depth 2: insecure on purpose (explicit opt-in), fast."""
    return homefhe.Context.from_moduli(
        log_n=log_n,
        q_bits=list(q_bits),
        p_bits=[60],
        scale_bits=scale_bits,
        security="insecure-for-testing",
    )


@pytest.fixture(scope="session")
def ctx():
    return small_context()


@pytest.fixture(scope="session")
def sk(ctx):
    return ctx.keygen()


@pytest.fixture(scope="session")
def pk(sk):
    return sk.public_key()


@pytest.fixture(scope="session")
def ek(ctx, sk):
    keys = sk.eval_keys(
        relin=True,
        rotations=sorted(set(homefhe.Context.sum_rotations(64) + [3, -5])),
        conjugation=True,
    )
    ctx.set_eval_keys(keys)
    return keys


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(12)


@pytest.fixture(scope="session")
def model():
    return homefhe.Model.from_onnx(str(MODEL))


@pytest.fixture(scope="session")
def plan(model):
    # Latency mode at N = 2^13: one ciphertext per image, 35 rotation keys; under a second
    # per image on 2 cores.
    return model.plan(mode="latency", log_n=13, min_scale_bits=24, noise_flooding=False)


@pytest.fixture(scope="session")
def plan_keys(plan):
    return plan.keygen()


@pytest.fixture(scope="session")
def images():
    return homefhe.read_idx_images(str(IMAGES))


@pytest.fixture(scope="session")
def ort_logits():
    import json

    return np.array(json.loads(LOGITS.read_text()))


def bits(want, got):
    """Precision in bits: -log2 of the maximum absolute error."""
    err = float(np.max(np.abs(np.asarray(want) - np.asarray(got))))
    return float("inf") if err == 0 else -np.log2(err)
