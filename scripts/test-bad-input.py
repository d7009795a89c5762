#!/usr/bin/env python3
"""The bad inputs of issue 17, each as a case: flags, configs, file headers, mismatched parts, misleading messages,
outputs that would overwrite inputs, temporary files of killed runs, hub ids with '..'.

Every case runs the real binary on real files (the assets, or copies of them with one value changed) and asserts a
non-zero exit below 128 (no trap), a message holding the expected text (the key, option or file at fault), peak memory
under 1 GiB (a header's claim never sizes an allocation), and that no input file changed. A few cases expect success.

Usage: scripts/test-bad-input.py [path/to/attend]   (default .build/debug/attend; needs scripts/fetch-assets.sh)
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.environ.get("ATTEND_ASSETS", os.path.join(ROOT, ".cache/assets"))
MINILM = os.path.join(ASSETS, "all-MiniLM-L6-v2")
SMOLLM = os.path.join(ASSETS, "SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
CORPUS = os.path.join(ASSETS, "gensim-test-data/lee_background.cor")
TINY_LLAMA = os.path.join(ROOT, "Tests/AttendModelsTests/Fixtures/tiny-llama")
GIB = 1 << 30


# --- GGUF: read the header into values, change one, write it back (tensor data copied as is) ---------------------

class GGUF:
    SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

    def __init__(self, path):
        self.data = open(path, "rb").read()
        self.pos = 0
        assert self.read("<4s") == b"GGUF"
        self.version, n_tensors, n_kv = self.read("<I"), self.read("<Q"), self.read("<Q")
        self.kv = []  # (key, type, value)
        for _ in range(n_kv):
            key = self.string()
            t = self.read("<I")
            self.kv.append([key, t, self.value(t)])
        self.tensors = []  # [name, dims, type, offset]
        for _ in range(n_tensors):
            name = self.string()
            dims = [self.read("<Q") for _ in range(self.read("<I"))]
            self.tensors.append([name, dims, self.read("<I"), self.read("<Q")])
        align = self.get("general.alignment", 32)
        self.data_start = (self.pos + align - 1) // align * align

    def read(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.read("<Q")
        s = self.data[self.pos:self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.read("<I"), self.read("<Q")
            return (et, [self.value(et) for _ in range(n)])
        return self.read(self.SCALARS[t])

    def get(self, key, default=None):
        return next((v for k, _, v in self.kv if k == key), default)

    def set(self, key, value):
        for entry in self.kv:
            if entry[0] == key:
                entry[2] = value
                return
        raise KeyError(key)

    @staticmethod
    def pack_string(s):
        b = s.encode("utf-8") if isinstance(s, str) else s
        return struct.pack("<Q", len(b)) + b

    def pack_value(self, t, v):
        if t == 8:
            return self.pack_string(v)
        if t == 9:
            et, items = v
            return struct.pack("<IQ", et, len(items)) + b"".join(self.pack_value(et, x) for x in items)
        return struct.pack(self.SCALARS[t], v)

    def write(self, path, extra_kv=b"", extra_kv_count=0):
        out = bytearray(b"GGUF" + struct.pack("<IQQ", self.version, len(self.tensors), len(self.kv) + extra_kv_count))
        for k, t, v in self.kv:
            out += self.pack_string(k) + struct.pack("<I", t) + self.pack_value(t, v)
        out += extra_kv
        for name, dims, t, offset in self.tensors:
            out += self.pack_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            out += struct.pack("<IQ", t, offset)
        align = self.get("general.alignment", 32) or 32
        out += b"\0" * ((-len(out)) % align)
        with open(path, "wb") as f:
            f.write(out)
            f.write(self.data[self.data_start:])


def nested_arrays(depth):
    """A GGUF header whose one value is `depth` arrays inside each other (a stack-depth attack)."""
    key = GGUF.pack_string("evil.nested")
    body = struct.pack("<I", 9) + b"".join(struct.pack("<IQ", 9, 1) for _ in range(depth)) + struct.pack("<IQ", 4, 0)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + key + body


# --- the cases ------------------------------------------------------------------------------------------------------

class Runner:
    def __init__(self, attend):
        self.attend = os.path.abspath(attend)
        self.work = tempfile.mkdtemp(prefix="attend-bad-input-")
        self.failures = 0
        self.count = 0

    def path(self, name):
        return os.path.join(self.work, name)

    def run(self, args, cwd=None):
        """(exit code, stdout + stderr, peak RSS in bytes) of one run, its memory from wait4."""
        out = open(self.path("out.txt"), "w+")
        p = subprocess.Popen([self.attend] + args, stdout=out, stderr=subprocess.STDOUT, cwd=cwd or self.work,
                             env=dict(os.environ, HF_HUB_OFFLINE="1", ATTEND_ASSETS=ASSETS))
        _, status, usage = os.wait4(p.pid, 0)
        out.seek(0)
        code = os.waitstatus_to_exitcode(status)
        return code, out.read(), usage.ru_maxrss * 1024

    def case(self, title, args, want, inputs=(), succeed=False, cwd=None):
        """`want`: text the message must hold (or, with succeed=True, the output). Inputs are checked unchanged."""
        self.count += 1
        before = {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in inputs if os.path.exists(p)}
        code, text, rss = self.run(args, cwd)
        problems = []
        if succeed and code != 0:
            problems.append(f"exit {code}, expected success")
        if not succeed and not (0 < code < 128):
            problems.append(f"exit {code}, expected an error exit (1-127)")
        if want not in text:
            problems.append(f"the output lacks {want!r}")
        if rss > GIB:
            problems.append(f"peak memory {rss / GIB:.1f} GiB")
        for p, digest in before.items():
            if not os.path.exists(p) or hashlib.sha256(open(p, "rb").read()).hexdigest() != digest:
                problems.append(f"{p} changed")
        if problems:
            self.failures += 1
            print(f"FAIL {title}: {'; '.join(problems)}\n    attend {' '.join(args)}\n    " + text.strip()[-400:].replace("\n", "\n    "))
        else:
            print(f"ok: {title}")

    def minilm_copy(self, name, config=None, sentence_config=None, vocab=None, tokenizer=None):
        """A MiniLM folder with the weights linked and one file changed (None: as shipped; False: left out)."""
        d = self.path(name)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(MINILM):
            src = os.path.join(MINILM, f)
            if os.path.isfile(src) and f not in ("config.json", "sentence_bert_config.json", "vocab.txt", "tokenizer.json"):
                os.symlink(src, os.path.join(d, f))
        for f, content in (("config.json", config), ("sentence_bert_config.json", sentence_config), ("vocab.txt", vocab),
                           ("tokenizer.json", tokenizer)):
            if content is False:
                continue
            text = open(os.path.join(MINILM, f), encoding="utf-8").read() if content is None else content
            open(os.path.join(d, f), "w", encoding="utf-8", newline="").write(text)
        return d


def main():
    r = Runner(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/debug/attend"))
    corpus = r.path("corpus.txt")
    shutil.copy(CORPUS, corpus)
    small = r.path("small.txt")
    open(small, "w").write("the quick brown fox jumps over the lazy dog\n" * 200)
    vectors = r.path("v.txt")
    code, text, _ = r.run(["word2vec", "train", small, "-o", vectors, "--format", "text", "--dimension", "8", "--min-count", "1", "--epochs", "1"])
    assert code == 0, text

    # Flags.
    r.case("word2vec --dimension 0", ["word2vec", "train", corpus, "-o", r.path("o.vec"), "--dimension", "0"], "--dimension", [corpus])
    r.case("word2vec --window 0", ["word2vec", "train", corpus, "-o", r.path("o.vec"), "--window", "0"], "--window")
    r.case("word2vec --epochs=-1", ["word2vec", "train", corpus, "-o", r.path("o.vec"), "--epochs=-1"], "--epochs")
    r.case("word2vec --negative=-3 --hs", ["word2vec", "train", corpus, "-o", r.path("o.vec"), "--negative=-3", "--hs"], "--negative")
    r.case("word2vec similar -k 0", ["word2vec", "similar", vectors, "the", "-k", "0"], "-k")
    r.case("embed --batch-size 0", ["embed", "--model", MINILM, "--batch-size", "0", "a sentence"], "--batch-size")
    r.case("embed --batch-size=-1", ["embed", "--model", MINILM, "--batch-size=-1", "a sentence"], "--batch-size")
    r.case("gpt train --eval-interval 0", ["gpt", "train", small, "-o", r.path("g.safetensors"), "--eval-interval", "0"], "--eval-interval")
    r.case("gpt train --dropout 1.5", ["gpt", "train", small, "-o", r.path("g.safetensors"), "--dropout", "1.5"], "--dropout")
    r.case("gpt train --batch-size 0", ["gpt", "train", small, "-o", r.path("g.safetensors"), "--batch-size", "0"], "--batch-size")
    r.case("gpt train --eval-iters 0", ["gpt", "train", small, "-o", r.path("g.safetensors"), "--eval-iters", "0"], "--eval-iters")
    r.case("generate --max-tokens Int64.max", ["generate", "--model", SMOLLM, "--prompt", "hi", "--max-tokens", "9223372036854775807"], "--max-tokens")
    r.case("generate --stop ''", ["generate", "--model", SMOLLM, "--prompt", "hi", "--stop", ""], "--stop")
    r.case("seq2seq --batch-size 0", ["seq2seq", "--batch-size", "0"], "--batch-size")
    r.case("graph evaluate --repeats=-1", ["graph", "evaluate", vectors, "--labels", small, "--repeats=-1"], "--repeats")
    r.case("mnist --train-limit=-1", ["mnist", "--train-limit=-1"], "--train-limit")

    # Configs and checkpoint metadata.
    config = json.load(open(os.path.join(MINILM, "config.json")))
    for key, value, want in (("num_attention_heads", 0, "num_attention_heads"), ("num_attention_heads", 5, "num_attention_heads"),
                             ("hidden_size", -384, "hidden_size"), ("num_hidden_layers", 0, "num_hidden_layers"),
                             ("intermediate_size", -1, "intermediate_size"), ("max_position_embeddings", 0, "max_position_embeddings")):
        d = r.minilm_copy(f"minilm-{key}-{value}", config=json.dumps(dict(config, **{key: value})))
        r.case(f"MiniLM config.json {key} {value}", ["embed", "--model", d, "a sentence"], want)
    d = r.minilm_copy("minilm-heads-fraction", config=json.dumps(config).replace('"num_attention_heads": 12', '"num_attention_heads": 12.5'))
    r.case("MiniLM config.json num_attention_heads 12.5 (named, not 'not valid JSON')", ["embed", "--model", d, "a sentence"], "num_attention_heads")
    d = r.minilm_copy("minilm-size-product", config=json.dumps(dict(config, vocab_size=1 << 24, hidden_size=1 << 16, num_attention_heads=16)))
    r.case("MiniLM config.json sizes each within bounds, their product 4 TiB", ["embed", "--model", d, "a sentence"], "memory")
    d = r.minilm_copy("minilm-shape-overflow")
    os.remove(os.path.join(d, "model.safetensors"))
    h = json.dumps({"w": {"dtype": "F32", "shape": [1 << 32, 1 << 32], "data_offsets": [0, 0]}}).encode()
    open(os.path.join(d, "model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h)
    r.case("safetensors shape whose product overflows (2^64 elements)", ["embed", "--model", d, "a sentence"], "more than 2^63")
    d = r.minilm_copy("minilm-max-seq-0", sentence_config=json.dumps({"max_seq_length": 0, "do_lower_case": False}))
    r.case("MiniLM max_seq_length 0", ["embed", "--model", d, "a sentence"], "max_seq_length")

    checkpoint = r.path("tiny-gpt.safetensors")
    code, text, _ = r.run(["gpt", "train", small, "-o", checkpoint, "--iterations", "2", "--eval-interval", "2", "--eval-iters", "1",
                           "--layers", "1", "--heads", "2", "--width", "16", "--context", "8", "--batch-size", "2"])
    assert code == 0, text
    def rewrite_gpt_config(name, **changes):
        raw = open(checkpoint, "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        cfg = json.loads(header["__metadata__"]["gpt_config"])
        cfg.update(changes)
        header["__metadata__"]["gpt_config"] = json.dumps(cfg)
        h = json.dumps(header).encode()
        h += b" " * ((-len(h)) % 8)
        path = r.path(name)
        open(path, "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])
        return path, cfg
    path, _ = rewrite_gpt_config("gpt-3-heads.safetensors", n_head=3)
    r.case("gpt sample: metadata says 3 heads for width 16", ["gpt", "sample", path, "--length", "5"], "head")
    path, _ = rewrite_gpt_config("gpt-4e7-positions.safetensors", n_positions=40_000_000)
    r.case("gpt sample: metadata claims 4e7 positions", ["gpt", "sample", path, "--length", "5"], path)
    path, _ = rewrite_gpt_config("gpt-2e40-wide.safetensors", n_embd=1 << 40, n_head=1)
    r.case("gpt sample: metadata claims width 2^40 (4 x width overflows)", ["gpt", "sample", path, "--length", "5"], "memory")

    llama = r.path("tiny-llama-0-heads")
    shutil.copytree(TINY_LLAMA, llama)
    cfg = json.load(open(os.path.join(llama, "config.json")))
    json.dump(dict(cfg, num_attention_heads=0), open(os.path.join(llama, "config.json"), "w"))
    r.case("Llama config.json with 0 heads", ["generate", "--model", llama, "--prompt", "hi", "--max-tokens", "2"], "num_attention_heads")

    # Header values.
    g = GGUF(SMOLLM)
    def gguf_case(title, name, want, change):
        g2 = GGUF(SMOLLM)
        change(g2)
        path = r.path(name)
        g2.write(path)
        r.case(title, ["generate", "--model", path, "--prompt", "hi", "--max-tokens", "2"], want)
        os.remove(path)
    gguf_case("GGUF general.alignment 0", "align0.gguf", "alignment",
              lambda x: x.kv.append(["general.alignment", 4, 0]) if x.get("general.alignment") is None else x.set("general.alignment", 0))
    gguf_case("GGUF tensor offset 2^63", "offset.gguf", "offset", lambda x: x.tensors[0].__setitem__(3, 1 << 63))
    gguf_case("GGUF tensor dimension 2^63", "dim.gguf", "dimension", lambda x: x.tensors[0][1].__setitem__(0, 1 << 63))
    gguf_case("GGUF head_count 0", "heads0.gguf", "heads is 0", lambda x: x.set("llama.attention.head_count", 0))
    gguf_case("GGUF context_length 1e8 (memory stays bounded)", "ctx.gguf", "100000000", lambda x: x.set("llama.context_length", 100_000_000))
    tokens_type, tokens = g.get("tokenizer.ggml.tokens")
    gguf_case("GGUF token list shorter than the vocabulary", "short-tokens.gguf", "tokens",
              lambda x: x.set("tokenizer.ggml.tokens", (tokens_type, tokens[:1000])))
    nested = r.path("nested.gguf")
    open(nested, "wb").write(nested_arrays(400_000))
    r.case("GGUF with 400,000 nested arrays", ["generate", "--model", nested, "--prompt", "hi"], "nested")
    for header, title in (("4611686018427387904 4\n", "vector file header 2^62 words"), ("1 5000000000\n", "vector file header 5e9 dimensions")):
        path = r.path("huge.vec")
        open(path, "w").write(header + "the 0.1 0.2 0.3 0.4\n")
        r.case(title, ["word2vec", "similar", path, "the"], path)

    # Mismatches between parts.
    vocab = open(os.path.join(MINILM, "vocab.txt"), encoding="utf-8").read()
    d = r.minilm_copy("minilm-big-vocab", vocab=vocab + "".join(f"extraword{i}\n" for i in range(10)), tokenizer=False)
    r.case("vocab.txt larger than the embedding table", ["embed", "--model", d, "extraword3"], "vocab")
    bpe = r.path("bpe")
    code, text, _ = r.run(["tokenizer", "train", small, "-o", bpe, "--vocab-size", "300"])
    assert code == 0, text
    tok = json.load(open(os.path.join(bpe, "tokenizer.json")))
    tok["added_tokens"][0]["id"] = -5
    json.dump(tok, open(os.path.join(bpe, "tokenizer.json"), "w"))
    r.case("tokenizer.json added token with id -5", ["tokenizer", "encode", bpe, "the fox"], "-5")
    # The same vector as with the shipped (LF) vocab.txt: a '\r' kept on the tokens would turn words unknown.
    lf = r.minilm_copy("minilm-lf", tokenizer=False)
    code, lf_vector, _ = r.run(["embed", "--model", lf, "Unaffable tokenization, a sentence"])
    assert code == 0 and "0." in lf_vector, lf_vector
    d = r.minilm_copy("minilm-crlf", vocab=vocab.replace("\n", "\r\n"), tokenizer=False)
    r.case("CRLF vocab.txt gives the LF vocab's vector", ["embed", "--model", d, "Unaffable tokenization, a sentence"], lf_vector.strip(), succeed=True)

    # Messages.
    r.case("a missing .gguf path is named as a missing file", ["generate", "--model", r.path("nowhere/model.gguf"), "--prompt", "hi"], "no such file")

    # Data loss.
    r.case("gpt train victim.txt -o victim.txt", ["gpt", "train", small, "-o", small, "--iterations", "1"], "overwrite", [small])
    r.case("word2vec train victim.txt -o victim.txt", ["word2vec", "train", small, "-o", small], "overwrite", [small])
    link = r.path("link.txt")
    os.symlink(small, link)
    r.case("word2vec train through a link to the corpus", ["word2vec", "train", small, "-o", link], "overwrite", [small])
    hard = r.path("hard-link.txt")
    os.link(small, hard)
    r.case("word2vec train onto a hard link of the corpus", ["word2vec", "train", small, "-o", hard], "overwrite", [small])
    stale = r.path(".stale.vec.tmp-999999")
    open(stale, "w").write("left by a killed run")
    r.case("a killed run's temporary file is removed by the next write", ["word2vec", "train", small, "-o", r.path("stale.vec"),
           "--min-count", "1", "--dimension", "4", "--epochs", "1"], "wrote", succeed=True)
    if os.path.exists(stale):
        r.failures += 1
        print("FAIL the stale temporary file is still there")

    # Hub ids.
    r.case("hub id with '..'", ["embed", "--model", "org/../../x", "a sentence"], "..")

    print(f"{r.count - r.failures} of {r.count} bad-input cases passed")
    shutil.rmtree(r.work, ignore_errors=True)
    sys.exit(1 if r.failures else 0)


if __name__ == "__main__":
    main()
