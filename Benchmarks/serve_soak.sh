#!/usr/bin/env bash
# A soak of attend serve: 16 concurrent streaming chats of 128 tokens, round after round, for SECONDS (default 600),
# with the server's resident memory (VmRSS, and the peak VmHWM) read from /proc every 5 s. Prints one line per
# sample and, at the end, RSS after the first round against the last and the peak, and the failed requests.
#   Benchmarks/serve_soak.sh [SECONDS] [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
clients="${2:-16}"
py=.cache/venv/bin/python
swift build -c release --product attend >/dev/null 2>&1
.build/release/attend serve --port 18090 --embedding-model none 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  "$py" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:18090/health', timeout=2)" 2>/dev/null && break
  sleep 0.2
done
log=$(mktemp)
(
  end=$((SECONDS + seconds))
  while [ $SECONDS -lt $end ]; do
    "$py" Benchmarks/serve_load.py attend=http://127.0.0.1:18090 --clients "$clients" --tokens 128 2>&1 | grep -E '^\| [0-9]+ \| attend' || true
  done
) > "$log" &
load=$!
echo "seconds	rss_mib	peak_mib"
start=$SECONDS
while kill -0 $load 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$server/status)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$server/status)
  printf '%d\t%.1f\t%.1f\n' $((SECONDS - start)) "$(echo "$rss / 1024" | bc -l)" "$(echo "$hwm / 1024" | bc -l)"
  sleep 5
done
echo
echo "rounds (clients | server | tokens/s | TTFT p50 | p99 | failed | tokens):"
cat "$log"
rm -f "$log"
