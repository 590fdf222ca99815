"""Property-based tests (issue 17): the measurements of every task, ``Bins``, histograms, TV/W1,
nearest neighbours, the data-only kernels and the representations of notebook 06 on generated
adversarial arrays -- NaN, ±inf, huge and tiny (subnormal) values, empty and single-element
inputs, wrong shapes.

The property everywhere: a finite correct answer, NaN, or a clear ``ValueError`` -- never a
silently wrong finite value. Runs are small and derandomised (a fixed example sequence), so the
file is deterministic in CI and takes well under a minute.
"""
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import paper_lib
from paper_lib import kernels, metrics, representation
from paper_lib.metrics import Bins
from paper_lib.tasks import get_task

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SPECIAL64 = [0.0, -0.0, 1.0, 5e-324, -5e-324, 1e-300, -1e-300, 1e-200, 1e19, -1e19, 1e200,
             1e300, -1e300, float(np.finfo(float).max), np.nan, np.inf, -np.inf]
SPECIAL32 = [0.0, 1.0, -1.0, 1e-45, -1e-45, 1e-38, 1e-30, 1e19, -1e19, 1e30, -1e30, np.nan,
             np.inf, -np.inf]


def values64():
    return st.one_of(st.floats(-10, 10), st.sampled_from(SPECIAL64),
                     st.floats(allow_nan=True, allow_infinity=True))


def values32():
    return st.one_of(st.floats(-10, 10, width=32), st.sampled_from(SPECIAL32))


def ok_or_value_error(fn):
    """``fn()``, or None when it raised ValueError (any other exception fails the test)."""
    try:
        return fn()
    except ValueError as exc:
        assert str(exc), "a ValueError needs a message"
        return None


@pytest.fixture(autouse=True)
def quiet_numpy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# ----------------------------------------------------------------------------- measurements

TASKS = {"sine": {}, "cone": {}, "logistic": {}, "pendulum": {"T": 16},
         "maze": {"layout": "umaze", "T": 16}}


def _task(name):
    return get_task(name, **TASKS[name])


def _clean(name, n=4):
    t = _task(name)
    g = np.random.default_rng(0)
    if name == "maze":
        X = np.stack([1 + np.linspace(0, 1, t.T)[:, None] * np.array([[0.5 + 0.1 * i, 0.0]])
                      for i in range(n)]).astype(np.float32)
        return t, X
    if name == "pendulum":
        return t, g.uniform(-1, 1, (n, t.T, 6)).astype(np.float32)      # any channels measure
    return t, t.generate(t.sample_quantity(n, g), g)


def _same(a, b, rel=1e-9):
    return (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, rel=rel, abs=1e-300)


def _check_measure(t, X):
    q = t.measure(X)
    assert q.shape == (len(X),) and q.dtype == np.float64
    rows = np.isfinite(X).all(axis=(1, 2))
    assert np.isnan(q[~rows]).all(), "a trajectory with NaN/inf must measure as NaN"
    assert not np.isinf(q).any(), "a measurement is finite or NaN"
    for i in range(len(X)):                                # rows do not contaminate each other
        assert _same(t.measure(X[i:i + 1])[0], q[i])
    return q


corruption = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 63), st.integers(0, 5),
                                values64()), max_size=4)


@pytest.mark.parametrize("name", sorted(TASKS))
@SETTINGS
@given(corrupt=corruption, as64=st.booleans())
def test_measure_of_corrupted_data(name, corrupt, as64):
    t, X = _clean(name)
    X = X.astype(np.float64) if as64 else X.copy()
    clean = t.measure(X.copy())
    touched = set()
    for i, tt, c, v in corrupt:
        if not as64 and np.isfinite(v) and abs(v) > 3e38:
            v = np.inf                                     # what float32 would hold
        X[i, tt % t.T, c % t.C] = v
        touched.add(i)
    q = _check_measure(t, X)
    for i in set(range(len(X))) - touched:                 # untouched rows: the clean answer
        assert _same(q[i], clean[i])


