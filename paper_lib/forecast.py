"""Forecasting one model's drift with the data deviation kernels: the bookkeeping notebooks 04
and 05 share (notebook 03 spells the same steps out for the synthetic tasks).

A :class:`Target` holds what a forecast is judged against: the observed q-histogram of a model's
samples (``p_model``), the histogram of the data the kernels start from (``p_data``), the
bootstrap half-width of ``p_model`` and the model's own error scale ``nn_ratio`` (sample to nearest
training trajectory, in data spacings: the unit of a kernel's locality). :func:`forecast` then
sweeps each kernel family's scale and returns the rows of ``tables/kernel_agreement.csv`` in the
three modes of notebook 03: ``calibrated`` (scale fitted to p_model), ``matched`` (locality equal
to ``nn_ratio``; never looks at p_model) and ``held-out`` (nothing from this model).
:func:`before_training` adds the fourth, ``before-training``: a forecast that used no model of the
target task (a closed-form surrogate of the class, :mod:`paper_lib.surrogates`, sampled, or used
as a local kernel by :func:`local_surrogate`, with parameters chosen on the other tasks; or a
pilot model of the class at a tenth of the compute or less, whose cost counts: its samples
(:func:`pilot`), or its own denoiser as a local kernel (:func:`kernel_pilot`)).

Every row carries two numbers to read its EDF against: ``edf_ceiling``, the EDF that an
independent sample bank of the *same* model scores against the target bank (what a perfect
forecaster scores, given the sampling noise of both histograms), and ``cost_fraction``, the
forecast's arithmetic over that of training the target model and drawing its samples, both
counted in FLOPs (:mod:`paper_lib.cost`), so that it is the same on every machine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from . import cost, drift, kernels, metrics, surrogates
from .datasets import Dataset
from .profiles import Profile
from .seeding import rng

__all__ = ["AGREEMENT_COLUMNS", "Target", "make_target", "standard_target", "family_maker",
           "rescaled_neighbour", "evaluate", "locality_on", "scale_at", "calibrated",
           "CALIBRATION_TOL", "Forecast", "forecast", "held_out", "before_training",
           "local_surrogate", "sampled", "pilot", "PILOT_STEPS", "PILOT_WIDTH", "kernel_pilot",
           "KERNEL_PILOT_SHAPES", "pilot_sizes", "pilot_label", "pilot_choice",
           "leave_one_task_out", "mosaic_setting", "fit_t_star", "synthetic_localities",
           "SMOOTH_LENGTH", "GOAL_RHO", "GOAL_EDF", "meets_goal"]

AGREEMENT_COLUMNS = ["task", "model", "kernel", "mode", "source", "scale", "locality", "rho",
                     "sign_agreement", "edf", "tv_pred_model", "tv_prior_model", "edf_spread",
                     "edf_ceiling", "cost_fraction"]
# Calibration picks the grid scale of least TV(p̂, p_model). Scales whose TV is within this of the
# least are near-ties: a last-bit rounding difference (another CPU family) moves a few samples
# across a bin edge and can flip the choice among them, so a calibrated row reports the range of
# their EDFs, ``edf_spread``, as the uncertainty of its EDF (NaN for the other modes).
CALIBRATION_TOL = 0.01
# the before-training accuracy goal (notebook 03): ρ ≥ GOAL_RHO and EDF ≥ GOAL_EDF × ceiling
GOAL_RHO, GOAL_EDF = 0.7, 0.5
SMOOTH_LENGTH = 3.0   # time steps: the `smooth` kernel's correlation length
N_LOCALITY = 500      # trajectories used to measure a kernel's locality
PILOT_STEPS = 0.1     # a pilot model trains for this fraction of the profile's steps …
PILOT_WIDTH = 0.5     # … at this fraction of its width (and draws half as many samples)
# The shapes a kernel pilot (its own denoiser is the forecast) may take, as fractions of the
# profile's steps, batch and width: each at most a tenth of the target's training compute (steps
# x batch x width^2: 2.5%, 1.6%, 3.1%, 4.2% and 6.3%). The first is the sampled pilot's; the
# others trade batch for optimiser steps. Notebook 03 chooses one with t*, leave one task out.
KERNEL_PILOT_SHAPES = ({"train_steps": PILOT_STEPS, "batch_size": 1.0, "width": PILOT_WIDTH},
                       {"train_steps": 0.5, "batch_size": 1 / 8, "width": 0.5},
                       {"train_steps": 1.0, "batch_size": 1 / 8, "width": 0.5},
                       {"train_steps": 1 / 3, "batch_size": 1 / 8, "width": 1.0},
                       {"train_steps": 0.5, "batch_size": 1 / 8, "width": 1.0})


@dataclass
class Target:
    """A model's observed drift. ``data``: the trajectories the kernels start from (first
    ``profile.kernel_n`` of the training set); ``bins``: the fixed q-bins; ``p_*``: histograms
    (bins.n + 2,); ``noise``: bootstrap half-width of p_model; ``spacing``: data spacing (task
    units); ``keep``: entries no kernel may change (a planner's inpainted start and goal);
    ``ceiling``: the EDF of an independent sample bank of the same model (NaN: not measured);
    ``flops``: the arithmetic of training the model and drawing its samples
    (:mod:`paper_lib.cost`; NaN: unknown), the denominator of a row's ``cost_fraction``;
    ``cost``: the same in seconds, as timed on the machine that ran it (for
    ``tables/kernel_cost.csv``); ``train``: the whole training set (n, T, C), the reference of
    ``nn_ratio``."""

    task: object
    model: str
    data: Dataset
    bins: metrics.Bins
    p_data: np.ndarray
    p_model: np.ndarray
    noise: np.ndarray
    spacing: float
    nn_ratio: float
    keep: np.ndarray | None = None
    ceiling: float = float("nan")
    cost: float = float("nan")
    train: np.ndarray | None = None
    flops: float = float("nan")
    extra: dict = field(default_factory=dict)


def make_target(run: drift.Run, X_model: np.ndarray, profile: Profile, keep=None,
                X_repeat: np.ndarray | None = None, sample_seconds: float = float("nan")
                ) -> Target:
    """The :class:`Target` of ``run``'s samples X_model (n, T, C), task units. ``X_repeat``: an
    independent sample bank of the same model (another seed, same size), whose EDF against
    X_model is the target's ``ceiling``; ``sample_seconds``: what drawing X_model took (the
    target's ``cost`` adds the model's training time; its ``flops`` are counted)."""
    t = run.task
    bins = drift.quantity_bins(t, profile)
    data = run.dataset.head(profile.kernel_n)
    h = drift.histogram_with_band(t.measure(X_model), bins, profile, t.name, run.kind, "target")
    tg = Target(t, run.kind, data, bins, metrics.histogram(t.measure(data.X), bins), h["p"],
                (h["hi"] - h["lo"]) / 2, kernels.data_spacing(run.dataset.X),
                drift.nn_ratio(X_model, run.dataset.X), keep,
                cost=run.trained.train_seconds + float(sample_seconds), train=run.dataset.X,
                flops=cost.train_flops(run.trained)
                + cost.sample_flops(run.trained, len(X_model)))
    if X_repeat is not None:
        p_repeat = metrics.histogram(t.measure(X_repeat), bins)
        tg.ceiling = float(metrics.agreement(p_repeat, tg.p_model, tg.p_data, tg.noise)["edf"])
    return tg


def standard_target(task: str, kind: str, profile: Profile) -> Target:
    """The :class:`Target` of the standard run of ``kind`` on ``task`` (``drift.standard_run``):
    its sample bank of ``profile.n_samples`` (seed 0), a second bank (seed 1) for the ceiling,
    both drawn with the task's conditions where it has them (the maze's start and goal,
    ``drift.conditions``: their mask is the target's ``keep``). ``extra`` holds ``run`` and the
    samples ``X`` (n, T, C), task units. Notebook 03 and ``bench/driftcheck_pilot.py`` score
    forecasts against it."""
    run = drift.standard_run(task, kind, profile)
    _, inpaint = drift.conditions(run, profile.n_samples)
    X, seconds = drift.samples(run, profile.n_samples, seed=0, inpaint=inpaint)
    X_repeat = drift.samples(run, profile.n_samples, seed=1, inpaint=inpaint)[0]
    tg = make_target(run, X, profile, keep=None if inpaint is None else inpaint[0],
                     X_repeat=X_repeat, sample_seconds=seconds)
    tg.extra.update(run=run, X=X)
    return tg


def family_maker(family: str, tg: Target, X_model=None, trained=None, psd=None):
    """``scale -> Kernel`` for ``family`` on target ``tg`` (kept entries pinned), or None when the
    family does not apply (``denoise`` without a diffusion model). ``spectral`` uses ``psd`` if
    given, else the spectrum of X_model's residuals to their nearest training trajectories."""
    if family == "white":
        make = kernels.white
    elif family == "smooth":
        make = lambda s: kernels.smooth(s, SMOOTH_LENGTH)  # noqa: E731
    elif family == "spectral":
        if psd is None:
            psd = kernels.fit_spectral(kernels.nearest_residuals(X_model[:1000], tg.data.X))
        make = lambda s: kernels.spectral(psd, s)  # noqa: E731
    elif family == "neighbour":
        nb = kernels.neighbour(tg.data.X, 1.0, k=8)
        make = lambda s: rescaled_neighbour(nb, s)  # noqa: E731
    elif family == "denoise":
        if trained is None or not trained.spec.is_diffusion:
            return None
        return lambda s: kernels.denoise(trained, int(s), keep=tg.keep)
    else:
        raise ValueError(f"unknown kernel {family!r}; valid kernels: {', '.join(kernels.KERNELS)}")
    return make if tg.keep is None else (lambda s: kernels.pinned(make(s), tg.keep))


