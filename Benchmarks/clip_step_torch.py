"""One CLIP training step in PyTorch, the same model as `attend bench clip-step`: a pre-norm Transformer text
tower (token + position embeddings, LayerNorm eps 1e-5, exact GELU, mean over tokens), bias-free projections of
1280-d image features and the text features to 256, a learned log scale, open_clip's symmetric loss, AdamW.
With --image-tower vit the image features come from a Vision Transformer trained with the rest (28 x 28 pictures,
7 x 7 patches by a bias-free strided convolution, a class token, position embeddings, LayerNorms before and after
the same blocks, as wide and deep as the text tower; open_clip's layout).

    .cache/venv/bin/python Benchmarks/clip_step_torch.py --threads 2 --batch-sizes 64 256 --widths 128 256
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attention = nn.MultiheadAttention(d, h, batch_first=True)
        self.up, self.down = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attention(h, h, h, need_weights=False)[0]
        return x + self.down(F.gelu(self.up(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, width, layers, image=28, patch=7):
        super().__init__()
        self.patches = nn.Conv2d(3, width, patch, stride=patch, bias=False)
        self.cls = nn.Parameter(torch.randn(width) * width ** -0.5)
        self.position = nn.Parameter(torch.randn((image // patch) ** 2 + 1, width) * width ** -0.5)
        self.pre, self.post = nn.LayerNorm(width), nn.LayerNorm(width)
        self.blocks = nn.ModuleList([Block(width, width // 32) for _ in range(layers)])

    def forward(self, x):
        x = self.patches(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], dim=1)
        x = self.pre(x + self.position)
        for b in self.blocks:
            x = b(x)
        return self.post(x)[:, 0]


class CLIPStep(nn.Module):
    def __init__(self, vocab, width, layers, tokens, vit=False):
        super().__init__()
        self.vit = ViT(width, layers) if vit else None
        self.token, self.position = nn.Embedding(vocab, width), nn.Embedding(tokens, width)
        self.blocks = nn.ModuleList([Block(width, width // 32) for _ in range(layers)])
        self.norm = nn.LayerNorm(width)
        self.image_projection = nn.Linear(width if vit else 1280, 256, bias=False)
        self.text_projection = nn.Linear(width, 256, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, images, ids):
        x = self.token(ids) + self.position.weight[: ids.shape[1]]
        for b in self.blocks:
            x = b(x)
        text = self.text_projection(self.norm(x).mean(1))
        if self.vit is not None:
            images = self.vit(images)
        i, t = F.normalize(self.image_projection(images), dim=-1), F.normalize(text, dim=-1)
        logits = self.logit_scale.exp() * i @ t.T
        labels = torch.arange(len(ids))
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--widths", type=int, nargs="+", default=[128, 256])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--tokens", type=int, default=12)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--image-tower", choices=["efficientnet-lite0", "vit"], default="efficientnet-lite0")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__} threads {torch.get_num_threads()}")
    print("width batch    steps/s   ms/step")
    for width in a.widths:
        vit = a.image_tower == "vit"
        model = CLIPStep(1002, width, a.layers, a.tokens, vit)
        decay = [p for p in model.parameters() if p.dim() >= 2]
        plain = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": plain, "weight_decay": 0}], lr=1e-4, betas=(0.9, 0.98))
        for batch in a.batch_sizes:
            images = torch.rand(batch, 3, 28, 28) * 4 - 2 if vit else torch.rand(batch, 1280) * 6
            ids = torch.randint(2, 1002, (batch, a.tokens))

            def step():
                opt.zero_grad(set_to_none=True)
                model(images, ids).backward()
                opt.step()

            step()
            times = []
            for _ in range(a.repeats):
                t = time.perf_counter()
                step()
                times.append(time.perf_counter() - t)
            s = statistics.median(times)
            print(f"{width:5d} {batch:5d} {1 / s:10.2f} {1000 * s:9.2f}")


if __name__ == "__main__":
    main()
