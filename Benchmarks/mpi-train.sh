#!/usr/bin/env bash
# Data-parallel training under MPI against one process, the same global batch and seed, for each trainer that runs
# under mpirun. Three arrangements on this 2-core machine: one process with one thread, one process with two threads,
# and `mpirun -np 2` with one thread per rank (each rank trains on half of every batch). Prints training time (without
# data loading, tokenizer training or cached features), throughput, the final quality figure, the largest difference of
# the per-step loss curves against the one-process run, and the scaling efficiency; medians of REPEATS runs.
#   gpt:   nanoGPT's CPU "baby" config (4 layers x 128, context 64, batch 12) on 1 MB of Austen, character level
#   bert:  masked-LM pretraining, the default BERT (4 layers x 128, FFN 512, up to 128 tokens, batch 32) on the books
#   clip:  CLIP on scikit-learn's digits, a from-scratch text tower, batch 256, the image tower's features cached
#   mnist: the Fashion-MNIST CNN on 10,000 pictures, batch 128, one epoch
# Usage: Benchmarks/mpi-train.sh gpt|bert|clip|mnist [STEPS] [REPEATS, default 3] [MORE OPTIONS for the command...]
set -euo pipefail
cd "$(dirname "$0")/.."
workload=${1:?usage: Benchmarks/mpi-train.sh gpt|bert|clip|mnist [STEPS] [REPEATS]}
repeats=${3:-3}
more=("${@:4}")
scripts/setup.sh
scripts/setup-corpus.sh
swift build -c release --product attend >/dev/null
mkdir -p .cache/bench
mpirun=(mpirun --oversubscribe -np 2 -x ATTEND_NUM_THREADS=1)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
case $workload in
gpt)  steps=${2:-300}; items=$((12 * 64)); unit=tokens
      train=(gpt train .cache/corpus/austen.txt --iterations "$steps" --eval-interval "$steps" --eval-iters 50)
      parse='s/^done: .* in \([0-9.]*\) s of training.*final val loss \([0-9.]*\).*/\1 \2/p'; metric="final val loss" ;;
bert) steps=${2:-100}; items=32; unit=passages
      [ -s .cache/corpus/books/pretrain.txt ] || python3 scripts/build-books.py --output .cache/corpus/books
      train=(bert pretrain .cache/corpus/books/pretrain.txt --steps "$steps" --log-every "$steps")
      parse='s/^held-out masked tokens: loss \([0-9.]*\), .*; \([0-9.]*\) s of training.*/\2 \1/p'; metric="held-out MLM loss" ;;
clip) steps=${2:-200}; items=256; unit=pairs
      train=(clip train --data digits --text-tower transformer --steps "$steps" --batch-size 256)
      # The image tower's features are computed (and cached) once, before the timed runs.
      .build/release/attend "${train[@]}" --steps 1 -o .cache/bench/mpi-clip-warm.safetensors > /dev/null 2>&1
      parse='s/.* steps in \([0-9.]*\) s (.*loss \([0-9.]*\) (last 20 steps).*/\1 \2/p'; metric="loss, last 20 steps" ;;
mnist) steps=${2:-79}; items=128; unit=images
      train=(mnist --model cnn --train-limit $((steps * 128)) --epochs 1 --batch-size 128)
      parse='s/^epoch 1: train loss \([0-9.]*\), test accuracy .*, \([0-9.]*\) s$/\2 \1/p'; metric="train loss" ;;
*) echo "Benchmarks/mpi-train.sh: unknown workload '$workload' (gpt, bert, clip or mnist)" >&2; exit 64 ;;
esac
train+=("${more[@]}")
[ ${#more[@]} -gt 0 ] && echo "with ${more[*]}"
run() {   # NAME, then the command prefix; prints "seconds metric"
    local name=$1; shift
    local log=(--loss-log ".cache/bench/mpi-$workload-$name.loss")
    [ "$workload" = mnist ] && log=()
    "$@" .build/release/attend "${train[@]}" -o ".cache/bench/mpi-$workload-$name.safetensors" "${log[@]}" 2>/dev/null | sed -n "$parse"
}
[ "$workload" = mnist ] && run() { local name=$1; shift; "$@" .build/release/attend "${train[@]}" 2>/dev/null | sed -n "$parse"; }
for r in $(seq "$repeats"); do
    echo "1p1t $(run 1p1t env ATTEND_NUM_THREADS=1)"
    echo "1p2t $(run 1p2t env ATTEND_NUM_THREADS=2)"
    echo "2r1t $(run 2r1t "${mpirun[@]}")"
done > ".cache/bench/mpi-$workload.txt"
python3 - ".cache/bench/mpi-$workload.txt" "$workload" "$steps" "$items" "$unit" "$metric" <<'PY'
import os, statistics, sys
path, workload, steps, items, unit, metric = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
runs = {}
for line in open(path):
    name, seconds, value = line.split()
    runs.setdefault(name, []).append((float(seconds), float(value)))
curves = {n: [float(x) for x in open(f".cache/bench/mpi-{workload}-{n}.loss")] for n in runs if os.path.exists(f".cache/bench/mpi-{workload}-{n}.loss")}
t1 = statistics.median(s for s, _ in runs["1p1t"])
print(f"{workload}: {steps} steps of {items} {unit}, medians of {len(runs['1p1t'])} runs")
print(f"arrangement                    | train s | {unit}/s | {metric} | loss curve vs 1 process (max rel. diff) | speed-up | efficiency")
for name, label, workers in [("1p1t", "1 process, 1 thread", 1), ("1p2t", "1 process, 2 threads", 2), ("2r1t", "mpirun -np 2, 1 thread each", 2)]:
    s = statistics.median(x for x, _ in runs[name]); value = statistics.median(v for _, v in runs[name])
    diff = "n/a (epoch mean only)"
    if name in curves and "1p1t" in curves:
        diff = f"{max(abs(a - b) / abs(b) for a, b in zip(curves[name], curves['1p1t'])):.1e}"
    print(f"{label:30s} | {s:7.1f} | {steps * items / s:8.0f} | {value:.4f} | {diff:>39s} | {t1 / s:7.2f}x | {t1 / s / workers:9.0%}")
PY
