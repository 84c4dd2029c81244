#!/usr/bin/env bash
# The CUDA path of SpFDE Studio on a real GPU, in at most 8 minutes, with one Markdown summary.
#
#   PYTHONPATH=. bash benchmarks/gpu_check.sh          # from the repository root
#
# Needs python3 with torch (CUDA), numpy, pyyaml, psutil, nvidia-ml-py and pytest; installs
# nothing, downloads nothing and never imports Qt. Writes $OUT/gpu_check.md and the raw logs
# in $OUT/logs/ ($OUT defaults to benchmarks/out/). Every part has its own time limit inside
# one overall budget (GPU_CHECK_BUDGET_S, default 420 s), so the script ends in time and
# still writes its summary when a part fails or hangs. Without CUDA it runs what the CPU
# can, in small sizes, and says which parts it skipped.
set -u
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH="${PYTHONPATH:-.}"
PY="${PYTHON:-python3}"
OUT_DIR="${OUT:-benchmarks/out}"
LOGS="$OUT_DIR/logs"
mkdir -p "$LOGS"
: > "$LOGS/parts.tsv"
BUDGET="${GPU_CHECK_BUDGET_S:-420}"     # parts; the probe before (30 s) and the summary after (15 s) come on top
T0=$(date +%s)

# part NAME LIMIT_S DESCRIPTION -- COMMAND...: run with min(LIMIT, what is left of the budget)
part() {
  local name="$1" limit="$2" desc="$3"; shift 4
  local now left t rc start
  now=$(date +%s); left=$(( BUDGET - (now - T0) ))
  t=$(( limit < left ? limit : left ))
  if [ "$t" -lt 15 ]; then
    printf '%s\tskipped\t0\t%s\t%s\n' "$name" "$limit" "$desc (no time left in the budget)" >> "$LOGS/parts.tsv"
    echo "[gpu_check] $name: skipped (budget)"; return
  fi
  echo "[gpu_check] $name (limit ${t}s): $desc"
  start=$(date +%s)
  timeout -k 5 "$t" "$@" > "$LOGS/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - start ))" "$t" "$desc" >> "$LOGS/parts.tsv"
  echo "[gpu_check] $name: exit $rc after $(( $(date +%s) - start ))s"
}

skip() {   # skip NAME DESCRIPTION WHY
  printf '%s\tskipped\t0\t0\t%s (%s)\n' "$1" "$2" "$3" >> "$LOGS/parts.tsv"
  echo "[gpu_check] $1: skipped ($3)"
}

PROBE=$(timeout 30 "$PY" -c "import torch; print(int(torch.cuda.is_available()), torch.cuda.device_count(), 'torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" 2>&1 | tail -1)
read -r CUDA NGPU _ <<< "$PROBE"
case "$CUDA" in 0|1) ;; *) CUDA=0; NGPU=0 ;; esac
T0=$(date +%s)
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "host: $(cat /proc/sys/kernel/hostname 2>/dev/null), $(nproc --all) CPU cores, $(free -g 2>/dev/null | awk '/Mem:/{print $2" GiB RAM"}')"
  echo "python: $("$PY" --version 2>&1)"
  echo "probe: $PROBE"
  echo "cuda available: $CUDA, devices: $NGPU"
  command -v nvidia-smi > /dev/null && timeout 20 nvidia-smi -L 2>&1
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
} > "$LOGS/environment.log" 2>&1

