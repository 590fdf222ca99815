"""Datasets: trajectories plus their true quantity, built from a task, a size and a seed (cached),
and the curation helpers an engineer uses to shape the prior over q.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import cache
from .metrics import Bins, _integer
from .seeding import rng as make_rng
from .tasks import Task, get_task

__all__ = ["Dataset", "make_dataset", "curate_uniform", "resample_to_weights"]

DATA_VERSION = 1  # bump when a task's generation rule changes: invalidates cached datasets


@dataclass
class Dataset:
    """``X`` (n, T, C) float32 trajectories in task units, ``q`` (n,) their true quantity."""

    task: str
    X: np.ndarray
    q: np.ndarray
    seed: int
    spec: dict

    def __len__(self) -> int:
        return len(self.q)

    def subset(self, idx: np.ndarray) -> "Dataset":
        idx = np.asarray(idx)
        return Dataset(self.task, self.X[idx], self.q[idx], self.seed,
                       {**self.spec, "subset": cache.spec_key("idx", idx)})

    def head(self, n: int) -> "Dataset":
        """The first ``min(n, len(self))`` trajectories (the rows a kernel prediction starts
        from: ``profile.kernel_n``)."""
        return self.subset(np.arange(min(int(n), len(self))))


def make_dataset(task: str | Task, n: int, seed: int = 0, use_cache: bool = True,
                 **task_params) -> Dataset:
    """``n`` trajectories of ``task`` with q drawn from its prior; deterministic in ``seed``.

    ``n`` must be a positive whole number and ``seed`` a whole number >= 0, else ``ValueError``
    (2.5 trajectories are not silently 2); bad task parameters raise ``ValueError`` naming them.
    """
    t = get_task(task, **task_params)
    _integer("n", n)
    _integer("seed", seed, minimum=0)
    spec = {"task": t.name, "params": t, "n": int(n), "seed": int(seed), "v": DATA_VERSION}

    def build():
        g = make_rng(seed, "dataset", t.name)
        X, q = t.build(int(n), g)
        return {"X": X, "q": q}

    d = cache.memo("dataset", spec, build) if use_cache else build()
    return Dataset(t.name, d["X"], d["q"], int(seed), spec)


def curate_uniform(q: np.ndarray, bins: Bins, n_per_bin: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Indices of a sub-pool whose q is uniform over ``bins``: ``n_per_bin`` draws without
    replacement inside each inner bin (rejection per bin). Raises if a bin has too few members,
    and ``ValueError`` if ``n_per_bin`` is not a whole number >= 0."""
    n_per_bin = _integer("n_per_bin", n_per_bin, minimum=0)
    idx = bins.index(q)
    chosen = []
    for b in range(1, bins.n + 1):
        members = np.flatnonzero(idx == b)
        if len(members) < n_per_bin:
            raise ValueError(f"bin {bins.labels[b]} has {len(members)} trajectories, "
                             f"need {n_per_bin}: generate a larger pool")
        chosen.append(rng.choice(members, n_per_bin, replace=False))
    return np.sort(np.concatenate(chosen))


def resample_to_weights(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` draws with replacement, probability proportional to ``weights`` (n_pool,).
    ``n`` must be a whole number >= 0, else ``ValueError``."""
    n = _integer("n", n, minimum=0)
    w = np.asarray(weights, float)
    if np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    return rng.choice(len(w), size=int(n), replace=True, p=w / w.sum())