def rescaled_neighbour(nb: kernels.neighbour, alpha: float) -> kernels.neighbour:
    """A neighbour kernel sharing a prebuilt kNN index (building it is the expensive part)."""
    k = kernels.neighbour.__new__(kernels.neighbour)
    k.__dict__.update(nb.__dict__)
    k.scale = float(alpha)
    return k


def evaluate(tg: Target, kernel, profile: Profile, *keys, locality: bool = True) -> dict:
    """One kernel's prediction for ``tg``: agreement numbers (metrics.agreement), ``locality``
    (:func:`locality_on`; NaN when ``locality`` is False, for a prediction whose row does not
    report it), ``p_hat``, ``predict_seconds`` (the time computing the prediction took, also
    when it comes from the cache) and ``predict_flops`` (its arithmetic, :mod:`paper_lib.cost`);
    random streams named by ``keys``."""
    p_hat, _, seconds = kernels.predict(tg.task, tg.data, kernel, profile.kernel_draws, tg.bins,
                                        rng(0, "predict", tg.task.name, tg.model, *keys),
                                        timed=True)
    a = metrics.agreement(p_hat, tg.p_model, tg.p_data, tg.noise)
    loc = locality_on(tg, kernel) if locality else float("nan")
    return {**a, "locality": loc, "p_hat": p_hat, "predict_seconds": seconds,
            "predict_flops": cost.kernel_flops(kernel, tg.data.X, profile.kernel_draws)}


