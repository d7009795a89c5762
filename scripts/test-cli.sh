#!/usr/bin/env bash
# The command line as a user meets it, for the picture commands (clip, describe, vlm): the shipped models answer
# for real pictures, and bad input of every kind gets a message naming what is wrong and a non-zero exit, never a
# trap (exit codes of 128 and above, signals, fail).
#   scripts/test-cli.sh [path/to/attend]   (default .build/debug/attend)
set -euo pipefail
cd "$(dirname "$0")/.."
attend="${1:-.build/debug/attend}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
photos=.cache/assets/scikit-image-data

# expect_error "text the message must hold" command...
expect_error() {
  local want="$1"; shift
  set +e
  "$@" >"$work/out" 2>"$work/err"
  local code=$?
  set -e
  if [ "$code" -eq 0 ] || [ "$code" -ge 128 ] || ! grep -qF -- "$want" "$work/err" "$work/out"; then
    echo "FAIL (exit $code, wanted a message with '$want'): $*"; sed 's/^/    /' "$work/err" | head -5
    failures=$((failures + 1))
  else
    echo "ok: $want"
  fi
}

# expect_output "text stdout must hold" command...
expect_output() {
  local want="$1"; shift
  if "$@" >"$work/out" 2>"$work/err" && grep -qF -- "$want" "$work/out"; then echo "ok: $want"; else
    echo "FAIL (wanted '$want' in the output): $*"; sed 's/^/    /' "$work/out" "$work/err" | head -8
    failures=$((failures + 1))
  fi
}

clip=models/clip.safetensors
printf 'not a picture' >"$work/fake.png"
printf 'x' >"$work/one.txt"
printf '%s\t%s\n' "$PWD/$photos/coffee.png" "a cup of coffee" "$work/missing.png" "a ghost" >"$work/pairs.tsv"
printf '%s\n' "$photos/coffee.png" >"$work/one-column.tsv"

# Zero-shot classification: probabilities that sum to one, a region map PNG.
expect_output '"labels"' "$attend" clip classify --model $clip --labels "coffee,cat,boot" --json "$photos/coffee.png"
expect_output "wrote $work/where.png" "$attend" clip classify --model $clip --labels "ankle boot,bag" --explain "$work/where.png" "$photos/coffee.png"
test -s "$work/where.png" && echo "ok: the region map is written" || { echo "FAIL: no region map"; failures=$((failures + 1)); }
expect_output "wrote $work/m.png" "$attend" clip matrix --model $clip --captions "a bag|a cup" -o "$work/m.png" "$photos/coffee.png" "$photos/chelsea.png"
expect_output ".png" "$attend" clip search --model $clip --images "$photos" --top 2 "a dark ankle boot"

# A codec warm start (attend ae train --from) reads only a codec, and never writes over it; then it trains for real.
expect_error "not an Attend compression model" "$attend" ae train "$photos/coffee.png" --from $clip -o "$work/c.safetensors" --steps 1
expect_error "the output would overwrite an input" "$attend" ae train "$photos/coffee.png" --from models/compression-0.0035.safetensors -o models/compression-0.0035.safetensors --steps 1
expect_output "lambda 0.02:" "$attend" ae train "$photos/coffee.png" --from models/compression-0.0035.safetensors -o "$work/c.safetensors" --lambda 0.02 --steps 2 --patch 32
expect_output "c                          " "$attend" ae evaluate "$work/c.safetensors" --images "$photos/chelsea.png"

