#!/usr/bin/env bash
# Device check on a lent NVIDIA GPU: the CUDA parity tests, then ours vs PyTorch eager
# on the same GPU (batch 256 at 224, f32 and half precision).
#
# Build here (no GPU needed; CUDARC_CUDA_VERSION matches the device's driver, 13.0):
#   CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda --example latency
#   CUDARC_CUDA_VERSION=13000 cargo test --release --features cuda --test backend_parity --no-run
#   benches/gpu/pack.sh            # gzips both binaries + the peer into gpu-carry/
# Run there with the `device` tool: carry gpu-carry, command `bash benches/gpu/run.sh`.
set -u
cd "$(dirname "$0")/../.."
BIN=/tmp/gpu-bin
mkdir -p $BIN
for f in gpu-carry/*.gz; do gunzip -c "$f" > "$BIN/$(basename "$f" .gz)"; chmod +x "$BIN/$(basename "$f" .gz)"; done
cp gpu-carry/torch_oneshot.py $BIN/
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
# cudarc loads libnvrtc dynamically: put the toolkit's and PyTorch's copies on the path.
NVRTC_DIRS=$(find /usr/local/cuda*/ /opt/torch/.venv/ -name 'libnvrtc.so*' -not -path '*stubs*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
echo "libnvrtc dirs: $NVRTC_DIRS" | tee -a "$OUT/gpu.txt"
export LD_LIBRARY_PATH="${NVRTC_DIRS}${LD_LIBRARY_PATH:-}"
export CUBECL_AUTOTUNE_LEVEL=${CUBECL_AUTOTUNE_LEVEL:-minimal}
# Compiled kernels and autotune results cached on disk across processes.
cp benches/gpu/cubecl.toml ./cubecl.toml

# CubeCL JIT-compiles (NVRTC) and autotunes every new kernel shape on first use: the
# first iterations of each process take minutes. Each step gets what is left of the
# budget, so that a slow step never costs the ones after it their result.
BUDGET=${BUDGET:-540}
n=0
run() {
  local left=$((BUDGET - SECONDS)) log="/tmp/step$((++n)).txt"
  [ "$left" -gt 20 ] || { echo "skipped (budget): $*"; return; }
  [ "$left" -lt "$T" ] || left=$T
  echo "== [${SECONDS}s] $*" | tee "$log"; timeout "$left" "$@" >> "$log" 2>&1; echo "exit $? after ${SECONDS}s" >> "$log"
  tail -2 "$log" | tee -a "$OUT/results.jsonl"
  cat "$log" >> "$OUT/steps.log"
}
export PYTHONPATH=$BIN PYTHONUNBUFFERED=1
# Issue 7's two measurements first (inference and supernet training at batch 256, each
# next to PyTorch eager), then inference with BN folded, the fixed-net step, the parity
# tests and half precision.
# One short pass first fills the kernel caches; the timed run after it reuses them.
# The supernet draws a seeded path per step, so the untimed run with the same
# arguments compiles exactly the shapes the timed run meets.
T=150 run $BIN/latency --batch 256 --size 224 --iters 1
T=90 run $BIN/latency --batch 256 --size 224 --iters 5
T=30 run python3 benches/torch_peer.py --batch 256 --size 224 --iters 20
T=200 run $BIN/latency --batch 256 --size 224 --iters 3 --train-step --supernet
T=120 run $BIN/latency --batch 256 --size 224 --iters 3 --train-step --supernet
T=40 run python3 benches/torch_peer.py --batch 256 --size 224 --iters 10 --train-step --supernet
T=90 run $BIN/latency --batch 256 --size 224 --iters 5 --fuse-bn
T=150 run $BIN/latency --batch 256 --size 224 --iters 3 --train-step
T=30 run python3 benches/torch_peer.py --batch 256 --size 224 --iters 10 --train-step
T=540 run $BIN/backend_parity --test-threads 1
T=120 run $BIN/latency --batch 256 --size 224 --iters 5 --precision f16
T=30 run python3 benches/torch_peer.py --batch 256 --size 224 --iters 20 --amp f16
