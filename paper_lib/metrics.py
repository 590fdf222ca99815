"""Histograms on fixed bins, bootstrap bands, and distances between distributions of a quantity q.

Every histogram in the companion lives on one :class:`Bins`: ``n`` equal bins over the prior's
support plus an underflow bin (q < lo) and an overflow bin (q >= hi), so mass that leaves the
support is counted, not dropped. Probabilities therefore have length ``n + 2``.

Bad input: sizes that are not whole numbers of the right sign, empty samples, histograms of
different shapes or a sample without a single finite value raise ``ValueError`` naming the
argument, its value and what is valid. NaN and ±inf inside a sample are data, not errors: the
histograms count NaN and −inf as underflow and +inf as overflow (a measurement returns NaN for a
trajectory it cannot measure, so such trajectories are counted, not dropped); ``w1`` drops them.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Bins", "histogram", "bootstrap_histogram", "bootstrap_tv", "null_tv", "tv", "w1", "noise_floor_tv", "mass_shift",
           "uniform_histogram", "uniform_quantiles", "nn_distances", "consistent_bins", "agreement",
           "steps_to_reach", "steps_to_reach_band"]


def _integer(name: str, value, minimum: int = 1, whole_floats: bool = True) -> int:
    """``value`` as an int if it is a whole number >= ``minimum`` (an integral float such as 1e4
    counts unless ``whole_floats`` is False), else ``ValueError`` naming ``name``, the value and
    what is valid. Booleans are not numbers here."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if not ok and whole_floats and isinstance(value, numbers.Real) \
            and not isinstance(value, (bool, np.bool_)):
        ok = bool(np.isfinite(value)) and float(value).is_integer()
    if not ok or int(value) < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def _support(lo, hi, who: str = "", what: str = "") -> tuple[float, float]:
    """(lo, hi) as floats if both are finite numbers with lo < hi, else ``ValueError``: "{who}lo
    and hi{what} must be finite numbers with lo < hi, got lo=…, hi=…"."""
    try:
        ok = _finite_number("lo", lo) < _finite_number("hi", hi)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{who}lo and hi{what} must be finite numbers with lo < hi, got "
                         f"lo={lo!r}, hi={hi!r}")
    return float(lo), float(hi)


def _finite_number(name: str, value) -> float:
    """``value`` as a float if it is a finite real number, else ``ValueError`` naming ``name``."""
    try:
        v = None if isinstance(value, (bool, np.bool_, str, bytes)) else float(value)
    except (TypeError, ValueError):
        v = None
    if v is None or not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return v


@dataclass(frozen=True)
class Bins:
    """``n`` equal bins on ``[lo, hi)`` plus under/overflow. Index 0 is under, ``n + 1`` is over.

    ``lo`` and ``hi`` must be finite numbers with lo < hi and a finite width hi − lo, ``n`` a
    positive integer (an int, not a float); anything else raises ``ValueError``."""

    lo: float
    hi: float
    n: int

    def __post_init__(self):
        lo, hi = _support(self.lo, self.hi, "Bins: ")
        if not np.isfinite(hi - lo):
            raise ValueError(f"Bins: hi - lo must be finite, got lo={self.lo!r}, hi={self.hi!r}")
        _integer("Bins: n (the number of inner bins)", self.n, whole_floats=False)

    @property
    def edges(self) -> np.ndarray:
        """Inner edges, shape (n + 1,)."""
        return np.linspace(self.lo, self.hi, self.n + 1)

    @property
    def width(self) -> float:
        return (self.hi - self.lo) / self.n

    @property
    def centers(self) -> np.ndarray:
        """Bin centres, shape (n + 2,); under/overflow get a centre half a bin outside the support."""
        inner = self.lo + self.width * (np.arange(self.n) + 0.5)
        return np.concatenate([[self.lo - self.width / 2], inner, [self.hi + self.width / 2]])

    @property
    def labels(self) -> list[str]:
        """Readable bin names, length n + 2."""
        e = self.edges
        return ([f"<{e[0]:.3g}"] + [f"[{a:.3g},{b:.3g})" for a, b in zip(e[:-1], e[1:])]
                + [f">={e[-1]:.3g}"])

    def index(self, q: np.ndarray) -> np.ndarray:
        """Bin index of each value, shape like q, int64 in [0, n + 1]: values below ``lo`` go to
        the underflow bin 0, values >= ``hi`` to the overflow bin n + 1, however large (the bin
        number is clipped before it is cast to an integer, so 1e300 cannot wrap around); −inf
        and NaN go to underflow, +inf to overflow."""
        q = np.asarray(q, dtype=float)
        with np.errstate(over="ignore", invalid="ignore"):  # 1e308 / width: inf, over
            z = np.floor((q - self.lo) / self.width)       # NaN stays NaN, ±inf stays ±inf
        if not np.all(np.isfinite(z)) or z.size and (z.min() < -1 or z.max() > self.n):
            z = np.where(np.isnan(z), -1.0, np.clip(z, -1.0, float(self.n)))
        idx = z.astype(np.int64, copy=False) + 1
        return np.clip(idx, 0, self.n + 1)


