#!/usr/bin/env bash
# Idempotent: create nn/scripts/.venv (CPython 3.11) and install the pinned requirements.
# Usage: nn/scripts/setup_venv.sh        (prints the venv's python path on the last line)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
req="$here/requirements.txt"
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then py="$cand"; break; fi
  done
fi
[[ -n "$py" ]] || { echo "setup_venv: no python3.11 found" >&2; exit 1; }
if [[ ! -x "$venv/bin/python" ]]; then
  "$py" -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q -r "$req"
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
