#!/usr/bin/env bash
# word2vec across MPI ranks against one process with Hogwild threads, on the benchmark corpus
# (.cache/corpus/english.txt, as Benchmarks/word2vec.sh): skip-gram, negative 5, window 5, dim 100, one epoch.
# Arrangements on this 2-core machine: one process with one thread and with two threads (Hogwild: both threads update
# one copy), and `mpirun -np 2` with one thread per rank (each rank trains its own copy; every rank's changes are
# added into all copies ROUNDS times an epoch, for each ROUNDS given). Prints training words/s, the seconds spent
# merging, and analogy accuracy (questions-words.txt, 30,000 most frequent words), medians of REPEATS runs.
# Usage: [EPOCHS=1] Benchmarks/mpi-word2vec.sh [REPEATS, default 3] [ROUNDS..., default 1 10 100]
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}; shift || true
rounds=("$@"); [ ${#rounds[@]} -gt 0 ] || rounds=(1 10 100)
scripts/setup.sh
scripts/setup-corpus.sh
scripts/fetch-assets.sh gensim-test-data >/dev/null
swift build -c release --product attend >/dev/null
mkdir -p .cache/bench
mpirun=(mpirun --oversubscribe -np 2)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
corpus=.cache/corpus/english.txt
questions=.cache/assets/gensim-test-data/questions-words.txt
run() {   # NAME, then the command prefix, then options; prints "words/s averaging-s accuracy"
    local name=$1; shift
    local prefix=()
    while [ "$1" != "--" ]; do prefix+=("$1"); shift; done; shift
    local out
    out=$("${prefix[@]}" .build/release/attend word2vec train "$corpus" -o ".cache/bench/mpi-w2v-$name.bin" --epochs "${EPOCHS:-1}" "$@" 2>/dev/null)
    local rate averaging accuracy
    rate=$(sed -n 's/.* \([0-9.]*\) words\/s.*/\1/p' <<< "$out")
    averaging=$(sed -n 's/.*; merging \([0-9.]*\) s.*/\1/p' <<< "$out")
    accuracy=$(.build/release/attend word2vec evaluate ".cache/bench/mpi-w2v-$name.bin" --analogies "$questions" | sed -n 's/^analogy accuracy: \([0-9.]*\)%.*/\1/p')
    echo "$name $rate ${averaging:-0} $accuracy"
}
for r in $(seq "$repeats"); do
    run 1p1t env -- --threads 1
    run 1p2t env -- --threads 2
    for k in "${rounds[@]}"; do run "2r1t-$k" "${mpirun[@]}" -- --threads 1 --rounds "$k"; done
done > .cache/bench/mpi-word2vec.txt
python3 - .cache/bench/mpi-word2vec.txt <<'PY'
import os, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, rate, averaging, accuracy = line.split()
    runs.setdefault(name, []).append((float(rate), float(averaging), float(accuracy)))
base = statistics.median(r for r, _, _ in runs["1p1t"])
print(f"word2vec skip-gram, {os.environ.get('EPOCHS', '1')} epoch(s) of .cache/corpus/english.txt, medians of {len(runs['1p1t'])} runs")
print("arrangement                                   | words/s | vs 1 thread | merging s | analogy accuracy")
for name, values in runs.items():
    label = {"1p1t": "1 process, 1 thread", "1p2t": "1 process, 2 threads (Hogwild)"}.get(name) or f"mpirun -np 2, 1 thread each, {name.split('-')[1]} merges/epoch"
    rate = statistics.median(v[0] for v in values); averaging = statistics.median(v[1] for v in values); accuracy = statistics.median(v[2] for v in values)
    print(f"{label:45s} | {rate:7.0f} | {rate / base:10.2f}x | {averaging:11.2f} | {accuracy:.2f}%")
PY
