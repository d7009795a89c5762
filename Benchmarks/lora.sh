#!/usr/bin/env bash
# LoRA on SmolLM2-135M-Instruct: Attend (`attend lora train`) against transformers + PEFT on PyTorch (CPU), the
# same GGUF weights, data, tokenization, rank-8 adapters on q_proj / v_proj, optimizer and threads, in one run:
#   1. step time over sequence lengths (batch 4) and batch sizes (length 256): medians of the steps after the
#      first, median over --repeats runs, the two programs alternating; peak RSS beside;
#   2. held-out loss before and after fine-tuning on the instruction set built here (`attend lora make-data`),
#      both sides, same steps;
#   3. the adapter PEFT trained, loaded by Attend: the same held-out loss and logits;
#   4. Attend's adapter merged into a GGUF file that llama.cpp loads: next-token agreement with Attend.
#     Benchmarks/lora.sh [threads] [repeats] [quality steps]
#   LORA_SHAPES="4x64 4x256" picks the batch x length cells of part 1; quality steps 0 skips parts 2-4.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
repeats=${2:-3}
quality_steps=${3:-150}
scripts/setup.sh
Benchmarks/setup-peers.sh
.cache/venv/bin/python -c "import transformers, peft, gguf, llama_cpp" 2>/dev/null || .cache/venv/bin/pip install -q transformers peft gguf llama-cpp-python
model=$(scripts/fetch-assets.sh SmolLM2-135M-Instruct)/SmolLM2-135M-Instruct.Q4_1.gguf
swift build -c release >/dev/null
out=.cache/bench/lora
rm -rf "$out" && mkdir -p "$out"
.build/release/attend lora make-data -o "$out/instructions" >/dev/null
python3 - "$model" "$threads" "$repeats" "$quality_steps" "$out" "${LORA_SHAPES:-4x64 4x128 4x256 4x512 1x256 8x256}" <<'PY'
import json, os, random, re, statistics, subprocess, sys
model, threads, repeats, quality_steps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
shapes = []
for cell in sys.argv[6].split():
    if not re.fullmatch(r"[1-9][0-9]*x[1-9][0-9]*", cell):
        sys.exit(f"LORA_SHAPES: '{cell}' is not BATCHxLENGTH (e.g. 4x256)")
    shapes.append(tuple(int(v) for v in cell.split("x")))
