"""``sine`` (smooth): x_t = sin(2π f t / T + φ), one channel; q = f in cycles per window.

Prior f ~ U[1, 4], phase φ ~ U[0, 2π). The measurement is a least-squares sinusoid fit: for every
frequency on a fine grid, project the trajectory on span{sin, cos, 1} and keep the explained
energy; take the best grid point and refine it with a parabola through its neighbours. A plain FFT
peak is biased for non-integer f on a 64-sample window (spectral leakage), so it is not used.

Bad input: a trajectory with a NaN or inf, or a constant one (every frequency fits it equally),
has no frequency: its f and R² are NaN. The fit is scale-invariant, so a trajectory of extreme
amplitude (beyond 2^±100) is rescaled by a power of two first rather than overflowing or
underflowing. Parameters are checked at construction: the prior [lo, hi] must lie inside the
measurement grid [f_min, f_max] and below the Nyquist frequency T/2, else ``ValueError``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .base import Task

__all__ = ["SineTask"]


@lru_cache(maxsize=8)
def _bases(T: int, f_min: float, f_max: float, df: float) -> tuple[np.ndarray, np.ndarray]:
    """Frequency grid (F,) and orthonormal bases (F, T, 3) of span{sin, cos, 1} at each f."""
    grid = np.arange(f_min, f_max + df / 2, df)
    t = np.arange(T) / T
    ang = 2 * np.pi * grid[:, None] * t[None, :]
    A = np.stack([np.sin(ang), np.cos(ang), np.ones_like(ang)], axis=-1)  # (F, T, 3)
    Q, _ = np.linalg.qr(A)
    return grid, Q


@dataclass(frozen=True)
class SineTask(Task):
    name = "sine"
    quantity = "frequency"
    unit = "cycles per window"
    channels: tuple[str, ...] = ("x",)
    T: int = 64
    lo: float = 1.0
    hi: float = 4.0
    f_min: float = 0.25   # measurement grid: wide enough that drift outside the support is seen
    f_max: float = 12.0
    df: float = 0.01

    def __post_init__(self):
        super().__post_init__()
        self._positive("df")
        self._positive("f_min", minimum=-np.inf)
        self._positive("f_max", minimum=float(self.f_min))
        if (self.f_max - self.f_min) / self.df < 2:
            raise ValueError(f"sine: the measurement grid [f_min, f_max] in steps of df needs at "
                             f"least 3 points, got f_min={self.f_min!r}, f_max={self.f_max!r}, "
                             f"df={self.df!r}")
        if not (self.f_min <= self.lo and self.hi <= self.f_max):
            raise ValueError(f"sine: the prior [lo, hi] must lie inside the measurement grid "
                             f"[f_min, f_max] = [{self.f_min!r}, {self.f_max!r}], got "
                             f"lo={self.lo!r}, hi={self.hi!r}")
        if not self.hi < self.T / 2:
            raise ValueError(f"sine: hi must be below the Nyquist frequency T/2 = {self.T / 2:g} "
                             f"cycles per window (T={self.T}), got hi={self.hi!r}")

    def generate(self, q, rng):
        q = np.asarray(q, float)
        phi = rng.uniform(0, 2 * np.pi, size=q.shape)
        t = np.arange(self.T) / self.T
        x = np.sin(2 * np.pi * q[:, None] * t[None, :] + phi[:, None])
        return x[..., None].astype(np.float32)

    def fit(self, X, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Least-squares fit: (frequency (n,), explained-variance fraction R² (n,)); both NaN for a
        trajectory with a non-finite value or a constant one (see the module docstring)."""
        x = self.check(X)[..., 0].astype(np.float64)
        finite = np.isfinite(x).all(1)
        bad = ~finite
        if bad.any():
            x = np.where(finite[:, None], x, 0.0)
        amp = np.abs(x).max(1) if x.size else np.zeros(len(x))
        extreme = (amp > 2.0 ** 100) | ((amp < 2.0 ** -100) & (amp > 0))
        if extreme.any():                       # exact rescaling by a power of two
            x = x.copy()
            x[extreme] = np.ldexp(x[extreme], -np.frexp(amp[extreme])[1][:, None])
        bad |= x.max(1, initial=-np.inf) == x.min(1, initial=np.inf)      # constant: no frequency
        grid, Q = _bases(self.T, self.f_min, self.f_max, self.df)
        f_hat = np.empty(len(x))
        r2 = np.empty(len(x))
        centred = ((x - x.mean(1, keepdims=True)) ** 2).sum(1)
        for s in range(0, len(x), chunk):
            xs = x[s:s + chunk]
            energy = (np.einsum("nt,ftk->nfk", xs, Q, optimize=True) ** 2).sum(-1)  # (n, F)
            k = np.clip(energy.argmax(1), 1, len(grid) - 2)
            rows = np.arange(len(xs))
            y0, y1, y2 = energy[rows, k - 1], energy[rows, k], energy[rows, k + 1]
            denom = y0 - 2 * y1 + y2
            shift = np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1), 0.0)
            f_hat[s:s + chunk] = grid[k] + np.clip(shift, -0.5, 0.5) * self.df
            resid = (xs ** 2).sum(1) - y1
            r2[s:s + chunk] = 1 - resid / np.maximum(centred[s:s + chunk], 1e-12)
        if bad.any():
            f_hat[bad] = np.nan
            r2[bad] = np.nan
        return f_hat, r2

    def measure(self, X):
        return self.fit(X)[0]

    def is_plausible(self, X):
        """A sinusoid: the fit explains >= 90% of the variance and |x| <= 1.2."""
        X = self.check(X)
        _, r2 = self.fit(X)
        return super().is_plausible(X) & (r2 >= 0.9) & (np.abs(X).max(axis=(1, 2)) <= 1.2)
