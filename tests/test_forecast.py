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
    held = {"white": (0.7, "test"), "neighbour": (0.7, "test"),
            "denoise": (kernels.denoise(run.trained, 1), "other model")}
    rows, sweep, shown, cost, grid = forecast.forecast(tg, makers, P, held)
    assert list(rows.columns) == forecast.AGREEMENT_COLUMNS
    assert len(grid) == len(sweep) and all(p.shape == tg.p_model.shape for p in grid.values())
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
    # no repeat bank: no ceiling; the cost is counted (no clock): the data-only kernels do no
    # matrix products (0), the denoiser a few reverse steps per trajectory, far below training
    assert rows.edf_ceiling.isna().all() and np.isfinite(tg.flops) and tg.flops > 0
    data_only = rows[rows.kernel != "denoise"]
    assert (data_only.cost_fraction == 0).all()
    den = rows[rows.kernel == "denoise"].cost_fraction
    assert ((den > 0) & (den < 1)).all()


def test_ceiling_cost_fraction_and_before_training_rows():
    """The ceiling is the EDF of the repeat bank: a repeat bank equal to the target bank scores
    EDF 1 (its TV to p_model is 0), one that is the training data scores 0; cost_fraction is the
    forecast's FLOPs over the target's training + sampling FLOPs (its ``cost`` stays in seconds);
    a before-training row built from the target's own samples reproduces p_model exactly."""
    from paper_lib import cost, metrics

    run = drift.train("cone", "diffusion-unet", P, seed=0)
    X, secs = drift.samples(run, 64, seed=0)
    X1 = drift.samples(run, 64, seed=1)[0]
    tg = forecast.make_target(run, X, P, X_repeat=X, sample_seconds=secs)
    assert tg.ceiling == 1.0 and tg.cost == run.trained.train_seconds + secs
    assert tg.flops == cost.train_flops(run.trained) + cost.sample_flops(run.trained, 64)
    tg0 = forecast.make_target(run, X, P, X_repeat=tg.data.X, sample_seconds=secs)
    assert metrics.tv(tg0.p_data, tg0.p_model) > 0 and tg0.ceiling == 0.0
    tg1 = forecast.make_target(run, X, P, X_repeat=X1, sample_seconds=secs)
    p1 = metrics.histogram(run.task.measure(X1), tg1.bins)
    assert tg1.ceiling == metrics.agreement(p1, tg1.p_model, tg1.p_data, tg1.noise)["edf"]
    row, p_hat = forecast.before_training(tg1, "pilot", X, 2.0e6, "itself", scale=0.1)
    np.testing.assert_array_equal(p_hat, tg1.p_model)
    assert row["mode"] == "before-training" and row["edf"] == 1.0 and row["scale"] == 0.1
    assert row["edf_ceiling"] == tg1.ceiling and np.isclose(row["cost_fraction"], 2.0e6 / tg1.flops)
    assert np.isclose(row["locality"], tg1.nn_ratio)   # the samples' own error scale
    assert list(row) == forecast.AGREEMENT_COLUMNS


def test_sampled_is_cached_and_leaves_the_rng_where_a_fresh_draw_would():
    class Noise:
        name, params = "noise", {}

        def fingerprint(self):
            return {"noise": 1}

        def sample(self, n, rng, inpaint=None):
            return rng.standard_normal((n, 4, 1)).astype(np.float32)

    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    X1, s1 = forecast.sampled(Noise(), 5, g1)
    X2, s2 = forecast.sampled(Noise(), 5, g2)     # from the cache
    np.testing.assert_array_equal(X1, X2)
    assert s1 == s2 and g1.random() == g2.random()


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


def test_leave_one_task_out_never_looks_at_the_task_it_chooses_for():
    import pandas as pd

    scores = pd.DataFrame({"task": ["a", "a", "b", "b", "c", "c"],
                           "setting": ["x", "y"] * 3,
                           "edf": [0.9, -5.0, 0.1, 0.2, 0.1, 0.3]})
    # "a" prefers x, yet b and c (which prefer y) choose for a; a's huge x pulls b and c to x
    assert forecast.leave_one_task_out(scores) == {"a": "y", "b": "x", "c": "x"}
    import pytest
    with pytest.raises(ValueError, match="at least 2 tasks"):
        forecast.leave_one_task_out(scores[scores.task == "a"])


def test_pilot_is_a_tenth_of_the_steps_at_half_the_width():
    run = forecast.pilot("cone", "diffusion-unet", P.with_(train_steps=20, width=8))
    assert run.trained.spec.train_steps == 2 and run.trained.spec.width == 4


def test_kernel_pilot_shapes_are_at_most_a_tenth_of_the_compute():
    prof = P.with_(train_steps=24, width=8, batch_size=32)
    for shape in forecast.KERNEL_PILOT_SHAPES:
        size = forecast.pilot_sizes(shape, prof)
        assert (size["train_steps"] * size["batch_size"] * size["width"] ** 2
                <= 0.1 * prof.train_steps * prof.batch_size * prof.width ** 2)
    label = forecast.pilot_label(forecast.KERNEL_PILOT_SHAPES[3], prof)
    assert label == "width 8, batch 4, 8 steps"
    spec = forecast.kernel_pilot("cone", "diffusion-unet", prof, forecast.KERNEL_PILOT_SHAPES[3],
                                 seed=1).trained.spec
    assert (spec.train_steps, spec.batch_size, spec.width) == (8, 4, 8)
    # the first shape is the sampled pilot's
    first = forecast.pilot_sizes(forecast.KERNEL_PILOT_SHAPES[0], prof)
    pilot = forecast.pilot("cone", "diffusion-unet", prof).trained.spec
    assert (first["train_steps"], first["width"]) == (pilot.train_steps, pilot.width)


