#!/usr/bin/env bash
# The fuzzing budget: every cargo-fuzz target for RUNS executions (default 10 M), one after the
# other, with the same limits as CI's smoke run. Prints one line per target:
#   target  execs  seconds  exec/s  result
# and writes them to benches/fuzz-results.txt. A crash, OOM, timeout or leak stops that target
# with a non-zero status and leaves the input under fuzz/artifacts/<target>/.
#
#   bash benches/fuzz.sh                       # all targets, 10 M runs each
#   RUNS=1000000 TARGETS="onnx_import idx_reader" bash benches/fuzz.sh
#   JOBS=2 bash benches/fuzz.sh                # two targets at a time
#
# AddressSanitizer is on (cargo-fuzz's default; CI's smoke run keeps it on every target) except
# for the targets in NO_ASAN (default onnx_import store_recovery store_get_key: ASan makes them
# 3-5x slower, e.g. onnx_import 1.7k vs 7.7k exec/s here; the code they reach is safe Rust, and
# panics, OOMs (-malloc_limit_mb) and timeouts are caught either way).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked --version 0.13.2`); the nightly flags
# are enabled on the stable toolchain with RUSTC_BOOTSTRAP=1.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs="${RUNS:-10000000}"
no_asan="${NO_ASAN:-onnx_import store_recovery store_get_key}"
jobs="${JOBS:-1}"
targets="${TARGETS:-$(RUSTC_BOOTSTRAP=1 cargo fuzz list --fuzz-dir fuzz)}"
out="${OUT:-benches/fuzz-results.txt}"
logdir="${LOGDIR:-target/fuzz-logs}"
mkdir -p "$logdir"
export RUSTC_BOOTSTRAP=1
sanitizer() { case " $no_asan " in *" $1 "*) echo none ;; *) echo address ;; esac; }
for t in $targets; do
  cargo fuzz build --fuzz-dir fuzz -s "$(sanitizer "$t")" "$t" >/dev/null 2>&1 \
    || { echo "build of $t failed" >&2; exit 1; }
done
run_one() {
  local t="$1" log="$logdir/$1.log"
  mkdir -p "fuzz/corpus/$t"
  local start end rc
  start=$(date +%s)
  cargo fuzz run --fuzz-dir fuzz -s "$(sanitizer "$t")" "$t" -- -runs="$runs" -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -timeout=10 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  end=$(date +%s)
  local execs secs
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  secs=$(( end - start ))
  local result=ok
  if [ "$rc" -ne 0 ]; then
    result="FAILED (rc $rc: $(grep -m1 -oE 'ERROR: libFuzzer: [a-z-]+|==ERROR: [A-Za-z]+|panicked at [^ ]+' "$log"))"
  fi
  printf '%-20s %12s %7s %8s  %-8s %s\n' "$t" "${execs:-?}" "$secs" \
    "$(( ${execs:-0} / (secs > 0 ? secs : 1) ))" "$(sanitizer "$t")" "$result"
}
export -f run_one sanitizer
export runs logdir no_asan
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(git rev-parse --short HEAD) RUNS=$runs on $(nproc) cores: target execs seconds exec/s sanitizer result"
  printf '%s\n' $targets | xargs -P "$jobs" -I{} bash -c 'run_one {}'
} | tee -a "$out"
if tail -n "$(printf '%s\n' $targets | wc -l)" "$out" | grep -q FAILED; then
  exit 1
fi
