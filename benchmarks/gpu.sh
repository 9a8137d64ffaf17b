#!/usr/bin/env bash
# GPU benchmarks in one command, < 9 minutes on one GPU (the sections' time limits add up to 535 s);
# prints what to paste into docs/benchmarks.md (last run: its section "GPU: one NVIDIA H200").
#   benchmarks/gpu.sh                     # on a machine with a CUDA GPU, from the repository root
#   DEVICE=cpu STEPS=1 benchmarks/gpu.sh  # a dry run of the plumbing on a CPU (no GPU numbers)
# Sections (each under its own time limit, so one failure does not take the others with it):
#   1. the machine (GPU, driver, CPU) and the throughput table: the particle models at paper size (the MLP
#      is left out: its τ_N features need fastjet, which a GPU image rarely has),
#      fp32 / bf16 / fp16 autocast (train.amp), training and inference jets/s, data wait, padding;
#   2. weaver-core's ParticleNet and ParT step on the same device (when weaver-core is importable);
#   3. torch.compile (train.compile=true) for ParticleNet and ParT in fp32 (train.amp=auto on a GPU) against eager;
#   4. a 1-GPU run through torchrun (the DDP launcher; with one rank hepnn does not wrap the model);
#   5. the streaming loader: ready batches per second with 0, 1, 2, 4 and 8 reader processes.
set -uo pipefail
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-20}
PY=${PYTHON:-python}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
cd "$ROOT"
section() { printf '\n## %s\n\n' "$1"; }

section "Machine ($(date -u +%Y-%m-%d))"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'cuDNN', torch.backends.cudnn.version())"
$PY benchmarks/machine.py

section "Throughput, paper-size models, batch 256, N <= 128, default settings (benchmarks/run.py --steps $STEPS)"
PRECISIONS=fp32,bf16,fp16; [ "$DEVICE" = cuda ] || PRECISIONS=auto
timeout 180 $PY benchmarks/run.py --device "$DEVICE" --steps "$STEPS" --precisions "$PRECISIONS" \
  --models pfn,particlenet,part,lorentznet,pelican 2>&1 | grep --line-buffered -v '^#' || echo "(throughput table failed or timed out)"

section "weaver-core side by side: its ParticleNet and ParT training step, same device, same batches (benchmarks/weaver/model_step.py)"
if $PY -c "import weaver.nn.model.ParticleTransformer" 2>/dev/null; then
  for amp in none bf16; do
    timeout 60 $PY benchmarks/weaver/model_step.py --device "$DEVICE" --steps "$STEPS" --amp $amp 2>&1 | grep --line-buffered '^weaver' \
      || echo "(weaver-core at amp=$amp failed or timed out)"
  done
  echo "(weaver: the model step alone, inputs ready on the device; hepnn's rows above: the whole step, data included)"
else
  echo "(weaver-core is not installed here: pip install --no-deps weaver-core==0.5.3, beside numba and tqdm)"
fi

section "torch.compile, fp32 (train.compile=true against eager above, $STEPS steps after one untimed compile step)"
timeout 100 $PY benchmarks/run.py --device "$DEVICE" --steps "$STEPS" --precisions fp32 --models particlenet,part \
  --set train.compile=true 2>&1 | grep --line-buffered '^|' || echo "(compile run failed or timed out)"

section "1-GPU run through torchrun (part_lite, 2 epochs of the committed sample, train.amp=auto)"
rm -rf "$OUT/ddp"
if timeout 75 $PY -m torch.distributed.run --standalone --nproc_per_node=1 -m hepnn.cli train configs/top_tagging/part_lite.yaml \
    train.device="$DEVICE" train.epochs=2 train.early_stopping=null evaluate.plots=false \
    evaluate.overtraining_jets=0 --out "$OUT/ddp" >"$OUT/ddp.log" 2>&1; then
  $PY - "$OUT/ddp" <<'EOF'
import csv, json, sys
from pathlib import Path
run = Path(sys.argv[1])
rows = list(csv.DictReader(open(run / "history.csv")))
metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {}
print("| epoch | train jets/s (wall) | data wait | val AUC |")
print("|---:|---:|---:|---:|")
for r in rows:
    print(f"| {int(float(r['epoch'])) + 1} | {float(r['jets_per_s']):,.0f} | {float(r['data_wait']):.1%} | {float(r['val_auc']):.4f} |")
print(f"\ntest AUC {metrics.get('auc', float('nan')):.4f}")
EOF
else
  echo "(torchrun run failed or timed out; last lines of $OUT/ddp.log:)"; tail -n 5 "$OUT/ddp.log"
fi

section "Streaming loader: ready batches per second by reader processes (benchmarks/bench_loader.py --stream-only)"
timeout 60 $PY benchmarks/bench_loader.py --stream-only --workers 0,1,2,4,8 --repeat 8 2>&1 | grep --line-buffered '^|' \
  || echo "(loader benchmark failed or timed out)"

printf '\nPaste the tables above into docs/benchmarks.md under "GPU" with this machine line and date.\n'
