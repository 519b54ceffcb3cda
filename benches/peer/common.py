"""Shared helpers for the SEAL / OpenFHE peer benchmarks (no third-party imports)."""
import argparse
import json
import statistics
import sys
import time

SCALE_BITS = 40
FIRST_BITS = 60
SPECIAL_BITS = 60
# number of 40-bit "scaling" primes per ring dimension
N_SCALING = {14: 6, 15: 14, 16: 30}
DEFAULT_REPS = {14: 20, 15: 10, 16: 5}
WARMUPS = 2


def chain_bits(logn):
    """Full SEAL-style chain: [60] + [40]*k + [60]; the last prime is the special prime."""
    return [FIRST_BITS] + [SCALE_BITS] * N_SCALING[logn] + [SPECIAL_BITS]


def parse_args(desc, extra=None):
    ap = argparse.ArgumentParser(description=desc)
    ap.add_argument("--logn", type=int, choices=[14, 15, 16], required=True)
    ap.add_argument("--threads", type=int, choices=[1, 2], default=1)
    ap.add_argument("--reps", type=int, default=None,
                    help="timed repetitions (default 20/10/5 for logN 14/15/16)")
    if extra:
        extra(ap)
    a = ap.parse_args()
    if a.reps is None:
        a.reps = DEFAULT_REPS[a.logn]
    if a.reps < 1:
        ap.error("--reps must be >= 1")
    return a


def bench(fn, reps, setup=None):
    """Median wall time in microseconds of fn() over `reps` runs after WARMUPS warm-ups.

    `setup` (untimed) is called before every run and its result passed to fn.
    Only the fn call itself sits between the two perf_counter_ns reads.
    """
    samples = []
    for i in range(WARMUPS + reps):
        arg = setup() if setup else None
        if setup:
            t0 = time.perf_counter_ns()
            fn(arg)
            t1 = time.perf_counter_ns()
        else:
            t0 = time.perf_counter_ns()
            fn()
            t1 = time.perf_counter_ns()
        if i >= WARMUPS:
            samples.append((t1 - t0) / 1000.0)
    return statistics.median(samples)


def emit(rec):
    sys.stdout.write(json.dumps(rec) + "\n")
    sys.stdout.flush()


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()
