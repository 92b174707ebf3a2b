#!/usr/bin/env bash
# Install the CPU lockfile (with test tools) into .venv, lint, and run the tests.
#   bash scripts/test.sh                    # unit + e2e (under 10 minutes on 2 cores)
#   bash scripts/test.sh tests/unit         # any pytest arguments instead: the unit tier (seconds)
#   bash scripts/test.sh tests/system       # Docker, Slurm, Chromium, image builds, SciFact
#   bash scripts/test.sh --lint-only        # install and lint, no tests
#   bash scripts/test.sh --no-lint ARGS...  # install and pytest only (.ci/run times lint apart)
# The install is skipped when .venv already holds this lockfile (scripts/install.sh).
# Under REPRO_KIT_CI=1 (.ci/run) a test that would skip for a missing component fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."
lint=1 tests=1
case ${1:-} in
  --lint-only) tests=0; shift ;;
  --no-lint) lint=0; shift ;;
esac
bash scripts/install.sh cpu --dev
VENV=${VENV:-.venv}
if [ "$lint" = 1 ]; then
  "$VENV/bin/ruff" check .
  "$VENV/bin/ruff" format --check .
  "$VENV/bin/mypy" kit
fi
[ "$tests" = 1 ] || exit 0
# No arguments: pyproject's testpaths, tests/unit and tests/e2e.
exec "$VENV/bin/pytest" "$@"
