"""Every failure is a Python exception with the Rust error's message; never a PanicException."""

import numpy as np
import pytest

import homefhe


def test_panic_becomes_internal_error_not_panic_exception():
    try:
        homefhe._native._debug_panic()
    except homefhe.InternalError as e:
        assert "index out of bounds" in str(e)
        assert isinstance(e, homefhe.HomeError) and isinstance(e, Exception)
    except BaseException as e:  # noqa: BLE001
        pytest.fail(f"a {type(e).__name__} escaped: {e}")
    else:
        pytest.fail("no exception")


def must_raise_home_error(fn, match=None):
    try:
        fn()
    except homefhe.HomeError as e:
        if match:
            assert match in str(e), str(e)
        return
    except (ValueError, TypeError):
        return
    except BaseException as e:  # noqa: BLE001
        pytest.fail(f"a {type(e).__module__}.{type(e).__name__} escaped: {e}")
    pytest.fail("bad input accepted")


def test_bad_inputs_raise_home_errors(ctx, sk, ek):
    x = ctx.encrypt([1.0, 2.0], sk)
    bad = [
        (lambda: ctx.encrypt(np.zeros(ctx.slots + 1), sk), "out of range"),
        (lambda: ctx.encrypt([1.0], sk, level=99), None),
        (lambda: ctx.encrypt([np.nan], sk), None),
        (lambda: ctx.encrypt([1e300], sk), None),
        (lambda: ctx.encrypt([1.0], sk, scale=-1.0), None),
        (lambda: x.rotate(7), "missing key"),
        (lambda: x.drop_to_level(5), "level"),
        (lambda: x.drop_to_level(0).rescale(), None),
        (lambda: x.rescale().rescale().rescale(), None),
        (lambda: x * 1e300, "out of range"),
        (lambda: x + float("inf"), None),
        (lambda: x * np.zeros(ctx.slots + 5), None),
        (lambda: x.with_scale(0.0), None),
        (lambda: x + "a", None),
        (lambda: homefhe.Context.ckks(depth=2, scale_bits=7), "scale_bits"),
        (lambda: homefhe.Context.ckks(depth=200, scale_bits=40), "insecure"),
        (lambda: homefhe.Context.from_moduli(log_n=3, q_bits=[40], p_bits=[40]), None),
        (lambda: homefhe.Context.from_moduli(log_n=12, q_bits=[70], p_bits=[60], security="insecure-for-testing"), None),
        (lambda: homefhe.Context.from_moduli(log_n=12, q=[12, 13], p=[17], security="insecure-for-testing"), None),
        (lambda: homefhe.Model.from_onnx("/nonexistent.onnx"), "I/O"),
        (lambda: homefhe.Model.from_onnx_bytes(b"\x01\x02garbage"), "ONNX"),
        (lambda: homefhe.read_idx_images("/nonexistent.idx3"), None),
    ]
    for fn, match in bad:
        must_raise_home_error(fn, match)


def test_error_messages_are_rusts(ctx, sk, ek):
    x = ctx.encrypt([1.0], sk)
    with pytest.raises(homefhe.HomeError) as e:
        x.drop_to_level(9)
    assert "drop_to_level needs level >= 9, operand is at level 2" in str(e.value)


def test_model_bad_inputs(model, plan, plan_keys, images):
    sk, ek = plan_keys
    must_raise_home_error(lambda: model.plan(mode="fast"))
    must_raise_home_error(lambda: plan.simulate(np.zeros((2, 5))))
    must_raise_home_error(lambda: plan.encrypt_input(np.zeros((1, 783)), sk))
    must_raise_home_error(lambda: plan.encrypt_input(images[:1], "key"))
    must_raise_home_error(lambda: model.plan(mode="latency", log_n=13, scale_bits=60))
    must_raise_home_error(lambda: plan.run(plan.encrypt_input(images[:1], sk), ek, threads=0))
