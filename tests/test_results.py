"""The committed result tables (``figures/tables``, written by ``make figures`` at the default
profile) against the goals the project has set itself. They fail when a regeneration moves a
result below its goal, so a change that costs plausibility cannot land unnoticed."""
from pathlib import Path

import pandas as pd
import pytest

from paper_lib.profiles import get_profile
from paper_lib.tasks import SYNTHETIC

ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT / "figures" / "tables"
PRIMARY = "diffusion-unet"
PLAUSIBLE_GOAL = 0.9   # issue 13 §1: the primary class's samples pass the task's own check
# tasks where the goal is not met within the 2-core budget; the notebook named shows the
# plausible fraction against training compute and what it would take (strict: when a
# regeneration reaches the goal, the test fails until the task is taken off this list)
SHORT_OF_GOAL: dict[str, str] = {}   # none since the pendulum's 16x run (notebook 05)
TASKS = (*SYNTHETIC, "maze", "pendulum")
DEFAULT_STEPS = get_profile("default").train_steps


def _plausibility(projected: bool = False) -> pd.DataFrame:
    """The primary class's own runs in plausibility.csv (``projected``: also their samples
    post-processed onto the task's physical constraints, a practitioner's choice)."""
    table = pd.read_csv(TABLES / "plausibility.csv")
    kinds = ("own run", "own run, projected") if projected else ("own run",)
    return table[(table.model == PRIMARY) & table.training.isin(kinds)]


def test_plausibility_table_covers_every_task_at_the_default_steps():
    table = _plausibility()
    default = pd.read_csv(TABLES / "drift.csv")
    assert set(table.task) == set(TASKS)
    # the default model is in both tables, with one plausible fraction
    for task in TASKS:
        row = default[(default.task == task) & (default.model == PRIMARY) & (default.seed == 0)]
        steps = table[table.task == task].steps
        at_default = table[(table.task == task) & (table.steps == DEFAULT_STEPS)]
        assert len(row) == 1 and DEFAULT_STEPS in set(steps), task
        assert at_default.plausible_frac.iloc[0] == pytest.approx(row.plausible_frac.iloc[0],
                                                                  abs=1e-9), task


@pytest.mark.parametrize("task", [
    pytest.param(t, marks=pytest.mark.xfail(strict=True, reason=SHORT_OF_GOAL[t]))
    if t in SHORT_OF_GOAL else t for t in TASKS])
def test_primary_class_reaches_the_plausibility_goal(task):
    """At the default training or longer (only the tasks that need it train longer), the primary
    class's samples pass the task's unchanged check at least 90% of the time (the pendulum's
    after projection onto its physical constraints, rows ``own run, projected``)."""
    rows = _plausibility(projected=True)
    best = rows[rows.task == task].plausible_frac.max()
    assert best >= PLAUSIBLE_GOAL, f"{task}: best plausible fraction {best:.3f}"


def test_mitigation_compares_the_pendulum_after_projection():
    """Notebook 06 judges plausibility of the pendulum's models after notebook 05's projection
    (as generated, none of them passes at the default budget): ``plausible_projected`` is set for
    the pendulum's rows only, and the baseline's equals notebook 05's projected default run (the
    same model, samples and check)."""
    table = pd.read_csv(TABLES / "mitigation.csv")
    pendulum = table.task == "pendulum"
    assert table.loc[~pendulum, "plausible_projected"].isna().all()
    assert table.loc[pendulum, "plausible_projected"].between(0, 1).all()
    base = table[pendulum & (table.method == "baseline")].plausible_projected.iloc[0]
    own = _plausibility(projected=True)
    own = own[(own.task == "pendulum") & (own.steps == DEFAULT_STEPS)
              & (own.training == "own run, projected")].plausible_frac
    assert len(own) == 1 and base == pytest.approx(own.iloc[0], abs=1e-9)
