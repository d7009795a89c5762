#!/usr/bin/env bash
# GPT-1's "pretrain once, lay out the input per task" on the book tasks of Benchmarks/bert-books.sh (same
# splits, scripts/build-books.py): a GPT pretrained here on the training-pool passages (`attend gpt train`,
# byte-level BPE), then `attend gpt finetune` with each layout:
#   book   -> classification;  pair -> entailment and similarity;  choice -> multiple choice.
# Beside each, in the same run: the same decoder from random weights, the bag-of-words logistic regression
# (book, pair), and for multiple choice chance (25%) and the zero-shot LM score.
#     Benchmarks/gpt-books.sh [pretraining iterations] [epochs]
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-3000}
epochs=${2:-3}
scripts/setup.sh
scripts/setup-corpus.sh
[ -s .cache/corpus/books/choice-test.tsv ] || python3 scripts/build-books.py --output .cache/corpus/books
[ -x .cache/venv/bin/python ] || python3 -m venv .cache/venv
.cache/venv/bin/python -c "import sklearn" 2>/dev/null || .cache/venv/bin/pip install -q scikit-learn
swift build -c release >/dev/null
books=.cache/corpus/books
model=.cache/bench/gpt-books.safetensors
mkdir -p .cache/bench
.build/release/attend gpt train $books/pretrain.txt -o $model --tokenizer bpe --vocab-size 8000 --layers 4 --heads 4 --width 128 \
  --context 128 --batch-size 32 --iterations "$iterations" --eval-interval "$iterations" --lr 1e-3 --min-lr 1e-4 --warmup 200 2>/dev/null | grep -E "done|tokens,"
accuracy() { sed -n 's/^test accuracy: \([0-9.]*\)%/\1/p'; }
for run in "book classification" "pair entailment" "pair similarity" "choice multiple-choice"; do
  set -- $run
  task=$1 layout=$2
  extra=""
  [ "$layout" = multiple-choice ] && extra="--zero-shot"
  out=$(.build/release/attend gpt finetune $model --layout $layout --train $books/$task-train.tsv --test $books/$task-test.tsv --epochs "$epochs" $extra 2>/dev/null)
  p=$(echo "$out" | accuracy)
  s=$(.build/release/attend gpt finetune $model --from-scratch --layout $layout --train $books/$task-train.tsv --test $books/$task-test.tsv --epochs "$epochs" 2>/dev/null | accuracy)
  if [ "$layout" = multiple-choice ]; then
    z=$(echo "$out" | sed -n 's/^zero-shot accuracy.*: \([0-9.]*\)%/\1/p')
    echo "$task ($layout): GPT pretrained+fine-tuned ${p}% | no pretraining ${s}% | zero-shot LM score ${z}% | chance 25%"
  else
    b=$(.cache/venv/bin/python Benchmarks/books_bow_logreg.py $books/$task-train.tsv $books/$task-test.tsv | sed -n 's/.*accuracy \([0-9.]*\) .*/\1/p')
    echo "$task ($layout): GPT pretrained+fine-tuned ${p}% | no pretraining ${s}% | bag-of-words logistic regression $(echo "100 * $b" | bc -l | cut -c1-5)%"
  fi
done
