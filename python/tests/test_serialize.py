"""Bytes and pickle round trips of every object; hostile bytes raise Python exceptions."""

import pickle

import numpy as np
import pytest

import homefhe
from conftest import bits, small_context


def objects(ctx, sk, pk, ek):
    """(name, object, loader) for every object that has a bytes form."""
    ct = ctx.encrypt(np.arange(5.0), sk)
    ct_pk = ctx.encrypt(np.arange(5.0), pk)
    prod = ct * ct  # 3-component-free (relinearized), not seeded
    return [
        ("context", ctx, lambda b: homefhe.Context.from_bytes(b)),
        ("public key", pk, lambda b: homefhe.PublicKey.from_bytes(b, ctx)),
        ("eval keys", ek, lambda b: homefhe.EvalKeys.from_bytes(b, ctx)),
        ("plaintext", ctx.encode([1.0, 2.0]), lambda b: homefhe.Plaintext.from_bytes(b, ctx)),
        ("seeded ciphertext", ct, lambda b: homefhe.Ciphertext.from_bytes(b, ctx, 5)),
        ("ciphertext", ct_pk, lambda b: homefhe.Ciphertext.from_bytes(b, ctx, 5)),
        ("product", prod, lambda b: homefhe.Ciphertext.from_bytes(b, ctx, 5)),
    ]


def assert_home_error(fn):
    """Calls fn and requires a HomeError (or ValueError/TypeError from argument checks), never
    a PanicException (which derives from BaseException, not Exception)."""
    try:
        fn()
    except homefhe.HomeError:
        return
    except BaseException as e:  # noqa: BLE001 - the point is to see what escaped
        pytest.fail(f"expected homefhe.HomeError, got {type(e).__module__}.{type(e).__name__}: {e}")
    pytest.fail("hostile input was accepted")


def test_bytes_round_trips(ctx, sk, pk, ek):
    for name, obj, load in objects(ctx, sk, pk, ek):
        b = obj.to_bytes()
        assert isinstance(b, bytes) and b[:7] == b"HOMEFHE" or b[:8] == b"HOMEKSET", name
        back = load(b)
        assert back.to_bytes() == b, name


def test_ciphertext_round_trip_decrypts(ctx, sk, pk, ek):
    v = np.linspace(-1, 1, 9)
    for key in (sk, pk):
        ct = ctx.encrypt(v, key)
        back = homefhe.Ciphertext.from_bytes(ct.to_bytes(), ctx, length=9)
        assert back.level == ct.level and back.scale == ct.scale
        assert bits(v, sk.decrypt(back)) > 25


def test_pickle_round_trips(ctx, sk, pk, ek):
    v = np.linspace(-1, 1, 9)
    for name, obj, _ in objects(ctx, sk, pk, ek):
        back = pickle.loads(pickle.dumps(obj))
        assert type(back) is type(obj), name
        assert back.to_bytes() == obj.to_bytes(), name
    ct = ctx.encrypt(v, sk)
    back = pickle.loads(pickle.dumps(ct))
    assert len(back) == 9 and bits(v, sk.decrypt(back)) > 25
    # A pickled EvalKeys works for rotations after loading.
    ek2 = pickle.loads(pickle.dumps(ek))
    assert bits(np.roll(v, -1)[:8], sk.decrypt(ct.rotate(1, keys=ek2))[:8]) > 25


def test_seeded_forms_are_about_half(ctx, sk, pk):
    seeded = ctx.encrypt(np.ones(4), sk).to_bytes()
    full = ctx.encrypt(np.ones(4), pk).to_bytes()
    assert len(seeded) < 0.55 * len(full)
    assert pk.seeded
    keys = sk.eval_keys(relin=True)
    n = ctx.degree
    limbs = len(ctx.q) + len(ctx.p)
    unseeded = keys_words = ctx.dnum * 2 * limbs * n * 8
    assert len(keys.to_bytes()) < 0.55 * unseeded, (len(keys.to_bytes()), keys_words)


