"""The ``Task`` protocol: a prior over a physical quantity q, a generator of trajectories with a
given q, and the measurement m(x) that recovers q from a trajectory.

Trajectories are float32 arrays of shape (n, T, C) in *task units*; ``to_model``/``from_model``
map them to and from the normalised units the models see.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Task"]


@dataclass(frozen=True)
class Task:
    """Base class. Subclasses set the class attributes and implement ``generate`` and ``measure``."""

    name = "task"
    quantity = "q"        # short name of the physical quantity, e.g. "frequency"
    unit = ""             # its unit, for axis titles
    channels: tuple[str, ...] = ()
    T: int = 64
    lo: float = 0.0       # support of the uniform prior over q
    hi: float = 1.0

    @property
    def support(self) -> tuple[float, float]:
        return (float(self.lo), float(self.hi))

    @property
    def C(self) -> int:
        return len(self.channels)

    def sample_quantity(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n values of q from the prior (uniform on the support), shape (n,), float64."""
        return rng.uniform(self.lo, self.hi, size=int(n))

    def generate(self, q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Trajectories with quantity q, shape (len(q), T, C), float32."""
        raise NotImplementedError

    def build(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A dataset of ``n`` trajectories: (X (n, T, C) float32, q (n,) float64). Default: q from
        the prior, X = ``generate(q)``. Tasks whose demonstrations come from a simulator and are
        curated afterwards (maze) override this."""
        q = self.sample_quantity(n, rng)
        return self.generate(q, rng), q

    def measure(self, X: np.ndarray) -> np.ndarray:
        """Recover q from trajectories (n, T, C) -> (n,), float64. Vectorised."""
        raise NotImplementedError

    def is_plausible(self, X: np.ndarray) -> np.ndarray:
        """The task's own validity check, (n, T, C) -> bool (n,). Default: all values finite."""
        return np.isfinite(np.asarray(X)).all(axis=(1, 2))

    # normalisation the models see: an affine map per channel, fixed by the task (not the data)
    offset: float = 0.0
    scale: float = 1.0

    def to_model(self, X: np.ndarray) -> np.ndarray:
        return ((np.asarray(X, np.float32) - self.offset) / self.scale).astype(np.float32)

    def from_model(self, Z: np.ndarray) -> np.ndarray:
        return (np.asarray(Z, np.float32) * self.scale + self.offset).astype(np.float32)

    def check(self, X: np.ndarray) -> np.ndarray:
        """Validate a trajectory batch's shape for this task; returns it as an array."""
        X = np.asarray(X)
        if X.ndim != 3 or X.shape[1:] != (self.T, self.C):
            raise ValueError(f"{self.name}: expected trajectories of shape (n, {self.T}, {self.C}),"
                             f" got {X.shape}")
        return X
