#!/usr/bin/env bash
# One command for the GPU path, on a machine with a CUDA GPU (under ~3 minutes on an H100 / H200 with 16 cores):
#   bash bench/gpu_check.sh [--size 500] [--dates 38] [--repeats 3] [--json figures.json]
# prints GPU seconds per 500 x 500, T = 38 patch (end to end and network only), peak GPU memory and agreement
# with the CPU's float32 output, for float16 (the default), bfloat16 and float32 autocast (see bench/gpu_check.py).
# Without a GPU it says so and exits 2. PYTHON=... picks the interpreter (default .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
exec timeout 300 "$PY" bench/gpu_check.py "$@"
