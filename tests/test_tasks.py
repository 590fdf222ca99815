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


def test_cone_amplitude_splits_q_into_the_spirals_size_and_its_deviations():
    """A clean spiral travels amplitude × L(1); white wiggles lengthen the path, not the size;
    a bigger spiral has a bigger size; a non-finite trajectory has none (NaN), alone."""
    t, q, X = clean("cone", n=500)
    c = t.amplitude(X)
    np.testing.assert_allclose(c * t.unit_length, q, rtol=1e-5)
    noisy = X + np.random.default_rng(3).normal(0, 0.02, X.shape).astype(np.float32)
    size_shift = (t.amplitude(noisy) - c) * t.unit_length
    assert abs(size_shift.mean()) < 0.2 * (t.measure(noisy) - q).mean()
    np.testing.assert_allclose(t.amplitude(1.5 * X), 1.5 * c, rtol=1e-5)
    bad = X[:3].copy()
    bad[1, 5, 0] = np.nan
    bad[2, 7, 1] = np.inf
    out = t.amplitude(bad)
    assert out[0] == c[0] and np.isnan(out[1:]).all()


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


# ----------------------------------------------------------------------------- the Task protocol

# cache.spec_key("task", get_task(name)) of every task with default parameters, computed on the
# code before the protocol was validated: dataset, model and prediction cache keys hold a task's
# dataclass fields, so these must never change by accident.
SPEC_KEYS = {"sine": "758b1675374e269763dc21ec", "cone": "ac10a7d7d7a413565c02420d",
             "logistic": "b95df489d17a85b2ddb8c7f3", "maze": "060d219fb0e3f3703ed352ed",
             "pendulum": "0d127a999cf464a8441fa7e0"}
DATASET_KEYS = {"sine": "17077018c9c388945228c049", "cone": "406dfecb05a20778b2595dd3",
                "logistic": "9b615ad7291c15a97c5068b8", "maze": "26354754a4539156cd379269",
                "pendulum": "e04134029609a608a4dd0439"}


@pytest.mark.parametrize("name", sorted(SPEC_KEYS))
def test_cache_keys_of_existing_tasks_are_unchanged(name):
    from paper_lib import cache
    from paper_lib.datasets import DATA_VERSION

    t = get_task(name)
    assert cache.spec_key("task", t) == SPEC_KEYS[name]
    spec = {"task": t.name, "params": t, "n": 1000, "seed": 0, "v": DATA_VERSION}
    assert cache.spec_key("dataset", spec) == DATASET_KEYS[name]


def test_a_task_written_by_a_user_runs_through_datasets_and_kernels():
    from dataclasses import dataclass

    from paper_lib import kernels
    from paper_lib.datasets import make_dataset
    from paper_lib.metrics import Bins
    from paper_lib.tasks import Task

    @dataclass(frozen=True)
    class Ramp(Task):                      # q = the slope of a straight line, per window
        name = "ramp"
        quantity = "slope"
        channels: tuple[str, ...] = ("x",)
        lo: float = 0.5
        hi: float = 2.0

        def generate(self, q, rng):
            t = np.arange(self.T) / self.T
            return (np.asarray(q)[:, None, None] * t[None, :, None]).astype(np.float32)

        def measure(self, X):
            X = self.check(X)[..., 0].astype(np.float64)
            return (X[:, -1] - X[:, 0]) * self.T / (self.T - 1)

    task = Ramp(T=16)
    assert task.C == 1 and task.support == (0.5, 2.0)
    data = make_dataset(task, 64, seed=3)
    assert data.X.shape == (64, 16, 1) and data.task == "ramp"
    np.testing.assert_allclose(task.measure(data.X), data.q, rtol=1e-5)
    again = make_dataset(task, 64, seed=3)                              # from the cache
    assert np.array_equal(again.X, data.X)
    bins = Bins(task.lo, task.hi, 6)
    for K in (kernels.white(0.01), kernels.neighbour(data.X, 0.5, k=4)):
        p, q = kernels.predict(task, data, K, 2, bins, np.random.default_rng(0))
        assert p.shape == (8,) and p.sum() == pytest.approx(1) and q.shape == (128,)
        assert np.isfinite(q).all()


def test_a_parameter_without_annotation_is_an_error_when_the_class_is_defined():
    from dataclasses import dataclass

    from paper_lib.tasks import Task

    with pytest.raises(TypeError, match=r"channels = \('x',\).*annotation.*channels: tuple"):
        @dataclass(frozen=True)
        class Bad(Task):
            name = "bad"
            channels = ("x",)
    with pytest.raises(TypeError, match="T = 32"):
        class AlsoBad(get_task("sine").__class__):
            T = 32


def test_a_task_that_is_not_a_dataclass_is_an_error_when_constructed():
    from paper_lib.tasks import Task

    class Undecorated(Task):
        name = "undecorated"
        channels: tuple[str, ...] = ("x",)

    with pytest.raises(TypeError, match="Undecorated.*not a dataclass.*@dataclass"):
        Undecorated()
    with pytest.raises(ValueError, match="channels must be a non-empty tuple"):
        Task()                                       # the base has no channels of its own
