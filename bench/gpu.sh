#!/usr/bin/env bash
# The GPU checks and benchmarks in one script, for a lent GPU machine (no network there; it runs in
# a copy of this repository). Finishes in under 8 minutes: every step runs under `timeout`, capped
# by what is left of a 420 s budget (GPU_BENCH_BUDGET), and a step that would start with under 20 s
# left is skipped. Output goes to $OUT/gpu-results.txt when $OUT is set (and to stdout as well),
# else to stdout; a summary of the key lines comes last.
#
#   bash bench/gpu.sh --prepare   # on the development machine (has a registry): fetch the wheels the
#                                 # GPU image lacks (pydantic, pydantic-core, annotated-types,
#                                 # typing-inspection, typing-extensions, mnist1d, psutil, nvidia-ml-py) into .whl/
#   bash bench/gpu.sh             # on the GPU machine; with the device tool: carry [".whl"]
#   GPU_STEPS="pytest-gpu run200 run200-read" bash bench/gpu.sh   # only the steps named
#   GPU_STEPS="sweep-seeds8 sweep-seeds8-read lab-warm" bash bench/gpu.sh   # issue 14's two numbers
#   GPU_STEPS="pytest-images images-resnet images-widths" bash bench/gpu.sh   # issue 23's image networks
#
# Steps, most wanted first (a short budget drops the last ones): nvidia-smi and torch device info;
# pytest -m gpu tests/test_gpu.py tests/test_ntk.py tests/test_examples.py; issue 23's image networks: pytest -m gpu
# tests/test_gpu_images.py, bench/images.py --section resnet (resnet18 k=64, bf16, channels_last:
# target >= 45,000 training images/s on an H100) and --section widths (cnn2d k=1..64 x 4 seeds
# grouped vs one at a time: target >= 3x); issue 24's system metrics (a 50-epoch run on
# `--device cuda:0`: the GPU fields in every row, the GPU in config.json and the summary; a GPU index
# past the last refused with exit 2 naming the GPUs; bench/sysmetrics.py, the sampling cost <= 1%); `gengap-tui sweep double-descent --set run.seeds=8
# --device cuda` (20 widths x 8 seeds x 500 epochs, target < 30 s); a default 200-epoch run in a
# freshly opened lab with CUDA warmed (bench/lab_warm_run.py: target >= 200 epochs/s whole run, and
# the same numbers as a cold `gengap-tui run`); a default-preset 200-epoch `gengap-tui run` with CUDA graphs (the
# default) and eager (epochs/s from summary.json, target >= 150 on an H100); bench/seeds.py; the full
# 500-epoch grouped double-descent sweep (target under 60 s on an H100); bench/graphs.py (eager vs
# torch.compile vs a captured step); bench/throughput.py; bench/sweep.py; bench/seeds.py eager;
# bench/profile_run.py (a whole run's time beyond its epochs); bench/sweep.py with one bucket
# (--max-waste 10).
#
# Python: $PYTHON if set, else ./.venv/bin/python or python3, whichever imports torch. Missing
# packages come from .whl/ (installed with --target into a temporary folder, no index), else from a
# venv with --system-site-packages and pip (where a registry is reachable).
set -u -o pipefail

cd "$(dirname "$0")/.." || exit 2
REPO=$(pwd)

