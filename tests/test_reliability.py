"""Issue 17, library part: bad input gives NaN (a measurement that cannot be made) or one clear
``ValueError`` naming the argument, its value and what is valid -- never a silently wrong finite
value or a raw traceback from numpy, torch or pandas. Each test failed on the code before the fix.
"""
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from paper_lib import kernels, metrics, plots
from paper_lib.datasets import make_dataset
from paper_lib.metrics import Bins
from paper_lib.tasks import get_task


def clear_error(fn, *fragments):
    """``fn()`` raises ValueError whose message contains every fragment (argument, value, ...)."""
    with pytest.raises(ValueError) as info:
        fn()
    msg = str(info.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


# ----------------------------------------------------------------------------- silent wrong results

def test_bins_index_sends_huge_finite_values_to_the_overflow_bin():
    b = Bins(1.0, 4.0, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                    # no RuntimeWarning from a cast either
        idx = b.index(np.array([1e19, 1e300, np.finfo(float).max, -1e19, -1e300, 2.5]))
    assert idx.tolist() == [11, 11, 11, 0, 0, 6]
    assert b.index(np.array([1e19, np.nan, np.inf, -np.inf])).tolist() == [11, 0, 11, 0]
    assert metrics.histogram(np.array([1e300, 2.5]), b)[-1] == 0.5


def test_sine_measure_is_nan_for_a_trajectory_with_nan_or_inf():
    t = get_task("sine")
    X = t.generate(np.array([1.5, 2.5, 3.5]), np.random.default_rng(0))
    clean = t.measure(X)
    X[1, 5, 0], X[2, 7, 0] = np.nan, np.inf
    f = t.measure(X)
    assert f[0] == clean[0] and np.isnan(f[1]) and np.isnan(f[2])
    r2 = t.fit(X)[1]
    assert np.isnan(r2[1:]).all() and not t.is_plausible(X)[1:].any()
    # w1 against the prior no longer counts the broken trajectories
    assert metrics.w1(f, clean) == metrics.w1(f[:1], clean)


def test_pendulum_measure_is_nan_for_inf_in_any_channel():
    t = get_task("pendulum", T=16)
    X = np.random.default_rng(0).uniform(-1, 1, (6, 16, 6)).astype(np.float32)
    good = t.measure(X)
    for c in range(6):
        X[c, 3, c] = np.inf if c % 2 else -np.inf
    E = t.measure(X)
    assert np.isnan(E).all() and np.isnan(t.frame_energies(X)[np.arange(6), 3]).all()
    X[0, 3, 0] = 0.5
    assert np.isnan(t.measure(X)[1:]).all() and np.isfinite(t.measure(X)[0])
    assert good.shape == (6,) and np.isfinite(good).all()


@pytest.mark.parametrize("name", ["cone", "logistic", "maze"])
def test_other_measures_are_nan_for_non_finite_trajectories(name):
    t = get_task(name, layout="umaze", T=16) if name == "maze" else get_task(name)
    g = np.random.default_rng(0)
    X = (g.uniform(0.2, 0.8, (4, t.T, t.C)) + (1.5 if name == "maze" else 0)).astype(np.float32)
    clean = t.measure(X)
    X[1, 3, 0], X[2, 4, -1], X[3, 0, 0] = np.nan, np.inf, -np.inf
    q = t.measure(X)
    assert q[0] == clean[0] and np.isnan(q[1:]).all()


def test_logistic_measure_is_nan_when_its_sums_overflow():
    t = get_task("logistic")
    X = np.full((2, t.T, 1), 0.5)
    X[1] = 1e100                                           # u^2 overflows: r was silently 0
    r = t.measure(X)
    assert r[0] == pytest.approx(2.0) and np.isnan(r[1])


@pytest.mark.parametrize("params, fragments", [
    (dict(T=-3), ["T", "-3", "integer >= 2"]),
    (dict(T=2.5), ["T", "2.5"]),
    (dict(lo=4.0, hi=1.0), ["lo", "hi", "lo < hi", "4.0"]),
    (dict(lo=float("nan")), ["lo", "nan"]),
    (dict(hi=20.0), ["hi", "20.0", "f_max"]),
    (dict(df=0.0), ["df", "0.0"]),
    (dict(channels=()), ["channels", "()"]),
    (dict(scale=0.0), ["scale", "0.0"]),
])
def test_bad_sine_parameters_raise_naming_the_argument(params, fragments):
    clear_error(lambda: get_task("sine", **params), "sine", *fragments)


@pytest.mark.parametrize("name, params, fragments", [
    ("cone", dict(lo=-1.0), ["lo", "-1.0", ">= 0"]),
    ("cone", dict(turns=float("inf")), ["turns", "inf"]),
    ("logistic", dict(hi=4.5), ["hi", "4.5", "4"]),
    ("logistic", dict(burn_in=-1), ["burn_in", "-1"]),
    ("pendulum", dict(m1=0.0), ["m1", "0.0", "> 0"]),
    ("pendulum", dict(dt=-0.1), ["dt", "-0.1"]),
    ("pendulum", dict(lo=-40.0), ["lo", "-40.0", "V_min"]),
    ("pendulum", dict(chunk=0), ["chunk", "0"]),
    ("maze", dict(layout="umaze", T=1), ["T", "1"]),
    ("maze", dict(layout="umaze", lo=5.0, hi=2.0), ["lo", "hi"]),
])
def test_bad_task_parameters_raise_naming_the_argument(name, params, fragments):
    clear_error(lambda: get_task(name, **params), name, *fragments)


def test_make_dataset_rejects_a_non_integer_size_or_seed():
    clear_error(lambda: make_dataset("sine", 2.5, use_cache=False), "n", "2.5", "positive integer")
    clear_error(lambda: make_dataset("sine", 0, use_cache=False), "n", "0")
    clear_error(lambda: make_dataset("sine", 4, seed=1.5, use_cache=False), "seed", "1.5")
    assert len(make_dataset("sine", 4.0, use_cache=False)) == 4      # a whole float is a size


def test_uniform_quantiles_rejects_bad_arguments():
    clear_error(lambda: metrics.uniform_quantiles(1, 4, n=-1), "n", "-1", "positive integer")
    clear_error(lambda: metrics.uniform_quantiles(1, 4, n=2.5), "n", "2.5")
    clear_error(lambda: metrics.uniform_quantiles(4, 1, 10), "lo", "hi", "4")


def test_agreement_rejects_empty_or_mismatched_histograms():
    e = np.array([])
    clear_error(lambda: metrics.agreement(e, e, e), "agreement", "empty")
    p = np.array([0.5, 0.5])
    clear_error(lambda: metrics.agreement(p, p, np.array([1.0, 0, 0])), "p_data", "(3,)")


# ----------------------------------------------------------------------------- clear errors

def test_negative_sizes_are_clear_errors():
    g = np.random.default_rng(0)
    sine = get_task("sine")
    clear_error(lambda: sine.build(-5, g), "n", "-5", "integer >= 0")
    clear_error(lambda: sine.sample_quantity(-1, g), "n", "-1", "integer >= 0")
    clear_error(lambda: sine.sample_quantity(2.5, g), "n", "2.5")
    clear_error(lambda: get_task("maze", layout="umaze", T=16).build(-5, g), "n", "-5")
    b = Bins(1.0, 4.0, 3)
    prior = lambda n, r: r.uniform(1, 4, n)                # noqa: E731
    clear_error(lambda: metrics.noise_floor_tv(prior, -3, b, g), "n", "-3", "positive integer")
    clear_error(lambda: metrics.noise_floor_tv(prior, 10, b, g, repeats=0), "repeats", "0")
    q = g.uniform(1, 4, 100)
    for n_boot in (0, -1, 2.5):
        clear_error(lambda: metrics.bootstrap_histogram(q, b, n_boot, g), "n_boot", str(n_boot))
    clear_error(lambda: metrics.bootstrap_histogram(q, b, 10, g, level=1.5), "level", "1.5")


def test_predict_rejects_a_zero_chunk():
    t = get_task("sine")
    X = t.generate(np.array([1.5, 2.5]), np.random.default_rng(0))
    for chunk in (0, -1, 1.5):
        clear_error(lambda: kernels.predict(t, X, kernels.white(0.1), 1, Bins(1, 4, 3),
                                            np.random.default_rng(0), chunk=chunk, use_cache=False),
                    "chunk", str(chunk), "positive integer")


def test_bins_reject_bad_arguments():
    clear_error(lambda: Bins(1, 4, 2.7), "n", "2.7", "positive integer")
    clear_error(lambda: Bins(1, 4, 0), "n", "0")
    clear_error(lambda: Bins(4, 1, 3), "lo", "hi", "lo < hi", "lo=4")
    clear_error(lambda: Bins(-1e308, 1e308, 3), "hi - lo", "finite")
    assert Bins(1, 4, np.int64(3)).n == 3


def test_w1_of_a_sample_without_finite_values_is_a_clear_error():
    ok = np.array([1.0, 2.0])
    clear_error(lambda: metrics.w1(np.full(3, np.nan), ok), "a", "no finite value", "3")
    clear_error(lambda: metrics.w1(ok, np.array([np.inf, np.nan])), "b", "no finite value")
    clear_error(lambda: metrics.w1(ok, np.array([])), "b", "no finite value")
    assert metrics.w1(np.array([1.0, np.nan]), ok) == pytest.approx(0.5)


def test_nn_distances_on_empty_input_is_a_clear_error():
    B = np.zeros((3, 4, 1))
    clear_error(lambda: metrics.nn_distances(np.zeros((0, 4, 1)), B), "A", "(0, 4, 1)")
    clear_error(lambda: metrics.nn_distances(B, np.zeros((0, 4, 1))), "B", "(0, 4, 1)")
    clear_error(lambda: metrics.nn_distances(B, np.zeros((3, 5, 1))), "(4, 1)", "(5, 1)")


def test_neighbour_kernel_with_the_wrong_channel_count_is_a_clear_error():
    train = np.random.default_rng(0).normal(size=(20, 8, 2)).astype(np.float32)
    K = kernels.neighbour(train, 0.5, k=3)
    X = np.zeros((4, 8, 3), np.float32)
    clear_error(lambda: K.sample(X, np.random.default_rng(0)), "neighbour", "(8, 3)", "(8, 2)")
    clear_error(lambda: kernels.knn(X, train), "(8, 3)", "(8, 2)")


# ----------------------------------------------------------------------------- tables

def _table_path(name):
    return plots.output_dir() / "tables" / f"{name}.csv"


def test_update_table_rebuilds_an_empty_table_with_a_warning():
    path = _table_path("empty_demo")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    df = pd.DataFrame({"task": ["sine"], "seed": [0], "tv": [0.25]})
    with pytest.warns(UserWarning, match=re.escape(str(path))):
        out = plots.update_table(df, "empty_demo", ["task", "seed"])
    assert out.to_dict("list") == {"task": ["sine"], "seed": [0], "tv": [0.25]}
    assert path.read_text() == "task,seed,tv\nsine,0,0.25\n"


def test_update_table_drops_a_truncated_last_row_and_keeps_key_types():
    rows = pd.DataFrame({"task": ["cone", "maze", "sine"], "seed": [0, 1, 2], "tv": [0.1, 0.2, 0.3]})
    plots.update_table(rows, "trunc_demo", ["task", "seed"])
    path = _table_path("trunc_demo")
    text = path.read_text()
    assert text.endswith("sine,2,0.3\n")
    path.write_text(text[:-len("2,0.3\n")])                 # killed while writing: "sine,"
    new = pd.DataFrame({"task": ["cone"], "seed": [0], "tv": [0.5]})
    with pytest.warns(UserWarning, match=re.escape(str(path))):
        out = plots.update_table(new, "trunc_demo", ["task", "seed"])
    assert out["seed"].dtype == np.int64
    assert out.to_dict("list") == {"task": ["cone", "maze"], "seed": [0, 1], "tv": [0.5, 0.2]}
    assert path.read_text() == "task,seed,tv\ncone,0,0.5\nmaze,1,0.2\n"
    # a row with too many fields in the middle is dropped as well
    path.write_text("task,seed,tv\ncone,0,0.5,7\nmaze,1,0.2\n")
    with pytest.warns(UserWarning, match="1 incomplete row"):
        out = plots.update_table(new.assign(task="sine"), "trunc_demo", ["task", "seed"])
    assert out.to_dict("list") == {"task": ["maze", "sine"], "seed": [1, 0], "tv": [0.2, 0.5]}


def test_update_table_on_a_complete_table_does_not_warn():
    a = pd.DataFrame({"task": ["sine"], "seed": [0], "tv": [0.1]})
    plots.update_table(a, "fine_demo", ["task", "seed"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = plots.update_table(a.assign(seed=1), "fine_demo", ["task", "seed"])
    assert out.seed.tolist() == [0, 1]
