#!/usr/bin/env bash
# Creates .cache/venv with the Python peers the benchmarks compare against (PyTorch on CPU, numpy), and Pillow, which
# blurs and reads pictures for Benchmarks/vlm-blur.sh and Benchmarks/codec_torch.py.
# PyPI's torch wheel pulls CUDA runtime packages (~6 GiB) but runs on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .cache/venv/bin/python ]; then python3 -m venv .cache/venv; fi
.cache/venv/bin/python -c "import torch, numpy, safetensors, PIL" 2>/dev/null || .cache/venv/bin/pip install -q torch numpy safetensors pillow
