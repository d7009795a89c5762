#!/usr/bin/env bash
# word2vec speed and quality: Attend vs gensim 4.4.0 vs the original C tool (see word2vec_bench.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-corpus.sh
Benchmarks/setup-peers.sh
.cache/venv/bin/python -c "import gensim" 2>/dev/null || .cache/venv/bin/pip install -q gensim==4.4.0
Benchmarks/build-word2vec-c.sh
scripts/fetch-assets.sh gensim-test-data >/dev/null
swift build -c release >/dev/null
.cache/venv/bin/python Benchmarks/word2vec_bench.py --questions .cache/assets/gensim-test-data/questions-words.txt "$@"
