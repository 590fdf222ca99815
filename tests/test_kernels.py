import numpy as np
import pytest

import paper_lib
from paper_lib import kernels as K
from paper_lib.metrics import Bins, histogram, tv


@pytest.fixture(scope="module")
def cone():
    return paper_lib.get_task("cone"), paper_lib.make_dataset("cone", 512, seed=0, use_cache=False)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _kernels(train):
    psd = K.fit_spectral(_rng(5).normal(0, 0.01, train.shape))
    return [K.white(0.02), K.smooth(0.02, 4), K.spectral(psd, 1.0), K.neighbour(train, 0.3, k=4)]


def test_every_kernel_shape_determinism_and_scale_zero(cone):
    _, ds = cone
    X = ds.X[:64]
    for k in _kernels(X):
        a, b, c = (k.sample(X, _rng(s)) for s in (1, 1, 2))
        assert a.shape == X.shape and a.dtype == np.float32, k
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c) and not np.array_equal(a, X), k
        k.scale = 0.0
        np.testing.assert_array_equal(k.sample(X, _rng(1)), X)
        assert isinstance(k.params, dict) and k.name in K.KERNELS


def test_white_std_matches_scale():
    X = np.zeros((400, 64, 2), np.float32)
    d = K.white(0.05).sample(X, _rng()) - X
    assert abs(d.std() / 0.05 - 1) < 0.05


def test_smooth_has_scale_std_and_is_correlated():
    X = np.zeros((400, 64, 1), np.float32)
    d = K.smooth(0.05, 4).sample(X, _rng())[..., 0].astype(float)
    assert abs(d.std() / 0.05 - 1) < 0.05
    assert np.all(np.abs(d.std(0) / 0.05 - 1) < 0.2)      # every time step, not only on average
    lag1 = (d[:, 1:] * d[:, :-1]).mean() / d.var()
    assert lag1 > 0.9                                      # theory: exp(-1/64) ≈ 0.98
    white = K.smooth(0.05, 0).sample(X, _rng())[..., 0]
    assert abs((white[:, 1:] * white[:, :-1]).mean() / white.var()) < 0.05


def test_spectral_reproduces_residual_variance_and_spectrum():
    Z = np.zeros((800, 64, 2), np.float32)
    r_white = K.white(0.03).sample(Z, _rng(1))
    r_smooth = K.smooth(0.03, 3).sample(Z, _rng(2))
    for r in (r_white, r_smooth):
        psd = K.fit_spectral(r)
        assert psd.shape == (33, 2)
        mean_square = (r.astype(float) ** 2).mean((0, 1))
        np.testing.assert_allclose(K.spectral_variance(psd, 64), mean_square, rtol=1e-6)
        eta = K.spectral(psd).sample(Z, _rng(3)).astype(float)
        assert abs(eta.std() / r.std() - 1) < 0.05
        np.testing.assert_allclose(K.fit_spectral(eta).sum(0), psd.sum(0), rtol=0.05)
    eta = K.spectral(K.fit_spectral(r_smooth)).sample(Z, _rng(4))[..., 0]
    assert (eta[:, 1:] * eta[:, :-1]).mean() / eta.var() > 0.9
    eta = K.spectral(K.fit_spectral(r_white)).sample(Z, _rng(4))[..., 0]
    assert abs((eta[:, 1:] * eta[:, :-1]).mean() / eta.var()) < 0.05
    with pytest.raises(ValueError, match="does not fit"):
        K.spectral(np.ones((10, 2))).sample(Z, _rng())


def test_neighbour_moves_towards_a_nearest_training_neighbour(cone):
    _, ds = cone
    X = ds.X[:200]
    k = K.neighbour(X, 1.0, k=3)
    _, idx = K.knn(X, X, k=4)                        # nearest is itself, then 3 neighbours
    assert np.array_equal(idx[:, 0], np.arange(200)) and np.array_equal(k.index, idx[:, 1:])
    x1 = k.sample(X, _rng(7))
    hit = (x1[:, None] == X[k.index]).all(axis=(2, 3))   # lands exactly on one of its neighbours
    assert hit.any(1).all()
    k.scale = 0.5
    xh = k.sample(X, _rng(7))                           # same draws: halfway to the same neighbour
    np.testing.assert_allclose(xh, 0.5 * (X + x1), atol=1e-6)
    # a copy of the training set (not the same array object) and a subset use the same neighbours
    np.testing.assert_array_equal(k.neighbours(X[:50].copy()), k.index[:50])
    np.testing.assert_array_equal(k.neighbours(X.copy()), k.index)


def test_nearest_residuals_and_knn(cone):
    _, ds = cone
    train = ds.X[:300]
    S = train[:20] + 1e-3
    r = K.nearest_residuals(S, train)
    np.testing.assert_allclose(r, 1e-3, atol=1e-6)
    d, i = K.knn(train[:20], train, k=1, exclude=np.arange(20))
    assert (i[:, 0] != np.arange(20)).all() and (d > 0).all()