@pytest.mark.parametrize("name", sorted(TASKS))
@SETTINGS
@given(data=st.data())
def test_measure_of_arbitrary_arrays(name, data):
    t = _task(name)
    n = data.draw(st.integers(0, 3))
    X = data.draw(arrays(np.float64, (n, t.T, t.C), elements=values64()))
    q = _check_measure(t, X)
    for i in np.flatnonzero(np.isfinite(X).all(axis=(1, 2))):
        if name in ("cone", "maze"):                       # exact, overflow-free reference
            d = np.diff(X[i], axis=0)
            try:
                ref = math.fsum(math.hypot(*row) for row in d)
            except OverflowError:
                ref = math.inf
            assert np.isnan(q[i]) if math.isinf(ref) else q[i] == pytest.approx(ref, rel=1e-9)
        elif name == "sine":
            if np.ptp(X[i]) == 0:
                assert np.isnan(q[i])                      # a constant has no frequency
            else:
                assert t.f_min - t.df <= q[i] <= t.f_max + t.df


@pytest.mark.parametrize("name", sorted(TASKS))
def test_measure_rejects_wrong_shapes(name):
    t = _task(name)
    for shape in [(t.T, t.C), (2, t.T + 1, t.C), (2, t.T, t.C + 1), (2,), ()]:
        with pytest.raises(ValueError, match="expected trajectories of shape"):
            t.measure(np.zeros(shape))


@SETTINGS
@given(f=st.floats(1, 4), log2_amp=st.sampled_from([-900, -300, -100, -1, 0, 3, 100, 300, 900]),
       amp=st.floats(0.3, 3))
def test_sine_frequency_is_independent_of_the_amplitude(f, log2_amp, amp):
    t = get_task("sine")
    x = t.generate(np.array([f]), np.random.default_rng(1)).astype(np.float64)
    ref = t.measure(x)[0]
    assert abs(ref - f) < 0.005 * (t.hi - t.lo)
    scaled = x * amp * 2.0 ** log2_amp
    q = t.measure(scaled)[0]
    assert abs(q - ref) < 1e-6


@pytest.mark.parametrize("name", ["sine", "cone", "logistic"])
@SETTINGS
@given(T=st.one_of(st.integers(-3, 80), st.sampled_from([2.5, 64.0, True])),
       lo=st.one_of(st.floats(-2, 6), st.sampled_from([np.nan, np.inf])),
       width=st.one_of(st.floats(-1, 0), st.floats(1e-3, 4)))   # float32 data: no 1e-99 priors
def test_task_parameters_give_a_working_task_or_a_clear_error(name, T, lo, width):
    t = ok_or_value_error(lambda: get_task(name, T=T, lo=lo, hi=lo + width))
    if t is None:
        return
    g = np.random.default_rng(0)
    q = t.sample_quantity(5, g)
    X = t.generate(q, g)
    assert X.shape == (5, t.T, t.C) and np.isfinite(X).all()
    assert ((q >= t.lo) & (q <= t.hi)).all()
    if name != "sine":                                     # exact on clean data
        np.testing.assert_allclose(t.measure(X), q, rtol=1e-5)


# ----------------------------------------------------------------------------- bins, histograms

@SETTINGS
@given(lo=values64(), hi=values64(), n=st.one_of(st.integers(-2, 50), st.sampled_from([2.7, 3.0])))
def test_bins_are_valid_or_a_clear_error(lo, hi, n):
    b = ok_or_value_error(lambda: Bins(lo, hi, n))
    if b is not None:
        assert lo < hi and b.n >= 1 and isinstance(b.n, int) and np.isfinite(b.width)
        assert len(b.edges) == b.n + 1 and len(b.centers) == len(b.labels) == b.n + 2


