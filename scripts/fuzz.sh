#!/usr/bin/env bash
# Fuzzes Attend's file parsers with libFuzzer (Swift's -sanitize=fuzzer) under AddressSanitizer. See docs/FUZZING.md.
#
#   scripts/fuzz.sh [TARGET|all] [RUNS] [MAX_SECONDS]
#     TARGET       one of the names in Sources/AttendFuzzing/FuzzTargets.swift, or all (the default), one after another
#     RUNS         inputs per target (default 1000000)
#     MAX_SECONDS  time cap per target (default 300); a target stops at whichever of RUNS and MAX_SECONDS comes first
#
# It builds Fuzz/ (release, --sanitize fuzzer --sanitize address) into .cache/fuzz-build, writes seed corpora into
# .cache/fuzz-seeds/TARGET from the test fixtures and the fetched assets (.cache/assets, scripts/fetch-assets.sh;
# missing assets are skipped), keeps what libFuzzer learns in .cache/fuzz-corpus/TARGET, and runs one libFuzzer process
# at a time, in-process (no -jobs/-workers: with -jobs=1 libFuzzer forks a child that writes fuzz-0.log into the current
# folder), with -rss_limit_mb=1024 -malloc_limit_mb=1024. Every crash, sanitizer report, timeout or
# out-of-memory input is copied into Tests/AttendFuzzingTests/Regressions/TARGET/, which `swift test --filter
# AttendFuzzingTests` replays. Per target it prints the inputs run, executions per second, coverage (libFuzzer's cov:
# edges and ft: features), peak RSS and crashes; the table is also written to .cache/fuzz-results/summary.tsv.
# Environment: FUZZ_SKIP_BUILD=1 uses the existing binary; FUZZ_RESEED=1 writes the seeds again.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${1:-all}
RUNS=${2:-1000000}
SECONDS_CAP=${3:-300}
ALL_TARGETS="safetensors gguf torch zip tokenizer-json vocab-txt merges-txt tiktoken word2vec-text word2vec-binary edge-list node-labels wordnet-nouns idx png jpeg openai-request model-config"

# Longest input per target: large enough for the seeds that matter, small enough that an input cannot legitimately
# ask for more than the 1 GiB the run allows.
max_len() {
  case "$1" in
    png|jpeg) echo 16384 ;;
    model-config) echo 4096 ;;
    openai-request) echo 8192 ;;
    *) echo 65536 ;;
  esac
}

# SwiftPM passes -sanitize=fuzzer and -sanitize=address to swiftc as two flags, and swiftc (6.3) then drops the
# fuzzer's coverage instrumentation from Swift code (only C targets would be instrumented: libFuzzer would see a
# handful of edges); -sanitize-coverage asks for what -sanitize=fuzzer,address would have given.
BUILD_FLAGS=(--package-path Fuzz --scratch-path .cache/fuzz-build -c release --sanitize fuzzer --sanitize address
             -Xswiftc -sanitize-coverage=edge,indirect-calls,trace-cmp,inline-8bit-counters,pc-table)
if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ]; then
  [ -f Fuzz/Package.resolved ] || { [ -f Package.resolved ] && cp Package.resolved Fuzz/Package.resolved; }
  echo "building the fuzz driver (release, fuzzer + address sanitizers) ..." >&2
  swift build "${BUILD_FLAGS[@]}" >&2 || { echo "fuzz.sh: the build failed" >&2; exit 1; }
fi
BIN="$(swift build "${BUILD_FLAGS[@]}" --show-bin-path)/AttendFuzz"
[ -x "$BIN" ] || { echo "fuzz.sh: $BIN is missing (run without FUZZ_SKIP_BUILD)" >&2; exit 1; }

# MARK: Seeds
SEEDS=.cache/fuzz-seeds
if [ ! -f "$SEEDS/.complete" ] || [ "${FUZZ_RESEED:-0}" = 1 ]; then
  PY=python3
  [ -x .cache/venv/bin/python ] && PY=.cache/venv/bin/python
  echo "writing seed corpora into $SEEDS with $PY ..." >&2
  rm -rf "$SEEDS"
  "$PY" - "$SEEDS" <<'PY' || { echo "fuzz.sh: writing the seeds failed" >&2; exit 1; }
import gzip, io, json, os, random, shutil, struct, sys, zipfile

