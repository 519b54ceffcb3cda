#!/usr/bin/env bash
# Fashion-MNIST test split (10,000 images, Debian package dataset-fashion-mnist) as an encrypted
# batch job in throughput mode on the local Slurm (examples/slurm/start-local-slurm.sh):
# keygen, encrypt (secret-key, seeded) into CHUNKS chunks, one array task per chunk, decrypt,
# accuracy against the labels. Prints shards, wall time, images/s and peak memory per shard.
#   bash benches/slurm-fashion/run.sh [WORKDIR]      (root; env SHARDS=4 CPUS=1 LOG_N=)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
work=${1:-/tmp/home-fashion-bench}
shards=${SHARDS:-4}
cpus=${CPUS:-1}
rm -rf "$work" && mkdir -p "$work"
data=/usr/share/datasets/fashion-mnist
if [ ! -f "$data/t10k-images-idx3-ubyte.gz" ]; then
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null
fi
gzip -dc "$data/t10k-images-idx3-ubyte.gz" >"$work/images.idx3"
gzip -dc "$data/t10k-labels-idx1-ubyte.gz" >"$work/labels.idx1"
bash examples/slurm/start-local-slurm.sh
cargo build --release -q -p home-cli
home=$PWD/target/release/home
model=$PWD/nn/models/fashion_cnn.onnx
logn=()
[ -n "${LOG_N:-}" ] && logn=(--log-n "$LOG_N")

"$home" plan "$model" "${logn[@]}" --calibrate "$work/images.idx3" | tail -n 9
t=$(date +%s.%N)
"$home" keygen "$model" "${logn[@]}" --out "$work/keys" --json >"$work/keygen.json"
per=$(( (10000 + shards - 1) / shards ))
"$home" encrypt --keys "$work/keys" --in "$work/images.idx3" --out "$work/batch" --batch-size "$per" --symmetric --json >"$work/encrypt.json"
t_client=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t}")
du -sh "$work/batch"

t0=$(date +%s.%N)
job=$(sbatch --parsable --array=0-$((shards - 1)) --cpus-per-task="$cpus" --mem=6G \
  --output="$work/task-%A_%a.out" \
  --export=ALL,HOME_BIN="$home",MODEL="$model",KEYS="$work/keys/server",BATCH="$work/batch",RESULT="$work/result" \
  examples/slurm/home-infer.sbatch)
while [ -n "$(squeue -h -j "$job")" ]; do sleep 1; done
t1=$(date +%s.%N)
wall=$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")

"$home" decrypt --keys "$work/keys" --in "$work/result" --out "$work/predictions.csv" --labels "$work/labels.idx1"
echo "client side (keygen + encrypt of 10,000 images): ${t_client} s; $(python3 -c "import json;d=json.load(open('$work/encrypt.json'));print(d['chunks'],'chunks,',round(d['bytes']/2**20),'MiB')")"
echo "array job $job: $shards shards x $cpus CPU(s) on $(nproc) cores, wall time (sbatch to last task done) ${wall} s, $(awk "BEGIN{printf \"%.1f\", 10000 / $wall}") images/s"
for f in "$work"/task-"$job"_*.out; do
  tail -n 1 "$f" | python3 -c "import json,sys; d=json.load(sys.stdin); print(f\"  shard {d['shard']}/{d['shards']}: {d['images']} images, {d['seconds']:.1f} s computing ({d['wall_seconds']:.1f} s in all), {d['images_per_second']:.1f} images/s, peak memory {d['peak_rss_bytes']/2**20:.0f} MiB\")"
done