# ------------------------------------------------------------------------------ --prepare (dev machine)
if [ "${1:-}" = "--prepare" ]; then
    PY=${PYTHON:-python3}
    [ -x /work/venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=/work/venv/bin/python
    pins=()
    for p in pydantic pydantic-core annotated-types typing-inspection typing-extensions mnist1d psutil nvidia-ml-py; do
        if v=$("$PY" -c "import importlib.metadata as m; print(m.version('$p'))" 2>/dev/null); then
            pins+=("$p==$v")
        else
            pins+=("$p")
        fi
    done
    mkdir -p .whl
    echo "fetching into .whl/ (CPython 3.12, manylinux x86_64): ${pins[*]}"
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${pins[@]}" || exit 1
    ls -la .whl
    exit 0
fi

# ------------------------------------------------------------------------------ output, budget
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    exec > >(tee -a "$OUT/gpu-results.txt") 2>&1
    TEE_PID=$!
fi
export PYTHONUNBUFFERED=1
BUDGET=${GPU_BENCH_BUDGET:-420}
DEADLINE=$((SECONDS + BUDGET))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gengap-gpu.XXXXXX")
export GENGAP_CACHE_DIR="$WORK/cache" GENGAP_RUNS_DIR="$WORK/runs" GENGAP_PRESETS_DIR="$WORK/presets"
SUMMARY="$WORK/summary.txt"
: >"$SUMMARY"

# step NAME LIMIT_S CMD...: run CMD under `timeout`, capped by the time left; log to $WORK/NAME.log
step() {
    local name=$1 limit=$2
    shift 2
    if [ -n "${GPU_STEPS:-}" ] && [[ " $GPU_STEPS " != *" $name "* ]]; then
        return 0  # not among the steps asked for
    fi
    local left=$((DEADLINE - SECONDS))
    if [ "$left" -lt 20 ]; then
        echo "== $name: SKIPPED (${left}s of the budget left)" | tee -a "$SUMMARY"
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo
    echo "== $name (timeout ${limit}s): $*"
    local t0=$SECONDS rc note=""
    timeout -k 5 "$limit" "$@" 2>&1 | tee "$WORK/$name.log"
    rc=${PIPESTATUS[0]}
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then note=" TIMED OUT"; fi
    echo "== $name: rc=$rc in $((SECONDS - t0))s$note" | tee -a "$SUMMARY"
    return 0
}

# keys NAME PATTERN: the lines of a step's log that carry its result
keys() {
    if [ -f "$WORK/$1.log" ]; then grep -h -E "$2" "$WORK/$1.log" | cut -c1-240; fi
    return 0
}

echo "== bench/gpu.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) in $REPO, budget ${BUDGET}s"

# ------------------------------------------------------------------------------ python + packages
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    for c in "$REPO/.venv/bin/python" python3 python; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c "import torch" >/dev/null 2>&1; then
            PY=$c
            break
        fi
    done
fi
if [ -z "$PY" ]; then
    echo "no Python with torch found (set PYTHON=...)"
    exit 2
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
NEED="import torch, numpy, pydantic, annotated_types, mnist1d, pytest"
if ! "$PY" -c "$NEED" >/dev/null 2>&1; then
    if ls .whl/*.whl >/dev/null 2>&1; then
        echo "installing .whl/*.whl into $WORK/site (no index)"
        timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$WORK/site" .whl/*.whl
        export PYTHONPATH="$WORK/site:$PYTHONPATH"
    else
        echo "packages missing and no .whl/: trying a venv (--system-site-packages) and pip"
        "$PY" -m venv --system-site-packages "$WORK/venv" &&
            timeout 120 "$WORK/venv/bin/python" -m pip install -q pydantic mnist1d pytest &&
            PY="$WORK/venv/bin/python"
    fi
fi
if ! "$PY" -c "$NEED"; then
    echo "cannot import what the benchmarks need ($NEED) with $PY;"
    echo "run 'bash bench/gpu.sh --prepare' on a machine with a registry and carry .whl/"
    exit 2
fi

# ------------------------------------------------------------------------------ device info
echo
if command -v nvidia-smi >/dev/null 2>&1; then
    timeout 20 nvidia-smi
    timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.draw \
        --format=csv
else
    echo "nvidia-smi: not found"
fi
cat >"$WORK/info.py" <<'PYEOF'
import os, platform, sys
import torch
print(f"python {sys.version.split()[0]} ({sys.executable}); torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}; {os.cpu_count()} CPUs, {platform.machine()}")
print(f"cuda available: {torch.cuda.is_available()}; devices: {torch.cuda.device_count()}")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"  cuda:{i} {p.name}, {p.total_memory / 2**30:.1f} GiB, sm_{p.major}{p.minor}, "
          f"{p.multi_processor_count} SMs")
print(f"tf32 matmul: {torch.backends.cuda.matmul.allow_tf32}; "
      f"float32 matmul precision: {torch.get_float32_matmul_precision()}")
sys.exit(0 if torch.cuda.is_available() else 3)
PYEOF
if ! timeout 60 "$PY" "$WORK/info.py"; then
    echo "no CUDA device visible to torch: nothing to measure"
    exit 3
fi

# the 200-epoch run's numbers, from its summary.json (wall_seconds) and metrics.jsonl
cat >"$WORK/read_run.py" <<'PYEOF'
import json, statistics, sys
from pathlib import Path
d = sorted(Path(sys.argv[1]).glob("*/summary.json"))[-1].parent
s = json.loads((d / "summary.json").read_text())
rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines() if line.strip()]
med = statistics.median(r["epoch_seconds"] for r in rows)
eps = s["epochs_run"] / s["wall_seconds"]
print(f"default preset, {s['epochs_run']} epochs on {s['device']}: wall_seconds {s['wall_seconds']:.2f} -> "
      f"{eps:.1f} epochs/s (target >= 150 on an H100: {'met' if eps >= 150 else 'MISSED'}); "
      f"median epoch {med * 1e3:.2f} ms -> {1 / med:.1f} epochs/s steady; status {s['status']}, "
      f"test_err {s['test_err']:.4f}")
