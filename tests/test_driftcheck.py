"""The drift check for your own data (paper_lib.driftcheck, python -m paper_lib drift): a known
answer, the report, every input format and every user error (one clear message, exit status 2,
nothing written)."""
import functools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from paper_lib import driftcheck as dc
from paper_lib import kernels, metrics
from paper_lib.__main__ import main
from paper_lib.seeding import rng
from paper_lib.tasks import travel_distance

ROOT = Path(__file__).resolve().parents[1]


def walks(n=300, T=32, C=2, seed=0):
    """Random-walk paths (n, T, C) float32: unit Gaussian steps."""
    return np.cumsum(rng(seed, "walks").standard_normal((n, T, C), dtype=np.float32), axis=1)


@pytest.fixture(scope="module")
def X():
    return walks()


# ----------------------------------------------------------------------------- the constant

def test_default_locality_is_the_committed_tables_median():
    """DEFAULT_LOCALITY is the median locality of diffusion-unet's matched rows, and the caveat's
    claim (data-only kernels explained < 0.2 of those models' drift) holds in the same table."""
    t = pd.read_csv(ROOT / "figures" / "tables" / "kernel_agreement.csv")
    m = t[(t.model == "diffusion-unet") & (t["mode"] == "matched")]
    assert len(m) >= 5
    assert dc.DEFAULT_LOCALITY == pytest.approx(float(m.locality.median()), abs=1e-4)
    assert m[m.kernel.isin(dc.DATA_KERNELS)].edf.max() < 0.2


def test_pilot_shape_and_t_star_are_what_notebook_03_chose_on_every_task():
    """PILOT_SHAPE and PILOT_T_STAR are the kernel pilot notebook 03's protocol chose, leave one
    task out, for each of its five tasks (its before-training pilot-denoise rows)."""
    from paper_lib import forecast
    from paper_lib.profiles import get_profile

    t = pd.read_csv(ROOT / "figures" / "tables" / "kernel_agreement.csv")
    for task in ("sine", "cone", "logistic", "maze", "pendulum"):
        assert forecast.pilot_choice(t, task, get_profile("default")) == (dc.PILOT_SHAPE,
                                                                          dc.PILOT_T_STAR), task


def test_check_is_reachable_from_drift():
    from paper_lib import drift

    assert drift.check is dc.check


# ----------------------------------------------------------------------------- known answer

@pytest.mark.parametrize("kernel,scale", [("white", 0.3), ("smooth", 1.5), ("smooth", None),
                                          ("spectral", "psd")])
