#!/usr/bin/env bash
# TenSEAL side-by-side benchmark of nn/models/{mnist,fashion}_cnn.onnx.
# Usage: bench/nn-peer/run.sh [K images, default 64] [extra args for tenseal_cnn.py]
# Sets up nn/scripts/.venv (idempotent), then runs both datasets; JSON lines are printed and
# appended to bench/nn-peer/results/tenseal.jsonl (gitignored).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="$("$root/nn/scripts/setup_venv.sh" | tail -n1)"
k="${1:-64}"; shift || true
for ds in mnist fashion; do
  [[ -f "$root/nn/models/${ds}_cnn.onnx" ]] || { echo "missing nn/models/${ds}_cnn.onnx: run nn/scripts/train.py --dataset $ds" >&2; exit 1; }
done
if (( k > 64 )) && [[ ! -f "$root/nn/data/full/mnist_test.idx3" ]]; then
  "$root/nn/scripts/get_data.sh"
  "$py" "$root/nn/scripts/export_test_sets.py"
fi
mkdir -p "$root/bench/nn-peer/results"
"$py" "$root/bench/nn-peer/tenseal_cnn.py" --dataset mnist --dataset fashion --images "$k" \
  --out "$root/bench/nn-peer/results/tenseal.jsonl" "$@"
