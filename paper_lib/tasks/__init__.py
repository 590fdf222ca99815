"""Task registry: ``get_task(name)`` for every task of docs/design.md section 3."""
from __future__ import annotations

from .base import Task
from .cone import ConeTask, travel_distance
from .logistic import LogisticTask
from .maze import MazeTask
from .pendulum import PendulumTask
from .sine import SineTask

__all__ = ["Task", "TASKS", "SYNTHETIC", "get_task", "travel_distance"]

TASKS: dict[str, type[Task]] = {"sine": SineTask, "cone": ConeTask, "logistic": LogisticTask,
                              "maze": MazeTask, "pendulum": PendulumTask}
SYNTHETIC = ("sine", "cone", "logistic")


def get_task(name: str | Task, **params) -> Task:
    """The task called ``name`` (optionally with changed parameters, e.g. ``lo=``/``hi=``).

    An unknown name raises ``ValueError`` listing the valid ones; an unknown parameter, or a bad
    value for a known one (``T=-3``, ``lo > hi``, ...), raises ``ValueError`` naming it.
    """
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}")
    try:
        return TASKS[name](**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for task {name!r}: {exc}") from None
