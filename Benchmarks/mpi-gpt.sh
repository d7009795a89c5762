#!/usr/bin/env bash
# Data-parallel GPT training under MPI against one process, the same global batch and seed: nanoGPT's CPU "baby"
# config (4 layers x 128, context 64, batch 12) on 1 MB of Austen, character level. Three arrangements on this
# 2-core machine: one process with one thread, one process with two threads, and `mpirun -np 2` with one thread per
# rank (each rank trains on 6 of the 12 windows). Prints training time, final validation loss, the largest
# difference of the per-iteration loss curves against the one-process run, and the scaling efficiency.
# Usage: Benchmarks/mpi-gpt.sh [ITERATIONS, default 300] [REPEATS, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-300}; repeats=${2:-3}
scripts/setup.sh
scripts/setup-corpus.sh
swift build -c release --product attend >/dev/null
mkdir -p .cache/bench
mpirun=(mpirun --oversubscribe -np 2 -x ATTEND_NUM_THREADS=1)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
train=(gpt train .cache/corpus/austen.txt --iterations "$iterations" --eval-interval "$iterations" --eval-iters 50)
run() {   # NAME, then the command prefix; prints "seconds final-val-loss"
    local name=$1; shift
    "$@" .build/release/attend "${train[@]}" -o ".cache/bench/mpi-$name.safetensors" --loss-log ".cache/bench/mpi-$name.loss" 2>/dev/null \
        | sed -n 's/^done: .* in \([0-9.]*\) s of training.*final val loss \([0-9.]*\).*/\1 \2/p'
}
for r in $(seq "$repeats"); do
    echo "1p1t $(run 1p1t env ATTEND_NUM_THREADS=1)"
    echo "1p2t $(run 1p2t env ATTEND_NUM_THREADS=2)"
    echo "2r1t $(run 2r1t "${mpirun[@]}")"
done > .cache/bench/mpi-gpt.txt
python3 - .cache/bench/mpi-gpt.txt "$iterations" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, seconds, loss = line.split()
    runs.setdefault(name, []).append((float(seconds), float(loss)))
curves = {n: [float(x) for x in open(f".cache/bench/mpi-{n}.loss")] for n in runs}
base = curves["1p1t"]
t1 = statistics.median(s for s, _ in runs["1p1t"])
print(f"GPT baby config, {sys.argv[2]} iterations, batch 12, medians of {len(runs['1p1t'])} runs")
print("arrangement                    | train s | tokens/s | final val loss | loss curve vs 1 process (max rel. diff) | speed-up | efficiency")
for name, label, workers in [("1p1t", "1 process, 1 thread", 1), ("1p2t", "1 process, 2 threads", 2), ("2r1t", "mpirun -np 2, 1 thread each", 2)]:
    s = statistics.median(x for x, _ in runs[name]); loss = statistics.median(l for _, l in runs[name])
    diff = max(abs(a - b) / abs(b) for a, b in zip(curves[name], base))
    tokens = int(sys.argv[2]) * 12 * 64 / s
    print(f"{label:30s} | {s:7.1f} | {tokens:8.0f} | {loss:14.4f} | {diff:39.1e} | {t1 / s:7.2f}x | {t1 / s / workers:9.0%}")
PY
