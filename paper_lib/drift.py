"""Drift of a trained model: train (cached), sample (cached), and measure how the distribution of
the physical quantity on the samples differs from the curated prior.

This is the glue the notebooks share, so each notebook states *what* it trains and measures and
this module does the bookkeeping (cache keys, sample banks, the rows of ``tables/drift.csv``).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import cache, metrics
from .datasets import Dataset, make_dataset
from .profiles import Profile, require
from .seeding import rng as make_rng
from .tasks import Task, get_task

__all__ = ["Run", "task_for", "train", "standard_run", "samples", "conditions", "histogram_with_band", "drift_row",
           "nn_ratio", "DRIFT_COLUMNS", "TRAIN_COST_COLUMNS", "quantity_bins", "update_tables",
           "PLAUSIBILITY_COLUMNS", "plausibility_row", "update_plausibility"]

# tables/drift.csv holds results only; wall times, which differ from machine to machine, go to
# tables/train_cost.csv, so that a diff of drift.csv shows what really moved
DRIFT_COLUMNS = ["task", "model", "seed", "n_samples", "tv_model_prior", "w1_model_prior",
                 "tv_noise_floor", "plausible_frac", "nn_ratio"]
TRAIN_COST_COLUMNS = ["task", "model", "seed", "train_seconds"]
_KEYS = ["task", "model", "seed"]
# tables/plausibility.csv: the plausible fraction and the drift against training compute
PLAUSIBILITY_COLUMNS = ["task", "model", "steps", "training", "n_samples", "plausible_frac",
                        "tv_model_prior", "tv_plausible_only"]
_PLAUSIBILITY_KEYS = ["task", "model", "steps", "training"]


@dataclass
class Run:
    """A trained model with what it was trained on. ``key`` names it in the cache."""

    task: Task
    dataset: Dataset
    trained: object
    kind: str
    seed: int
    key: str


def quantity_bins(task: Task, profile: Profile) -> metrics.Bins:
    """The fixed bins over the task's support used by every histogram of q: the profile's
    ``n_bins``, or the task's own curation bins when it has them (maze: the dataset is uniform
    bin by bin at that resolution only; travel distances cluster near whole numbers of cells,
    so finer bins would show the controller's structure, not drift)."""
    if isinstance(getattr(task, "bins", None), metrics.Bins):
        return task.bins
    return metrics.Bins(task.lo, task.hi, profile.n_bins)


def task_for(task: str | Task, profile: Profile, **params) -> Task:
    """The task ``task`` with the profile's parameters for it (``Profile.task_params``, e.g. a
    smaller maze under ``smoke``), then ``params`` on top. A Task instance is returned as is."""
    if isinstance(task, Task):
        return task
    return get_task(task, **{**require(profile).task_params.get(task, {}), **params})


def train(task: str | Task, kind: str, profile: Profile, seed: int = 0,
          n_train: int | None = None, data_seed: int = 0, snapshots: tuple[int, ...] = (),
          task_params: dict | None = None, dataset: Dataset | None = None, **overrides) -> Run:
    """Train (or load from the cache) a model of class ``kind`` on a dataset of ``task``.

    ``n_train`` defaults to the profile's; ``task_params`` change the task (on top of the
    profile's ``task_params``); ``overrides`` change the model spec (e.g. ``width``).
    ``dataset``: train on this dataset instead (e.g. a reweighted one, ``Dataset.subset``); its
    task is then ``task`` (a Task instance), and ``n_train``, ``data_seed``, ``task_params`` must
    be left at their defaults.
    """
    from . import models

    P = require(profile)
    if dataset is not None:
        if n_train is not None or data_seed != 0 or task_params:
            raise ValueError("train(dataset=...) takes its trajectories from the dataset; "
                             "n_train, data_seed and task_params must be left unset")
        if not isinstance(task, Task):
            raise TypeError(f"train(dataset=...) needs the dataset's Task instance as task, got "
                            f"{task!r}")
        t, data = task, dataset
    else:
        t = task_for(task, P, **(task_params or {}))
        data = make_dataset(t, n_train or P.n_train, seed=data_seed)
    cond = tuple(getattr(t, "condition_frames", ()))   # a planner's imposed frames (maze)
    if cond and kind.startswith("diffusion"):
        overrides.setdefault("condition_frames", cond)
    spec = models.make_spec(kind, P, **overrides)
    trained = models.fit(spec, data, P, seed=seed, snapshots=tuple(snapshots))
    key = cache.spec_key("run", {"data": data.spec, "model": spec.key(), "profile": P.name,
                                 "seed": seed, "snapshots": list(snapshots),
                                 "v": models.MODEL_CODE_VERSION})
    return Run(t, data, trained, spec.kind, seed, key)


