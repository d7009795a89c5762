"""A tiny random GPT-2 checkpoint in the Hugging Face layout, with logits from transformers'
GPT2LMHeadModel (an independent implementation) for the GPT-2 loader test. Tolerance: 1e-4 absolute.

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
    model.save_pretrained(f"{out}/tiny-gpt2", safe_serialization=True)
    ids = [[5, 17, 3, 60, 42, 0, 9], [1, 2, 3, 4, 5, 6, 7]]
    with torch.no_grad():
        logits = model(torch.tensor(ids)).logits
    json.dump({"ids": ids, "logits": logits.reshape(-1).tolist()}, open(f"{out}/tiny_gpt2_expected.json", "w"))


if __name__ == "__main__":
    main(sys.argv[1])
