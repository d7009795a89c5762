#!/usr/bin/env python3
"""SmolLM2-135M-Instruct over a sweep of prompt lengths: Attend against llama.cpp (PyPI llama-cpp-python), the same
GGUF file, the same prompt text, greedy, 128 new tokens (both past the end-of-sequence token, so that every run
times the same number), the same threads; medians of --repeats runs, the two
interleaved. Prints prompt and generation tokens/s, their ratios, and peak RSS at each length.

    Benchmarks/smollm2-sweep.sh [THREADS] [MODEL.gguf]      (installs the peer, builds, then runs this)
"""
import argparse, json, os, statistics, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--threads", default="2")
ap.add_argument("--lengths", default="128,512,1024,2048,4096")
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--max-tokens", default="128")
a = ap.parse_args()
# No OMP_WAIT_POLICY=PASSIVE here: llama.cpp's OpenMP threads would sleep between its hundreds of small loops per token.
env = dict(os.environ, ATTEND_NUM_THREADS=a.threads)
env.pop("OMP_WAIT_POLICY", None)
os.makedirs(".cache/bench", exist_ok=True)

# Prose from the corpus, cut to each length in the model's own tokens (llama.cpp's tokenizer; Attend's gives the same ids).
from llama_cpp import Llama
tok = Llama(model_path=a.model, n_ctx=256, vocab_only=True, verbose=False)
text = open(".cache/corpus/english.txt", encoding="utf-8", errors="replace").read(2_000_000)
head = "<|im_start|>user\nSummarize the following text in three sentences.\n\n"
tail = "<|im_end|>\n<|im_start|>assistant\n"
body_ids = tok.tokenize(text.encode(), add_bos=False, special=False)
fixed = len(tok.tokenize((head + tail).encode(), add_bos=False, special=True))


def run(cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd[:4])}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


print(f"SmolLM2-135M-Instruct {os.path.basename(a.model)}, {a.threads} threads, {a.max_tokens} new tokens, medians of {a.repeats}")
print(f"{'prompt':>7} | {'attend pp':>9} {'llama pp':>9} {'ratio':>6} | {'attend tg':>9} {'llama tg':>9} {'ratio':>6} | {'attend MiB':>10} {'llama MiB':>9}")
for n in [int(x) for x in a.lengths.split(",")]:
    body = tok.detokenize(body_ids[: n - fixed]).decode("utf-8", errors="ignore")
    path = f".cache/bench/sweep-{n}.txt"
    open(path, "w", encoding="utf-8").write(head + body + tail)
    rows = {"attend": [], "llama": []}
    for _ in range(a.repeats):
        rows["attend"].append(run([".build/release/attend", "generate", "--model", a.model, "--prompt", open(path, encoding="utf-8").read(),
                                   "--max-tokens", a.max_tokens, "--print-ids", "--ignore-eos"]))
        rows["llama"].append(run([sys.executable, "Benchmarks/smollm2_llamacpp.py", a.model, "--threads", a.threads, "--prompt-file", path,
                                  "--max-tokens", a.max_tokens, "--n-ctx", str(n + int(a.max_tokens) + 64), "--ignore-eos"]))
    med = {k: (statistics.median(r[0]["prompt_tps"] for r in v), statistics.median(r[0]["generation_tps"] for r in v),
               max(r[1] for r in v), v[0][0]["prompt_tokens"]) for k, v in rows.items()}
    at, lt = med["attend"], med["llama"]
    print(f"{at[3]:7d} | {at[0]:9.1f} {lt[0]:9.1f} {at[0] / lt[0]:5.2f}x | {at[1]:9.1f} {lt[1]:9.1f} {at[1] / lt[1]:5.2f}x | {at[2]:10.0f} {lt[2]:9.0f}", flush=True)
