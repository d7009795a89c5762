"""DeepWalk the usual Python way, the peer of `attend graph embed`: uniform random walks generated in Python
(as the deepwalk package does), then gensim 4.4.0 skip-gram on them, with the same settings.

    .cache/venv/bin/python Benchmarks/deepwalk_gensim.py EDGES OUT.bin --walks-per-node 10 --walk-length 40
"""
import argparse
import random
import time

from gensim.models import Word2Vec


def main():
    p = argparse.ArgumentParser()
    p.add_argument("edges")
    p.add_argument("output")
    p.add_argument("--walks-per-node", type=int, default=10)
    p.add_argument("--walk-length", type=int, default=40)
    p.add_argument("--dimension", type=int, default=128)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    a = p.parse_args()
    t0 = time.perf_counter()
    adj = {}
    for line in open(a.edges):
        f = line.split()
        if len(f) < 2 or f[0].startswith("#"):
            continue
        adj.setdefault(f[0], []).append(f[1])
        adj.setdefault(f[1], []).append(f[0])
    rng = random.Random(1)
    nodes = list(adj)
    walks = []
    for _ in range(a.walks_per_node):
        rng.shuffle(nodes)
        for start in nodes:
            walk = [start]
            while len(walk) < a.walk_length:
                walk.append(rng.choice(adj[walk[-1]]))
            walks.append(walk)
    t1 = time.perf_counter()
    m = Word2Vec(walks, vector_size=a.dimension, window=a.window, min_count=0, sg=1, hs=0, negative=5, sample=0,
                 workers=a.threads, epochs=a.epochs, seed=1)
    t2 = time.perf_counter()
    m.wv.save_word2vec_format(a.output, binary=True)
    print(f"walks: {len(walks)} in {t1 - t0:.2f} s; training {t2 - t1:.2f} s; total {t2 - t0:.2f} s")


if __name__ == "__main__":
    main()
