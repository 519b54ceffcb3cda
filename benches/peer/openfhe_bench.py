#!/usr/bin/env python3
"""OpenFHE CKKS micro-benchmarks via the `openfhe` Python wheel (CPython 3.10 only).

Run with benches/peer/.venv310/bin/python (see setup.sh). Prints one JSON object per op.
Parameters: CKKSRNS, FirstModSize=60, ScalingModSize=40, multiplicative depth = number of
40-bit primes (so L = depth+1 ciphertext primes, same Q chain as SEAL), FIXEDMANUAL rescaling,
HYBRID key switching with --dnum large digits (default 3; OpenFHE picks the special primes P
itself, 60-bit each), ring dimension set explicitly, batch size N/2. Security level
HEStd_128_classic is tried first; if OpenFHE refuses the ring dimension for it (logN=14: log2(QP)
exceeds the 128-bit bound because of the 3 special primes) HEStd_NotSet is used and reported.

Threads: OpenFHE parallelises with OpenMP, and OMP_NUM_THREADS must be set before the library is
loaded. This script therefore re-executes itself with OMP_NUM_THREADS=--threads when the
environment does not already match.
"""
import os
import sys

if __name__ == "__main__":
    # Must happen before `import openfhe` (libgomp reads OMP_NUM_THREADS at load time).
    _t = None
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            _t = sys.argv[i + 1]
        elif arg.startswith("--threads="):
            _t = arg.split("=", 1)[1]
    _t = _t or "1"
    if os.environ.get("OMP_NUM_THREADS") != _t:
        env = dict(os.environ, OMP_NUM_THREADS=_t)
        os.execve(sys.executable, [sys.executable] + sys.argv, env)

import math
import random
import re
import struct

from common import N_SCALING, parse_args, bench, emit, log, SCALE_BITS, FIRST_BITS

import openfhe as fhe


def openfhe_version():
    """OpenFHE (C++) release the wheel was built from, from the wheel's build-config.txt."""
    wheel = getattr(fhe, "__version__", "?")
    native = None
    cfg = os.path.join(os.path.dirname(fhe.__file__), "build-config.txt")
    try:
        with open(cfg) as f:
            m = re.search(r"^OPENFHE_TAG=v?([0-9.]+)", f.read(), re.M)
            native = m.group(1) if m else None
    except OSError:
        pass
    if native is None:  # wheel versions are <openfhe>.<wheel-minor>.<ubuntu>
        native = ".".join(wheel.split(".")[:3])
    return f"OpenFHE {native}", wheel


def key_moduli(N, blob):
    """Distinct RNS moduli appearing in a BINARY-serialized eval key (its basis is Q u P).

    Every NativeInteger tower parameter record starts with (cyclotomic order 2N, ring dim N)
    as two u32s, followed (after an optional u32 version) by the u64 modulus q = 1 mod 2N.
    """
    pat = struct.pack("<II", 2 * N, N)
    seen = []
    for m in re.finditer(re.escape(pat), blob):
        off = m.start()
        for d in (8, 12):
            (x,) = struct.unpack_from("<Q", blob, off + d)
            if x > 1 and x % (2 * N) == 1:
                if x not in seen:
                    seen.append(x)
                break
    return seen


def make_context(logn, dnum, level):
    depth = N_SCALING[logn]
    p = fhe.CCParamsCKKSRNS()
    p.SetMultiplicativeDepth(depth)
    p.SetScalingModSize(SCALE_BITS)
    p.SetFirstModSize(FIRST_BITS)
    p.SetScalingTechnique(fhe.ScalingTechnique.FIXEDMANUAL)
    p.SetRingDim(1 << logn)
    p.SetBatchSize(1 << (logn - 1))
    p.SetKeySwitchTechnique(fhe.KeySwitchTechnique.HYBRID)
    p.SetNumLargeDigits(dnum)
    p.SetSecurityLevel(level)
    cc = fhe.GenCryptoContext(p)
    for feat in (fhe.PKESchemeFeature.PKE, fhe.PKESchemeFeature.KEYSWITCH,
                 fhe.PKESchemeFeature.LEVELEDSHE):
        cc.Enable(feat)
    return cc


