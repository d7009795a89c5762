#!/usr/bin/env bash
# Prints an everyday-photos TSV (image path TAB names separated by |; Benchmarks/data/*everyday-photos.tsv) without its
# comments and with each path made whole (the file's paths are relative to its folder), after making sure its photos
# are here: scikit-image's and scikit-learn's (scripts/fetch-assets.sh) and KDE's wallpapers (Debian's
# plasma-workspace-wallpapers). For Benchmarks/vlm-everyday.sh and Benchmarks/clip-open-vocabulary.sh.
# Usage: Benchmarks/everyday-tsv.sh TSV > photos.tsv
set -euo pipefail
tsv=$(realpath "$1")
cd "$(dirname "$0")/.."
scripts/fetch-assets.sh scikit-image-data scikit-learn-data >/dev/null
if ! dpkg -s plasma-workspace-wallpapers >/dev/null 2>&1; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq plasma-workspace-wallpapers >/dev/null
fi
folder=$(dirname "$tsv")
grep -v '^#' "$tsv" | grep . | while IFS=$'\t' read -r path names; do
  case "$path" in /*) ;; *) path=$(realpath -m "$folder/$path") ;; esac
  printf '%s\t%s\n' "$path" "$names"
done
