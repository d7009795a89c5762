"""gensim 4.4.0's word2vec in corpus_file mode (its fastest), the peer of `attend word2vec train`.

    .cache/venv/bin/python Benchmarks/word2vec_gensim.py CORPUS OUT.bin --sg 1 --threads 2 --epochs 1
Prints the vocabulary and training times and training words/s, and saves vectors in word2vec binary format.
"""
import argparse
import time

from gensim.models import Word2Vec


def main():
    p = argparse.ArgumentParser()
    p.add_argument("corpus")
    p.add_argument("output")
    p.add_argument("--sg", type=int, default=1)
    p.add_argument("--hs", type=int, default=0)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--dimension", type=int, default=100)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--sample", type=float, default=1e-3)
    p.add_argument("--questions", help="also print gensim's own evaluate_word_analogies accuracy (restrict_vocab 30000)")
    a = p.parse_args()
    m = Word2Vec(sg=a.sg, hs=a.hs, negative=a.negative, window=a.window, vector_size=a.dimension,
                 workers=a.threads, min_count=a.min_count, sample=a.sample, seed=1)
    t0 = time.perf_counter()
    m.build_vocab(corpus_file=a.corpus)
    t1 = time.perf_counter()
    m.train(corpus_file=a.corpus, total_words=m.corpus_total_words, epochs=a.epochs)
    t2 = time.perf_counter()
    words = m.corpus_total_words * a.epochs
    print(f"vocabulary: {len(m.wv)} words ({t1 - t0:.2f} s)")
    print(f"trained {a.epochs} epochs on {words} words in {t2 - t1:.2f} s: {words / (t2 - t1):.0f} words/s")
    m.wv.save_word2vec_format(a.output, binary=True)
    if a.questions:
        score, _ = m.wv.evaluate_word_analogies(a.questions, restrict_vocab=30000)
        print(f"gensim's own analogy accuracy: {100 * score:.2f}%")


if __name__ == "__main__":
    main()
