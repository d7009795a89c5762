"""Expected values for CLIP's from-scratch image tower (CLIPVisionTransformer) from open_clip's own
`VisionTransformer` (PyPI open-clip-torch 3.3.0, an independent implementation): a tiny ViT (image 12, patch 4,
width 16, 2 heads, 2 layers, exact GELU, open_clip's defaults otherwise: class token pooled after ln_post), its
parameters under Attend's names, two pictures, the pooled features, the patch tokens, and the gradients of
sum(features * loss_weights) with respect to the pictures and every parameter, all in float64.

    .cache/venv/bin/pip install open-clip-torch==3.3.0     (after Benchmarks/setup-peers.sh)
    .cache/venv/bin/python scripts/reference/make_clip_vit_fixtures.py Tests/AttendVisionTests/Fixtures

Tolerance used by the Swift test: 1e-4 absolute (Attend computes in float32).
"""
import sys

import torch
from open_clip.transformer import VisionTransformer
from safetensors.torch import save_file

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
IMAGE, PATCH, WIDTH, HEADS, LAYERS = 12, 4, 16, 2, 2


def main(out):
    vit = VisionTransformer(image_size=IMAGE, patch_size=PATCH, width=WIDTH, layers=LAYERS, heads=HEADS, mlp_ratio=4.0,
                            output_dim=WIDTH, output_tokens=True).double()
    with torch.no_grad():
        for p in vit.parameters():          # LayerNorms start at ones/zeros: perturb everything
            p.add_(0.1 * torch.randn_like(p))
        vit.proj.copy_(torch.eye(WIDTH))    # the projection is CLIP's, outside the tower: features as they are
    x = torch.randn(2, 3, IMAGE, IMAGE, requires_grad=True)
    pooled, tokens = vit(x)
    r = torch.randn_like(pooled)
    (pooled * r).sum().backward()

    # open_clip name -> Attend name (and how the tensor is laid out there).
    named = {}
    def put(name, tensor, grad):
        named[f"param.{name}"] = tensor
        named[f"grad.{name}"] = grad
    put("patchEmbedding.weight", vit.conv1.weight.reshape(WIDTH, -1), vit.conv1.weight.grad.reshape(WIDTH, -1))
    put("classEmbedding", vit.class_embedding, vit.class_embedding.grad)
    put("positionEmbedding", vit.positional_embedding, vit.positional_embedding.grad)
    put("preNorm.weight", vit.ln_pre.weight, vit.ln_pre.weight.grad)
    put("preNorm.bias", vit.ln_pre.bias, vit.ln_pre.bias.grad)
    put("finalNorm.weight", vit.ln_post.weight, vit.ln_post.weight.grad)
    put("finalNorm.bias", vit.ln_post.bias, vit.ln_post.bias.grad)
    for i, block in enumerate(vit.transformer.resblocks):
        a = f"layers.{i}."
        w, b = block.attn.in_proj_weight, block.attn.in_proj_bias
        for k, part in enumerate(["query", "key", "value"]):
            rows = slice(k * WIDTH, (k + 1) * WIDTH)
            put(a + f"attention.{part}.weight", w[rows], w.grad[rows])
            put(a + f"attention.{part}.bias", b[rows], b.grad[rows])
        for mine, theirs in [("attention.output", block.attn.out_proj), ("attentionNorm", block.ln_1),
                             ("feedForwardNorm", block.ln_2), ("feedForward.up", block.mlp.c_fc),
                             ("feedForward.down", block.mlp.c_proj)]:
            put(a + mine + ".weight", theirs.weight, theirs.weight.grad)
            put(a + mine + ".bias", theirs.bias, theirs.bias.grad)
    named.update({"input": x, "grad.input": x.grad, "features": pooled, "tokens": tokens, "loss_weights": r})
    save_file({k: v.detach().float().contiguous() for k, v in named.items()}, f"{out}/clip_vit.safetensors",
              metadata={"image_size": str(IMAGE), "patch_size": str(PATCH), "width": str(WIDTH), "heads": str(HEADS),
                        "layers": str(LAYERS)})


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/AttendVisionTests/Fixtures")
