#!/usr/bin/env bash
# Install the CPU lockfile (with test tools) into .venv and run the test suite.
#   bash scripts/test.sh              # everything but the slow tests
#   bash scripts/test.sh -m slow      # only the slow ones (SciFact, Docker image builds)
#   bash scripts/test.sh -m ""        # all
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh cpu --dev
VENV=${VENV:-.venv}
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy" kit
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(-m "not slow")
exec "$VENV/bin/pytest" "${args[@]}"
