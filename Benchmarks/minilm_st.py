"""sentence-transformers on PyTorch CPU, the peer of `attend embed`: encodes a file of sentences with
all-MiniLM-L6-v2 and prints sentences/s, then the cosine agreement with Attend's vectors if given. --int8 times
PyTorch's dynamic int8 quantization of the linear layers (torch.ao.quantization.quantize_dynamic: per-tensor
activation scales, FBGEMM's VNNI kernels), the peer of `attend embed --precision int8`; the cosines are then taken
against the float32 model's vectors (computed after the timing), for both.

    .cache/venv/bin/python Benchmarks/minilm_st.py MODEL_DIR SENTENCES.txt --threads 2 [--attend attend.vec] [--int8]
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
    p.add_argument("--int8", action="store_true", help="time the dynamically quantized model")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    sentences = [l.rstrip("\n") for l in open(a.sentences, encoding="utf-8") if l.strip()]
    model = SentenceTransformer(a.model, device="cpu")
    reference = model
    if a.int8:
        import copy
        reference = copy.deepcopy(model)
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    model.encode(sentences[:64], batch_size=a.batch_size)  # warm-up
    t0 = time.perf_counter()
    emb = model.encode(sentences, batch_size=a.batch_size, convert_to_numpy=True)
    dt = time.perf_counter() - t0
    print(f"sentence-transformers{' int8' if a.int8 else ''}: {len(sentences)} sentences in {dt:.2f} s ({len(sentences) / dt:.1f} sentences/s)")

    def cosine(x, y):
        c = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
        return f"min {c.min():.6f}, mean {c.mean():.6f}"

    if a.attend:
        rows = [l.split() for l in open(a.attend).read().splitlines()[1:]]
        ours = np.array([[float(x) for x in r[1:]] for r in rows])
        if a.int8:
            float_emb = reference.encode(sentences, batch_size=a.batch_size, convert_to_numpy=True)
            print(f"cosine to float32 sentence-transformers: Attend {cosine(ours, float_emb)}; PyTorch int8 {cosine(emb, float_emb)}")
        else:
            print(f"cosine(Attend, sentence-transformers): {cosine(ours, emb)}")


if __name__ == "__main__":
    main()
