#!/usr/bin/env bash
# Idempotent setup of the peer-benchmark virtualenvs.
#   .venv311 : CPython 3.11 + tenseal (exposes Microsoft SEAL's low-level API as tenseal.sealapi)
#   .venv310 : CPython 3.10 + openfhe (the wheel ships only a cpython-310 extension)
# If no Python 3.10 is found, OpenFHE is skipped with a message (exit status stays 0).
# Where the interpreters come from: this project's machine image ships pyenv with CPython
# 3.10.13 and 3.11.7 under /root/.pyenv/versions (find_python looks there, then on PATH), so
# nothing has to be installed. On a machine without them, `pyenv install 3.10` (or
# `uv python install 3.10`) would download CPython from outside the package registries, which
# this workplace cannot reach; Debian 12 packages only 3.11. OpenFHE (run.sh, boot_run.sh) is
# then skipped with the note below.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

find_python() { # $1 = major.minor
  local v="$1" c
  for c in "${PYENV_ROOT:-/root/.pyenv}"/versions/"$v".*/bin/python"$v" \
           "$(command -v python"$v" 2>/dev/null || true)"; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    if "$c" -c "import sys; assert sys.version_info[:2]==tuple(map(int,'$v'.split('.')))" 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

make_venv() { # $1 = python, $2 = venv dir, $3 = requirements file
  local py="$1" dir="$2" req="$3"
  if [ ! -x "$dir/bin/python" ]; then
    echo "[setup] creating $dir with $py" >&2
    "$py" -m venv "$dir"
  fi
  # pip is a no-op when the pinned versions are already installed.
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
}

if PY311="$(find_python 3.11)"; then
  make_venv "$PY311" "$HERE/.venv311" "$HERE/requirements-seal.txt"
  "$HERE/.venv311/bin/python" -c "import tenseal.sealapi" \
    && echo "[setup] SEAL (tenseal.sealapi) ready in .venv311" >&2
else
  echo "[setup] WARNING: no Python 3.11 found; SEAL benchmark will be skipped" >&2
fi

if PY310="$(find_python 3.10)"; then
  make_venv "$PY310" "$HERE/.venv310" "$HERE/requirements-openfhe.txt"
  "$HERE/.venv310/bin/python" -c "import openfhe" \
    && echo "[setup] OpenFHE ready in .venv310" >&2
else
  echo "[setup] NOTE: no Python 3.10 interpreter found (looked in \$PYENV_ROOT/versions/3.10.*/bin and PATH);" >&2
  echo "[setup]       the openfhe wheel only ships a CPython 3.10 extension, so OpenFHE is SKIPPED." >&2
fi
