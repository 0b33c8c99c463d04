#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment from requirements.lock.
# Finds a Python 3.10 without a hard-coded path: $PYTHON, then python3.10 on PATH, then pyenv's 3.10.
set -euo pipefail
venv="${1:-.venv}"

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" "$(command -v python3.10 || true)"; do
    if [ -n "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    local version
    version=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.[0-9]+)?$' | sort -V | tail -n 1 || true)
    if [ -n "$version" ] && [ -x "$(pyenv root)/versions/$version/bin/python" ]; then
      echo "$(pyenv root)/versions/$version/bin/python"; return 0
    fi
  fi
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  if ! python=$(find_python); then
    echo "segpipe needs Python 3.10 (TFX 1.16 requires Python <3.11)." >&2
    echo "Install it (e.g. 'pyenv install 3.10') or set PYTHON=/path/to/python3.10, then run make again." >&2
    exit 1
  fi
  echo "Creating $venv with $python"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade "pip==24.3.1"
"$venv/bin/python" -m pip install --quiet -r requirements.lock
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
"$venv/bin/python" -m pip check
