#!/usr/bin/env bash
# GPU checks on a CUDA machine: the CUDA path of the CLI works (auto picks the GPU) and how fast a
# default unlearning run is there. Writes logs and metrics to ${OUT:-gpu-check}/.
set -uo pipefail
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
# /usr/bin/time -v for the process's wall time and peak resident memory, where it is installed
TIMEV=(); [ -x /usr/bin/time ] && TIMEV=(/usr/bin/time -v)
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)"
} 2>&1 | tee "$OUT/env.txt"
# device auto (must pick CUDA): MAE under outpaint50 for 900 steps at 1e-3 (its CLI default until
# 2026-12-04, kept so that the GPU figures stay comparable)
${TIMEV[@]+"${TIMEV[@]}"} python3 -m unlearn_core unlearn --forget builtin:cat --retain builtin:dog --out "$OUT/run-auto" --mask outpaint50 --steps 900 --json \
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
# the default run of the other two families (outpaint50, each family's default steps: 600), device
# auto; `family_run NAME CMD...` logs the wall time, the GPU memory nvidia-smi saw in use during the
# run (peak, sampled every 200 ms; the CUDA context included) and the headline metrics of the JSON
family_run() {
  local name=$1; shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$OUT/$name.mem" 2>/dev/null &
  local smi=$! t0 t1 rc
  t0=$(date +%s.%N)
  ${TIMEV[@]+"${TIMEV[@]}"} timeout "${FAMILY_TIMEOUT:-240}" "$@" > "$OUT/$name.json" 2> "$OUT/$name.log"; rc=$?
  t1=$(date +%s.%N)
  kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null
  echo "$name run exit $rc"
  grep -E "Elapsed|Maximum resident" "$OUT/$name.log"
  python3 - "$name" "$t0" "$t1" "$OUT/$name.json" "$OUT/$name.mem" <<'PY'
import json, sys
name, t0, t1, path, mem = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
used = [int(x) for x in open(mem).read().split() if x.strip().isdigit()]
peak = f"{max(used)} MiB" if used else "n/a"
print(f"{name}: wall {t1 - t0:.1f} s, GPU memory in use at most {peak} (nvidia-smi)")
lines = [l for l in open(path).read().splitlines() if l.startswith("{")]
if not lines:
    print(f"{name}: no JSON (see {name}.log)")
    raise SystemExit
r = json.loads(lines[-1])
steps, secs = r.get("steps"), r.get("seconds")
per = f", {1000 * secs / steps:.1f} ms a step" if steps and secs else ""
print(f"{name}: {r.get('model')} on {r.get('device')} ({r.get('precision')}), {steps} steps, unlearning {secs} s{per}, mask {r.get('mask')}, train mask {r.get('train_mask')}")
for part in ("forget", "retain"):
    o, u = r["original"][part], r["unlearned"][part]
    cells = []
    for k in ("probe_acc", "psnr_masked", "noise_cos", "fid", "embed_cos"):
        if o.get(k) is not None or u.get(k) is not None:
            d = f" ({u[k] - o[k]:+.2f})" if k == "psnr_masked" and None not in (o.get(k), u.get(k)) else ""
            cells.append(f"{k} {o.get(k)} -> {u.get(k)}{d}")
    print(f"{name}: {part}: " + ", ".join(cells))
for n in r.get("notes", []):
    print(f"{name}: note: {n}")
PY
}
FAMILY_STEPS=${FAMILY_STEPS:-}  # e.g. FAMILY_STEPS=200 for a shorter check; empty: the family's default
for fam in vqgan diffusion; do
  family_run "run-$fam" python3 -m unlearn_core unlearn --model "$fam" --forget builtin:cat --retain builtin:dog \
    --mask outpaint50 --out "$OUT/run-$fam" --json ${FAMILY_STEPS:+--steps "$FAMILY_STEPS"}
done
# keep what comes back small: the JSON lines above hold the metrics
rm -rf "$OUT/run-auto/model" "$OUT/run-center" "$OUT/run-auto/losses.csv" "$OUT/run-auto/metrics.json" \
  "$OUT/run-vqgan/model" "$OUT/run-diffusion/model"
