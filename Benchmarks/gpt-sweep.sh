#!/usr/bin/env bash
# GPT training speed over model sizes, Attend vs PyTorch (CPU) with the same model, optimizer, schedule, batch and
# data, in one run: nanoGPT's baby config (4 layers x 128, context 64, batch 12) and its Shakespeare size (6 layers x
# 384, 6 heads, context 256, batch 16), character level on 1 MB of Austen. Prints training seconds and tokens/s.
# Usage: Benchmarks/gpt-sweep.sh [THREADS] [BABY_ITERATIONS] [SHAKESPEARE_ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
scripts/setup.sh
scripts/setup-corpus.sh
Benchmarks/setup-peers.sh
[ -s .cache/corpus/austen.txt ] || python3 scripts/build-corpus.py --austen-raw .cache/corpus/austen.txt
swift build -c release >/dev/null
mkdir -p .cache/bench
export OMP_WAIT_POLICY=PASSIVE
run() {  # name iterations layers heads width context batch
  local name=$1 it=$2 warmup=$(( $2 < 1000 ? $2 / 10 : 100 ))
  local a t at tt
  a=$(ATTEND_NUM_THREADS=$threads .build/release/attend gpt train .cache/corpus/austen.txt -o .cache/bench/gpt-sweep.safetensors \
        --iterations "$it" --eval-interval "$it" --eval-iters 20 --warmup "$warmup" --layers "$3" --heads "$4" --width "$5" \
        --context "$6" --batch-size "$7" 2>/dev/null | tail -1)
  t=$(.cache/venv/bin/python Benchmarks/gpt_torch.py .cache/corpus/austen.txt --threads "$threads" --iterations "$it" --eval-iters 20 \
        --layers "$3" --heads "$4" --width "$5" --context "$6" --batch-size "$7")
  at=$(echo "$a" | sed -n "s/.*iterations in \([0-9.]*\) s of training.*/\1/p"); tt=$(echo "$t" | sed -n 's/.*iterations in \([0-9.]*\) s.*/\1/p')
  printf '%-12s %5d it | attend %7.1f s (%7.0f tok/s) | pytorch %7.1f s (%7.0f tok/s) | attend/pytorch %.2fx\n' "$name" "$it" "$at" \
    "$(echo "$it * $7 * $6 / $at" | bc -l)" "$tt" "$(echo "$it * $7 * $6 / $tt" | bc -l)" "$(echo "$tt / $at" | bc -l)"
}
run baby "${2:-300}" 4 4 128 64 12
run shakespeare "${3:-20}" 6 6 384 256 16