def _digest(a) -> list:
    return [np.shape(a), hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()]


def conditions(run: Run, n: int) -> tuple[np.ndarray | None, tuple | None]:
    """What the samples of a planner are given: for a task with ``conditions`` (the maze), the
    indices (n,) of the training demonstrations drawn with the stream (0, task, "conditions") and
    the ``inpaint=(keep, cond)`` imposing their start and goal (``task.conditions``); (None, None)
    for a task that generates freely. Notebooks 03, 04 and 06 draw the planner's samples with it."""
    if not hasattr(run.task, "conditions"):
        return None, None
    idx = make_rng(0, run.task.name, "conditions").choice(len(run.dataset), int(n))
    return idx, run.task.conditions(run.dataset.X, idx)


def samples(run: Run, n: int, seed: int = 0, sampler: str = "ddpm", steps: int | None = None,
            snapshot: int | None = None, inpaint=None, condition=None,
            guidance: float = 0.0) -> tuple[np.ndarray, float]:
    """``n`` samples (n, T, C) in task units from a run, cached as a sample bank, and the seconds
    it took to draw them (as measured when they were drawn). ``inpaint=(mask, values)``:
    conditioning imposed at every denoising step; ``condition`` (n,) and ``guidance``: the
    requested q and the guidance weight of a q-conditioned model (see ``models.sample``)."""
    from . import models

    spec = {"run": run.key, "n": int(n), "seed": int(seed), "sampler": sampler, "steps": steps,
            "snapshot": snapshot}
    if inpaint is not None:
        spec["inpaint"] = [_digest(a) for a in inpaint]
    if condition is not None:
        spec["condition"] = _digest(np.asarray(condition, np.float64))
        spec["guidance"] = float(guidance)

    def build():
        t0 = time.perf_counter()
        X = models.sample(run.trained, n, seed=seed, sampler=sampler, steps=steps,
                          snapshot=snapshot, inpaint=inpaint, condition=condition,
                          guidance=guidance)
        return {"X": X, "seconds": time.perf_counter() - t0}

    bank = cache.memo("samples", spec, build)
    return bank["X"], float(bank["seconds"])


def histogram_with_band(q: np.ndarray, bins: metrics.Bins, profile: Profile,
                        *keys) -> dict[str, np.ndarray]:
    """Histogram of q with its bootstrap band (deterministic stream named by ``keys``)."""
    p, lo, hi = metrics.bootstrap_histogram(q, bins, profile.n_boot, make_rng(0, "band", *keys))
    return {"p": p, "lo": lo, "hi": hi}


def nn_ratio(X: np.ndarray, train: np.ndarray, n_ref: int = 2000) -> float:
    """The model's own error scale: mean distance from a sample (the first ``n_ref`` of X) to its
    nearest training trajectory, in units of the data spacing (``kernels.data_spacing``, the same
    unit as a kernel's locality). Flattened trajectories in task units. Cached by a hash of both
    arrays."""
    from .kernels import data_spacing

    spec = {"X": cache.fingerprint(np.asarray(X[:n_ref], np.float32)),
            "train": cache.fingerprint(np.asarray(train, np.float32)), "n_ref": int(n_ref)}
    return cache.memo("nn_ratio", spec, lambda: float(
        metrics.nn_distances(X[:n_ref], train).mean() / data_spacing(train, n_ref)))


