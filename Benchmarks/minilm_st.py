"""sentence-transformers on PyTorch CPU, the peer of `attend embed`: encodes a file of sentences with
all-MiniLM-L6-v2 and prints sentences/s, then the cosine agreement with Attend's vectors if given.

    .cache/venv/bin/python Benchmarks/minilm_st.py MODEL_DIR SENTENCES.txt --threads 2 [--attend attend.vec]
"""
import argparse
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("sentences")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--attend", help="Attend's vectors (text format) to compare with")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    sentences = [l.rstrip("\n") for l in open(a.sentences, encoding="utf-8") if l.strip()]
    model = SentenceTransformer(a.model, device="cpu")
    model.encode(sentences[:64], batch_size=a.batch_size)  # warm-up
    t0 = time.perf_counter()
    emb = model.encode(sentences, batch_size=a.batch_size, convert_to_numpy=True)
    dt = time.perf_counter() - t0
    print(f"sentence-transformers: {len(sentences)} sentences in {dt:.2f} s ({len(sentences) / dt:.1f} sentences/s)")
    if a.attend:
        rows = [l.split() for l in open(a.attend).read().splitlines()[1:]]
        ours = np.array([[float(x) for x in r[1:]] for r in rows])
        cos = (ours * emb).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(emb, axis=1)
        print(f"cosine(Attend, sentence-transformers): min {cos.min():.6f}, mean {cos.mean():.6f}")


if __name__ == "__main__":
    main()
