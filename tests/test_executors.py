"""run_all on real executor engines: a Dask LocalCluster of processes and submitit's local
executor. The models they train land in the shared cache and are bitwise the models trained
here."""
from functools import partial
from pathlib import Path

import pytest

import paper_lib
from paper_lib import drift, parallel

P = paper_lib.get_profile("smoke").with_(n_train=64, train_steps=6)


def _jobs(kind: str):
    return [partial(drift.train, "cone", kind, P, seed=s) for s in (0, 1)]


def _check_trained_there(jobs, kind: str) -> None:
    for seed, job in zip((0, 1), jobs):
        run = job()
        assert run.trained.from_cache                       # trained by the engine, loaded here
        here = paper_lib.models.fit(paper_lib.models.make_spec(kind, P), run.dataset, P,
                                    seed=seed, use_cache=False)
        assert here.fingerprint() == run.trained.fingerprint()


def test_dask_local_cluster_trains_into_the_shared_cache():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        jobs = _jobs("vae")
        parallel.run_all(jobs, executor=client.get_executor())
        _check_trained_there(jobs, "vae")


def test_submitit_local_executor_trains_into_the_shared_cache(tmp_path, monkeypatch):
    """One job trains, one fails: run_all waits for both, then raises the failure here."""
    submitit = pytest.importorskip("submitit")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))   # _fail, for the subprocess
    ex = submitit.LocalExecutor(folder=str(tmp_path / "submitit"))
    ex.update_parameters(timeout_min=10)
    job = partial(drift.train, "cone", "diffusion-mlp", P, seed=0)
    with pytest.raises(Exception, match="job failed"):
        parallel.run_all([job, _fail], executor=ex)
    run = job()
    assert run.trained.from_cache
    here = paper_lib.models.fit(paper_lib.models.make_spec("diffusion-mlp", P), run.dataset, P,
                                seed=0, use_cache=False)
    assert here.fingerprint() == run.trained.fingerprint()


def test_the_engine_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("PAPER_LIB_EXECUTOR", raising=False)
    assert parallel.executor_from_env() is None
    monkeypatch.setenv("PAPER_LIB_EXECUTOR", "local")
    assert parallel.executor_from_env() is None
    monkeypatch.setenv("PAPER_LIB_EXECUTOR", f"submitit-local:{tmp_path}")
    assert type(parallel.executor_from_env()).__name__ == "LocalExecutor"
    for bad in ("ray:x", "dask", "slurm:"):
        monkeypatch.setenv("PAPER_LIB_EXECUTOR", bad)
        with pytest.raises(ValueError, match="PAPER_LIB_EXECUTOR must be one of"):
            parallel.executor_from_env()
    assert parallel._slurm_parameters("slurm_partition=cpu, timeout_min=60") == \
        {"slurm_partition": "cpu", "timeout_min": 60}
    with pytest.raises(ValueError, match="key=value"):
        parallel._slurm_parameters("partition")


def _fail():
    """A job that is not cached (so run_all submits it) and fails where it runs."""
    from paper_lib.models.train import _CACHE_ONLY, NotCached

    if _CACHE_ONLY.get():
        raise NotCached("not cached")
    raise RuntimeError("job failed")