out = sys.argv[1]
assets = ".cache/assets"
random.seed(17)

def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def read(path, limit=None):
    if not os.path.exists(path):
        print(f"  (skipped: {path} is missing)", file=sys.stderr)
        return None
    with open(path, "rb") as f:
        return f.read() if limit is None else f.read(limit)

def copy(target, path, name=None, limit=None):
    data = read(path, limit)
    if data is not None:
        put(target, name or os.path.basename(path), data)

def lines(path, n):
    data = read(path)
    if data is None:
        return None
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return b"".join(data.splitlines(keepends=True)[:n])

try:
    import numpy as np
except ImportError:
    np = None
try:
    import torch
except ImportError:
    torch = None
try:
    from PIL import Image
except ImportError:
    Image = None

# safetensors: the committed fixtures, every dtype Attend reads, a real header (MiniLM) with its data cut.
for p in ["Tests/AttendNNTests/Fixtures/ops.safetensors", "Tests/AttendNNTests/Fixtures/clip_loss.safetensors",
          "Tests/AttendNNTests/Fixtures/encoder_block.safetensors", "Tests/AttendModelsTests/Fixtures/tiny-gpt2/model.safetensors"]:
    copy("safetensors", p)
def safetensors_bytes(tensors, metadata=None):
    header, blob = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + blob
dtypes = {"F64": "<d", "F32": "<f", "F16": "<e", "I64": "<q", "I32": "<i", "I16": "<h", "I8": "<b", "U8": "<B", "BOOL": "<?"}
tensors = {}
for i, (dt, fmt) in enumerate(dtypes.items()):
    n = 6
    vals = [bool(k % 2) for k in range(n)] if dt == "BOOL" else [k + 1 for k in range(n)] if dt == "U8" else [k - 2 for k in range(n)]
    tensors[f"t.{dt.lower()}"] = (dt, [2, 3], struct.pack("<" + fmt[1] * n, *vals))
tensors["t.bf16"] = ("BF16", [3], b"".join(struct.pack("<f", v)[2:] for v in [1.0, -2.5, 0.125]))
tensors["t.empty"] = ("F32", [0, 4], b"")
tensors["t.scalar"] = ("F32", [], struct.pack("<f", 3.5))
put("safetensors", "all-dtypes.safetensors", safetensors_bytes(tensors, {"format": "pt", "note": "seed"}))
minilm = read(f"{assets}/all-MiniLM-L6-v2/model.safetensors", 65536)
if minilm is not None:
    put("safetensors", "minilm-prefix.safetensors", minilm)
    n = struct.unpack("<Q", minilm[:8])[0]
    if n + 8 <= len(minilm):
        header = json.loads(minilm[8:8 + n])
        # The real header with every tensor shrunk to 2 x 2, so the data fits.
        small, blob = {"__metadata__": header.get("__metadata__", {"format": "pt"})}, 0
        for name, entry in list(header.items())[:40]:
            if name == "__metadata__":
                continue
            size = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}.get(entry["dtype"], 4) * 4
            small[name] = {"dtype": entry["dtype"], "shape": [2, 2], "data_offsets": [blob, blob + size]}
            blob += size
        h = json.dumps(small).encode()
        put("safetensors", "minilm-shrunk.safetensors", struct.pack("<Q", len(h)) + h + bytes(range(256)) * (blob // 256 + 1))

# GGUF: the committed fixture, a small file with SmolLM2's real metadata (token lists cut) and one tensor of each type.
copy("gguf", "Tests/AttendModelsTests/Fixtures/tiny_types.gguf")
def gguf_string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b
def gguf_value(t, v):
    if t == 8: return gguf_string(v)
    if t == 9:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gguf_value(et, x) for x in items)
    fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}[t]
    return struct.pack(fmt, v)
def gguf_file(kvs, tensors, alignment=32):
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += gguf_string(k) + struct.pack("<I", t) + gguf_value(t, v)
    data, offset = b"", 0
    for name, dims, ttype, raw in tensors:
        offset = (offset + alignment - 1) // alignment * alignment
        data += b"\0" * (offset - len(data))
        out += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ttype, offset)
        data += raw
        offset += len(raw)
    out += b"\0" * ((alignment - len(out) % alignment) % alignment)
    return out + data