COMMON=(--set checkpoint.every=0)
if [ "$CUDA" = "1" ]; then
  part cuda_tests 150 "CUDA-only tests (pytest -m cuda)" -- \
    "$PY" -m pytest -v -p no:cacheprovider -m cuda tests/test_cuda.py -o addopts="" -W ignore::pytest.PytestConfigWarning
  part nvml 20 "NVML readout (spfde_gui.system.gpu_info, the Qt-free part of the hardware monitor)" -- \
    "$PY" -m spfde_gui.system.gpu_info
  part speed_resnet32x2 70 "2x ResNet-32, CIFAR-100-sized synthetic data: fp32/bf16 x channels_last" -- \
    "$PY" benchmarks/bench_gpu.py speed --model resnet32 --width 2 --image-size 32 --train-size 50000 --classes 100 --batch-size 128 --epochs 3
  part speed_resnet50 90 "ResNet-50 at 224 px, 6 epochs x 10 steps per setting: fp32/bf16 x channels_last" -- \
    "$PY" benchmarks/bench_gpu.py speed --model resnet50 --width 1 --image-size 224 --train-size 1280 --classes 100 --batch-size 128 --epochs 6
  part freezing_fp32 60 "layer freezing, 2x ResNet-32, fp32: time saved vs FLOPs saved" -- \
    "$PY" benchmarks/bench_freezing.py --device cuda --model resnet32 --width 2 --image-size 32 --train-size 5000 --batch-size 128 --epochs 16 --interval 1 --rounds 1 --reps 10 --threads 0
  part sieving_fp32 45 "data sieving, 2x ResNet-32, fp32: time saved vs FLOPs saved" -- \
    "$PY" benchmarks/bench_sieving.py --device cuda --model resnet32 --width 2 --image-size 32 --train-size 20000 --batch-size 128 --epochs 3
  part ddp 60 "DDP: images/s with 1 process and with one per GPU ($NGPU)" -- \
    "$PY" benchmarks/bench_gpu.py ddp --model resnet32 --width 2 --image-size 32 --train-size 50000 --classes 100 --batch-size 256 --epochs 3 --precision bf16
  part overhead 40 "engine overhead vs a plain PyTorch loop, 2x ResNet-32, fp32" -- \
    "$PY" benchmarks/bench_engine_overhead.py --device cuda --model resnet32 --width 2 --image-size 32 --train-size 20000 --batch-size 128 --epochs 3 --rounds 1
  part freezing_bf16 45 "layer freezing, 2x ResNet-32, bf16 + channels_last" -- \
    "$PY" benchmarks/bench_freezing.py --device cuda --model resnet32 --width 2 --image-size 32 --train-size 5000 --batch-size 128 --epochs 16 --interval 1 --rounds 1 --reps 10 --threads 0 --set precision=bf16 --set channels_last=true
  part sieving_bf16 40 "data sieving, 2x ResNet-32, bf16 + channels_last" -- \
    "$PY" benchmarks/bench_sieving.py --device cuda --model resnet32 --width 2 --image-size 32 --train-size 20000 --batch-size 128 --epochs 3 --set precision=bf16 --set channels_last=true
else
  part cuda_tests 60 "CUDA-only tests (pytest -m cuda; all skip without CUDA)" -- \
    "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py -o addopts="" -W ignore::pytest.PytestConfigWarning
  part nvml 30 "NVML readout (expects 'no NVIDIA GPU' here)" -- "$PY" -m spfde_gui.system.gpu_info
  part speed_cpu 60 "CPU: fp32 vs bf16 autocast, tiny ResNet-20" -- \
    "$PY" benchmarks/bench_gpu.py speed --device cpu --model resnet20 --width 0.25 --image-size 16 --train-size 512 --classes 10 --batch-size 64 --epochs 3
  part ddp 120 "CPU: images/s with 1 and 2 processes (gloo), tiny ResNet-20" -- \
    "$PY" benchmarks/bench_gpu.py ddp --device cpu --model resnet20 --width 0.25 --image-size 16 --train-size 512 --classes 10 --batch-size 64 --epochs 3
  for p in speed_resnet32x2 speed_resnet50 freezing_fp32 sieving_fp32 overhead freezing_bf16 sieving_bf16; do
    skip "$p" "paper-scale GPU benchmark" "no CUDA on this machine"
  done
fi

timeout -k 2 15 "$PY" benchmarks/gpu_check_summary.py "$OUT_DIR" "$(( $(date +%s) - T0 ))"
rc=$?
if [ $rc -ne 0 ]; then   # the summary itself failed: leave a plain one
  { echo "# GPU check (summary script failed, exit $rc)"; echo; echo '```'; cat "$LOGS/parts.tsv"; echo '```'; } > "$OUT_DIR/gpu_check.md"
fi
echo "[gpu_check] summary: $OUT_DIR/gpu_check.md (total $(( $(date +%s) - T0 ))s)"
