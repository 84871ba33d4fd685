#!/usr/bin/env bash
# The GPU image's setup script (bentofile.yaml): runs as root in the builder stage of deploy/Dockerfile.template,
# after the virtual environment /app/.venv is installed; the image then copies that environment.
set -euo pipefail

# One CUDA major per library. torch==2.13.0 from PyPI is a CUDA 13 build and installs its own CUDA 13 libraries
# (cuda-toolkit 13.0.3, nvidia-cudnn-cu13, under nvidia/cu13/lib). ctranslate2==4.8.5 is a CUDA 12 build
# (classifier "NVIDIA CUDA :: 12 :: 12.4"): it links the CUDA runtime statically, uses no cuDNN, and opens
# libcublas.so.12 by name the first time a model runs on a GPU; nothing in requirements.txt installs that. Only
# the image gets it: machines that install requirements.txt (CPU development) need none. No dependencies, so
# it cannot disturb what requirements.txt resolved. Keep the -cuNN suffix equal to the CUDA major that
# CTranslate2's library opens when upgrading it (tests/deploy checks).
CTRANSLATE2_CUBLAS="nvidia-cublas-cu12==12.9.1.4"
uv pip install --python /app/.venv/bin/python --no-deps "$CTRANSLATE2_CUBLAS"

# Check now, while building, that the loader finds it through LD_LIBRARY_PATH (bentofile.yaml), rather than
# on the first GPU request. cuBLAS needs no GPU or driver to load.
/app/.venv/bin/python - <<'PY'
import ctypes
import os

try:
    ctypes.CDLL("libcublas.so.12")
except OSError as exc:
    raise SystemExit(
        f"CTranslate2 needs libcublas.so.12 (nvidia-cublas-cu12): {exc}; "
        f"LD_LIBRARY_PATH={os.environ.get('LD_LIBRARY_PATH')!r}"
    )
PY
