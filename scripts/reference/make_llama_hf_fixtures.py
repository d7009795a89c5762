"""A tiny random Llama checkpoint in the Hugging Face layout (grouped-query attention, untied output), with
logits from transformers' LlamaForCausalLM (an independent implementation, with rotate-half RoPE) for the
loader test. Tolerance: 1e-4 absolute.

    .cache/venv/bin/python scripts/reference/make_llama_hf_fixtures.py Tests/AttendModelsTests/Fixtures
"""
import json
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main(out):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=64, rope_theta=10000.0, rms_norm_eps=1e-5,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(f"{out}/tiny-llama", safe_serialization=True)
    ids = [[1, 17, 3, 60, 42, 5, 9, 33, 2]]
    with torch.no_grad():
        logits = model(torch.tensor(ids)).logits
    json.dump({"ids": ids, "logits": logits.reshape(-1).tolist()}, open(f"{out}/tiny_llama_expected.json", "w"))


if __name__ == "__main__":
    main(sys.argv[1])
