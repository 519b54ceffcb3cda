#!/usr/bin/env python3
"""Markdown comparison table from benchmark JSON lines.

Usage: table.py [FILE ...]   (reads stdin when no file is given; '-' also means stdin)

Each input line is a JSON object with at least lib, logn, threads, op, median_us. Lines that are
not JSON objects are ignored. Rows = (logN, threads, op); one column per library (median in ms),
plus "HomE / best peer" = HomE median / min(SEAL, OpenFHE medians). If a (lib, logn, threads, op)
appears more than once, the last line wins. Missing entries are shown as an em dash.
"""
import json
import sys

OP_ORDER = ["mul_relin", "mul", "relin", "rescale", "rotate", "add", "encrypt", "decrypt",
            "keygen_relin", "keygen_galois_1"]
DASH = "\u2014"


def family(lib):
    low = lib.lower()
    if low.startswith("home"):
        return "home"
    if low.startswith("seal"):
        return "seal"
    if low.startswith("openfhe"):
        return "openfhe"
    return "other"


def read(streams):
    data = {}
    libs = []
    notes = {}
    for f in streams:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
                key = (int(r["logn"]), int(r["threads"]), str(r["op"]))
                lib = str(r["lib"])
                us = float(r["median_us"])
            except (ValueError, KeyError, TypeError):
                continue
            if lib not in libs:
                libs.append(lib)
            data[(lib,) + key] = us
            meta = []
            if "dnum" in r and "levels" in r:
                meta.append(f"L={r['levels']}, dnum={r['dnum']}")
            if r.get("security"):
                meta.append(f"security={r['security']}")
            if meta:
                notes.setdefault(lib, {})[int(r["logn"])] = ", ".join(meta)
    return data, libs, notes


def fmt_ms(us):
    if us is None:
        return DASH
    ms = us / 1000.0
    return f"{ms:.3f}" if ms < 10 else f"{ms:.2f}" if ms < 100 else f"{ms:.1f}"


def main(argv):
    paths = argv[1:] or ["-"]
    streams = [sys.stdin if p == "-" else open(p) for p in paths]
    data, libs, notes = read(streams)
    # column order: HomE first, then SEAL, OpenFHE, others
    rank = {"home": 0, "seal": 1, "openfhe": 2, "other": 3}
    libs.sort(key=lambda l: (rank[family(l)], l))
    keys = sorted({k[1:] for k in data},
                  key=lambda k: (k[0], k[1], OP_ORDER.index(k[2]) if k[2] in OP_ORDER else 99, k[2]))
    if not keys:
        print("(no benchmark lines found)")
        return 0
    head = ["logN", "threads", "op"] + [f"{l} (ms)" for l in libs] + ["HomE / best peer"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---:", "---:", "---"] + ["---:"] * (len(libs) + 1)) + "|")
    for logn, t, op in keys:
        row = [str(logn), str(t), op]
        home, peers = None, []
        for l in libs:
            us = data.get((l, logn, t, op))
            row.append(fmt_ms(us))
            if us is None:
                continue
            fam = family(l)
            if fam == "home":
                home = us if home is None else min(home, us)
            elif fam in ("seal", "openfhe"):
                peers.append(us)
        ratio = f"{home / min(peers):.2f}" if home is not None and peers and min(peers) > 0 else DASH
        row.append(ratio)
        print("| " + " | ".join(row) + " |")
    if notes:
        print()
        for l in libs:
            for logn, n in sorted(notes.get(l, {}).items()):
                print(f"- {l}, logN={logn}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
