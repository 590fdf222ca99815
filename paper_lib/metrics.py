"""Histograms on fixed bins, bootstrap bands, and distances between distributions of a quantity q.

Every histogram in the companion lives on one :class:`Bins`: ``n`` equal bins over the prior's
support plus an underflow bin (q < lo) and an overflow bin (q >= hi), so mass that leaves the
support is counted, not dropped. Probabilities therefore have length ``n + 2``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Bins", "histogram", "bootstrap_histogram", "tv", "w1", "noise_floor_tv", "mass_shift",
           "uniform_histogram", "uniform_quantiles", "nn_distances", "consistent_bins", "agreement"]


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


def uniform_histogram(bins: Bins) -> np.ndarray:
    """The exact histogram of a prior uniform on ``[bins.lo, bins.hi)``: 1/n per inner bin."""
    return np.r_[0.0, np.full(bins.n, 1.0 / bins.n), 0.0]


def uniform_quantiles(lo: float, hi: float, n: int = 10000) -> np.ndarray:
    """n evenly spaced quantiles of U[lo, hi): a deterministic stand-in for the prior in W1."""
    return lo + (hi - lo) * (np.arange(n) + 0.5) / n


def nn_distances(A: np.ndarray, B: np.ndarray, exclude_self: bool = False,
                 chunk: int = 2048) -> np.ndarray:
    """Euclidean distance from each trajectory of A (n, T, C) to its nearest one in B (m, T, C).

    Trajectories are flattened (units of the trajectories). With ``exclude_self`` (A is B or a
    prefix of it) the zero distance of a trajectory to itself is skipped. Returns (n,).
    """
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
    """
    p_pred, p_model, p_data = (np.asarray(a, float) for a in (p_pred, p_model, p_data))
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
