#!/usr/bin/env bash
# SmolLM2-135M-Instruct, Attend vs llama.cpp over prompt lengths 128 ... 4,096 (Benchmarks/smollm2_sweep.py).
# Usage: Benchmarks/smollm2-sweep.sh [THREADS] [MODEL.gguf] [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
scripts/setup.sh
scripts/setup-corpus.sh
Benchmarks/setup-peers.sh
.cache/venv/bin/python -c "import llama_cpp" 2>/dev/null || .cache/venv/bin/pip install -q llama-cpp-python
model=${2:-$(scripts/fetch-assets.sh SmolLM2-135M-Instruct)/SmolLM2-135M-Instruct.Q4_1.gguf}
swift build -c release >/dev/null
.cache/venv/bin/python Benchmarks/smollm2_sweep.py "$model" --threads "$threads" --repeats "${3:-3}"
