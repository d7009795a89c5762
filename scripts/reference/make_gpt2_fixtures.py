"""A tiny random GPT-2 checkpoint in the Hugging Face layout, with logits from transformers'
GPT2LMHeadModel (an independent implementation) for the GPT-2 loader test. Tolerance: 1e-4 absolute.

The MLP's first layer is drawn wide (std 0.5) so its inputs to GELU span about +-4, where GPT-2's tanh-GELU and the
exact GELU differ; the second (std 0.5) and the tied embeddings (std 1) are wide too, so that the difference reaches
the logits. The script prints how far the logits move with the exact GELU (3.4e-3 here), far above the test's 1e-4,
so the test tells the two apart.

    .cache/venv/bin/python scripts/reference/make_gpt2_fixtures.py Tests/AttendModelsTests/Fixtures
"""
import json
import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def main(out):
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=64, n_positions=32, n_embd=16, n_layer=2, n_head=2, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # LayerNorms away from ones/zeros
        for block in model.transformer.h:
            block.mlp.c_fc.weight.normal_(0, 0.5)
            block.mlp.c_proj.weight.normal_(0, 0.5)
        model.transformer.wte.weight.normal_(0, 1.0)  # tied to the output layer: logits of a few units
    model.save_pretrained(f"{out}/tiny-gpt2", safe_serialization=True)
    ids = [[5, 17, 3, 60, 42, 0, 9], [1, 2, 3, 4, 5, 6, 7]]
    with torch.no_grad():
        logits = model(torch.tensor(ids)).logits
    json.dump({"ids": ids, "logits": logits.reshape(-1).tolist()}, open(f"{out}/tiny_gpt2_expected.json", "w"))
    exact = GPT2LMHeadModel(GPT2Config(**dict(config.to_dict(), activation_function="gelu"))).eval()
    exact.load_state_dict(model.state_dict())
    with torch.no_grad():
        moved = (exact(torch.tensor(ids)).logits - logits).abs().max().item()
    print(f"logits move by up to {moved:.2e} with the exact GELU instead of tanh-GELU (test tolerance 1e-4)")


if __name__ == "__main__":
    main(sys.argv[1])