env = dict(os.environ, ATTEND_NUM_THREADS=threads, OMP_NUM_THREADS=threads, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
attend, python = ".build/release/attend", ".cache/venv/bin/python"

def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return p.stdout

# Long conversations from the corpus: a short prompt, a long reply, cut to the length measured.
words = open(".cache/corpus/austen.txt", encoding="utf-8").read().split()
rng = random.Random(5)
with open(f"{out}/long.jsonl", "w") as f:
    for _ in range(64):
        s = rng.randrange(0, len(words) - 800)
        f.write(json.dumps({"messages": [{"role": "user", "content": "Continue: " + " ".join(words[s:s + 10])},
                                         {"role": "assistant", "content": " ".join(words[s + 10:s + 700])}]}) + "\n")
held = f"{out}/instructions/held-out.jsonl"

def attend_step(length, batch):
    o = run([attend, "lora", "train", model, f"{out}/long.jsonl", "--held-out", held, "-o", f"{out}/speed-adapter", "--steps", "4",
             "--batch-size", str(batch), "--max-length", str(length), "--answers", "0", "--show", "0"])
    m = re.search(r"median ([0-9.]+) s/step.*peak RSS ([0-9]+) MiB", o)
    return float(m.group(1)), float(m.group(2))

def peft_step(length, batch):
    o = run([python, "Benchmarks/lora_peft.py", model, f"{out}/long.jsonl", held, "--steps", "4", "--batch-size", str(batch),
             "--max-length", str(length), "--threads", threads, "--no-eval"])
    r = json.loads(o.strip().splitlines()[-1])
    return r["median_step_s"], r["peak_rss_mib"]

print(f"LoRA rank 8 on q_proj, v_proj of SmolLM2-135M-Instruct; {threads} threads; medians of {repeats} runs")
print(f"  {'batch x length':>15} {'attend s/step':>14} {'peft s/step':>12} {'attend/peft':>12} {'attend MiB':>11} {'peft MiB':>9}")
for batch, length in shapes:
    a, p = [], []
    for _ in range(repeats):
        a.append(attend_step(length, batch))
        p.append(peft_step(length, batch))
    at, pt = statistics.median(x[0] for x in a), statistics.median(x[0] for x in p)
    print(f"  {f'{batch} x {length}':>15} {at:14.3f} {pt:12.3f} {pt / at:11.2f}x {max(x[1] for x in a):11.0f} {max(x[1] for x in p):9.0f}", flush=True)

if quality_steps == 0:
    sys.exit(0)
# Quality: the instruction set, same steps on both sides.
train = f"{out}/instructions/train.jsonl"
o = run([attend, "lora", "train", model, train, "--held-out", held, "-o", f"{out}/attend-adapter", "--steps", str(quality_steps), "--answers", "60", "--show", "3"])
before = float(re.search(r"held-out loss before: ([0-9.]+); exact match (\d+)/(\d+)", o).group(1))
m = re.search(r"held-out loss after: ([0-9.]+); exact match (\d+)/(\d+)", o)
after, exact, asked = float(m.group(1)), int(m.group(2)), int(m.group(3))
exact_before = int(re.search(r"held-out loss before: [0-9.]+; exact match (\d+)", o).group(1))
r = json.loads(run([python, "Benchmarks/lora_peft.py", model, train, held, "--steps", str(quality_steps), "--threads", threads,
                    "--out", f"{out}/peft-adapter"]).strip().splitlines()[-1])
print(f"held-out loss per answer token after {quality_steps} steps (instruction set, {r['held_out']} held-out conversations):")
print(f"  attend: {before:.4f} -> {after:.4f}; exact answers {exact_before}/{asked} -> {exact}/{asked}")
print(f"  peft:   {r['loss_before']:.4f} -> {r['loss_after']:.4f}")
for block in o.split("---")[1:]:
    print("  " + block.strip().replace("\n", "\n  "))

# PEFT's adapter in Attend.
e = run([attend, "lora", "evaluate", model, held, "--adapter", f"{out}/peft-adapter", "--logits", f"{out}/attend-logits.safetensors"])
loss = float(re.search(r"mean loss ([0-9.]+)", e).group(1))
check = run([python, "-c", f"""
from safetensors.torch import load_file
a = load_file('{out}/attend-logits.safetensors'); b = load_file('{out}/peft-adapter/logits.safetensors')
assert (a['ids'] == b['ids']).all()
print((a['logits'] - b['logits']).abs().max().item(), b['logits'].abs().max().item())"""]).split()
print(f"PEFT's adapter loaded by Attend: held-out loss {loss:.6f} (PEFT {r['loss_after']:.6f}); logits of the first held-out conversation "
      f"differ by at most {float(check[0]):.2e} (largest |logit| {float(check[1]):.1f})")

# Attend's adapter merged into GGUF, run by llama.cpp.
run([attend, "lora", "merge", model, "--adapter", f"{out}/attend-adapter", "-o", f"{out}/merged.gguf"])
run([attend, "lora", "evaluate", model, held, "--adapter", f"{out}/attend-adapter", "--logits", f"{out}/attend-adapted.safetensors"])
agree = run([python, "-c", f"""
import numpy as np
from llama_cpp import Llama
from safetensors.numpy import load_file
a = load_file('{out}/attend-adapted.safetensors')
ids = [int(i) for i in a['ids']]
llm = Llama('{out}/merged.gguf', n_ctx=512, logits_all=True, n_threads={threads}, verbose=False)
llm.eval(ids)
ref = np.array(llm.scores[:len(ids)])
print(float((ref.argmax(-1) == a['logits'].argmax(-1)).mean()), len(ids))"""]).split()
print(f"merged GGUF in llama.cpp: next-token argmax agrees with Attend's unmerged adapter at {float(agree[0]) * 100:.1f}% of {agree[1]} positions")
PY
