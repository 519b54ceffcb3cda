"""CKKS: numpy round trips with precision in bits, every operator against numpy."""

import numpy as np
import pytest

import homefhe
from conftest import bits, small_context


def enc(ctx, key, v):
    return ctx.encrypt(np.asarray(v, dtype=float), key)


@pytest.mark.parametrize("length", [1, 7, 64, 2048])
@pytest.mark.parametrize("keykind", ["secret", "public"])
def test_round_trip_precision(ctx, sk, pk, rng, length, keykind):
    v = rng.uniform(-1, 1, length)
    key = sk if keykind == "secret" else pk
    ct = ctx.encrypt(v, key)
    assert len(ct) == length
    assert ct.level == ctx.max_level
    assert ct.scale == ctx.scale
    assert ct.seeded == (keykind == "secret")
    out = sk.decrypt(ct)
    assert out.dtype == np.float64 and out.shape == (length,)
    # Scale 2^40, fresh noise ~2^5: well over 25 bits.
    assert bits(v, out) > 25, bits(v, out)


def test_round_trip_accepts_lists_and_ints(ctx, sk):
    out = sk.decrypt(ctx.encrypt([1, 2, 3], sk))
    assert bits([1, 2, 3], out) > 25


def test_encode_decode(ctx, rng):
    v = rng.uniform(-5, 5, 100)
    pt = ctx.encode(v)
    assert pt.level == ctx.max_level and len(pt) == 100
    assert bits(v, ctx.decode(pt)) > 30


def test_complex_decrypt(ctx, sk, ek):
    v = np.array([1.0, -2.0, 0.5])
    out = sk.decrypt(ctx.encrypt(v, sk), complex=True)
    assert out.dtype == np.complex128
    assert bits(v, out.real) > 25 and np.max(np.abs(out.imag)) < 1e-6
    conj = ctx.encrypt(v, sk).conjugate()
    assert bits(v, sk.decrypt(conj)) > 25


def test_add_sub_neg(ctx, sk, pk, ek, rng):
    a, b = rng.uniform(-1, 1, 32), rng.uniform(-1, 1, 32)
    x, y = enc(ctx, sk, a), enc(ctx, pk, b)
    assert bits(a + b, sk.decrypt(x + y)) > 24
    assert bits(a - b, sk.decrypt(x - y)) > 24
    assert bits(-a, sk.decrypt(-x)) > 24
    assert bits(a + b, sk.decrypt(x + b)) > 24
    assert bits(b + a, sk.decrypt(b + x)) > 24
    assert bits(a - b, sk.decrypt(x - b)) > 24
    assert bits(b - a, sk.decrypt(b - x)) > 24
    assert bits(a + 1.5, sk.decrypt(x + 1.5)) > 24
    assert bits(1.5 + a, sk.decrypt(1.5 + x)) > 24
    assert bits(a - 2, sk.decrypt(x - 2)) > 24
    assert bits(3 - a, sk.decrypt(3 - x)) > 24
    assert bits(a + b, sk.decrypt(x.add(y))) > 24
    assert bits(a - b, sk.decrypt(x.sub(y))) > 24


def test_mul_and_rescale(ctx, sk, ek, rng):
    a, b = rng.uniform(-1, 1, 32), rng.uniform(-1, 1, 32)
    x, y = enc(ctx, sk, a), enc(ctx, sk, b)
    xy = x * y
    assert xy.size == 2  # relinearized with the attached key
    assert xy.scale == pytest.approx(ctx.scale**2)
    r = xy.rescale()
    assert r.level == ctx.max_level - 1
    assert r.scale == pytest.approx(ctx.scale**2 / ctx.q[ctx.max_level])
    assert bits(a * b, sk.decrypt(r)) > 20
    # By a scalar and by an array: rescale restores the scale exactly.
    for s in (2.5, -0.75, 3):
        r = (x * s).rescale()
        assert r.scale == ctx.scale
        assert bits(a * s, sk.decrypt(r)) > 20
        assert bits(s * a, sk.decrypt((s * x).rescale())) > 20
    r = (x * b).rescale()
    assert r.scale == ctx.scale
    assert bits(a * b, sk.decrypt(r)) > 20
    # Explicit keys, and a product without relinearization (3 components) then relinearize.
    assert bits(a * b, sk.decrypt(x.mul(y, keys=ek).rescale())) > 20


