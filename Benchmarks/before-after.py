#!/usr/bin/env python3
"""Attend against an earlier build of itself, on the same machine, alternating runs: what a refactor cost.

    git worktree add /tmp/before d6592ad && (cd /tmp/before && swift build -c release --product attend)
    swift build -c release --product attend
    python3 Benchmarks/before-after.py /tmp/before/.build/release/attend [--repeats 3] [--threads 2]

Measures, with the same inputs for both binaries (medians of --repeats runs, before and after interleaved):
  - SmolLM2-135M-Instruct (Q4_1) prompt and generation tokens/s at three prompt lengths (128 new tokens);
  - all-MiniLM-L6-v2 sentences/s on 1,000 corpus lines (as Benchmarks/minilm.sh);
  - GPT training (nanoGPT's baby config, 300 iterations on Austen) wall seconds;
  - `attend gpt sample` of 1,000 characters from a baby-config checkpoint, seconds;
  - Fashion-MNIST MLP, 2 epochs, seconds per epoch.
Needs scripts/setup.sh, scripts/setup-corpus.sh and scripts/fetch-assets.sh SmolLM2-135M-Instruct all-MiniLM-L6-v2.
"""
import argparse, json, os, re, statistics, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("before")
ap.add_argument("--after", default=".build/release/attend")
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--threads", default="2")
ap.add_argument("--only", default="", help="run only the benchmarks whose name contains this text")
a = ap.parse_args()
env = dict(os.environ, ATTEND_NUM_THREADS=a.threads)
os.makedirs(".cache/bench", exist_ok=True)
model = ".cache/assets/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
corpus = open(".cache/corpus/english.txt", encoding="utf-8", errors="replace").read(3_000_000).split("\n")


def run(binary, args):
    t = time.time()
    p = subprocess.run([binary] + args, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{binary} {' '.join(args[:3])}...: exit {p.returncode}\n{p.stderr[-2000:]}")
    return p, time.time() - t


def prompt_of(words):
    text = " ".join(" ".join(corpus[i].split()) for i in range(100, 4000, 7))
    return "Summarize this text.\n\n" + " ".join(text.split()[:words])


STEAM = ("Explain how a steam engine works, step by step, for a curious twelve-year-old. Mention the boiler, the piston, "
         "the valves and the flywheel, and say why coal was used.")  # Benchmarks/smollm2.sh's prompt


def smollm(binary, words):
    prompt = STEAM if words == 0 else prompt_of(words)
    p, _ = run(binary, ["generate", "--model", model, "--chat", "--prompt", prompt, "--max-tokens", "128", "--print-ids"])
    s = json.loads(p.stdout.strip().splitlines()[-1])
    return s["prompt_tps"], s["generation_tps"], s["prompt_tokens"]


with open(".cache/bench/sentences.txt", "w") as f:
    lines = [l for i, l in enumerate(corpus) if 3 <= len(l.split()) <= 60 and i % 60 == 0][:1000]
    f.write("\n".join(lines) + "\n")


def minilm(binary):
    _, s = run(binary, ["embed", "--model", "all-MiniLM-L6-v2", "--file", ".cache/bench/sentences.txt", "-o", ".cache/bench/ba.vec"])
    return 1000 / s


def gpt_train(binary, out=".cache/bench/ba-gpt.safetensors", iterations="300"):
    p, _ = run(binary, ["gpt", "train", ".cache/corpus/austen.txt", "-o", out, "--iterations", iterations, "--eval-interval", iterations, "--eval-iters", "20"])
    m = re.search(r"iterations in ([0-9.]+) s of training", p.stdout)
    return float(m.group(1))


def gpt_sample(binary):
    _, s = run(binary, ["gpt", "sample", ".cache/bench/ba-sample.safetensors", "--length", "1000", "--prompt", "It is a truth"])
    return s


def mnist(binary):
    p, s = run(binary, ["mnist", "--model", "mlp", "--epochs", "2"])
    return s / 2


# A checkpoint to sample from (its weights do not change the speed).
if "sample" in a.only or not a.only:
    gpt_train(a.after, ".cache/bench/ba-sample.safetensors", "50")

benches = [
    ("SmolLM2 prompt tok/s, smollm2.sh prompt", lambda b: smollm(b, 0)[0], True),
    ("SmolLM2 generation tok/s, smollm2.sh prompt", lambda b: smollm(b, 0)[1], True),
    ("SmolLM2 prompt tok/s, short", lambda b: smollm(b, 40)[0], True),
    ("SmolLM2 generation tok/s, short", lambda b: smollm(b, 40)[1], True),
    ("SmolLM2 prompt tok/s, ~350 tokens", lambda b: smollm(b, 250)[0], True),
    ("SmolLM2 generation tok/s, ~350 tokens", lambda b: smollm(b, 250)[1], True),
    ("SmolLM2 prompt tok/s, ~1,000 tokens", lambda b: smollm(b, 750)[0], True),
    ("MiniLM sentences/s (1,000 lines)", minilm, True),
    ("GPT baby config, 300 iterations, s", gpt_train, False),
    ("gpt sample, 1,000 characters, s", gpt_sample, False),
    ("Fashion-MNIST MLP, s per epoch", mnist, False),
]
print(f"{'benchmark':42} {'before':>10} {'after':>10} {'after/before':>13}   ({a.repeats} runs each, {a.threads} threads, medians)")
for name, f, higher_is_better in benches:
    if a.only not in name:
        continue
    before, after = [], []
    for _ in range(a.repeats):
        before.append(f(a.before))
        after.append(f(a.after))
    b, c = statistics.median(before), statistics.median(after)
    speedup = c / b if higher_is_better else b / c
    print(f"{name:42} {b:10.2f} {c:10.2f} {speedup:12.2f}x", flush=True)
