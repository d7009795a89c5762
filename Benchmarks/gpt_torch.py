"""The PyTorch peer of `attend gpt train`: the same character-level GPT (GPT-2 blocks with biases, tanh
GELU, pre-norm, tied output), initialization, AdamW groups (decay on matrices only, betas 0.9/0.99),
warmup + cosine schedule, clipping, batch size, context and data split; nanoGPT's CPU "baby" config.

    .cache/venv/bin/python Benchmarks/gpt_torch.py CORPUS --threads 2 --iterations 2000 --eval-iters 200
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.fc, self.fc_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.h = h

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.fc_proj(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, ctx, c, layers, heads):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, c), nn.Embedding(ctx, c)
        self.blocks = nn.ModuleList(Block(c, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(c)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("proj.weight", "fc_proj.weight")) and "qkv" not in name else 0.02
                nn.init.normal_(p, 0, std)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.blocks:
            x = b(x)
        return self.ln_f(x) @ self.wte.weight.T


def main():
    p = argparse.ArgumentParser()
    p.add_argument("corpus")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--eval-iters", type=int, default=200)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=12)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1337)
    text = open(a.corpus, encoding="utf-8").read()
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text] if len(chars) < 2 else [{c: i for i, c in enumerate(chars)}[c] for c in text])
    cut = int(len(data) * 0.9)
    train, val = data[:cut], data[cut:]
    B, T = a.batch_size, a.context
    model = GPT(len(chars), T, a.width, a.layers, a.heads)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    plain = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": plain, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))

    def lr_at(it):
        warmup = min(100, a.iterations // 10) if a.iterations < 1000 else 100
        if it < warmup:
            return 1e-3 * (it + 1) / warmup
        return 1e-4 + 0.5 * (1 + math.cos(math.pi * (it - warmup) / max(1, a.iterations - warmup))) * (1e-3 - 1e-4)

    def batch(d):
        ix = torch.randint(len(d) - T - 1, (B,))
        return torch.stack([d[i:i + T] for i in ix]), torch.stack([d[i + 1:i + T + 1] for i in ix])

    t0 = time.perf_counter()
    for it in range(a.iterations):
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        x, y = batch(train)
        loss = F.cross_entropy(model(x).view(-1, len(chars)), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    t1 = time.perf_counter()
    model.eval()
    with torch.no_grad():
        losses = {n: sum(F.cross_entropy(model(x).view(-1, len(chars)), y.view(-1)).item() for x, y in (batch(d) for _ in range(a.eval_iters))) / a.eval_iters
                  for n, d in (("train", train), ("val", val))}
    print(f"done: {a.iterations} iterations in {t1 - t0:.1f} s; final train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")


if __name__ == "__main__":
    main()
