"""The drift check's kernels against the drift of the companion's trained U-Nets: what an engineer
gets from ``python -m paper_lib drift`` on the five tasks' curated sets, before training. The
check behind the README's "Drift check for your own data" numbers.

    .venv/bin/python bench/driftcheck_pilot.py [--out bench/driftcheck_pilot.csv]

For each task the check runs as a user would run it, on the whole curated training set (4,096
trajectories at the default profile) with its own measure, on the bins notebooks 03-05 use:

- ``smooth`` at the companion's default scale (the command's default),
- ``pilot``: a small U-Net trained on the set first, its own denoiser as the kernel
  (``driftcheck.pilot_kernel``), in the command's default units (the set standardised: each
  channel's mean and standard deviation);
- ``pilot-task-units``: the same pilot trained in the units the U-Nets train in (the task's
  fixed affine map, per channel: ``--units OFFSET:SCALE``), what notebook 03's kernel pilot
  does; an engineer gives the units of the model they will train.

Each forecast is scored against the default ``diffusion-unet`` (seed 0, its sample bank of
notebooks 03-05) as notebook 03 scores a forecast: ρ between the forecast and observed
changes per bin, EDF, and the EDF ceiling (a second sample bank of the same model).
``spread``: the RMS of the channels' standard deviations in the units the pilot trained in
(1 when standardised).
``seconds``: the check's wall time plus the pilot's training time (as timed when it was
trained; it is cached); ``cost``: over the U-Net's training plus sampling seconds. The maze's
U-Net is a planner (start and goal imposed); the check's pilot is not conditioned. Needs the U-Nets and their sample banks in the
cache (notebooks 02-05 at the default profile); results go to ``--out`` (written atomically).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from paper_lib import cache, driftcheck, forecast, metrics  # noqa: E402
from paper_lib.profiles import get_profile  # noqa: E402

TASKS = ("sine", "cone", "logistic", "maze", "pendulum")
COLUMNS = ["task", "kernel", "source", "spread", "rho", "edf", "edf_ceiling", "meets_goal",
           "seconds", "cost"]


def task_units(task) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) per channel of the affine map a task's models train in (read back from
    ``to_model``, which the pendulum overrides with a scale per channel)."""
    C = task.C
    zero = task.to_model(np.zeros((1, 1, C), np.float32))[0, 0].astype(np.float64)
    one = task.to_model(np.ones((1, 1, C), np.float32))[0, 0].astype(np.float64)
    return -zero / (one - zero), 1 / (one - zero)


def rows(task: str, P) -> list[dict]:
    tg = forecast.standard_target(task, "diffusion-unet", P)   # notebook 03's target
    run = tg.extra["run"]
    out = []
    units = task_units(run.task)
    for name, kernel, kw in (("smooth", "smooth", {}), ("pilot", "pilot", {}),
                             ("pilot-task-units", "pilot", {"units": units})):
        if kernel == "pilot":    # trained (or loaded) apart, so its training time always counts
            kernel = driftcheck.pilot_kernel(run.dataset.X, seed=0, **kw)
        start = time.perf_counter()
        r = driftcheck.check(run.dataset.X, run.task.measure, kernel=kernel, bins=tg.bins,
                             seed=0)
        seconds = time.perf_counter() - start
        spread = float("nan")
        if name != "smooth":
            seconds += kernel.trained.train_seconds
            r.scale.source = driftcheck.pilot_source(kernel, kw.get("units"))
            Z = kernel.trained.task.to_model(run.dataset.X).astype(np.float64)
            spread = float(np.sqrt(np.mean(Z.var(axis=(0, 1)))))
        a = metrics.agreement(r.p_forecast, tg.p_model, r.p_data, tg.noise)
        out.append({"task": task, "kernel": name, "source": r.scale.source, "spread": spread,
                    "rho": a["rho"],
                    "edf": a["edf"], "edf_ceiling": tg.ceiling,
                    "meets_goal": bool(forecast.meets_goal(a["rho"], a["edf"], tg.ceiling)),
                    "seconds": seconds, "cost": seconds / tg.cost})
        print(f"{task:9s} {name:16s} rho {a['rho']:+.2f}  EDF {a['edf']:+.2f} / ceiling "
              f"{tg.ceiling:.2f}  {seconds:6.1f} s ({seconds / tg.cost:.3f} of the U-Net)",
              flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "driftcheck_pilot.csv")
    args = ap.parse_args(argv)
    P = get_profile("default")
    table = [row for task in TASKS for row in rows(task, P)]
    cache.atomic_write_csv(args.out, COLUMNS, [
        {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()} for row in table])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