PYEOF

# the sweep's numbers, from its summary.json and sweep.json
cat >"$WORK/read_sweep.py" <<'PYEOF'
import json, sys
from pathlib import Path
d = sorted(Path(sys.argv[1]).glob("*/summary.json"))[-1].parent
s = json.loads((d / "summary.json").read_text())
meta = json.loads((d / "sweep.json").read_text())
wall = s.get("wall_seconds") or float("nan")
seeds = (meta.get("config") or {}).get("run", {}).get("seeds")
print(f"double-descent sweep, {len(meta.get('values', []))} widths x {seeds} seeds x {meta.get('epochs')} epochs on "
      f"{meta.get('device')}: wall_seconds {wall:.1f} (target < 30 s: {'met' if wall < 30 else 'MISSED'}); status "
      f"{s.get('status')}, threshold {s.get('interpolation_threshold')}, peak {s.get('peak_test_err')} at width "
      f"{s.get('peak_value')}, last width's test_err {s.get('last_test_err')}")
PYEOF

# issue 24: the system fields of a run on cuda:0 (named by index), and a GPU that is not there
cat >"$WORK/read_sys.py" <<'PYEOF'
import json, subprocess, sys
from pathlib import Path
import torch
d = sorted(Path(sys.argv[1]).glob("*/summary.json"))[-1].parent
s = json.loads((d / "summary.json").read_text())
cfg = json.loads((d / "config.json").read_text())
rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines() if line.strip()]
try:
    import pynvml  # noqa: F401
    nvml = True
except ImportError:
    nvml = False
want = ["cpu_percent", "rss_mb", "gpu_mem_peak_mb"] + (["gpu_util", "gpu_mem_used_mb", "gpu_mem_run_mb",
                                                        "gpu_power_w", "gpu_temp_c"] if nvml else [])
missing = sorted({k for r in rows for k in want if r.get(k) is None})
gpu = cfg.get("gpu") or {}
gkeys = ["index", "name", "memory_mb"] + (["driver"] if nvml else [])
bad = [k for k in gkeys if gpu.get(k) is None] + ([] if gpu.get("index") == 0 else ["index != 0"])
last = rows[-1]
print(f"system fields ({'with' if nvml else 'WITHOUT'} nvidia-ml-py) in {len(rows)} rows on {s['device']}: "
      f"{'OK' if not missing else 'MISSING ' + ', '.join(missing)}; config.json gpu {gpu}: "
      f"{'OK' if not bad else 'MISSING ' + ', '.join(bad)}; summary gpu_mem_peak_mb {s.get('gpu_mem_peak_mb')}")
