"""Gradients of the tiny Hugging Face Llama (Fixtures/tiny-llama: grouped-query attention, untied output) from
transformers' LlamaForCausalLM, an independent implementation with rotate-half RoPE, for the Llama training test.

A batch of two sequences goes through the token path (input_ids) and through the embeddings path
(inputs_embeds: the token embeddings with three positions replaced by random vectors, as image features would
be). The loss is sum(logits * R) for a fixed random R, so every logit carries gradient. Saved: R, the ids, the
embeddings, both logits, the gradient of every weight (under its Hugging Face name) for the token path, and the
gradient of the input embeddings for the embeddings path. Tolerance in the test: 1e-4 absolute.

    .cache/venv/bin/python scripts/reference/make_llama_grad_fixtures.py Tests/AttendModelsTests/Fixtures
"""
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaForCausalLM


def main(out):
    torch.manual_seed(1)
    model = LlamaForCausalLM.from_pretrained(f"{out}/tiny-llama", torch_dtype=torch.float32).eval()
    ids = torch.tensor([[1, 17, 3, 60, 42, 5, 9, 33, 2], [7, 7, 50, 12, 0, 63, 21, 8, 30]])
    vocab = model.config.vocab_size
    r = torch.randn(ids.shape[0], ids.shape[1], vocab)

    model.zero_grad()
    logits = model(input_ids=ids).logits
    (logits * r).sum().backward()
    tensors = {"ids": ids.float(), "r": r, "logits_tokens": logits.detach()}
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad.detach().clone()

    model.zero_grad()
    embeds = model.model.embed_tokens(ids).detach().clone()
    embeds[0, 2:5] = 0.3 * torch.randn(3, embeds.shape[2])
    embeds.requires_grad_(True)
    logits_e = model(inputs_embeds=embeds).logits
    (logits_e * r).sum().backward()
    tensors["inputs_embeds"] = embeds.detach()
    tensors["logits_embeds"] = logits_e.detach()
    tensors["grad_inputs_embeds"] = embeds.grad.detach()
    save_file({k: v.contiguous() for k, v in tensors.items()}, f"{out}/tiny_llama_gradients.safetensors")


if __name__ == "__main__":
    main(sys.argv[1])
