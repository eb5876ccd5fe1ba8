"""Shared pytest set-up.

Without a GPU, numba's CUDA simulator runs the ``cuda`` tests (set before numba.cuda loads).
"""
import os
import shutil
import sys
from pathlib import Path

if not shutil.which("nvidia-smi"):
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
MNIST_DIR = SHARED / "data" / "mnist"
PYTORCH_SBS_DIR = SHARED / "data" / "pytorch-sbs-mnist"
sys.path.insert(0, str(REPO))
