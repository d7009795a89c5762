#!/usr/bin/env bash
# Vector search on ann-benchmarks' fashion-mnist-784-euclidean (60,000 Fashion-MNIST training images as the base, the
# 10,000 test images as queries, raw pixel values, exact ground truth computed by numpy): build time, then recall@10
# and queries/s at each ef and thread count, Attend's HNSW beside hnswlib 0.8.0 and FAISS IndexHNSWFlat with the same M
# and ef_construction, in one run. The data set `minilm` is 100,000 MiniLM passage embeddings and 1,000 short queries
# (Benchmarks/make_minilm_ann.py) instead. Usage: Benchmarks/ann.sh [M] [ef_construction] [repeats] [fmnist|minilm]
set -euo pipefail
cd "$(dirname "$0")/.."
M=${1:-16}; EFC=${2:-200}; REPEATS=${3:-3}; DATA=${4:-fmnist}
EF="10 20 40 80 160 320"
scripts/setup.sh
Benchmarks/setup-peers.sh
.cache/venv/bin/python -c "import hnswlib, faiss" 2>/dev/null || .cache/venv/bin/pip install -q hnswlib==0.8.0 faiss-cpu==1.15.1
swift build -c release >/dev/null
mkdir -p .cache/bench
out=.cache/bench/ann-$DATA-$M-$EFC.jsonl
case "$DATA" in
  fmnist) data=(); truth=.cache/bench/fmnist-truth.i32 ;;
  minilm)
    .cache/venv/bin/python Benchmarks/make_minilm_ann.py "$(scripts/fetch-assets.sh all-MiniLM-L6-v2)"
    data=(--base .cache/bench/minilm-base.f32 --queries .cache/bench/minilm-queries.f32); truth=.cache/bench/minilm-truth.i32 ;;
  *) echo "data set must be fmnist or minilm, got $DATA" >&2; exit 2 ;;
esac
dim=(); [ "$DATA" = minilm ] && dim=(--dim 384)
.cache/venv/bin/python Benchmarks/ann_peers.py --truth "$truth" "${data[@]}" "${dim[@]}" --m "$M" --ef-construction "$EFC" \
  --ef $EF --repeats "$REPEATS" > "$out"
[ "$DATA" = minilm ] && dim=(--dimension 384)
.build/release/attend bench ann --truth "$truth" "${data[@]}" "${dim[@]}" --m "$M" --ef-construction "$EFC" --ef $EF --repeats "$REPEATS" 2>/dev/null >> "$out"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
builds = {(r["peer"], r["build_threads"]): r["build_seconds"] for r in rows if "build_seconds" in r}
print("build seconds: " + ", ".join(f"{p} {t} thread{'s' if t > 1 else ''} {s:.1f}" for (p, t), s in builds.items()))
q = {(r["peer"], r["threads"], r["ef"]): r for r in rows if "qps" in r}
print("threads   ef | recall attend hnswlib faiss | q/s attend   hnswlib     faiss | attend/hnswlib attend/faiss")
for (peer, t, ef), r in sorted(q.items()):
    if peer != "attend": continue
    h, f = q.get(("hnswlib", t, ef)), q.get(("faiss", t, ef))
    print(f"{t:7d} {ef:4d} | {r['recall']:.4f} {h['recall']:.4f} {f['recall']:.4f} | {r['qps']:10.0f} {h['qps']:9.0f} {f['qps']:9.0f} | "
          f"{r['qps'] / h['qps']:13.2f}x {r['qps'] / f['qps']:11.2f}x")
PY
