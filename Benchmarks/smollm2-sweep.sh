#!/usr/bin/env bash
# SmolLM2-135M-Instruct, Attend vs llama.cpp over prompt lengths 128 ... 4,096 (Benchmarks/smollm2_sweep.py).
# Usage: Benchmarks/smollm2-sweep.sh [THREADS] [MODEL.gguf | Q4_0] [REPEATS]   (Q4_0: a requantized copy of the Q4_1 file)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
scripts/setup.sh
scripts/setup-corpus.sh
Benchmarks/setup-peers.sh
.cache/venv/bin/python -c "import llama_cpp" 2>/dev/null || .cache/venv/bin/pip install -q llama-cpp-python
q41=$(scripts/fetch-assets.sh SmolLM2-135M-Instruct)/SmolLM2-135M-Instruct.Q4_1.gguf
model=${2:-$q41}
if [ "$model" = Q4_0 ]; then
  # No Q4_0 SmolLM2 among the assets: requantize the Q4_1 matrices with llama.cpp's reference quantizer (PyPI gguf).
  model=.cache/bench/SmolLM2-135M-Instruct.Q4_0.gguf
  .cache/venv/bin/python -c "import gguf" 2>/dev/null || .cache/venv/bin/pip install -q gguf
  [ -f "$model" ] || { mkdir -p .cache/bench && .cache/venv/bin/python scripts/requantize-gguf.py "$q41" "$model" Q4_0; }
fi
swift build -c release >/dev/null
.cache/venv/bin/python Benchmarks/smollm2_sweep.py "$model" --threads "$threads" --repeats "${3:-3}"