def _reference_index(b, v):
    if math.isnan(v) or v == -math.inf:
        return 0
    if v == math.inf:
        return b.n + 1
    z = (v - b.lo) / b.width                               # Python floats: +-inf, no wrap-around
    k = math.floor(z) + 1 if math.isfinite(z) else (b.n + 1 if z > 0 else 0)
    return min(max(k, 0), b.n + 1)


bins = st.tuples(st.floats(-1e6, 1e6), st.floats(1e-3, 1e6), st.integers(1, 30)).map(
    lambda a: Bins(a[0], a[0] + a[1], a[2])).filter(lambda b: b.hi > b.lo)


@SETTINGS
@given(b=bins, q=arrays(np.float64, st.integers(0, 30), elements=values64()))
def test_bins_index_and_histogram(b, q):
    idx = b.index(q)
    assert idx.dtype == np.int64 and idx.shape == q.shape
    assert idx.tolist() == [_reference_index(b, float(v)) for v in q]
    p = ok_or_value_error(lambda: metrics.histogram(q, b))
    if q.size == 0:
        assert p is None
        return
    assert p.shape == (b.n + 2,) and p.sum() == pytest.approx(1) and (p >= 0).all()
    assert np.array_equal(p * q.size, np.bincount(idx, minlength=b.n + 2))


@SETTINGS
@given(b=bins, q=arrays(np.float64, st.integers(0, 20), elements=values64()),
       n_boot=st.one_of(st.integers(-2, 30), st.sampled_from([2.5, 10.0])),
       level=st.one_of(st.floats(-0.5, 1.5), st.sampled_from([np.nan])))
def test_bootstrap_histogram(b, q, n_boot, level):
    out = ok_or_value_error(lambda: metrics.bootstrap_histogram(q, b, n_boot,
                                                                np.random.default_rng(0), level))
    if out is None:
        assert q.size == 0 or not (isinstance(n_boot, int) and n_boot >= 1) or not 0 < level < 1
        return
    p, lo, hi = out
    assert p.shape == lo.shape == hi.shape == (b.n + 2,)
    assert (0 <= lo).all() and (lo <= hi + 1e-12).all() and (hi <= 1).all()


# ----------------------------------------------------------------------------- distances

@SETTINGS
@given(data=st.data())
def test_tv(data):
    n = data.draw(st.integers(0, 8))
    m = data.draw(st.sampled_from([n, n + 1]))
    p = data.draw(arrays(np.float64, n, elements=values64()))
    q = data.draw(arrays(np.float64, m, elements=values64()))
    d = ok_or_value_error(lambda: metrics.tv(p, q))
    if d is None:
        assert n != m or n == 0
        return
    try:
        ref = 0.5 * math.fsum(abs(a - b) for a, b in zip(p.tolist(), q.tolist()))
    except (OverflowError, ValueError):
        ref = math.nan
    if math.isfinite(ref):
        assert d == pytest.approx(ref, rel=1e-9, abs=1e-300) or (np.isnan(d) and ref > 1e307)
    else:
        assert np.isnan(d)


def _w1_reference(u, v):
    u, v = np.sort(u[np.isfinite(u)]), np.sort(v[np.isfinite(v)])
    allv = np.sort(np.concatenate([u, v]))
    with np.errstate(over="ignore", invalid="ignore"):
        deltas = np.diff(allv)
        cu = np.searchsorted(u, allv[:-1], "right") / len(u)
        cv = np.searchsorted(v, allv[:-1], "right") / len(v)
        return float(np.sum(np.abs(cu - cv) * deltas))


@SETTINGS
@given(a=arrays(np.float64, st.integers(0, 12), elements=values64()),
       b=arrays(np.float64, st.integers(0, 12), elements=values64()))
