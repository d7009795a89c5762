"""Expected values for Tests/AttendModelsTests from Hugging Face (independent implementations):
token ids from transformers' BertTokenizerFast and sentence embeddings from sentence-transformers, both
on the all-MiniLM-L6-v2 folder fetched by scripts/fetch-assets.sh.

    HF_HUB_OFFLINE=1 .cache/venv/bin/python scripts/reference/make_bert_fixtures.py .cache/assets/all-MiniLM-L6-v2 Tests/AttendModelsTests/Fixtures

Tolerances used by the Swift tests: token ids exact; embeddings 1e-4 absolute per component and
cosine >= 0.9999 (float32 on both sides, different summation orders).
"""
import json
import sys

from sentence_transformers import SentenceTransformer
from transformers import BertTokenizerFast

TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "  Multiple   spaces\tand\nnewlines  ",
    "Café naïve résumé — déjà vu",
    "ÉCOLE Ångström Øresund",
    "日本語のテキストと中文字符",
    "Emoji 😀🚀 and symbols ©®™ ±×÷",
    "don't can't won't it's",
    "e-mail: someone@example.com, url https://example.org/a?b=c",
    "Numbers 3.14159 1,000,000 2026-11-24",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Ünïcödé ÀÉÎÕÜ ß ﬁ ligature",
    "Привет мир, Γειά σου Κόσμε",
    "مرحبا بالعالم",
    "",
    "a" * 120,
    "word " * 300,
]

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    "In the beginning God created the heaven and the earth.",
    "Café naïve 日本語 😀",
]


def main(model_dir, out):
    tok = BertTokenizerFast.from_pretrained(model_dir)
    model = SentenceTransformer(model_dir, device="cpu")
    emb = model.encode(SENTENCES, batch_size=4, convert_to_numpy=True)
    expected = {
        "tokenizer": [{"text": t, "ids": tok(t, truncation=True, max_length=256)["input_ids"]} for t in TEXTS],
        "sentences": SENTENCES,
        "embeddings": emb.astype(float).tolist(),
    }
    json.dump(expected, open(f"{out}/minilm_expected.json", "w"), ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
