"""An independent PyTorch forward of Attend's learned image codec (Sources/AttendModels/ImageCompression.swift) on the
same weights: where its distortion comes from. For each photo it prints the PSNR of the transforms alone (the latent
decoded as it is, not quantized), with the latent rounded (what the file holds), with uniform noise (what training
sees), and the bits per pixel the density gives the rounded latent (the file adds a 21-byte header and the coder's
last bytes). The image is cropped to a multiple of 16 where Attend pads it, so figures differ slightly from
`attend ae evaluate`'s. Needs Pillow beside the peers (`Benchmarks/setup-peers.sh`, then
`.cache/venv/bin/pip install pillow`).

    .cache/venv/bin/python Benchmarks/codec_torch.py models/compression-0.013.safetensors \
        .cache/assets/scikit-image-data/astronaut.png .cache/assets/scikit-image-data/chelsea.png [--refine 100]
"""
import argparse, json
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open

p = argparse.ArgumentParser()
p.add_argument("codec", help="a .safetensors file written by `attend ae train`")
p.add_argument("images", nargs="+", help="PNG or JPEG photos")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--refine", type=int, default=0, metavar="STEPS",
               help="also refine each photo's latent by STEPS Adam steps on the codec's own loss (rate of the noisy latent "
                    "+ lambda 255^2 MSE of the rounded one through a straight-through rounding), as an encoder that "
                    "searched per image would (Campos et al. 2019), and print what rounding that latent gives")
p.add_argument("--refine-lr", type=float, default=0.002)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

f = safe_open(a.codec, "pt")
config = json.loads(f.metadata()["attend.compression"])
W = {k: f.get_tensor(k) for k in f.keys()}


def gdn(x, prefix, inverse):
    # Attend's GDN: x / (beta + gamma |x|) and its inverse x * (...), beta and gamma kept as squared roots.
    norm = F.conv2d(x.abs(), W[prefix + "gammaRoot"] ** 2, W[prefix + "betaRoot"] ** 2 + 1e-6)
    return x * norm if inverse else x / norm


def analysis(x):
    h = x * 2 - 1
    for i in range(3):
        h = gdn(F.conv2d(h, W[f"analysis.{i}.weight"], W[f"analysis.{i}.bias"], stride=2, padding=2), f"analysisNorms.{i}.", False)
    return F.conv2d(h, W["analysis.3.weight"], W["analysis.3.bias"], stride=2, padding=2)


def synthesis(y):
    h = y
    for i in range(3):
        h = F.pixel_shuffle(F.conv2d(h, W[f"synthesis.{i}.weight"], W[f"synthesis.{i}.bias"], padding=1), 2)
        h = gdn(h, f"synthesisNorms.{i}.", True)
    return (F.pixel_shuffle(F.conv2d(h, W["synthesis.3.weight"], W["synthesis.3.bias"], padding=1), 2) + 1) * 0.5


def logits(x):
    # Ballé et al. 2018, 6.1: f_c(x), monotone in x, as FactorizedDensity.logits computes it.
    h = x
    for k in range(4):
        h = F.softplus(W[f"density.matrices.{k}"]) @ h + W[f"density.biases.{k}"]
        if k < 3:
            h = h + torch.tanh(W[f"density.factors.{k}"]) * torch.tanh(h)
    return h


def bits_tensor(y):
    c = y.shape[1]
    v = y.permute(1, 0, 2, 3).reshape(c, 1, -1)
    upper, lower = logits(v + 0.5), logits(v - 0.5)
    sign = -torch.sign(upper + lower).detach()
    p = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs().clamp_min(1e-9)
    return -torch.log2(p).sum()


def bits(y):
    return bits_tensor(y).item()


def refine(y0, x, steps, lr):
    """The latent after `steps` Adam steps on bpp + lambda 255^2 MSE (the transforms and density fixed)."""
    pixels = x.shape[2] * x.shape[3]
    y = y0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([y], lr=lr)
    for _ in range(steps):
        rounded = y + (torch.round(y) - y).detach()
        loss = bits_tensor(y + torch.rand_like(y) - 0.5) / pixels + config["lambda"] * 255 ** 2 * ((synthesis(rounded) - x) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return y.detach()


def psnr(a, b):
    return 10 * np.log10(1 / ((a - b) ** 2).mean().item())


print(f"{a.codec}: {config}, torch {torch.__version__}")
print(f"{'photo':24} {'bpp':>6} {'unquantized dB':>15} {'rounded dB':>11} {'noisy dB':>9}")
for path in a.images:
    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    h, w = x.shape[2] // 16 * 16, x.shape[3] // 16 * 16
    x = x[:, :, :h, :w].contiguous()
    with torch.no_grad():
        y = analysis(x)
        rounded = torch.round(y)
        noisy = y + torch.rand_like(y) - 0.5
        row = [psnr(synthesis(v).clamp(0, 1), x) for v in (y, rounded, noisy)]
        print(f"{path.split('/')[-1]:24} {bits(rounded) / (h * w):6.3f} {row[0]:15.2f} {row[1]:11.2f} {row[2]:9.2f}")
    if a.refine:
        for k in W: W[k].requires_grad_(False)
        refined = torch.round(refine(y, x, a.refine, a.refine_lr))
        with torch.no_grad():
            print(f"{'  refined, ' + str(a.refine) + ' steps':24} {bits(refined) / (h * w):6.3f} {'':15} "
                  f"{psnr(synthesis(refined).clamp(0, 1), x):11.2f}")
