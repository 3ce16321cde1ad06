#!/usr/bin/env bash
# The README's test command: create the environment if needed, then run the fast test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
.venv/bin/ruff check facegan_cli tests benchmarks
# Two pytest-xdist workers, one per core of the 2-core machines CI and most laptops give (each computes on one
# thread: tests/conftest.py); FACEGAN_TEST_WORKERS=0 runs the suite in this one process.
exec .venv/bin/python -m pytest -n "${FACEGAN_TEST_WORKERS:-2}" --dist worksteal "$@"
