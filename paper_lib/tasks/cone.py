"""``cone`` (geometric): a planar spiral whose radius grows linearly in time — a cone in (x, y, t).

p_t = c (t/T) (cos(θ0 + 2πk t/T), sin(θ0 + 2πk t/T)), t = 0..T−1, with k turns and θ0 ~ U[0, 2π).
q = travel distance Σ_t ‖p_{t+1} − p_t‖. Travel distance is linear in c and independent of θ0,
so c = q / L(1) generates a path of exactly the requested length.

Bad input: ``measure`` (and :func:`travel_distance`) gives NaN for a trajectory with a NaN or inf;
steps of extreme size (beyond 2^±500) are rescaled by a power of two so the squares neither
overflow nor underflow. ``lo`` must be >= 0 (a distance) and ``turns`` finite, else ``ValueError``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Task

__all__ = ["ConeTask", "travel_distance"]


def travel_distance(X: np.ndarray) -> np.ndarray:
    """Σ_t ‖x_{t+1} − x_t‖ over time for trajectories (n, T, C) -> (n,), float64.

    NaN for a trajectory with a non-finite value (and for a distance beyond the float64 range);
    another shape than (n, T, C) raises ``ValueError``."""
    X = np.asarray(X, np.float64)
    if X.ndim != 3:
        raise ValueError(f"travel_distance: trajectories must have shape (n, T, C), got {X.shape}")
    d = np.diff(X, axis=1)
    out = np.sqrt((d ** 2).sum(-1)).sum(-1)
    if d.size:
        with np.errstate(invalid="ignore"):
            m = np.abs(d).max(axis=(1, 2))
        extreme = np.isfinite(m) & ((m > 2.0 ** 500) | ((m < 2.0 ** -500) & (m > 0)))
        if extreme.any():                     # exact rescaling by a power of two
            e = np.frexp(m[extreme])[1]
            ds = np.ldexp(d[extreme], -e[:, None, None])
            out[extreme] = np.ldexp(np.sqrt((ds ** 2).sum(-1)).sum(-1), e)
    bad = ~np.isfinite(out) | ~np.isfinite(X).all(axis=(1, 2))
    if bad.any():
        out[bad] = np.nan
    return out


@dataclass(frozen=True)
class ConeTask(Task):
    name = "cone"
    quantity = "travel distance"
    unit = "length units"
    channels: tuple[str, ...] = ("x", "y")
    T: int = 64
    lo: float = 2.0
    hi: float = 6.0
    turns: float = 2.0
    scale: float = 1.0    # model units = task units: the largest radius (q = 6) is ~0.93

    def __post_init__(self):
        super().__post_init__()
        if not self.lo >= 0:
            raise ValueError(f"cone: lo must be >= 0 (q is a travel distance), got lo={self.lo!r}")
        self._positive("turns", minimum=-np.inf)

    def _unit_path(self, theta0: np.ndarray) -> np.ndarray:
        t = np.arange(self.T) / self.T
        ang = theta0[:, None] + 2 * np.pi * self.turns * t[None, :]
        return t[None, :, None] * np.stack([np.cos(ang), np.sin(ang)], axis=-1)

    @property
    def unit_length(self) -> float:
        """L(1): the travel distance of the path with c = 1."""
        return float(travel_distance(self._unit_path(np.zeros(1)))[0])

    def generate(self, q, rng):
        q = np.asarray(q, float)
        theta0 = rng.uniform(0, 2 * np.pi, size=q.shape)
        c = q / self.unit_length
        return (c[:, None, None] * self._unit_path(theta0)).astype(np.float32)

    def measure(self, X):
        return travel_distance(self.check(X))

    def amplitude(self, X) -> np.ndarray:
        """The size c of each trajectory (n, T, 2) -> (n,), float64: the least-squares fit of its
        radius profile |p_t| by c·t/T, the line through the origin a clean spiral follows. A
        clean spiral of size c travels c·L(1) (``unit_length``), so for a generated path c·L(1)
        is the travel distance of the clean spiral of its size and q − c·L(1) what its
        deviations from that spiral add. NaN for a trajectory with a NaN or inf."""
        return self._radius_fit(self.check(X).astype(np.float64))[1]

    def _radius_fit(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """X (n, T, 2) float64 -> (r (n, T) the radius |p_t|, c (n,) :meth:`amplitude`)."""
        t = np.arange(self.T) / self.T
        with np.errstate(invalid="ignore", over="ignore"):
            r = np.sqrt((X ** 2).sum(-1))
            c = (r * t).sum(1) / (t ** 2).sum()
        return r, np.where(np.isfinite(X).all(axis=(1, 2)) & np.isfinite(c), c, np.nan)

    def is_plausible(self, X):
        """A spiral: the radius grows linearly from the origin (RMS deviation of |p_t| from its
        least-squares line through 0, :meth:`amplitude`, below 10% of the final radius) and the
        path turns ``turns`` times (unwrapped angle within a quarter turn)."""
        X = self.check(X).astype(np.float64)
        t = np.arange(self.T) / self.T
        r, c = self._radius_fit(X)
        rms = np.sqrt(((r - c[:, None] * t) ** 2).mean(1))
        ang = np.unwrap(np.arctan2(X[..., 1], X[..., 0])[:, 1:], axis=1)
        turns = (ang[:, -1] - ang[:, 0]) / (2 * np.pi) * self.T / (self.T - 2)
        return (super().is_plausible(X) & (rms <= 0.1 * np.abs(c))
                & (np.abs(turns - self.turns) <= 0.25))
