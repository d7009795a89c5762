#!/usr/bin/env bash
# Style transfer, both modes, over output sizes: `attend style --fast` (one pass through the trained decoder) against
# the optimizing variant (Gatys, 200 steps of Adam on the pixels) on the same photo, style and threads. Prints each
# mode's losses (the ones the command prints) and wall time; the optimizing time per step is the median of RUNS runs of
# STEPS steps, scaled to 200 steps.
# Usage: Benchmarks/style.sh [THREADS] [RUNS] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
runs=${2:-3}
steps=${3:-20}
scripts/setup.sh
scripts/fetch-assets.sh efficientnet-lite0 scikit-image-data >/dev/null
swift build -c release --product attend >/dev/null
attend=.build/release/attend
photo=.cache/assets/scikit-image-data/coffee.png
styles="/usr/share/backgrounds/mate/abstract/Gulp.png .cache/assets/scikit-image-data/gravel.png"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
printf "%-10s %6s %-11s %-28s %-28s %10s %14s %8s\n" style size output "photo -> fast: style loss" "fast: content / style image's" "fast s" "200 steps s" ratio
for style in $styles; do
  for size in 256 512 1024; do
    fast=() ; slow=()
    for run in $(seq "$runs"); do
      log=$(ATTEND_NUM_THREADS=$threads $attend style "$photo" "$style" --size "$size" --fast -o "$out/fast.png")
      fast+=("$(echo "$log" | sed -n 's/.* in \([0-9.]*\) s; wrote.*/\1/p')")
      log2=$(ATTEND_NUM_THREADS=$threads $attend style "$photo" "$style" --size "$size" --steps "$steps" -o "$out/slow.png" 2>/dev/null)
      slow+=("$(echo "$log2" | sed -n 's/.*(\([0-9.]*\) s\/step).*/\1/p')")
    done
    dims=$(echo "$log" | sed -n 's/^\([0-9]* x [0-9]*\),.*/\1/p' | tr -d ' ')
    photoStyle=$(echo "$log" | sed -n 's/^content image: .*style *\([0-9.]*\)/\1/p')
    styleContent=$(echo "$log" | sed -n 's/^style image [^:]*: content *\([0-9.]*\) .*/\1/p')
    read -r rc rs < <(echo "$log" | sed -n 's/^result: *content *\([0-9.]*\) *style *\([0-9.]*\)/\1 \2/p')
    f=$(printf "%s\n" "${fast[@]}" | median)
    s=$(printf "%s\n" "${slow[@]}" | median)
    printf "%-10s %6s %-11s %-28s %-28s %10s %14.1f %7.0fx\n" "$(basename "$style" .png)" "$size" "$dims" \
      "$photoStyle -> $rs ($(echo "scale=2; $rs / $photoStyle" | bc -l)x)" "$rc / $styleContent" "$f" "$(echo "$s * 200" | bc -l)" \
      "$(echo "$s * 200 / $f" | bc -l)"
  done
done
