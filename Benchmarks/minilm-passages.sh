#!/usr/bin/env bash
# all-MiniLM-L6-v2 on 1,000 passages: Attend vs sentence-transformers (Benchmarks/minilm_passages.py).
# Usage: Benchmarks/minilm-passages.sh [THREADS] [WORDS per passage, default 200] [float32|int8]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-corpus.sh
Benchmarks/setup-peers.sh
.cache/venv/bin/python -c "import sentence_transformers" 2>/dev/null || .cache/venv/bin/pip install -q sentence-transformers
model=$(scripts/fetch-assets.sh all-MiniLM-L6-v2)
swift build -c release >/dev/null
.cache/venv/bin/python Benchmarks/minilm_passages.py "$model" --threads "${1:-2}" --words "${2:-200}" --precision "${3:-float32}"
