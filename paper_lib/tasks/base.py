"""The ``Task`` protocol: a prior over a physical quantity q, a generator of trajectories with a
given q, and the measurement m(x) that recovers q from a trajectory.

Trajectories are float32 arrays of shape (n, T, C) in *task units*; ``to_model``/``from_model``
map them to and from the normalised units the models see.

Writing a task. A task is a frozen dataclass: its *parameters* (``channels``, ``T``, ``lo``,
``hi``, ``offset``, ``scale`` and any of its own) are dataclass fields, written with a type
annotation, and they are what a cache key of its data sets holds; its *constants* (``name``,
``quantity``, ``unit``) are plain class attributes, without an annotation::

    @dataclass(frozen=True)
    class Ramp(Task):
        name = "ramp"                        # constants: no annotation
        quantity = "slope"
        channels: tuple[str, ...] = ("x",)   # parameters: annotated
        lo: float = 0.5
        hi: float = 2.0

        def generate(self, q, rng):
            t = np.arange(self.T) / self.T
            return (np.asarray(q)[:, None, None] * t[None, :, None]).astype(np.float32)

        def measure(self, X):
            X = self.check(X)[..., 0].astype(np.float64)
            return (X[:, -1] - X[:, 0]) * self.T / (self.T - 1)

Two mistakes are caught: overriding a parameter without its annotation (``channels = ("x",)``,
which a dataclass would silently ignore, keeping C = 0) raises ``TypeError`` when the class is
defined, and a subclass that declares parameters but is not decorated with
``@dataclass(frozen=True)`` raises ``TypeError`` when it is constructed. Parameter values are
checked at construction (:meth:`Task.__post_init__`): a bad one raises ``ValueError`` naming it.
"""
from __future__ import annotations

import dataclasses
import inspect
import numbers
from dataclasses import dataclass

import numpy as np

from ..metrics import _finite_number, _integer, _support

__all__ = ["Task"]


def _own_annotations(cls) -> dict:
    try:
        return dict(inspect.get_annotations(cls))
    except Exception:  # pragma: no cover - unreadable annotations: nothing to check
        return {}


@dataclass(frozen=True)
class Task:
    """Base class. Subclasses set the class attributes and implement ``generate`` and ``measure``
    (see the module docstring for a complete example)."""

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
        """n values of q from the prior (uniform on the support), shape (n,), float64. ``n`` must
        be a whole number >= 0, else ``ValueError``."""
        return rng.uniform(self.lo, self.hi, size=_integer("n", n, minimum=0))

    def generate(self, q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Trajectories with quantity q, shape (len(q), T, C), float32."""
        raise NotImplementedError

    def build(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A dataset of ``n`` trajectories: (X (n, T, C) float32, q (n,) float64). Default: q from
        the prior, X = ``generate(q)``. Tasks whose demonstrations come from a simulator and are
        curated afterwards (maze) override this. ``n`` must be a whole number >= 0, else
        ``ValueError``."""
        q = self.sample_quantity(n, rng)
        return self.generate(q, rng), q

    def measure(self, X: np.ndarray) -> np.ndarray:
        """Recover q from trajectories (n, T, C) -> (n,), float64. Vectorised. A trajectory the
        measurement cannot measure (a NaN or inf in it) gives NaN; the wrong shape raises
        ``ValueError`` (:meth:`check`)."""
        raise NotImplementedError

    def is_plausible(self, X: np.ndarray) -> np.ndarray:
        """The task's own validity check, (n, T, C) -> bool (n,). Default: all values finite."""
        return np.isfinite(np.asarray(X)).all(axis=(1, 2))

    # normalisation the models see: an affine map per channel, fixed by the task (not the data)
    offset: float = 0.0
    scale: float = 1.0

    def __init_subclass__(cls, **kwargs):
        """Reject a parameter overridden without an annotation (a dataclass would ignore it)."""
        super().__init_subclass__(**kwargs)
        params = {f.name for base in cls.__mro__[1:] if dataclasses.is_dataclass(base)
                  for f in dataclasses.fields(base)}
        annotated = _own_annotations(cls)
        for name in sorted(params & set(vars(cls)) - set(annotated)):
            value = vars(cls)[name]
            if isinstance(value, (property, staticmethod, classmethod)) or callable(value):
                continue
            raise TypeError(
                f"{cls.__name__}: {name} = {value!r} overrides the Task parameter {name!r} "
                f"without a type annotation, so the dataclass would ignore it and keep the "
                f"inherited default; write it as a field, e.g. `{name}: "
                f"{_annotation_hint(name)} = {value!r}`, and decorate the class with "
                f"@dataclass(frozen=True)")

    def __post_init__(self):
        """Check the protocol and the parameters: ``TypeError`` for a subclass that declares
        parameters without being a dataclass, ``ValueError`` naming a bad parameter value.
        Subclasses with parameters of their own extend this (calling ``super().__post_init__()``)."""
        for cls in type(self).__mro__:
            if cls is Task or not (isinstance(cls, type) and issubclass(cls, Task)):
                continue
            if "__dataclass_fields__" not in vars(cls) and _own_annotations(cls):
                raise TypeError(
                    f"{cls.__name__} declares parameters ({', '.join(_own_annotations(cls))}) but "
                    f"is not a dataclass, so they would be ignored; decorate it with "
                    f"@dataclass(frozen=True)")
        who = self.name
        ch = self.channels
        if not isinstance(ch, (tuple, list)) or not ch or not all(isinstance(c, str) for c in ch):
            raise ValueError(f"{who}: channels must be a non-empty tuple of channel names, got "
                             f"{ch!r}")
        T = self.T
        if isinstance(T, (bool, np.bool_)) or not isinstance(T, numbers.Integral) or T < 2:
            raise ValueError(f"{who}: T must be an integer >= 2 (frames per trajectory), got "
                             f"{T!r}")
        _support(self.lo, self.hi, f"{who}: ", " (the support of the prior)")
        try:
            off_ok = bool(np.isfinite(np.asarray(self.offset, float)).all())
        except (TypeError, ValueError):
            off_ok = False
        if not off_ok:
            raise ValueError(f"{who}: offset must be finite (a number or one per channel), got "
                             f"{self.offset!r}")
        try:
            scale_ok = _finite_number("scale", self.scale) > 0
        except ValueError:
            scale_ok = False
        if not scale_ok:
            raise ValueError(f"{who}: scale must be a finite number > 0, got {self.scale!r}")

    def _positive(self, *names: str, minimum: float = 0.0) -> None:
        """``ValueError`` unless each parameter ``names`` is a finite number > ``minimum``
        (``minimum=-inf``: just finite)."""
        for name in names:
            value = getattr(self, name)
            try:
                ok = _finite_number(name, value) > minimum
            except ValueError:
                ok = False
            if not ok:
                what = "" if minimum == -np.inf else f" > {minimum:g}"
                raise ValueError(f"{self.name}: {name} must be a finite number{what}, got "
                                 f"{value!r}")

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


def _annotation_hint(name: str) -> str:
    return {"channels": "tuple[str, ...]", "T": "int"}.get(name, "float")