def test_w1(a, b):
    d = ok_or_value_error(lambda: metrics.w1(a, b))
    if d is None:
        assert not np.isfinite(a).any() or not np.isfinite(b).any()
        return
    ref = _w1_reference(a, b)
    if math.isfinite(ref):
        assert d == pytest.approx(ref, rel=1e-9, abs=1e-300)
    else:
        assert not np.isfinite(d)                          # overflow is never a finite value


@SETTINGS
@given(data=st.data())
def test_agreement_and_mass_shift(data):
    n = data.draw(st.integers(0, 6))
    shapes = data.draw(st.lists(st.sampled_from([n, n + 1]), min_size=3, max_size=3))
    p = [data.draw(arrays(np.float64, s, elements=st.floats(0, 1))) for s in shapes]
    a = ok_or_value_error(lambda: metrics.agreement(*p, noise=0.01))
    if a is None:
        assert n == 0 or len(set(shapes)) > 1
        return
    assert set(a) == {"rho", "sign_agreement", "edf", "tv_pred_model", "tv_prior_model"}
    assert a["tv_pred_model"] == pytest.approx(metrics.tv(p[0], p[1]))
    assert np.isnan(a["rho"]) or -1 - 1e-9 <= a["rho"] <= 1 + 1e-9
    d = metrics.mass_shift(p[1], p[2])
    assert np.array_equal(d, p[1] - p[2])
    with pytest.raises(ValueError, match="different bins"):
        metrics.mass_shift(p[1], np.zeros(n + 2))


def _nn_reference(A, B):
    """Exact nearest distance per row of A among the finite rows of B (float32 inputs)."""
    A, B = A.astype(np.float64), B.astype(np.float64)
    fin = np.isfinite(B).all(axis=(1, 2))
    out = []
    for a in A:
        if not np.isfinite(a).all() or not fin.any():
            out.append(np.nan)
            continue
        ds = [math.sqrt(math.fsum(((x - y) * 2.0 ** -64) ** 2 for x, y in
                                  zip(a.ravel(), b.ravel()))) * 2.0 ** 64 for b in B[fin]]
        out.append(min(ds))
    return np.array(out)


@SETTINGS
@given(data=st.data())
def test_nn_distances_and_knn(data):
    T, C = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 2))
    n, m = data.draw(st.integers(0, 4)), data.draw(st.integers(0, 5))
    A = data.draw(arrays(np.float32, (n, T, C), elements=values32()))
    B = data.draw(arrays(np.float32, (m, T, C), elements=values32()))
    d = ok_or_value_error(lambda: metrics.nn_distances(A, B))
    if d is None:
        assert n == 0 or m == 0
        return
    ref = _nn_reference(A, B)
    assert np.array_equal(np.isnan(d), np.isnan(ref))
    ok = ~np.isnan(ref)
    big = max(float(np.abs(np.where(np.isfinite(X), X, 0)).max(initial=0)) for X in (A, B))
    np.testing.assert_allclose(d[ok], ref[ok], rtol=1e-5, atol=1e-6 * big)   # float32 accuracy
    dist, idx = kernels.knn(A, B, k=1)
    assert np.array_equal(np.isnan(dist[:, 0]), np.isnan(ref))
    # exact distances of candidates found in float32: never below the true minimum
    np.testing.assert_allclose(dist[ok, 0], ref[ok], rtol=1e-12, atol=1e-6 * big)
    assert (dist[ok, 0] >= ref[ok] * (1 - 1e-12)).all()
    assert ((0 <= idx) & (idx < m)).all()
    with pytest.raises(ValueError, match=r"\(T, C\)"):
        metrics.nn_distances(A, np.zeros((m, T + 1, C)))


def test_nn_distances_rejects_empty_and_flat_inputs():
    B = np.zeros((3, 4, 1))
    for A, B_ in [(B[:0], B), (B, B[:0]), (B[0], B), (B, B[:, :, 0])]:
        with pytest.raises(ValueError, match="shape"):
            metrics.nn_distances(A, B_)
    with pytest.raises(ValueError, match="k <= 0"):
        metrics.nn_distances(B[:1], B[:1], exclude_self=True)      # no other trajectory


