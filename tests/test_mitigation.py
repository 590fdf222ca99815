"""Tests of paper_lib.mitigation: known answers of the reweighting and bookkeeping helpers."""
from __future__ import annotations

import numpy as np
import pytest

from paper_lib import metrics, mitigation as mit


@pytest.fixture
def bins():
    return metrics.Bins(0.0, 1.0, 5)


def test_transition_matrix_columns_are_distributions(bins):
    rng = np.random.default_rng(0)
    q = rng.uniform(0, 0.6, 200)                       # nothing in the last two inner bins
    pred = np.r_[q + 0.05, q - 0.05]                   # two draws, draw-major
    M = mit.transition_matrix(q, pred, bins)
    assert M.shape == (bins.n + 2, bins.n + 2)
    live = M.sum(0) > 0
    np.testing.assert_allclose(M.sum(0)[live], 1.0)
    assert not live[[4, 5]].any()
    np.testing.assert_allclose(mit.transition_matrix(q, np.c_[q + .05, q - .05], bins), M)
    with pytest.raises(ValueError, match="q_pred"):
        mit.transition_matrix(q, pred[:-1], bins)


def test_predistort_identity_is_the_target_and_inverts_a_shift(bins):
    target = metrics.uniform_histogram(bins)
    np.testing.assert_allclose(mit.predistort(np.eye(bins.n + 2), target), target)
    # a kernel that moves 30 % of each inner bin's mass one bin up (the top bin keeps its own):
    # an exact non-negative solution exists, with more mass at the bottom (it only loses mass)
    # and less above it, and Richardson-Lucy finds it
    M = np.zeros((bins.n + 2, bins.n + 2))
    for b in range(1, bins.n):
        M[b, b], M[b + 1, b] = 0.7, 0.3
    M[bins.n, bins.n] = 1.0
    d = mit.predistort(M, target, iters=2000)
    assert d[1] > target[1] and d[bins.n] < target[bins.n]
    assert d.sum() == pytest.approx(1.0) and (d >= 0).all() and d[0] == d[-1] == 0
    assert metrics.tv(M @ target, target) > 0.05
    assert metrics.tv(M @ d, target) < 1e-3
    w = d[1:-1] / target[1:-1]
    assert w.max() <= mit.MAX_WEIGHT * (1 + 1e-9) and w.min() >= 1 / mit.MAX_WEIGHT * (1 - 1e-9)
    with pytest.raises(ValueError, match="M must be"):
        mit.predistort(np.eye(3), target)


def test_plain_and_row_weights(bins):
    prior = metrics.uniform_histogram(bins)
    p_model = prior.copy()
    p_model[1:-1] = [0.4, 0.3, 0.2, 0.1, 0.0]
    w = mit.plain_weights(p_model, bins)
    assert w.mean() == pytest.approx(1.0)
    assert np.all(np.diff(w) > 0)                       # less mass, more weight
    assert w[-1] / w[0] == pytest.approx(mit.MAX_WEIGHT / 0.5)   # the empty bin is floored
    q = np.r_[np.full(3, 0.1), np.full(1, 0.3), 2.0]    # the last one is outside the bins
    rw = mit.row_weights(q, bins, np.ones(bins.n))
    np.testing.assert_allclose(rw, [1 / 3, 1 / 3, 1 / 3, 1.0, 0.0])
    with pytest.raises(ValueError, match="bin_weights"):
        mit.row_weights(q, bins, -np.ones(bins.n))


def test_condition_error_and_tv_change(bins):
    req = np.r_[np.full(10, 0.1), np.full(10, 0.5)]
    meas = req + np.r_[np.full(10, 0.02), np.full(9, -0.1), np.nan]
    df = mit.condition_error(req, meas, bins)
    assert list(df["n"]) == [10, 0, 10, 0, 0] and df["n_nan"].sum() == 1
    assert df["mean_error"].iloc[0] == pytest.approx(0.02)
    assert df["mean_error"].iloc[2] == pytest.approx(-0.1)
    rng = np.random.default_rng(0)
    flat, lumpy = rng.uniform(0, 1, 2000), rng.uniform(0, 0.4, 2000)
    d, lo, hi = mit.tv_change(flat, lumpy, bins, 200, rng)
    assert d < 0 and lo <= d <= hi and hi < 0         # flatter: nearer the prior, beyond noise
    d0, lo0, hi0 = mit.tv_change(flat, rng.uniform(0, 1, 2000), bins, 200, rng)
    assert lo0 < 0 < hi0


