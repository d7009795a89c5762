#!/usr/bin/env bash
# Installs what Attend needs from Debian's archive: zlib (gzip'd IDX files), SQLite with FTS5 (the document index),
# OpenBLAS (optional, loaded at run time; Attend has its own kernel without it), the Fashion-MNIST data set and the
# PostgreSQL 15 manual (the documents the README's main job answers from), MATE's wallpapers (photos and abstract
# images the image codecs and the style decoder train on, and the style images of the style test), Tux Paint's stamps
# (about 800 captioned pictures of everyday things, which the multimodal LM's projector trains on), WordNet's noun
# hierarchy (the general kinds of the ImageNet classes the CLIP model learns), Open MPI (data-parallel training under
# mpirun), and Chromium with its WebDriver (the chat page's browser test). Skips apt when all are present.
set -euo pipefail
packages=(zlib1g-dev pkg-config libsqlite3-dev libpng-dev libjpeg-dev libopenblas0-pthread libopenmpi-dev openmpi-bin dataset-fashion-mnist mate-backgrounds tuxpaint-stamps-default wordnet-base postgresql-doc-15 chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