print("last row: " + ", ".join(f"{k} {last.get(k)}" for k in want))
n = torch.cuda.device_count()
p = subprocess.run([sys.executable, "-m", "gengap_tui.cli", "run", "default", "--device", f"cuda:{n}", "--quiet",
                    "--runs-dir", sys.argv[1] + "-missing"], capture_output=True, text=True, timeout=120)
named = "cuda:0 (" in p.stderr
print(f"--device cuda:{n} (one past the last of {n}): exit {p.returncode} "
      f"({'OK' if p.returncode == 2 and named else 'WRONG'}): {p.stderr.strip()[:200]}")
sys.exit(0 if not missing and not bad and p.returncode == 2 and named and s["device"].endswith("(cuda:0)") else 1)
PYEOF

# ------------------------------------------------------------------------------ checks and benchmarks
step pytest-gpu 150 "$PY" -m pytest -q -m gpu -p no:cacheprovider -rs tests/test_gpu.py tests/test_ntk.py tests/test_examples.py
# issue 23: the image networks on CUDA (channels_last, grouped convolutions, bf16) and the image path
# (uint8 storage, augmentation inside the recorded epoch)
step pytest-images 90 "$PY" -m pytest -q -m gpu -p no:cacheprovider -rs tests/test_gpu_images.py tests/test_gpu_augment.py
step images-resnet 60 "$PY" bench/images.py --device cuda --section resnet
step images-widths 120 "$PY" bench/images.py --device cuda --section widths
# a whole lab epoch on CIFAR-sized data (50,000 training + 10,000 validation images, crop-flip, resnet18
# k = 64, bfloat16) against a DataLoader loop with per-sample transforms (target >= 3x)
step images-epoch 150 "$PY" bench/image_epoch.py --model resnet18 --width 64 --n-train 50000 --n-val 10000 \
    --device cuda --precision bfloat16 --epochs 2 --rounds 1
step sys-run 60 "$PY" -m gengap_tui.cli run default --set optim.epochs=50 --set early_stopping.enabled=false \
    --device cuda:0 --quiet --runs-dir "$WORK/runs-sys"
step sys-read 150 "$PY" "$WORK/read_sys.py" "$WORK/runs-sys"
step sys-cost 60 "$PY" bench/sysmetrics.py --device cuda:0 --epochs 60
# issue 14: the 8-seed double-descent sweep, and a run in a freshly opened lab with CUDA warmed
step sweep-seeds8 90 "$PY" -m gengap_tui.cli sweep double-descent --set run.seeds=8 --device cuda --quiet \
    --runs-dir "$WORK/sweep8"
step sweep-seeds8-read 30 "$PY" "$WORK/read_sweep.py" "$WORK/sweep8"
step lab-warm 150 "$PY" bench/lab_warm_run.py --device cuda --epochs 200
# the default preset, 200 epochs, full-split evaluation every epoch: CUDA graphs (the default) and eager
step run200 60 "$PY" -m gengap_tui.cli run default --set optim.epochs=200 --set early_stopping.enabled=false \
    --device cuda --quiet --runs-dir "$WORK/runs200"
step run200-read 30 "$PY" "$WORK/read_run.py" "$WORK/runs200"
step run200-eager 60 "$PY" -m gengap_tui.cli run default --set optim.epochs=200 --set early_stopping.enabled=false \
    --set run.cuda_graphs=off --device cuda --quiet --runs-dir "$WORK/runs200e"
step run200-eager-read 30 "$PY" "$WORK/read_run.py" "$WORK/runs200e"
step seeds 90 "$PY" bench/seeds.py --device cuda --epochs 30 --rounds 3
left=$((DEADLINE - SECONDS))
if [ "$left" -ge 45 ]; then
    step sweep-full 150 "$PY" bench/sweep.py --device cuda --full
else
    echo "== sweep-full: SKIPPED (${left}s of the budget left)" | tee -a "$SUMMARY"