def real_gguf_metadata(path, cut=64):
    data = read(path, 4 << 20)
    if data is None: return None
    pos = 24
    count = struct.unpack_from("<Q", data, 16)[0]
    def s():
        nonlocal pos
        n = struct.unpack_from("<Q", data, pos)[0]; pos += 8
        v = data[pos:pos + n]; pos += n
        return v
    def val(t):
        nonlocal pos
        if t == 8: return s()
        if t == 9:
            et, n = struct.unpack_from("<IQ", data, pos); pos += 12
            return (et, [val(et) for _ in range(n)])
        fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}[t]
        v = struct.unpack_from(fmt, data, pos)[0]; pos += struct.calcsize(fmt)
        return v
    kvs = []
    for _ in range(count):
        k = s().decode()
        t = struct.unpack_from("<I", data, pos)[0]; pos += 4
        v = val(t)
        if t == 9: v = (v[0], v[1][:cut])
        kvs.append((k, t, v))
    return kvs
def half(x): return struct.pack("<e", x)
blocks = {
    0: struct.pack("<32f", *[k / 8 for k in range(32)]),
    1: b"".join(half(k / 8) for k in range(32)),
    2: half(0.5) + bytes(range(16)),
    3: half(0.5) + half(-1.0) + bytes(range(16, 32)),
    8: half(0.25) + bytes((k * 7) % 256 for k in range(32)),
}
smol = real_gguf_metadata(f"{assets}/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
base = smol or [("general.architecture", 8, "llama"), ("general.alignment", 4, 32)]
tensor_list = [(f"blk.0.t{t}.weight", [32, 1], t, raw) for t, raw in blocks.items()]
put("gguf", "smollm2-metadata.gguf", gguf_file(base, tensor_list))
put("gguf", "types.gguf", gguf_file([("general.architecture", 8, "llama"), ("general.alignment", 4, 32)], tensor_list))
put("gguf", "tokenizer.gguf", gguf_file([
    ("general.architecture", 8, "llama"), ("llama.embedding_length", 4, 64), ("llama.feed_forward_length", 4, 128),
    ("llama.block_count", 4, 2), ("llama.attention.head_count", 4, 4), ("llama.attention.head_count_kv", 4, 2),
    ("llama.context_length", 4, 256), ("llama.rope.freq_base", 6, 10000.0), ("llama.attention.layer_norm_rms_epsilon", 6, 1e-5),
    ("tokenizer.ggml.model", 8, "gpt2"), ("tokenizer.ggml.pre", 8, "smollm"),
    ("tokenizer.ggml.tokens", 9, (8, ["<|endoftext|>", "H", "e", "l", "o", "He", "ll", "Hello", "\u0120", "w"])),
    ("tokenizer.ggml.merges", 9, (8, ["H e", "l l", "He ll", "Hell o"])),
    ("tokenizer.ggml.token_type", 9, (5, [3, 1, 1, 1, 1, 1, 1, 1, 1, 1])),
    ("tokenizer.ggml.bos_token_id", 4, 0), ("tokenizer.ggml.eos_token_id", 4, 0),
    ("general.nested", 9, (9, [(4, [1, 2]), (8, ["a"])])), ("general.f64", 12, 1.5), ("general.i64", 11, -3),
], [("token_embd.weight", [32, 10], 8, blocks[8] * 10)], alignment=64))

# torch: the committed checkpoints (ZIP and legacy, including refused ones), small state dicts written by torch.
for name in ["state-zip.pt", "state-legacy.pt", "nested-zip.pt", "evil-zip.pt", "expanded-huge-zip.pt"]:
    copy("torch", f"Tests/AttendTensorTests/Fixtures/torch/{name}")
    copy("zip", f"Tests/AttendTensorTests/Fixtures/torch/{name}")
if torch is not None:
    sd = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "h": torch.ones(4, dtype=torch.float16),
          "b": torch.tensor([1.5, -2.0], dtype=torch.bfloat16), "i": torch.arange(3, dtype=torch.int64),
          "t": torch.arange(12, dtype=torch.float32).reshape(3, 4).t(), "z": torch.zeros(0, 2), "m": torch.tensor([True, False])}
    for legacy in (False, True):
        buf = io.BytesIO()
        torch.save(sd, buf, _use_new_zipfile_serialization=not legacy)
        put("torch", f"dtypes-{'legacy' if legacy else 'zip'}.pt", buf.getvalue())
        if not legacy: put("zip", "dtypes-zip.pt", buf.getvalue())
    buf = io.BytesIO()
    torch.save({"state_dict": {"layer.weight": torch.randn(2, 2)}, "epoch": 3, "config": {"lr": 0.1, "name": "x"}}, buf)
    put("torch", "wrapped.pt", buf.getvalue())
    eff = f"{assets}/efficientnet-lite0/efficientnet-lite0-57934424.pth"
    if os.path.exists(eff):
        real = torch.load(eff, map_location="cpu", weights_only=True)
        small = {k: v.flatten()[:4].clone() for k, v in list(real.items())[:24]}
        buf = io.BytesIO()
        torch.save(small, buf)
        put("torch", "efficientnet-keys.pt", buf.getvalue())
