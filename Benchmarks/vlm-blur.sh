#!/usr/bin/env bash
# The multimodal LM on blurred Fashion-MNIST test pictures: the first N test pictures blurred by Pillow's
# GaussianBlur (an independent blur, not Attend's) at each radius, each set scored by `attend vlm evaluate` (a
# description counts when it names the class, any of its names, and no other class), beside the shipped CLIP's
# zero-shot accuracy on the same pictures (`attend clip classify`, each class's first name with the three prompt
# templates `attend clip evaluate` uses). Radius 0 is the sharp picture.
# Usage: Benchmarks/vlm-blur.sh [PROJECTOR] [N] [RADII...]   (defaults: models/vlm.safetensors, 200, 0 1 1.5 2)
# Runs Benchmarks/setup-peers.sh first (the venv with Pillow and numpy).
set -euo pipefail
cd "$(dirname "$0")/.."
projector=${1:-models/vlm.safetensors}
count=${2:-200}
radii=("${@:3}")
[ ${#radii[@]} -gt 0 ] || radii=(0 1 1.5 2)
Benchmarks/setup-peers.sh
scripts/fetch-assets.sh efficientnet-lite0 all-MiniLM-L6-v2 SmolLM2-135M-Instruct imagenet-labels clip-bpe >/dev/null
swift build -c release --product attend >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.cache/venv/bin/python - "$work" "$count" "${radii[@]}" <<'PY'
import gzip, sys
import numpy as np
from PIL import Image, ImageFilter
work, count, radii = sys.argv[1], int(sys.argv[2]), [float(r) for r in sys.argv[3:]]
root = "/usr/share/datasets/fashion-mnist/"
images = np.frombuffer(gzip.open(root + "t10k-images-idx3-ubyte.gz").read()[16:], np.uint8).reshape(-1, 28, 28)
labels = np.frombuffer(gzip.open(root + "t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)
# The names ClassCaptions.fashionMNIST gives each class (Sources/AttendModels/CLIPData.swift).
names = ["t-shirt|top|tee shirt", "pair of trousers|pair of pants|pair of jeans", "pullover|sweater|jumper",
         "dress|summer dress", "coat|jacket", "sandal|strappy sandal", "shirt|button-up shirt|blouse",
         "sneaker|running shoe|trainer shoe", "bag|handbag|purse", "ankle boot|short boot"]
for r in radii:
    with open(f"{work}/blur-{r:g}.tsv", "w") as tsv:
        for i in range(count):
            picture = Image.fromarray(images[i])
            if r > 0:
                picture = picture.filter(ImageFilter.GaussianBlur(r))
            path = f"{work}/{r:g}-{i}.png"
            picture.save(path)
            tsv.write(f"{path}\t{names[labels[i]]}\n")
PY
labels="a t-shirt,a pair of trousers,a pullover,a dress,a coat,a sandal,a shirt,a sneaker,a bag,an ankle boot"
for r in "${radii[@]}"; do
  tsv=$(printf '%s/blur-%g.tsv' "$work" "$r")
  printf 'radius %s: multimodal LM: ' "$r"
  .build/release/attend vlm evaluate --projector "$projector" --data "$tsv" 2>/dev/null | head -1
  cut -f1 "$tsv" | xargs .build/release/attend clip classify --json --labels "$labels" --template "a photo of {}" --template "{}" \
    --template "a black and white photo of {}" 2>/dev/null >"$work/clip.jsonl"
  python3 - "$tsv" "$work/clip.jsonl" "$labels" <<'PY'
import json, sys
tsv, answers, labels = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
truth = {line.split("\t")[0]: line.split("\t")[1].split("|")[0] for line in open(tsv) if line.strip()}
first = {label.split(" ", 1)[1]: label for label in labels}   # "pair of trousers" -> "a pair of trousers"
rows = [json.loads(line) for line in open(answers)]
right = sum(row["labels"][0]["label"] == first[truth[row["file"]]] for row in rows)
print(f"   CLIP zero-shot: {right} of {len(rows)} ({100 * right / len(rows):.1f}%)")
PY
done
