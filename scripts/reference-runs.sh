#!/usr/bin/env bash
# The report's full protocol, run for the project's reference results (issue 13), resumable.
#
#   bash scripts/reference-runs.sh [NAME]
#
# 1. 10-fold protocol (seed 42, epochs 15 ... 2) for cnn-age-sigmoid, cnn-gender, cnn-age-relu:
#    every (model, fold) is one `kfold --fold k --run <dir>` process; PROCS of them run at once
#    (default: one per core), each with THREADS threads (default: cores / PROCS). Folds of all
#    three models share one queue, longest folds first, so no core idles behind a long fold.
# 2. vgg19 and cnn-multi on the 80/20 split (`train`, continued with `train --run <dir>`), side by side.
# 3. Each run is merged and copied into results/reference/ (`reference add`), also when only
#    some folds are done: the reference says "k of 10 folds done".
#
# Safe to kill at any moment and to rerun, in this or a later session, with the same NAME
# (default: the name of the last call, kept in results/full/.name): finished folds and runs are
# skipped, an interrupted one continues from its last checkpointed epoch and records that in
# its resumes.json. Each fold takes a lock (flock) so two drivers on one machine never train the
# same fold; across machines use one driver per fold set (docs/scale.md).
#
# Environment: UTKFACE_DIR (default ../shared/data/utkface/crop_part1), PROCS, THREADS,
# KFOLD_MODELS, SPLIT_MODELS, FOLDS (default 10); for a rehearsal only (never for the reference):
# EXTRA_ARGS (every command, e.g. "--max-images 60 --size 32"), KFOLD_ARGS (e.g. "--first-epochs 1
# --last-epochs 1"), TRAIN_ARGS (e.g. "--epochs 1").
set -euo pipefail
cd "$(dirname "$0")/.."

FULL=results/full
mkdir -p "$FULL"
NAME="${1:-$(cat "$FULL/.name" 2>/dev/null || date -u +%Y%m%d-%H%M%S-protocol)}"
echo "$NAME" >"$FULL/.name"

export EXPERIMENT_PROFILE=full
export UTKFACE_DIR="${UTKFACE_DIR:-../shared/data/utkface/crop_part1}"
CORES="$(nproc)"
PROCS="${PROCS:-$CORES}"
THREADS="${THREADS:-$(( CORES / PROCS > 0 ? CORES / PROCS : 1 ))}"
FOLDS="${FOLDS:-10}"
# Empty is allowed (KFOLD_MODELS="" runs the 80/20 part only).
KFOLD_MODELS="${KFOLD_MODELS-cnn-age-sigmoid cnn-gender cnn-age-relu}"
SPLIT_MODELS="${SPLIT_MODELS-vgg19 cnn-multi}"
EXTRA_ARGS="${EXTRA_ARGS:-}"
KFOLD_ARGS="${KFOLD_ARGS:-}"
TRAIN_ARGS="${TRAIN_ARGS:-}"
TSX=node_modules/.bin/tsx
CLI=lib/cli/main.ts
export FULL NAME THREADS FOLDS EXTRA_ARGS KFOLD_ARGS TSX CLI

log() { echo "[$(date -u +%FT%TZ)] $*" | tee -a "$FULL/driver-$NAME.log"; }
export -f log

log "session start on $(hostname), pid $$: name $NAME, data $UTKFACE_DIR, $PROCS processes x $THREADS threads"

# One fold of one model; skips a finished fold without loading the data.
run_fold() {
  local model="$1" fold="$2"
  local dir="$FULL/$model-kfold/$NAME"
  local done_file
  done_file="$dir/fold-$(printf %02d $((fold + 1)))/metrics.json"
  [ -f "$done_file" ] && return 0
  mkdir -p "$dir/logs"
  local cmd="$TSX $CLI kfold --model $model --folds $FOLDS --fold $fold --run $dir $EXTRA_ARGS $KFOLD_ARGS"
  log "start  $model fold $((fold + 1))/$FOLDS: $cmd"
  # The thread count goes to oneDNN (UTKFACE_THREADS; OpenMP reads the other). The threaded wasm
  # build (UTKFACE_WASM_THREADS) is left off: untested together with the oneDNN kernels.
  if UTKFACE_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" flock -n "$dir/logs/fold-$fold.lock" \
    $cmd >>"$dir/logs/fold-$fold.log" 2>&1; then
    log "done   $model fold $((fold + 1))/$FOLDS"
  else
    log "FAILED $model fold $((fold + 1))/$FOLDS (or locked by another driver): see $dir/logs/fold-$fold.log"
    return 1
  fi
}
export -f run_fold

