#!/usr/bin/env python3
"""all-MiniLM-L6-v2 on passages (the inputs retrieval embeds): Attend against sentence-transformers (PyTorch CPU), the
same 1,000 passages of about 200 words from the corpus (cut at the model's 256 tokens), batch 32, the same threads,
medians of --repeats runs interleaved; then the cosine agreement of the two sets of vectors. --words 12 gives
sentence-sized inputs for the short-input side of the sweep. --precision int8 runs `attend embed --precision int8`
against PyTorch's dynamically quantized model (minilm_st.py --int8) and against the float32 peer. Both sides' achieved
GFLOP/s are printed beside this machine's peak: the model's FLOPs per passage come from its token count n (cut at 256)
as 2 n L (4 C^2 + 2 C F) for the products of L layers of width C and feed-forward width F, plus 4 n^2 C L for the two
attention products; padding is not counted. The peak is `attend bench gemm`'s own kernel on one thread (the best of
768^3, 1024^3 and 1536^3) times the threads.

    Benchmarks/minilm-passages.sh [THREADS] [WORDS] [PRECISION]
"""
import argparse, os, re, statistics, subprocess, sys

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--threads", default="2")
ap.add_argument("--words", type=int, default=200)
ap.add_argument("--count", type=int, default=1000)
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--precision", choices=["float32", "int8"], default="float32")
a = ap.parse_args()
words = open(".cache/corpus/english.txt", encoding="utf-8", errors="replace").read(40_000_000).split()
step = max(1, len(words) // a.count)
passages = [" ".join(words[i * step:i * step + a.words]) for i in range(a.count)]
path = f".cache/bench/passages-{a.words}.txt"
os.makedirs(".cache/bench", exist_ok=True)
open(path, "w", encoding="utf-8").write("\n".join(passages) + "\n")
env = dict(os.environ, ATTEND_NUM_THREADS=a.threads, HF_HUB_OFFLINE="1")


def attend():
    p = subprocess.run([".build/release/attend", "embed", "--model", a.model, "--precision", a.precision, "--file", path,
                        "-o", ".cache/bench/passages.vec"],
                       capture_output=True, text=True, env=env)
    return float(re.search(r"\(([0-9.]+) sentences/s\)", p.stderr).group(1))


def peer(int8=False):
    p = subprocess.run([sys.executable, "Benchmarks/minilm_st.py", a.model, path, "--threads", a.threads, "--attend", ".cache/bench/passages.vec"]
                       + (["--int8"] if int8 else []), capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"minilm_st.py failed:\n{p.stderr}")
    rate = float(re.search(r"\(([0-9.]+) sentences/s\)", p.stdout).group(1))
    return rate, p.stdout.strip().splitlines()[-1]


int8 = a.precision == "int8"
ours, theirs, theirs8, agreement = [], [], [], ""
for _ in range(a.repeats):
    ours.append(attend())
    r, agreement = peer()
    theirs.append(r)
    if int8:
        r, agreement = peer(int8=True)
        theirs8.append(r)
o, t = statistics.median(ours), statistics.median(theirs)
print(f"{a.count} passages of {a.words} words, batch 32, {a.threads} threads, attend {a.precision}, medians of {a.repeats}")
print(f"attend: {o:.1f} passages/s; sentence-transformers: {t:.1f} passages/s; attend/peer {o / t:.2f}x")


def gflop_per_passage():
    import json
    from transformers import AutoTokenizer
    config = json.load(open(os.path.join(a.model, "config.json")))
    c, f, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(a.model)(passages, truncation=True, max_length=256)["input_ids"]]
    return sum(2 * n * layers * (4 * c * c + 2 * c * f) + 4 * n * n * c * layers for n in lengths) / len(lengths) / 1e9, lengths


def peak_gflops():
    p = subprocess.run([".build/release/attend", "bench", "gemm", "--sizes", "768", "1024", "1536", "--threads", "1"],
                       capture_output=True, text=True, check=True)
    rows = [line.split() for line in p.stdout.splitlines() if re.match(r"\s*\d+\s+1\s+\|", line)]
    return max(float(r[3]) for r in rows) * int(a.threads)


g, lengths = gflop_per_passage()
peak = peak_gflops()
print(f"{g:.2f} GFLOP per passage (mean {statistics.mean(lengths):.0f} tokens); peak {peak:.0f} GFLOP/s; "
      f"attend {o * g:.1f} GFLOP/s ({100 * o * g / peak:.0f}% of peak), sentence-transformers {t * g:.1f} ({100 * t * g / peak:.0f}%)")
if int8:
    t8 = statistics.median(theirs8)
    print(f"sentence-transformers int8 (quantize_dynamic): {t8:.1f} passages/s; attend/peer {o / t8:.2f}x")
print(agreement)
