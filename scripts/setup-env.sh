#!/usr/bin/env bash
# Create .venv (if missing) and install facegan with its test, dlib, tensorboard and export extras.
# Uses pip + venv only: torch and torchvision come through pip from whatever index pip is set up for.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.facegan-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  if ! .venv/bin/python -m pip install --quiet -e ".[test,dlib,tensorboard,export]" > .venv/pip-install.log 2>&1; then
    grep -v "^WARNING: Location" .venv/pip-install.log >&2
    echo "setup-env: pip install failed (full log: .venv/pip-install.log)" >&2
    exit 1
  fi
  .venv/bin/python -c "import facegan_cli, torch, torchvision" >&2
  touch "$stamp"
fi
