#!/usr/bin/env bash
# Device check on a lent NVIDIA GPU: the CUDA parity tests, then ours vs PyTorch eager
# on the same GPU (batch 256 at 224, f32 and half precision).
#
# Build here (no GPU needed; CUDARC_CUDA_VERSION matches the device's driver, 13.0):
#   (both commands select the same packages and features, so they share one build)
#   CUDARC_CUDA_VERSION=13000 cargo build --release -p shufflenas -p backend-parity \
#     --features shufflenas/cuda,backend-parity/cuda --example latency --example warm_kernels
#   CUDARC_CUDA_VERSION=13000 cargo test --release -p shufflenas -p backend-parity \
#     --features shufflenas/cuda,backend-parity/cuda --test backend_parity --no-run
#   benches/gpu/pack.sh            # gzips the binaries + the peer into gpu-carry/
# Run there with the `device` tool: carry gpu-carry, command `bash benches/gpu/run.sh`.
#
# CubeCL JIT-compiles (NVRTC) and autotunes every new kernel on first use, one kernel at a
# time within a process: minutes for OneShot-S+ (docs/performance.md, GPU). So the check
# runs in two phases:
#   A. the kernels of every workload compiled and tuned ahead, on all 16 cores:
#      `warm_kernels --jobs N` runs the network's pieces (stem, each block at its width,
#      head) split over N processes; CubeCL's on-disk caches (benches/gpu/cubecl.toml)
#      are multi-process safe and keep what each one compiled and tuned. (Session 9 ran
#      whole networks instead, one process each: compilation stayed serial per network
#      and no training step finished its first iteration in 280 s.)
#   B. the timed runs one after another, each alone on the GPU, next to PyTorch eager.
# The caches live in gpu-cache/ (ignored, so a warm machine keeps them between calls) and
# come back as $OUT/cache.tgz.part-* (the device tool returns files up to 16 MiB); copied
# into gpu-carry/ they seed the next run. Phase B also profiles one inference per kernel
# (CubeCL's profiling logger, $OUT/profile.log).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BIN=/tmp/gpu-bin
mkdir -p $BIN
for f in gpu-carry/*.gz; do gunzip -c "$f" > "$BIN/$(basename "$f" .gz)"; chmod +x "$BIN/$(basename "$f" .gz)"; done
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
# cudarc loads libnvrtc dynamically: put the toolkit's and PyTorch's copies on the path
# (never CUDA's stubs/, whose libcuda.so fails every call).
NVRTC_DIRS=$(find /usr/local/cuda*/ /opt/torch/.venv/ -name 'libnvrtc.so*' -not -path '*stubs*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
echo "libnvrtc dirs: $NVRTC_DIRS" | tee -a "$OUT/gpu.txt"
export LD_LIBRARY_PATH="${NVRTC_DIRS}${LD_LIBRARY_PATH:-}"
export PYTHONUNBUFFERED=1
PEER="python3 $ROOT/benches/torch_peer.py"
export PYTHONPATH=$ROOT/gpu-carry

CACHE=$ROOT/gpu-cache
mkdir -p "$CACHE"
if ls gpu-carry/cache.tgz.part-* >/dev/null 2>&1; then
  cat gpu-carry/cache.tgz.part-* | tar -xz -C "$CACHE" && echo "caches unpacked: $(du -sh "$CACHE")" | tee -a "$OUT/gpu.txt"
fi
cp benches/gpu/cubecl.toml "$CACHE/"
cd "$CACHE"
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv -l 5 > "$OUT/smi.csv" 2>&1 &
SMI=$!

BUDGET=${BUDGET:-540}
WARM=${WARM:-300}
# step SECONDS CMD...: runs CMD with at most SECONDS (and never past the budget).
step() {
  local cap=$1; shift
  local left=$((BUDGET - SECONDS)) log
  log=$(mktemp /tmp/step.XXXXXX)
  [ "$left" -gt 20 ] || { echo "skipped (budget): $*" | tee -a "$OUT/results.jsonl"; return; }
  [ "$left" -lt "$cap" ] || left=$cap
  echo "== [${SECONDS}s] $*" > "$log"
  timeout "$left" "$@" >> "$log" 2>&1
  echo "exit $? after ${SECONDS}s" >> "$log"
  printf '%s\n' "$(head -1 "$log"; tail -2 "$log")" | tee -a "$OUT/results.jsonl"
  cat "$log" >> "$OUT/steps.log"
}

# Phase A: everything once, in parallel; the parity tests are issue 3's CUDA test suite.
echo "== phase A (parallel warm-up, ${WARM}s at most)" | tee -a "$OUT/results.jsonl"
pids=()
W="$BIN/warm_kernels --batch 256 --size 224"
step "$WARM" $W --train-step --supernet --paths 6 --jobs 8 & pids+=($!)
step "$WARM" $W --jobs 4 & pids+=($!)
step "$WARM" $W --train-step --jobs 2 & pids+=($!)
step "$WARM" $BIN/backend_parity --test-threads 2 & pids+=($!)
wait "${pids[@]}"

# Phase B: issue 7's two measurements first (inference and supernet training at batch
# 256, each next to PyTorch eager), then the rest.
tar -cz -C "$CACHE" autotune | split -b 15m - "$OUT/autotune.tgz.part-"
echo "== phase B (timed, one at a time) at ${SECONDS}s" | tee -a "$OUT/results.jsonl"
step 90 $BIN/latency --batch 256 --size 224 --iters 5
step 40 $PEER --batch 256 --size 224 --iters 20
# Per-kernel GPU time of the same forward (every kernel timed on its own, so slower):
# 3 warm-up passes + 1, summarised per kernel family (benches/gpu/profile_summary.py).
rm -f profile.log
CUBECL_DEBUG_OPTION=profile step 60 $BIN/latency --batch 256 --size 224 --iters 1
if [ -f profile.log ]; then
  cp profile.log "$OUT/"
  python3 "$ROOT/benches/gpu/profile_summary.py" profile.log --passes 4 | tee "$OUT/profile_summary.txt"
fi
step 120 $BIN/latency --batch 256 --size 224 --iters 3 --train-step --supernet
step 50 $PEER --batch 256 --size 224 --iters 10 --train-step --supernet
step 90 $BIN/latency --batch 256 --size 224 --iters 5 --fuse-bn
step 90 $BIN/latency --batch 256 --size 224 --iters 3 --train-step
step 40 $PEER --batch 256 --size 224 --iters 10 --train-step
step 90 $BIN/latency --batch 256 --size 224 --iters 5 --precision f16
step 40 $PEER --batch 256 --size 224 --iters 20 --amp f16
kill $SMI 2>/dev/null
du -sh "$CACHE" | tee -a "$OUT/results.jsonl"
rm -f "$OUT"/autotune.tgz.part-*
tar -cz -C "$CACHE" --exclude cubecl.toml --exclude profile.log . | split -b 15m - "$OUT/cache.tgz.part-"
ls -la "$OUT"