def test_local_surrogate_chooses_t_star_on_the_other_tasks_with_the_targets_setting():
    """Three 'models' whose samples are their data moved by white noise, a and b at locality 1,
    c at 0.25. The 'surrogate' kernel is white noise at locality grid[t*] (setting x) or 4 ×
    that (setting y). With setting y, c's t* is chosen on a and b scored *with y*: t* = 0
    (0.25 × 4 = 1, their locality), whatever c's own model would prefer."""
    from paper_lib import get_task, make_dataset, metrics

    task = get_task("cone")
    bins = metrics.Bins(task.lo, task.hi, 10)

    def target(seed, locality):
        ds = make_dataset("cone", 256, seed=seed, use_cache=False)
        tg = forecast.Target(task, "synthetic", ds, bins,
                             metrics.histogram(task.measure(ds.X), bins), None, None,
                             kernels.data_spacing(ds.X), locality)
        s = forecast.scale_at(kernels.white, tg, locality)
        X = kernels.white(s).sample(np.repeat(ds.X, 8, 0), np.random.default_rng(seed))
        tg.p_model, tg.noise = metrics.histogram(task.measure(X), bins), np.zeros(bins.n + 2)
        tg.flops = 100.0    # FLOPs to train and sample the 'model'
        return tg

    targets = {"a": target(0, 1.0), "b": target(1, 1.0), "c": target(2, 0.25)}
    localities = (0.25, 1.0)

    def kernel_for(setting, name, t_star):
        gain = {"x": 1.0, "y": 4.0}[setting]
        return kernels.white(forecast.scale_at(kernels.white, targets[name],
                                               gain * localities[t_star]))

    prof = P.with_(kernel_draws=4)
    rows, shown, sweep = forecast.local_surrogate(targets, kernel_for,
                                                  {"a": "x", "b": "x", "c": "y"}, prof,
                                                  "white", grid=(0, 1),
                                                  flops=lambda setting, name: 1e6 * (name == "c"))
    assert len(sweep) == 2 * 3 * 2 and set(sweep.setting) == {"x", "y"}
    assert len(rows) == 3 and set(shown) == {"a", "b", "c"}
    c = rows[2]
    assert c["mode"] == "before-training" and c["scale"] == 0
    assert c["source"] == "y, t*=0 (chosen on a & b)"
    a = rows[0]
    assert a["source"].startswith("x, t*=") and a["source"].endswith("(chosen on b & c)")
    # the locality is measured for the chosen rows (y at t* = 0 moves c's data by 4 × 0.25)
    assert abs(c["locality"] - 1.0) < 0.05
    assert all(np.isfinite(r["locality"]) for r in rows)
    # c's kernel cost 1e6 FLOPs to build (a pilot's training): its cost fraction counts it
    assert c["cost_fraction"] >= 1e6 / 100.0 and a["cost_fraction"] < 1
    assert c["setting"] == "y" and a["setting"] == "x"
    # a list of settings: (setting, t*) chosen together on the other tasks. For c, a and b both
    # score best at locality 1, which (x, t*=1) and (y, t*=0) reach
    rows, _, _ = forecast.local_surrogate(targets, kernel_for, ["x", "y"], prof, "white",
                                          grid=(0, 1))
    assert (rows[2]["setting"], rows[2]["scale"]) in {("x", 1), ("y", 0)}
    for r in rows:
        assert r["source"].startswith(f"{r['setting']}, t*={int(r['scale'])} (chosen on")


def test_evaluate_can_skip_the_locality():
    """A prediction whose row does not report its locality skips measuring it (NaN); the
    agreement numbers and the prediction are the same as with it."""
    from paper_lib import get_task, make_dataset, metrics

    task = get_task("sine")
    ds = make_dataset("sine", 128, seed=0, use_cache=False)
    bins = metrics.Bins(task.lo, task.hi, 8)
    p = metrics.histogram(task.measure(ds.X), bins)
    X_model = kernels.white(0.1).sample(ds.X, np.random.default_rng(1))
    tg = forecast.Target(task, "synthetic", ds, bins, p,
                         metrics.histogram(task.measure(X_model), bins), np.zeros(bins.n + 2),
                         kernels.data_spacing(ds.X), 1.0)
    kernel = kernels.white(0.05)
    with_loc = forecast.evaluate(tg, kernel, P, "x")
    without = forecast.evaluate(tg, kernel, P, "x", locality=False)
    assert np.isnan(without["locality"]) and np.isfinite(with_loc["locality"])
    assert with_loc["locality"] == forecast.locality_on(tg, kernel)
    np.testing.assert_array_equal(with_loc["p_hat"], without["p_hat"])
    assert np.isfinite(with_loc["edf"]) and with_loc["edf"] == without["edf"]


def test_meets_goal_is_rho_and_edf_against_the_ceiling():
    import pandas as pd

    d = pd.DataFrame({"rho": [0.7, 0.69, 0.9, 0.9], "edf": [0.4, 0.9, 0.39, 0.1],
                      "ceiling": [0.8, 0.8, 0.8, 0.2]})
    assert forecast.meets_goal(d.rho, d.edf, d.ceiling).tolist() == [True, False, False, True]
    assert forecast.meets_goal(0.7, 0.5, 1.0) and not forecast.meets_goal(0.7, 0.49, 1.0)
