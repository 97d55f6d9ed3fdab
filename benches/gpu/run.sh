#!/usr/bin/env bash
# Device check: CUDA parity tests, then ours vs PyTorch eager on the same GPU.
# Expects gzipped CUDA binaries in gpu-carry/ (built on the CPU machine with
# --features cuda) and the peer implementation torch_oneshot.py beside them.
set -u
cd "$(dirname "$0")/../.."
BIN=gpu-bin
mkdir -p $BIN
for f in gpu-carry/*.gz; do gunzip -c "$f" > "$BIN/$(basename "$f" .gz)"; chmod +x "$BIN/$(basename "$f" .gz)"; done
cp gpu-carry/torch_oneshot.py $BIN/
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
export CUBECL_AUTOTUNE_LEVEL=${CUBECL_AUTOTUNE_LEVEL:-minimal}
echo "== parity tests (cuda vs flex)"
timeout 80 $BIN/backend_parity > "$OUT/parity.txt" 2>&1; tail -5 "$OUT/parity.txt"
run() { local log="$OUT/log$((++n)).txt"; echo "== $*" | tee "$log"; timeout "$T" "$@" >> "$log" 2>&1; tail -1 "$log" | tee -a "$OUT/results.jsonl"; }
n=0
export PYTHONPATH=$BIN
T=80 run $BIN/latency --batch 256 --size 224 --iters 5
T=60 run python3 benches/gpu/torch_gpu.py --batch 256 --size 224 --iters 10
T=80 run $BIN/latency --batch 256 --size 224 --iters 3 --train-step
T=60 run python3 benches/gpu/torch_gpu.py --batch 256 --size 224 --iters 6 --train-step
T=60 run $BIN/latency --batch 256 --size 224 --iters 3 --train-step --supernet
T=60 run python3 benches/gpu/torch_gpu.py --batch 256 --size 224 --iters 6 --train-step --supernet