def main():
    a = parse_args(__doc__.splitlines()[0],
                   lambda ap: ap.add_argument("--dnum", type=int, default=3,
                                              help="HYBRID key-switching large digits (default 3)"))
    logn, N = a.logn, 1 << a.logn
    lib, wheel = openfhe_version()

    security = "HEStd_128_classic"
    try:
        cc = make_context(logn, a.dnum, fhe.SecurityLevel.HEStd_128_classic)
    except Exception as e:  # ring dimension too small for 128-bit with this Q*P
        log(f"[openfhe] 128-bit security refused ({str(e).split(':')[-1].strip()}); using HEStd_NotSet")
        security = "HEStd_NotSet"
        cc = make_context(logn, a.dnum, fhe.SecurityLevel.HEStd_NotSet)
    assert cc.GetRingDimension() == N, cc.GetRingDimension()

    kp = cc.KeyGen()
    cc.EvalMultKeyGen(kp.secretKey)
    cc.EvalRotateKeyGen(kp.secretKey, [1])

    # Actual modulus sizes chosen by OpenFHE (Q from the context, P from the relin key basis).
    q_mods = key_moduli(N, fhe.SerializeEvalMultKeyString(fhe.BINARY, ""))
    logq = cc.GetElementParams().GetModulus()  # exact Q as a Python int
    nq = N_SCALING[logn] + 1
    q, pp = q_mods[:nq], q_mods[nq:]
    if math.prod(q) != logq:
        log("[openfhe] WARNING: could not recover the RNS moduli from the key; sizes below are unreliable")
    qb = [round(math.log2(x), 2) for x in q]
    pb = [round(math.log2(x), 2) for x in pp]
    levels = len(q)
    log(f"[openfhe] {lib} (wheel {wheel}), N=2^{logn}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
        f"security={security}, dnum={a.dnum}")
    log(f"[openfhe] Q primes ({len(q)}) log2: {qb}  (log2 Q = {math.log2(logq):.1f})")
    log(f"[openfhe] P primes ({len(pp)}) log2: {pb}  (log2 QP = {sum(math.log2(x) for x in q_mods):.1f})")

    slots = N // 2
    rng = random.Random(1)
    xs = [rng.uniform(-1, 1) for _ in range(slots)]
    ys = [rng.uniform(-1, 1) for _ in range(slots)]
    ptx = cc.MakeCKKSPackedPlaintext(xs)
    pty = cc.MakeCKKSPackedPlaintext(ys)
    cx = cc.Encrypt(kp.publicKey, ptx)
    cy = cc.Encrypt(kp.publicKey, pty)

    # ---- correctness spot checks (untimed) ----
    prod = cc.EvalMult(cx, cy)  # FIXEDMANUAL: mult + relinearize, no rescale
    resc = cc.Rescale(prod)
    rot = cc.EvalRotate(cx, 1)
    got = cc.Decrypt(kp.secretKey, resc).GetRealPackedValue()
    err_mul = max(abs(got[i] - xs[i] * ys[i]) for i in range(0, slots, 97))
    got = cc.Decrypt(kp.secretKey, rot).GetRealPackedValue()
    err_rot = max(abs(got[i] - xs[(i + 1) % slots]) for i in range(0, slots, 97))
    log(f"[openfhe] check: max err mul+rescale={err_mul:.2e}, rotate(1)={err_rot:.2e}")
    if err_mul > 1e-3 or err_rot > 1e-3:
        raise SystemExit("OpenFHE correctness check failed")

    R = a.reps
    sk, pk = kp.secretKey, kp.publicKey
    res = {}
    res["mul_relin"] = bench(lambda: cc.EvalMult(cx, cy), R)
    res["mul"] = bench(lambda: cc.EvalMultNoRelin(cx, cy), R)
    tmp3 = cc.EvalMultNoRelin(cx, cy)
    res["relin"] = bench(lambda: cc.Relinearize(tmp3), R)
    res["rescale"] = bench(lambda: cc.Rescale(prod), R)
    res["rotate"] = bench(lambda: cc.EvalRotate(cx, 1), R)
    res["add"] = bench(lambda: cc.EvalAdd(cx, cy), R)
    res["encrypt"] = bench(lambda: cc.Encrypt(pk, ptx), R)
    # NB: OpenFHE's Decrypt also CRT-interpolates and CKKS-decodes (cannot be split in Python).
    res["decrypt"] = bench(lambda: cc.Decrypt(sk, cx), R)
    # OpenFHE skips key generation when a key for this secret key is already cached: flush the
    # caches (untimed) before every run.
    res["keygen_relin"] = bench(lambda _: cc.EvalMultKeyGen(sk), R,
                                setup=lambda: fhe.ClearEvalMultKeys())
    res["keygen_galois_1"] = bench(lambda _: cc.EvalRotateKeyGen(sk, [1]), R,
                                   setup=lambda: fhe.CryptoContext.ClearEvalAutomorphismKeys())

    for op, us in res.items():
        rec = {"lib": lib, "logn": logn, "threads": a.threads, "op": op,
               "median_us": round(us, 1), "reps": R, "levels": levels, "dnum": a.dnum,
               "q_bits": qb, "p_bits": pb, "security": security}
        if op == "decrypt":
            rec["note"] = "includes CRT interpolation + CKKS decode"
        emit(rec)


if __name__ == "__main__":
    main()
