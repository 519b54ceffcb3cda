#!/usr/bin/env bash
# TenSEAL side-by-side benchmark of nn/models/{mnist,fashion}_cnn.onnx.
# Usage: benches/nn-peer/run.sh [K images, default 64] [extra args for tenseal_cnn.py]
# Sets up nn/scripts/.venv (idempotent), then runs both datasets; JSON lines are printed and
# appended to benches/nn-peer/results/tenseal.jsonl (gitignored).
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

# HomE on the same images, same machine, same run: latency mode (one image per ciphertext set)
# at N=2^13 (TenSEAL's ring degree; no noise flooding, as TenSEAL has none) and at the planner's
# default (N=2^14, with noise flooding of the logits), and throughput mode (CryptoNets
# batching). Set SKIP_HOME=1 to skip.
if [[ "${SKIP_HOME:-0}" != 1 ]]; then
  cd "$root"
  for ds in mnist fashion; do
    for args in "--mode latency --log-n 13 --no-noise-flooding" "--mode latency" "--mode throughput --log-n 13 --no-noise-flooding"; do
      echo "=== HomE: --dataset $ds --images $k $args"
      # shellcheck disable=SC2086
      cargo run --release -q -p he-nn --example encrypted_mnist -- --dataset "$ds" --images "$k" $args \
        | grep -E "^results|accuracy|agreement|max \|logit|time:|latency|amortized|peak memory"
    done
  done
fi
