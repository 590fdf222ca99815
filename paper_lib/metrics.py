"""Histograms on fixed bins, bootstrap bands, and distances between distributions of a quantity q.

Every histogram in the companion lives on one :class:`Bins`: ``n`` equal bins over the prior's
support plus an underflow bin (q < lo) and an overflow bin (q >= hi), so mass that leaves the
support is counted, not dropped. Probabilities therefore have length ``n + 2``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Bins", "histogram", "bootstrap_histogram", "tv", "w1", "noise_floor_tv", "mass_shift"]


@dataclass(frozen=True)
class Bins:
    """``n`` equal bins on ``[lo, hi)`` plus under/overflow. Index 0 is under, ``n + 1`` is over."""

    lo: float
    hi: float
    n: int

    def __post_init__(self):
        if not (np.isfinite(self.lo) and np.isfinite(self.hi) and self.hi > self.lo):
            raise ValueError(f"need finite lo < hi, got lo={self.lo}, hi={self.hi}")
        if int(self.n) < 1:
            raise ValueError(f"need at least one bin, got n={self.n}")

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
        """Bin index of each value, shape like q; NaN/inf go to under (−inf, NaN) or over (+inf)."""
        q = np.asarray(q, dtype=float)
        idx = np.floor((q - self.lo) / self.width).astype(np.int64, copy=False) + 1 \
            if np.all(np.isfinite(q)) else self._index_nonfinite(q)
        return np.clip(idx, 0, self.n + 1)

    def _index_nonfinite(self, q: np.ndarray) -> np.ndarray:
        finite = np.isfinite(q)
        out = np.zeros(q.shape, dtype=np.int64)
        out[finite] = np.floor((q[finite] - self.lo) / self.width).astype(np.int64) + 1
        out[np.isposinf(q)] = self.n + 1
        return out


def histogram(q: np.ndarray, bins: Bins) -> np.ndarray:
    """Probability of each bin, shape (n + 2,), summing to 1."""
    q = np.asarray(q).ravel()
    if q.size == 0:
        raise ValueError("histogram of an empty sample")
    return np.bincount(bins.index(q), minlength=bins.n + 2) / q.size


def bootstrap_histogram(q: np.ndarray, bins: Bins, n_boot: int, rng: np.random.Generator,
                        level: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histogram with a percentile bootstrap band.

    Returns ``(p, lo, hi)``, each shape (n + 2,): the histogram and the ``level`` band of the bin
    probabilities over ``n_boot`` resamples (vectorised: a multinomial per resample).
    """
    p = histogram(q, bins)
    n = np.asarray(q).size
    boots = rng.multinomial(n, p, size=n_boot) / n
    a = (1 - level) / 2
    return p, np.quantile(boots, a, axis=0), np.quantile(boots, 1 - a, axis=0)


def tv(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance ½Σ|p − q| between two histograms on the same bins."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.shape != q.shape:
        raise ValueError(f"histograms on different bins: {p.shape} vs {q.shape}")
    return 0.5 * float(np.abs(p - q).sum())


def w1(a: np.ndarray, b: np.ndarray) -> float:
    """1-Wasserstein distance between two samples of q (in units of q). Non-finite values dropped."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    return float(stats.wasserstein_distance(a, b))


def noise_floor_tv(sample_prior, n: int, bins: Bins, rng: np.random.Generator,
                   repeats: int = 20) -> float:
    """Mean TV between two independent draws of size ``n`` from the prior: the drift of no model.

    ``sample_prior(n, rng)`` draws n values of q.
    """
    vals = [tv(histogram(sample_prior(n, rng), bins), histogram(sample_prior(n, rng), bins))
            for _ in range(repeats)]
    return float(np.mean(vals))


def mass_shift(p_model: np.ndarray, p_ref: np.ndarray) -> np.ndarray:
    """Bin-wise drift Δ = p_model − p_ref, shape (n + 2,): positive where mass is gained."""
    return np.asarray(p_model, float) - np.asarray(p_ref, float)