def test_mul_without_relin_key_keeps_three_components(rng):
    # Other parameters than the session's: attached keys belong to the parameter set (every
    # Context with the same parameters in a process shares them).
    c = small_context(log_n=11, q_bits=(50, 40, 40))
    s = c.keygen()
    a = rng.uniform(-1, 1, 8)
    x = c.encrypt(a, s)
    assert c.eval_keys() is None
    x3 = x * x
    assert x3.size == 3
    assert bits(a * a, s.decrypt(x3.rescale())) > 20
    keys = s.eval_keys(relin=True)
    x2 = x3.relinearize(keys=keys)
    assert x2.size == 2
    assert bits(a * a, s.decrypt(x2.rescale())) > 20
    with pytest.raises(homefhe.MissingKeyError):
        x.rotate(1)


def test_levels_align_by_dropping(ctx, sk, ek, rng):
    a, b = rng.uniform(-1, 1, 16), rng.uniform(-1, 1, 16)
    x = enc(ctx, sk, a)
    low = (enc(ctx, sk, b) * 1.0).rescale()  # level L-1, scale exactly Δ
    s = x + low
    assert s.level == ctx.max_level - 1
    assert bits(a + b, sk.decrypt(s)) > 24
    d = x.drop_to_level(0)
    assert d.level == 0 and bits(a, sk.decrypt(d)) > 24


def test_scale_mismatch_is_an_error_with_both_scales(ctx, sk, ek):
    x = enc(ctx, sk, [1.0, 2.0])
    with pytest.raises(homefhe.HomeError, match="scale mismatch"):
        x + (x * x).rescale()
    # with_scale: explicit, for callers managing scales by hand.
    y = (x * x).rescale().with_scale(x.scale)
    assert (x.drop_to_level(y.level) + y).level == y.level


def test_rotate_matches_numpy_roll(ctx, sk, ek, rng):
    a = rng.uniform(-1, 1, ctx.slots)
    x = enc(ctx, sk, a)
    for k in (1, 3, -5, 0):
        r = x.rotate(k)
        assert len(r) == ctx.slots
        assert bits(np.roll(a, -k), sk.decrypt(r)) > 24
    assert bits(np.roll(a, -3), sk.decrypt(x.rotate(3, keys=ek))) > 24


def test_sum_and_dot(ctx, sk, ek, rng):
    a, b = rng.uniform(-1, 1, 50), rng.uniform(-1, 1, 50)
    x, y = enc(ctx, sk, a), enc(ctx, sk, b)
    s = x.sum()
    assert len(s) == 1
    assert abs(sk.decrypt(s)[0] - a.sum()) < 1e-5
    assert abs(sk.decrypt(x.dot(y))[0] - a @ b) < 1e-4
    assert abs(sk.decrypt(x.dot(b))[0] - a @ b) < 1e-4
    # Scalars touch only the vector's values: the padding slots stay zero for sum().
    assert abs(sk.decrypt((x + 1.5).sum())[0] - (a + 1.5).sum()) < 1e-5
    assert abs(sk.decrypt((2 - x).sum())[0] - (2 - a).sum()) < 1e-5


def test_polynomial_expression(ctx, sk, ek, rng):
    a = rng.uniform(-1, 1, 16)
    x = enc(ctx, sk, a)
    y = (x * x).rescale()
    z = (y * 0.5).rescale() + 1.5  # level 0
    assert z.level == 0
    assert bits(0.5 * a * a + 1.5, sk.decrypt(z)) > 18


