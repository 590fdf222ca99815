import numpy as np
import pytest
from scipy import stats

import paper_lib
from paper_lib.tasks import SYNTHETIC, get_task, travel_distance

# Recovery bounds of issue 2: error relative to the support width for sine, relative to q otherwise
BOUNDS = {"sine": 0.005, "cone": 1e-6, "logistic": 1e-6}


def clean(name, n=500, seed=0):
    t = get_task(name)
    g = np.random.default_rng(seed)
    q = t.sample_quantity(n, g)
    return t, q, t.generate(q, g)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_measurement_is_exact_on_clean_data(name):
    t, q, X = clean(name)
    q_hat = t.measure(X)
    assert q_hat.shape == q.shape
    if name == "sine":
        err = np.abs(q_hat - q) / (t.hi - t.lo)
    else:
        err = np.abs(q_hat - q) / q
    assert err.max() < BOUNDS[name]


@pytest.mark.parametrize("name", SYNTHETIC)
def test_generate_shapes_and_dtype(name):
    t, q, X = clean(name, n=7)
    assert X.shape == (7, t.T, t.C) and X.dtype == np.float32
    assert t.support == (t.lo, t.hi)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_measure_is_vectorised_consistently(name):
    t, q, X = clean(name, n=9)
    whole = t.measure(X)
    one_by_one = np.array([t.measure(X[i:i + 1])[0] for i in range(len(X))])
    np.testing.assert_allclose(whole, one_by_one, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_measure_rejects_wrong_shape(name):
    t = get_task(name)
    with pytest.raises(ValueError, match="expected trajectories of shape"):
        t.measure(np.zeros((3, t.T + 1, t.C), np.float32))


@pytest.mark.parametrize("name", SYNTHETIC)
def test_prior_is_uniform_on_support(name):
    t = get_task(name)
    q = t.sample_quantity(20000, np.random.default_rng(1))
    assert q.min() >= t.lo and q.max() < t.hi
    assert stats.kstest(q, stats.uniform(t.lo, t.hi - t.lo).cdf).pvalue > 0.001


@pytest.mark.parametrize("name", SYNTHETIC)
def test_plausibility_accepts_clean_and_rejects_noise(name):
    t, q, X = clean(name, n=300)
    assert t.is_plausible(X).all()
    noise = np.random.default_rng(2).normal(0.5, 0.5, X.shape).astype(np.float32)
    assert t.is_plausible(noise).mean() < 0.05


@pytest.mark.parametrize("name", SYNTHETIC)
def test_model_normalisation_round_trips(name):
    t, q, X = clean(name, n=20)
    Z = t.to_model(X)
    assert np.abs(Z).max() <= 1.01
    np.testing.assert_allclose(t.from_model(Z), X, atol=1e-6)


def test_sine_fit_beats_fft_peak_for_non_integer_frequency():
    t = get_task("sine")
    q = np.array([1.5, 2.5, 3.5])
    X = t.generate(q, np.random.default_rng(0))
    fft_peak = np.abs(np.fft.rfft(X[..., 0], axis=1)).argmax(1)  # integer cycles only
    assert np.abs(fft_peak - q).max() >= 0.5
    assert np.abs(t.measure(X) - q).max() < 1e-3


def test_cone_distance_is_linear_in_scale_and_rotation_invariant():
    t = get_task("cone")
    X = t.generate(np.array([3.0, 3.0]), np.random.default_rng(0))
    np.testing.assert_allclose(travel_distance(2 * X), 2 * travel_distance(X), rtol=1e-6)
    assert abs(travel_distance(X)[0] - travel_distance(X)[1]) < 1e-5


def test_cone_white_noise_lengthens_paths():
    """Jensen: zero-mean noise on the positions raises the expected travel distance."""
    t, q, X = clean("cone", n=2000)
    noisy = X + np.random.default_rng(3).normal(0, 0.02, X.shape).astype(np.float32)
    assert (t.measure(noisy) - q).mean() > 0.05


def test_logistic_orbits_stay_in_unit_interval():
    t, q, X = clean("logistic", n=1000)
    assert X.min() >= 0 and X.max() <= 1


def test_unknown_task_lists_valid_names():
    with pytest.raises(ValueError, match="valid tasks: cone, logistic, maze, pendulum, sine"):
        get_task("sinus")


def test_bad_task_parameter_is_a_clear_error():
    with pytest.raises(ValueError, match="bad parameters for task 'sine'"):
        get_task("sine", frequency=3)


def test_task_parameters_change_the_support():
    t = paper_lib.get_task("cone", lo=1.0, hi=2.0)
    assert t.support == (1.0, 2.0)
