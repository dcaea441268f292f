#!/usr/bin/env bash
# The report's own K-fold procedure (issue 20): weights carried from fold to fold, 10 folds,
# seed 42, epochs 15 ... 2, batch 25, full profile, on the faces of the 80/20 split's training
# part; the split's test faces are kept out of every fold and each fold's model is scored on them
# (`--hold-out-test 0.2`), so the report's validation figures can be set beside faces it never saw.
#
#   bash scripts/carried-runs.sh [NAME]
#
# One process per model (a carried chain runs its folds in order), MODELS at once, THREADS
# threads each. Safe to kill and to rerun with the same NAME in this or a later session: the
# chain continues from the last checkpointed epoch of its current fold. A machine without
# results/full/ restores the folds already committed in results/reference/ and goes on.
#
# Environment: UTKFACE_DIR (default ../shared/data/utkface/crop_part1), MODELS (default
# "cnn-age-sigmoid cnn-gender"), THREADS (default cores / models), EXTRA_ARGS (rehearsals only).
set -euo pipefail
cd "$(dirname "$0")/.."

FULL=results/full
mkdir -p "$FULL"
NAME="${1:-$(cat "$FULL/.carried-name" 2>/dev/null || date -u +%Y%m%d-carried)}"
echo "$NAME" >"$FULL/.carried-name"
export EXPERIMENT_PROFILE=full
export UTKFACE_DIR="${UTKFACE_DIR:-../shared/data/utkface/crop_part1}"
MODELS="${MODELS:-cnn-age-sigmoid cnn-gender}"
n_models=$(echo $MODELS | wc -w)
THREADS="${THREADS:-$(( $(nproc) / n_models > 0 ? $(nproc) / n_models : 1 ))}"
EXTRA_ARGS="${EXTRA_ARGS:-}"
TSX=node_modules/.bin/tsx
CLI=lib/cli/main.ts
log() { echo "[$(date -u +%FT%TZ)] $*" | tee -a "$FULL/carried-$NAME.log"; }

chain() {
  local model="$1" dir="$FULL/$model-kfold/$NAME" ref="results/reference/$model-kfold/$NAME"
  if [ ! -f "$dir/config.json" ] && [ -f "$ref/config.json" ]; then
    mkdir -p "$dir" && cp -rp "$ref"/. "$dir"/ && rm -f "$dir/metrics.json"
    log "restored $(ls "$dir"/fold-*/metrics.json 2>/dev/null | wc -l) finished fold(s) of $model from $ref"
  fi
  mkdir -p "$dir/logs"
  local cmd="$TSX $CLI kfold --model $model --folds 10 --carry-weights --hold-out-test 0.2 --run $dir $EXTRA_ARGS"
  log "start  $model: $cmd"
  if UTKFACE_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" flock -n "$dir/logs/chain.lock" $cmd >>"$dir/logs/chain.log" 2>&1; then
    log "done   $model"
  else
    log "FAILED $model (or locked by another driver): see $dir/logs/chain.log"
  fi
  if ls "$dir"/fold-*/metrics.json >/dev/null 2>&1; then
    $TSX $CLI reference add "$dir" --command "bash scripts/carried-runs.sh $NAME  # kfold --model $model --folds 10 --carry-weights --hold-out-test 0.2 --run <dir>, $THREADS thread(s)" | tee -a "$FULL/carried-$NAME.log"
  fi
}

log "session start, pid $$: name $NAME, data $UTKFACE_DIR, models $MODELS, $THREADS thread(s) each"
pids=()
for model in $MODELS; do chain "$model" & pids+=($!); done
for pid in "${pids[@]}"; do wait "$pid" || true; done
log "session end: commit results/reference/ (git add results/reference)"
