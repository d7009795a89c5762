#!/usr/bin/env bash
# BERT pretrain-then-fine-tune on Jane Austen's six novels and the King James Bible (scripts/build-books.py):
# masked-LM pretraining on the training passages, then two fine-tuned classifiers that differ only in their
# input layout: one passage -> which of the 7 books; a pair of passages -> same book or not. Beside them, in
# one run: the same model fine-tuned from random weights (no pretraining), and bag-of-words logistic
# regression (scikit-learn) on the same train/test files.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-3000}
scripts/setup.sh
scripts/setup-corpus.sh
[ -s .cache/corpus/books/pair-test.tsv ] || python3 scripts/build-books.py --output .cache/corpus/books
[ -x .cache/venv/bin/python ] || python3 -m venv .cache/venv
.cache/venv/bin/python -c "import sklearn" 2>/dev/null || .cache/venv/bin/pip install -q scikit-learn
swift build -c release >/dev/null
books=.cache/corpus/books
model=.cache/bench/bert-books.safetensors
mkdir -p .cache/bench
.build/release/attend bert pretrain $books/pretrain.txt -o $model --steps "$steps" 2>/dev/null | grep -E "trained|passages|held-out"
for task in book pair; do
  p=$(.build/release/attend bert finetune $model --train $books/$task-train.tsv --test $books/$task-test.tsv 2>/dev/null | sed -n 's/^test accuracy: \([0-9.]*\)%/\1/p')
  s=$(.build/release/attend bert finetune $model --from-scratch --train $books/$task-train.tsv --test $books/$task-test.tsv 2>/dev/null | sed -n 's/^test accuracy: \([0-9.]*\)%/\1/p')
  b=$(.cache/venv/bin/python Benchmarks/books_bow_logreg.py $books/$task-train.tsv $books/$task-test.tsv | sed -n 's/.*accuracy \([0-9.]*\) .*/\1/p')
  b=$(echo "100 * $b" | bc -l | cut -c1-5)
  echo "$task: attend BERT pretrained+fine-tuned ${p}% | no pretraining ${s}% | bag-of-words logistic regression ${b}% | pretrained - baseline: $(echo "$p - $b" | bc -l | cut -c1-6) points"
done