def test_zero_mean_local_noise_makes_random_walks_longer(X, kernel, scale):
    """Jensen: E‖d + e‖ >= ‖d‖ for zero-mean e, so every zero-mean local kernel forecasts longer
    paths: the mean travel distance rises beyond noise and the top bins gain."""
    psd = None
    if scale == "psd":  # white spectrum, unit variance per entry
        psd, scale = np.ones((X.shape[1] // 2 + 1, 1)), 0.3
    r = dc.check(X, travel_distance, kernel=kernel, scale=scale, psd=psd, bins=8, draws=4, seed=1)
    assert r.mean_forecast > r.mean_data and r.mean_shift_band[0] > 0
    assert len(r.gains) and len(r.losses)
    assert r.losses.max() < r.gains.min()        # mass leaves the low bins for the high ones
    assert r.bins.n + 1 in r.gains and r.bins.n in r.gains      # the top bins gain
    assert r.tv == pytest.approx(metrics.tv(r.p_forecast, r.p_data))
    assert r.w1 > 0 and np.isclose(r.p_forecast.sum(), 1) and np.isclose(r.p_data.sum(), 1)
    assert (r.scale.default, r.caveat is not None) == ((True, True) if scale is None
                                                       else (False, False))


def test_same_seed_same_answer_and_list_input(X):
    a = dc.check(X, travel_distance, "white", 0.2, bins=10, draws=2, seed=3)
    b = dc.check(list(X), travel_distance, "white", 0.2, bins=10, draws=2, seed=3)
    c = dc.check(X.astype(np.float64), travel_distance, "white", 0.2, bins=10, draws=2, seed=4)
    assert np.array_equal(a.p_forecast, b.p_forecast) and np.array_equal(a.delta_band[0],
                                                                         b.delta_band[0])
    assert np.array_equal(a.p_data, c.p_data) and not np.array_equal(a.q_forecast, c.q_forecast)
    assert a.bins == dc._make_bins(10, travel_distance(X))
    assert a.p_data[0] == 0 and a.p_data[-1] == 0          # bins cover the data's range


def test_neighbour_searches_a_subsampled_reference_chunk_by_chunk(X):
    import torch

    threads = torch.get_num_threads()
    r = dc.check(X, travel_distance, "neighbour", 0.5, n_ref=100, k=4, chunk=64, draws=3)
    assert torch.get_num_threads() == threads      # searched on one thread, then restored
    assert r.scale.params == {"k": 4, "n_ref": 100}
    assert np.isfinite(r.q_forecast).all() and 0 < r.locality
    full = dc.check(X, travel_distance, "neighbour", None, k=4, draws=2)
    assert full.scale.params["n_ref"] == len(X)
    assert full.locality == pytest.approx(dc.DEFAULT_LOCALITY, rel=0.05)


def test_reference_set_shrinks_only_for_very_large_inputs():
    assert [dc.reference_size(n) for n in (300, 10 ** 4, 10 ** 5, 10 ** 6, 10 ** 8)] == \
        [300, 4096, 4096, 1073, 1024]
    assert dc.reference_size(10 ** 6, 5000) == 5000 and dc.reference_size(50, 5000) == 50
    with pytest.raises(ValueError, match="n_ref: got 1"):
        dc.reference_size(100, 1)


def test_spacing_equals_kernels_data_spacing():
    Y = walks(700, T=8, C=1)
    assert dc._spacing(Y, np.random.default_rng(5)) == pytest.approx(
        kernels.data_spacing(Y, 2000, rng=np.random.default_rng(5)))
    d, i = dc._nearest(Y[:50], Y, exclude=np.arange(50), block=128)   # several blocks
    dd, ii = kernels.knn(Y[:50], Y, k=1, exclude=np.arange(50))
    assert np.allclose(d, dd[:, 0]) and np.array_equal(i, ii[:, 0])


def test_fit_scale_recovers_the_noise_of_samples(X):
    """Samples = data + white noise of std σ lie ≈ σ√(TC) from their own trajectory; the fitted
    white kernel moves data as far, so its scale is ≈ σ."""
    sigma = 0.05
    S = X[:200] + sigma * rng(0, "samples").standard_normal(X[:200].shape).astype(np.float32)
    fit = dc.fit_scale(S, X, "white")
    assert fit.value == pytest.approx(sigma, rel=0.1) and "fitted" in fit.source
    r = dc.check(X, travel_distance, "white", fit, draws=2)
    assert r.scale.source == fit.source and r.caveat is None
    assert r.locality == pytest.approx(fit.locality, rel=0.1)
    spec = dc.fit_scale(S, X, "spectral")
    assert spec.params["psd"].shape == (X.shape[1] // 2 + 1, X.shape[2])
    assert dc.check(X, travel_distance, "spectral", spec, draws=1).mean_shift > 0
    with pytest.raises(ValueError, match="fitted for kernel 'white'"):
        dc.check(X, travel_distance, "smooth", fit)


def test_a_kernel_instance_is_used_with_its_own_scale(X):
    r = dc.check(X, travel_distance, kernels.white(0.1), draws=2)
    assert r.kernel == "white" and r.scale.value == 0.1 and "own scale" in r.scale.source
    with pytest.raises(ValueError, match="carries its own scale"):
        dc.check(X, travel_distance, kernels.white(0.1), scale=0.2)

    class Broken(kernels.Kernel):
        name = "broken"

        def _perturb(self, X, rng):
            raise RuntimeError("model not on this device")

    with pytest.raises(ValueError, match="failed on a batch of shape .*model not on this device"):
        dc.check(X, travel_distance, Broken(1.0))


def test_non_finite_forecast_q_goes_to_the_underflow_bin(X):
    """A measure undefined on some perturbed trajectories (NaN there) is no error: their mass is
    counted in the underflow bin, as metrics.histogram counts it."""
    top = float(np.abs(X).max())

    def bounded_length(Y):
        return np.where(np.abs(Y).max(axis=(1, 2)) > top, np.nan, travel_distance(Y))

    r = dc.check(X, bounded_length, "white", 0.5, draws=2)
    assert r.n_nonfinite > 0 and r.p_data[0] == 0
    assert r.p_forecast[0] == pytest.approx(r.n_nonfinite / (len(X) * 2))
    assert "non-finite q" in r.summary()


# ----------------------------------------------------------------------------- the report

def test_report_files_html_table_and_caveat(tmp_path, X):
    r = dc.check(X, travel_distance, draws=2)   # the companion's default scale
    df = r.to_frame()
    assert len(df) == r.bins.n + 2 and set(df.change) <= {"gain", "loss", ""}
    assert list(df.columns[:4]) == ["bin", "lo", "hi", "center"]
    assert (df.change == "gain").sum() == len(r.gains)
    paths = r.save(tmp_path / "sub" / "report.html")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == \
        ["report.csv", "report.html", "report.png"]
    page = paths["html"].read_text()
    assert '<table class="drift">' in page and df.bin.iloc[5].replace("<", "&lt;") in page
    assert "Caveat" in page and "companion&#x27;s calibrated default" in page
    assert 'id="vega-chart"' in page and "vegaEmbed" in page      # the chart, bundled inline
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(paths["csv"]).shape == df.shape
    given = dc.check(X, travel_distance, scale=0.3, draws=1)
    assert given.caveat is None and "Caveat" not in given._html('<div id="vega-chart"></div>')


def test_failed_write_leaves_nothing(tmp_path, X, monkeypatch):
    from paper_lib import cache

    r = dc.check(X, travel_distance, scale=0.3, draws=1)
    real, calls = cache.atomic_write_bytes, []

    def flaky(path, data):
        calls.append(path)
        if path.suffix == ".html":
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(cache, "atomic_write_bytes", flaky)
    with pytest.raises(ValueError, match="No space left on device"):
        r.save(tmp_path / "report.html")
    assert len(calls) == 3 and list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- library errors

def _nan(X):
    Y = X.copy()
    Y[7, 3, 1] = np.nan
    return Y


def _inf(X):
    Y = X.copy()
    Y[2, 0, 0] = np.inf
    return Y


@pytest.mark.parametrize("make,measure,kw,message", [
    (lambda X: X[:, :, 0], travel_distance, {}, r"got an array of shape \(300, 32\); expected "
                                                r"shape \(n, T, C\)"),
    (lambda X: [X[0], X[1][:10]], travel_distance, {}, "item 1 has shape .* equal-length"),
    (lambda X: X[:1], travel_distance, {}, "expected at least 2"),
    (lambda X: [], travel_distance, {}, "the list is empty"),
    (lambda X: X.astype(str), travel_distance, {}, "not real numbers"),
    (_nan, travel_distance, {}, r"non-finite value.*trajectory 7, t=3, channel 1"),
    (_inf, travel_distance, {}, r"non-finite value.*trajectory 2, t=0"),
    (lambda X: X, lambda Y: 1 / 0, {}, "measure .* raised ZeroDivisionError"),
    (lambda X: X, lambda Y: travel_distance(Y)[:, None], {}, r"returned shape \(300, 1\)"),
    (lambda X: X, lambda Y: np.full(len(Y), np.inf), {}, "non-finite value.* data trajectories"),
    (lambda X: X, lambda Y: np.array(["a"] * len(Y)), {}, "not numbers"),
    (lambda X: X, "travel_distance", {}, "expected a callable"),
    (lambda X: X, travel_distance, {"kernel": "gaussian"}, "unknown kernel 'gaussian'; expected"),
    (lambda X: X, travel_distance, {"kernel": "denoise"}, "needs your trained model"),
    (lambda X: X, travel_distance, {"kernel": "spectral"}, "needs a power spectrum"),
    (lambda X: X, travel_distance, {"kernel": "spectral", "psd": np.ones(5)}, "does not fit"),
    (lambda X: X, travel_distance, {"kernel": "neighbour", "k": 300}, "neighbour: k=300"),
    (lambda X: X, travel_distance, {"scale": -1}, "scale: got -1"),
    (lambda X: X, travel_distance, {"scale": "big"}, "scale: got 'big'"),
    (lambda X: X, travel_distance, {"bins": 0}, "bins: got 0"),
    (lambda X: X, travel_distance, {"draws": 0}, "draws: got 0"),
    (lambda X: X, travel_distance, {"level": 1.5}, "level: got 1.5"),
])
def test_bad_input_raises_one_clear_value_error(X, make, measure, kw, message):
    with pytest.raises(ValueError, match=message) as err:
        dc.check(make(X), measure, **kw)
    assert isinstance(err.value, dc.DriftCheckError) and "\n" not in str(err.value)


def test_all_duplicates_cannot_use_a_locality():
    Y = np.repeat(walks(3, T=8), 4, axis=0)
    with pytest.raises(ValueError, match="spacing is 0"):
        dc.check(Y, travel_distance)
    assert dc.check(Y, travel_distance, scale=0.1).scale.source == "given"


# ----------------------------------------------------------------------------- files

def _long(X, shuffle=True):
    n, T, C = X.shape
    df = pd.DataFrame({"id": np.repeat(np.arange(n), T), "t": np.tile(np.arange(T), n),
                       **{f"c{j}": X[:, :, j].ravel() for j in range(C)}})
    return df.sample(frac=1.0, random_state=0) if shuffle else df


def test_every_format_loads_the_same_trajectories(tmp_path, X):
    np.save(tmp_path / "a.npy", X)
    np.savez(tmp_path / "one.npz", paths=X)
    np.savez(tmp_path / "two.npz", X=X, other=X[:, :, :1])
    _long(X).to_csv(tmp_path / "a.csv", index=False)
    npy = dc.load_trajectories(tmp_path / "a.npy")
    assert isinstance(npy, np.memmap) and np.array_equal(npy, X)     # memory-mapped
    for spec in ("one.npz", "one.npz:paths", "two.npz:X", "a.csv"):
        assert np.array_equal(dc.load_trajectories(f"{tmp_path}/{spec}"), X), spec


def test_parquet_is_read_when_pyarrow_is_there(tmp_path, X, monkeypatch):
    path = tmp_path / "a.parquet"
    path.write_bytes(b"PAR1 not really")
    real = dc.importlib.util.find_spec
    monkeypatch.setattr(dc.importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyarrow" else real(name, *a))
    with pytest.raises(ValueError, match="needs pyarrow"):
        dc.load_trajectories(path)
    monkeypatch.undo()
    pytest.importorskip("pyarrow")
    _long(X).to_parquet(path, index=False)
    assert np.array_equal(dc.load_trajectories(path), X)


@pytest.mark.parametrize("name,write,message", [
    ("empty.npy", lambda p: p.write_bytes(b""), "the file is empty"),
    ("empty.csv", lambda p: p.write_bytes(b""), "the file is empty"),
    ("header.csv", lambda p: p.write_text("id,t,x\n"), "has no rows"),
    ("junk.npy", lambda p: p.write_bytes(b"not numpy"), "cannot read it as .npy"),
    ("junk.npz", lambda p: p.write_bytes(b"not a zip"), "cannot read it as .npz"),
    ("none.npz", lambda p: np.savez(p), "holds no arrays"),
    ("two.npz", lambda p: np.savez(p, a=np.ones(3), b=np.ones(3)), r"holds 2 arrays \(a, b\)"),
    ("two.npz:c", lambda p: np.savez(p.parent / "two.npz", a=np.ones(3)), "no array 'c'"),
    ("cols.csv", lambda p: p.write_text("traj,t,x\n0,0,1\n"), "columns id, t, then one"),
    ("ragged.csv", lambda p: p.write_text("id,t,x\n0,0,1\n0,1,2\n1,0,3\n"), "has 1 rows"),
    ("shift.csv", lambda p: p.write_text("id,t,x\n0,0,1\n0,1,2\n1,1,3\n1,2,4\n"),
     "same, distinct t values"),
    ("text.csv", lambda p: p.write_text("id,t,x\n0,0,a\n0,1,b\n"), "column 'x' is not numeric"),
    ("a.txt", lambda p: p.write_text("1"), "unknown file type '.txt'"),
    ("missing.npy", lambda p: None, "no such file"),
])
def test_bad_files_raise_one_clear_message(tmp_path, name, write, message):
    write(tmp_path / name)
    with pytest.raises(ValueError, match=message) as err:
        dc.load_trajectories(tmp_path / name)
    assert "\n" not in str(err.value)


def test_measures_by_name(tmp_path, X):
    cone = dc.resolve_measure("task:cone")
    assert np.allclose(cone(walks(3, T=64)), travel_distance(walks(3, T=64)))
    assert dc.resolve_measure("paper_lib.tasks.cone:travel_distance") is travel_distance
    sine = dc.resolve_measure("paper_lib.tasks.sine:measure")
    assert sine.__self__.name == "sine"
    assert dc.resolve_measure("paper_lib.tasks.sine:SineTask.measure").__self__.name == "sine"
    (tmp_path / "mine.py").write_text("def mean_x(X):\n    return X[:, :, 0].mean(1)\n")
    f = dc.resolve_measure(f"{tmp_path}/mine.py:mean_x")
    assert np.allclose(f(X), X[:, :, 0].mean(1))
    for spec, msg in [("travel_distance", "expected module:function"),
                      ("task:bogus", "unknown task 'bogus'"),
                      ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
                      ("paper_lib.tasks.cone:nope", "has no attribute 'nope'"),
                      ("paper_lib.tasks.cone:ConeTask.lo", "is not callable"),
                      (f"{tmp_path}/absent.py:f", "no such file")]:
        with pytest.raises(ValueError, match=msg):
            dc.resolve_measure(spec)


# ----------------------------------------------------------------------------- the kernel pilot

def test_pilot_trains_in_the_units_given_or_standardised(X):
    """The pilot's model sees (x - offset) / scale: given units are used as given; by default the
    data standardised (zero mean, unit standard deviation per channel). It is cached."""
    Y = X[:, :32] * np.float32([1.0, 5.0]) + np.float32([2.0, -1.0])
    given = dc.pilot_kernel(Y, units=((2.0, -1.0), 3.0), profile="smoke")
    assert given.trained.task.offset == (2.0, -1.0) and given.trained.task.spread == (3.0, 3.0)
    assert given.scale == dc.PILOT_T_STAR == 0 and not given.trained.from_cache
    std = dc.pilot_kernel(Y, profile="smoke")
    Z = std.trained.task.to_model(Y).astype(np.float64)
    assert np.allclose(Z.mean(axis=(0, 1)), 0, atol=1e-5)
    assert np.allclose(Z.std(axis=(0, 1)), 1, atol=1e-5)
    assert dc.pilot_kernel(Y, profile="smoke").trained.from_cache


def test_pilot_kernel_is_equivariant_to_the_units(X):
    """Data ten times larger in units ten times larger is the same training set for the pilot,
    so its kernel is the same, ten times larger: the units, not the numbers, decide."""
    Y = X[:, :32]
    small = dc.pilot_kernel(Y, units=(0.0, 1.0), profile="smoke")
    large = dc.pilot_kernel(10 * Y, units=(0.0, 10.0), profile="smoke")
    a = small.sample(Y[:50], rng(0, "pilot units"))
    b = large.sample(10 * Y[:50], rng(0, "pilot units"))
    assert np.allclose(b, 10 * a, rtol=1e-4, atol=1e-3)
    moved = np.abs(a - Y[:50]).mean()
    assert moved > 0 and not np.allclose(large.sample(Y[:50], rng(0, "pilot units")), a,
                                         atol=0.1 * moved)


def test_check_with_the_pilot_reports_its_units_and_the_caveat(X, monkeypatch):
    """check(kernel='pilot') trains the pilot and says in which units; the caveat appears only
    when the units were not given. (Smoke-sized pilots here; the command's test below trains
    the default one.)"""
    monkeypatch.setattr(dc, "pilot_kernel", functools.partial(dc.pilot_kernel, profile="smoke"))
    Y = X[:40]
    r = dc.check(Y, travel_distance, kernel="pilot", draws=1, bins=5, n_boot=10)
    assert r.kernel == "pilot" and "standardised" in r.scale.source and "Units:" in r.caveat
    r = dc.check(Y, travel_distance, kernel="pilot", units=(0.0, 4.0), draws=1, bins=5,
                 n_boot=10)
    assert "(x - 0) / 4," in r.scale.source and r.caveat is None and r.locality > 0


@pytest.mark.parametrize("make,kw,message", [
    (lambda X: X[:, :30], {}, r"T=30 frames.*multiple of 4"),
    (lambda X: np.ones_like(X), {}, "every channel is constant"),
    (_nan_first := (lambda X: np.where(np.arange(X.shape[1])[None, :, None] == 3, np.nan, X)),
     {}, "non-finite value"),
    (lambda X: X, {"units": (0.0, 0.0)}, r"units: got \(0.0, 0.0\)"),
    (lambda X: X, {"units": ((0, 0, 0), 1.0)}, "one per channel"),
    (lambda X: X, {"units": (0.0, (1.0, -1.0))}, "scale > 0"),
    (lambda X: X, {"units": "1:2"}, "expected \\(offset, scale\\)"),
    (lambda X: X, {"profile": "fast"}, "unknown profile 'fast'"),
])
def test_pilot_bad_input_one_clear_error(X, make, kw, message):
    with pytest.raises(dc.DriftCheckError, match=message):
        dc.pilot_kernel(make(X), **kw)


def test_pilot_options_belong_to_the_pilot(X):
    with pytest.raises(dc.DriftCheckError, match="only kernel 'pilot' trains in units"):
        dc.check(X, travel_distance, kernel="smooth", units=(0.0, 1.0))
    with pytest.raises(dc.DriftCheckError, match="the kernel pilot has its own scale"):
        dc.check(X, travel_distance, kernel="pilot", scale=0.3)


# ----------------------------------------------------------------------------- the command

@pytest.fixture
def files(tmp_path, X):
    np.save(tmp_path / "walks.npy", walks(200, T=64))
    (tmp_path / "m.py").write_text(
        "import numpy as np\n"
        "def boom(X):\n    raise KeyError('speed')\n"
        "def flat(X):\n    return np.zeros((len(X), 2))\n")
    return tmp_path


def run_cli(capsys, *argv):
    rc = main(["drift", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_command_writes_the_report_and_prints_a_summary(files, capsys):
    out = files / "rep" / "report.html"
    rc, stdout, err = run_cli(capsys, "--data", files / "walks.npy", "--measure", "task:cone",
                              "--scale", "0.2", "--draws", "2", "--bins", "12", "--out", out)
    assert rc == 0, err
    assert "forecast moves" in stdout and "gains beyond noise" in stdout and "report:" in stdout
    assert out.exists() and out.with_suffix(".png").exists() and out.with_suffix(".csv").exists()
    assert len(pd.read_csv(out.with_suffix(".csv"))) == 14


def test_command_fits_the_scale_to_samples(files, capsys):
    X = np.load(files / "walks.npy")
    S = X[:100] + 0.05 * rng(0, "cli samples").standard_normal(X[:100].shape).astype(np.float32)
    np.save(files / "samples.npy", S)
    out = files / "spectral.html"
    rc, stdout, err = run_cli(capsys, "--data", files / "walks.npy", "--measure", "task:cone",
                              "--kernel", "spectral", "--samples", files / "samples.npy",
                              "--draws", "1", "--out", out)
    assert rc == 0, err
    assert "fitted to 100 model samples" in stdout and "caveat" not in stdout and out.exists()


def test_command_runs_the_pilot_in_the_units_given(files, capsys):
    out = files / "pilot.html"
    rc, stdout, err = run_cli(capsys, "--data", files / "walks.npy", "--measure", "task:cone",
                              "--kernel", "pilot", "--units", "0,0:5,2.5", "--draws", "1",
                              "--out", out)
    assert rc == 0, err
    assert "kernel pilot" in stdout and "(x - 0) / (5, 2.5)" in stdout and "caveat" not in stdout
    assert out.exists()


def test_command_help_explains_every_option(capsys):
    assert main(["drift", "--help"]) == 0
    text = capsys.readouterr().out
    for opt in ("--data", "--measure", "--kernel", "--scale", "--samples", "--bins", "--draws",
                "--seed", "--length", "--k", "--level", "--boot", "--out", "--quiet",
                "--units"):
        assert opt in text
    assert ".parquet" in text and "task:NAME" in text and "exit status" in text


@pytest.mark.parametrize("args,message", [
    (["--data", "{d}/nan.npy"], "non-finite value"),
    (["--data", "{d}/flat.npy"], r"shape \(200, 64\); expected shape \(n, T, C\)"),
    (["--data", "{d}/empty.npy"], "the file is empty"),
    (["--data", "{d}/x.npz:nope"], "no array 'nope'"),
    (["--measure", "{d}/m.py:boom"], "raised KeyError: 'speed'"),
    (["--measure", "{d}/m.py:flat"], r"returned shape \(200, 2\)"),
    (["--kernel", "gauss"], "invalid choice: 'gauss'"),
    (["--kernel", "spectral"], "needs --samples"),
    (["--kernel", "pilot", "--scale", "0.2"], "--kernel pilot has its own scale"),
    (["--units", "0:-1"], "expected OFFSET:SCALE"),
    (["--units", "0:1"], "only kernel 'pilot' trains in units"),
    (["--bins", "ten"], "expected N .* or LO:HI:N"),
    (["--out", "{d}/walks.npy/report.html"], "is not a folder"),
    (["--out", "{d}/report.png"], "does not end in .html"),
])
def test_command_user_errors_exit_2_with_one_line(files, capsys, args, message):
    X = walks(200, T=64)
    np.save(files / "nan.npy", _nan(X))
    np.save(files / "flat.npy", X[:, :, 0])
    (files / "empty.npy").write_bytes(b"")
    np.savez(files / "x.npz", X=X)
    argv = {"--data": f"{files}/walks.npy", "--measure": "task:cone",
            "--out": f"{files}/out/report.html"}
    extra = []
    for key, value in zip(args[::2], args[1::2]):
        value = value.format(d=files)
        if key in argv:
            argv[key] = value
        else:
            extra += [key, value]
    rc, out, err = run_cli(capsys, *[x for kv in argv.items() for x in kv], *extra)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], err
    assert re.search(message, lines[0]), lines[0]
    assert not (files / "out").exists()


def test_command_in_a_fresh_process_has_no_traceback(tmp_path):
    np.save(tmp_path / "bad.npy", np.ones((4, 3)))
    p = subprocess.run([sys.executable, "-m", "paper_lib", "drift", "--data",
                        str(tmp_path / "bad.npy"), "--measure", "task:cone", "--out",
                        str(tmp_path / "r.html")], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.count("\n") == 1 and "expected shape (n, T, C)" in p.stderr
    assert not (tmp_path / "r.html").exists()
