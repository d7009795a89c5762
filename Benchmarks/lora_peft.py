"""The peer of `attend lora train`: transformers + PEFT on PyTorch (CPU), the same GGUF weights (transformers
dequantizes them to float32), the same conversations tokenized the same way (each piece on its own, the loss on
the assistant's tokens and their <|im_end|>), rank-r adapters on the same projections, AdamW with the same
warmup-cosine schedule and clipping. Prints JSON: held-out loss before and after, the median step time after
the first step, peak RSS. Saves the trained adapter with PEFT's save_pretrained, and the logits of the first
held-out conversation under it (for Attend to reproduce from the saved adapter).

    .cache/venv/bin/python Benchmarks/lora_peft.py MODEL.gguf train.jsonl held-out.jsonl --steps 20 --out DIR
"""
import argparse
import json
import math
import os
import random
import re
import resource
import statistics
import time

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer


def tokenize(tok, system, messages, max_len):
    ids, mask = [], []

    def add(text, train):
        piece = tok.encode(text, add_special_tokens=False)
        ids.extend(piece)
        mask.extend([train] * len(piece))

    if system and messages[0]["role"] != "system":
        add(f"<|im_start|>system\n{system}<|im_end|>\n", False)
    for m in messages:
        if m["role"] == "assistant":
            add("<|im_start|>assistant\n", False)
            add(m["content"] + "<|im_end|>", True)
            add("\n", False)
        else:
            add(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n", False)
    return ids[:max_len], mask[:max_len]


def batch(chats, pad):
    w = max(len(c[0]) for c in chats)
    ids = torch.full((len(chats), w), pad, dtype=torch.long)
    labels = torch.full((len(chats), w), -100, dtype=torch.long)
    for r, (i, m) in enumerate(chats):
        ids[r, : len(i)] = torch.tensor(i)
        for t in range(len(i) - 1):
            if m[t + 1]:
                labels[r, t] = i[t + 1]
    return ids, labels


def loss_of(model, ids, labels):
    logits = model(input_ids=ids).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def mean_loss(model, chats, batch_size, pad):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(chats), batch_size):
            ids, labels = batch(chats[s : s + batch_size], pad)
            n = int((labels != -100).sum())
            total += float(loss_of(model, ids, labels)) * n
            count += n
    model.train()
    return total / max(count, 1)


def schedule(step, peak, warmup, total):
    minimum = peak / 10
    if step < warmup:
        return peak * (step + 1) / warmup
    if step >= total:
        return minimum
    progress = (step - warmup) / max(1, total - warmup)
    return minimum + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - minimum)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("train")
    p.add_argument("held_out")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--targets", default="q_proj,v_proj")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-eval", action="store_true", help="time the steps only")
    p.add_argument("--out", help="adapter folder to save (and logits.safetensors inside it)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    folder, name = os.path.split(os.path.abspath(a.model))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    m = re.search(r"<\|im_start\|>system\n(.*?)<\|im_end\|>", tok.chat_template or "", re.S)
    system = m.group(1) if m else None
    read = lambda path: [json.loads(line)["messages"] for line in open(path) if line.strip()]
    train = [c for c in (tokenize(tok, system, x, a.max_length) for x in read(a.train)) if any(c[1])]
    held = [c for c in (tokenize(tok, system, x, a.max_length) for x in read(a.held_out)) if any(c[1])]
    pad = tok.eos_token_id or 0
    model = get_peft_model(model, LoraConfig(r=a.rank, lora_alpha=a.alpha, lora_dropout=0.0, target_modules=a.targets.split(",")))
    result = {"threads": a.threads, "train": len(train), "held_out": len(held), "trained_tokens_held_out": sum(sum(c[1]) for c in held)}
    if not a.no_eval:
        result["loss_before"] = mean_loss(model, held, a.batch_size, pad)
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    rng = random.Random(a.seed)
    order, times = [], []
    model.train()
    for step in range(a.steps):
        if len(order) < a.batch_size:
            more = list(range(len(train)))
            rng.shuffle(more)
            order += more
        picked, order = order[: a.batch_size], order[a.batch_size :]
        ids, labels = batch([train[i] for i in picked], pad)
        start = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = schedule(step, a.lr, min(a.warmup, a.steps), max(a.steps, 1))
        opt.zero_grad(set_to_none=True)
        loss = loss_of(model, ids, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        times.append(time.perf_counter() - start)
    result["median_step_s"] = statistics.median(times[1:]) if len(times) > 1 else times[0]
    if not a.no_eval:
        result["loss_after"] = mean_loss(model, held, a.batch_size, pad)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if a.out:
        model.peft_config["default"].base_model_name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
        model.save_pretrained(a.out)
        ids = torch.tensor([held[0][0]])
        model.eval()
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0]
        save_file({"logits": logits.contiguous(), "ids": ids[0].float()}, os.path.join(a.out, "logits.safetensors"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
