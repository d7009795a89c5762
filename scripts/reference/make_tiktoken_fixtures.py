"""Expected GPT-2 token ids from OpenAI's tiktoken (an independent implementation) on the real gpt2.tiktoken
ranks fetched by scripts/fetch-assets.sh gpt2-tiktoken. Tests require exact ids.

    .cache/venv/bin/python scripts/reference/make_tiktoken_fixtures.py .cache/assets/gpt2-tiktoken/gpt2.tiktoken Tests/AttendTokenizersTests/Fixtures
"""
import base64
import json
import sys

import tiktoken

TEXTS = [
    "Hello, world!", "The quick brown fox jumps over the lazy dog.", "  Multiple   spaces\tand\nnewlines  \n\n",
    "Café naïve résumé — déjà vu", "日本語のテキストと中文字符", "Emoji 😀🚀 and symbols ©®™",
    "don't can't WON'T it's I'm we'll they'd", "Numbers 3.14159 1,000,000 year 2026",
    "def f(x):\n    return x**2  # square\n", "Привет мир, Γειά σου Κόσμε", "<|endoftext|>The end.<|endoftext|>",
    "supercalifragilisticexpialidocious", "   leading and trailing   ",
]


def main(path, out):
    ranks = {base64.b64decode(t): int(r) for t, r in (line.split() for line in open(path) if line.strip())}
    enc = tiktoken.Encoding(name="gpt2", pat_str=r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
                            mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256})
    cases = [{"text": t, "ids": enc.encode(t, allowed_special="all")} for t in TEXTS]
    json.dump(cases, open(f"{out}/gpt2_tiktoken_expected.json", "w"), ensure_ascii=False, indent=0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
