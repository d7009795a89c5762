"""Expected CLIP loss values and gradients from open_clip's ClipLoss (PyPI open-clip-torch, an independent
implementation), for Tests/AttendNNTests/CLIPLossTests.swift.

open_clip's loss module is loaded on its own (its package __init__ needs torchvision). For each case: unit-length
image and text features [N, D], the logit scale (exp of the learned log, as open_clip's model returns it), the
loss, and the gradients of the loss with respect to the features and the scale, in float64.

    .cache/venv/bin/pip install --no-deps open-clip-torch==3.3.0
    .cache/venv/bin/python scripts/reference/make_clip_loss_fixtures.py Tests/AttendNNTests/Fixtures

Tolerance used by the Swift test: 1e-5 relative to max(1, |value|) (Attend computes in float32).
"""
import importlib.util
import site
import sys

import torch
from safetensors.torch import save_file

CASES = [  # (name, N, D, scale, duplicate rows)
    ("small", 4, 3, 1.0, False),
    ("paper_init", 8, 16, 1 / 0.07, False),
    ("clamped", 6, 8, 100.0, False),
    ("duplicates", 8, 5, 20.0, True),  # two pictures share a caption: a false negative in the batch
]


def main(out):
    path = next(p for p in site.getsitepackages() if "site-packages" in p) + "/open_clip/loss.py"
    spec = importlib.util.spec_from_file_location("open_clip_loss", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loss_fn = module.ClipLoss()
    torch.manual_seed(0)
    tensors = {}
    for name, n, d, scale, duplicate in CASES:
        image = torch.nn.functional.normalize(torch.randn(n, d, dtype=torch.float64), dim=-1)
        text = torch.nn.functional.normalize(torch.randn(n, d, dtype=torch.float64), dim=-1)
        if duplicate:
            text[1] = text[0]
        image.requires_grad_(True)
        text.requires_grad_(True)
        logit_scale = torch.tensor(scale, dtype=torch.float64, requires_grad=True)
        loss = loss_fn(image, text, logit_scale)
        loss.backward()
        for key, value in [("image", image), ("text", text), ("scale", logit_scale.reshape(1)), ("loss", loss.reshape(1)),
                           ("grad_image", image.grad), ("grad_text", text.grad), ("grad_scale", logit_scale.grad.reshape(1))]:
            tensors[f"{name}.{key}"] = value.detach().to(torch.float32).contiguous()
        print(name, float(loss))
    save_file(tensors, f"{out}/clip_loss.safetensors", metadata={"source": "open_clip.loss.ClipLoss, open-clip-torch 3.3.0"})


if __name__ == "__main__":
    main(sys.argv[1])
