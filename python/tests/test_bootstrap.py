"""Bootstrapping at the N = 2^12 insecure preset: levels and precision, and the typed errors."""

import pickle

import numpy as np
import pytest

import homefhe

from conftest import bits, small_context

PRESET = "n12-insecure-for-testing"


@pytest.fixture(scope="module")
def bctx():
    return homefhe.Context.bootstrappable(PRESET)


@pytest.fixture(scope="module")
def bsk(bctx):
    return bctx.keygen()


@pytest.fixture(scope="module")
def bkeys(bsk):
    return bsk.bootstrap_keys()


def test_bootstrappable_context(bctx, bkeys):
    assert bctx.bootstrap_preset == PRESET
    assert bctx.levels_after == 2 == bkeys.levels_after
    assert bctx.security == "insecure-for-testing"
    assert bctx.degree == 4096
    assert bkeys.preset == PRESET and bkeys.context == bctx
    assert bkeys.eval_keys.has_relin and bkeys.eval_keys.has_conjugation
    assert bkeys.nbytes > 0 and "BootstrapKeys(" in repr(bkeys)
    # The preset is remembered per parameters: a context loaded from bytes knows it.
    assert homefhe.Context.from_bytes(bctx.to_bytes()).levels_after == bctx.levels_after


def test_bootstrap_restores_levels_and_precision(bctx, bsk, bkeys):
    rng = np.random.default_rng(2026)
    x = rng.uniform(-1.0, 1.0, bctx.slots)
    ct = bctx.encrypt(x, bsk, level=0)
    assert ct.level == 0
    out = ct.bootstrap(bkeys)
    assert out.level == bctx.levels_after
    assert out.scale == pytest.approx(bctx.scale, rel=1e-9)
    assert len(out) == len(ct)
    got = bsk.decrypt(out)
    # Precision of the worst slot (about 24 bits here; the mean error is about 27 bits).
    assert bits(x, got) >= 20.0, bits(x, got)
    # Attached keys; the levels regained are usable (a product, relinearized and rescaled).
    bctx.set_bootstrap_keys(bkeys)
    try:
        assert bctx.bootstrap_keys() is not None
        again = ct.bootstrap()
        sq = again.mul(again, keys=bkeys.eval_keys).rescale()
        assert sq.level == bctx.levels_after - 1
        assert bits(x * x, bsk.decrypt(sq)) >= 18.0
    finally:
        bctx.set_bootstrap_keys(None)
    assert bctx.bootstrap_keys() is None


def test_bootstrap_errors(bctx, bsk, bkeys):
    ct = bctx.encrypt(np.array([0.5, -0.25]), bsk, level=0)
    # Bootstrappable, but no keys given or attached.
    with pytest.raises(homefhe.MissingKeyError, match="bootstrapping keys"):
        ct.bootstrap()
    # A context that is not bootstrappable: no keys, no bootstrapping.
    ctx = small_context()
    assert ctx.bootstrap_preset is None and ctx.levels_after is None
    sk = ctx.keygen()
    with pytest.raises(homefhe.HomeError, match="not bootstrappable"):
        sk.bootstrap_keys()
    other = ctx.encrypt(np.array([0.5]), sk, level=0)
    with pytest.raises(homefhe.HomeError, match="not bootstrappable"):
        other.bootstrap()
    with pytest.raises(homefhe.ParameterMismatchError):
        other.bootstrap(bkeys)
    with pytest.raises(homefhe.ParameterMismatchError):
        ctx.set_bootstrap_keys(bkeys)
    with pytest.raises(ValueError, match="unknown bootstrapping preset"):
        homefhe.Context.bootstrappable("n14")
    with pytest.raises(TypeError, match="do not serialize"):
        pickle.dumps(bkeys)