def drift_row(run: Run, X: np.ndarray, profile: Profile, model: str | None = None,
              nn_ref: int = 2000) -> dict:
    """One row of ``tables/drift.csv`` for samples X (n, T, C) of ``run`` (DRIFT_COLUMNS), plus
    the model's ``train_seconds`` (for ``tables/train_cost.csv``; see :func:`update_tables`).

    TV and W1 are measured against the exact uniform prior; the noise floor is the mean TV between
    two independent draws of the prior of the same size n (conservative: about √2 times what a
    perfect model's samples would score against the exact prior). ``nn_ratio``: see
    :func:`nn_ratio`.
    """
    t, P = run.task, require(profile)
    bins = quantity_bins(t, P)
    q = t.measure(X)
    p = metrics.histogram(q, bins)
    g = make_rng(run.seed, "drift_row", t.name, run.kind)
    floor = metrics.noise_floor_tv(t.sample_quantity, len(X), bins, g)
    return {"task": t.name, "model": model or run.kind, "seed": run.seed, "n_samples": len(X),
            "tv_model_prior": metrics.tv(p, metrics.uniform_histogram(bins)),
            "w1_model_prior": metrics.w1(q, metrics.uniform_quantiles(t.lo, t.hi)),
            "tv_noise_floor": floor, "plausible_frac": float(t.is_plausible(X).mean()),
            "nn_ratio": nn_ratio(X, run.dataset.X, nn_ref),
            "train_seconds": float(run.trained.train_seconds)}


def standard_run(task: str | Task, kind: str, profile: Profile, seed: int = 0) -> Run:
    """The model every notebook shares for (task, class, seed): profile sizes, and for
    ``diffusion-unet`` EMA snapshots at the profile's ``ablation_steps`` (the drift-versus-
    training-steps ablation reads them without retraining). Same call, same cache entry."""
    P = require(profile)
    snaps = tuple(s for s in P.ablation_steps if s < P.train_steps) if kind == "diffusion-unet" \
        else ()
    return train(task, kind, P, seed=seed, snapshots=snaps)


def __getattr__(name: str):
    """``drift.check``: the drift check for your own data (:func:`paper_lib.driftcheck.check`),
    imported on first use."""
    if name == "check":
        from .driftcheck import check

        return check
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def update_tables(rows: pd.DataFrame) -> None:
    """Write :func:`drift_row` rows: their results into ``tables/drift.csv`` (DRIFT_COLUMNS) and
    their training times into ``tables/train_cost.csv`` (TRAIN_COST_COLUMNS), each replacing
    the rows of the same (task, model, seed)."""
    from . import plots

    plots.update_table(rows[DRIFT_COLUMNS], "drift", _KEYS)
    plots.update_table(rows[TRAIN_COST_COLUMNS], "train_cost", _KEYS)


def plausibility_row(task: Task, X: np.ndarray, profile: Profile, model: str, steps: int,
                     training: str, plausible: np.ndarray | None = None) -> dict:
    """One row of ``tables/plausibility.csv`` (PLAUSIBILITY_COLUMNS) for samples X (n, T, C, task
    units) of a ``model`` after ``steps`` optimiser steps; ``training``: ``"snapshot"`` (EMA
    weights recorded along a longer run), ``"own run"`` (trained that long on its own
    schedule) or ``"own run, projected"`` (those samples post-processed onto the task's physical
    constraints, e.g. ``PendulumTask.project``). ``plausible`` (n,) bool: the task's check of
    each sample when it needs more than X (the maze's goals); by default
    ``task.is_plausible(X)``. ``tv_plausible_only``: TV to the prior of the plausible samples
    alone (NaN when none is plausible)."""
    bins = quantity_bins(task, profile)
    ok = task.is_plausible(X) if plausible is None else np.asarray(plausible, bool)
    if ok.shape != (len(X),):
        raise ValueError(f"plausible must be one bool per sample, shape ({len(X)},), got "
                         f"{ok.shape}")
    q, u = task.measure(X), metrics.uniform_histogram(bins)
    return {"task": task.name, "model": model, "steps": int(steps), "training": training,
            "n_samples": len(X), "plausible_frac": float(ok.mean()),
            "tv_model_prior": metrics.tv(metrics.histogram(q, bins), u),
            "tv_plausible_only": metrics.tv(metrics.histogram(q[ok], bins), u) if ok.any()
            else float("nan")}


def update_plausibility(rows: pd.DataFrame) -> None:
    """Write :func:`plausibility_row` rows into ``tables/plausibility.csv``, replacing those of the
    same (task, model, steps, training)."""
    from . import plots

    plots.update_table(rows[PLAUSIBILITY_COLUMNS], "plausibility", _PLAUSIBILITY_KEYS)
