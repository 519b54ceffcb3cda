#!/usr/bin/env bash
# The secure batch workflow with the `home` CLI, on one machine, on the committed MNIST model
# and its 64 test images:
#   client : plan, keygen, encrypt
#   server : infer, in 4 shards (what 4 Slurm array tasks do), with the server keys only
#   client : decrypt, compare with onnxruntime's predictions
# Run from the repository root:  bash examples/cli/batch-job.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
if [ -z "${HOME_BIN:-}" ]; then
  cargo build --release -q -p home-cli
  HOME_BIN=$PWD/target/release/home
fi
model=nn/models/mnist_cnn.onnx
images=nn/data/mnist_sample.idx3

# Client: what the model needs, then keys for exactly that (latency mode: one rotation key per
# step the plan uses). The default parameters leave room for the noise flooding that `decrypt`
# applies to the logits (IND-CPA-D), so that the predictions may be shared.
"$HOME_BIN" plan "$model" --mode latency --no-time-estimate | tail -n 4
"$HOME_BIN" keygen "$model" --mode latency --out "$work/keys"
"$HOME_BIN" encrypt --keys "$work/keys" --in "$images" --out "$work/batch"

# Server: only keys/server travels (no secret key there).
cp -r "$work/keys/server" "$work/server-keys"
for i in 0 1 2 3; do
  "$HOME_BIN" infer "$model" --keys "$work/server-keys" --in "$work/batch" --out "$work/result" --shard "$i/4"
done
"$HOME_BIN" inspect "$work/result"

# Client: decrypt and compare with onnxruntime (argmax of the committed reference logits).
"$HOME_BIN" decrypt --keys "$work/keys" --in "$work/result" --out "$work/predictions.csv"
python3 - "$work/predictions.csv" nn/data/mnist_sample_logits.json <<'PY' || echo "(python3 not found: compare by hand)"
import csv, json, sys
pred = [int(r["prediction"]) for r in csv.DictReader(open(sys.argv[1]))]
ref = [max(range(len(l)), key=l.__getitem__) for l in json.load(open(sys.argv[2]))]
same = sum(p == r for p, r in zip(pred, ref))
print(f"agreement with onnxruntime: {same}/{len(pred)}")
PY
echo "work directory: $work"
