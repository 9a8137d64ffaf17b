#!/usr/bin/env bash
# weaver-core yardstick: train MODEL (particlenet | part) with weaver's own `weaver` command on hepnn's
# committed sample, batch 256, one CPU thread, no loader workers, STEPS steps of one epoch.
#   benchmarks/weaver/run.sh particlenet 12     (log: $WORK/particlenet.log, line "CPU-TIMED: ...")
# --train-val-split 1: weaver-core 0.5.3 mis-stacks jagged columns of a sliced one-row-group parquet
# file ("could not broadcast input array"), so the throughput runs train on the whole file.
set -euo pipefail
MODEL=${1:-particlenet}
STEPS=${2:-12}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WEAVER=${WEAVER:-${WEAVER_VENV:-$REPO/../weaver-venv}/bin/weaver}  # README.md: the venv beside the repository
WORK=${WORK:-/tmp/weaver-bench}
mkdir -p "$WORK"
cp "$HERE/top_kin.yaml" "$WORK/top_kin.yaml"  # weaver writes top_kin.*.auto.yaml beside its config
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
/usr/bin/time -v "$WEAVER" \
  --data-train "$REPO/data/toptag_small.parquet" \
  --data-config "$WORK/top_kin.yaml" \
  --network-config "$HERE/$MODEL.py" \
  --model-prefix "$WORK/$MODEL" \
  --log-file "$WORK/$MODEL.log" \
  --run-mode train \
  --train-val-split 1 --gpus "" --num-workers 0 --in-memory --fetch-step 1 \
  --batch-size 256 --num-epochs 1 --steps-per-epoch "$STEPS" \
  --optimizer ranger --start-lr 1e-3 \
  2> "$WORK/$MODEL.time" | tail -n 3
grep -h "CPU-TIMED" "$WORK/$MODEL.log"
grep -h "User time\|System time\|Maximum resident" "$WORK/$MODEL.time"
