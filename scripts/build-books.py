"""Builds the labelled passages for BERT fine-tuning (attend bert) from the same Debian sources as
build-corpus.py: Jane Austen's six novels (r-cran-janeaustenr) and the King James Bible (bible-kjv).

Every source is cut into consecutive passages of --words words. The first 80% of each source's passages are
the training pool, the last 20% the test pool, so no test text is seen in pretraining or fine-tuning.
Outputs (in --output, each written atomically):
  pretrain.txt     every training-pool passage, one per line (the masked-LM corpus)
  book-train.tsv   label<TAB>passage: which of the 7 books (6 novels + the Bible); --per-class each
  book-test.tsv
  pair-train.tsv   label<TAB>passage<TAB>passage: "same" or "different" book (balanced)
  pair-test.tsv
  choice-train.tsv answer<TAB>passage<TAB>option x 4: which of four 12-word openings really follows the
  choice-test.tsv  passage (the others open other passages of the same book); answer is the 0-based index

    python3 scripts/build-books.py --output .cache/corpus/books
"""
import argparse
import importlib.util
import os
import random

spec = importlib.util.spec_from_file_location("build_corpus", os.path.join(os.path.dirname(__file__), "build-corpus.py"))
corpus = importlib.util.module_from_spec(spec)
spec.loader.exec_module(corpus)


def passages(lines, words):
    tokens = " ".join(lines).split()
    return [" ".join(tokens[i:i + words]) for i in range(0, len(tokens) - words + 1, words)]


def write(path, rows):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        for r in rows:
            f.write("\t".join(r) + "\n")
    os.replace(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--output", default=".cache/corpus/books")
    p.add_argument("--words", type=int, default=40)
    p.add_argument("--per-class", type=int, default=1000, help="training passages per book (test: a fifth of it)")
    p.add_argument("--pairs", type=int, default=4000, help="training pairs (test: a quarter of it)")
    p.add_argument("--choices", type=int, default=4000, help="training multiple-choice questions (test: a quarter of it)")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    os.makedirs(a.output, exist_ok=True)
    rng = random.Random(a.seed)
    books = dict(zip(corpus.AUSTEN_BOOKS, corpus.austen_books()))
    books["bible-kjv"] = corpus.bible()
    train_pool, test_pool = {}, {}
    for name, lines in books.items():
        ps = passages(lines, a.words)
        cut = int(len(ps) * 0.8)
        train_pool[name], test_pool[name] = ps[:cut], ps[cut:]
        print(f"{name}: {len(ps)} passages")
    write(os.path.join(a.output, "pretrain.txt"), [[s] for name in books for s in train_pool[name]])

    def sample(pool, n):
        return [[name, s] for name in books for s in rng.sample(pool[name], min(n, len(pool[name])))]

    def pairs(pool, n):
        names = list(books)
        rows = []
        for i in range(n):
            a_name = rng.choice(names)
            b_name = a_name if i % 2 == 0 else rng.choice([x for x in names if x != a_name])
            rows.append(["same" if a_name == b_name else "different", rng.choice(pool[a_name]), rng.choice(pool[b_name])])
        return rows

    # The questions draw from their own generator, so the book and pair files stay what they were before them.
    choice_rng = random.Random(a.seed + 1)

    def choices(pool, n):
        rng = choice_rng
        names = list(books)
        rows = []
        for _ in range(n):
            ps = pool[rng.choice(names)]
            i = rng.randrange(len(ps) - 1)
            opening = lambda s: " ".join(s.split()[:12])
            options = [opening(ps[i + 1])] + [opening(ps[j]) for j in rng.sample([j for j in range(len(ps)) if j not in (i, i + 1)], 3)]
            order = list(range(4))
            rng.shuffle(order)
            rows.append([str(order.index(0)), ps[i]] + [options[k] for k in order])
        return rows

    for split, pool, n, m, c in (("train", train_pool, a.per_class, a.pairs, a.choices),
                                 ("test", test_pool, a.per_class // 5, a.pairs // 4, a.choices // 4)):
        rows = sample(pool, n)
        rng.shuffle(rows)
        write(os.path.join(a.output, f"book-{split}.tsv"), rows)
        write(os.path.join(a.output, f"pair-{split}.tsv"), pairs(pool, m))
        write(os.path.join(a.output, f"choice-{split}.tsv"), choices(pool, c))
    print(a.output)


if __name__ == "__main__":
    main()
