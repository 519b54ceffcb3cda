#!/usr/bin/env python3
"""Microsoft SEAL CKKS micro-benchmarks via TenSEAL's low-level binding (tenseal.sealapi).

Run with benches/peer/.venv311/bin/python (see setup.sh). Prints one JSON object per op.
Chain: [60] + [40]*k + [60] bits, last prime = special (key-switching) prime, scale 2^40.
SEAL's evaluator is single-threaded: --threads 2 runs the identical single-threaded code and
is only reported (with "note") so that the table has a row for it.
"""
import os
import random
import tempfile

from common import chain_bits, parse_args, bench, emit, log, SCALE_BITS

import tenseal
import tenseal.sealapi as seal


def seal_version(ctx, ct):
    """SEAL does not expose its version through the binding; the serialization header does."""
    fd, path = tempfile.mkstemp(suffix=".seal")
    os.close(fd)
    try:
        ct.save(path)
        try:
            h = seal.Serialization.SEALHeader()
            seal.Serialization.LoadHeader(path, h, False)
            major, minor = h.version_major, h.version_minor
        except Exception:  # fall back to the raw header layout (magic u16, size u8, major u8, minor u8)
            with open(path, "rb") as f:
                raw = f.read(5)
            major, minor = raw[3], raw[4]
    finally:
        os.unlink(path)
    return f"SEAL {major}.{minor}"


def main():
    a = parse_args(__doc__.splitlines()[0])
    logn, N = a.logn, 1 << a.logn
    bits = chain_bits(logn)
    levels = len(bits) - 1  # ciphertext primes (the last one is the special prime)

    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(N)
    parms.set_coeff_modulus(seal.CoeffModulus.Create(N, bits))
    # SEAL's security tables stop at N=2^15, so N=2^16 is "non-compliant" for TC128 whatever the
    # modulus; there we use sec_level NONE (1320 bits is within the HE-standard 128-bit bound).
    security = "tc128" if logn <= 15 else "none"
    level = seal.SEC_LEVEL_TYPE.TC128 if security == "tc128" else seal.SEC_LEVEL_TYPE.NONE
    ctx = seal.SEALContext(parms, True, level)
    if ctx.parameters_error_message() != "valid":
        raise SystemExit(f"SEAL rejected parameters: {ctx.parameters_error_message()}")
    q = [m.bit_count() for m in ctx.first_context_data().parms().coeff_modulus()]
    p = [m.bit_count() for m in ctx.key_context_data().parms().coeff_modulus()][len(q):]

    kg = seal.KeyGenerator(ctx)
    sk = kg.secret_key()
    pk = seal.PublicKey()
    kg.create_public_key(pk)
    rk = seal.RelinKeys()
    kg.create_relin_keys(rk)
    # pybind resolves a list[int] to the galois-element overload: step 1 <-> element 3 (mod 2N)
    galois_elt = pow(3, 1, 2 * N)
    gk = seal.GaloisKeys()
    kg.create_galois_keys([galois_elt], gk)

    enc = seal.Encryptor(ctx, pk)
    dec = seal.Decryptor(ctx, sk)
    ev = seal.Evaluator(ctx)
    ce = seal.CKKSEncoder(ctx)
    slots = ce.slot_count()
    scale = 2.0 ** SCALE_BITS

    rng = random.Random(1)
    xs = [rng.uniform(-1, 1) for _ in range(slots)]
    ys = [rng.uniform(-1, 1) for _ in range(slots)]
    ptx, pty = seal.Plaintext(), seal.Plaintext()
    ce.encode(xs, scale, ptx)
    ce.encode(ys, scale, pty)
    cx, cy = seal.Ciphertext(ctx), seal.Ciphertext(ctx)
    enc.encrypt(ptx, cx)
    enc.encrypt(pty, cy)

    lib = seal_version(ctx, cx)
    log(f"[seal] {lib} (tenseal {tenseal.__version__}), N=2^{logn}, q bits={q}, "
        f"special p bits={p}, log2(QP)={sum(q) + sum(p)}, levels={levels}")

    # ---- correctness spot checks (untimed) ----
    prod = seal.Ciphertext(ctx)
    ev.multiply(cx, cy, prod)
    ev.relinearize_inplace(prod, rk)
    resc = seal.Ciphertext(ctx)
    ev.rescale_to_next(prod, resc)
    rot = seal.Ciphertext(ctx)
    ev.rotate_vector(cx, 1, gk, rot)
    pt = seal.Plaintext()
    dec.decrypt(resc, pt)
    got = ce.decode_double(pt)
    err_mul = max(abs(got[i] - xs[i] * ys[i]) for i in range(0, slots, 97))
    dec.decrypt(rot, pt)
    got = ce.decode_double(pt)
    err_rot = max(abs(got[i] - xs[(i + 1) % slots]) for i in range(0, slots, 97))
    log(f"[seal] check: max err mul+rescale={err_mul:.2e}, rotate(1)={err_rot:.2e}")
    if err_mul > 1e-3 or err_rot > 1e-3:
        raise SystemExit("SEAL correctness check failed")

    # ---- timed ops ----
    R = a.reps
    out = seal.Ciphertext(ctx)
    out_pt = seal.Plaintext()
    res = {}

    def mul_relin():
        ev.multiply(cx, cy, out)
        ev.relinearize_inplace(out, rk)

    res["mul_relin"] = bench(mul_relin, R)
    res["mul"] = bench(lambda: ev.multiply(cx, cy, out), R)
    tmp3 = seal.Ciphertext(ctx)
    ev.multiply(cx, cy, tmp3)
    res["relin"] = bench(lambda: ev.relinearize(tmp3, rk, out), R)
    res["rescale"] = bench(lambda: ev.rescale_to_next(prod, out), R)
    res["rotate"] = bench(lambda: ev.rotate_vector(cx, 1, gk, out), R)
    res["add"] = bench(lambda: ev.add(cx, cy, out), R)
    res["encrypt"] = bench(lambda: enc.encrypt(ptx, out), R)
    res["decrypt"] = bench(lambda: dec.decrypt(cx, out_pt), R)
    rk2, gk2 = seal.RelinKeys(), seal.GaloisKeys()
    res["keygen_relin"] = bench(lambda: kg.create_relin_keys(rk2), R)
    res["keygen_galois_1"] = bench(lambda: kg.create_galois_keys([galois_elt], gk2), R)

    note = "SEAL evaluator is single-threaded; threads=2 runs the same code" if a.threads != 1 else None
    for op, us in res.items():
        rec = {"lib": lib, "logn": logn, "threads": a.threads, "op": op,
               "median_us": round(us, 1), "reps": R, "levels": levels, "dnum": levels,
               "q_bits": q, "p_bits": p, "security": security}
        if note:
            rec["note"] = note
        emit(rec)


if __name__ == "__main__":
    main()
