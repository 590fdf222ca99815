"""``sine`` (smooth): x_t = sin(2π f t / T + φ), one channel; q = f in cycles per window.

Prior f ~ U[1, 4], phase φ ~ U[0, 2π). The measurement is a least-squares sinusoid fit: for every
frequency on a fine grid, project the trajectory on span{sin, cos, 1} and keep the explained
energy; take the best grid point and refine it with a parabola through its neighbours. A plain FFT
peak is biased for non-integer f on a 64-sample window (spectral leakage), so it is not used.
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

    def generate(self, q, rng):
        q = np.asarray(q, float)
        phi = rng.uniform(0, 2 * np.pi, size=q.shape)
        t = np.arange(self.T) / self.T
        x = np.sin(2 * np.pi * q[:, None] * t[None, :] + phi[:, None])
        return x[..., None].astype(np.float32)

    def fit(self, X, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Least-squares fit: (frequency (n,), explained-variance fraction R² (n,))."""
        x = self.check(X)[..., 0].astype(np.float64)
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
        return f_hat, r2

    def measure(self, X):
        return self.fit(X)[0]

    def is_plausible(self, X):
        """A sinusoid: the fit explains >= 90% of the variance and |x| <= 1.2."""
        X = self.check(X)
        _, r2 = self.fit(X)
        return super().is_plausible(X) & (r2 >= 0.9) & (np.abs(X).max(axis=(1, 2)) <= 1.2)
