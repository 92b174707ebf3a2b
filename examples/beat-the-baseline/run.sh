#!/usr/bin/env bash
# The whole journey with the kit's own commands (README, "Beat the baseline"):
#   1. reproduce: evaluate MODEL on the tasks, verify against its published scores
#   2. fine-tune with training code in a git repository (train.py)      -> OUT/ft
#   3. evaluate the fine-tuned folder, named, with its code and training data declared,
#      signed through ssh-agent                                          -> OUT/ft.tar.gz
#   4. report against the published base as a baseline; compare the two bundles
#   5. export into a results checkout on a branch and commit, as a submitter does
#   6. review that branch against the bundle: every file backed           -> OUT/review.json
#   7. as a reviewer: re-run one task with the folder, the same score
#
#   OUT=DIR bash examples/beat-the-baseline/run.sh
#
# Settings (environment; defaults in brackets):
#   OUT          the folder to write; must not exist. Everything is written into OUT.partial
#                beside it, which is renamed to OUT when every step passed: OUT is complete
#                or absent. A failed run leaves OUT.partial (removed by the next run).
#   MODEL        [sentence-transformers/all-MiniLM-L6-v2] the base model (mteb registry)
#   TASKS        [STSBenchmark,STS12] the tasks evaluated; or BENCHMARK (e.g. "MTEB(eng, v1)")
#   TRAIN_TASK   [STSBenchmark] the mteb STS task whose train split is the training data
#   EPOCHS [1], STEPS [all of the epochs], LR [2e-5], BATCH_SIZE [16], SEED [42]: training
#   DEVICE       [cpu] cpu | cuda | mps | auto, for training and evaluation
#   TOLERANCE    [0.001] per-task tolerance of step 1's reproduction (means: 0.005)
#   RERUN_TASK   [TRAIN_TASK] the task step 7 re-runs
#   FT_NAME      [journey/<base name>-ft] the fine-tuned model's name in the results layout
#   SIGN_KEY     a .pub whose private key your ssh-agent (SSH_AUTH_SOCK) holds. Unset: a new
#                demo key is made in OUT/keys and a private ssh-agent holds it while the
#                script runs (stopped at exit); your own agent is never touched.
#   SIGNER       [you@example.org] the principal of OUT/allowed_signers (the trust anchor)
#   PYTHON       [python3] runs train.py and show.py; REPRO_KIT [repro-kit, or $PYTHON -m kit]
#   UPLOAD_REVISION  the commit of your hub upload of OUT/ft (prefetched), exported under;
#                unset: no hub, a stand-in snapshot in OUT/hub (step 5 says how)
#   HF_HUB_OFFLINE=1 makes every evaluation offline (the HF cache must hold model and data).
#
# Each step prints its commands and its key result. A failing command stops the script with
# that command's exit code and one line on stderr naming the step (its log's tail before it).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${OUT:-}" ] || { echo "run.sh: set OUT=DIR, the folder to write" >&2; exit 2; }
out=$(realpath -m "$OUT")
[ -e "$out" ] && { echo "run.sh: $out exists; choose a new OUT" >&2; exit 2; }
kit_root=$(cd "$here/../.." && pwd)  # OUT/results becomes a results checkout: export refuses
case "$out/" in "$kit_root"/*)       # one inside repro-kit's own checkout (exit 37), so say so now
  echo "run.sh: $out is inside repro-kit's checkout $kit_root; choose an OUT outside it, e.g. OUT=../journey" >&2
  exit 2 ;;
esac
PYTHON=${PYTHON:-python3}
if [ -n "${REPRO_KIT:-}" ]; then read -r -a kit <<< "$REPRO_KIT"
elif command -v repro-kit >/dev/null; then kit=(repro-kit)
else kit=("$PYTHON" -m kit)
fi
MODEL=${MODEL:-sentence-transformers/all-MiniLM-L6-v2}
TASKS=${TASKS:-STSBenchmark,STS12}
BENCHMARK=${BENCHMARK:-}
TRAIN_TASK=${TRAIN_TASK:-STSBenchmark}
DEVICE=${DEVICE:-cpu}
TOLERANCE=${TOLERANCE:-0.001}
RERUN_TASK=${RERUN_TASK:-$TRAIN_TASK}
FT_NAME=${FT_NAME:-journey/$(basename "$MODEL")-ft}
SIGNER=${SIGNER:-you@example.org}
export MODEL TRAIN_TASK DEVICE EPOCHS=${EPOCHS:-1} STEPS=${STEPS:-} LR=${LR:-2e-5} \
  BATCH_SIZE=${BATCH_SIZE:-16} SEED=${SEED:-42}
tasks=(--tasks "$TASKS")
[ -n "$BENCHMARK" ] && tasks=(--benchmark "$BENCHMARK")
offline=()
[ "${HF_HUB_OFFLINE:-}" = 1 ] && offline=(--offline)
# git identity and dates fixed: the training repository's commit is the same on every run
export GIT_AUTHOR_NAME=journey GIT_AUTHOR_EMAIL=$SIGNER GIT_COMMITTER_NAME=journey \
  GIT_COMMITTER_EMAIL=$SIGNER GIT_AUTHOR_DATE=2026-01-01T00:00:00Z \
  GIT_COMMITTER_DATE=2026-01-01T00:00:00Z

# The cache and offline settings of the repro-kit.toml found from where run.sh is started (the
# quickstart writes one), exported: the steps run inside OUT, where the kit would find none.
# Only its allow-listed variables (kit.machine.project), shell-quoted; the environment wins.
eval "$("$PYTHON" - <<'PY' 2>/dev/null
import os, shlex
from pathlib import Path
from kit.machine.project import find_project_config, read_project_config
found = find_project_config(Path.cwd())
for name, value in (read_project_config(found) if found else {}).items():
    if name not in os.environ:
        print(f"export {name}={shlex.quote(value)}")
PY
)"
work="$out.partial"
rm -rf "$work"
mkdir -p "$work/logs" || exit 7
cd "$work" || exit 7
agent_pid=""
cleanup() { [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null; [ -n "${agent_dir:-}" ] && rm -rf "$agent_dir"; }
trap cleanup EXIT

n=-1 name="" log="" started=0  # step 0 prepares the key, 1-7 are the journey
step() {
  [ "$n" -ge 0 ] && printf '   (step %d took %d s)\n' "$n" $((SECONDS - started))
  n=$((n + 1)) name=$1 started=$SECONDS
  printf '\n== step %d: %s\n' "$n" "$name"
}
# show CMD...: the command as a shell reads it (plain words bare, the rest in single quotes)
show() {
  printf '$'
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:,=@+%-]+$ ]]; then printf ' %s' "$a"
    else printf " '%s'" "${a//\'/\'\\\'\'}"
    fi
  done
}
# run LOG CMD...: print CMD, run it with its output in logs/LOG; stop the script if it fails
run() {
  log=logs/$1; shift
  show "$@"; printf '\n'
  "$@" > "$log" 2>&1
  check $? "$@"
}
# run_json FILE CMD...: as run, its standard output (JSON) into FILE, its errors into the log
run_json() {
  local file=$1; shift
  log=logs/$(basename "$file" .json).log
  show "$@"; printf ' > %s\n' "$file"
  "$@" > "$file" 2> "$log"
  check $? "$@"
}
check() {
  local rc=$1; shift
  [ "$rc" -eq 0 ] && return 0
  tail -n 15 "$log" | sed 's/^/   | /' >&2
  echo "run.sh: step $n ($name) failed with exit $rc: $*  (log: $work/$log)" >&2
  exit "$rc"
}
say() { printf '   %s\n' "$@"; }

step "signing key and trust anchor"
if [ -z "${SIGN_KEY:-}" ]; then
  mkdir -p keys
  run keygen.log ssh-keygen -q -t ed25519 -N "" -C "$SIGNER" -f keys/id_ed25519
  agent_dir=$(mktemp -d /tmp/journey-agent.XXXXXX)   # a short socket path
  run agent.log ssh-agent -a "$agent_dir/agent.sock"
  agent_pid=$(sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p' "$log")
  export SSH_AUTH_SOCK="$agent_dir/agent.sock"
  run ssh-add.log ssh-add -q keys/id_ed25519
  SIGN_KEY=$work/keys/id_ed25519.pub
  say "a demo key held by a private ssh-agent (pid $agent_pid) for this run"
fi
echo "$SIGNER namespaces=\"repro-kit\" $(cut -d' ' -f1,2 "$SIGN_KEY")" > allowed_signers
say "signing key $SIGN_KEY; trust anchor allowed_signers ($SIGNER)"
trust=(--allowed-signers allowed_signers)

step "reproduce $MODEL's published scores"
run evaluate-base.log "${kit[@]}" evaluate "$MODEL" "${tasks[@]}" --device "$DEVICE" \
  "${offline[@]}" -o runs/base --bundle base.tar.gz --sign "$SIGN_KEY" -q
run_json logs/verify-base.json "${kit[@]}" verify base.tar.gz "${trust[@]}" \
  --reference published --tolerance "$TOLERANCE" --json
"$PYTHON" "$here/show.py" reproduce logs/verify-base.json

step "fine-tune on $TRAIN_TASK's train split (training code in a git repository)"
mkdir -p trainer && cp "$here/train.py" trainer/
run git-init.log git -C trainer init -q -b main
run git-add.log git -C trainer add train.py
run git-commit.log git -C trainer commit -q -m "train.py: CoSENT on $TRAIN_TASK's train split"
run train.log env OUT=ft CODE=trainer "$PYTHON" trainer/train.py
say "$(tail -n 1 logs/train.log)"

step "evaluate the fine-tuned folder, named, code and training data declared, signed"
run evaluate-ft.log "${kit[@]}" evaluate ./ft --model-name "$FT_NAME" --code trainer \
  --training-datasets "$TRAIN_TASK" "${tasks[@]}" --device "$DEVICE" "${offline[@]}" \
  -o runs/ft --bundle ft.tar.gz --sign "$SIGN_KEY" -q
run_json logs/verify-ft.json "${kit[@]}" verify ft.tar.gz "${trust[@]}" --json
"$PYTHON" "$here/show.py" signed logs/verify-ft.json

step "did it beat the baseline? report against the published base, compare the bundles"
run report.log "${kit[@]}" report ft.tar.gz "${trust[@]}" --against "published:$MODEL" \
  --as baseline -o report.html
say "$(grep '^report: ' "$log" | sed 's/^report: //')"
run report-md.log "${kit[@]}" report ft.tar.gz "${trust[@]}" --against "published:$MODEL" \
  --as baseline -o report.md
run compare.log env COLUMNS=100 "${kit[@]}" compare base.tar.gz ft.tar.gz
sed -n '1,12p' "$log" | sed 's/^/   /'

step "export into a results checkout on a branch, as a submitter"
# A local folder is exported under the commit of its hub upload, checked against the
# bundle's model digest. With a hub: huggingface-cli upload "$FT_NAME" ./ft, then
# repro-kit prefetch "$FT_NAME" --revision SHA and UPLOAD_REVISION=SHA. Without one (the
# default), the upload is stood in for by a snapshot of ./ft in OUT/hub at a stand-in commit
# (the sha1 of the model digest), and export and review read that hub cache.
hub=()
if [ -n "${UPLOAD_REVISION:-}" ]; then rev=$UPLOAD_REVISION
else
  digest=$("$PYTHON" "$here/show.py" digest runs/ft/run.json)
  rev=$(printf %s "$digest" | sha1sum | cut -c1-40)
  snap=hub/models--${FT_NAME//\//--}/snapshots/$rev
  mkdir -p "$(dirname "$snap")" && cp -r ft "$snap"
  hub=(env "HF_HUB_CACHE=$work/hub")
  say "no hub upload: ./ft stands in as $FT_NAME@$rev in hub/ (model digest $digest)"
fi
branch=submit/$(basename "$FT_NAME")
run results-init.log git init -q -b main results
mkdir -p results/results && echo "# MTEB results (a local checkout)" > results/README.md
touch results/results/.gitkeep
run results-base.log git -C results add -A
run results-commit.log git -C results commit -q -m "the results repository before the PR"
run results-branch.log git -C results checkout -q -b "$branch"
run export.log "${hub[@]}" "${kit[@]}" export ft.tar.gz --results-repo results \
  --revision "$rev" "${trust[@]}"
run results-add.log git -C results add -A
run results-pr.log git -C results commit -q -m "Add $FT_NAME ($TASKS)"
say "branch $branch: $(git -C results diff --name-only main | wc -l) files changed"

step "review the branch against the bundle"
run_json review.json "${hub[@]}" "${kit[@]}" review results --base main --bundle ft.tar.gz \
  "${trust[@]}" --json
"$PYTHON" "$here/show.py" review review.json

step "as a reviewer: re-run $RERUN_TASK with the folder"
run_json logs/rerun.json "${kit[@]}" verify ft.tar.gz "${trust[@]}" --rerun "$RERUN_TASK" \
  --model-path ./ft --json
"$PYTHON" "$here/show.py" rerun logs/rerun.json

printf '   (step %d took %d s)\n' "$n" $((SECONDS - started))
cd / && mv "$work" "$out" || exit 7
printf '\nrun.sh: every step passed in %d s; wrote %s\n' "$SECONDS" "$out"