# zip: deflated, stored, Zip64 and commented archives.
for name, kwargs in [("deflated.zip", dict(compression=zipfile.ZIP_DEFLATED)), ("stored.zip", dict(compression=zipfile.ZIP_STORED))]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", **kwargs) as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        z.writestr("archive/byteorder", b"little")
        z.writestr("archive/data/0", bytes(range(64)) * 4)
        z.comment = b"seed"
    put("zip", name, buf.getvalue())
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
    with z.open("big", "w", force_zip64=True) as f:
        f.write(b"a" * 3000)
put("zip", "zip64.zip", buf.getvalue())

# tokenizer.json: the committed trained tokenizer, a small byte-level one with every pre-tokenizer form, MiniLM's (WordPiece: refused).
copy("tokenizer-json", "Tests/AttendTokenizersTests/Fixtures/bpe_trained_tokenizer.json")
copy("tokenizer-json", f"{assets}/all-MiniLM-L6-v2/tokenizer.json", "minilm-wordpiece.json", 65536)
printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
symbols = [chr(b) for b in printable] + [chr(256 + n) for n in range(256 - len(printable))]
vocab = {s: i for i, s in enumerate(symbols)}
for t in ["\u0120t", "he", "\u0120the", "in", "er", "ll", "llo", "He", "Hello", "\u0120w", "or", "ld", "\u0120world"]:
    vocab.setdefault(t, len(vocab))
merges = ["\u0120 t", "h e", "\u0120t he", "i n", "e r", "l l", "ll o", "H e", "He llo", "\u0120 w", "o r", "l d", "\u0120w or"]
byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
for name, pre, merge_form in [("gpt2.json", byte_level, "string"),
                              ("digits.json", {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level]}, "pair"),
                              ("sequence.json", {"type": "Sequence", "pretokenizers": [byte_level]}, "string")]:
    tj = {"version": "1.0", "added_tokens": [{"id": len(vocab), "content": "<|endoftext|>", "special": True},
                                             {"id": len(vocab) + 1, "content": "<|im_start|>", "special": True}],
          "pre_tokenizer": pre, "model": {"type": "BPE", "vocab": vocab,
                                          "merges": merges if merge_form == "string" else [m.split(" ") for m in merges]}}
    put("tokenizer-json", name, json.dumps(tj, ensure_ascii=False))

# vocab.txt: MiniLM's first 1,200 lines (the special tokens and common words) and a random sample of the rest.
v = read(f"{assets}/all-MiniLM-L6-v2/vocab.txt")
if v is not None:
    all_lines = v.decode().split("\n")
    put("vocab-txt", "minilm-head.txt", "\n".join(all_lines[:1200]) + "\n")
    put("vocab-txt", "minilm-sample.txt", "\n".join(all_lines[:110] + random.sample(all_lines[110:], 2000)) + "\n")
    put("vocab-txt", "minilm-crlf.txt", "\r\n".join(all_lines[:300]) + "\r\n")
put("vocab-txt", "tiny.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##lo\nworld\n,\n!\nit\n'\ns\n")

# merges.txt: GPT-2 style (from the same symbols as above) and CLIP's first merges.
put("merges-txt", "gpt2-merges.txt", "#version: 0.2\n" + "\n".join(merges) + "\n")
m = lines(f"{assets}/clip-bpe/bpe_simple_vocab_16e6.txt.gz", 2000)
if m is not None:
    put("merges-txt", "clip-head.txt", m)

