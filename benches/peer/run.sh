#!/usr/bin/env bash
# One command for the CKKS peer comparison (SEAL, OpenFHE, HomE):
#   benches/peer/run.sh                 # logN 14 15 16, threads 1 2
#   LOGNS="14" REPS=5 benches/peer/run.sh
# Env: LOGNS (default "14 15 16"), THREADS (default "1 2"), REPS (default 20/10/5 for logN
# 14/15/16), SKIP_HOME=1 (do not build/run the HomE side), OPENFHE_DNUM (default 3).
# Output: benches/peer/results.jsonl (all JSON lines) and a Markdown table on stdout.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$HERE/results.jsonl"
LOGNS="${LOGNS:-14 15 16}"
THREADS="${THREADS:-1 2}"
DNUM="${OPENFHE_DNUM:-3}"

"$HERE/setup.sh" || { echo "[run] setup.sh failed" >&2; exit 1; }

load="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)"
if awk "BEGIN{exit !($load > 0.5)}"; then
  echo "[run] WARNING: load average is $load on $(nproc) cores; timings (esp. threads=2) will be noisy" >&2
fi

# Is there a HomE peer binary? (he-bench package with a peer-home bin target)
HAVE_HOME=0
if [ "${SKIP_HOME:-0}" != 1 ] && command -v cargo >/dev/null; then
  if (cd "$ROOT" && cargo metadata --no-deps --format-version 1 2>/dev/null) | python3 -c '
import json, sys
m = json.load(sys.stdin)
ok = any(p["name"] == "he-bench" and any(t["name"] == "peer-home" for t in p["targets"])
         for p in m["packages"])
sys.exit(0 if ok else 1)'; then
    HAVE_HOME=1
  else
    echo "[run] NOTE: no he-benches/peer-home binary in the workspace; HomE column will be empty" >&2
  fi
fi

: > "$OUT"
for logn in $LOGNS; do
  case "$logn" in 14) def=20;; 15) def=10;; 16) def=5;; *) echo "[run] bad logN $logn" >&2; exit 2;; esac
  reps="${REPS:-$def}"
  for t in $THREADS; do
    echo "[run] logN=$logn threads=$t reps=$reps" >&2
    if [ -x "$HERE/.venv311/bin/python" ]; then
      (cd "$HERE" && OMP_NUM_THREADS=$t .venv311/bin/python seal_bench.py --logn "$logn" --threads "$t" --reps "$reps") >> "$OUT" \
        || echo "[run] SEAL benchmark failed (logN=$logn threads=$t)" >&2
    fi
    if [ -x "$HERE/.venv310/bin/python" ]; then
      (cd "$HERE" && OMP_NUM_THREADS=$t .venv310/bin/python openfhe_bench.py --logn "$logn" --threads "$t" --reps "$reps" --dnum "$DNUM") >> "$OUT" \
        || echo "[run] OpenFHE benchmark failed (logN=$logn threads=$t)" >&2
    fi
    if [ "$HAVE_HOME" = 1 ]; then
      (cd "$ROOT" && RAYON_NUM_THREADS=$t cargo run --release -q -p he-bench --bin peer-home -- \
          --logn "$logn" --threads "$t" --reps "$reps") >> "$OUT" \
        || echo "[run] NOTE: HomE peer-home failed (logN=$logn threads=$t); continuing" >&2
    fi
  done
done

echo "[run] $(grep -c '^{' "$OUT") result lines in $OUT" >&2
"$HERE/.venv311/bin/python" "$HERE/table.py" "$OUT" 2>/dev/null || python3 "$HERE/table.py" "$OUT"
