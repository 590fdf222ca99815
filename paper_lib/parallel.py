"""Independent jobs (training models) side by side: in local worker processes, one core each, or
on any executor engine (a Dask cluster, SLURM through submitit).

A small model's training step scales poorly over threads (on 2 cores the default U-Net took
43 ms per step with 2 threads against 64-70 ms with one), so two models trained side by side, one
thread each, finish sooner than the same two trained one after the other. Training is always
single-threaded (``models.fit``), so a model's weights do not depend on where it was trained,
nor on the number of workers or cores.

A job only writes its result to the content-addressed cache, and the notebook then loads it, so
jobs distribute naturally: what a remote engine must share is the cache folder (one path, on a
filesystem every worker mounts, e.g. NFS or Lustre) and the same code and package versions.
Each job is run with ``PAPER_LIB_CACHE`` set to this process's cache folder.

Choosing the engine (``PAPER_LIB_EXECUTOR``, read by :func:`executor_from_env`):

* unset or ``local``: a local process pool of :func:`workers` processes (``PAPER_LIB_WORKERS``);
* ``dask:ADDRESS``: the Dask ``distributed`` scheduler at ADDRESS (e.g. ``tcp://head:8786``);
* ``slurm:FOLDER``: SLURM jobs through ``submitit.AutoExecutor(FOLDER)`` (FOLDER shared; the
  ``PAPER_LIB_SLURM`` variable adds ``key=value,...`` parameters, e.g.
  ``slurm_partition=cpu,timeout_min=120,cpus_per_task=1``);
* ``submitit-local:FOLDER``: submitit's local executor (subprocesses here; for testing).
"""
from __future__ import annotations

import os
from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable

__all__ = ["workers", "run_all", "executor_from_env", "ENGINES"]

ENGINES = ("local", "dask", "slurm", "submitit-local")


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


def _call(job: Callable, cache_root: str, arithmetic: str) -> None:
    """Run one job in a worker: the submitting process's cache and arithmetic mode (whose
    variables a worker elsewhere must have been started with: the job checks), deterministic
    algorithms and one torch thread, as in a notebook's own training."""
    os.environ["PAPER_LIB_CACHE"] = cache_root
    os.environ["PAPER_LIB_ARITHMETIC"] = arithmetic
    from . import seeding

    seeding.seed_everything(0)
    import torch

    torch.set_num_threads(1)
    job()


def _slurm_parameters(text: str) -> dict:
    """``key=value,...`` -> dict (integers converted), for ``PAPER_LIB_SLURM``."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"PAPER_LIB_SLURM must be key=value pairs separated by commas, "
                             f"got {item!r}")
        out[key.strip()] = int(value) if value.strip().isdigit() else value.strip()
    return out


def executor_from_env():
    """The engine named by ``$PAPER_LIB_EXECUTOR`` (see the module docstring), or None for the
    local pool. An unknown engine raises ``ValueError`` listing the valid ones."""
    text = os.environ.get("PAPER_LIB_EXECUTOR", "").strip()
    engine, _, arg = text.partition(":")
    if engine in ("", "local"):
        return None
    if engine not in ENGINES or not arg:
        raise ValueError(f"PAPER_LIB_EXECUTOR must be one of local, dask:ADDRESS, slurm:FOLDER, "
                         f"submitit-local:FOLDER; got {text!r}")
    if engine == "dask":
        from distributed import Client

        return Client(arg).get_executor()
    import submitit

    if engine == "slurm":
        ex = submitit.AutoExecutor(folder=arg, cluster="slurm")
        ex.update_parameters(**_slurm_parameters(os.environ.get("PAPER_LIB_SLURM", "")))
        return ex
    return submitit.LocalExecutor(folder=arg)


def run_all(jobs: list[Callable[[], object]], n_workers: int | None = None,
            executor: Executor | None = None) -> None:
    """Call every job (a picklable callable without arguments, e.g. a ``functools.partial`` of
    ``drift.train``) for its side effect on the cache.

    ``executor``: where the jobs run — any ``concurrent.futures.Executor`` (a
    ``ProcessPoolExecutor``, a Dask ``Client(...).get_executor()``) or an object with the same
    ``submit(fn, *args)`` whose result has ``.result()`` (a submitit executor). Default: the
    engine of ``$PAPER_LIB_EXECUTOR``, else a local pool of at most ``n_workers`` (default
    :func:`workers`) spawned processes, jobs started in the order given (put the longest first).

    Each job is first tried here with ``models.cache_only``: a job whose models are all cached
    just loads them, and only the others are submitted (starting a worker costs seconds). On the
    local pool, with one worker or one job left, everything runs here. A failing job raises here
    once the others have finished."""
    from .arithmetic import mode as arithmetic_mode
    from .cache import cache_root
    from .models.train import NotCached, cache_only

    missing = []
    for job in jobs:
        try:
            with cache_only():
                job()
        except NotCached:
            missing.append(job)
    if not missing:
        return
    executor = executor if executor is not None else executor_from_env()
    folder, mode = str(cache_root().resolve()), arithmetic_mode()
    if executor is not None:
        _wait([executor.submit(_call, job, folder, mode) for job in missing])
        return
    n = min(n_workers or workers(), len(missing))
    if n <= 1:
        for job in missing:
            job()
        return
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as ex:
        _wait([ex.submit(_call, job, folder, mode) for job in missing])


def _wait(futures: list) -> None:
    """Wait for every future; then raise the first failure, if any."""
    errors = []
    for f in futures:
        try:
            f.result()
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the others finished
            errors.append(exc)
    if errors:
        raise errors[0]