# tiktoken: GPT-2's ranks, the first 2,000 lines and a sample.
t = read(f"{assets}/gpt2-tiktoken/gpt2.tiktoken")
if t is not None:
    tl = t.split(b"\n")
    put("tiktoken", "gpt2-head.tiktoken", b"\n".join(tl[:2000]) + b"\n")
    put("tiktoken", "gpt2-sample.tiktoken", b"\n".join(tl[:256] + random.sample(tl[256:-1], 1000)) + b"\n")

# word2vec: the committed gensim vectors (text and binary) and small files of both formats.
copy("word2vec-text", "Tests/AttendEmbeddingsTests/Fixtures/gensim_vectors.txt")
copy("word2vec-binary", "Tests/AttendEmbeddingsTests/Fixtures/gensim_vectors.bin")
words = ["the", "of", "and", "caf\u00e9", "\u6771\u4eac", "x"]
put("word2vec-text", "small.txt", f"{len(words)} 3\n" + "".join(f"{w} {i * 0.5} -{i} 1e-3\n" for i, w in enumerate(words)))
put("word2vec-binary", "small.bin", f"{len(words)} 3\n".encode() + b"".join(w.encode() + b" " + struct.pack("<3f", i, -i, 0.25) + b"\n" for i, w in enumerate(words)))
put("word2vec-text", "small.bin", f"{len(words)} 3\n".encode() + b"".join(w.encode() + b" " + struct.pack("<3f", i, -i, 0.25) + b"\n" for i, w in enumerate(words)))

# edge lists and labels: Zachary's karate club (committed), weighted, commented, CSV.
copy("edge-list", "Tests/AttendEmbeddingsTests/Fixtures/karate.edges")
copy("node-labels", "Tests/AttendEmbeddingsTests/Fixtures/karate.labels")
put("edge-list", "weighted.edges", "# a comment\na b 0.5\nb c 2\r\nc a 1e-3\n\nd\td\t3\n")
put("edge-list", "csv.edges", "1,2\n2,3,4.5\n3,1\n")
put("node-labels", "multi.labels", "# node labels\na x y\nb y\r\nc z\na w\n")

# WordNet's data.noun: the licence header and synsets around the ImageNet classes (Debian's wordnet-base), when installed.
wn = read("/usr/share/wordnet/data.noun")
if wn is not None:
    lines = wn.split(b"\n")
    put("wordnet-nouns", "head.noun", b"\n".join(lines[:80]) + b"\n")
    put("wordnet-nouns", "dogs.noun", b"\n".join(l for l in lines if l[:8] in (b"00001740", b"02084071", b"02109047", b"02121808", b"02124075")) + b"\n")
put("wordnet-nouns", "tiny.noun", "  1 licence\n00000001 03 n 01 entity 0 000 | x\n00000002 05 n 02 dog 0 domestic_dog 0 002 @ 00000001 n 0000 ~ 00000003 n 0000 | y\n00000003 05 n 01 Great_Dane 0 001 @i 00000002 n 0000 | z\n")

# IDX: scikit-learn's digits as IDX arrays (images [100, 8, 8] and labels [100]), plain and gzip-compressed.
d = read(f"{assets}/scikit-learn-data/digits.csv.gz")
if d is not None:
    rows = [r.split(",") for r in gzip.decompress(d).decode().split("\n") if r.strip()][:100]
    images = struct.pack(">BBBBIII", 0, 0, 8, 3, len(rows), 8, 8) + bytes(int(c) * 15 for r in rows for c in r[:64])
    labels = struct.pack(">BBBBI", 0, 0, 8, 1, len(rows)) + bytes(int(r[64]) for r in rows)
    put("idx", "digits-images-idx3-ubyte", images)
    put("idx", "digits-labels-idx1-ubyte", labels)
    put("idx", "digits-images-idx3-ubyte.gz", gzip.compress(images))
    put("idx", "digits-labels-idx1-ubyte.gz", gzip.compress(labels))
put("idx", "rank4-idx", struct.pack(">BBBBIIII", 0, 0, 8, 4, 2, 1, 2, 3) + bytes(range(12)))

# PNG and JPEG: the committed small images and scikit-image's photos made small in every mode the decoders handle.
import glob
for p in sorted(glob.glob("Tests/AttendVisionTests/Fixtures/*.png")):
    copy("png", p)
for p in sorted(glob.glob("Tests/AttendVisionTests/Fixtures/*.jpg")):
    if os.path.getsize(p) <= 16384: copy("jpeg", p)
