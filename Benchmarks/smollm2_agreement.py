"""How often greedy continuations of SmolLM2-135M-Instruct Q4_1 agree, token for token, between Attend, llama.cpp
in several of its own configurations, and the exact model (float64 numpy on the dequantized weights).

    .cache/venv/bin/python Benchmarks/smollm2_agreement.py MODEL.gguf [--tokens 32] [--threads 2]

8-bit activations (llama.cpp, and Attend's decoding) perturb the logits by about 0.1-0.2 (standard deviation;
the logits themselves spread about 3.4), and a change in the order of a float sum flips which values round
up when they are quantized, so two int8 pipelines give independent perturbations. Wherever the exact model's
two best tokens are closer than that, which of them wins depends on the pipeline: llama.cpp changes its own
output when only its batch size or attention kernel changes. This script measures that, so the agreement
between Attend and llama.cpp can be read against llama.cpp's agreement with itself.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
from llama_cpp import Llama

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "reference"))
from make_llama_fixtures import float_forward  # noqa: E402

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
PROMPTS = [
    "What is the capital of France?", "Write a haiku about the sea.", "List three primary colors.",
    "Explain gravity in one sentence.", "What is 12 times 7?", "Name a famous painting by Leonardo da Vinci.",
    "Give me a synonym for happy.", "How many legs does a spider have?", "What does a bee make?",
    "Translate 'good morning' into Spanish.", "Why is the sky blue?", "Suggest a name for a pet goldfish.",
    "What is the boiling point of water?", "Who wrote Romeo and Juliet?", "Describe a cat in five words.",
    "What is photosynthesis?", "Tell me a fun fact about octopuses.", "What is the largest planet?",
    "How do I make a cup of tea?", "What is the opposite of cold?", "Write a short greeting for a birthday card.",
    "What language is spoken in Brazil?", "Name three fruits that are red.", "What is a prime number?",
]


def chat(p):
    return f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n"


def llama_cpp_runs(model, prompts, n, threads):
    # b1: prompt evaluated one token at a time; FA: flash attention; KV32: float32 KV cache instead of f16.
    configs = {
        "llama.cpp": {},
        "llama.cpp b1": {"n_batch": 1, "n_ubatch": 1},
        "llama.cpp FA": {"flash_attn": True},
        "llama.cpp KV32": {"type_k": 0, "type_v": 0},
    }
    out, ids = {}, None
    for name, kw in configs.items():
        llm = Llama(model_path=model, n_ctx=512, n_threads=threads, n_threads_batch=threads, verbose=False, **kw)
        if ids is None:
            ids = [llm.tokenize(chat(p).encode(), add_bos=False, special=True) for p in prompts]
        runs = []
        for prompt in ids:
            llm.reset()
            got = []
            for tok in llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0):
                if tok == llm.token_eos() or len(got) >= n:
                    break
                got.append(tok)
            runs.append(got)
        out[name] = runs
        del llm
    return ids, out


def attend_runs(model, prompts, n, threads, exact):
    env = dict(os.environ, ATTEND_NUM_THREADS=str(threads))
    runs = []
    for p in prompts:
        cmd = [".build/release/attend", "generate", "--model", model, "--chat", "--prompt", p, "--max-tokens", str(n), "--print-ids"]
        r = subprocess.run(cmd + (["--exact"] if exact else []), capture_output=True, text=True, env=env, check=True)
        runs.append(json.loads(r.stdout.strip().splitlines()[-1])["ids"])
    return runs


def exact_runs(model, ids, n, eos):
    forward = float_forward(model, np.float64)
    runs, margins = [], []
    for prompt in ids:
        seq, got = list(prompt), []
        while len(got) < n:
            logits = forward(seq)[-1]
            top = np.argsort(-logits)[:2]
            if not got:
                margins.append(float(logits[top[0]] - logits[top[1]]))
            if top[0] == eos:
                break
            got.append(int(top[0]))
            seq.append(int(top[0]))
        runs.append(got)
    return runs, margins


def prefix(a, b):
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    ids, runs = llama_cpp_runs(a.model, PROMPTS, a.tokens, a.threads)
    runs["attend"] = attend_runs(a.model, PROMPTS, a.tokens, a.threads, exact=False)
    runs["attend exact"] = attend_runs(a.model, PROMPTS, a.tokens, a.threads, exact=True)
    eos = Llama(model_path=a.model, n_ctx=512, verbose=False, vocab_only=True).token_eos()
    runs["float64"], margins = exact_runs(a.model, ids, a.tokens, eos)
    names = list(runs)
    n = len(PROMPTS)
    print(f"{n} chat prompts, greedy, up to {a.tokens} tokens. Cell: prompts whose continuations are identical / "
          f"mean tokens agreeing before the first difference")
    width = max(len(x) for x in names)
    print(" " * (width + 2) + "".join(f"{x:>16}" for x in names))
    for x in names:
        cells = []
        for y in names:
            same = sum(runs[x][i] == runs[y][i] for i in range(n))
            mean = np.mean([prefix(runs[x][i], runs[y][i]) for i in range(n)])
            cells.append(f"{same:>2}/{n} {mean:5.1f}".rjust(16))
        print(f"{x:<{width}}  " + "".join(cells))
    print(f"exact model's first-token margin (top-1 minus top-2 logit): median {np.median(margins):.3f}, "
          f"below 0.25 on {sum(m < 0.25 for m in margins)} of {n} prompts")
    base = "llama.cpp"
    for other in ["llama.cpp b1", "attend", "attend exact", "float64"]:
        diff = [i for i in range(n) if runs[base][i] != runs[other][i]]
        first = [i for i in diff if prefix(runs[base][i], runs[other][i]) == 0]
        print(f"{other} differs from {base} on prompts {diff}, from the first token on {first}")


if __name__ == "__main__":
    main()
