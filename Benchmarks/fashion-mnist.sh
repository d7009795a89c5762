#!/usr/bin/env bash
# Fashion-MNIST epoch time and accuracy: Attend vs PyTorch (CPU) on the same networks, data, batch size
# (128), optimizer (AdamW, lr 1e-3) and thread count, in one run. Usage: Benchmarks/fashion-mnist.sh [EPOCHS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-3}
threads=${2:-2}
scripts/setup.sh
Benchmarks/setup-peers.sh
swift build -c release >/dev/null
median() { sed -n 's/.*median epoch time \([0-9.]*\) s.*/\1/p'; }
accuracy() { sed -n 's/final test accuracy: \([0-9.]*\)%.*/\1/p'; }
printf "%-5s %8s %12s %12s %10s %10s\n" model epochs "attend s/ep" "torch s/ep" "speedup" "acc A/T"
for model in mlp cnn; do
  a=$(ATTEND_NUM_THREADS=$threads .build/release/attend mnist --model "$model" --epochs "$epochs" 2>/dev/null)
  t=$(.cache/venv/bin/python Benchmarks/fashion_mnist_torch.py --model "$model" --epochs "$epochs" --threads "$threads")
  at=$(echo "$a" | median); tt=$(echo "$t" | median)
  printf "%-5s %8s %12s %12s %9.2fx %10s\n" "$model" "$epochs" "$at" "$tt" "$(echo "$tt / $at" | bc -l)" "$(echo "$a" | accuracy)/$(echo "$t" | accuracy)"
done
