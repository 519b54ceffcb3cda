#!/usr/bin/env bash
# One command for the CKKS bootstrapping comparison (OpenFHE EvalBootstrap vs HomE):
#   benches/peer/boot_run.sh                        # logN 16, threads 1 2, 3 reps
#   THREADS=1 REPS=1 benches/peer/boot_run.sh       # one quick pass
#   LOGN=12 REPS=1 THREADS=1 SKIP_HOME=1 benches/peer/boot_run.sh   # smoke test (HEStd_NotSet)
# Env: LOGN (default 16), THREADS (default "1 2"), REPS (default 3), SKIP_HOME=1 (OpenFHE only),
#      SKIP_OPENFHE=1 (HomE only), OPENFHE_BOOT_ARGS (extra openfhe_boot.py arguments; default
#      "--secret encapsulated --level-budget 3,3 --first-mod-bits 52 --correction-factor 2" at
#      logN 16: the settings that fit in ~12 GiB with the best precision found, see README.md;
#      at other logN "... --first-mod-bits 56 --correction-factor 6 --security none"),
#      HOME_BOOT_ARGS (extra boot-home arguments).
# Output: JSON lines appended to benches/peer/boot_results.jsonl, a Markdown table on stdout
# (of this run's lines only; `boot_table.py boot_results.jsonl` shows everything, last wins).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$HERE/boot_results.jsonl"
LOGN="${LOGN:-16}"
THREADS="${THREADS:-1 2}"
REPS="${REPS:-3}"
# Tuned at logN 16 (precision vs first prime / correction factor, README.md); smaller rings cannot
# reach 128-bit security at this depth, so they run at HEStd_NotSet with the factor tuned at 2^12.
if [ "$LOGN" = 16 ]; then
  DEF_OPENFHE="--secret encapsulated --level-budget 3,3 --first-mod-bits 52 --correction-factor 2"
else
  DEF_OPENFHE="--secret encapsulated --level-budget 3,3 --first-mod-bits 56 --correction-factor 6 --security none"
fi
OPENFHE_BOOT_ARGS="${OPENFHE_BOOT_ARGS:-$DEF_OPENFHE}"
HOME_BOOT_ARGS="${HOME_BOOT_ARGS:-}"
RUN_LOG="$(mktemp)"
trap 'rm -f "$RUN_LOG"' EXIT

"$HERE/setup.sh" || { echo "[boot] setup.sh failed" >&2; exit 1; }

warn_load() {
  local load
  load="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)"
  if awk "BEGIN{exit !($load > 0.5)}"; then
    echo "[boot] WARNING: load average is $load on $(nproc) cores; timings (esp. threads>1) will be noisy" >&2
  fi
}

# Is there a HomE bootstrapping binary? (he-bench package with a boot-home bin target)
HAVE_HOME=0
if [ "${SKIP_HOME:-0}" != 1 ] && command -v cargo >/dev/null; then
  if (cd "$ROOT" && cargo metadata --no-deps --format-version 1 2>/dev/null) | python3 -c '
import json, sys
m = json.load(sys.stdin)
ok = any(p["name"] == "he-bench" and any(t["name"] == "boot-home" for t in p["targets"])
         for p in m["packages"])
sys.exit(0 if ok else 1)'; then
    HAVE_HOME=1
    # Build once, outside the timed runs.
    (cd "$ROOT" && cargo build --release -q -p he-bench --bin boot-home) \
      || { echo "[boot] NOTE: building boot-home failed; HomE rows will be missing" >&2; HAVE_HOME=0; }
  else
    echo "[boot] NOTE: no he-bench/boot-home binary in the workspace; HomE rows will be empty" >&2
  fi
fi

HAVE_OPENFHE=0
if [ "${SKIP_OPENFHE:-0}" != 1 ]; then
  if [ -x "$HERE/.venv310/bin/python" ]; then
    HAVE_OPENFHE=1
  else
    echo "[boot] NOTE: no .venv310 (no Python 3.10 found by setup.sh); OpenFHE rows will be empty" >&2
  fi
fi

for t in $THREADS; do
  if [ "$HAVE_OPENFHE" = 1 ]; then
    warn_load
    echo "[boot] OpenFHE logN=$LOGN threads=$t reps=$REPS $OPENFHE_BOOT_ARGS" >&2
    # shellcheck disable=SC2086
    (cd "$HERE" && OMP_NUM_THREADS=$t .venv310/bin/python openfhe_boot.py --logn "$LOGN" \
        --threads "$t" --reps "$REPS" $OPENFHE_BOOT_ARGS) | tee -a "$OUT" >> "$RUN_LOG" \
      || echo "[boot] OpenFHE bootstrapping failed (logN=$LOGN threads=$t)" >&2
  fi
  if [ "$HAVE_HOME" = 1 ]; then
    warn_load
    echo "[boot] HomE logN=$LOGN threads=$t reps=$REPS $HOME_BOOT_ARGS" >&2
    # shellcheck disable=SC2086
    (cd "$ROOT" && RAYON_NUM_THREADS=$t cargo run --release -q -p he-bench --bin boot-home -- \
        --logn "$LOGN" --threads "$t" --reps "$REPS" $HOME_BOOT_ARGS) | tee -a "$OUT" >> "$RUN_LOG" \
      || echo "[boot] NOTE: HomE boot-home failed (logN=$LOGN threads=$t); continuing" >&2
  fi
done

echo "[boot] $(grep -c '^{' "$RUN_LOG") result lines this run, appended to $OUT" >&2
python3 "$HERE/boot_table.py" "$RUN_LOG"