def histogram(q: np.ndarray, bins: Bins) -> np.ndarray:
    """Probability of each bin, shape (n + 2,), summing to 1. NaN and ±inf are counted in the
    under/overflow bins (see :meth:`Bins.index`); an empty sample raises ``ValueError``."""
    q = np.asarray(q).ravel()
    if q.size == 0:
        raise ValueError("histogram of an empty sample: q must hold at least one value, got "
                         "shape (0,)")
    return np.bincount(bins.index(q), minlength=bins.n + 2) / q.size


def _level(level) -> float:
    """A central interval's probability, checked to be a number in (0, 1)."""
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, numbers.Real) \
            or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    return float(level)


def bootstrap_histogram(q: np.ndarray, bins: Bins, n_boot: int, rng: np.random.Generator,
                        level: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histogram with a percentile bootstrap band.

    Returns ``(p, lo, hi)``, each shape (n + 2,): the histogram and the ``level`` band of the bin
    probabilities over ``n_boot`` resamples (vectorised: a multinomial per resample).
    ``n_boot`` must be a positive integer and ``level`` in (0, 1), else ``ValueError``.
    """
    n_boot, level = _integer("n_boot", n_boot), _level(level)
    p = histogram(q, bins)
    n = np.asarray(q).size
    boots = rng.multinomial(n, p, size=n_boot) / n
    a = (1 - level) / 2
    return p, np.quantile(boots, a, axis=0), np.quantile(boots, 1 - a, axis=0)


def bootstrap_tv(q: np.ndarray, bins: Bins, ref: np.ndarray, n_boot: int,
                 rng: np.random.Generator) -> np.ndarray:
    """TV to a fixed histogram ``ref`` (n + 2,) of ``n_boot`` bootstrap resamples of the sample
    ``q`` (a multinomial per resample, vectorised): shape (n_boot,). Its spread is the sampling
    uncertainty of TV(histogram(q), ref); the difference of two such arrays from independent
    samples gives a percentile interval of a TV difference (TV is biased upwards at finite size,
    by about the :func:`noise_floor_tv`, which such a difference mostly cancels)."""
    n_boot = _integer("n_boot", n_boot)
    ref = np.asarray(ref, float)
    if ref.shape != (bins.n + 2,):
        raise ValueError(f"bootstrap_tv: ref must have the bins' shape ({bins.n + 2},), got "
                         f"{ref.shape}")
    p = histogram(q, bins)
    n = np.asarray(q).size
    return 0.5 * np.abs(rng.multinomial(n, p, size=n_boot) / n - ref).sum(axis=1)


def null_tv(ref: np.ndarray, n: int, n_rep: int, rng: np.random.Generator) -> np.ndarray:
    """TV between ``ref`` (a histogram, (n_bins,)) and the histograms of ``n_rep`` samples of size
    ``n`` drawn from it: what a perfect model of ``ref`` scores by chance, shape (n_rep,). An
    observed TV above its 95% quantile is a drift at the 5% level (a one-sided Monte Carlo test;
    its p-value is the fraction of this array at or above the observed TV)."""
    n, n_rep = _integer("n", n), _integer("n_rep", n_rep)
    ref = np.asarray(ref, float)
    if ref.ndim != 1 or not np.isclose(ref.sum(), 1) or (ref < 0).any():
        raise ValueError(f"null_tv: ref must be a histogram (non-negative, summing to 1), got "
                         f"shape {ref.shape} summing to {ref.sum():.6g}")
    return 0.5 * np.abs(rng.multinomial(n, ref / ref.sum(), size=n_rep) / n - ref).sum(axis=1)


def tv(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance ½Σ|p − q| between two histograms on the same bins.

    Histograms of different shapes or empty ones raise ``ValueError``; a histogram holding a
    non-finite entry gives NaN."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.shape != q.shape:
        raise ValueError(f"histograms on different bins: {p.shape} vs {q.shape}")
    if p.size == 0:
        raise ValueError(f"tv of empty histograms: p and q must hold at least one bin, got "
                         f"shape {p.shape}")
    d = 0.5 * float(np.abs(p - q).sum())
    return d if np.isfinite(d) else float("nan")


def w1(a: np.ndarray, b: np.ndarray) -> float:
    """1-Wasserstein distance between two samples of q (in units of q). Non-finite values (NaN
    of trajectories a measurement could not measure, ±inf) are dropped; a sample left without
    a single finite value raises ``ValueError`` naming it."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    for name, x in (("a", a), ("b", b)):
        if not np.isfinite(x).any():
            raise ValueError(f"w1: sample {name} has no finite value (it holds {x.size} values, "
                             f"none finite); need at least one finite value")
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    return float(stats.wasserstein_distance(a, b))


def noise_floor_tv(sample_prior, n: int, bins: Bins, rng: np.random.Generator,
                   repeats: int = 20) -> float:
    """Mean TV between two independent draws of size ``n`` from the prior: the drift of no model.

    ``sample_prior(n, rng)`` draws n values of q. ``n`` and ``repeats`` must be positive
    integers, else ``ValueError``.
    """
    n, repeats = _integer("n", n), _integer("repeats", repeats)
    vals = [tv(histogram(sample_prior(n, rng), bins), histogram(sample_prior(n, rng), bins))
            for _ in range(repeats)]
    return float(np.mean(vals))


def mass_shift(p_model: np.ndarray, p_ref: np.ndarray) -> np.ndarray:
    """Bin-wise drift Δ = p_model − p_ref, shape (n + 2,): positive where mass is gained.
    Histograms of different shapes raise ``ValueError`` (they are not broadcast)."""
    p_model, p_ref = np.asarray(p_model, float), np.asarray(p_ref, float)
    if p_model.shape != p_ref.shape:
        raise ValueError(f"histograms on different bins: p_model {p_model.shape} vs p_ref "
                         f"{p_ref.shape}")
    return p_model - p_ref


def uniform_histogram(bins: Bins) -> np.ndarray:
    """The exact histogram of a prior uniform on ``[bins.lo, bins.hi)``: 1/n per inner bin."""
    return np.r_[0.0, np.full(bins.n, 1.0 / bins.n), 0.0]


def uniform_quantiles(lo: float, hi: float, n: int = 10000) -> np.ndarray:
    """n evenly spaced quantiles of U[lo, hi): a deterministic stand-in for the prior in W1.
    ``n`` must be a positive integer and lo < hi finite, else ``ValueError``."""
    n = _integer("n", n)
    _support(lo, hi)
    return lo + (hi - lo) * (np.arange(n) + 0.5) / n


def nn_distances(A: np.ndarray, B: np.ndarray, exclude_self: bool = False,
                 chunk: int = 2048) -> np.ndarray:
    """Euclidean distance from each trajectory of A (n, T, C) to its nearest one in B (m, T, C).

    Trajectories are flattened (units of the trajectories). With ``exclude_self`` (A is B or a
    prefix of it) the zero distance of a trajectory to itself is skipped. Returns (n,) float64:
    the float32 ``torch.cdist`` distances of :func:`paper_lib.kernels.knn` (``exact=False``;
    the one nearest-neighbour search of the library), in chunks of ``chunk`` rows of A.
    Accuracy is float32's relative to the data's magnitude, not to each distance: a distance far
    below the trajectories' norms (near-duplicates; torch computes ‖a‖² + ‖b‖² − 2a·b for more
    than 25 rows) carries an absolute error up to ~1e-3 of those norms. ``knn(exact=True)``
    recomputes distances exactly.

    Bad input: an empty A or B (or B of one trajectory with ``exclude_self``), trajectories of
    different (T, C) or a non-positive ``chunk`` raise ``ValueError``; a trajectory of A with a
    non-finite value gets NaN, and so does a distance too large for float32.
    """
    from .kernels import knn  # lazy: kernels imports this module

    A, B = np.asarray(A), np.asarray(B)
    for name, X in (("A", A), ("B", B)):
        if X.ndim != 3 or len(X) == 0:
            raise ValueError(f"nn_distances: {name} must be trajectories of shape (n, T, C) with "
                             f"n >= 1, got shape {X.shape}")
    exclude = np.arange(len(A)) if exclude_self else None
    out = knn(A, B, k=1, exclude=exclude, chunk=chunk, exact=False)[0][:, 0]
    out[~np.isfinite(out)] = np.nan
    return out


def consistent_bins(deltas: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Bins whose drift has the same sign in every run and exceeds the noise in every run.

    ``deltas`` (runs, bins) drift per run, ``noise`` (runs, bins) or (bins,) half-widths of the
    bootstrap band. Returns int (bins,): +1 gains in every run, −1 loses in every run, 0 otherwise.
    """
    deltas = np.atleast_2d(deltas)
    big = np.abs(deltas) > noise
    gain = np.all((deltas > 0) & big, axis=0)
    loss = np.all((deltas < 0) & big, axis=0)
    return gain.astype(int) - loss.astype(int)


def _pass_rates(steps, frac, goal: float) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` and ``frac`` as float arrays, checked to be 1-D of one length, and ``goal``
    checked to lie in (0, 1)."""
    steps, frac = np.asarray(steps, float), np.asarray(frac, float)
    if steps.shape != frac.shape or steps.ndim != 1:
        raise ValueError(f"steps and frac must be 1-D of one length, got shapes {steps.shape} "
                         f"and {frac.shape}")
    if not 0 < goal < 1:
        raise ValueError(f"goal must lie in (0, 1), got {goal!r}")
    return steps, frac


def _power_law(steps: np.ndarray, frac: np.ndarray, goal: float) -> tuple[np.ndarray, np.ndarray]:
    """(slope, steps), each (m,): the least-squares line of log(1 − frac) on log(steps) for each
    row of ``frac`` (m, k) with every rate in (0, 1), and the steps at which it reaches ``goal``
    (inf where the failing fraction does not fall, or would need more steps than a float holds)."""
    lx, ly = np.log(steps), np.log(1 - frac)
    dx = lx - lx.mean()
    slope = (ly - ly.mean(axis=1, keepdims=True)) @ dx / (dx @ dx)
    icpt = ly.mean(axis=1) - slope * lx.mean()
    falling = slope < 0
    need = np.full(len(frac), np.inf)
    with np.errstate(over="ignore"):
        need[falling] = np.exp((np.log(1 - goal) - icpt[falling]) / slope[falling])
    return slope, need


def steps_to_reach(steps, frac, goal: float = 0.9) -> tuple[float, float]:
    """(slope, steps): a power law 1 − frac ∝ steps^slope fitted by least squares in log–log to
    pass rates ``frac`` (k,) measured after ``steps`` (k,) optimiser steps, and the steps at which
    it reaches ``goal``: a rough extrapolation, not a measurement. Steps are inf where the failing
    fraction does not fall (slope ≥ 0); both NaN with fewer than two points or a rate of 0 or 1
    (no power law passes through them)."""
    steps, frac = _pass_rates(steps, frac, goal)
    if len(steps) < 2 or not ((frac > 0) & (frac < 1) & (steps > 0)).all():
        return float("nan"), float("nan")
    slope, need = _power_law(steps, frac[None], goal)
    return float(slope[0]), float(need[0])


def steps_to_reach_band(steps, frac, n, rng: np.random.Generator, goal: float = 0.9,
                        n_boot: int = 2000, level: float = 0.9) -> tuple[float, float]:
    """The central ``level`` interval of :func:`steps_to_reach`'s steps under the sampling noise
    of the pass rates: each rate ``frac`` (k,) is redrawn ``n_boot`` times as the rate of its
    ``n`` (k,) motions resampled with replacement (a binomial bootstrap, from ``rng``) and the
    power law refitted. Replicates whose failing fraction does not fall count as inf; replicates
    with a rate of 0 or 1 are dropped, and the interval is (nan, nan) if none is left."""
    steps, frac = _pass_rates(steps, frac, goal)
    n = np.asarray(n)
    if n.shape != steps.shape or not np.issubdtype(n.dtype, np.integer) or (n < 1).any():
        raise ValueError(f"n must be positive integers, one per rate (shape {steps.shape}), "
                         f"got {n!r}")
    n_boot, level = _integer("n_boot", n_boot), _level(level)
    if len(steps) < 2 or not ((frac >= 0) & (frac <= 1) & (steps > 0)).all():
        return float("nan"), float("nan")
    b = rng.binomial(n, frac, size=(n_boot, len(n))) / n            # (n_boot, k) pass rates
    b = b[((b > 0) & (b < 1)).all(axis=1)]
    if not len(b):
        return float("nan"), float("nan")
    need = _power_law(steps, b, goal)[1]
    lo, hi = np.quantile(need, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return float(lo), float(hi)


def agreement(p_pred: np.ndarray, p_model: np.ndarray, p_data: np.ndarray,
              noise: np.ndarray | float = 0.0) -> dict[str, float]:
    """How well a predicted histogram matches a trained model's, all on the same bins (n + 2,).

    * ``rho``: Pearson correlation over bins of predicted drift p_pred − p_data and observed drift
      p_model − p_data (NaN when either drift is constant);
    * ``sign_agreement``: on bins whose observed drift exceeds ``noise`` (its bootstrap
      half-width, scalar or per bin), the fraction where the predicted drift has the same sign
      (NaN when no bin exceeds the noise);
    * ``edf``: explained drift fraction 1 − TV(p_pred, p_model) / TV(p_data, p_model): 1 for a
      perfect prediction, 0 for predicting no drift, negative when worse than that;
    * ``tv_pred_model`` and ``tv_prior_model``: the two TVs behind it.

    Empty histograms, histograms of different shapes or a ``noise`` that does not broadcast to
    them raise ``ValueError``.
    """
    p_pred, p_model, p_data = (np.asarray(a, float) for a in (p_pred, p_model, p_data))
    if p_pred.size == 0 or p_model.size == 0 or p_data.size == 0:
        raise ValueError(f"agreement of empty histograms: need at least one bin, got p_pred "
                         f"{p_pred.shape}, p_model {p_model.shape}, p_data {p_data.shape}")
    if not p_pred.shape == p_model.shape == p_data.shape:
        raise ValueError(f"agreement: histograms on different bins: p_pred {p_pred.shape}, "
                         f"p_model {p_model.shape}, p_data {p_data.shape}")
    try:
        np.broadcast_to(np.asarray(noise, float), p_data.shape)
    except ValueError:
        raise ValueError(f"agreement: noise of shape {np.shape(noise)} does not fit histograms "
                         f"of shape {p_data.shape} (need a scalar or that shape)") from None
    d_pred, d_obs = p_pred - p_data, p_model - p_data
    if np.std(d_pred) > 0 and np.std(d_obs) > 0:
        rho = float(np.corrcoef(d_pred, d_obs)[0, 1])
    else:
        rho = float("nan")
    big = np.abs(d_obs) > np.broadcast_to(np.asarray(noise, float), d_obs.shape)
    sign = float(np.mean(np.sign(d_pred[big]) == np.sign(d_obs[big]))) if big.any() else float("nan")
    tv_pm, tv_dm = tv(p_pred, p_model), tv(p_data, p_model)
    edf = 1.0 - tv_pm / tv_dm if tv_dm > 0 else float("nan")
    return {"rho": rho, "sign_agreement": sign, "edf": float(edf), "tv_pred_model": tv_pm,
            "tv_prior_model": tv_dm}
