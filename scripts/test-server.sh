#!/usr/bin/env bash
# The server's test with the official OpenAI client: starts `attend serve` on a free port, waits for /health, runs
# Tests/server/test_openai_client.py against it, stops the server. The client comes from PyPI into .cache/test-venv.
#   scripts/test-server.sh [path/to/attend]   (default .build/debug/attend)
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:-.build/debug/attend}"
venv=.cache/test-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import openai, httpx; assert httpx.__version__ == '0.27.2'" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check openai==1.54.0 httpx==0.27.2
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
"$binary" serve --port "$port" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 300); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=2)" 2>/dev/null; then break; fi
  if ! kill -0 $server 2>/dev/null; then cat "$log" >&2; echo "test-server: attend serve exited" >&2; exit 1; fi
  sleep 0.2
done
ATTEND_SERVER_URL="http://127.0.0.1:$port" "$venv/bin/python" Tests/server/test_openai_client.py