def locality_on(tg: Target, kernel) -> float:
    """How far ``kernel`` moves the first N_LOCALITY trajectories of ``tg``'s data, in data
    spacings (:func:`paper_lib.kernels.kernel_locality`, one locality stream per task)."""
    return kernels.kernel_locality(kernel, tg.data.X[:N_LOCALITY], tg.spacing,
                                   rng(0, "locality", tg.task.name))


def scale_at(make, tg: Target, target: float) -> float:
    """The scale at which a data-only kernel ``make(scale)`` moves ``tg``'s data by ``target``
    data spacings (:func:`paper_lib.kernels.scale_for_locality` on the first N_LOCALITY
    trajectories, with the locality stream of :func:`evaluate`)."""
    return kernels.scale_for_locality(make, tg.data.X[:N_LOCALITY], tg.spacing, target,
                                      rng(0, "locality", tg.task.name))


def calibrated(tvs, edfs) -> tuple[int, float]:
    """(index of the least TV, the spread of EDF over the grid points within CALIBRATION_TOL of
    it) for one sweep: ``tvs``, ``edfs`` per grid scale."""
    tvs, edfs = np.asarray(tvs, float), np.asarray(edfs, float)
    best = int(np.argmin(tvs))
    return best, float(np.ptp(edfs[tvs <= tvs[best] + CALIBRATION_TOL]))


