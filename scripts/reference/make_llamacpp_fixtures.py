"""Expected values from llama.cpp (PyPI llama-cpp-python, which compiles it here) for SmolLM2-135M-Instruct:
token ids of many strings (parse_special on), and greedy completions of chat prompts.

    .cache/venv/bin/python scripts/reference/make_llamacpp_fixtures.py MODEL.gguf Tests/AttendModelsTests/Fixtures

Tests require exact ids and exact greedy tokens.
"""
import json
import sys

from llama_cpp import Llama

TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "  Multiple   spaces\tand\nnewlines  \n\n",
    "Café naïve résumé — déjà vu",
    "日本語のテキストと中文字符",
    "Emoji 😀🚀 and symbols ©®™",
    "don't can't WON'T it's I'm we'll they'd",
    "Numbers 3.14159 1,000,000 year 2026",
    "def f(x):\n    return x**2  # square\n",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "Привет мир, Γειά σου Κόσμε",
    "   leading and trailing   ",
]

PROMPTS = ["What is the capital of France?", "Write a haiku about the sea.", "List three primary colors.",
           "Explain gravity in one sentence."]

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chat(prompt):
    return f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"


def main(path, out):
    llm = Llama(model_path=path, n_ctx=512, n_threads=2, verbose=False, logits_all=False)
    tokenized = [{"text": t, "ids": llm.tokenize(t.encode(), add_bos=False, special=True)} for t in TEXTS]
    generations = []
    for p in PROMPTS:
        ids = llm.tokenize(chat(p).encode(), add_bos=False, special=True)
        llm.reset()
        out_ids = []
        for tok in llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0):
            if tok == llm.token_eos() or len(out_ids) >= 48:
                break
            out_ids.append(tok)
        generations.append({"prompt": p, "prompt_ids": ids, "greedy_ids": out_ids,
                            "text": llm.detokenize(out_ids).decode("utf-8", "replace")})
    json.dump({"tokenizer": tokenized, "generations": generations}, open(f"{out}/smollm2_llamacpp.json", "w"), ensure_ascii=False, indent=0)
    for g in generations:
        print(repr(g["text"]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
