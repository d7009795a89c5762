"""A tiny random OPT checkpoint in the Hugging Face layout, with logits from transformers' OPTForCausalLM
(an independent implementation) for the OPT loader test. Tolerance: 1e-4 absolute.

    .cache/venv/bin/python scripts/reference/make_opt_fixtures.py Tests/AttendModelsTests/Fixtures
"""
import json
import sys

import torch
from transformers import OPTConfig, OPTForCausalLM


def main(out):
    torch.manual_seed(0)
    config = OPTConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, ffn_dim=40, num_attention_heads=2,
                       max_position_embeddings=32, word_embed_proj_dim=16, dropout=0.0, attention_dropout=0.0,
                       do_layer_norm_before=True, pad_token_id=1, bos_token_id=2, eos_token_id=2)
    model = OPTForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(f"{out}/tiny-opt", safe_serialization=True)
    ids = [[2, 17, 3, 60, 42, 5, 9]]
    with torch.no_grad():
        logits = model(torch.tensor(ids)).logits
    json.dump({"ids": ids, "logits": logits.reshape(-1).tolist()}, open(f"{out}/tiny_opt_expected.json", "w"))


if __name__ == "__main__":
    main(sys.argv[1])
