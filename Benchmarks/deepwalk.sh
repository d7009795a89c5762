#!/usr/bin/env bash
# DeepWalk on Debian's package graph: Attend vs walks in Python + gensim skip-gram, same settings
# (10 walks/node, length 40, dim 128, window 5, negative 5, 1 epoch, 2 threads), in one run. Both
# embeddings are scored by the same node-classification evaluator (attend graph evaluate).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
Benchmarks/setup-peers.sh
.cache/venv/bin/python -c "import gensim, networkx" 2>/dev/null || .cache/venv/bin/pip install -q gensim==4.4.0 networkx
[ -s .cache/graphs/packages.edges ] || .cache/venv/bin/python scripts/export-graphs.py
swift build -c release >/dev/null
graph=${1:-packages}
mkdir -p .cache/bench
peak() { /usr/bin/env python3 -c 'import resource,subprocess,sys,time; t=time.perf_counter(); subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL); print(f"{time.perf_counter()-t:.2f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024:.0f}")' "$@"; }
read -r at am < <(peak .build/release/attend graph embed .cache/graphs/$graph.edges -o .cache/bench/deepwalk-attend.bin --threads 2)
read -r gt gm < <(peak .cache/venv/bin/python Benchmarks/deepwalk_gensim.py .cache/graphs/$graph.edges .cache/bench/deepwalk-gensim.bin --threads 2)
echo "graph $graph: wall s (walks + training + save) and peak RSS MiB"
printf "  attend  %8.2f s %7s MiB\n  gensim  %8.2f s %7s MiB   (attend %.2fx faster)\n" "$at" "$am" "$gt" "$gm" "$(echo "$gt / $at" | bc -l)"
for tool in attend gensim; do
  echo "node classification, $tool vectors:"
  .build/release/attend graph evaluate .cache/bench/deepwalk-$tool.bin --labels .cache/graphs/$graph.labels --repeats 3
done
