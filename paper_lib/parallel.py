"""Independent jobs (training models) in worker processes, one core each.

A small model's training step scales poorly over threads (on 2 cores the default U-Net took
43 ms per step with 2 threads against 64-70 ms with one), so two models trained side by side, one
thread each, finish sooner than the same two trained one after the other. Training is always
single-threaded (``models.fit``), so a model's weights do not depend on whether it was trained
here or in a worker, nor on the number of workers or cores.

``PAPER_LIB_WORKERS`` sets the number of workers (default: the cores this process may use).
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable

__all__ = ["workers", "run_all"]


def workers() -> int:
    """Worker processes to use: ``$PAPER_LIB_WORKERS`` or the number of usable cores."""
    env = os.environ.get("PAPER_LIB_WORKERS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"PAPER_LIB_WORKERS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"PAPER_LIB_WORKERS must be a positive integer, got {env!r}")
        return n
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _init_worker() -> None:
    from . import seeding

    seeding.seed_everything(0)          # deterministic algorithms, as in a notebook
    import torch

    torch.set_num_threads(1)


def _call(job: Callable) -> None:
    job()


def run_all(jobs: list[Callable[[], object]], n_workers: int | None = None) -> None:
    """Call every job (a picklable callable without arguments, e.g. a ``functools.partial`` of
    ``drift.train``) for its side effect on the cache, at most ``n_workers`` (default
    :func:`workers`) at once in spawned processes, in the order given (put the longest first).

    Each job is first tried here with ``models.cache_only``: a job whose models are all cached
    just loads them, and only the others go to the workers (starting a worker costs seconds).
    With one worker or one job left, everything runs here. A failing job raises here once the
    others have finished."""
    from .models.train import NotCached, cache_only

    missing = []
    for job in jobs:
        try:
            with cache_only():
                job()
        except NotCached:
            missing.append(job)
    jobs = missing
    if not jobs:
        return
    n = min(n_workers or workers(), len(jobs))
    if n <= 1:
        for job in jobs:
            job()
        return
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn"),
                             initializer=_init_worker) as ex:
        futures = [ex.submit(_call, job) for job in jobs]
        for f in futures:
            f.result()
