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
# Beside them, VGG19 as the report trained it (its section VI.2): a 90/10 split, class-weighted
# cross-entropy (weights from the training faces' group counts), batch 32, at most 10 epochs with
# 1/9 of the training faces for validation (stopping after 2 epochs without a lower validation
# loss, as Keras's EarlyStopping does), the epoch with the lowest validation loss kept; from
# scratch (ImageNet weights cannot be downloaded here; vgg19-pretrained takes your own). It goes
# to results/vgg19-report/ and continues with `train --resume` after a kill.
#
# Environment: UTKFACE_DIR (default ../shared/data/utkface/crop_part1), MODELS (default
# "cnn-age-sigmoid cnn-gender"), THREADS (default cores / models), VGG19_REPORT (default 1; 0
# leaves it out), VGG19_THREADS (default THREADS), EXTRA_ARGS (rehearsals only).
set -euo pipefail
cd "$(dirname "$0")/.."

FULL=results/full
mkdir -p "$FULL"
NAME="${1:-$(cat "$FULL/.carried-name" 2>/dev/null || date -u +%Y%m%d-carried)}"
echo "$NAME" >"$FULL/.carried-name"
export EXPERIMENT_PROFILE=full
export UTKFACE_DIR="${UTKFACE_DIR:-../shared/data/utkface/crop_part1}"
MODELS="${MODELS-cnn-age-sigmoid cnn-gender}"   # empty: the VGG19 run only
n_models=$(echo $MODELS | wc -w); [ "$n_models" -gt 0 ] || n_models=1
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

VGG19_ARGS="--model vgg19 --experiment vgg19-report --test-fraction 0.1 --validation-fraction 0.1111 --batch 32 --epochs 10 --patience 2 --class-weights --keep-best"
vgg19_report() {
  local dir=results/vgg19-report cmd
  mkdir -p "$FULL/vgg19-report"
  if ls "$dir"/*/metrics.json >/dev/null 2>&1; then cmd=""; 
  elif ls "$dir"/*/config.json >/dev/null 2>&1; then cmd="$TSX $CLI train $VGG19_ARGS --resume $EXTRA_ARGS";
  else cmd="$TSX $CLI train $VGG19_ARGS $EXTRA_ARGS"; fi
  if [ -n "$cmd" ]; then
    log "start  vgg19 (report's procedure): $cmd"
    if UTKFACE_THREADS="${VGG19_THREADS:-$THREADS}" OMP_NUM_THREADS="${VGG19_THREADS:-$THREADS}" flock -n "$FULL/vgg19-report/$NAME.lock" $cmd >>"$FULL/vgg19-report/$NAME.log" 2>&1; then
      log "done   vgg19 (report's procedure)"
    else
      log "FAILED vgg19 (report's procedure; or locked by another driver): see $FULL/vgg19-report/$NAME.log"; return 0
    fi
  fi
  local run
  run="$(ls -d "$dir"/*/ | while read -r d; do [ -f "$d/metrics.json" ] && echo "${d%/}"; done | tail -1)"
  [ -n "$run" ] && $TSX $CLI reference add "$run" --command "bash scripts/carried-runs.sh $NAME  # train $VGG19_ARGS, ${VGG19_THREADS:-$THREADS} thread(s)" | tee -a "$FULL/carried-$NAME.log"
}

log "session start, pid $$: name $NAME, data $UTKFACE_DIR, models $MODELS, $THREADS thread(s) each"
pids=()
for model in $MODELS; do chain "$model" & pids+=($!); done
if [ "${VGG19_REPORT:-1}" != 0 ]; then vgg19_report & pids+=($!); fi
for pid in "${pids[@]}"; do wait "$pid" || true; done
log "session end: commit results/reference/ (git add results/reference)"
