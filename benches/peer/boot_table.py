#!/usr/bin/env python3
"""Markdown table of CKKS bootstrapping results (HomE vs OpenFHE) from JSON lines.

Usage: boot_table.py [FILE ...]   (stdin when no file is given; '-' also means stdin)

Each line is a JSON object with at least peer ("home" or "openfhe"), logn, threads and
boot_s_median (keys listed in README.md, "Bootstrapping"); other lines are ignored. Rows:
(logN, threads, peer); if a (peer, logn, threads) appears more than once, the last line wins.
"HomE / OpenFHE" is HomE's median boot time divided by OpenFHE's at the same logN and thread
count, shown on the HomE row. Missing values are an em dash.
"""
import json
import sys

DASH = "\u2014"
PEER_ORDER = {"home": 0, "home-noarcsine": 1, "openfhe": 2}
PEER_NAME = {"home": "HomE N16Levels9", "home-noarcsine": "HomE N16Levels9NoArcSine",
             "openfhe": "OpenFHE"}


def read(streams):
    rows = {}
    for f in streams:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
                key = (int(r["logn"]), int(r["threads"]), str(r["peer"]).lower())
                float(r["boot_s_median"])
            except (ValueError, KeyError, TypeError):
                continue
            rows[key] = r
    return rows


def num(v, fmt):
    try:
        return format(float(v), fmt)
    except (TypeError, ValueError):
        return DASH


def gib(v, unit):
    try:
        return f"{float(v) / unit:.2f}"
    except (TypeError, ValueError):
        return DASH


def main(argv):
    paths = argv[1:] or ["-"]
    streams = [sys.stdin if p == "-" else open(p) for p in paths]
    rows = read(streams)
    if not rows:
        print("(no bootstrapping lines found)")
        return 0
    head = ["logN", "threads", "peer", "boot s (median)", "HomE / OpenFHE", "boot CPU s",
            "CPU HomE / OpenFHE", "prec min bits",
            "prec mean bits", "prec median bits", "levels after", "keygen s", "keys GiB",
            "peak mem GiB", "secret", "reps"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---:", "---:", "---"] + ["---:"] * 11 + ["---", "---:"]) + "|")
    notes = []
    for key in sorted(rows, key=lambda k: (k[0], k[1], PEER_ORDER.get(k[2], 9), k[2])):
        logn, t, peer = key
        r = rows[key]
        ratio = DASH
        cpu_ratio = DASH
        if peer.startswith("home"):
            o = rows.get((logn, t, "openfhe"))
            try:
                ratio = f"{float(r['boot_s_median']) / float(o['boot_s_median']):.2f}"
            except (TypeError, ValueError, KeyError, ZeroDivisionError):
                pass
            try:
                cpu_ratio = f"{float(r['boot_cpu_s_median']) / float(o['boot_cpu_s_median']):.2f}"
            except (TypeError, ValueError, KeyError, ZeroDivisionError):
                pass
        levels = str(r.get("levels_after", DASH))
        if "levels_after_verified" in r and r["levels_after_verified"] != r.get("levels_after"):
            levels += f" ({r['levels_after_verified']} verified)"
        mem = r.get("peak_rss_mib")
        if r.get("vm_hwm_mib") is not None:
            mem = max(float(mem or 0), float(r["vm_hwm_mib"]))
        row = [str(logn), str(t), PEER_NAME.get(peer, peer),
               num(r.get("boot_s_median"), ".2f"), ratio,
               num(r.get("boot_cpu_s_median"), ".2f"), cpu_ratio,
               num(r.get("prec_min_bits"), ".2f"), num(r.get("prec_mean_bits"), ".2f"),
               num(r.get("prec_median_bits"), ".2f"), levels,
               num(r.get("keygen_s"), ".1f"), gib(r.get("key_bytes"), 2 ** 30),
               gib(mem, 1024), str(r.get("secret", DASH)), str(r.get("reps", len(r.get("boot_s_all", [])) or DASH))]
        print("| " + " | ".join(row) + " |")
        if peer == "openfhe":
            meta = [f"{k}={r[k]}" for k in ("version", "ring_dim", "slots", "depth", "dnum",
                                               "level_budget", "scale_bits", "first_mod_bits", "correction_factor",
                                               "scaling", "log_qp_bits", "security", "load_avg")
                    if k in r]
            notes.append(f"- OpenFHE, logN={logn}, threads={t}: " + ", ".join(meta))
        elif r.get("note") or r.get("load_avg") is not None:
            meta = [f"{k}={r[k]}" for k in ("ring_dim", "slots", "log_qp_bits", "load_avg", "note")
                    if k in r]
            if meta:
                notes.append(f"- HomE, logN={logn}, threads={t}: " + ", ".join(meta))
    if notes:
        print()
        print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
