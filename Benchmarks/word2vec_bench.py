"""word2vec side by side: Attend, gensim 4.4.0 (corpus_file mode) and the original C tool, on the same
corpus and settings, in one run. Reports training words/s, whole-process wall time, peak RSS and
questions-words.txt analogy accuracy (every tool's vectors scored by the same evaluator, restricted to the
30,000 most frequent words; gensim's own evaluator is printed beside it as a cross-check).

    Benchmarks/word2vec.sh            # builds everything, then runs this
"""
import argparse
import os
import re
import subprocess
import sys
import time


def run(cmd, env=None):
    """Runs cmd; returns (stdout, wall seconds, peak RSS in MiB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out}")
    return out, wall, usage.ru_maxrss / 1024


def words_per_second(out):
    m = re.search(r"([0-9.]+) words/s", out)
    return float(m.group(1)) if m else float("nan")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", default=".cache/corpus/english.txt")
    p.add_argument("--questions", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--architectures", nargs="+", default=["skipgram", "cbow"])
    a = p.parse_args()
    attend = ".build/release/attend"
    tmp = ".cache/bench"
    os.makedirs(tmp, exist_ok=True)
    tokens = sum(len(line.split()) for line in open(a.corpus, encoding="utf-8"))
    print(f"corpus: {a.corpus}, {os.path.getsize(a.corpus) / 1e6:.1f} MB, {tokens} tokens; "
          f"negative 5, window 5, dim 100, min-count 5, sample 1e-3, {a.epochs} epoch(s), {a.threads} threads")
    for arch in a.architectures:
        cbow = arch == "cbow"
        rows = []
        out, wall, rss = run([attend, "word2vec", "train", a.corpus, "-o", f"{tmp}/attend.bin", "--threads", str(a.threads),
                              "--epochs", str(a.epochs)] + (["--cbow"] if cbow else []))
        rows.append(("attend", words_per_second(out), wall, rss, f"{tmp}/attend.bin", ""))
        out, wall, rss = run([".cache/venv/bin/python", "Benchmarks/word2vec_gensim.py", a.corpus, f"{tmp}/gensim.bin",
                              "--sg", "0" if cbow else "1", "--threads", str(a.threads), "--epochs", str(a.epochs),
                              "--questions", a.questions])
        own = re.search(r"own analogy accuracy: ([0-9.]+)%", out)
        rows.append(("gensim", words_per_second(out), wall, rss, f"{tmp}/gensim.bin", own.group(1) + "%" if own else ""))
        out, wall, rss = run([".cache/peers/word2vec-c", "-train", a.corpus, "-output", f"{tmp}/c.bin", "-cbow", "1" if cbow else "0",
                              "-size", "100", "-window", "5", "-negative", "5", "-hs", "0", "-sample", "1e-3", "-threads",
                              str(a.threads), "-iter", str(a.epochs), "-min-count", "5", "-binary", "1",
                              "-alpha", "0.05" if cbow else "0.025"])
        rows.append(("C tool", float("nan"), wall, rss, f"{tmp}/c.bin", ""))
        print(f"\n{arch}:")
        print(f"  {'tool':8} {'train words/s':>14} {'wall s':>8} {'peak MiB':>9} {'analogy %':>10} {'gensim eval':>12}")
        results = {}
        for name, wps, wall, rss, vectors, own in rows:
            ev, _, _ = run([attend, "word2vec", "evaluate", vectors, "--analogies", a.questions, "--restrict", "30000"])
            acc = float(re.search(r"analogy accuracy: ([0-9.]+)%", ev).group(1))
            results[name] = (wps, wall, rss, acc)
            wps_text = f"{wps:14.0f}" if wps == wps else f"{'(see wall)':>14}"
            print(f"  {name:8} {wps_text} {wall:8.1f} {rss:9.0f} {acc:10.2f} {own:>12}")
        at, ge, c = results["attend"], results["gensim"], results["C tool"]
        print(f"  attend/gensim: words/s {at[0] / ge[0]:.2f}x, wall {ge[1] / at[1]:.2f}x faster, "
              f"analogy {at[3] - ge[3]:+.2f} points, peak RSS {at[2] / ge[2]:.2f}x; attend/C tool wall {c[1] / at[1]:.2f}x faster")


if __name__ == "__main__":
    main()