# Bad input: labels, templates, files, checkpoints, options.
expect_error "--labels: an empty label" "$attend" clip classify --model $clip --labels "a,,b" "$photos/coffee.png"
expect_error "--labels: give at least one label" "$attend" clip classify --model $clip --labels " " "$photos/coffee.png"
expect_error "has no {} for the label" "$attend" clip classify --model $clip --labels "a,b" --template "a photo" "$photos/coffee.png"
expect_error "fake.png" "$attend" clip classify --model $clip --labels "a,b" "$work/fake.png"
expect_error "clip_config' is missing" "$attend" clip classify --model models/compression-0.05.safetensors --labels "a,b" "$photos/coffee.png"
expect_error "one.txt" "$attend" clip classify --model "$work/one.txt" --labels "a,b" "$photos/coffee.png"
expect_error "--explain takes one picture" "$attend" clip classify --model $clip --labels "a,b" --explain "$work/x.png" "$photos/coffee.png" "$photos/chelsea.png"
expect_error "the output would overwrite an input" "$attend" clip classify --model $clip --labels "a,b" --explain "$photos/coffee.png" "$photos/coffee.png"
expect_error "missing.png" "$attend" clip train --data "$work/pairs.tsv" -o "$work/m.safetensors"
expect_error "one-column.tsv" "$attend" clip train --data "$work/one-column.tsv" -o "$work/m.safetensors"
expect_error "text tower is all-MiniLM-L6-v2, but --text-tower says transformer" "$attend" clip train --initialize $clip --text-tower transformer --limit 10 --steps 1 -o "$work/m.safetensors"
expect_error "'hat' is not a fashion-mnist class" "$attend" clip train --exclude "hat" -o "$work/m.safetensors"
expect_error "--batch-size must be 2...65536, got 1" "$attend" clip train --batch-size 1 --limit 10 -o "$work/m.safetensors"
expect_error "--image-size must be 32...1024" "$attend" clip train --image-size 8 -o "$work/m.safetensors"
expect_error "--image-size must be 4...1024 and a multiple of --patch-size 7" "$attend" clip train --image-tower vit --image-size 30 -o "$work/m.safetensors"
expect_error "--vision-heads must be 1...64 and divide --vision-width 128" "$attend" clip train --image-tower vit --vision-heads 3 -o "$work/m.safetensors"
expect_error "--photos (distillation from the ImageNet classifier) needs --image-tower efficientnet-lite0" "$attend" clip train --image-tower vit --photos "$photos/coffee.png" -o "$work/m.safetensors"
expect_error "image tower is efficientnet-lite0, but --image-tower says vit" "$attend" clip train --initialize $clip --image-tower vit --limit 10 --steps 1 -o "$work/m.safetensors"
expect_error "--unlock-image-tower is for efficientnet-lite0; the vit tower always trains" "$attend" clip train --image-tower vit --unlock-image-tower -o "$work/m.safetensors"
expect_error "needs the image tower locked; leave out --unlock-image-tower" "$attend" clip train --unlock-image-tower --photos "$photos/coffee.png" -o "$work/m.safetensors"
expect_error "--unlock-text-tower is for minilm; the transformer tower always trains" "$attend" clip train --text-tower transformer --unlock-text-tower -o "$work/m.safetensors"
expect_error "needs the text tower locked; leave out --unlock-text-tower" "$attend" clip train --unlock-text-tower --photos "$photos/coffee.png" -o "$work/m.safetensors"
expect_error "--wordnet (the classes' general kinds) needs --photos" "$attend" clip train --wordnet /usr/share/wordnet/data.noun -o "$work/m.safetensors"
expect_error "leave out --no-prototypes" "$attend" clip train --photos "$photos/coffee.png" --no-prototypes --wordnet /usr/share/wordnet/data.noun -o "$work/m.safetensors"
printf '  1 licence\n00000001 03 n 01 entity 0 000 | x\n0002 05 n 01 dog 0 000 | y\n' > "$work/bad.noun"
expect_error "$work/bad.noun:3: expected a synset line" "$attend" clip train --limit 16 --steps 1 --photos "$photos/coffee.png" --crops-per-photo 2 --wordnet "$work/bad.noun" -o "$work/m.safetensors"
printf '00000001 03 n 01 entity 0 000 | x\n' > "$work/tiny.noun"
expect_error "ImageNet class 0 (n01440764) is not a noun synset of the WordNet file" "$attend" clip train --limit 16 --steps 1 --photos "$photos/coffee.png" --crops-per-photo 2 --wordnet "$work/tiny.noun" -o "$work/m.safetensors"
expect_output "456 general kinds" "$attend" clip train --limit 16 --batch-size 8 --steps 2 --photos "$photos/coffee.png" --crops-per-photo 2 --wordnet /usr/share/wordnet/data.noun -o "$work/kinds.safetensors"
expect_error "would hold 8.2 GiB (at most 8)" "$attend" clip train --unlock-image-tower --image-size 192 --limit 20000 --steps 1 -o "$work/m.safetensors"
# The shipped LiT model with its image tower unlocked: one step of fine-tuning writes a model that answers.
expect_output "wrote $work/unlocked.safetensors" "$attend" clip train --initialize $clip --unlock-image-tower --limit 32 --batch-size 16 --steps 1 --learning-rate 1e-4 -o "$work/unlocked.safetensors"
expect_output '"labels"' "$attend" clip classify --model "$work/unlocked.safetensors" --labels "a bag,a coat" --json "$photos/coffee.png"
# The training-step benchmark runs with either image tower (cached features stand for the locked one).
expect_output "   32     4" "$attend" bench clip-step --batch-sizes 4 --widths 32 --repeats 1
expect_output "   32     4" "$attend" bench clip-step --image-tower vit --batch-sizes 4 --widths 32 --repeats 1
# A CLIP wholly from scratch (ViT and text Transformer) trains and answers without the EfficientNet file.
expect_output "wrote $work/vit.safetensors" "$attend" clip train --image-tower vit --text-tower transformer --limit 64 --steps 2 --batch-size 32 --vision-width 32 --vision-layers 1 --vision-heads 1 --efficientnet "$work/none.pth" -o "$work/vit.safetensors"
expect_output '"labels"' "$attend" clip classify --model "$work/vit.safetensors" --efficientnet "$work/none.pth" --labels "a bag,a coat" --json --explain "$work/vit-where.png" "$photos/coffee.png"
expect_error "--learning-rate must be in (0, 1]" "$attend" clip train --learning-rate nan -o "$work/m.safetensors"
expect_error "--steps must be 1...10000000" "$attend" clip train --steps 0 -o "$work/m.safetensors"
expect_error "--limit must be at least 1" "$attend" clip train --limit 0 -o "$work/m.safetensors"
expect_error "--output must end in .safetensors" "$attend" clip train -o "$work/m.bin"
expect_error "is more than 200,000 crops" "$attend" clip train --photos "$photos/coffee.png" "$photos/chelsea.png" "$photos/rocket.jpg" --crops-per-photo 100000 --limit 10 --steps 1 -o "$work/m.safetensors"
expect_error "--photos: $work/none: no such file or folder" "$attend" clip train --photos "$work/none" --limit 10 --steps 1 -o "$work/m.safetensors"
expect_error "--captions: an empty caption" "$attend" clip matrix --model $clip --captions "a||b" -o "$work/m.png" "$photos/coffee.png"
expect_error "not a folder" "$attend" clip search --model $clip --images "$work/one.txt" "a bag"
expect_error "--data must be fashion-mnist or digits" "$attend" clip evaluate --model $clip --data "$work/pairs.tsv"

