"""Expected values for Tests/AttendNNTests from PyTorch (an independent implementation).

Builds tiny Transformer encoder/decoder blocks whose parameter names match Attend's modules, runs them
forward and backward in float64, and writes inputs, parameters, outputs and gradients to safetensors
fixtures. Also records conv2d / pooling / cross-entropy results and the conv2d and conv + max-pool gradients.

    .cache/venv/bin/python scripts/reference/make_nn_fixtures.py Tests/AttendNNTests/Fixtures

Tolerance used by the Swift tests: 1e-4 absolute (Attend computes in float32).
"""
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)


class MHA(nn.Module):
    def __init__(self, d, h, kv=None):
        super().__init__()
        kv = kv or d
        self.query, self.key, self.value, self.output = nn.Linear(d, d), nn.Linear(kv, d), nn.Linear(kv, d), nn.Linear(d, d)
        self.h = h

    def forward(self, x, context=None, mask=None, causal=False):
        src = x if context is None else context
        B, Tq, C = x.shape
        Tk = src.shape[1]
        hs = C // self.h
        q = self.query(x).view(B, Tq, self.h, hs).transpose(1, 2)
        k = self.key(src).view(B, Tk, self.h, hs).transpose(1, 2)
        v = self.value(src).view(B, Tk, self.h, hs).transpose(1, 2)
        s = q @ k.transpose(-2, -1) / math.sqrt(hs)
        if causal:
            s = s.masked_fill(torch.triu(torch.ones(Tq, Tk, dtype=torch.bool), 1 + Tk - Tq), float("-inf"))
        if mask is not None:
            s = s.masked_fill(mask.bool(), float("-inf"))
        y = F.softmax(s, dim=-1) @ v
        return self.output(y.transpose(1, 2).reshape(B, Tq, C))


class FFN(nn.Module):
    def __init__(self, d, hidden, act):
        super().__init__()
        self.up, self.down, self.act = nn.Linear(d, hidden), nn.Linear(hidden, d), act

    def forward(self, x):
        return self.down(self.act(self.up(x)))


class EncoderBlock(nn.Module):
    def __init__(self, d, h, hidden, act, pre_norm):
        super().__init__()
        self.attention, self.attentionNorm = MHA(d, h), nn.LayerNorm(d)
        self.feedForward, self.feedForwardNorm = FFN(d, hidden, act), nn.LayerNorm(d)
        self.pre_norm = pre_norm

    def forward(self, x, mask=None):
        if self.pre_norm:
            h = x + self.attention(self.attentionNorm(x), mask=mask)
            return h + self.feedForward(self.feedForwardNorm(h))
        h = self.attentionNorm(x + self.attention(x, mask=mask))
        return self.feedForwardNorm(h + self.feedForward(h))


class DecoderBlock(nn.Module):
    def __init__(self, d, h, hidden, act, enc_d):
        super().__init__()
        self.selfAttention, self.selfAttentionNorm = MHA(d, h), nn.LayerNorm(d)
        self.crossAttention, self.crossAttentionNorm = MHA(d, h, enc_d), nn.LayerNorm(d)
        self.feedForward, self.feedForwardNorm = FFN(d, hidden, act), nn.LayerNorm(d)

    def forward(self, x, memory, memory_mask=None):
        h = x + self.selfAttention(self.selfAttentionNorm(x), causal=True)
        h = h + self.crossAttention(self.crossAttentionNorm(h), context=memory, mask=memory_mask)
        return h + self.feedForward(self.feedForwardNorm(h))


def randomize(module):
    # LayerNorm starts at ones/zeros; perturb every parameter so the test sees non-trivial values.
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))


def dump(path, module, inputs, output, extra):
    r = torch.randn_like(output)
    (output * r).sum().backward()
    tensors = {"loss_weights": r, "output": output}
    for name, t in inputs.items():
        tensors[name] = t
        if t.grad is not None:
            tensors["grad." + name] = t.grad
    for name, p in module.named_parameters():
        tensors["param." + name] = p
        tensors["grad." + name] = p.grad
    tensors.update(extra)
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, path)


def main(out):
    B, T, D, H = 2, 5, 8, 2
    # Encoder block: post-norm (BERT), exact GELU, key padding mask on the second sequence.
    enc = EncoderBlock(D, H, 16, nn.GELU(), pre_norm=False)
    randomize(enc)
    x = torch.randn(B, T, D, requires_grad=True)
    mask = torch.zeros(B, 1, 1, T)
    mask[1, :, :, 3:] = 1
    dump(f"{out}/encoder_block.safetensors", enc, {"input": x, "mask": mask}, enc(x, mask), {})

    # Decoder block: pre-norm (GPT-2), tanh GELU, causal self-attention, cross-attention to a wider memory.
    dec = DecoderBlock(D, H, 16, nn.GELU(approximate="tanh"), enc_d=6)
    randomize(dec)
    y = torch.randn(B, 4, D, requires_grad=True)
    memory = torch.randn(B, T, 6, requires_grad=True)
    dump(f"{out}/decoder_block.safetensors", dec, {"input": y, "memory": memory}, dec(y, memory), {})

    # Convolution, pooling and losses.
    img = torch.randn(2, 3, 7, 7, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    conv = F.conv2d(img, w, b, stride=2, padding=1)
    pooled = F.max_pool2d(F.conv2d(img, w, b, padding=1), 2)
    # Backward of both, through sum(output * weights) with fixed weights: the image, weight and bias gradients.
    conv_weights = torch.linspace(-1, 1, conv.numel()).reshape(conv.shape)
    pooled_weights = torch.linspace(1, -0.5, pooled.numel()).reshape(pooled.shape)
    conv_grads = torch.autograd.grad((conv * conv_weights).sum(), [img, w, b])
    pooled_grads = torch.autograd.grad((pooled * pooled_weights).sum(), [img, w, b])
    logits = torch.randn(6, 5, requires_grad=True)
    targets = torch.tensor([0, 4, 2, -100, 1, 3])
    ce = F.cross_entropy(logits, targets, ignore_index=-100, label_smoothing=0.1)
    ce.backward()
    save_file({k: v.detach().float().contiguous() for k, v in {
        "image": img, "weight": w, "bias": b, "conv_stride2_pad1": conv, "conv_pad1_maxpool2": pooled,
        "conv_stride2_pad1.loss_weights": conv_weights, "conv_pad1_maxpool2.loss_weights": pooled_weights,
        **{f"conv_stride2_pad1.grad.{n}": g for n, g in zip(["image", "weight", "bias"], conv_grads)},
        **{f"conv_pad1_maxpool2.grad.{n}": g for n, g in zip(["image", "weight", "bias"], pooled_grads)},
        "logits": logits, "targets": targets.double(), "cross_entropy_smooth_ignore": ce.reshape(1),
        "grad.logits": logits.grad,
    }.items()}, f"{out}/ops.safetensors")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/AttendNNTests/Fixtures")
