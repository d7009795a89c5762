#!/usr/bin/env bash
# The server's tests, with real clients against a real server: builds a small index from three pages of the
# PostgreSQL manual, starts `attend serve` on a free port with that index, the example safety policy and an API key,
# waits for /health, then runs Tests/server/test_openai_client.py (the official OpenAI Python client) and
# Tests/server/test_chat_page.py (the chat page in Debian's headless Chromium, driven by Selenium), and stops the
# server. The clients come from PyPI into .cache/test-venv; Chromium and its driver from scripts/setup.sh.
#   scripts/test-server.sh [path/to/attend]   (default .build/debug/attend)
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:-.build/debug/attend}"
venv=.cache/test-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import openai, httpx, selenium; assert httpx.__version__ == '0.27.2' and selenium.__version__ == '4.27.1'" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check openai==1.54.0 httpx==0.27.2 selenium==4.27.1
fi
work=$(mktemp -d)
manual=/usr/share/doc/postgresql-doc-15/html
"$binary" index add "$work/docs.sqlite" "$manual/sql-dropdatabase.html" "$manual/sql-droptable.html" "$manual/role-removal.html" >/dev/null 2>&1
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key="test-key-$RANDOM$RANDOM"
ATTEND_API_KEY="$key" "$binary" serve --port "$port" --index "$work/docs.sqlite" --safety examples/safety-policy.json >"$work/log" 2>&1 &
server=$!
# A second, plain server: no index, no policy, no embedding model (what log-probabilities are tested on).
plain_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$binary" serve --port "$plain_port" --embedding-model none >"$work/plain.log" 2>&1 &
plain=$!
trap 'kill $server $plain 2>/dev/null; wait $server $plain 2>/dev/null || true; rm -rf "$work"' EXIT
for p in "$port" "$plain_port"; do
  for _ in $(seq 1 600); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$p/health', timeout=2)" 2>/dev/null; then break; fi
    if ! kill -0 $server 2>/dev/null || ! kill -0 $plain 2>/dev/null; then cat "$work/log" "$work/plain.log" >&2; echo "test-server: attend serve exited" >&2; exit 1; fi
    sleep 0.2
  done
done
export ATTEND_SERVER_URL="http://127.0.0.1:$port" ATTEND_API_KEY="$key" ATTEND_GROUNDED_MODEL="SmolLM2-135M-Instruct+docs"
export ATTEND_PLAIN_SERVER_URL="http://127.0.0.1:$plain_port"
status=0
"$venv/bin/python" Tests/server/test_openai_client.py || status=1
ATTEND_EXPECT_SOURCES=1 "$venv/bin/python" Tests/server/test_chat_page.py || status=1
if [ $status -ne 0 ]; then echo "test-server: the server's log (last 40 lines):" >&2; tail -40 "$work/log" >&2; fi
exit $status
