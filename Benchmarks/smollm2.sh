#!/usr/bin/env bash
# SmolLM2-135M-Instruct (Q4_1 GGUF): Attend vs llama.cpp, same chat prompt, greedy, same threads, in one
# run: prompt-processing and generation tokens/s, peak RSS, and how far the greedy outputs agree.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
scripts/setup.sh
Benchmarks/setup-peers.sh
.cache/venv/bin/python -c "import llama_cpp" 2>/dev/null || .cache/venv/bin/pip install -q llama-cpp-python
# A second argument names another GGUF file, e.g. a Q4_0 copy made by scripts/requantize-gguf.py.
model=${2:-$(scripts/fetch-assets.sh SmolLM2-135M-Instruct)/SmolLM2-135M-Instruct.Q4_1.gguf}
swift build -c release >/dev/null
mkdir -p .cache/bench
question="Explain how a steam engine works, step by step, for a curious twelve-year-old. Mention the boiler, the piston, the valves and the flywheel, and say why coal was used."
printf '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n' "$question" > .cache/bench/prompt.txt
python3 - "$model" "$threads" <<'PY'
import json, os, subprocess, sys
from types import SimpleNamespace
model, threads = sys.argv[1], sys.argv[2]
def run(cmd, env=None):
    # Peak RSS of this one process (wait4), not the maximum over all children.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0: sys.exit(f"failed: {cmd}")
    return SimpleNamespace(stdout=out), usage.ru_maxrss / 1024
env = dict(os.environ, ATTEND_NUM_THREADS=threads)
q = open(".cache/bench/prompt.txt").read()
a, rss_a = run([".build/release/attend", "generate", "--model", model, "--prompt", q, "--max-tokens", "128", "--print-ids"], env)
stats = json.loads(a.stdout.strip().splitlines()[-1])
l, rss_l = run([".cache/venv/bin/python", "Benchmarks/smollm2_llamacpp.py", model, "--threads", threads, "--prompt-file", ".cache/bench/prompt.txt", "--max-tokens", "128"])
ref = json.loads(l.stdout.strip().splitlines()[-1])
same = 0
for x, y in zip(stats["ids"], ref["ids"]):
    if x != y: break
    same += 1
print(f"prompt {stats['prompt_tokens']} tokens, {threads} threads")
print(f"  {'':10} {'prompt tok/s':>13} {'gen tok/s':>10} {'generated':>10} {'peak MiB':>9}")
print(f"  {'attend':10} {stats['prompt_tps']:13.1f} {stats['generation_tps']:10.1f} {stats['generated']:10d} {rss_a:9.0f}")
print(f"  {'llama.cpp':10} {ref['prompt_tps']:13.1f} {ref['generation_tps']:10.1f} {ref['generated']:10d} {rss_l:9.0f}")
print(f"  attend/llama.cpp: prompt {stats['prompt_tps'] / ref['prompt_tps']:.2f}x, generation {stats['generation_tps'] / ref['generation_tps']:.2f}x; "
      f"greedy outputs agree on the first {same} tokens")
PY
