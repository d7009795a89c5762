"""Hugging Face tokenizers (Rust) training the same byte-level BPE as `attend tokenizer train`: the peer for
Benchmarks/bpe.sh. Prints the training time and writes the merges, one per line, for comparison.

    .cache/venv/bin/python Benchmarks/bpe_hf.py CORPUS --vocab-size 8000 --merges-out merges.txt
"""
import argparse
import json
import time

from tokenizers import Tokenizer, models, pre_tokenizers, trainers


def main():
    p = argparse.ArgumentParser()
    p.add_argument("corpus")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--merges-out", required=True)
    a = p.parse_args()
    lines = open(a.corpus, encoding="utf-8").read().split("\n")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=a.vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    t0 = time.perf_counter()
    tok.train_from_iterator(lines, trainer=trainer)
    seconds = time.perf_counter() - t0
    merges = json.loads(tok.to_str())["model"]["merges"]
    open(a.merges_out, "w", encoding="utf-8").write("".join((m if isinstance(m, str) else " ".join(m)) + "\n" for m in merges))
    print(f"{tok.get_vocab_size()} tokens ({len(merges)} merges) in {seconds:.2f} s")


if __name__ == "__main__":
    main()