# Drawing from text.
expect_output "wrote $work/boot.png" "$attend" draw "an ankle boot" -o "$work/boot.png"
test -s "$work/boot.png" && echo "ok: the drawing is written" || { echo "FAIL: no drawing"; failures=$((failures + 1)); }
expect_error "give a non-empty text" "$attend" draw " " -o "$work/x.png"
expect_error "draw_config' is missing" "$attend" draw --decoder $clip "a bag" -o "$work/x.png"
expect_error "--output must end in .png" "$attend" draw "a bag" -o "$work/x.jpg"

# The multimodal LM.
expect_output "coffee" "$attend" describe --max-tokens 8 "$photos/coffee.png"
expect_error "--prompt must hold <image> once" "$attend" describe --prompt "What is this?" "$photos/coffee.png"
expect_error "fake.png" "$attend" describe "$work/fake.png"
expect_error "vlm_config' is missing" "$attend" describe --projector $clip "$photos/coffee.png"
expect_error "--max-tokens must be 1...2048" "$attend" describe --max-tokens 0 "$photos/coffee.png"
expect_error "--image-size must be a multiple of 32" "$attend" vlm train --image-size 100 -o "$work/p.safetensors"
expect_error "--data must be fashion-mnist or digits" "$attend" vlm train --data "$work/pairs.tsv" -o "$work/p.safetensors"
expect_error "--variants must be 1...1000" "$attend" vlm train --variants 0 -o "$work/p.safetensors"
expect_error "--sharpness must be in (0, 100]" "$attend" vlm train --classifier-words --sharpness 0 -o "$work/p.safetensors"
expect_error "--whole-picture-size must be 32...1024" "$attend" vlm train --whole-picture-size 16 -o "$work/p.safetensors"
expect_error "give --classifier-words too" "$attend" vlm train --sharpness 2 -o "$work/p.safetensors"
expect_error "give --captioned too" "$attend" vlm train --backgrounds "$photos/coffee.png" -o "$work/p.safetensors"
expect_error "give --blurred too" "$attend" vlm train --max-blur 3 -o "$work/p.safetensors"
expect_error "--max-blur must be 0.5...10" "$attend" vlm train --blurred 2 --max-blur 0.2 -o "$work/p.safetensors"
expect_error "--blurred 9 is more than the 4 pictures" "$attend" vlm train --limit 4 --blurred 9 --steps 1 -o "$work/p.safetensors"
mkdir -p "$work/stamps/none" "$work/stamps/some"
cp "$photos/coffee.png" "$work/stamps/none/cup.png"
expect_error "with a caption file" "$attend" vlm train --limit 4 --steps 1 --captioned "$work/stamps/none" -o "$work/p.safetensors"
expect_error "--backgrounds: $work/nowhere: no such file" "$attend" vlm train --limit 4 --steps 1 --captioned "$work/stamps/none" --backgrounds "$work/nowhere" -o "$work/p.safetensors"
cp "$photos/coffee.png" "$work/stamps/some/cup.png"
printf 'A cup of coffee. Hot.\nfr.utf8=Une tasse.\n' > "$work/stamps/some/cup.txt"
# A softmax projector started from the classifier, trained 2 steps on 4 garments and a captioned picture, then scored
# on pictures named by a TSV.
expect_output "4 captioned pictures (1 files x 4 variants)" "$attend" vlm train --classifier-words --limit 4 --steps 2 --batch-size 2 --captioned "$work/stamps/some" -o "$work/p.safetensors"
# Trained on from that projector: with its settings, and refused without them or over its own file.
expect_output "3 blurred copies (Gaussian, standard deviation 0.5-3.0 pixels)" "$attend" vlm train --limit 4 --blurred 3 --max-blur 3 --steps 1 --batch-size 2 -o "$work/p4.safetensors"
expect_output "wrote $work/p2.safetensors" "$attend" vlm train --from "$work/p.safetensors" --classifier-words --limit 4 --steps 1 --batch-size 2 -o "$work/p2.safetensors"
expect_error "its classifier_words is 1.0 but the options ask for none" "$attend" vlm train --from "$work/p.safetensors" --limit 4 --steps 1 -o "$work/p3.safetensors"
expect_error "would overwrite an input" "$attend" vlm train --from "$work/p.safetensors" --classifier-words --limit 4 --steps 1 -o "$work/p.safetensors"
# The whole picture's words as the classifier's top class name: needs the words and the whole picture; a projector
# trained with the averaged words is trained on with the name (the words are not trained), and then needs the flag.
expect_error "give --classifier-words and --whole-picture-size too" "$attend" vlm train --classifier-words --top-class-name -o "$work/p.safetensors"
expect_output "wrote $work/w.safetensors" "$attend" vlm train --classifier-words --whole-picture-size 224 --limit 4 --steps 1 --batch-size 2 -o "$work/w.safetensors"
expect_output "wrote $work/w2.safetensors" "$attend" vlm train --from "$work/w.safetensors" --classifier-words --whole-picture-size 224 --top-class-name --limit 4 --steps 1 --batch-size 2 -o "$work/w2.safetensors"
expect_error "$work/p.safetensors: its words cannot be said as the top class name" "$attend" vlm train --from "$work/p.safetensors" --classifier-words --whole-picture-size 224 --top-class-name --limit 4 --steps 1 -o "$work/w4.safetensors"
expect_error "its classifier_top_name is true but the options ask for false; give --top-class-name" "$attend" vlm train --from "$work/w2.safetensors" --classifier-words --whole-picture-size 224 --limit 4 --steps 1 -o "$work/w3.safetensors"
# A CLIP trained on a folder of captioned pictures.
cp "$photos/chelsea.png" "$work/stamps/some/cat.png"
printf 'A cat on a blanket.\n' > "$work/stamps/some/cat.txt"
expect_output "2 pairs;" "$attend" clip train --data "$work/stamps/some" --steps 1 --batch-size 2 -o "$work/c.safetensors"
expect_error "with a caption file" "$attend" clip train --data "$work/stamps/none" --steps 1 -o "$work/c.safetensors"
printf '%s\tcoffee|espresso\n%s\tcat\n' "$PWD/$photos/coffee.png" "$PWD/$photos/chelsea.png" > "$work/everyday.tsv"
expect_output "2 test pictures" "$attend" vlm evaluate --projector "$work/p.safetensors" --data "$work/everyday.tsv" --max-tokens 4
printf '%s\tcat||kitten\n' "$PWD/$photos/chelsea.png" > "$work/bad.tsv"
expect_error "has an empty name between its '|'s" "$attend" vlm evaluate --data "$work/bad.tsv"
printf 'no-tab-here\n' > "$work/bad.tsv"
expect_error "bad.tsv:1: expected" "$attend" vlm evaluate --data "$work/bad.tsv"

if [ "$failures" -gt 0 ]; then echo "$failures command-line checks failed"; exit 1; fi
echo "all command-line checks passed"
