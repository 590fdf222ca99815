import numpy as np
import pytest

from paper_lib.metrics import (Bins, bootstrap_histogram, bootstrap_tv, histogram, mass_shift,
                               noise_floor_tv, null_tv, tv, uniform_histogram, w1)


def test_bins_count_under_and_overflow():
    b = Bins(0.0, 1.0, 4)
    idx = b.index(np.array([-0.1, 0.0, 0.24, 0.25, 0.99, 1.0, 7.0, np.nan, np.inf, -np.inf]))
    assert idx.tolist() == [0, 1, 1, 2, 4, 5, 5, 0, 5, 0]
    assert len(b.centers) == len(b.labels) == 6
    assert b.labels[0] == "<0" and b.labels[-1] == ">=1"


def test_bins_reject_bad_ranges():
    with pytest.raises(ValueError):
        Bins(1.0, 1.0, 3)
    with pytest.raises(ValueError):
        Bins(0.0, 1.0, 0)


def test_histogram_sums_to_one_and_has_edge_bins():
    p = histogram(np.array([-1.0, 0.1, 0.1, 0.6, 2.0]), Bins(0, 1, 2))
    np.testing.assert_allclose(p, [0.2, 0.4, 0.2, 0.2])


def test_tv_hand_cases():
    assert tv([1, 0], [0, 1]) == 1.0
    assert tv([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert tv([0.5, 0.5, 0], [0.25, 0.25, 0.5]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        tv([1, 0], [1, 0, 0])


def test_w1_hand_cases():
    assert w1(np.array([0.0]), np.array([1.0])) == pytest.approx(1.0)
    assert w1(np.array([0.0, 1.0]), np.array([0.0, 3.0])) == pytest.approx(1.0)
    a = np.random.default_rng(0).uniform(0, 1, 5000)
    assert w1(a, a + 0.3) == pytest.approx(0.3)
    assert w1(np.array([0.0, np.nan]), np.array([2.0])) == pytest.approx(2.0)


def test_bootstrap_band_brackets_the_histogram_and_is_deterministic():
    q = np.random.default_rng(0).uniform(0, 1, 2000)
    b = Bins(0, 1, 10)
    p, lo, hi = bootstrap_histogram(q, b, 300, np.random.default_rng(1))
    assert np.all(lo <= p + 1e-12) and np.all(p <= hi + 1e-12)
    assert np.all(hi[1:-1] - lo[1:-1] > 0.005) and np.all(hi[1:-1] - lo[1:-1] < 0.05)
    p2, lo2, hi2 = bootstrap_histogram(q, b, 300, np.random.default_rng(1))
    assert np.array_equal(lo, lo2) and np.array_equal(hi, hi2)


def test_noise_floor_shrinks_with_sample_size():
    b = Bins(0, 1, 20)
    draw = lambda n, g: g.uniform(0, 1, n)  # noqa: E731
    small = noise_floor_tv(draw, 200, b, np.random.default_rng(0))
    large = noise_floor_tv(draw, 20000, b, np.random.default_rng(0))
    assert large < small / 5


def test_mass_shift_sign():
    assert mass_shift([0.2, 0.8], [0.5, 0.5]).tolist() == pytest.approx([-0.3, 0.3])


def test_uniform_histogram_and_quantiles():
    from paper_lib.metrics import uniform_histogram, uniform_quantiles

    b = Bins(1, 4, 3)
    assert uniform_histogram(b).tolist() == pytest.approx([0, 1 / 3, 1 / 3, 1 / 3, 0])
    assert tv(histogram(uniform_quantiles(1, 4, 3000), b), uniform_histogram(b)) < 1e-9


def test_nn_distances_hand_case():
    from paper_lib.metrics import nn_distances

    B = np.array([[[0.0], [0.0]], [[3.0], [4.0]], [[10.0], [0.0]]])
    A = np.array([[[0.0], [1.0]], [[3.0], [4.0]]])
    assert nn_distances(A, B).tolist() == pytest.approx([1.0, 0.0])
    assert nn_distances(B, B, exclude_self=True).tolist() == pytest.approx([5.0, 5.0, 65 ** 0.5], 1e-6)
    big = np.random.default_rng(0).normal(size=(300, 4, 1))
    np.testing.assert_allclose(nn_distances(big, big, exclude_self=True, chunk=64),
                               nn_distances(big, big, exclude_self=True), rtol=1e-6)


def test_consistent_bins():
    from paper_lib.metrics import consistent_bins

    d = np.array([[0.1, -0.1, 0.1, 0.01], [0.2, -0.05, -0.1, 0.02]])
    assert consistent_bins(d, 0.03).tolist() == [1, -1, 0, 0]


def test_agreement_perfect_prediction():
    from paper_lib.metrics import agreement

    data = np.array([0, 0.25, 0.25, 0.25, 0.25, 0])
    model = np.array([0.05, 0.15, 0.2, 0.3, 0.25, 0.05])
    a = agreement(model, model, data, noise=0.02)
    assert a["edf"] == pytest.approx(1) and a["rho"] == pytest.approx(1)
    assert a["sign_agreement"] == 1 and a["tv_pred_model"] == 0
    assert a["tv_prior_model"] == pytest.approx(tv(data, model))


def test_agreement_predicting_the_prior_explains_nothing():
    from paper_lib.metrics import agreement

    data = np.array([0, 0.5, 0.5, 0])
    model = np.array([0.1, 0.3, 0.5, 0.1])
    a = agreement(data, model, data)
    assert a["edf"] == pytest.approx(0) and np.isnan(a["rho"])


def test_agreement_opposite_prediction_is_negative():
    from paper_lib.metrics import agreement

    data = np.array([0.5, 0.5])
    model = np.array([0.7, 0.3])
    a = agreement(np.array([0.3, 0.7]), model, data, noise=0.01)
    assert a["rho"] == pytest.approx(-1) and a["sign_agreement"] == 0 and a["edf"] < 0
    half = agreement(np.array([0.6, 0.4]), model, data)
    assert half["edf"] == pytest.approx(0.5)


def _nn_distances_before(A, B, exclude_self=False, chunk=2048):
    """The implementation nn_distances had before it called kernels.knn (issue 12)."""
    import torch

    a = torch.as_tensor(np.asarray(A, np.float32).reshape(len(A), -1))
    b = torch.as_tensor(np.asarray(B, np.float32).reshape(len(B), -1))
    out = np.empty(len(a))
    with torch.inference_mode():
        for s in range(0, len(a), chunk):
            d = torch.cdist(a[s:s + chunk], b)
            if exclude_self:
                rows = torch.arange(d.shape[0])
                d[rows, rows + s] = float("inf")
            out[s:s + chunk] = d.min(1).values.numpy()
    return out


@pytest.mark.parametrize("chunk", [2048, 64, 7])
def test_nn_distances_is_knn_and_bitwise_unchanged(chunk):
    from paper_lib import kernels
    from paper_lib.metrics import nn_distances

    g = np.random.default_rng(1)
    A = g.normal(size=(300, 16, 2))
    B = g.normal(size=(500, 16, 2)).astype(np.float32)
    B[7] = B[3]                                         # a duplicate: ties
    for args in ((A, B, False), (B, B, True), (B[:120], B, True), (A[:1], B, False)):
        new = nn_distances(*args, chunk=chunk)
        assert new.dtype == np.float64
        assert new.tobytes() == _nn_distances_before(*args, chunk=chunk).tobytes()
        exclude = np.arange(len(args[0])) if args[2] else None
        d, _ = kernels.knn(args[0], args[1], k=1, exclude=exclude, chunk=chunk, exact=False)
        assert d[:, 0].tobytes() == new.tobytes()


def test_null_tv_matches_the_noise_floor_and_rejects_bad_input():
    bins = Bins(0.0, 1.0, 10)
    ref = uniform_histogram(bins)
    rng = np.random.default_rng(0)
    null = null_tv(ref, 2000, 4000, rng)
    floor = noise_floor_tv(lambda n, r: r.uniform(0, 1, n), 2000, bins, rng, repeats=400)
    # two finite samples differ by about sqrt(2) times as much as one sample from the exact prior
    assert 1.25 < floor / null.mean() < 1.6
    # a perfect model passes the 5% test about 95% of the time
    q = rng.uniform(0, 1, (200, 2000))
    passed = np.mean([tv(histogram(x, bins), ref) <= np.quantile(null, 0.95) for x in q])
    assert 0.9 < passed <= 1.0
    with pytest.raises(ValueError, match="n must be a positive integer"):
        null_tv(ref, 0, 10, rng)
    with pytest.raises(ValueError, match="summing to 1"):
        null_tv(ref * 2, 10, 10, rng)


def test_bootstrap_tv_interval_covers_the_true_tv_difference():
    bins = Bins(0.0, 1.0, 10)
    ref = uniform_histogram(bins)
    rng = np.random.default_rng(1)
    # a: a drift of true TV 0.1 (mass moved from the lower to the upper half); b: no drift
    a = np.where(rng.uniform(size=4000) < 0.1, rng.uniform(0.5, 1, 4000), rng.uniform(0, 1, 4000))
    b = rng.uniform(0, 1, 4000)
    ba, bb = bootstrap_tv(a, bins, ref, 2000, rng), bootstrap_tv(b, bins, ref, 2000, rng)
    assert ba.shape == (2000,)
    lo, hi = np.quantile(ba - bb, [0.05, 0.95])
    assert 0 < lo and hi < 0.1          # a drift of TV 0.05 is detected, not inflated past 0.1
    c = rng.uniform(0, 1, 4000)        # two samples without drift: the interval covers 0
    lo, hi = np.quantile(bootstrap_tv(c, bins, ref, 2000, rng) - bb, [0.05, 0.95])
    assert lo < 0 < hi
    with pytest.raises(ValueError, match="ref must have the bins' shape"):
        bootstrap_tv(a, bins, ref[:-1], 10, rng)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_tv(a, bins, ref, 0, rng)


def test_steps_to_reach_inverts_a_power_law():
    from paper_lib import metrics

    steps = np.array([1000.0, 2000.0, 4000.0])
    frac = 1 - 0.4 * (steps / 1000) ** -0.5          # failing fraction 0.4, 0.28, 0.2
    slope, need = metrics.steps_to_reach(steps, frac, goal=0.9)
    assert slope == pytest.approx(-0.5) and need == pytest.approx(16000)
    assert metrics.steps_to_reach(steps, [0.2, 0.1, 0.1])[1] == np.inf      # not falling
    assert all(np.isnan(metrics.steps_to_reach(steps, [0.0, 0.1, 0.2])))   # a rate of 0
    assert all(np.isnan(metrics.steps_to_reach([1000], [0.5])))
    with pytest.raises(ValueError, match="goal must lie in"):
        metrics.steps_to_reach(steps, frac, goal=1.0)


def test_steps_to_reach_band_brackets_the_fit():
    from paper_lib import metrics

    steps = np.array([1000.0, 2000.0, 4000.0])
    frac = 1 - 0.4 * (steps / 1000) ** -0.5          # needs 16,000 steps for 90%
    g = np.random.default_rng(0)
    lo, hi = metrics.steps_to_reach_band(steps, frac, np.array([10**9] * 3), g)
    assert lo == pytest.approx(16000, rel=1e-3) and hi == pytest.approx(16000, rel=1e-3)
    lo, hi = metrics.steps_to_reach_band(steps, frac, np.array([200] * 3), g)
    assert lo < 16000 < hi and hi / lo > 1.5            # few motions: a wide interval
    # the same draws give the same interval; a rate that may stop falling reaches inf
    a = metrics.steps_to_reach_band(steps, frac, np.array([200] * 3), np.random.default_rng(1))
    assert a == metrics.steps_to_reach_band(steps, frac, np.array([200] * 3),
                                            np.random.default_rng(1))
    assert metrics.steps_to_reach_band(steps, [0.2, 0.21, 0.22], np.array([100] * 3), g)[1] \
        == np.inf
    assert all(np.isnan(metrics.steps_to_reach_band(steps, [0.0, 0.0, 0.0], np.array([5] * 3),
                                                    g)))
    for bad, match in (({"n": np.array([10, 10])}, "n must be"),
                       ({"n": np.array([1.5, 2, 3])}, "n must be"),
                       ({"level": 1.0}, "level must be"), ({"goal": 0.0}, "goal must lie in"),
                       ({"n_boot": 0}, "n_boot")):
        kw = {"n": np.array([10] * 3), **bad}
        with pytest.raises(ValueError, match=match):
            metrics.steps_to_reach_band(steps, frac, kw.pop("n"), g, **kw)
