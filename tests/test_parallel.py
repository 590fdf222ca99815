from functools import partial

import pytest
import torch

import paper_lib
from paper_lib import drift, parallel


def test_workers_reads_the_environment(monkeypatch):
    monkeypatch.setenv("PAPER_LIB_WORKERS", "3")
    assert parallel.workers() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("PAPER_LIB_WORKERS", bad)
        with pytest.raises(ValueError, match="positive integer"):
            parallel.workers()
    monkeypatch.delenv("PAPER_LIB_WORKERS")
    assert parallel.workers() >= 1


def test_models_trained_in_workers_equal_those_trained_here():
    """Two models trained side by side in worker processes are bitwise the models trained in
    this process (with two threads here: training pins itself to one), and are then loaded."""
    P = paper_lib.get_profile("smoke")
    jobs = [partial(drift.train, "cone", "diffusion-unet", P, seed=s) for s in (0, 1)]
    parallel.run_all(jobs, n_workers=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for seed, job in zip((0, 1), jobs):
            run = job()
            assert run.trained.from_cache
            here = paper_lib.models.fit(paper_lib.models.make_spec("diffusion-unet", P),
                                        run.dataset, P, seed=seed, use_cache=False)
            assert here.fingerprint() == run.trained.fingerprint()
    finally:
        torch.set_num_threads(threads)


def test_cached_jobs_run_here_without_workers(monkeypatch):
    P = paper_lib.get_profile("smoke")
    jobs = [partial(drift.train, "cone", "vae", P, seed=s) for s in (0, 1)]
    jobs[0]()                                   # one model cached, one not
    started = []
    real = parallel.ProcessPoolExecutor

    def pool(*args, **kwargs):
        started.append(kwargs.get("max_workers", args[0] if args else None))
        return real(*args, **kwargs)

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", pool)
    parallel.run_all(jobs, n_workers=2)         # the missing one alone: trained here
    assert started == [] and all(job().trained.from_cache for job in jobs)
    parallel.run_all(jobs, n_workers=2)         # everything cached: no worker either
    assert started == []
    with paper_lib.models.train.cache_only(), pytest.raises(paper_lib.models.train.NotCached):
        drift.train("cone", "vae", P, seed=2)


def _fail():
    """A job that is not cached (so run_all submits it) and fails where it runs."""
    from paper_lib.models.train import _CACHE_ONLY, NotCached

    if _CACHE_ONLY.get():
        raise NotCached("not cached")
    raise RuntimeError("job failed")


def test_a_failing_job_raises_here():
    with pytest.raises(RuntimeError, match="job failed"):
        parallel.run_all([_fail, _fail], n_workers=2)
