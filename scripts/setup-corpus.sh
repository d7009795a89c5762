#!/usr/bin/env bash
# Installs the text sources for scripts/build-corpus.py and builds .cache/corpus/english.txt (once).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for p in bible-kjv r-cran-janeaustenr man-db groff-base; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -s .cache/corpus/english.txt ] || python3 scripts/build-corpus.py --megabytes "${CORPUS_MB:-90}" --output .cache/corpus/english.txt
