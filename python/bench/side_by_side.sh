#!/usr/bin/env bash
# homefhe vs TenSEAL vs the Rust API, same images, same run. Usage: python/bench/side_by_side.sh [IMAGES]
# Uses nn/scripts/.venv (TenSEAL, onnx, onnxruntime; made by nn/scripts/setup_venv.sh) and
# installs ./python into it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
k="${1:-16}"
py="$("$root/nn/scripts/setup_venv.sh" | tail -n1)"
"$py" -m pip install -q "$root/python"
(cd "$root" && nice -n 10 cargo build --release -q -p homefhe --example rust_api_baseline)
out="$root/bench/nn-peer/results"
mkdir -p "$out"
: > "$out/tenseal_side_by_side.jsonl"
"$py" "$root/bench/nn-peer/tenseal_cnn.py" --dataset mnist --images "$k" --out "$out/tenseal_side_by_side.jsonl" >/dev/null
"$py" "$root/python/bench/side_by_side.py" --images "$k" --tenseal-json "$out/tenseal_side_by_side.jsonl"