if Image is not None:
    photos = [p for p in [f"{assets}/scikit-image-data/chelsea.png", f"{assets}/scikit-image-data/camera.png",
                          f"{assets}/scikit-image-data/logo.png", f"{assets}/scikit-image-data/rocket.jpg"] if os.path.exists(p)]
    for p in photos:
        stem = os.path.splitext(os.path.basename(p))[0]
        im = Image.open(p)
        im.load()
        small = im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") else "RGB").resize((24, 16))
        for mode in ["RGB", "RGBA", "L", "LA", "P", "1"]:
            b = io.BytesIO(); small.convert(mode).save(b, "PNG"); put("png", f"{stem}-{mode}.png", b.getvalue())
        b = io.BytesIO(); small.convert("L").save(b, "PNG", interlace=1); put("png", f"{stem}-interlaced.png", b.getvalue())
        b = io.BytesIO(); small.convert("I;16").save(b, "PNG"); put("png", f"{stem}-16.png", b.getvalue())
        rgb = small.convert("RGB")
        for q, prog in [(90, False), (30, True)]:
            b = io.BytesIO(); rgb.save(b, "JPEG", quality=q, progressive=prog); put("jpeg", f"{stem}-q{q}{'-progressive' if prog else ''}.jpg", b.getvalue())
        b = io.BytesIO(); rgb.convert("L").save(b, "JPEG", quality=75); put("jpeg", f"{stem}-grey.jpg", b.getvalue())
        b = io.BytesIO(); rgb.convert("CMYK").save(b, "JPEG", quality=75); put("jpeg", f"{stem}-cmyk.jpg", b.getvalue())
        b = io.BytesIO(); rgb.save(b, "JPEG", quality=75, subsampling=0); put("jpeg", f"{stem}-444.jpg", b.getvalue())

