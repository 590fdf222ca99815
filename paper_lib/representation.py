"""Representations φ a model can be trained in: the same curated trajectories, written in other
coordinates (increments, polar coordinates, a logit, angles), and the task seen through them.

A model trained in φ-space generates z̃; the trajectory it stands for is x̃ = φ⁻¹(z̃), and the
quantity is measured there, m(x̃). Local errors in φ-space map back to *different* errors in x:
an error of the same size on an increment, an angle or a logit moves the quantity differently,
which is why the data deviation kernel, applied in φ-space, can compare representations before a
model is trained (notebook 06).

Every φ is defined on the base task's *model units* (``base.to_model(X)``: each channel already of
order one) and returns arrays of order one too, so the model needs no further normalisation:
``represent(task, name)`` is a :class:`~paper_lib.tasks.Task` whose trajectories are z = φ(x)
(model units = task units there), whose ``measure`` and ``is_plausible`` are the base task's on
φ⁻¹(z), unchanged. Representations are named, so a trained model's cache key names its φ.

``REPRESENTATIONS[task name]`` lists the candidates of each task, the task's own coordinates
first (``native``: the baseline, trained by notebooks 02-05).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .datasets import Dataset
from .tasks import Task, get_task

__all__ = ["Represented", "represent", "represent_dataset", "REPRESENTATIONS", "native",
           "to_phi", "from_phi"]

# per task: candidates (the native one first) -> description; the gains below make each φ of
# order one on the task's data (a fixed constant per (task, φ), not fitted to the data)
REPRESENTATIONS: dict[str, dict[str, str]] = {
    "sine": {"values": "x_t (native)",
             "increments": "x_0, then steps x_t − x_{t−1}",
             "phasor": "x_t with its quadrature (Hilbert transform): a rotating phasor",
             "phase": "amplitude and unwrapped phase of the analytic signal x + iHx"},
    "cone": {"positions": "(x_t, y_t) (native)",
             "increments": "p_0, then steps p_t − p_{t−1}",
             "polar": "radius r_t and unwrapped heading angle θ_t",
             "steps": "p_0, then each step's length and (unwrapped) heading"},
    "logistic": {"values": "x_t (native)",
                 "increments": "x_0, then steps x_t − x_{t−1}",
                 "logit": "log(x_t / (1 − x_t))"},
    "maze": {"positions": "(x_t, y_t) (native; start and goal inpainted)",
             "bridge": "start and goal, and between them the deviation from the straight line"},
    "pendulum": {"sincos": "(sin θ1, cos θ1, sin θ2, cos θ2, ω1, ω2) (native)",
                 "angles": "unwrapped angles θ1, θ2 with ω1, ω2"},
}
_GAIN = {("sine", "increments"): 3.0, ("cone", "increments"): 10.0,
         ("logistic", "increments"): 1.0, ("cone", "steps"): 10.0}
_LOGIT_SCALE = 4.0     # logit(x) / 4: |z| <= 2.3 for x in [1e-4, 1 - 1e-4]
_LOGIT_EPS = 1e-4


def native(task: str) -> str:
    """The name of a task's own coordinates (its first candidate)."""
    return next(iter(_candidates(task)))


def _candidates(task: str) -> dict:
    if task not in REPRESENTATIONS:
        raise ValueError(f"no representations for task {task!r}; tasks with representations: "
                         f"{', '.join(REPRESENTATIONS)}")
    return REPRESENTATIONS[task]


def _unknown(task: str, name: str) -> ValueError:
    """The one error for a representation name a task does not have."""
    return ValueError(f"unknown representation {name!r} for task {task!r}; valid: "
                      f"{', '.join(_candidates(task))}")


def _line(Z: np.ndarray) -> np.ndarray:
    """The straight line from each trajectory's first to its last frame, (n, T, C)."""
    s = np.linspace(0, 1, Z.shape[1])[None, :, None]
    return (1 - s) * Z[:, :1] + s * Z[:, -1:]


def _quadrature(z: np.ndarray) -> np.ndarray:
    """Hilbert transform along time of (n, T) (FFT: −i sign(f) on every frequency)."""
    F = np.fft.fft(z - z.mean(1, keepdims=True), axis=1)
    f = np.fft.fftfreq(z.shape[1])
    return np.real(np.fft.ifft(F * (-1j * np.sign(f)), axis=1))