# ----------------------------------------------------------------------------- data-only kernels

PSD = np.ones((5, 1))            # T = 8: T // 2 + 1 = 5 frequencies
TRAIN = np.random.default_rng(0).normal(size=(12, 8, 2)).astype(np.float32)
KERNELS = {"white": lambda s: kernels.white(s), "smooth": lambda s: kernels.smooth(s, 2.0),
           "spectral": lambda s: kernels.spectral(PSD, s),
           "neighbour": lambda s: kernels.neighbour(TRAIN, min(s, 1.0), k=3)}


@pytest.mark.parametrize("family", sorted(KERNELS))
@SETTINGS
@given(data=st.data(), scale=st.sampled_from([0.0, 1e-30, 0.1, 1.0]))
def test_data_only_kernels(family, data, scale):
    n = data.draw(st.integers(0, 4))
    X = data.draw(arrays(np.float32, (n, 8, 2), elements=values32()))
    k = KERNELS[family](scale)
    Y = k.sample(X, np.random.default_rng(0))
    assert Y.shape == X.shape and Y.dtype == np.float32
    assert np.array_equal(np.isfinite(Y), np.isfinite(X)), "NaN/inf stay where they were"
    if scale == 0:
        assert np.array_equal(Y, X, equal_nan=True)
    again = k.sample(X, np.random.default_rng(0))
    assert np.array_equal(Y, again, equal_nan=True)                 # deterministic
    for bad in (np.zeros((n, 8)), np.zeros((n, 8, 3)) if family == "neighbour" else np.zeros(3)):
        with pytest.raises(ValueError):
            k.sample(bad, np.random.default_rng(0))
    with pytest.raises(ValueError, match="float32"):
        k.sample(np.full((1, 8, 2), 1e300), np.random.default_rng(0))


@pytest.mark.parametrize("scale", [-1.0, np.nan, np.inf, "x"])
def test_kernel_scales_are_checked(scale):
    with pytest.raises(ValueError):
        kernels.white(scale)


@SETTINGS
@given(X=arrays(np.float64, (2, 4, 1), elements=st.sampled_from([1e300, -1e300, 1e39, 1.0])))
def test_trajectories_beyond_float32_are_a_clear_error_not_inf(X):
    out = ok_or_value_error(lambda: kernels.white(0.1).sample(X, np.random.default_rng(0)))
    if out is None:
        assert np.abs(X).max() > np.finfo(np.float32).max
    else:
        assert np.isfinite(out).all()


# ---------------------------------------------------------------- representations (notebook 06)

def _read_channels(name: str, C: int) -> range:
    """The φ channels the inverse map reads (a phasor's quadrature is carried, not read)."""
    return range(1) if name == "phasor" else range(C)


@pytest.mark.parametrize("task,name", [(t, n) for t, c in representation.REPRESENTATIONS.items()
                                       for n in c])
@SETTINGS
@given(data=st.data())
def test_a_representation_never_measures_a_nan_entry_as_finite(task, name, data):
    """A NaN anywhere the inverse map reads makes the trajectory unmeasurable: its q is NaN and
    it is not plausible; the other trajectories keep their q."""
    base = get_task(task)
    t = representation.represent(base, name)
    ds = representation.represent_dataset(paper_lib.make_dataset(base, 4, seed=0), t)
    Z = ds.X.copy()
    q_clean = t.measure(Z)
    frame = data.draw(st.integers(0, Z.shape[1] - 1))
    channel = data.draw(st.sampled_from(list(_read_channels(name, Z.shape[2]))))
    Z[1, frame, channel] = np.nan
    q = t.measure(Z)
    assert np.isnan(q[1]) and not t.is_plausible(Z)[1]
    np.testing.assert_array_equal(q[[0, 2, 3]], q_clean[[0, 2, 3]])