# OpenAI request bodies: every endpoint's fields, including JSON-schema response formats from the committed cases.
bodies = [
    {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "max_tokens": 16,
     "temperature": 0.7, "top_p": 0.9, "seed": 42, "stop": ["\n", "END"], "presence_penalty": 0.5, "frequency_penalty": -0.5, "n": 1, "stream": False},
    {"model": "m", "messages": [{"role": "developer", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                                {"role": "assistant", "content": None}, {"role": "user", "content": "x"}],
     "logprobs": True, "top_logprobs": 5, "max_completion_tokens": 8, "response_format": {"type": "json_object"}},
    {"model": "m", "prompt": "Once upon a time", "max_tokens": 4, "stop": "\n", "temperature": 0},
    {"model": "e", "input": ["one", "two"], "encoding_format": "base64"},
    {"model": "e", "input": "one"},
    {"model": "m", "messages": [{"role": "user", "content": "Q"}], "answer": "A", "layer": -1, "head": 1},
    {"model": "m", "messages": [{"role": "user", "content": "Q"}], "seed": 9223372036854775807, "max_tokens": 2147483647},
]
cases = read("Tests/AttendModelsTests/Fixtures/json_schema_cases.json")
if cases is not None:
    for c in json.loads(cases)[:12]:
        schema = json.loads(c["schema"]) if isinstance(c.get("schema"), str) else c.get("schema")
        if schema is not None:
            bodies.append({"model": "m", "messages": [{"role": "user", "content": "json"}],
                           "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
for i, b in enumerate(bodies):
    put("openai-request", f"body-{i:02d}.json", json.dumps(b, ensure_ascii=False))

# Model configs: the committed tiny models' config.json files, MiniLM's, a LoRA adapter's, and the shipped models' metadata.
for p in ["Tests/AttendModelsTests/Fixtures/tiny-llama/config.json", "Tests/AttendModelsTests/Fixtures/tiny-gpt2/config.json",
          "Tests/AttendModelsTests/Fixtures/tiny-opt/config.json", "Tests/AttendModelsTests/Fixtures/tiny-llama-lora/adapter_config.json",
          f"{assets}/all-MiniLM-L6-v2/config.json"]:
    copy("model-config", p, p.replace("/", "_").replace(".cache_assets_", "").replace("Tests_AttendModelsTests_Fixtures_", ""))
for p in ["models/clip.safetensors", "models/draw.safetensors", "models/vlm.safetensors"]:
    data = read(p, 1 << 16)
    if data is None: continue
    n = struct.unpack("<Q", data[:8])[0]
    if n + 8 > len(data): continue
    meta = json.loads(data[8:8 + n]).get("__metadata__", {})
    for k, v in meta.items():
        if k.endswith("config") and v.startswith("{"):
            put("model-config", f"{os.path.basename(p)}-{k}.json", v)

open(os.path.join(out, ".complete"), "w").write("seeds\n")
for t in sorted(os.listdir(out)):
    if os.path.isdir(os.path.join(out, t)):
        print(f"  {t}: {len(os.listdir(os.path.join(out, t)))} seeds", file=sys.stderr)
PY
fi

# MARK: Runs
REGRESSIONS=Tests/AttendFuzzingTests/Regressions
RESULTS=.cache/fuzz-results
mkdir -p "$RESULTS"
[ "$TARGET" = all ] && targets=$ALL_TARGETS || targets=$TARGET
SUMMARY=$RESULTS/summary.tsv
[ -f "$SUMMARY" ] || printf 'target\tinputs\tseconds\texec_per_s\tcov\tft\tpeak_rss_mb\tcrashes\tmax_len\tfinished\n' > "$SUMMARY"
status=0
for t in $targets; do
  case " $ALL_TARGETS " in *" $t "*) ;; *) echo "fuzz.sh: unknown target '$t' (targets: $ALL_TARGETS)" >&2; exit 64 ;; esac
  corpus=.cache/fuzz-corpus/$t
  artifacts=.cache/fuzz-artifacts/$t
  mkdir -p "$corpus" "$artifacts" "$SEEDS/$t"
  log=$RESULTS/$t.log
  len=$(max_len "$t")
  echo "== $t: up to $RUNS inputs or $SECONDS_CAP s, max_len $len" >&2
  start=$(date +%s)
  # detect_leaks=0: LeakSanitizer at exit reports the Swift runtime's never-freed metadata caches, not parser bugs.
  # SWIFT_BACKTRACE=enable=no: Swift's crash backtracer reads the crashed process's memory in a way AddressSanitizer
  # reports as a crash of its own; libFuzzer's handler then reports the trap (after Swift's "Fatal error" line).
  ATTEND_FUZZ_TARGET=$t SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1} \
    "$BIN" -runs="$RUNS" -max_total_time="$SECONDS_CAP" -rss_limit_mb=1024 -malloc_limit_mb=1024 -timeout=20 \
      -max_len="$len" -print_final_stats=1 -artifact_prefix="$artifacts/" \
      "$corpus" "$SEEDS/$t" > "$log" 2>&1
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  inputs=$(grep -a '^stat::number_of_executed_units:' "$log" | tail -1 | awk '{print $2}')
  speed=$(grep -a '^stat::average_exec_per_sec:' "$log" | tail -1 | awk '{print $2}')
  rss=$(grep -a '^stat::peak_rss_mb:' "$log" | tail -1 | awk '{print $2}')
  cov=$(grep -ao 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  ft=$(grep -ao 'ft: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  [ -n "$rss" ] || rss=$(grep -ao 'rss: [0-9]*Mb' "$log" | tail -1 | tr -dc 0-9)
  found=0
  for f in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/oom-* "$artifacts"/timeout-* "$artifacts"/slow-unit-*; do
    [ -f "$f" ] || continue
    case "$f" in *slow-unit-*) continue ;; esac
    mkdir -p "$REGRESSIONS/$t"
    cp "$f" "$REGRESSIONS/$t/$(basename "$f")"
    found=$((found + 1))
  done
  finished=yes
  if [ $rc -ne 0 ]; then finished="no (exit $rc)"; status=1; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "${inputs:-?}" "$elapsed" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${rss:-?}" "$found" "$len" "$finished" >> "$SUMMARY"
  printf '%-16s inputs %-9s %5ss  exec/s %-6s cov %-6s ft %-7s peak RSS %s MB  crashes %s  %s\n' \
    "$t" "${inputs:-?}" "$elapsed" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${rss:-?}" "$found" "$finished"
  if [ $rc -ne 0 ]; then
    echo "   see $log; the input is in $REGRESSIONS/$t/ (replay: ATTEND_FUZZ_TARGET=$t $BIN FILE)" >&2
    grep -a -m3 -E 'ERROR: |Fatal error|SUMMARY' "$log" | sed 's/^/   /' >&2
  fi
  rm -rf "$artifacts"
done
exit $status
