#!/usr/bin/env bash
# Ours (latency example) vs the PyTorch CPU peer (../shared/bench), alternating, on the
# same machine; prints each round's ratio (ours / torch for time) and the median ratio.
#
#     bash benches/compare_torch.sh [ROUNDS]
#
# Needs `pip install torch numpy` and a release build of the latency example.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
PEER=${PEER:-../shared/bench/torch_latency.py}
OURS=target/release/examples/latency
median() { python3 -c "import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['median_ms'])"; }
compare() {
  local name=$1 ours_args=$2 torch_args=$3 peer=${4:-$PEER} ratios=()
  for _ in $(seq "$ROUNDS"); do
    o=$($OURS $ours_args 2>/dev/null | field)
    t=$(python3 "$peer" $torch_args 2>/dev/null | field)
    ratios+=("$(python3 -c "print($o / $t)")")
    echo "$name: ours ${o} ms, torch ${t} ms"
  done
  echo "$name: median ratio ours/torch = $(median "${ratios[@]}")"
}
compare "OneShot-S+ 224 b1 inference" "--batch 1 --size 224 --iters 30" "--batch 1 --size 224 --iters 30"
compare "OneShot-S+ 224 b1 inference (BN folded)" "--batch 1 --size 224 --iters 30 --fuse-bn" "--batch 1 --size 224 --iters 30"
compare "OneShot-S+ 224 b32 inference" "--batch 32 --size 224 --iters 5" "--batch 32 --size 224 --iters 5"
compare "OneShot-S+ 32x32 b32 train step" "--batch 32 --size 32 --classes 10 --train-step --iters 15" "--batch 32 --size 32 --classes 10 --train-step --iters 15"
compare "supernet 32x32 b32 train step" "--batch 32 --size 32 --classes 10 --train-step --supernet --iters 15" \
  "--device cpu --batch 32 --size 32 --classes 10 --train-step --supernet --iters 15" benches/torch_peer.py
