"""Expected byte-level BPE training result and token ids from Hugging Face `tokenizers` (an independent
implementation) on Tests/AttendTokenizersTests/Fixtures/bpe_corpus.txt (60 KB of Austen plus Unicode lines,
one training text per line). Tests require the same merges, in order, and the same ids.

Also batch encoding with padding and truncation, and offsets (code-point spans of each token), for the
trained tokenizer and for all-MiniLM-L6-v2's WordPiece tokenizer.json (scripts/fetch-assets.sh all-MiniLM-L6-v2).

    .cache/venv/bin/python scripts/reference/make_bpe_fixtures.py Tests/AttendTokenizersTests/Fixtures .cache/assets/all-MiniLM-L6-v2
"""
import json
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

TEXTS = [
    "Hello, world!", "It is a truth universally acknowledged, that a single man in possession of a good fortune",
    "  Multiple   spaces\tand\nnewlines  \n\n", "Café naïve résumé — déjà vu", "日本語のテキストと中文字符",
    "Emoji 😀🚀 and symbols ©®™", "don't can't WON'T it's I'm we'll they'd", "Numbers 3.14159 1,000,000 year 2026",
    "<|endoftext|>The end.<|endoftext|>", "supercalifragilisticexpialidocious", "Mr. Woodhouse's family",
    "ÉCOLE Ñandú ΣΊΣΥΦΟΣ straße", "tab\tand\u00a0nbsp\u200bzero-width",
]


def main(out, minilm):
    lines = open(f"{out}/bpe_corpus.txt", encoding="utf-8").read().split("\n")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, min_frequency=2, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    tok.save(f"{out}/bpe_trained_tokenizer.json")
    model = json.loads(tok.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    cases = [{"text": t, "ids": tok.encode(t).ids, "offsets": tok.encode(t).offsets} for t in TEXTS]
    batches = {}
    tok.enable_padding(pad_id=0, pad_token="<|endoftext|>")
    tok.enable_truncation(max_length=8)
    batches["bpe"] = [{"ids": e.ids, "mask": e.attention_mask} for e in tok.encode_batch(TEXTS)]
    wordpiece = Tokenizer.from_file(f"{minilm}/tokenizer.json")
    wordpiece.no_padding()
    wordpiece.no_truncation()
    wordpiece_offsets = [{"text": t, "ids": wordpiece.encode(t).ids, "offsets": wordpiece.encode(t).offsets} for t in TEXTS]
    wordpiece.enable_padding(pad_id=0, pad_token="[PAD]")
    wordpiece.enable_truncation(max_length=12)
    batches["wordpiece"] = [{"ids": e.ids, "mask": e.attention_mask} for e in wordpiece.encode_batch(TEXTS)]
    json.dump({"vocab_size": tok.get_vocab_size(), "merges": merges, "cases": cases, "batches": batches,
               "wordpiece_offsets": wordpiece_offsets},
              open(f"{out}/bpe_expected.json", "w"), ensure_ascii=False, indent=0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
