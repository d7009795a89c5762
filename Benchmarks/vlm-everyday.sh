#!/usr/bin/env bash
# The multimodal LM on everyday photos: for each TSV (image path TAB the names a description may use, separated by |),
# the share of descriptions that name the photo's thing and no other (`attend vlm evaluate --data`), beside
#   - the ImageNet classifier alone (EfficientNet-Lite0's own head, `attend classify`): its most likely class counts
#     when one of that class's names is one of the photo's (whole words); the classifier's words are what the
#     projector gives the LM about the whole picture, so this is what the projector can name without captions;
#   - the shipped CLIP model's zero-shot choice among the TSV's things (`attend clip classify`, each thing's first
#     name, "a photo of a {}"): an easier task, a choice among a few, not a name out of all words;
# and how many descriptions name the classifier's top class (any of its names, whole words): whether the LM says what
# its image encoder sees, right or wrong, rather than words of its own.
# Usage: Benchmarks/vlm-everyday.sh [PROJECTOR] [TSV...]
#   (defaults: models/vlm.safetensors, Benchmarks/data/everyday-photos.tsv Benchmarks/data/more-everyday-photos.tsv)
set -euo pipefail
cd "$(dirname "$0")/.."
projector=${1:-models/vlm.safetensors}
tsvs=("${@:2}")
[ ${#tsvs[@]} -gt 0 ] || tsvs=(Benchmarks/data/everyday-photos.tsv Benchmarks/data/more-everyday-photos.tsv)
scripts/fetch-assets.sh efficientnet-lite0 all-MiniLM-L6-v2 SmolLM2-135M-Instruct imagenet-labels clip-bpe >/dev/null
swift build -c release --product attend >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for tsv in "${tsvs[@]}"; do
  Benchmarks/everyday-tsv.sh "$tsv" >"$work/photos.tsv"
  echo "== $tsv ($(wc -l <"$work/photos.tsv") photos)"
  .build/release/attend vlm evaluate --projector "$projector" --data "$work/photos.tsv" --max-tokens 16 --json 2>/dev/null >"$work/vlm.json"
  cut -f1 "$work/photos.tsv" | xargs .build/release/attend classify --json --top 1 >"$work/classifier.jsonl" 2>/dev/null
  labels=$(cut -f2 "$work/photos.tsv" | cut -d'|' -f1 | paste -sd,)
  cut -f1 "$work/photos.tsv" | xargs .build/release/attend clip classify --json --labels "$labels" >"$work/clip.jsonl" 2>/dev/null
  python3 - "$work/photos.tsv" "$work/classifier.jsonl" "$work/clip.jsonl" "$work/vlm.json" "$projector" <<'PY'
import json, re, sys
tsv, classifier, clip, vlm, projector = sys.argv[1:6]
rows = [line.rstrip("\n").split("\t") for line in open(tsv) if line.strip()]
names = {path: [n.lower() for n in synonyms.split("|")] for path, synonyms in rows}
def words(text):
    return " " + re.sub(r"[^a-z0-9-]+", " ", text.lower()) + " "
top = {r["file"]: r["classes"][0]["label"] for r in map(json.loads, open(classifier))}
right = [p for p, label in top.items() if any(f" {n} " in words(label) for n in names[p])]
seeing = json.load(open(vlm))["with_image"]
said = [text for _, text in seeing["samples"]]
print(f"multimodal LM ({projector}): {round(seeing['accuracy'] * len(rows))} of {len(rows)} name the photo's thing")
print(f"the ImageNet classifier alone: {len(right)} of {len(rows)}")
faithful = 0
for (path, _), text in zip(rows, said):
    classes = [n.strip() for n in top[path].split(",")]
    says = any(f" {words(n).strip()} " in words(text) for n in classes)
    faithful += says
    print(f"  [{names[path][0]}] LM: {text!r}; classifier: {top[path]}{'  (right)' if path in right else ''}"
          f"{'  (the LM says it)' if says else ''}")
print(f"descriptions naming the classifier's top class: {faithful} of {len(said)}")
choice = {r["file"]: r["labels"][0]["label"] for r in map(json.loads, open(clip))}
right = sum(choice[p] == names[p][0] for p, _ in rows)
print(f"the shipped CLIP, zero-shot among the {len(rows)} things: {right} of {len(rows)}")
PY
done
