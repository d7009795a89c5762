#!/usr/bin/env bash
# GPT training speed over model sizes, Attend vs PyTorch (CPU) with the same model, optimizer, schedule, batch and
# data, in one run: nanoGPT's baby config (4 layers x 128, context 64, batch 12) and its Shakespeare size (6 layers x
# 384, 6 heads, context 256, batch 16), character level on 1 MB of Austen. Prints training seconds and tokens/s, and
# each side's achieved GFLOP/s as a share of this machine's peak: the model's FLOPs per iteration are 6 N B T for the
# N weights of the products (12 C^2 per layer and the tied output layer, V C) plus 6 L B T^2 C for causal attention
# (half of the [T, T] products), and the peak is `attend bench gemm`'s own kernel on one thread (the best of three sizes), times threads.
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
vocab=$(python3 -c "import sys; print(len(set(open(sys.argv[1], encoding='utf-8').read())))" .cache/corpus/austen.txt)
peak=$(.build/release/attend bench gemm --sizes 768 1024 1536 --threads 1 | awk -v t="$threads" '$2 == 1 && $4 > m { m = $4 } END { print m * t }')
echo "peak: $peak GFLOP/s ($threads x attend bench gemm's own kernel, the best of 768^3, 1024^3, 1536^3 on one thread); vocabulary $vocab characters"
run() {  # name iterations layers heads width context batch
  local name=$1 it=$2 warmup=$(( $2 < 1000 ? $2 / 10 : 100 ))
  local a t at tt
  a=$(ATTEND_NUM_THREADS=$threads .build/release/attend gpt train .cache/corpus/austen.txt -o .cache/bench/gpt-sweep.safetensors \
        --iterations "$it" --eval-interval "$it" --eval-iters 20 --warmup "$warmup" --layers "$3" --heads "$4" --width "$5" \
        --context "$6" --batch-size "$7" 2>/dev/null | tail -1)
  t=$(.cache/venv/bin/python Benchmarks/gpt_torch.py .cache/corpus/austen.txt --threads "$threads" --iterations "$it" --eval-iters 20 \
        --layers "$3" --heads "$4" --width "$5" --context "$6" --batch-size "$7")
  at=$(echo "$a" | sed -n "s/.*iterations in \([0-9.]*\) s of training.*/\1/p"); tt=$(echo "$t" | sed -n 's/.*iterations in \([0-9.]*\) s.*/\1/p')
  local gflop
  gflop=$(echo "(6 * ($3 * 12 * $5 * $5 + $vocab * $5) * $7 * $6 + 6 * $3 * $7 * $6 * $6 * $5) / 10^9" | bc -l)
  printf '%-12s %5d it | attend %7.1f s (%7.0f tok/s, %5.1f GFLOP/s, %2.0f%% of peak) | pytorch %7.1f s (%7.0f tok/s, %5.1f GFLOP/s, %2.0f%%) | attend/pytorch %.2fx\n' \
    "$name" "$it" "$at" "$(echo "$it * $7 * $6 / $at" | bc -l)" "$(echo "$gflop * $it / $at" | bc -l)" "$(echo "100 * $gflop * $it / $at / $peak" | bc -l)" \
    "$tt" "$(echo "$it * $7 * $6 / $tt" | bc -l)" "$(echo "$gflop * $it / $tt" | bc -l)" "$(echo "100 * $gflop * $it / $tt / $peak" | bc -l)" "$(echo "$tt / $at" | bc -l)"
}
run baby "${2:-300}" 4 4 128 64 12
run shakespeare "${3:-20}" 6 6 384 256 16
