"""Seeding and a report of the software environment, logged at the start of every run."""

from __future__ import annotations

import importlib
import os
import platform
import random
import sys
from datetime import datetime

import numpy as np
import torch


def seed_all_rng(seed: int | None = None) -> int:
    """Seed Python, NumPy and torch; a None or negative seed draws one. Returns the seed used."""
    if seed is None or seed < 0:
        seed = (
            os.getpid()
            + int(datetime.now().strftime("%S%f"))
            + int.from_bytes(os.urandom(2), "big")
        ) % (2**31)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed


def _version(module: str) -> str:
    try:
        return getattr(importlib.import_module(module), "__version__", "unknown")
    except ImportError:
        return "not installed"


def collect_env_info() -> str:
    """A table of the versions and devices that decide how a run behaves."""
    from ovvision import __version__

    try:
        from ovvision.ops import has_ops

        ops = "built" if has_ops() else "not built (PyTorch fallbacks)"
    except ImportError:
        ops = "not available"
    rows = [
        ("sys.platform", sys.platform),
        ("Python", sys.version.replace("\n", " ")),
        ("machine", platform.machine()),
        ("ovvision", __version__),
        ("ovvision._C", ops),
        ("torch", torch.__version__),
        ("torchvision", _version("torchvision")),
        ("open_clip", _version("open_clip")),
        ("timm", _version("timm")),
        ("fvcore", _version("fvcore")),
        ("numpy", np.__version__),
        ("CUDA available", str(torch.cuda.is_available())),
        ("torch threads", str(torch.get_num_threads())),
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            rows.append((f"GPU {i}", torch.cuda.get_device_name(i)))
        rows.append(("CUDA (torch build)", str(torch.version.cuda)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
