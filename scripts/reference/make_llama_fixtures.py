"""Expected values for the Llama / GGUF tests: a float32 numpy forward of SmolLM2-135M-Instruct on weights
read and dequantized by the `gguf` package (llama.cpp's own Python reader), independent of Attend's code.

    .cache/venv/bin/python scripts/reference/make_llama_fixtures.py .cache/assets/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf Tests/AttendModelsTests/Fixtures

Records the last-position logits for a fixed prompt of token ids and the greedy continuation (8 tokens,
full recomputation each step, no cache). Tolerance in the Swift tests: logits 1e-3 absolute; greedy ids exact.
"""
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

PROMPT = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]


ATTENTION_LAYER, ATTENTION_HEAD = 10, 2  # one attention map, for `attend generate --attention-map`


def float_forward(path, dtype=np.float32):
    """forward(ids, capture=None) -> logits [T, vocab]: the model in `dtype` arithmetic on the dequantized weights."""
    r = GGUFReader(path)
    meta = {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.")}
    W = {}
    for t in r.tensors:
        W[t.name] = dequantize(t.data, t.tensor_type).astype(dtype).reshape(list(reversed(t.shape.tolist())))
    C = meta["llama.embedding_length"]
    H, HKV = meta["llama.attention.head_count"], meta["llama.attention.head_count_kv"]
    L, eps, theta = meta["llama.block_count"], dtype(meta["llama.attention.layer_norm_rms_epsilon"]), meta["llama.rope.freq_base"]
    hs = C // H

    def rms(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    def rope(x):  # x (T, heads, hs); adjacent pairs, llama.cpp normal mode
        T = x.shape[0]
        i = np.arange(hs // 2)
        ang = np.arange(T)[:, None] * (theta ** (-2.0 * i / hs))[None, :]
        c, s = np.cos(ang).astype(dtype)[:, None, :], np.sin(ang).astype(dtype)[:, None, :]
        a, b = x[..., 0::2], x[..., 1::2]
        y = np.empty_like(x)
        y[..., 0::2], y[..., 1::2] = a * c - b * s, a * s + b * c
        return y

    def forward(ids, capture=None):
        x = W["token_embd.weight"][ids]
        T = len(ids)
        mask = np.triu(np.full((T, T), -np.inf, dtype=dtype), 1)
        for l in range(L):
            p = f"blk.{l}."
            h = rms(x, W[p + "attn_norm.weight"])
            q = rope((h @ W[p + "attn_q.weight"].T).reshape(T, H, hs))
            k = rope((h @ W[p + "attn_k.weight"].T).reshape(T, HKV, hs))
            v = (h @ W[p + "attn_v.weight"].T).reshape(T, HKV, hs)
            k, v = np.repeat(k, H // HKV, axis=1), np.repeat(v, H // HKV, axis=1)
            att = np.einsum("thd,shd->hts", q, k) / dtype(np.sqrt(hs)) + mask
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            if capture is not None and l == ATTENTION_LAYER:
                capture.append(att[ATTENTION_HEAD])
            y = np.einsum("hts,shd->thd", att, v).reshape(T, C)
            x = x + y @ W[p + "attn_output.weight"].T
            h = rms(x, W[p + "ffn_norm.weight"])
            g = h @ W[p + "ffn_gate.weight"].T
            x = x + ((g / (1 + np.exp(-g))) * (h @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
        return rms(x, W["output_norm.weight"]) @ W.get("output.weight", W["token_embd.weight"]).T

    return forward


def main(path, out):
    forward = float_forward(path)
    captured = []
    logits = forward(PROMPT, captured)[-1]
    ids, greedy = list(PROMPT), []
    for _ in range(8):
        nxt = int(forward(ids)[-1].argmax())
        greedy.append(nxt)
        ids.append(nxt)
    json.dump({"prompt": PROMPT, "last_logits": logits.astype(float).tolist(), "greedy": greedy,
               "attention_layer": ATTENTION_LAYER, "attention_head": ATTENTION_HEAD, "attention": captured[0].astype(float).reshape(-1).tolist()}, open(f"{out}/smollm2_expected.json", "w"))
    print("top-5", np.argsort(-logits)[:5].tolist(), "greedy", greedy)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
