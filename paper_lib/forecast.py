"""Forecasting one model's drift with the data deviation kernels: the bookkeeping notebooks 04
and 05 share (notebook 03 spells the same steps out for the synthetic tasks).

A :class:`Target` holds what a forecast is judged against: the observed q-histogram of a model's
samples (``p_model``), the histogram of the data the kernels start from (``p_data``), the
bootstrap half-width of ``p_model`` and the model's own error scale ``nn_ratio`` (sample to nearest
training trajectory, in data spacings: the unit of a kernel's locality). :func:`forecast` then
sweeps each kernel family's scale and returns the rows of ``tables/kernel_agreement.csv`` in the
three modes of notebook 03: ``calibrated`` (scale fitted to p_model), ``matched`` (locality equal
to ``nn_ratio``; never looks at p_model) and ``held-out`` (nothing from this model).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import drift, kernels, metrics
from .datasets import Dataset
from .profiles import Profile
from .seeding import rng

__all__ = ["AGREEMENT_COLUMNS", "Target", "make_target", "family_maker", "rescaled_neighbour",
           "evaluate", "scale_at", "calibrated", "CALIBRATION_TOL", "forecast", "fit_t_star",
           "synthetic_localities"]

AGREEMENT_COLUMNS = ["task", "model", "kernel", "mode", "source", "scale", "locality", "rho",
                     "sign_agreement", "edf", "tv_pred_model", "tv_prior_model", "edf_spread"]
# Calibration picks the grid scale of least TV(p̂, p_model). Scales whose TV is within this of the
# least are near-ties: a last-bit rounding difference (another CPU family) moves a few samples
# across a bin edge and can flip the choice among them, so a calibrated row reports the range of
# their EDFs, ``edf_spread``, as the uncertainty of its EDF (NaN for the other modes).
CALIBRATION_TOL = 0.01
SMOOTH_LENGTH = 3.0   # time steps: the `smooth` kernel's correlation length (as in notebook 03)
N_LOCALITY = 500      # trajectories used to measure a kernel's locality


@dataclass
class Target:
    """A model's observed drift. ``data``: the trajectories the kernels start from (first
    ``profile.kernel_n`` of the training set); ``bins``: the fixed q-bins; ``p_*``: histograms
    (bins.n + 2,); ``noise``: bootstrap half-width of p_model; ``spacing``: data spacing (task
    units); ``keep``: entries no kernel may change (a planner's inpainted start and goal)."""

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
    extra: dict = field(default_factory=dict)


def make_target(run: drift.Run, X_model: np.ndarray, profile: Profile, keep=None) -> Target:
    """The :class:`Target` of ``run``'s samples X_model (n, T, C), task units."""
    t = run.task
    bins = drift.quantity_bins(t, profile)
    data = run.dataset.subset(np.arange(min(profile.kernel_n, len(run.dataset))))
    h = drift.histogram_with_band(t.measure(X_model), bins, profile, t.name, run.kind, "target")
    return Target(t, run.kind, data, bins, metrics.histogram(t.measure(data.X), bins), h["p"],
                  (h["hi"] - h["lo"]) / 2, kernels.data_spacing(run.dataset.X),
                  drift.nn_ratio(X_model, run.dataset.X), keep)


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


def evaluate(tg: Target, kernel, profile: Profile, *keys) -> dict:
    """One kernel's prediction for ``tg``: agreement numbers (metrics.agreement), ``locality``,
    ``p_hat`` and ``predict_seconds`` (the cost of computing the prediction, also when it comes
    from the cache); random streams named by ``keys``."""
    name = tg.task.name
    p_hat, _, seconds = kernels.predict(tg.task, tg.data, kernel, profile.kernel_draws, tg.bins,
                                        rng(0, "predict", name, tg.model, *keys), timed=True)
    X = tg.data.X[:N_LOCALITY]
    loc = kernels.kernel_locality(kernel, X, tg.spacing, rng(0, "locality", name))
    a = metrics.agreement(p_hat, tg.p_model, tg.p_data, tg.noise)
    return {**a, "locality": loc, "p_hat": p_hat, "predict_seconds": seconds}


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
            **{k: float(ev[k]) for k in AGREEMENT_COLUMNS[6:-1]}, "edf_spread": edf_spread}


def forecast(tg: Target, makers: dict, profile: Profile, held: dict | None = None,
             held_denoise: tuple | None = None):
    """Sweep, calibrate, match and (optionally) hold out every family in ``makers``
    (family -> ``scale -> Kernel``).

    ``held``: family -> (locality, source) carried over from elsewhere (data-only families);
    ``held_denoise``: (kernel, source) a denoise kernel from another model. Returns
    (agreement rows DataFrame with AGREEMENT_COLUMNS, the sweep DataFrame with one row per scale,
    {(family, mode): p_hat}, cost rows: predict seconds per family at the matched scale).
    """
    sweep, preds, rows, shown, cost = [], {}, [], {}, []
    for family, make in makers.items():
        # each grid point's random stream is named by what the grid fixes exactly (t*, or the
        # target locality), never by the computed scale, whose last bits vary between CPUs
        if family == "denoise":
            points = [(s, s) for s in profile.t_stars if s < profile.diffusion_steps]
        else:
            points = [(loc, scale_at(make, tg, loc)) for loc in profile.localities]
        grid = [s for _, s in points]
        evs = [evaluate(tg, make(s), profile, family, "grid", key) for key, s in points]
        for s, ev in zip(grid, evs):
            preds[family, float(s)] = ev["p_hat"]
            sweep.append({"task": tg.task.name, "model": tg.model, "kernel": family,
                          "scale": float(s), **{k: v for k, v in ev.items() if k != "p_hat"}})
        best, spread = calibrated([ev["tv_pred_model"] for ev in evs], [ev["edf"] for ev in evs])
        rows.append(_row(tg, family, "calibrated", "fit to this model's histogram", grid[best],
                         evs[best], spread))
        shown[family, "calibrated"] = evs[best]["p_hat"]
        if family == "denoise":
            i = int(np.argmin([abs(ev["locality"] - tg.nn_ratio) for ev in evs]))
            scale, ev, source = grid[i], evs[i], "t* whose locality is nearest nn_ratio"
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
        if held and family in held:
            loc, source = held[family]
            scale = scale_at(make, tg, loc)
            ev = evaluate(tg, make(scale), profile, family, "held-out")
            rows.append(_row(tg, family, "held-out", source, scale, ev))
            shown[family, "held-out"] = ev["p_hat"]
    if held_denoise is not None:
        kernel, source = held_denoise
        ev = evaluate(tg, kernel, profile, "denoise", "held-out")
        rows.append(_row(tg, "denoise", "held-out", source, kernel.scale, ev))
        shown["denoise", "held-out"] = ev["p_hat"]
    return (pd.DataFrame(rows, columns=AGREEMENT_COLUMNS), pd.DataFrame(sweep), shown,
            pd.DataFrame(cost))


def fit_t_star(run: drift.Run, X_model: np.ndarray, profile: Profile, keep=None) -> int:
    """The t* at which ``run``'s own ``denoise`` kernel best reproduces the drift of its samples
    X_model (n, T, C): the calibrated scale of the ``denoise`` sweep of :func:`forecast`. Used to
    carry a denoiser, with its t*, to a model it did not see (the held-out forecast)."""
    tg = make_target(run, X_model, profile, keep=keep)
    rows, *_ = forecast(tg, {"denoise": family_maker("denoise", tg, X_model, run.trained)}, profile)
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
