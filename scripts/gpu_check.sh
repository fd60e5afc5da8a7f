#!/usr/bin/env bash
# GPU checks on a CUDA machine: the CUDA path of the CLI works (auto picks the GPU) and how fast a
# default unlearning run is there. Writes logs and metrics to ${OUT:-gpu-check}/.
set -uo pipefail
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)"
} 2>&1 | tee "$OUT/env.txt"
# default settings, device auto (must pick CUDA): outpaint50, 1200 steps
/usr/bin/time -v python3 -m unlearn_core unlearn --forget builtin:cat --retain builtin:dog --out "$OUT/run-auto" --mask outpaint50 --json \
  > "$OUT/run-auto.json" 2> "$OUT/run-auto.log"
echo "auto run exit $?"; tail -1 "$OUT/run-auto.json"
grep -E "Elapsed|Maximum resident" "$OUT/run-auto.log"
# the app's default mask on the GPU
python3 -m unlearn_core unlearn --forget builtin:cat --retain builtin:dog --out "$OUT/run-center" --mask center50 --steps 800 --device cuda --json \
  > "$OUT/run-center.json" 2> "$OUT/run-center.log"
echo "center run exit $?"; tail -1 "$OUT/run-center.json"
# one-step timing at larger batches (steps/s), CUDA vs nothing else
python3 - <<'PY' 2>&1 | tee "$OUT/bench.txt"
import time, torch
from unlearn_core.models.checkpoints import load_model
from unlearn_core.data.sets import load_image_set
from unlearn_core.run.engine import UnlearnConfig, unlearn
from unlearn_core.data.masks import parse_mask
m = load_model("mae")
cats, dogs = load_image_set("builtin:cat"), load_image_set("builtin:dog")
for bs in (32, 256, 1024):
    cfg = UnlearnConfig(steps=60, batch_size=bs)
    unlearn(m, cats.train, dogs.train, parse_mask("outpaint50"), UnlearnConfig(steps=5, batch_size=bs), device="cuda")
    torch.cuda.synchronize(); t = time.perf_counter()
    unlearn(m, cats.train, dogs.train, parse_mask("outpaint50"), cfg, device="cuda")
    torch.cuda.synchronize(); dt = (time.perf_counter() - t) / 60
    print(f"batch {bs}: {dt*1000:.1f} ms/step, peak {torch.cuda.max_memory_allocated()/2**20:.0f} MiB")
PY
# a real-size architecture under each precision (auto picks TF32 on compute capability 8.0+)
for prec in fp32 tf32 bf16; do
  python3 -m unlearn_core bench --config vitmae-base --device cuda --no-ttf --precision "$prec" --json \
    > "$OUT/bench-vitmae-base-$prec.json" 2> "$OUT/bench-vitmae-base-$prec.log"
  echo "vitmae-base $prec exit $?"; cat "$OUT/bench-vitmae-base-$prec.json"
done
# keep what comes back small: the JSON lines above hold the metrics
rm -rf "$OUT/run-auto/model" "$OUT/run-center" "$OUT/run-auto/losses.csv" "$OUT/run-auto/metrics.json"
