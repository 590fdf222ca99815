"""Deterministic seeds: one integer seed plus string keys give an independent, stable stream."""
from __future__ import annotations

import hashlib
import os
import random

import numpy as np

__all__ = ["derive_seed", "rng", "seed_everything"]


def derive_seed(seed: int, *keys) -> int:
    """A 63-bit seed derived from ``seed`` and any printable keys (stable across runs and OSes)."""
    text = "/".join([str(int(seed))] + [str(k) for k in keys])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def rng(seed: int, *keys) -> np.random.Generator:
    """A numpy Generator for the stream named by ``(seed, *keys)``."""
    return np.random.default_rng(derive_seed(seed, *keys))


def seed_everything(seed: int = 0) -> None:
    """Seed python, numpy and torch (if installed) and make torch deterministic."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency, but keep seeding usable
        return
    torch.manual_seed(seed)
    # torch.use_deterministic_algorithms also imports torch._inductor to set its flag for
    # torch.compile (unused here): 2.3 s per process. Set the kernel flag alone when we can.
    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_flag is not None:
        set_flag(True, warn_only=True)
    else:  # pragma: no cover - another torch version
        torch.use_deterministic_algorithms(True, warn_only=True)
