#!/usr/bin/env bash
# The multimodal LM on `attend draw`'s pictures: each Fashion-MNIST class drawn from three prompts, then described by
# `attend vlm evaluate` (a description counts when it names the class, any of its names, and no other class).
# Usage: Benchmarks/vlm-drawings.sh [PROJECTOR] [vlm evaluate options, e.g. --json]   (default models/vlm.safetensors)
set -euo pipefail
cd "$(dirname "$0")/.."
projector=${1:-models/vlm.safetensors}
scripts/fetch-assets.sh efficientnet-lite0 all-MiniLM-L6-v2 SmolLM2-135M-Instruct imagenet-labels >/dev/null
swift build -c release --product attend >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The names ClassCaptions.fashionMNIST gives each class (Sources/AttendModels/CLIPData.swift).
classes=("t-shirt|top|tee shirt" "pair of trousers|pair of pants|pair of jeans" "pullover|sweater|jumper"
         "dress|summer dress" "coat|jacket" "sandal|strappy sandal" "shirt|button-up shirt|blouse"
         "sneaker|running shoe|trainer shoe" "bag|handbag|purse" "ankle boot|short boot")
for names in "${classes[@]}"; do
  IFS='|' read -r first second _ <<<"$names"
  for prompt in "a $first" "a photo of a $first" "a $second"; do
    file="$work/$(echo "$prompt" | tr ' ' '_').png"
    .build/release/attend draw "$prompt" -o "$file" >/dev/null
    printf '%s\t%s\n' "$file" "$names" >>"$work/drawings.tsv"
  done
done
.build/release/attend vlm evaluate --projector "$projector" --data "$work/drawings.tsv" "${@:2}" 2>/dev/null