def test_secret_key_only_through_named_call(ctx, sk):
    assert not hasattr(sk, "to_bytes")
    with pytest.raises(TypeError, match="export_secret_bytes"):
        pickle.dumps(sk)
    b = sk.export_secret_bytes()
    sk2 = homefhe.SecretKey.import_secret_bytes(b, ctx)
    ct = ctx.encrypt([0.25], sk)
    assert bits([0.25], sk2.decrypt(ct)) > 25
    assert_home_error(lambda: homefhe.SecretKey.import_secret_bytes(b[:-1], ctx))
    other = small_context(log_n=12, q_bits=(50, 40))
    assert_home_error(lambda: homefhe.SecretKey.import_secret_bytes(b, other))


def test_truncated_bytes(ctx, sk, pk, ek):
    for name, obj, load in objects(ctx, sk, pk, ek):
        b = obj.to_bytes()
        for cut in sorted({0, 1, 7, 31, 39, 40, 41, len(b) // 2, len(b) - 8, len(b) - 1}):
            assert_home_error(lambda: load(b[:cut]))


def test_bit_flips(ctx, sk, pk, ek):
    rng = np.random.default_rng(5)
    for name, obj, load in objects(ctx, sk, pk, ek):
        b = bytearray(obj.to_bytes())
        positions = sorted({0, 8, 10, 12, 16, 24, 32, 40, len(b) - 1, *rng.integers(0, len(b), 6).tolist()})
        for pos in positions:
            flipped = bytearray(b)
            flipped[pos] ^= 1 << int(rng.integers(0, 8))
            assert_home_error(lambda: load(bytes(flipped)))


def test_wrong_parameters(ctx, sk, pk, ek):
    other = small_context(log_n=12, q_bits=(50, 40))
    for name, obj, _ in objects(ctx, sk, pk, ek):
        if name == "context":
            continue
        b = obj.to_bytes()
        loader = {
            "public key": homefhe.PublicKey.from_bytes,
            "eval keys": homefhe.EvalKeys.from_bytes,
            "plaintext": homefhe.Plaintext.from_bytes,
        }.get(name, homefhe.Ciphertext.from_bytes)
        with pytest.raises(homefhe.ParameterMismatchError):
            loader(b, other)
    # Objects of two contexts do not mix.
    osk = other.keygen()
    with pytest.raises(homefhe.ParameterMismatchError):
        osk.decrypt(ctx.encrypt([1.0], sk))
    with pytest.raises(homefhe.ParameterMismatchError):
        ctx.encrypt([1.0], sk) + other.encrypt([1.0], osk)


def test_wrong_type_and_garbage(ctx, sk, pk, ek):
    ct = ctx.encrypt([1.0], sk).to_bytes()
    assert_home_error(lambda: homefhe.PublicKey.from_bytes(ct, ctx))
    assert_home_error(lambda: homefhe.EvalKeys.from_bytes(ct, ctx))
    assert_home_error(lambda: homefhe.Ciphertext.from_bytes(pk.to_bytes(), ctx))
    assert_home_error(lambda: homefhe.Context.from_bytes(ct))
    rng = np.random.default_rng(9)
    for n in (0, 1, 40, 41, 1000):
        junk = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        for load in (
            homefhe.Context.from_bytes,
            lambda b: homefhe.Ciphertext.from_bytes(b, ctx),
            lambda b: homefhe.PublicKey.from_bytes(b, ctx),
            lambda b: homefhe.EvalKeys.from_bytes(b, ctx),
            lambda b: homefhe.Plaintext.from_bytes(b, ctx),
            lambda b: homefhe.SecretKey.import_secret_bytes(b, ctx),
        ):
            assert_home_error(lambda: load(junk))
    # A valid header in front of junk (so that decoding gets past the magic).
    assert_home_error(lambda: homefhe.Ciphertext.from_bytes(ct[:40] + b"\x00" * (len(ct) - 40), ctx))
    with pytest.raises(TypeError):
        homefhe.Ciphertext.from_bytes(12345, ctx)


def test_bytearray_and_memoryview_accepted(ctx, sk):
    b = ctx.encrypt([2.0], sk).to_bytes()
    for form in (bytearray(b), memoryview(b)):
        assert bits([2.0], sk.decrypt(homefhe.Ciphertext.from_bytes(form, ctx, 1))) > 25
