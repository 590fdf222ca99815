import numpy as np
import pytest

from paper_lib import drift, models
from paper_lib.profiles import get_profile

P = get_profile("smoke").with_(n_train=64, train_steps=5, n_samples=32)


def test_train_sample_and_drift_row():
    run = drift.train("cone", "vae", P, seed=0)
    X, secs = drift.samples(run, 32, seed=0)
    assert X.shape == (32, 64, 2) and secs >= 0
    row = drift.drift_row(run, X, P)
    assert list(row) == drift.DRIFT_COLUMNS + ["train_seconds"]
    assert row["task"] == "cone" and row["model"] == "vae" and row["n_samples"] == 32
    assert 0 <= row["tv_model_prior"] <= 1 and 0 < row["tv_noise_floor"] < 1
    assert 0 <= row["plausible_frac"] <= 1 and row["nn_ratio"] > 0


def test_results_and_timings_go_to_separate_tables():
    import pandas as pd

    from paper_lib import plots

    run = drift.train("cone", "vae", P, seed=0)
    rows = pd.DataFrame([drift.drift_row(run, drift.samples(run, 32, seed=0)[0], P)])
    drift.update_tables(rows)
    results, times = plots.read_table("drift"), plots.read_table("train_cost")
    assert list(results.columns) == drift.DRIFT_COLUMNS          # no wall time among results
    assert list(times.columns) == drift.TRAIN_COST_COLUMNS
    assert abs(times.train_seconds.iloc[0] - run.trained.train_seconds) < 1e-5   # CSV: 6 digits


def test_sample_bank_is_cached(monkeypatch):
    run = drift.train("logistic", "vae", P, seed=0)
    X1, _ = drift.samples(run, 16, seed=3)

    def boom(*a, **k):
        raise AssertionError("sampled again instead of loading the bank")

    monkeypatch.setattr(models, "sample", boom)
    X2, _ = drift.samples(run, 16, seed=3)
    assert np.array_equal(X1, X2)
    with pytest.raises(AssertionError):
        drift.samples(run, 16, seed=4)


def test_drift_row_of_clean_data_is_at_the_noise_floor():
    """A 'model' that returns fresh clean data drifts no more than chance."""
    run = drift.train("cone", "vae", P, seed=0)
    t = run.task
    g = np.random.default_rng(0)
    X = t.generate(t.sample_quantity(2000, g), g)
    row = drift.drift_row(run, X, P.with_(n_bins=10))
    assert row["tv_model_prior"] < 2 * row["tv_noise_floor"]
    assert row["plausible_frac"] == 1.0


def test_standard_run_is_shared_and_unknown_kind_fails():
    a = drift.standard_run("sine", "diffusion-mlp", P)
    b = drift.standard_run("sine", "diffusion-mlp", P)
    assert a.key == b.key
    with pytest.raises(ValueError, match="valid classes"):
        drift.standard_run("sine", "gan", P)


def test_inpainted_sample_banks_are_keyed_by_their_conditions():
    run = drift.train("cone", "diffusion-unet", P, seed=0)
    mask = np.zeros((64, 2), bool)
    mask[[0, -1]] = True
    ends = np.zeros((8, 64, 2), np.float32)
    ends[:, -1] = run.dataset.X[:8, -1]
    X, _ = drift.samples(run, 8, seed=0, inpaint=(mask, ends))
    np.testing.assert_allclose(X[:, -1], ends[:, -1], atol=1e-6)
    np.testing.assert_allclose(X[:, 0], 0, atol=1e-6)
    other = ends.copy()
    other[:, -1] += 0.5
    Y, _ = drift.samples(run, 8, seed=0, inpaint=(mask, other))
    np.testing.assert_allclose(Y[:, -1], other[:, -1], atol=1e-6)


def test_task_for_and_quantity_bins_follow_the_profile_and_the_task():
    maze = drift.task_for("maze", get_profile("smoke"))
    assert (maze.layout, maze.T) == ("umaze", 16)            # the smoke profile's maze
    assert drift.task_for("maze", get_profile("default")).layout == "medium"
    assert drift.task_for("maze", get_profile("smoke"), T=32).T == 32      # explicit parameters win
    assert drift.quantity_bins(maze, P) == maze.bins          # curation bins
    cone = drift.task_for("cone", P)
    b = drift.quantity_bins(cone, P)
    assert (b.lo, b.hi, b.n) == (cone.lo, cone.hi, P.n_bins)


def test_train_on_a_given_dataset_in_a_representation():
    from paper_lib import representation as rep
    from paper_lib.datasets import make_dataset
    from paper_lib.tasks import get_task

    base = get_task("sine")
    data = make_dataset(base, 64, seed=0)
    t = rep.represent(base, "increments")
    run = drift.train(t, "vae", P, dataset=rep.represent_dataset(data, t))
    assert run.key != drift.train("sine", "vae", P).key        # its own cache entry
    X, _ = drift.samples(run, 16, seed=0)
    assert X.shape == (16, base.T, 1) and np.isfinite(t.measure(X)).any()
    with pytest.raises(ValueError, match="n_train, data_seed and task_params"):
        drift.train(t, "vae", P, dataset=data, n_train=10)
    with pytest.raises(TypeError, match="Task instance"):
        drift.train("sine", "vae", P, dataset=data)


def test_plausibility_row_splits_the_drift_of_plausible_samples():
    import pandas as pd

    from paper_lib import metrics, plots
    from paper_lib.datasets import make_dataset

    task = drift.task_for("logistic", P)
    X = make_dataset(task, 200, seed=1).X.copy()
    X[:50] = 2.0                                        # outside [0, 1]: implausible, r̂ ≈ 0
    row = drift.plausibility_row(task, X, P, "data", 0, "own run")
    assert list(row) == drift.PLAUSIBILITY_COLUMNS
    assert row["plausible_frac"] == pytest.approx(0.75)
    bins = drift.quantity_bins(task, P)
    u = metrics.uniform_histogram(bins)
    q = task.measure(X[50:])
    assert row["tv_plausible_only"] == pytest.approx(metrics.tv(metrics.histogram(q, bins), u))
    assert row["tv_model_prior"] > row["tv_plausible_only"]      # the bad quarter leaves the support
    none = drift.plausibility_row(task, X, P, "data", 0, "own run", plausible=np.zeros(200, bool))
    assert none["plausible_frac"] == 0 and np.isnan(none["tv_plausible_only"])
    with pytest.raises(ValueError, match="plausible must be one bool per sample"):
        drift.plausibility_row(task, X, P, "data", 0, "own run", plausible=np.ones(3, bool))
    drift.update_plausibility(pd.DataFrame([row, {**row, "steps": 5}]))
    drift.update_plausibility(pd.DataFrame([{**row, "plausible_frac": 0.5}]))   # replaces its key
    table = plots.read_table("plausibility")
    assert list(table.columns) == drift.PLAUSIBILITY_COLUMNS and len(table) == 2
    assert sorted(table.plausible_frac) == [0.5, 0.75]
