#!/usr/bin/env bash
# Installs NVIDIA's NVRTC (the runtime CUDA C++ compiler, libnvrtc.so.12) from PyPI into
# gpu/.venv, without any CUDA toolkit, driver or GPU, so that the NVRTC compile test
# (gpu/tests/nvrtc_compile.rs) can compile every kernel to PTX in CI.
#
# Usage:   gpu/scripts/install-nvrtc.sh          # prints the lib directory on its last line
# Env:     NVRTC_VERSION (default 12.8.*, matching cudarc's `cuda-12080` feature)
#          PYTHON        (default python3)
#          WITH_NVCC=1   also install nvidia-cuda-nvcc-cu12 (~460 MB; nvcc --ptx second check)
#
# The test finds the library by itself under gpu/.venv; for other programs export
#   LD_LIBRARY_PATH="$(gpu/scripts/install-nvrtc.sh | tail -n1):$LD_LIBRARY_PATH"
# (cudarc dlopen()s "libnvrtc.so.12" by name, so the directory must be on the loader's path
# or the library preloaded by absolute path, which is what `he_gpu::preload_nvrtc` does).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$here/.venv"
version="${NVRTC_VERSION:-12.8.*}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" >&2
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "nvidia-cuda-nvrtc-cu12==$version" >&2
if [ "${WITH_NVCC:-0}" = "1" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "nvidia-cuda-nvcc-cu12==$version" >&2
fi

libdir="$("$venv/bin/python" - <<'PY'
import pathlib, nvidia.cuda_nvrtc as m
base = pathlib.Path(list(m.__path__)[0])
libs = sorted(base.glob("lib/libnvrtc.so*"))
if not libs:
    raise SystemExit("libnvrtc.so not found under " + str(base))
print(libs[0].parent)
PY
)"
ls "$libdir" >&2
echo "$libdir"