def _row(tg, family, mode, source, scale, ev, edf_spread=float("nan")) -> dict:
    return {"task": tg.task.name, "model": tg.model, "kernel": family, "mode": mode,
            "source": source, "scale": float(scale),
            **{k: float(ev[k]) for k in AGREEMENT_COLUMNS[6:12]}, "edf_spread": edf_spread,
            "edf_ceiling": tg.ceiling, "cost_fraction": float(ev["predict_flops"]) / tg.flops}


class Forecast(NamedTuple):
    """What :func:`forecast` returns: ``rows`` (AGREEMENT_COLUMNS), ``sweep`` (one row per grid
    scale), ``shown`` ({(family, mode): p_hat}), ``cost`` (predict seconds per family at the
    matched scale) and ``grid`` ({(family, scale): p_hat} of every grid point)."""

    rows: pd.DataFrame
    sweep: pd.DataFrame
    shown: dict
    cost: pd.DataFrame
    grid: dict


def _grid(tg: Target, family: str, make, profile: Profile) -> list[tuple[float, float]]:
    """(stream key, scale) of each grid point: t* for ``denoise``, else the target locality and
    the scale reaching it. Streams are named by what the grid fixes exactly, never by the
    computed scale, whose last bits vary between CPUs."""
    if family == "denoise":
        return [(s, s) for s in profile.t_stars if s < profile.diffusion_steps]
    return [(loc, scale_at(make, tg, loc)) for loc in profile.localities]


def forecast(tg: Target, makers: dict, profile: Profile, held: dict | None = None) -> Forecast:
    """Sweep, calibrate, match and (optionally, :func:`held_out`) hold out every family in
    ``makers`` (family -> ``scale -> Kernel``) for target ``tg``; see :class:`Forecast`."""
    sweep, grid, rows, shown, cost = [], {}, [], {}, []
    for family, make in makers.items():
        points = _grid(tg, family, make, profile)
        scales = [s for _, s in points]
        evs = [evaluate(tg, make(s), profile, family, "grid", key) for key, s in points]
        for s, ev in zip(scales, evs):
            grid[family, float(s)] = ev["p_hat"]
            sweep.append({"task": tg.task.name, "model": tg.model, "kernel": family,
                          "scale": float(s), **{k: v for k, v in ev.items() if k != "p_hat"}})
        best, spread = calibrated([ev["tv_pred_model"] for ev in evs], [ev["edf"] for ev in evs])
        rows.append(_row(tg, family, "calibrated", "fit to this model's histogram", scales[best],
                         evs[best], spread))
        shown[family, "calibrated"] = evs[best]["p_hat"]
        if family == "denoise":
            i = int(np.argmin([abs(ev["locality"] - tg.nn_ratio) for ev in evs]))
            scale, ev, source = scales[i], evs[i], "t* whose locality is nearest nn_ratio"
        elif family == "spectral":
            scale, source = 1.0, "this model's residual spectrum"
            ev = evaluate(tg, make(1.0), profile, family, "matched")
        else:
            scale, source = scale_at(make, tg, tg.nn_ratio), "locality = this model's nn_ratio"
            ev = evaluate(tg, make(scale), profile, family, "matched")
        rows.append(_row(tg, family, "matched", source, scale, ev))
        shown[family, "matched"] = ev["p_hat"]
        cost.append({"task": tg.task.name, "model": tg.model, "kernel": family,
                     "predict_seconds": ev["predict_seconds"]})
    if held:
        h_rows, h_shown = held_out(tg, makers, held, profile)
        rows += h_rows
        shown.update(h_shown)
    return Forecast(pd.DataFrame(rows, columns=AGREEMENT_COLUMNS), pd.DataFrame(sweep), shown,
                    pd.DataFrame(cost), grid)


