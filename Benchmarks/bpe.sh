#!/usr/bin/env bash
# Byte-level BPE training: `attend tokenizer train` vs Hugging Face tokenizers (Rust, via PyPI) on the same
# corpus and settings, in one run: wall time of the training itself and how many merges are identical.
# Default corpus: the 6.3 MB of Austen + KJV passages from scripts/build-books.py.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-.cache/corpus/books/pretrain.txt}
vocab=${2:-8000}
[ -x .cache/venv/bin/python ] || python3 -m venv .cache/venv
.cache/venv/bin/python -c "import tokenizers" 2>/dev/null || .cache/venv/bin/pip install -q tokenizers
if [ ! -s "$corpus" ]; then scripts/setup-corpus.sh; python3 scripts/build-books.py --output .cache/corpus/books; fi
swift build -c release >/dev/null
out=.cache/bench/bpe; mkdir -p $out
for run in 1 2 3; do
  a=$(.build/release/attend tokenizer train "$corpus" -o $out/attend --vocab-size "$vocab")
  h=$(.cache/venv/bin/python Benchmarks/bpe_hf.py "$corpus" --vocab-size "$vocab" --merges-out $out/hf-merges.txt)
  as=$(echo "$a" | sed -n 's/.* in \([0-9.]*\) s.*/\1/p'); hs=$(echo "$h" | sed -n 's/.* in \([0-9.]*\) s.*/\1/p')
  same=$(paste -d'\n' <(tail -n +2 $out/attend/merges.txt) $out/hf-merges.txt | paste - - | awk -F'\t' '$1 != $2 {exit} {n++} END {print n+0}')
  total=$(wc -l < $out/hf-merges.txt)
  echo "run $run: attend ${as} s, tokenizers ${hs} s, attend/tokenizers speed $(echo "$hs / $as" | bc -l | cut -c1-5)x; identical merges: $same of $total"
done
