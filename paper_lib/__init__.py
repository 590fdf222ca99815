"""paper_lib: the helper library of the companion to "Mechanisms of Misgeneralization in Physical
Sequence Modeling" (Nishi, Tang, Kumar, Park, Tanaka, arXiv 2605.20299, 2026).

Notebooks start with ``P = paper_lib.setup(profile)``: it looks the profile up, seeds everything
and points figure output at the right folder.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from .profiles import Profile, get_profile

# Submodules and the names below are imported on first use (PEP 562), so a command that needs
# only the profiles (``python -m paper_lib.runnb`` checking its arguments) starts in a fraction
# of a second instead of importing numpy, pandas and altair first.
_SUBMODULES = ("cache", "datasets", "metrics", "plots", "profiles", "seeding", "tasks")
_NAMES = {"Dataset": "datasets", "make_dataset": "datasets", "Bins": "metrics",
          "get_task": "tasks"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["setup", "check_versions", "ROOT", "Profile", "get_profile", "get_task", "make_dataset", "Dataset",
           "Bins", "cache", "datasets", "metrics", "plots", "profiles", "seeding", "tasks",
           "__version__"]
__version__ = "0.1.0"

ROOT = Path(__file__).resolve().parents[1]


def setup(profile: str | Profile = "default", seed: int = 0) -> Profile:
    """Start a notebook: look the profile up (unknown names raise, listing the valid ones), seed
    python/numpy/torch, and send figures to ``figures/`` (``default``), or to
    ``build/<profile>/figures/`` for any other profile so that a smoke or paper run never
    overwrites the committed figures."""
    from . import plots, seeding

    p = get_profile(profile)
    seeding.seed_everything(seed)
    if p.name == "default":
        plots.set_output_dir(None)
    else:
        plots.set_output_dir(ROOT / "build" / p.name / "figures")
    return p


def check_versions() -> dict[str, str]:
    """Print and return the versions a notebook depends on; raise if Python is not 3.11+."""
    import platform
    import sys

    import altair
    import numpy
    import pandas
    import scipy

    if sys.version_info < (3, 11):
        raise RuntimeError(f"Python 3.11 is required, this is {platform.python_version()}")
    versions = {"python": platform.python_version(), "paper_lib": __version__,
                "numpy": numpy.__version__, "scipy": scipy.__version__,
                "pandas": pandas.__version__, "altair": altair.__version__}
    try:
        import torch
        versions["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        versions["torch"] = "missing"
    print("  ".join(f"{k} {v}" for k, v in versions.items()))
    return versions