def held_out(tg: Target, makers: dict, held: dict, profile: Profile) -> tuple[list, dict]:
    """``held-out`` rows for ``tg``: ``held`` maps a family to (locality, source), a locality
    carried over from elsewhere (the scale of ``makers[family]`` reaching it on tg's data), or
    to (kernel, source), a ready kernel (a spectrum or a denoiser from another model). Returns
    (rows, {(family, "held-out"): p_hat})."""
    rows, shown = [], {}
    for family, (what, source) in held.items():
        if isinstance(what, kernels.Kernel):
            kernel, scale = what, what.scale
        else:
            scale = scale_at(makers[family], tg, what)
            kernel = makers[family](scale)
        ev = evaluate(tg, kernel, profile, family, "held-out")
        rows.append(_row(tg, family, "held-out", source, scale, ev))
        shown[family, "held-out"] = ev["p_hat"]
    return rows, shown


def sampled(sampler, n: int, rng: np.random.Generator, inpaint=None) -> tuple[np.ndarray, float]:
    """``n`` draws (n, T, C) of a forecasting sampler (``sampler.sample(n, rng, inpaint)``, e.g. a
    :mod:`paper_lib.surrogates` model) and the seconds they took, cached by the sampler's
    ``fingerprint()``, ``n``, ``inpaint`` and the state of ``rng`` (as kernel predictions are)."""
    from .cache import fingerprint

    spec = {"sampler": sampler.fingerprint(), "n": int(n),
            "inpaint": None if inpaint is None else [fingerprint(np.asarray(a)) for a in inpaint]}
    entry = kernels._drawn("surrogate", spec, rng, "X",
                           lambda: sampler.sample(int(n), rng, inpaint=inpaint))
    return entry["X"], float(entry["seconds"])


def before_training(tg: Target, family: str, X: np.ndarray, flops: float, source: str,
                    scale: float = float("nan")) -> tuple[dict, np.ndarray]:
    """The ``before-training`` row of a forecast that drew trajectories X (n, T, C), task units,
    without any model of the target task (a surrogate's or a pilot's samples), with ``flops`` of
    arithmetic (:mod:`paper_lib.cost`; for a pilot: its training too). Its locality is the
    samples' own error scale (mean distance to the nearest training trajectory in data spacings,
    as ``nn_ratio``). Returns (row, p_hat)."""
    p_hat = metrics.histogram(tg.task.measure(X), tg.bins)
    ev = {**metrics.agreement(p_hat, tg.p_model, tg.p_data, tg.noise),
          "locality": drift.nn_ratio(X, tg.train), "predict_flops": flops}
    return _row(tg, family, "before-training", source, scale, ev), p_hat


