#!/usr/bin/env bash
# nanoGPT's CPU "baby" config (4 layers, 4 heads, width 128, context 64, batch 12, 2000 iterations, lr 1e-3,
# no dropout) on 1 MB of Jane Austen, character level: Attend vs PyTorch (CPU) with the same model,
# optimizer and schedule, in one run. Reports training wall time and the final loss over 200 batches.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-2000}
threads=${2:-2}
scripts/setup.sh
scripts/setup-corpus.sh
Benchmarks/setup-peers.sh
[ -s .cache/corpus/austen.txt ] || python3 scripts/build-corpus.py --austen-raw .cache/corpus/austen.txt
swift build -c release >/dev/null
a=$(ATTEND_NUM_THREADS=$threads .build/release/attend gpt train .cache/corpus/austen.txt -o .cache/bench/gpt.safetensors \
      --iterations "$iterations" --eval-interval "$iterations" --eval-iters 200 2>/dev/null | tail -2)
t=$(.cache/venv/bin/python Benchmarks/gpt_torch.py .cache/corpus/austen.txt --threads "$threads" --iterations "$iterations" --eval-iters 200)
echo "attend:  $a" | tr '\n' ' '; echo
echo "pytorch: $t"
at=$(echo "$a" | sed -n "s/.*iterations in \([0-9.]*\) s of training.*/\1/p"); tt=$(echo "$t" | sed -n 's/.*iterations in \([0-9.]*\) s.*/\1/p')
echo "attend/pytorch wall time: $(echo "$tt / $at" | bc -l | cut -c1-5)x faster"
