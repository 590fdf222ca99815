import numpy as np

from paper_lib import drift, forecast, kernels
from paper_lib.profiles import get_profile

P = get_profile("smoke").with_(n_train=64, train_steps=5, n_samples=64, kernel_n=64,
                               localities=(0.5, 1.0), t_stars=(0, 2))


def test_forecast_rows_modes_and_calibration():
    run = drift.train("cone", "diffusion-unet", P, seed=0)
    X, _ = drift.samples(run, 64, seed=0)
    tg = forecast.make_target(run, X, P)
    assert tg.p_model.shape == (P.n_bins + 2,) and tg.nn_ratio > 0 and tg.spacing > 0
    makers = {f: forecast.family_maker(f, tg, X, run.trained)
              for f in ["white", "spectral", "neighbour", "denoise"]}
    held = {"white": (0.7, "test"), "neighbour": (0.7, "test")}
    rows, sweep, shown, cost = forecast.forecast(
        tg, makers, P, held, (kernels.denoise(run.trained, 1), "other model"))
    assert list(rows.columns) == forecast.AGREEMENT_COLUMNS
    modes = rows.groupby("kernel")["mode"].apply(set).to_dict()
    assert modes["white"] == {"calibrated", "matched", "held-out"}
    assert modes["spectral"] == {"calibrated", "matched"}
    assert modes["denoise"] == {"calibrated", "matched", "held-out"}
    for family in makers:   # the calibrated scale is the sweep's best
        s = sweep[sweep.kernel == family]
        cal = rows[(rows.kernel == family) & (rows["mode"] == "calibrated")].iloc[0]
        assert np.isclose(cal.tv_pred_model, s.tv_pred_model.min())
    # the sweep hits the profile's locality grid for data-only kernels (linear in the scale)
    w = sweep[sweep.kernel == "white"]
    np.testing.assert_allclose(w.locality, P.localities, rtol=0.05)
    held_white = rows[(rows.kernel == "white") & (rows["mode"] == "held-out")].iloc[0]
    assert abs(held_white.locality - 0.7) < 0.05 and held_white.source == "test"
    assert set(cost.kernel) == set(makers) and (cost.predict_seconds > 0).all()
    assert ("denoise", "held-out") in shown


def test_pinned_target_keeps_the_endpoints():
    run = drift.train("cone", "diffusion-unet", P, seed=0)
    X, _ = drift.samples(run, 64, seed=0)
    keep = np.zeros((64, 2), bool)
    keep[[0, -1]] = True
    tg = forecast.make_target(run, X, P, keep=keep)
    for f in ["white", "smooth", "neighbour", "denoise"]:
        k = forecast.family_maker(f, tg, X, run.trained)(1.0)
        Y = k.sample(tg.data.X[:8], np.random.default_rng(0))
        np.testing.assert_allclose(Y[:, keep], tg.data.X[:8][:, keep], atol=1e-6)


def test_synthetic_localities_reads_calibrated_rows():
    import pandas as pd

    t = pd.DataFrame({"task": ["sine", "cone", "maze"], "model": ["diffusion-unet"] * 3,
                      "kernel": ["white"] * 3, "mode": ["calibrated"] * 3,
                      "locality": [1.0, 3.0, 100.0]})
    out = forecast.synthetic_localities(t)
    assert set(out) == {"white"} and out["white"][0] == 2.0


def test_calibrated_mode_recovers_the_locality_of_a_synthetic_model():
    """A 'model' whose samples are the data moved by white noise at locality 0.5: the calibrated
    white kernel lands on that locality and explains almost all of the drift."""
    from paper_lib import get_task, make_dataset, metrics

    task, ds = get_task("cone"), make_dataset("cone", 512, seed=0, use_cache=False)
    bins = metrics.Bins(task.lo, task.hi, 10)
    spacing = kernels.data_spacing(ds.X)
    tg = forecast.Target(task, "synthetic", ds, bins, metrics.histogram(task.measure(ds.X), bins),
                         None, None, spacing, 0.5)
    s_true = forecast.scale_at(kernels.white, tg, 0.5)
    q = task.measure(kernels.white(s_true).sample(np.repeat(ds.X, 8, 0), np.random.default_rng(1)))
    tg.p_model, tg.noise = metrics.histogram(q, bins), np.zeros(bins.n + 2)
    prof = P.with_(localities=(0.1, 0.25, 0.5, 1.0, 2.0), kernel_draws=4)
    rows, *_ = forecast.forecast(tg, {"white": kernels.white}, prof)
    cal = rows[rows["mode"] == "calibrated"].iloc[0]
    assert abs(cal.locality - 0.5) < 0.02 and cal.edf > 0.7
    matched = rows[rows["mode"] == "matched"].iloc[0]     # nn_ratio 0.5: the same scale
    assert abs(matched.scale - s_true) < 1e-12
