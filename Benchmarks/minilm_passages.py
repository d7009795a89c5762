#!/usr/bin/env python3
"""all-MiniLM-L6-v2 on passages (the inputs retrieval embeds): Attend against sentence-transformers (PyTorch CPU), the
same 1,000 passages of about 200 words from the corpus (cut at the model's 256 tokens), batch 32, the same threads,
medians of --repeats runs interleaved; then the cosine agreement of the two sets of vectors. --words 12 gives
sentence-sized inputs for the short-input side of the sweep. --precision int8 runs `attend embed --precision int8`
against PyTorch's dynamically quantized model (minilm_st.py --int8) and against the float32 peer.

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
env = dict(os.environ, ATTEND_NUM_THREADS=a.threads, OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1")


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
if int8:
    t8 = statistics.median(theirs8)
    print(f"sentence-transformers int8 (quantize_dynamic): {t8:.1f} passages/s; attend/peer {o / t8:.2f}x")
print(agreement)