def test_make_kernel_registry_errors():
    assert isinstance(K.make_kernel("smooth", scale=0.1, length=2), K.smooth)
    with pytest.raises(ValueError, match="white, smooth, spectral, neighbour, denoise"):
        K.make_kernel("gaussian", scale=1)
    with pytest.raises(ValueError, match="unknown parameter.*length"):
        K.make_kernel("white", scale=1, length=3)
    with pytest.raises(ValueError, match="missing parameter.*length"):
        K.make_kernel("smooth", scale=1)
    with pytest.raises(ValueError, match=">= 0"):
        K.white(-1.0)


def test_predict_on_cone_lengthens_paths_and_is_exact_at_scale_zero(cone):
    task, ds = cone
    bins = Bins(2, 6, 20)
    p0, q0 = K.predict(task, ds, K.white(0.0), 2, bins, _rng())
    assert q0.shape == (1024,)
    np.testing.assert_array_equal(p0, histogram(task.measure(ds.X), bins))
    assert tv(p0, histogram(ds.q, bins)) < 1e-9
    p, q = K.predict(task, ds, K.white(0.02), 4, bins, _rng())
    assert p.shape == (22,) and abs(p.sum() - 1) < 1e-12
    assert q.mean() > ds.q.mean() + 0.1               # Jensen: zero-mean wiggles lengthen a path
    # chunking changes nothing but the order in which random numbers are drawn
    pc, qc = K.predict(task, ds, K.neighbour(ds.X, 0.5), 2, bins, _rng(), chunk=100)
    pf, qf = K.predict(task, ds, K.neighbour(ds.X, 0.5), 2, bins, _rng())
    assert qc.shape == qf.shape and abs(qc.mean() - qf.mean()) < 0.05


def test_locality_grows_with_scale_and_data_spacing(cone):
    _, ds = cone
    sp = K.data_spacing(ds.X, n_ref=200)
    assert sp > 0 and np.isfinite(sp)
    assert abs(K.data_spacing(ds.X, n_ref=10_000) - sp) / sp < 0.3
    for make in (K.white, lambda s: K.smooth(s, 3), lambda s: K.neighbour(ds.X, s)):
        locs = [K.locality(ds.X, make(s).sample(ds.X, _rng()), sp) for s in (0, 0.01, 0.03, 0.1)]
        assert locs[0] == 0 and np.all(np.diff(locs) > 0)
    for make in (K.white, lambda s: K.smooth(s, 3), lambda s: K.neighbour(ds.X, s)):
        s = K.scale_for_locality(make, ds.X, sp, 0.5, _rng(3), use_cache=False)
        # exact: x' - x is proportional to the scale under a common random stream
        assert abs(K.locality(ds.X, make(s).sample(ds.X, _rng(3)), sp) - 0.5) < 1e-4
    assert K.scale_for_locality(K.white, ds.X, sp, 0.0, _rng(3)) == 0.0
    with pytest.raises(ValueError, match="target locality"):
        K.scale_for_locality(K.white, ds.X, sp, -1.0, _rng(3))
    with pytest.raises(ValueError, match="does not move the data"):
        K.scale_for_locality(lambda s: K.white(0.0), ds.X, sp, 0.5, _rng(3))


def test_denoise_kernel_with_a_smoke_model():
    models = pytest.importorskip("paper_lib.models")
    if not all(hasattr(models, f) for f in ("denoise", "alpha_bar", "fit", "make_spec")):
        pytest.skip("paper_lib.models has no denoise/alpha_bar yet")
    prof = paper_lib.get_profile("smoke")
    ds = paper_lib.make_dataset("cone", 64, seed=0)
    spec = models.make_spec("diffusion-unet", prof, train_steps=10, diffusion_steps=10)
    trained = models.fit(spec, ds, prof, seed=0)     # a rough model is enough to test the plumbing
    k = K.make_kernel("denoise", trained=trained, t_star=2)
    assert k.scale == 2 and 0 < k.params["alpha_bar"] <= 1
    a, b = k.sample(ds.X[:16], _rng(1)), k.sample(ds.X[:16], _rng(1))
    assert a.shape == (16, 64, 2) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, k.sample(ds.X[:16], _rng(2)))
    p, q = K.predict(paper_lib.get_task("cone"), ds, k, 1, Bins(2, 6, 10), _rng())
    assert q.shape == (64,) and abs(p.sum() - 1) < 1e-12
    keep = np.zeros((64, 2), bool)
    keep[[0, -1]] = True                      # a planner's start and goal
    kd = K.make_kernel("denoise", trained=trained, t_star=5, keep=keep)
    d = kd.sample(ds.X[:16], _rng(1))
    np.testing.assert_allclose(d[:, keep], ds.X[:16][:, keep], atol=1e-6)
    assert np.abs(d[:, ~keep] - ds.X[:16][:, ~keep]).max() > 1e-3