# A later session (or another machine) has no results/full/, but the folds already finished are
# committed in results/reference/: their records are enough to skip them and to merge later.
for model in $KFOLD_MODELS; do
  dir="$FULL/$model-kfold/$NAME" ref="results/reference/$model-kfold/$NAME"
  if [ ! -f "$dir/config.json" ] && [ -f "$ref/config.json" ]; then
    mkdir -p "$dir"
    cp -rp "$ref"/. "$dir"/
    rm -f "$dir/metrics.json" # the merged summary is made again once every fold is done
    log "restored $(ls "$dir"/fold-*/metrics.json 2>/dev/null | wc -l) finished fold(s) of $model from $ref"
  fi
done

# Folds in order 0..9 (the longest first), models interleaved.
queue=()
for ((fold = 0; fold < FOLDS; fold++)); do
  for model in $KFOLD_MODELS; do queue+=("$model $fold"); done
done
failed=0
if [ "${#queue[@]}" -gt 0 ]; then
  printf '%s\n' "${queue[@]}" | xargs -P "$PROCS" -L 1 bash -c 'run_fold "$0" "$1"' || failed=1
fi

for model in $KFOLD_MODELS; do
  dir="$FULL/$model-kfold/$NAME"
  [ -f "$dir/config.json" ] || continue
  done_count=$(ls "$dir"/fold-*/metrics.json 2>/dev/null | wc -l)
  if [ "$done_count" -eq "$FOLDS" ]; then $TSX $CLI kfold --merge "$dir" | tee -a "$FULL/driver-$NAME.log"; fi
  if [ "$done_count" -gt 0 ]; then
    $TSX $CLI reference add "$dir" --command "bash scripts/reference-runs.sh $NAME  # $PROCS processes x $THREADS threads; per fold: kfold --model $model --folds $FOLDS --fold k --run $dir $EXTRA_ARGS $KFOLD_ARGS" | tee -a "$FULL/driver-$NAME.log"
  fi
done

# The 80/20 runs, side by side, the cores shared between them. `train` names its run folder
# itself (results/<model>/<run-id>), so the driver keeps a pointer to it, $FULL/<model>/NAME.run,
# and continues that folder with `train --run` after a kill.
split_threads="${SPLIT_THREADS:-$(( CORES / $(echo $SPLIT_MODELS | wc -w | awk '{print ($1 > 0 ? $1 : 1)}') ))}"
[ "$split_threads" -ge 1 ] || split_threads=1
run_split() {
  local model="$1" ptr="$FULL/$model/$NAME.run" dir="" cmd
  mkdir -p "$FULL/$model"
  [ -f "$ptr" ] && dir="$(cat "$ptr")"
  if [ -n "$dir" ] && [ -f "$dir/metrics.json" ]; then return 0; fi
  if [ -n "$dir" ] && [ -f "$dir/config.json" ]; then
    cmd="$TSX $CLI train --run $dir $EXTRA_ARGS $TRAIN_ARGS"
  else
    cmd="$TSX $CLI train --model $model --experiment $model $EXTRA_ARGS $TRAIN_ARGS"
  fi
  log "start  $model (80/20): $cmd"
  local before
  before="$(ls -d results/$model/*/ 2>/dev/null | sort || true)"
  UTKFACE_THREADS="$split_threads" OMP_NUM_THREADS="$split_threads" flock -n "$FULL/$model/$NAME.lock" \
    $cmd >>"$FULL/$model/$NAME.log" 2>&1 &
  local pid=$!
  if [ -z "$dir" ]; then
    # The new run folder appears with its config.json before training starts.
    for _ in $(seq 600); do
      dir="$(comm -13 <(echo "$before") <(ls -d results/$model/*/ 2>/dev/null | sort || true) | head -1 || true)"
      if [ -n "$dir" ] && [ -f "$dir/config.json" ]; then echo "${dir%/}" >"$ptr"; break; fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
  fi
  if wait "$pid"; then log "done   $model"; else log "FAILED $model: see $FULL/$model/$NAME.log"; return 1; fi
}
pids=()
for model in $SPLIT_MODELS; do
  run_split "$model" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
for model in $SPLIT_MODELS; do
  ptr="$FULL/$model/$NAME.run"
  [ -f "$ptr" ] && [ -f "$(cat "$ptr")/metrics.json" ] || continue
  $TSX $CLI reference add "$(cat "$ptr")" --command "bash scripts/reference-runs.sh $NAME  # train --model $model --experiment $model $EXTRA_ARGS $TRAIN_ARGS, $split_threads threads" | tee -a "$FULL/driver-$NAME.log"
done

$TSX $CLI reference table --readme | tee -a "$FULL/driver-$NAME.log"
log "session end: $( [ "$failed" -eq 0 ] && echo "every run finished" || echo "some runs did not finish: rerun bash scripts/reference-runs.sh $NAME" )"
echo "Reference records are in results/reference/ (see its README.md) and README.md's table is theirs: commit both (git add results/reference README.md)."
exit "$failed"
