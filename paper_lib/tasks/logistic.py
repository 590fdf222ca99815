"""``logistic`` (chaotic): x_{t+1} = r x_t (1 − x_t) after a burn-in; q = the growth rate r.

Prior r ~ U[3, 4], which crosses period doubling, chaos and periodic windows; x_0 ~ U[0.1, 0.9].
The measurement is the least-squares estimate r̂ = Σ x_{t+1} u_t / Σ u_t² with u_t = x_t(1 − x_t),
exact on clean data. Its sensitivity to small errors depends on where the orbit lives, which is why
local deviations can pile mass onto some r and empty others.

Bad input: a trajectory with a NaN or inf, or one whose sums overflow (|x| beyond ~1e75), gets
r̂ = NaN. A trajectory with Σ u_t² < 1e-12 (stuck at 0 or 1, where no r is identified) has its
denominator floored at 1e-12, so r̂ ≈ 0, far below the prior, in the underflow bin. The prior
must lie in [1, 4] (the map keeps [0, 1] only for r <= 4; for r < 1 the orbit dies out) and ``burn_in`` be an integer >= 0,
else ``ValueError``.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .base import Task

__all__ = ["LogisticTask"]


@dataclass(frozen=True)
class LogisticTask(Task):
    name = "logistic"
    quantity = "growth rate r"
    unit = ""
    channels: tuple[str, ...] = ("x",)
    T: int = 64
    lo: float = 3.0
    hi: float = 4.0
    burn_in: int = 32
    offset: float = 0.5   # model units: 2x − 1 in [−1, 1]
    scale: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        if not (self.lo >= 1 and self.hi <= 4):
            raise ValueError(f"logistic: the prior [lo, hi] must lie in [1, 4] (the map keeps "
                             f"[0, 1] only for r <= 4, and for r < 1 the orbit dies out to 0 in "
                             f"the burn-in, leaving no r to measure), got lo={self.lo!r}, "
                             f"hi={self.hi!r}")
        b = self.burn_in
        if isinstance(b, (bool, np.bool_)) or not isinstance(b, numbers.Integral) or b < 0:
            raise ValueError(f"logistic: burn_in must be an integer >= 0 (steps), got {b!r}")

    def generate(self, q, rng):
        r = np.asarray(q, float)
        x = rng.uniform(0.1, 0.9, size=r.shape)
        out = np.empty((len(r), self.T))
        for _ in range(self.burn_in):  # loop over time only; vectorised over trajectories
            x = r * x * (1 - x)
        for t in range(self.T):
            out[:, t] = x
            x = r * x * (1 - x)
        return out[..., None].astype(np.float32)

    def fit(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(r̂ (n,), RMS one-step residual x_{t+1} − r̂ u_t (n,)); both NaN for a trajectory with a
        non-finite value or overflowing sums (see the module docstring)."""
        x = self.check(X)[..., 0].astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            u, nxt = x[:, :-1] * (1 - x[:, :-1]), x[:, 1:]
            num, den = (nxt * u).sum(1), (u ** 2).sum(1)
            r = num / np.maximum(den, 1e-12)
            resid = np.sqrt(((nxt - r[:, None] * u) ** 2).mean(1))
        bad = ~(np.isfinite(num) & np.isfinite(den) & np.isfinite(resid))
        if bad.any():
            r[bad] = np.nan
            resid[bad] = np.nan
        return r, resid

    def measure(self, X):
        return self.fit(X)[0]

    def is_plausible(self, X):
        """An orbit of some logistic map: values in [−0.02, 1.02] and RMS one-step residual of the
        best-fitting map below 0.05."""
        X = self.check(X)
        _, resid = self.fit(X)
        inside = (X.min(axis=(1, 2)) >= -0.02) & (X.max(axis=(1, 2)) <= 1.02)
        return super().is_plausible(X) & inside & (resid <= 0.05)
