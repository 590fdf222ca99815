"""The design note's example task, executed as written, runs through the whole drift pipeline:
dataset, training, samples, measurement, the drift row and a kernel forecast."""
import re

import numpy as np

import paper_lib
from paper_lib import ROOT, drift, forecast, kernels, parallel
from paper_lib.tasks import travel_distance

P = paper_lib.get_profile("smoke").with_(n_train=64, train_steps=5, n_samples=32, kernel_n=32,
                                        localities=(0.5, 1.0))


def _example_source() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text()
    m = re.search(r"<!-- the example below is executed by tests/test_architecture.py -->\n"
                  r"```python\n(.*?)```", text, re.S)
    assert m, "docs/architecture.md lost its example task"
    return m.group(1)


# defined at module level, so the task pickles into the cache and into worker processes
exec(compile(_example_source(), "docs/architecture.md", "exec"), globals())


def test_the_example_task_runs_through_the_drift_pipeline():
    task = Walk()  # noqa: F821 - defined by the exec above
    X = paper_lib.make_dataset(task, 16, seed=0).X
    assert X.shape == (16, task.T, 2)
    q = task.measure(X)
    assert np.all((q >= task.lo) & (q <= task.hi))
    np.testing.assert_allclose(q, travel_distance(X))
    run = drift.train(task, "diffusion-unet", P, seed=0)
    samples, _ = drift.samples(run, P.n_samples, seed=0)
    row = drift.drift_row(run, samples, P)
    assert row["task"] == "walk" and 0 <= row["tv_model_prior"] <= 1
    tg = forecast.make_target(run, samples, P)
    rows, *_ = forecast.forecast(tg, {"white": kernels.white}, P)
    assert set(rows["mode"]) == {"calibrated", "matched"}
    parallel.run_all([lambda: drift.train(task, "diffusion-unet", P, seed=0)])   # cached: loads
