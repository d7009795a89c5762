"""LoRA reference values from PEFT (an independent implementation) on the tiny Hugging Face Llama
(Fixtures/tiny-llama: grouped-query attention, untied output), for the LoRA tests.

PEFT attaches rank-4 adapters (lora_alpha 8, so scale 2) to every projection kind (q, k, v, o, gate, up, down)
with init_lora_weights=False, so B is random and the adapters change the output. The adapter folder is
saved with PEFT's own save_pretrained (Fixtures/tiny-llama-lora). Saved beside it: the ids, a fixed random R,
the logits with the adapters, the logits after merge_and_unload, and the gradient of every adapter tensor (under
PEFT's names) of loss = sum(logits * R), the base frozen. Tolerance in the test: 1e-4 absolute.

    .cache/venv/bin/python scripts/reference/make_lora_fixtures.py Tests/AttendModelsTests/Fixtures
"""
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaForCausalLM


def main(out):
    torch.manual_seed(3)
    base = LlamaForCausalLM.from_pretrained(f"{out}/tiny-llama", torch_dtype=torch.float32).eval()
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, init_lora_weights=False,
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(base, config).eval()
    ids = torch.tensor([[1, 17, 3, 60, 42, 5, 9, 33, 2], [7, 7, 50, 12, 0, 63, 21, 8, 30]])
    r = torch.randn(ids.shape[0], ids.shape[1], base.config.vocab_size)
    logits = model(input_ids=ids).logits
    (logits * r).sum().backward()
    tensors = {"ids": ids.float(), "r": r, "logits_adapted": logits.detach()}
    for name, p in model.named_parameters():
        if p.requires_grad:
            # base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight -> the saved name (no ".default")
            tensors["grad." + name.replace(".default", "")] = p.grad.detach().clone()
    model.save_pretrained(f"{out}/tiny-llama-lora")
    merged = model.merge_and_unload()
    with torch.no_grad():
        tensors["logits_merged"] = merged(input_ids=ids).logits
    save_file({k: v.contiguous() for k, v in tensors.items()}, f"{out}/tiny_llama_lora.safetensors")


if __name__ == "__main__":
    main(sys.argv[1])
