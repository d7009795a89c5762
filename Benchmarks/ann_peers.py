#!/usr/bin/env python3
"""Peers for `attend bench ann`: exact ground truth with numpy, then hnswlib and FAISS (HNSW, flat storage) with the
same M, ef_construction and ef values, queries timed at 1 and 2 threads. Prints JSON lines like Attend's.

Usage: ann_peers.py --truth OUT.i32 [--m 16] [--ef-construction 200] [--ef 10 20 ...] [--threads 1 2] [--k 10]
                    [--base BASE.f32 --queries QUERIES.f32 --dim D]
Data: ann-benchmarks' fashion-mnist-784-euclidean is the Fashion-MNIST train images (base) and test images (queries)
as raw pixel values; read here from Debian's dataset-fashion-mnist. --base/--queries take raw little-endian float32
rows instead (the MiniLM passage set of Benchmarks/make_minilm_ann.py).
"""
import argparse, gzip, json, os, statistics, sys, time
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--truth", required=True)
p.add_argument("--m", type=int, default=16)
p.add_argument("--ef-construction", type=int, default=200)
p.add_argument("--ef", type=int, nargs="+", default=[10, 20, 40, 80, 160, 320])
p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
p.add_argument("--k", type=int, default=10)
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--peers", nargs="+", default=["hnswlib", "faiss"])
p.add_argument("--base", help="raw float32 rows to index (instead of Fashion-MNIST)")
p.add_argument("--queries", help="raw float32 query rows")
p.add_argument("--dim", type=int, help="values per row of --base and --queries")
a = p.parse_args()

def idx(name):
    with gzip.open(os.path.join(a.data, name)) as f:
        raw = f.read()
    n = int.from_bytes(raw[4:8], "big")
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, -1).astype(np.float32)

if a.base:
    base, queries = (np.fromfile(f, dtype="<f4").reshape(-1, a.dim) for f in (a.base, a.queries))
else:
    base, queries = idx("train-images-idx3-ubyte.gz"), idx("t10k-images-idx3-ubyte.gz")
width = 100
if not os.path.exists(a.truth):
    t0 = time.time()
    norms = (base.astype(np.float64) ** 2).sum(1)
    truth = np.empty((len(queries), width), dtype=np.int32)
    for s in range(0, len(queries), 500):
        q = queries[s:s + 500].astype(np.float64)
        d = norms[None, :] - 2 * q @ base.T.astype(np.float64)   # + |q|^2, the same for every row of a query
        part = np.argpartition(d, width, axis=1)[:, :width]
        order = np.take_along_axis(d, part, 1).argsort(1, kind="stable")
        truth[s:s + 500] = np.take_along_axis(part, order, 1)
    tmp = a.truth + ".partial"
    truth.tofile(tmp); os.replace(tmp, a.truth)
    print(f"ground truth: {len(queries)} x {width} in {time.time() - t0:.1f} s", file=sys.stderr)
truth = np.fromfile(a.truth, dtype=np.int32).reshape(len(queries), width)
gt = [set(r[:a.k]) for r in truth]

def recall(labels):
    return sum(len(gt[i] & set(labels[i])) for i in range(len(queries))) / (len(queries) * a.k)

def median_seconds(f):
    f()
    xs = []
    for _ in range(a.repeats):
        t = time.perf_counter(); f(); xs.append(time.perf_counter() - t)
    return statistics.median(xs)

if "hnswlib" in a.peers:
    import hnswlib
    for build_threads in (1, 2):
        index = hnswlib.Index(space="l2", dim=base.shape[1])
        index.init_index(max_elements=len(base), M=a.m, ef_construction=a.ef_construction, random_seed=100)
        index.set_num_threads(build_threads)
        t = time.perf_counter(); index.add_items(base, np.arange(len(base))); build = time.perf_counter() - t
        print(json.dumps({"peer": "hnswlib", "build_seconds": build, "build_threads": build_threads}))
    for threads in a.threads:
        index.set_num_threads(threads)
        for ef in a.ef:
            index.set_ef(ef)
            out = {}
            def run():
                out["l"], _ = index.knn_query(queries, k=a.k, num_threads=threads)
            s = median_seconds(run)
            print(json.dumps({"peer": "hnswlib", "threads": threads, "ef": ef, "recall": recall(out["l"]), "qps": len(queries) / s}))
        sys.stdout.flush()

if "faiss" in a.peers:
    import faiss
    index = faiss.IndexHNSWFlat(base.shape[1], a.m)
    index.hnsw.efConstruction = a.ef_construction
    faiss.omp_set_num_threads(2)
    t = time.perf_counter(); index.add(base); build = time.perf_counter() - t
    print(json.dumps({"peer": "faiss", "build_seconds": build, "build_threads": 2}))
    for threads in a.threads:
        faiss.omp_set_num_threads(threads)
        for ef in a.ef:
            index.hnsw.efSearch = ef
            out = {}
            def run():
                _, out["l"] = index.search(queries, a.k)
            s = median_seconds(run)
            print(json.dumps({"peer": "faiss", "threads": threads, "ef": ef, "recall": recall(out["l"]), "qps": len(queries) / s}))
