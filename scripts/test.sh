#!/usr/bin/env bash
# The README's test command: create the environment if needed, then run the fast test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
.venv/bin/ruff check facegan_cli tests benchmarks
exec .venv/bin/python -m pytest "$@"