def _unwrapped(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Angle atan2(y, x) unwrapped along time, (n, T)."""
    return np.unwrap(np.arctan2(y, x), axis=1)


def to_phi(task: str, name: str, Z: np.ndarray) -> np.ndarray:
    """φ: base model units (n, T, C) -> φ-space (n, T, C'), float64."""
    Z = np.asarray(Z, np.float64)
    if name == native(task):
        return Z
    if name == "increments":
        g = _GAIN[task, name]
        return np.concatenate([Z[:, :1], g * np.diff(Z, axis=1)], axis=1)
    if name == "phasor":
        return np.stack([Z[..., 0], _quadrature(Z[..., 0])], axis=-1)
    if name == "phase":        # x = A cos(2π ψ) exactly: Hx has no mean, x keeps its own
        a = Z[..., 0] + 1j * _quadrature(Z[..., 0])
        return np.stack([np.abs(a), np.unwrap(np.angle(a), axis=1) / (2 * np.pi)], axis=-1)
    if name == "polar":
        r = np.hypot(Z[..., 0], Z[..., 1])
        th = _unwrapped(Z[:, 1:, 1], Z[:, 1:, 0])          # frame 0 sits at the origin (r = 0):
        th0 = 2 * th[:, :1] - th[:, 1:2]                    # its angle is extrapolated
        return np.stack([2 * r - 1, np.concatenate([th0, th], 1) / (2 * np.pi)], axis=-1)
    if name == "steps":
        d = np.diff(Z, axis=1)
        heading = _unwrapped(d[..., 1], d[..., 0])
        steps = np.stack([_GAIN[task, name] * np.hypot(d[..., 0], d[..., 1]),
                          heading / (2 * np.pi)], axis=-1)
        return np.concatenate([Z[:, :1], steps], axis=1)
    if name == "logit":
        x = np.clip((Z[..., 0] + 1) / 2, _LOGIT_EPS, 1 - _LOGIT_EPS)
        return (np.log(x / (1 - x)) / _LOGIT_SCALE)[..., None]
    if name == "bridge":
        out = Z - _line(Z)
        out[:, 0], out[:, -1] = Z[:, 0], Z[:, -1]
        return out
    if name == "angles":
        th1 = _unwrapped(Z[..., 0], Z[..., 1])
        th2 = _unwrapped(Z[..., 2], Z[..., 3])
        return np.stack([th1 / np.pi, th2 / np.pi, Z[..., 4], Z[..., 5]], axis=-1)
    raise _unknown(task, name)


def from_phi(task: str, name: str, W: np.ndarray) -> np.ndarray:
    """φ⁻¹: φ-space (n, T, C') -> base model units (n, T, C), float64 (NaN stays NaN)."""
    W = np.asarray(W, np.float64)
    if name == native(task):
        return W
    if name == "increments":
        g = _GAIN[task, name]
        return np.cumsum(np.concatenate([W[:, :1], W[:, 1:] / g], axis=1), axis=1)
    if name == "phasor":
        return W[..., :1]
    if name == "phase":
        return (W[..., 0] * np.cos(2 * np.pi * W[..., 1]))[..., None]
    if name == "polar":
        r, th = (W[..., 0] + 1) / 2, 2 * np.pi * W[..., 1]
        return np.stack([r * np.cos(th), r * np.sin(th)], axis=-1)
    if name == "steps":
        length, heading = W[:, 1:, 0] / _GAIN[task, name], 2 * np.pi * W[:, 1:, 1]
        d = length[..., None] * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
        return np.concatenate([W[:, :1], W[:, :1] + np.cumsum(d, axis=1)], axis=1)
    if name == "logit":
        x = 1 / (1 + np.exp(-_LOGIT_SCALE * W[..., 0]))
        return (2 * x - 1)[..., None]
    if name == "bridge":
        out = W + _line(W)
        out[:, 0], out[:, -1] = W[:, 0], W[:, -1]
        return out
    if name == "angles":
        a1, a2 = np.pi * W[..., 0], np.pi * W[..., 1]
        return np.stack([np.sin(a1), np.cos(a1), np.sin(a2), np.cos(a2), W[..., 2], W[..., 3]],
                        axis=-1)
    raise _unknown(task, name)


_CHANNELS = {"phasor": ("x", "Hx"), "phase": ("A", "ψ"), "polar": ("r", "θ"),
             "steps": ("step length", "heading"),
             "logit": ("logit x",), "angles": ("θ1", "θ2", "ω1", "ω2")}


@dataclass(frozen=True)
class Represented(Task):
    """The task ``base`` seen in representation ``rep``: trajectories z = φ(base.to_model(x)).
    ``name``, ``quantity``, ``unit``, the support and the bins are the base task's, so its rows
    and histograms line up with the baseline's; ``measure``/``is_plausible`` are the base's on
    :meth:`to_task` (z). Build it with :func:`represent`."""

    base: Task = None
    rep: str = ""

    def __post_init__(self):
        if not isinstance(self.base, Task) or isinstance(self.base, Represented):
            raise TypeError(f"Represented needs a plain Task as base, got {self.base!r}")
        _candidates(self.base.name)
        super().__post_init__()

    @property
    def name(self) -> str:   # the base's: datasets of the same seed hold the same trajectories
        return self.base.name

    @property
    def quantity(self) -> str:
        return self.base.quantity

    @property
    def unit(self) -> str:
        return self.base.unit

    @property
    def bins(self):
        return getattr(self.base, "bins", None)

    @property
    def condition_frames(self) -> tuple:
        return tuple(getattr(self.base, "condition_frames", ()))

    def sample_quantity(self, n, rng):
        return self.base.sample_quantity(n, rng)

    def from_task(self, X: np.ndarray) -> np.ndarray:
        """Base-task trajectories (n, T, C) -> φ-space (n, T, C') float32."""
        Z = self.base.to_model(self.base.check(X))
        return to_phi(self.base.name, self.rep, Z).astype(np.float32)

    def to_task(self, W: np.ndarray) -> np.ndarray:
        """φ-space (n, T, C') -> base-task trajectories (n, T, C) float32."""
        with np.errstate(over="ignore", invalid="ignore"):
            return self.base.from_model(from_phi(self.base.name, self.rep, self.check(W)))

    def generate(self, q, rng):
        return self.from_task(self.base.generate(q, rng))

    def build(self, n, rng):
        X, q = self.base.build(n, rng)
        return self.from_task(X), q

    def measure(self, X):
        return self.base.measure(self.to_task(X))

    def is_plausible(self, X):
        return self.base.is_plausible(self.to_task(X))

    def conditions(self, X, idx):
        """A planner's (keep, cond) in φ-space (:meth:`MazeTask.conditions` of the base, for a φ
        that keeps the start and goal frames as they are, e.g. ``bridge``)."""
        keep, cond = self.base.conditions(self.to_task(X), idx)
        return keep, np.where(keep[None], self.from_task(cond), 0).astype(np.float32)


def represent(task: str | Task, name: str) -> Task:
    """``task`` (a name or a Task) in representation ``name``: the task itself for its native
    coordinates, else a :class:`Represented` task. Unknown names raise ``ValueError`` listing the
    task's candidates."""
    base = get_task(task)
    if name not in _candidates(base.name):
        raise _unknown(base.name, name)
    if name == native(base.name):
        return base
    C = len(_CHANNELS.get(name, base.channels))
    channels = _CHANNELS.get(name, tuple(f"{name}({c})" for c in base.channels))[:C]
    return Represented(channels=channels, T=base.T, lo=base.lo, hi=base.hi, base=base, rep=name)


def represent_dataset(dataset: Dataset, task: Task) -> Dataset:
    """``dataset`` (trajectories of ``task``'s base, e.g. a curated set) written in ``task``'s
    representation: the same trajectories and q, so models in different φ learn the same data.
    A native-coordinates ``task`` returns ``dataset`` itself."""
    if not isinstance(task, Represented):
        return dataset
    return Dataset(dataset.task, task.from_task(dataset.X), dataset.q, dataset.seed,
                   {**dataset.spec, "params": task, "representation": task.rep})