def local_surrogate(targets: dict, kernel_for, settings, profile: Profile, family: str,
                    grid=None, flops=None) -> tuple[list, dict, pd.DataFrame]:
    """``before-training`` rows of a surrogate's *local* kernel (noise to t*, then the
    surrogate's own reverse steps back: :class:`paper_lib.surrogates.surrogate_denoise`; or a
    :func:`kernel_pilot`'s own ``denoise`` kernel) for every target of ``targets`` ({task name:
    Target}). ``kernel_for(setting, name, t_star)`` builds the kernel on task ``name``'s
    training set. ``settings``: {name: the setting (a label) chosen without task ``name``}, and
    t* is chosen leave one task out on ``grid`` (default ``profile.t_stars``), the other tasks
    scored with the target's own setting; or a list of settings, and the pair (setting, t*) is
    chosen leave one task out. Either way nothing of the target task's samples enters.
    ``flops(setting, name)``: the arithmetic of building that kernel beyond its predictions (a
    pilot's training, :mod:`paper_lib.cost`), counted in the row's ``cost_fraction``. Returns
    (rows, each with its ``setting`` beside the AGREEMENT_COLUMNS; {name: p_hat}; sweep: columns
    setting, task, t_star, rho, edf, one row per setting, task and grid level)."""
    grid = tuple(profile.t_stars if grid is None else grid)
    labels = list(dict.fromkeys(settings.values() if isinstance(settings, dict) else settings))
    evs = {(setting, name, t_star): evaluate(tg, kernel_for(setting, name, t_star), profile,
                                             family, "before-training", setting, t_star,
                                             locality=False)
           for setting in labels for name, tg in targets.items() for t_star in grid}
    sweep = pd.DataFrame([{"setting": s, "task": n, "t_star": t, "rho": ev["rho"],
                           "edf": ev["edf"]} for (s, n, t), ev in evs.items()])
    if not isinstance(settings, dict):
        pairs = sweep.assign(pair=list(zip(sweep.setting, sweep.t_star)))
        chosen = leave_one_task_out(pairs, setting="pair")
    rows, shown = [], {}
    for name, tg in targets.items():
        if isinstance(settings, dict):
            setting = settings[name]
            t_star = leave_one_task_out(sweep[sweep.setting == setting], setting="t_star")[name]
        else:
            setting, t_star = chosen[name]
        others = " & ".join(sorted(n for n in targets if n != name))
        ev = evs[setting, name, t_star]
        extra = 0.0 if flops is None else float(flops(setting, name))
        ev = {**ev, "locality": locality_on(tg, kernel_for(setting, name, t_star)),  # chosen only
              "predict_flops": ev["predict_flops"] + extra}
        rows.append({**_row(tg, family, "before-training",
                            f"{setting}, t*={t_star} (chosen on {others})", t_star, ev),
                     "setting": setting})
        shown[name] = ev["p_hat"]
    return rows, shown, sweep


def meets_goal(rho, edf, ceiling):
    """Whether a forecast meets the before-training accuracy goal: ρ ≥ GOAL_RHO and EDF ≥
    GOAL_EDF × its ``ceiling``; scalars, arrays or columns alike (elementwise)."""
    return (rho >= GOAL_RHO) & (edf >= GOAL_EDF * ceiling)


def pilot(task, kind: str, profile: Profile) -> drift.Run:
    """The pilot of class ``kind`` on ``task``'s curated set: the model an engineer trains first
    to see the drift coming, at PILOT_STEPS of the profile's steps and PILOT_WIDTH of its width
    (the first of KERNEL_PILOT_SHAPES; same data, same seed 0). Its samples are a
    before-training forecast whose cost counts."""
    return kernel_pilot(task, kind, profile, KERNEL_PILOT_SHAPES[0])


def pilot_sizes(shape: dict, profile: Profile) -> dict:
    """A pilot ``shape`` (fractions, as in KERNEL_PILOT_SHAPES) in ``profile``'s units:
    {"train_steps", "batch_size", "width"}, each at least 1 (the width at least 2)."""
    return {k: max(2 if k == "width" else 1, round(getattr(profile, k) * f))
            for k, f in shape.items()}


def pilot_label(shape: dict, profile: Profile) -> str:
    """The label of a pilot ``shape`` at ``profile``'s sizes (a row's ``source`` starts with it)."""
    size = pilot_sizes(shape, profile)
    return f"width {size['width']}, batch {size['batch_size']}, {size['train_steps']} steps"


def kernel_pilot(task, kind: str, profile: Profile, shape: dict, seed: int = 0,
                 dataset: Dataset | None = None) -> drift.Run:
    """A pilot of class ``kind`` (a diffusion kind) of ``shape`` (KERNEL_PILOT_SHAPES) on
    ``task``'s curated set, whose own ``denoise`` kernel is the forecast (``seed``: the pilot's
    own, for its luck). ``dataset``: train on it instead (``task`` its Task instance), e.g. the
    curated set written in a representation."""
    return drift.train(task, kind, profile, seed=seed, dataset=dataset,
                       **pilot_sizes(shape, profile))


