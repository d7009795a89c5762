#!/usr/bin/env bash
# attend serve against llama.cpp's server (llama-cpp-python[server] from PyPI) on the same GGUF and 2 threads:
# concurrent streaming chats, aggregate tokens/s and time to first token (Benchmarks/serve_load.py).
#   Benchmarks/serve.sh [clients...]     (default 1 4 16)
# SAFETY=examples/safety-policy.json adds a third server, attend with that safety policy, to measure what the stage
# costs per request.
set -euo pipefail
cd "$(dirname "$0")/.."
clients=("${@:-1 4 16}")
py=.cache/venv/bin/python
gguf=.cache/assets/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf
swift build -c release --product attend >/dev/null
.build/release/attend serve --port 18080 --embedding-model none 2>/dev/null &
attend=$!
targets=(attend=http://127.0.0.1:18080 llama.cpp=http://127.0.0.1:18081)
ports=(18080 18081)
if [ -n "${SAFETY:-}" ]; then
  .build/release/attend serve --port 18082 --embedding-model none --safety "$SAFETY" 2>/dev/null &
  safe=$!
  targets+=(attend+safety=http://127.0.0.1:18082)
  ports+=(18082)
fi
"$py" -m llama_cpp.server --model "$gguf" --model_alias SmolLM2-135M-Instruct --n_threads 2 --n_ctx 2048 --interrupt_requests False --port 18081 >/dev/null 2>&1 &
llama=$!
trap 'kill $attend $llama ${safe:-} 2>/dev/null; wait 2>/dev/null || true' EXIT
for port in "${ports[@]}"; do
  for _ in $(seq 1 300); do
    "$py" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v1/models', timeout=2)" 2>/dev/null && break
    sleep 0.2
  done
done
"$py" Benchmarks/serve_load.py "${targets[@]}" --clients ${clients[*]} --tokens 128
