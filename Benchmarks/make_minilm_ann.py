#!/usr/bin/env python3
"""The MiniLM passage set for `Benchmarks/ann.sh ... minilm` (issue 14's second vector-search data set): 100,000
passages of 100 words cut one after another from the benchmark corpus (.cache/corpus/english.txt), embedded by
all-MiniLM-L6-v2 through `attend embed --precision int8` (unit vectors, 384 dimensions), and 1,000 queries: the
first 16 words of 1,000 further passages that are not in the base, short as a search query is. Writes raw
little-endian float32 rows to .cache/bench/minilm-base.f32 and minilm-queries.f32 (skipped when they exist).

    .cache/venv/bin/python Benchmarks/make_minilm_ann.py MODEL_DIR [--count 100000] [--queries 1000]
"""
import argparse, os, subprocess, sys, time

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--count", type=int, default=100_000)
ap.add_argument("--queries", type=int, default=1_000)
ap.add_argument("--words", type=int, default=100)
a = ap.parse_args()
out = ".cache/bench"
base_path, query_path = f"{out}/minilm-base.f32", f"{out}/minilm-queries.f32"
if os.path.exists(base_path) and os.path.exists(query_path):
    sys.exit(0)
os.makedirs(out, exist_ok=True)
words = open(".cache/corpus/english.txt", encoding="utf-8", errors="replace").read().split()
need = (a.count + a.queries) * a.words
if len(words) < need:
    sys.exit(f"the corpus has {len(words)} words; {need} are needed")
passages = [" ".join(words[i * a.words:(i + 1) * a.words]) for i in range(a.count + a.queries)]
texts = {"base": passages[:a.count], "queries": [" ".join(p.split()[:16]) for p in passages[a.count:]]}


def embed(name, lines, path):
    txt = f"{out}/minilm-{name}.txt"
    open(txt, "w", encoding="utf-8").write("\n".join(lines) + "\n")
    vec = f"{out}/minilm-{name}.vec"
    t = time.time()
    subprocess.run([".build/release/attend", "embed", "--model", a.model, "--precision", "int8", "--file", txt, "-o", vec], check=True)
    rows = [l.split()[1:] for l in open(vec).read().splitlines()[1:]]
    x = np.array(rows, dtype=np.float32)
    assert x.shape == (len(lines), 384), x.shape
    x.astype("<f4").tofile(path + ".partial")
    os.replace(path + ".partial", path)
    os.remove(vec)
    print(f"{name}: {len(lines)} rows in {time.time() - t:.0f} s", file=sys.stderr)


embed("queries", texts["queries"], query_path)
embed("base", texts["base"], base_path)
