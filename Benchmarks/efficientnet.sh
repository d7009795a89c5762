#!/usr/bin/env bash
# EfficientNet-Lite0 inference, images/s: Attend vs PyTorch (CPU) on the same torch.save weights and threads, over
# batch sizes and image sizes, in one run; then `attend classify` against the PyTorch port on scikit-image photos.
# Usage: Benchmarks/efficientnet.sh [THREADS] [RUNS]   (each cell is a median within a run; RUNS repeats the table)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
runs=${2:-3}
scripts/setup.sh
Benchmarks/setup-peers.sh
.cache/venv/bin/python -c "import efficientnet_lite_pytorch" 2>/dev/null || .cache/venv/bin/pip install -q efficientnet_lite_pytorch==0.1.0
scripts/fetch-assets.sh efficientnet-lite0 imagenet-labels scikit-image-data >/dev/null
swift build -c release >/dev/null
sizes="160 224 320"
batches="1 8 32"
for run in $(seq "$runs"); do
  a=$(ATTEND_NUM_THREADS=$threads .build/release/attend bench efficientnet --batch-sizes $batches --image-sizes $sizes)
  t=$(.cache/venv/bin/python Benchmarks/efficientnet_torch.py --threads "$threads" --batch-sizes $batches --image-sizes $sizes 2>/dev/null | grep -v Loaded)
  echo "run $run: $(echo "$a" | head -1); $(echo "$t" | head -1)"
  printf "%5s %5s %12s %12s %8s %9s\n" size batch "attend img/s" "torch img/s" ratio "GFLOP/s"
  paste <(echo "$a" | tail -n +3) <(echo "$t" | tail -n +3) | while read -r s b ai ams agf s2 b2 ti tms; do
    printf "%5s %5s %12s %12s %7.2fx %9s\n" "$s" "$b" "$ai" "$ti" "$(echo "$ai / $ti" | bc -l)" "$agf"
  done
done
