"""Known-answer tests of paper_lib.surrogates on tiny data: the memorising limits reproduce the
training set, the local limits do not, inpainting and determinism hold, bad arguments are named."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import paper_lib
from paper_lib import kernels
from paper_lib import surrogates as S
from paper_lib.metrics import Bins

N = 16


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Single-threaded torch: these many small products only pay for a second thread's wait
    (50x slower when the machine is busy)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cone():
    task = paper_lib.get_task("cone")
    return task, paper_lib.make_dataset("cone", N, seed=0, use_cache=False).X


def _rng(seed=0):
    return np.random.default_rng(seed)


def _nearest(Z, X):
    return kernels.knn(Z, X, 1)[0][:, 0]


def _all_samplers(task, X):
    return [S.PatchMosaic(task, X, S.two_stage_schedule(task.T, 3, 0.9, steps=20), steps=20),
            S.SmoothedClosedForm(task, X, 0.2, draws=2, steps=20),
            S.NearestContext(task, X, 4, k=3), S.LowRank(task, X, 3, noise=0.01)]


def test_exact_limits_memorise(cone):
    task, X = cone
    mosaic = S.PatchMosaic(task, X, 3 * task.T)       # clipped to 2T: the exact denoiser
    plain = S.SmoothedClosedForm(task, X, 0.0)
    assert (mosaic.params["patch_schedule"] == S.exact_size(task.T)).all()
    A, B = mosaic.sample(24, _rng(3)), plain.sample(24, _rng(3))
    np.testing.assert_array_equal(A, B)               # the same denoiser, the same draws
    assert A.shape == (24, task.T, task.C) and A.dtype == np.float32
    assert _nearest(A, X).max() < 1e-3                # every sample is a training trajectory
    assert len(np.unique(kernels.knn(A, X, 1)[1])) > 1


def test_local_patches_and_smoothing_create(cone):
    task, X = cone
    spacing = kernels.data_spacing(X)
    local = S.PatchMosaic(task, X, 3, n_patches=N * task.T).sample(24, _rng(1))
    smoothed = S.SmoothedClosedForm(task, X, 0.5, draws=2).sample(24, _rng(1))
    for Z in (local, smoothed):
        d = _nearest(Z, X)
        assert np.isfinite(Z).all() and d.max() > 0.1 * spacing and (d > 1e-3).mean() > 0.2


def _mosaic_reference(x, Xm, P, ab):
    """ELS denoiser by loops over every patch of every training trajectory (float64)."""
    n, T, C = x.shape
    h = P // 2
    xp = np.pad(x, ((0, 0), (h, h), (0, 0)))
    Yp = np.pad(Xm, ((0, 0), (h, h), (0, 0)))
    bank = np.array([Yp[j, i:i + P] for j in range(len(Xm)) for i in range(T)])
    centres = np.array([Xm[j, i] for j in range(len(Xm)) for i in range(T)])
    out = np.empty_like(x)
    for s in range(n):
        for i in range(T):
            d2 = ((xp[s, i:i + P][None] - np.sqrt(ab) * bank) ** 2).sum((1, 2))
            w = np.exp(-(d2 - d2.min()) / (2 * (1 - ab)))
            out[s, i] = (w[:, None] * centres).sum(0) / w.sum()
    return out


@pytest.mark.parametrize("P, ab", [(1, 0.3), (3, 0.5), (7, 0.9), (23, 0.7)])
def test_mosaic_denoiser_matches_loops_with_zero_padding(P, ab):
    g = np.random.default_rng(P)
    Xm = g.normal(size=(5, 12, 2)).astype(np.float32)
    x = g.normal(size=(3, 12, 2)).astype(np.float32)
    bank = S.PatchBank(torch.as_tensor(Xm), 10 ** 6, g)    # every patch
    got = S.mosaic_x0(torch.as_tensor(x), bank, P, ab).numpy()
    np.testing.assert_allclose(got, _mosaic_reference(x.astype(float), Xm, P, ab), atol=2e-5)


def test_nearest_context_k1_reproduces_training(cone):
    task, X = cone
    Z = S.NearestContext(task, X, context=task.T - 1, k=1).sample(32, _rng(2))
    assert _nearest(Z, X).max() < 1e-5
    Z = S.NearestContext(task, X, context=1, k=1).sample(32, _rng(2))
    assert _nearest(Z, X).max() < 1e-5               # a zero-distance context is itself
    Z = S.NearestContext(task, X, context=2, k=4).sample(32, _rng(2))
    assert _nearest(Z, X).max() > 1e-3


def test_lowrank_kernel_identity_subspace_and_sampler(cone):
    task, X = cone
    D = task.T * task.C
    np.testing.assert_array_equal(S.lowrank(task, X, D).sample(X, _rng()), X)
    for r in (0, 1, 3):
        k = S.lowrank(task, X, r)
        assert k.scale == r and 0 <= k.params["explained"] <= 1
        for Z in (k.sample(X, _rng()), S.LowRank(task, X, r).sample(40, _rng())):
            A = task.to_model(Z).reshape(len(Z), -1).astype(float)
            sv = np.linalg.svd(A - A.mean(0), compute_uv=False)
            assert (sv[r:] <= 1e-4 * max(sv[0], 1e-3)).all(), (r, sv[:r + 2])
    noisy = S.lowrank(task, X, D, noise=0.05).sample(X, _rng())
    dev = task.to_model(noisy) - task.to_model(X)
    assert abs(dev.std() / 0.05 - 1) < 0.1


def test_determinism_and_fingerprints(cone):
    task, X = cone
    for sur in _all_samplers(task, X):
        a, b, c = (sur.sample(6, _rng(s)) for s in (1, 1, 2))
        assert a.shape == (6, task.T, task.C) and a.dtype == np.float32, sur
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c), sur
        fp = sur.fingerprint()
        json.dumps(fp)
        assert fp != type(sur)(task, X[::-1].copy(), **_ctor(sur)).fingerprint()
        assert sur.sample(0, _rng()).shape == (0, task.T, task.C)
    for k in (S.surrogate_denoise(_all_samplers(task, X)[0], 5), S.lowrank(task, X, 2, 0.1)):
        np.testing.assert_array_equal(k.sample(X, _rng(4)), k.sample(X, _rng(4)))
        json.dumps(k.fingerprint())


def _ctor(sur):
    p = dict(sur.params)
    if "patch_schedule" in p:
        p["patch_schedule"] = p["patch_schedule"].copy()
    return p


def test_inpainting_keeps_imposed_entries(cone):
    task, X = cone
    mask = np.zeros((task.T, task.C), bool)
    mask[0], mask[-1] = True, True
    values = X[:5]
    for sur in _all_samplers(task, X)[:2]:
        Z = sur.sample(5, _rng(), inpaint=(mask, values))
        np.testing.assert_array_equal(Z[:, mask], values[:, mask])
        kern = S.surrogate_denoise(sur, 3, keep=mask)
        assert kern.params["alpha_bar"] == sur.alpha_bar[3]
        np.testing.assert_array_equal(kern.sample(X, _rng())[:, mask], X[:, mask])
    for sur in _all_samplers(task, X)[2:]:
        with pytest.raises(ValueError, match="inpaint"):
            sur.sample(5, _rng(), inpaint=(mask, values))


def test_kernels_work_with_predict_and_locality(cone):
    task, X = cone
    bins = Bins(task.lo, task.hi, 5)
    mosaic = S.PatchMosaic(task, X, 3, steps=20)
    for k in (S.surrogate_denoise(mosaic, 2), S.lowrank(task, X, 4, 0.01)):
        p, q = kernels.predict(task, X, k, 2, bins, _rng())
        assert p.shape == (bins.n + 2,) and np.isclose(p.sum(), 1) and q.shape == (2 * N,)
        p2, _ = kernels.predict(task, X, k, 2, bins, _rng())       # from the cache
        np.testing.assert_array_equal(p, p2)
        assert kernels.kernel_locality(k, X, 1.0, _rng()) > 0


def test_two_stage_schedule(cone):
    task, X = cone
    ab = S.PatchMosaic(task, X, 5).alpha_bar
    E = S.exact_size(task.T)
    s = S.two_stage_schedule(task.T, 5, 0.9)
    assert s.shape == (100,) and s.dtype == np.int64 and E == 2 * task.T
    np.testing.assert_array_equal(s, np.where(ab >= 0.9, 5, E))
    assert s[0] == 5 and s[-1] == E and set(s) == {5, E}
    assert (S.two_stage_schedule(task.T, 5, 0.0) == 5).all()
    assert (S.two_stage_schedule(task.T, 5, 1.0) == E).all()
    ladder = S.size_ladder(task.T)
    assert ladder[0] == 1 and ladder[-2:].tolist() == [2 * task.T - 1, E]
    assert (np.diff(ladder) > 0).all() and (ladder[:-1] % 2 == 1).all()
    assert len(S.two_stage_schedule(task.T, 1, 0.5, steps=10, noise_schedule="linear")) == 10
    mosaic = S.two_stage_mosaic(task, X, 5, 0.9, steps=20)
    twin = S.PatchMosaic(task, X, S.two_stage_schedule(task.T, 5, 0.9, steps=20), steps=20)
    assert mosaic.fingerprint() == twin.fingerprint()


def test_two_stage_label_reads_back():
    for p_lo, switch in ((3, 0.5), (9, 0.9), (121, 0.0), (1, 1.0)):
        label = S.two_stage_label(p_lo, switch)
        assert S.read_two_stage_label(label) == (p_lo, switch)
        assert S.read_two_stage_label(label + " (chosen on cone & sine)") == (p_lo, switch)
    assert S.read_two_stage_label("rank=4") is None
    assert S.read_two_stage_label(float("nan")) is None


def test_calibrate_finds_the_exact_and_a_local_network(cone):
    task, X = cone
    Xm = torch.as_tensor(task.to_model(X))
    ab = S.PatchMosaic(task, X, 5, steps=20).alpha_bar
    exact = lambda x, t: S.empirical_x0(x, Xm, float(ab[t]))  # noqa: E731
    sizes = [1, 3, 5, 2 * task.T - 1, 2 * task.T]
    for on in ("path", "data"):
        sched, mse = S.calibrate_patch_schedule(task, X, exact, _rng(), sizes=sizes, n=8,
                                                steps=20, on=on)
        assert sched.shape == (20,) and (sched == 2 * task.T).all()
        assert mse.shape == (5, 20) and (mse[-1] == 0).all() and (mse[:-1] >= 0).all()
    bank = S.PatchBank(Xm, N * task.T, _rng())
    local = lambda x, t: S.mosaic_x0(x, bank, 3, float(ab[t]))  # noqa: E731
    sched, mse = S.calibrate_patch_schedule(task, X, local, _rng(), sizes=sizes, n=8, steps=20,
                                            n_patches=N * task.T, ts=[0, 10, 19])
    assert (mse[sizes.index(3)] == 0).all() and sched[-1] == 3   # others differ when noisy
    assert sched.shape == (20,) and (mse[np.searchsorted(sizes, sched[[0, 10, 19]]),
                                          [0, 1, 2]] == 0).all()


def test_model_x0_adapter_on_an_untrained_unet(cone):
    task, X = cone
    spec = paper_lib.models.make_spec("diffusion-unet", None, width=8, diffusion_steps=10)
    torch.manual_seed(0)
    net = paper_lib.models.build(spec, task.T, task.C)
    trained = paper_lib.models.Trained(spec, task, {k: v.clone() for k, v in
                                                    net.state_dict().items()})
    f = S.model_x0(trained, device="cpu")
    out = f(torch.zeros(3, task.T, task.C), 4)
    assert out.shape == (3, task.T, task.C)
    sched, mse = S.calibrate_patch_schedule(task, X, f, _rng(), sizes=[1, 2 * task.T], n=4,
                                            steps=10, ts=[0, 9])
    assert sched.shape == (10,) and set(sched) <= {1, 2 * task.T} and np.isfinite(mse).all()
    with pytest.raises(ValueError, match="diffusion"):
        S.model_x0(paper_lib.models.Trained(paper_lib.models.make_spec("vae", None), task, {}))


@pytest.mark.parametrize("make, match", [
    (lambda t, X: S.PatchMosaic(t, X, 4), "patch_schedule"),
    (lambda t, X: S.PatchMosaic(t, X, [3] * 7), "patch_schedule"),
    (lambda t, X: S.PatchMosaic(t, X, 0), "patch_schedule"),
    (lambda t, X: S.PatchMosaic(t, X, 2 * t.T - 2), "patch_schedule"),
    (lambda t, X: S.PatchMosaic(t, X, 3, n_patches=0), "n_patches"),
    (lambda t, X: S.PatchMosaic(t, X, 3, steps=0), "steps"),
    (lambda t, X: S.PatchMosaic(t, X, 3, noise_schedule="sqrt"), "noise_schedule"),
    (lambda t, X: S.SmoothedClosedForm(t, X, -0.1), "sigma"),
    (lambda t, X: S.SmoothedClosedForm(t, X, float("nan")), "sigma"),
    (lambda t, X: S.SmoothedClosedForm(t, X, 0.1, draws=0), "draws"),
    (lambda t, X: S.NearestContext(t, X, 0), "context"),
    (lambda t, X: S.NearestContext(t, X, t.T), "context"),
    (lambda t, X: S.NearestContext(t, X, 3, k=N + 1), "k"),
    (lambda t, X: S.LowRank(t, X, -1), "rank"),
    (lambda t, X: S.LowRank(t, X, t.T * t.C + 1), "rank"),
    (lambda t, X: S.LowRank(t, X, 2, noise=-1), "noise"),
    (lambda t, X: S.LowRank(t, X[:, :10], 2), "expected trajectories"),
    (lambda t, X: S.lowrank(t, X, 2.5), "rank"),
    (lambda t, X: S.lowrank(t, X, 2).sample(X[:, :10], _rng()), "expected trajectories"),
    (lambda t, X: S.two_stage_schedule(t.T, 4, 0.9), "p_lo"),
    (lambda t, X: S.two_stage_schedule(t.T, 3, 1.5), "alpha_switch"),
    (lambda t, X: S.surrogate_denoise(S.PatchMosaic(t, X, 3, steps=10), 10), "t_star"),
    (lambda t, X: S.surrogate_denoise(S.LowRank(t, X, 2), 1), "surrogate"),
    (lambda t, X: S.LowRank(t, X, 2).sample(-1, _rng()), "n must be"),
    (lambda t, X: S.calibrate_patch_schedule(t, X, None, _rng(), sizes=[2]), "sizes"),
    (lambda t, X: S.calibrate_patch_schedule(t, X, None, _rng(), ts=[100]), "ts"),
    (lambda t, X: S.calibrate_patch_schedule(t, X, None, _rng(), on="model"), "on"),
])
def test_bad_arguments_name_the_argument(cone, make, match):
    task, X = cone
    with pytest.raises(ValueError, match=match):
        make(task, X)
