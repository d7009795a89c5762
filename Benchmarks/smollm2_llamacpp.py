"""llama.cpp (PyPI llama-cpp-python) on SmolLM2-135M-Instruct Q4_1, the peer of `attend generate`:
prompt-processing and generation tokens/s with the same prompt, greedy decoding and thread count.

    .cache/venv/bin/python Benchmarks/smollm2_llamacpp.py MODEL.gguf --threads 2 --prompt-file P --max-tokens 128
"""
import argparse
import json
import time

from llama_cpp import Llama


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--prompt-file", required=True)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--n-ctx", type=int, default=2048, help="context size (the prompt plus the generated tokens must fit)")
    p.add_argument("--ignore-eos", action="store_true", help="generate --max-tokens tokens even past the end-of-sequence token")
    a = p.parse_args()
    llm = Llama(model_path=a.model, n_ctx=a.n_ctx, n_threads=a.threads, n_threads_batch=a.threads, n_batch=512, verbose=False)
    ids = llm.tokenize(open(a.prompt_file, encoding="utf-8").read().encode(), add_bos=False, special=True)
    llm.eval(ids[:8]); llm.reset()  # warm-up
    t0 = time.perf_counter()
    llm.eval(ids)
    t1 = time.perf_counter()
    out = []
    for _ in range(a.max_tokens):
        tok = llm.sample(temp=0.0, top_k=1, repeat_penalty=1.0)
        if tok == llm.token_eos() and not a.ignore_eos:
            break
        out.append(tok)
        llm.eval([tok])
    t2 = time.perf_counter()
    print(json.dumps({"prompt_tokens": len(ids), "prompt_tps": len(ids) / (t1 - t0), "generated": len(out),
                      "generation_tps": len(out) / (t2 - t1), "ids": out}))


if __name__ == "__main__":
    main()
