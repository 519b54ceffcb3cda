#!/usr/bin/env bash
# CI check of the GPU crate on a machine without a GPU: installs NVRTC from PyPI (no CUDA
# toolkit, driver or GPU needed), compiles every kernel to PTX for sm_90, runs the kernels
# under the host emulation against he-core, and the rest of the crate's tests (device tests
# print SKIPPED). Run from the repository root.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
libdir="$(gpu/scripts/install-nvrtc.sh | tail -n1)"
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cargo test -p he-gpu --test nvrtc_compile -- --nocapture
cargo test -p he-gpu