def test_pinned_leaves_the_kept_entries_alone(cone):
    _, ds = cone
    X = ds.X[:32]
    keep = np.zeros(X.shape[1:], bool)
    keep[[0, -1]] = True
    k = K.pinned(K.white(0.1), keep)
    a = k.sample(X, _rng(3))
    np.testing.assert_array_equal(a[:, keep], X[:, keep])
    np.testing.assert_array_equal(a[:, ~keep], K.white(0.1).sample(X, _rng(3))[:, ~keep])
    assert k.name == "white" and k.scale == 0.1
    with pytest.raises(ValueError, match="keep mask"):
        K.pinned(K.white(0.1), keep[1:]).sample(X, _rng(3))


def test_predictions_are_cached_by_kernel_data_and_rng_state(cone, monkeypatch):
    task, ds = cone
    bins, X = Bins(2, 6, 10), ds.X[:128]
    calls = []
    real = K._predict_q
    monkeypatch.setattr(K, "_predict_q", lambda *a: calls.append(1) or real(*a))
    for k in _kernels(X) + [K.pinned(K.white(0.02), np.eye(64, 2, dtype=bool))]:
        calls.clear()
        r1, r2, r3 = _rng(7), _rng(7), _rng(7)
        p1, q1 = K.predict(task, X, k, 2, bins, r1)                  # computed, stored
        p2, q2 = K.predict(task, X, k, 2, bins, r2)                  # loaded
        p3, q3 = K.predict(task, X, k, 2, bins, r3, use_cache=False)  # computed, not stored
        assert len(calls) == 2, k
        np.testing.assert_array_equal(q1, q2), np.testing.assert_array_equal(q1, q3)
        np.testing.assert_array_equal(p1, p2)
        # the caller's generator ends where the computation left it, cached or not
        assert r1.integers(2 ** 62) == r2.integers(2 ** 62) == r3.integers(2 ** 62)
        *_, s1 = K.predict(task, X, k, 2, bins, _rng(7), timed=True)   # the cost when computed
        assert s1 > 0 and len(calls) == 2
    calls.clear()
    base = K.white(0.02)
    K.predict(task, X, base, 1, bins, _rng(1))
    K.predict(task, X, K.white(0.03), 1, bins, _rng(1))               # another scale
    K.predict(task, X, base, 1, bins, _rng(2))                       # another stream
    X2 = X.copy()
    X2[0, 0, 0] += 1e-3
    K.predict(task, X2, base, 1, bins, _rng(1))                       # other data
    K.predict(task, X, K.neighbour(X2, 0.3, k=4), 1, bins, _rng(1))   # other neighbour pool
    K.predict(task, X, K.neighbour(X, 0.3, k=4), 1, bins, _rng(1))
    assert len(calls) == 6
    for k in _kernels(X):
        r1, r2 = _rng(3), _rng(3)
        direct = K.locality(X, k.sample(X, _rng(3)), 0.5)
        assert K.kernel_locality(k, X, 0.5, r1) == direct == K.kernel_locality(k, X, 0.5, r2)
        assert r1.integers(2 ** 62) == r2.integers(2 ** 62)


def test_fingerprint_of_a_trained_model_follows_its_weights():
    models = pytest.importorskip("paper_lib.models")
    prof = paper_lib.get_profile("smoke")
    ds = paper_lib.make_dataset("cone", 64, seed=0)
    spec = models.make_spec("diffusion-unet", prof, train_steps=4, diffusion_steps=10)
    a, b = (models.fit(spec, ds, prof, seed=s, use_cache=False) for s in (0, 1))
    assert a.fingerprint() == models.fit(spec, ds, prof, seed=0, use_cache=False).fingerprint()
    assert a.fingerprint() != b.fingerprint()
    ka, kb = K.denoise(a, 2), K.denoise(b, 2)
    assert ka.fingerprint() != kb.fingerprint() != K.denoise(a, 3).fingerprint()


def test_knn_decides_near_ties_exactly_not_by_float32_cdist(monkeypatch):
    """A common offset makes cdist's float32 matmul expansion (used above 25 rows) cancel
    catastrophically: its ranking of nearly equidistant trajectories is rounding noise, and
    rounding differs between CPU families. knn(exact=True) re-ranks candidates in float64."""
    g = _rng(7)
    base = 300.0 + g.normal(0, 1, (1, 16, 2))
    A = (base + g.normal(0, 1e-6, (32, 16, 2))).astype(np.float32)
    steps = g.normal(0, 1, (6, 16, 2))
    steps *= 0.01 / np.linalg.norm(steps.reshape(6, -1), axis=1)[:, None, None]
    B = (base + steps * (1 + 1e-3 * np.arange(6))[:, None, None]).astype(np.float32)
    exact = np.sqrt(((B[None].astype(np.float64) - A[:, None]) ** 2).sum(axis=(2, 3)))
    _, idx = K.knn(A, B, k=1)
    assert np.array_equal(idx[:, 0], exact.argmin(1))
    monkeypatch.setattr(K, "RERANK", 0)          # the float32 ranking alone gets some wrong
    _, idx0 = K.knn(A, B, k=1)
    assert not np.array_equal(idx0[:, 0], exact.argmin(1))
