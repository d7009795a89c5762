#!/usr/bin/env bash
# all-MiniLM-L6-v2 sentence embeddings: Attend vs sentence-transformers (PyTorch CPU), same 1,000
# sentences, batch size 32, same thread count, in one run; also their cosine agreement.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
scripts/setup.sh
scripts/setup-corpus.sh
Benchmarks/setup-peers.sh
.cache/venv/bin/python -c "import sentence_transformers" 2>/dev/null || .cache/venv/bin/pip install -q sentence-transformers
model=$(scripts/fetch-assets.sh all-MiniLM-L6-v2)
swift build -c release >/dev/null
mkdir -p .cache/bench
# 1,000 lines spread over the corpus (Bible verses, Austen, man pages), 3 to 60 words each.
awk 'NF >= 3 && NF <= 60 && NR % 60 == 0 { print; if (++n == 1000) exit }' .cache/corpus/english.txt > .cache/bench/sentences.txt
export HF_HUB_OFFLINE=1
ATTEND_NUM_THREADS=$threads .build/release/attend embed --model "$model" --file .cache/bench/sentences.txt -o .cache/bench/attend.vec 2>&1 | tail -1
.cache/venv/bin/python Benchmarks/minilm_st.py "$model" .cache/bench/sentences.txt --threads "$threads" --attend .cache/bench/attend.vec 2>/dev/null