fi
# does capturing the step pay (eager vs torch.compile reduce-overhead vs a hand-captured CUDA graph)?
step graphs 75 "$PY" bench/graphs.py --device cuda --steps 300
step throughput 60 "$PY" bench/throughput.py --device cuda
step sweep 90 "$PY" bench/sweep.py --device cuda --rounds 2
step seeds-eager 60 "$PY" bench/seeds.py --device cuda --epochs 30 --rounds 2 --set run.cuda_graphs=off
# where a whole run's time goes beyond its epochs (warm-up, recording, writing the run directory)
step profile 60 "$PY" bench/profile_run.py --device cuda --top 30
# one bucket (every width padded to 300: ~6.9x the arithmetic, a tenth of the launches): may pay on a GPU
step sweep-1bucket 60 "$PY" bench/sweep.py --device cuda --max-waste 10 --rounds 2

# ------------------------------------------------------------------------------ summary
echo
echo "== summary (${SECONDS}s in all)"
cat "$SUMMARY"
keys pytest-gpu "[0-9]+ (passed|failed|skipped|error)"
keys pytest-images "[0-9]+ (passed|failed|skipped|error)"
keys images-resnet "images/s|CUDA graphs"
keys images-widths "ratio|buckets"
keys images-epoch "ratio|lab epoch|plain epoch"
keys sys-read "system fields|last row|--device cuda"
keys sys-cost "ratio|sampling cost|Sampler.epoch|thread"
keys sweep-seeds8-read "wall_seconds"
keys lab-warm "warm lab|cold run"
keys throughput "ratio|ms/epoch"
keys seeds "ms/epoch|throughput stacked|cost of|check after"
keys seeds-eager "ms/epoch|throughput stacked|cost of"
keys sweep "ms/epoch  \(|ratio|padded_fraction|500-epoch"
keys sweep-1bucket "grouped \(|ratio|padded_fraction"
keys run200-read "epochs/s"
keys run200-eager-read "epochs/s"
keys graphs "ms/step|per-seed|compile"
keys profile "run on"
keys sweep-full "grouped sweep:|targets:|shape:"
# issue 14's rows for bench/RESULTS.md, and this log beside them (in the repository here and, as
# this copy of the repository is not kept on a lent machine, under $OUT too)
ROWS="$WORK/results-rows.md"
: >"$ROWS"
DAY=$(date -u +%Y-%m-%d)
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
LOG_NAME="results/$DAY-gpu-issue14.txt"
row() {  # row NAME COMMAND: one RESULTS.md row from a step's key lines
    local text
    text=$(keys "$1" "${3:-.}" | tr '\n' ' ' | sed 's/|/\\|/g; s/ *$//')
    [ -n "$text" ] && echo "| $DAY | ${GPU_NAME:-GPU} | \`$2\` ([log]($LOG_NAME)) | $text |" >>"$ROWS"
    return 0
}
row sweep-seeds8-read "gengap-tui sweep double-descent --set run.seeds=8 --device cuda" "wall_seconds"
row lab-warm "python bench/lab_warm_run.py --device cuda --epochs 200" "warm lab|cold run"
row images-resnet "python bench/images.py --device cuda --section resnet" "images/s"
row images-widths "python bench/images.py --device cuda --section widths" "ratio"
if [ -s "$ROWS" ]; then
    echo
    echo "== rows for bench/RESULTS.md (appended there; log: bench/$LOG_NAME)"
    cat "$ROWS"
    cat "$ROWS" >>"$REPO/bench/RESULTS.md"
    [ -n "${OUT:-}" ] && cp "$ROWS" "$OUT/results-rows.md"
fi
rm -rf "$WORK"
if [ -n "${TEE_PID:-}" ]; then  # let tee write the last lines before the command returns
    exec >&- 2>&-
    wait "$TEE_PID" 2>/dev/null
    if [ -s "$OUT/results-rows.md" ]; then  # the log the rows point to
        mkdir -p "$REPO/bench/results" && cp "$OUT/gpu-results.txt" "$REPO/bench/$LOG_NAME"
    fi
fi
exit 0