def pilot_choice(table: pd.DataFrame, task: str, profile: Profile) -> tuple[dict, int]:
    """``(shape, t*)``: what notebook 03 chose for ``task``'s ``diffusion-unet`` kernel pilot
    without that task, read from its before-training ``pilot-denoise`` row in ``table``
    (kernel_agreement.csv; its ``source`` starts with the shape's :func:`pilot_label`, its
    ``scale`` is t*). A missing or unreadable row raises ``ValueError`` naming the task."""
    row = table[(table.task == task) & (table.model == "diffusion-unet")
                & (table.kernel == "pilot-denoise") & (table["mode"] == "before-training")]
    shapes = [sh for sh in KERNEL_PILOT_SHAPES if len(row) == 1
              and str(row.source.iloc[0]).startswith(pilot_label(sh, profile) + ",")]
    if len(shapes) != 1:
        raise ValueError(f"kernel_agreement has no readable before-training pilot-denoise row "
                         f"for task {task!r} (notebook 03 writes it); found {len(row)} row(s)")
    return shapes[0], int(row.scale.iloc[0])


def leave_one_task_out(scores: pd.DataFrame, setting: str = "setting",
                       score: str = "edf") -> dict:
    """For each task of ``scores`` (columns task, ``setting``, ``score``: one row per task and
    setting of a forecast's free parameters), the setting whose mean score over the *other*
    tasks is highest: the parameters chosen without the task they forecast. Settings missing on
    some task are averaged over the tasks that have them; NaN scores are skipped."""
    tasks = sorted(scores.task.unique())
    if len(tasks) < 2:
        raise ValueError(f"leave_one_task_out needs scores on at least 2 tasks, got {tasks}")
    out = {}
    for t in tasks:
        mean = scores[scores.task != t].groupby(setting)[score].mean()
        out[t] = mean.idxmax()
    return out


def mosaic_setting(table: pd.DataFrame, task: str) -> tuple[int, float]:
    """``(P_lo, switch)``: the two-stage patch schedule notebook 03 chose for ``task``'s
    ``diffusion-unet`` mosaic without that task, read from the ``source`` of its before-training
    row in ``table`` (kernel_agreement.csv: "P_lo=9, switch=0.9 (chosen on ...)", the label of
    ``surrogates.two_stage_label``). A missing or unreadable row raises ``ValueError`` naming the
    task."""
    row = table[(table.task == task) & (table.model == "diffusion-unet")
                & (table.kernel == "mosaic") & (table["mode"] == "before-training")]
    setting = surrogates.read_two_stage_label(row.source.iloc[0]) if len(row) == 1 else None
    if setting is None:
        raise ValueError(f"kernel_agreement has no readable before-training mosaic row for task "
                         f"{task!r} (notebook 03 writes it); found {len(row)} row(s)")
    return setting


def fit_t_star(run: drift.Run, X_model: np.ndarray, profile: Profile, keep=None) -> int:
    """The t* at which ``run``'s own ``denoise`` kernel best reproduces the drift of its samples
    X_model (n, T, C): the calibrated scale of the ``denoise`` sweep of :func:`forecast`. Used to
    carry a denoiser, with its t*, to a model it did not see (the held-out forecast)."""
    tg = make_target(run, X_model, profile, keep=keep)
    rows = forecast(tg, {"denoise": family_maker("denoise", tg, X_model, run.trained)}, profile).rows
    return int(rows.scale[rows["mode"] == "calibrated"].iloc[0])


def synthetic_localities(table: pd.DataFrame, model: str = "diffusion-unet",
                         families=("white", "smooth", "neighbour")) -> dict:
    """Held-out localities: per family, the mean calibrated locality of ``model`` on the
    synthetic tasks in a kernel_agreement table (notebook 03's rows) -> {family: (loc, source)}.
    Families without synthetic rows are left out."""
    from .tasks import SYNTHETIC

    out = {}
    for family in families:
        d = table[(table.model == model) & (table.kernel == family)
                  & (table["mode"] == "calibrated") & table.task.isin(SYNTHETIC)]
        if len(d):
            out[family] = (float(d.locality.mean()),
                           f"locality {d.locality.mean():.2f} calibrated on "
                           f"{' & '.join(sorted(d.task))} ({model})")
    return out
