#!/usr/bin/env bash
# Packs the CUDA binaries built here and the PyTorch peer into gpu-carry/ (gitignored),
# small enough for the device tool's 64 MiB working-tree limit. See run.sh.
set -eu
cd "$(dirname "$0")/../.."
mkdir -p gpu-carry
rm -f gpu-carry/*
pack() { strip -o gpu-carry/"$2" "$1" && gzip gpu-carry/"$2"; }
pack target/release/examples/latency latency
pack target/release/examples/warm_kernels warm_kernels
pack "$(ls -t target/release/deps/backend_parity-* | grep -v '\.d$' | head -1)" backend_parity
cp ../shared/bench/torch_oneshot.py gpu-carry/
ls -la gpu-carry