def test_properties_and_repr(ctx, sk, pk, ek):
    x = ctx.encrypt([1.0], sk)
    r = repr(x)
    assert "level=2" in r and "scale=2^40.00" in r
    assert "N=2^12" in repr(ctx) and "levels=2" in repr(ctx)
    assert ctx.degree == 4096 and ctx.slots == 2048 and ctx.max_level == 2
    assert len(ctx.q) == 3 and len(ctx.p) == 1 and ctx.security == "insecure-for-testing"
    assert "<secret>" in repr(sk)
    assert "seeded=" in repr(pk) and "relin=true" in repr(ek)
    for obj in (sk, pk, ek):
        assert len(repr(obj)) < 300  # parameters only: no key material
    assert ek.has_relin and ek.has_conjugation and 3 in ek.rotations
    assert ek.nbytes > 0


def test_context_from_intent_and_primes():
    c = homefhe.Context.ckks(depth=2, scale_bits=40)
    assert c.security == "128" and c.max_level == 2 and c.degree == 8192
    c2 = homefhe.Context.from_moduli(log_n=13, q=c.q, p=c.p, scale_bits=40)
    assert c2.q == c.q and c2.p == c.p
    with pytest.raises(homefhe.HomeError, match="insecure"):
        homefhe.Context.from_moduli(log_n=12, q_bits=[60] * 6, p_bits=[60])
    with pytest.raises(ValueError):
        homefhe.Context.ckks(depth=2, security="insecure-for-testing")


def test_threads(ctx, sk):
    homefhe.set_num_threads(1)
    try:
        assert homefhe.get_num_threads() == 1
        assert bits([1.0], sk.decrypt(ctx.encrypt([1.0], sk))) > 25
    finally:
        homefhe.set_num_threads(None)
    with pytest.raises(homefhe.HomeError):
        homefhe.set_num_threads(0)


def test_threads_env_var():
    import os
    import subprocess
    import sys

    env = dict(os.environ, HOMEFHE_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", "import homefhe; print(homefhe.get_num_threads())"],
        env=env, capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "1"


def test_decrypt_flooded_with_an_estimated_bound():
    """Noise flooding from Python: a bound from an estimation run, then a flooded decryption
    whose noise has the reported size; precision in bits before and after."""
    c = small_context(log_n=12, q_bits=(60, 50, 50), scale_bits=50)
    sk = c.keygen()
    c.set_eval_keys(sk.eval_keys())
    x = np.linspace(-1, 1, 64)
    est_run = (c.encrypt(x, sk) * c.encrypt(x, sk)).rescale()
    bound = c.noise_bound_bits(sk.decrypt(est_run), x * x, est_run.scale)
    y = (c.encrypt(x, sk) * c.encrypt(x, sk)).rescale()
    raw = sk.decrypt(y)
    flooded, report = sk.decrypt_flooded(y, bound)
    before = -np.log2(np.max(np.abs(raw - x * x)))
    after = -np.log2(np.max(np.abs(flooded - x * x)))
    assert report["noise_bound_bits"] >= bound
    assert abs(np.log2(np.std(flooded - x * x)) - report["log2_slot_sigma"]) < 0.5, report
    assert before - after > 16, (before, after)
    with pytest.raises(homefhe.HomeError):
        sk.decrypt_flooded(y, float("nan"))


def test_insecure_parameters_load_only_by_name():
    """A blob of insecure-for-testing parameters: refused by default in a process that does not
    hold them, loaded with allow_insecure=True (finding 6)."""
    import subprocess
    import sys

    blob = small_context(log_n=11, q_bits=(50, 40)).to_bytes()
    code = (
        "import sys, homefhe\n"
        "b = sys.stdin.buffer.read()\n"
        "try:\n"
        "    homefhe.Context.from_bytes(b)\n"
        "    print('accepted')\n"
        "except homefhe.HomeError as e:\n"
        "    print('refused', e)\n"
        "print(homefhe.Context.from_bytes(b, allow_insecure=True).degree)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, timeout=120)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert out.startswith("refused") and "insecure" in out.lower(), out
    assert out.strip().endswith("2048"), out