def test_mosaic_forecast_memorises_with_the_exact_denoiser(tmp_path, monkeypatch):
    """Known answers of the U-Net's surrogate as a forecast: switched to the exact empirical
    denoiser at every step (switch 1.0) it draws training trajectories, all plausible and inside
    the support; one-sample patches at every step (switch 0) stitch noise that fails the check."""
    from paper_lib import drift, get_profile, make_dataset
    from paper_lib.seeding import rng

    monkeypatch.setenv("PAPER_LIB_CACHE", str(tmp_path))
    P = get_profile("smoke")
    task = drift.task_for("sine", P)
    data = make_dataset(task, 32, seed=0)
    bins = drift.quantity_bins(task, P)
    exact = mit.mosaic_forecast(task, data.X, bins, (1, 1.0), 64, 10, rng(0, "test", "exact"))
    assert exact["plausible"] == 1.0 and exact["p"][0] == exact["p"][-1] == 0
    assert exact["p"].sum() == pytest.approx(1) and 0 <= exact["tv_prior"] <= 1
    again = mit.mosaic_forecast(task, data.X, bins, (1, 1.0), 64, 10, rng(0, "test", "exact"))
    assert np.array_equal(again["p"], exact["p"])
    pointwise = mit.mosaic_forecast(task, data.X, bins, (1, 0.0), 64, 10, rng(0, "test", "p1"))
    assert pointwise["plausible"] < 0.5


def test_pilot_forecast_is_the_kernel_pilots_denoiser_on_the_set(tmp_path, monkeypatch):
    """The kernel pilot's forecast of a training set: the pilot trained on that set at
    the shape's sizes, its denoiser at t* over the first kernel_n trajectories; the
    same call gives the same histogram, and its seconds count the pilot's training."""
    from paper_lib import drift, forecast, get_profile, kernels, make_dataset
    from paper_lib.seeding import rng

    monkeypatch.setenv("PAPER_LIB_CACHE", str(tmp_path))
    P = get_profile("smoke").with_(train_steps=12, batch_size=16, kernel_n=24)
    task = drift.task_for("sine", P)
    data = make_dataset(task, 32, seed=0)
    bins = drift.quantity_bins(task, P)
    shape = forecast.KERNEL_PILOT_SHAPES[3]
    out = mit.pilot_forecast(task, data, bins, shape, 1, P, 2, rng(0, "test", "pilot"))
    run = forecast.kernel_pilot(task, "diffusion-unet", P, shape, dataset=data)
    assert (run.trained.spec.train_steps, run.trained.spec.batch_size) == (4, 2)
    p, _ = kernels.predict(task, data.subset(np.arange(24)), kernels.denoise(run.trained, 1), 2,
                           bins, rng(0, "test", "pilot"))
    np.testing.assert_array_equal(out["p"], p)
    assert out["p"].sum() == pytest.approx(1) and 0 <= out["tv_prior"] <= 1
    assert out["seconds"] >= run.trained.train_seconds > 0


def test_pilot_choice_reads_what_notebook_03_chose():
    from pathlib import Path

    import pandas as pd

    from paper_lib import forecast, get_profile

    P = get_profile("default")
    shape = forecast.KERNEL_PILOT_SHAPES[2]
    row = {"task": "cone", "model": "diffusion-unet", "kernel": "pilot-denoise",
           "mode": "before-training", "scale": 3.0,
           "source": forecast.pilot_label(shape, P) + ", t*=3 (chosen on logistic & sine)"}
    table = pd.DataFrame([row, {**row, "task": "sine", "source": "width 5, batch 5, 5 steps, t*=3"},
                          {**row, "task": "maze", "kernel": "mosaic-denoise"}])
    assert forecast.pilot_choice(table, "cone", P) == (shape, 3)
    for task in ("sine", "maze", "pendulum"):   # unreadable shape, missing row, no row at all
        with pytest.raises(ValueError, match=f"pilot-denoise row for task '{task}'"):
            forecast.pilot_choice(table, task, P)
    committed = pd.read_csv(Path(__file__).resolve().parents[1] / "figures" / "tables"
                            / "kernel_agreement.csv")   # the format 03 writes today
    for task in ("sine", "cone", "logistic", "maze", "pendulum"):
        shape, t_star = forecast.pilot_choice(committed, task, P)
        assert shape in forecast.KERNEL_PILOT_SHAPES and t_star >= 0


def test_mosaic_setting_reads_what_notebook_03_chose():
    from pathlib import Path

    import pandas as pd

    from paper_lib import forecast

    row = {"task": "cone", "model": "diffusion-unet", "kernel": "mosaic",
           "mode": "before-training", "source": "P_lo=5, switch=0.5 (chosen on logistic & sine)"}
    table = pd.DataFrame([row, {**row, "task": "sine", "source": "a pilot"}])
    assert forecast.mosaic_setting(table, "cone") == (5, 0.5)
    for task in ("sine", "maze"):   # unreadable, missing
        with pytest.raises(ValueError, match=f"mosaic row for task '{task}'"):
            forecast.mosaic_setting(table, task)
    committed = pd.read_csv(Path(__file__).resolve().parents[1] / "figures" / "tables"
                            / "kernel_agreement.csv")   # the format 03 writes today
    for task in ("sine", "cone", "logistic", "maze", "pendulum"):
        p_lo, switch = forecast.mosaic_setting(committed, task)
        assert p_lo % 2 == 1 and 0 <= switch <= 1
