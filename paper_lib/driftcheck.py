"""Drift check for your own data: before any training, forecast which values of a quantity a
model trained on a curated set of trajectories will over- or under-produce.

The forecast is the companion's data deviation kernel (``paper_lib.kernels``): perturb every
trajectory x of the data by a small local error x' ~ K(·|x), measure q' = m(x'), and compare the
histogram of q' with the data's own histogram of q = m(x). Bins that gain mass beyond noise are the
values the kernel (and, to the extent the kernel describes a model's error, the model) will
over-produce; bins that lose mass are under-produced.

The kernel is a data-only one (``white``, ``smooth``, ``spectral``, ``neighbour``), a *kernel
pilot* (``"pilot"``, :func:`pilot_kernel`: a small diffusion U-Net trained on the data first,
in the units your model will train in, whose own denoiser is the kernel: of the companion's
before-training forecasts, the one that agreed best with its U-Nets' drift on most tasks in
notebooks 03 and 06, at the cost of training it), or any ``paper_lib.kernels.Kernel`` you pass
(your trained model's ``denoise``).

``check(X, measure)`` runs it and returns a :class:`DriftCheck`; ``python -m paper_lib drift``
(``paper_lib/__main__.py``) is the command-line front end, with :func:`load_trajectories` and
:func:`resolve_measure` reading its inputs. All user errors raise :class:`DriftCheckError` (a
``ValueError``) with one line naming the problem and the expected form.

Choices stated once:

* **Noise test.** Bands and the gain/loss test come from a *paired trajectory bootstrap*: each
  trajectory i carries its data bin and its forecast bin fractions (over ``draws`` perturbations),
  and every resample reweights whole trajectories with Poisson(1) weights (the streaming form of
  the ordinary bootstrap), so the data and forecast histograms of one resample share trajectories.
  A bin *gains* (*loses*) mass when the central ``level`` interval of its bootstrap difference
  Δ = p_forecast − p_data lies entirely above (below) 0; the test is per bin, not corrected for
  the number of bins. (``metrics.bootstrap_histogram`` resamples q values independently, which
  the draws of one trajectory are not, and cannot pair the two histograms.)
* **Bins.** An int n splits the data's range [min q, max q] into n equal bins; the under- and
  overflow bins then hold forecast mass that leaves the data's range (non-finite forecast q go to
  the underflow bin, +inf to the overflow, as ``metrics.Bins.index`` does). A ``metrics.Bins``
  is used as given.
* **Scale.** Given (a float: σ in data units for ``white``/``smooth``, a multiplier of the psd's
  amplitude for ``spectral``, the step α towards a neighbour for ``neighbour``); fitted from a few
  samples of a model you have (:func:`fit_scale`: the scale whose locality equals the samples'
  nearest-data distance ratio, the companion's "matched" mode); or the companion's default
  locality :data:`DEFAULT_LOCALITY`, reported with a caveat. Locality is in units of the data's
  mean nearest-neighbour spacing (``kernels.data_spacing`` over the whole set).
* **Scale to 10⁶ trajectories.** Everything is chunked (``chunk`` trajectories at a time, memory
  O(chunk · T · C) plus O(n · draws) floats for the q values); no n × n matrix is formed. The
  ``neighbour`` kernel searches the k nearest trajectories of each chunk exactly (chunked
  ``torch.cdist`` through ``kernels.knn``) in a uniform subsample of ``n_ref`` reference
  trajectories (default :func:`reference_size`: all of them up to 4,096, fewer from n ≈ 2.6·10⁵ on
  so that the search stays near 10⁹ distances: 1,073 at n = 10⁶), once per chunk for all its
  draws; the data spacing
  compares 2,000 sampled trajectories with the whole set, block by block of 16,384 trajectories
  (:func:`_nearest`).
"""
from __future__ import annotations

import html
import importlib
import importlib.util
import io
import math
import os
import sys
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import cache, kernels, metrics
from .datasets import Dataset
from .forecast import (KERNEL_PILOT_SHAPES, N_LOCALITY, SMOOTH_LENGTH, pilot_label, pilot_sizes,
                       rescaled_neighbour)
from .profiles import get_profile
from .seeding import rng as make_rng
from .tasks import Task

__all__ = ["check", "fit_scale", "pilot_kernel", "pilot_source", "DriftCheck", "ScaleChoice",
           "DriftCheckError", "YourData", "reference_size", "load_trajectories", "resolve_measure",
           "check_output_path", "DEFAULT_LOCALITY", "DATA_KERNELS", "KERNELS", "PILOT_SHAPE",
           "PILOT_T_STAR", "FORMATS"]

# The companion's calibrated default locality, in data spacings: the median `locality` over the
# 25 `matched` rows of model `diffusion-unet` (5 tasks × 5 kernels) in the committed table
# figures/tables/kernel_agreement.csv (notebooks 03-05: each kernel's scale set so that it moves
# data as far as the U-Net's own samples lie from their nearest training trajectory). A test
# (tests/test_driftcheck.py) recomputes it from that table, so it cannot go stale silently.
DEFAULT_LOCALITY = 1.19416
DATA_KERNELS = ("white", "smooth", "spectral", "neighbour")
KERNELS = (*DATA_KERNELS, "pilot")
# The kernel pilot: a small diffusion U-Net trained on your trajectories, whose own denoiser is
# the kernel. Its shape (fractions of the default profile's steps, batch and width: 600 steps,
# batch 16, width 16, ≈ 6% of the default U-Net's training compute) and t* are what notebook 03
# chose, leave one task out, for every one of its five tasks (the before-training `pilot-denoise`
# rows of figures/tables/kernel_agreement.csv; a test reads them back, so these cannot go stale
# silently). Of the before-training forecasts there, it correlated best with the U-Net's drift
# on most tasks (notebooks 03 and 06).
PILOT_SHAPE = KERNEL_PILOT_SHAPES[4]
PILOT_T_STAR = 0
FORMATS = (".npy, .npz (FILE.npz:KEY), .csv or .parquet (long format: id, t, one column per "
           "channel)")

_CAVEAT = ("Scale: the companion's calibrated default, locality {loc:.3g} data spacings (the "
           "median of the localities matched to the companion's diffusion U-Nets on its five "
           "tasks, figures/tables/kernel_agreement.csv), not a scale fitted to your model. On those "
           "tasks data-only kernels at this locality explained only a small part of those U-Nets' "
           "drift (explained drift fraction below 0.2): read the direction of the forecast more "
           "than its size, and fit the scale to a few hundred samples of your model when you have "
           "one (fit_scale, --samples).")
_PILOT_CAVEAT = ("Units: the pilot trained on your trajectories standardised (each channel's "
                 "mean and standard deviation). Its kernel depends on the units a "
                 "model trains in: on four of the companion's five tasks the standardised pilot "
                 "lost most of the agreement that a pilot in the U-Nets' own units had "
                 "(bench/driftcheck_pilot.csv). Give the units your model will train in "
                 "(units=(offset, scale), --units OFFSET:SCALE).")
_SPACING_REF = 2000          # trajectories whose nearest-neighbour distance defines the spacing


class DriftCheckError(ValueError):
    """A user error: bad input, bad options or an unwritable output. One line, no traceback."""


# ----------------------------------------------------------------------------- inputs

def _as_trajectories(trajectories, what: str = "trajectories") -> np.ndarray:
    """``trajectories`` as an array (n, T, C) float32 (a float32 array or memory map is used as is,
    not copied), n >= 2. Finiteness is checked chunk by chunk later (:func:`_measure_data`)."""
    if isinstance(trajectories, (list, tuple)):
        if not trajectories:
            raise DriftCheckError(f"{what}: the list is empty; expected n >= 2 arrays of shape "
                                  "(T, C)")
        shapes = [np.shape(a) for a in trajectories]
        bad = next((i for i, s in enumerate(shapes) if len(s) != 2 or s != shapes[0]), None)
        if bad is not None:
            raise DriftCheckError(
                f"{what}: item {bad} has shape {shapes[bad]}, item 0 has {shapes[0]}; expected "
                "a list of equal-length (T, C) arrays")
        try:
            X = np.stack([np.asarray(a) for a in trajectories])
        except (TypeError, ValueError) as exc:
            raise DriftCheckError(f"{what}: cannot stack the list ({exc}); expected (T, C) "
                                  "arrays of numbers") from None
    else:
        X = trajectories if isinstance(trajectories, np.ndarray) else np.asarray(trajectories)
    if X.dtype.kind not in "biuf":
        raise DriftCheckError(f"{what}: values of type {X.dtype} are not real numbers; expected "
                              "a float array of shape (n, T, C)")
    if X.ndim != 3:
        raise DriftCheckError(f"{what}: got an array of shape {X.shape}; expected shape "
                              "(n, T, C) (trajectories × time steps × channels)")
    if X.shape[1] < 1 or X.shape[2] < 1:
        raise DriftCheckError(f"{what}: shape {X.shape} has an empty time or channel axis; "
                              "expected (n, T, C) with T, C >= 1")
    if len(X) < 2:
        raise DriftCheckError(f"{what}: got {len(X)} trajectories; expected at least 2")
    return X if X.dtype == np.float32 else X.astype(np.float32)


def _check_finite(Xc: np.ndarray, start: int, what: str = "trajectories") -> None:
    """Raise naming the first NaN/inf entry of the chunk Xc (rows start..)."""
    bad = ~np.isfinite(Xc)
    if bad.any():
        i, t, c = np.argwhere(bad)[0]
        raise DriftCheckError(
            f"{what}: {int(bad.sum())} non-finite value(s) (NaN or ±inf) in rows {start}.."
            f"{start + len(Xc) - 1}, first at trajectory {start + i}, t={t}, channel {c}; "
            "expected finite numbers")


def _name_of(measure) -> str:
    owner = getattr(measure, "__self__", None)
    if owner is not None and hasattr(owner, "quantity") and hasattr(owner, "name"):
        return f"{owner.quantity} (task:{owner.name})"
    return getattr(measure, "__qualname__", None) or type(measure).__name__


def _call_measure(measure, Xc: np.ndarray, name: str, kind: str) -> np.ndarray:
    """m(Xc) as float64 (len(Xc),); raises DriftCheckError when the measure raises or returns
    another shape. ``kind`` names the batch in messages (data / perturbed)."""
    expected = "expected a vectorised function (n, T, C) -> (n,) of floats"
    try:
        q = measure(Xc)
    except Exception as exc:  # the user's function: any failure is theirs to fix
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise DriftCheckError(f"measure {name} raised {type(exc).__name__}: {msg} (on a batch of "
                              f"{kind} trajectories of shape {Xc.shape}); {expected}") from None
    try:
        q = np.asarray(q, dtype=np.float64)
    except (TypeError, ValueError):
        raise DriftCheckError(f"measure {name} returned {type(q).__name__} values that are not "
                              f"numbers; {expected}") from None
    if q.shape != (len(Xc),):
        raise DriftCheckError(f"measure {name} returned shape {q.shape} for {len(Xc)} "
                              f"trajectories of shape {Xc.shape[1:]}; {expected}")
    return q


def _measure_data(measure, X: np.ndarray, name: str, chunk: int, bar) -> np.ndarray:
    """q = m(x) of every data trajectory (n,) float64, chunk by chunk; checks that X and q are
    finite (a non-finite q for *data* is a user error)."""
    q = np.empty(len(X))
    for s in range(0, len(X), chunk):
        Xc = np.ascontiguousarray(X[s:s + chunk])
        _check_finite(Xc, s)
        qc = _call_measure(measure, Xc, name, "data")
        bad = ~np.isfinite(qc)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DriftCheckError(
                f"measure {name} returned {int(bad.sum())} non-finite value(s) on data "
                f"trajectories, first {qc[i]} for trajectory {s + i}; expected a finite q for "
                "every data trajectory")
        q[s:s + len(Xc)] = qc
        bar.update(len(Xc))
    return q


def _make_bins(bins, q: np.ndarray) -> metrics.Bins:
    """``bins``: a metrics.Bins (used as is) or an int n: n equal bins over [min q, max q]."""
    if isinstance(bins, metrics.Bins):
        return bins
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise DriftCheckError(f"bins: got {bins!r}; expected a positive int or a "
                              "paper_lib.metrics.Bins")
    lo, hi = float(q.min()), float(q.max())
    span = hi - lo
    if span <= 0:                       # a constant quantity: one unit-ish window around it
        span = max(abs(lo), 1.0) * 1e-3
        lo -= span / 2
    return metrics.Bins(lo, lo + span * (1 + 1e-9), int(bins))


def _int_option(value, name: str, minimum: int) -> int:
    """``value`` as an int >= minimum, else DriftCheckError naming the option."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DriftCheckError(f"{name}: got {value!r}; expected an int >= {minimum}")
    return int(value)


def _draws(draws, n: int) -> int:
    """Perturbations per trajectory: ``draws``, or None: enough for about 10⁵ forecast values
    (between 1 and 16)."""
    if draws is None:
        return int(min(16, max(1, math.ceil(100_000 / n))))
    return _int_option(draws, "draws", 1)


# ----------------------------------------------------------------------------- kernels and scale

@dataclass
class ScaleChoice:
    """A kernel scale and where it came from. ``value``: the family's scale (see the module
    docstring); ``locality``: the target locality it was chosen for (data spacings), None when
    given; ``params``: kernel parameters fitted with it (``spectral``: the residual ``psd``)."""

    value: float
    kernel: str
    source: str
    locality: float | None = None
    default: bool = False
    params: dict = field(default_factory=dict, repr=False)

    def __float__(self) -> float:
        return float(self.value)


class _ChunkNeighbour(kernels.neighbour):
    """``kernels.neighbour`` that keeps the neighbours of the last batch it perturbed (held in a
    memo shared by its rescaled copies), so the ``draws`` of one chunk share one kNN search."""

    _memo: list

    def neighbours(self, X):
        if self._memo and self._memo[0] is X:
            return self._memo[1]
        nb = super().neighbours(X)
        self._memo[:] = [X, nb]
        return nb


def _neighbour_maker(ref: np.ndarray, k: int) -> Callable[[float], kernels.Kernel]:
    """``alpha -> neighbour kernel`` over the reference set ``ref`` (m, T, C): its kNN index is
    built once (``forecast.rescaled_neighbour`` shares it between scales)."""
    with _quiet_torch():
        nb = kernels.make_kernel("neighbour", train=ref, scale=1.0, k=k)
    base = _ChunkNeighbour.__new__(_ChunkNeighbour)
    base.__dict__.update(nb.__dict__)
    base._memo = []

    def make(alpha):
        out = rescaled_neighbour(base, alpha)
        out.__class__ = _ChunkNeighbour   # rescaled_neighbour returns the plain class
        return out
    return make


def reference_size(n: int, n_ref: int | None = None) -> int:
    """Reference trajectories the ``neighbour`` kernel searches for n data trajectories:
    ``n_ref`` if given, else min(n, 4096, max(1024, 2³⁰ // n)): from n ≈ 2.6·10⁵ on the search
    stays near 10⁹ distances, half the data spacing's 2·10⁹ (1,073 references at n = 10⁶)."""
    if n_ref is None:
        return int(min(n, 4096, max(1024, 2 ** 30 // n)))
    return min(n, _int_option(n_ref, "n_ref", 2))


def _family(name, X: np.ndarray, length: float, k: int, psd, n_ref: int,
            g: np.random.Generator) -> tuple[Callable[[float], kernels.Kernel], dict]:
    """(``scale -> Kernel``, the parameters that define it) for a data-only family ``name``."""
    if name == "denoise":
        raise DriftCheckError("kernel 'denoise' needs your trained model: pass "
                              "kernel=paper_lib.kernels.denoise(trained, t_star) to check()")
    if not isinstance(name, str) or name not in DATA_KERNELS:
        raise DriftCheckError(f"unknown kernel {name!r}; expected one of {', '.join(KERNELS)}"
                              " or a paper_lib.kernels.Kernel instance (e.g. kernels.denoise("
                              "trained, t_star))")
    try:
        if name == "white":
            return (lambda s: kernels.make_kernel("white", scale=s)), {}
        if name == "smooth":
            kernels.smooth(0.0, length)   # validate length once
            return (lambda s: kernels.make_kernel("smooth", scale=s, length=length)), \
                {"length": float(length)}
        if name == "spectral":
            if psd is None:
                raise DriftCheckError("kernel 'spectral' needs a power spectrum: pass psd= (a "
                                      "(T//2+1, C) array, kernels.fit_spectral) or fit it from "
                                      "a model's samples with fit_scale(samples, X, 'spectral')")
            psd = _check_psd(psd, X.shape[1], X.shape[2])
            return (lambda s: kernels.make_kernel("spectral", psd=psd, scale=s)), {"psd": psd}
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) \
                or not 1 <= k < min(len(X), n_ref):
            raise DriftCheckError(f"neighbour: k={k!r}; expected an int with 1 <= k < "
                                  f"{min(len(X), n_ref)} (the reference set's size)")
        ref = X if len(X) <= n_ref else np.asarray(X[np.sort(g.choice(len(X), n_ref, False))])
        return _neighbour_maker(np.ascontiguousarray(ref), int(k)), {"k": int(k),
                                                                      "n_ref": len(ref)}
    except DriftCheckError:
        raise
    except ValueError as exc:
        raise DriftCheckError(f"kernel {name!r}: {exc}") from None


def _check_psd(psd, T: int, C: int) -> np.ndarray:
    """A power spectrum that fits trajectories with T steps and C channels: (T//2+1, C) or
    (T//2+1,) / (T//2+1, 1) (one spectrum for every channel), finite and >= 0."""
    p = np.asarray(psd, float)
    p = p[:, None] if p.ndim == 1 else p
    if p.ndim != 2 or len(p) != T // 2 + 1 or p.shape[1] not in (1, C) \
            or not np.isfinite(p).all() or (p < 0).any():
        raise DriftCheckError(f"spectral: psd of shape {np.shape(psd)} does not fit trajectories "
                              f"with T={T}, C={C}; expected a finite, non-negative "
                              f"({T // 2 + 1}, {C}) or ({T // 2 + 1},) array")
    return p


def _locality_rows(X: np.ndarray, seed: int) -> np.ndarray:
    """The trajectories (``forecast.N_LOCALITY`` of them, drawn uniformly: a file may be sorted
    by the quantity) on which a kernel's locality is measured, (m, T, C) float32."""
    if len(X) <= N_LOCALITY:
        return np.ascontiguousarray(X)
    g = make_rng(seed, "driftcheck", "locality rows")
    return np.ascontiguousarray(X[np.sort(g.choice(len(X), N_LOCALITY, replace=False))])


def _scale_for(name: str, make, X_loc: np.ndarray, spacing: float, target: float,
               g: np.random.Generator) -> float:
    """The scale whose kernel moves ``X_loc`` (n, T, C) by ``target`` data spacings
    (``kernels.scale_for_locality``, uncached: nothing of the user's is written to the cache)."""
    if not spacing > 0:
        raise DriftCheckError("the data's nearest-neighbour spacing is 0 (the sampled "
                              "trajectories all have exact duplicates), so a locality cannot be "
                              "turned into a scale; give scale= explicitly")
    if not np.isfinite(target):
        raise DriftCheckError(f"cannot fit a scale to locality {target!r}")
    try:
        with _quiet_torch():
            return float(kernels.scale_for_locality(make, X_loc, spacing, target, g,
                                                    use_cache=False))
    except ValueError as exc:
        raise DriftCheckError(f"cannot reach locality {target:g} with kernel {name!r}: {exc}; "
                              "give scale= explicitly") from None


def _nearest(A: np.ndarray, X: np.ndarray, exclude: np.ndarray | None = None,
             block: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """``kernels.nearest`` (nearest trajectory of X to each row of A, blocked over X) with
    torch quietened and on one thread (see :class:`_quiet_torch`)."""
    with _quiet_torch():
        return kernels.nearest(np.ascontiguousarray(A), X, exclude=exclude, block=block)


def _spacing(X: np.ndarray, g: np.random.Generator) -> float:
    """``kernels.data_spacing(X, 2000, rng=g)`` (blocked over X, so it scales to 10⁶
    trajectories) with torch quietened and on one thread."""
    with _quiet_torch():
        return kernels.data_spacing(X, _SPACING_REF, rng=g)


class _quiet_torch(warnings.catch_warnings):
    """For the nearest-neighbour searches (``kernels.knn``): silence torch's warning about
    read-only (memory-mapped) numpy arrays and, with ``single_thread``, run torch on one thread
    (restored on exit). Measured on the 2-core VM while another job kept both cores busy: a
    (1024 × 128) · (1073 × 128) ``torch.cdist`` took 86 ms on 2 threads and 5.7 ms on 1 (the
    threads wait for each other), and 1 thread was also faster at (1024 × 16384), 42 against
    24 GFLOP/s; the companion trains single-threaded for the same reason."""

    def __init__(self, single_thread: bool = True):
        super().__init__()
        self.single_thread, self.threads = single_thread, None

    def __enter__(self):
        out = super().__enter__()
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        if self.single_thread:
            import torch

            self.threads = torch.get_num_threads()
            torch.set_num_threads(1)
        return out

    def __exit__(self, *exc):
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)
        return super().__exit__(*exc)


def _units(units, mean: np.ndarray, mean_sq: np.ndarray, C: int) -> tuple[tuple, tuple]:
    """(offset, spread), one per channel, from ``units`` (see :func:`pilot_kernel`), or from the
    data's per-channel ``mean`` and mean square when None."""
    if units is None:
        std = np.sqrt(np.maximum(mean_sq - mean ** 2, 0))
        if not (std > 0).any():
            raise DriftCheckError("pilot: every channel is constant over all trajectories; "
                                  "expected trajectories that vary")
        return (tuple(float(m) + 0.0 for m in mean),
                tuple(float(v) if v > 0 else 1.0 for v in std))
    expected = (f"expected (offset, scale): each a finite number or {C} of them (one per "
                "channel), scale > 0")
    try:
        offset, scale = units
        off, sc = (np.broadcast_to(np.asarray(v, float), (C,)) for v in (offset, scale))
    except (TypeError, ValueError):
        raise DriftCheckError(f"units: got {units!r}; {expected}") from None
    if not (np.isfinite(off).all() and np.isfinite(sc).all() and (sc > 0).all()):
        raise DriftCheckError(f"units: got {units!r}; {expected}")
    return tuple(float(o) + 0.0 for o in off), tuple(float(v) for v in sc)   # + 0.0: no -0.0


@dataclass(frozen=True)
class YourData(Task):
    """Your trajectories as a task a pilot can train on: ``channels`` names C channels of ``T``
    frames; the model sees (x − ``offset``) / ``spread``, each one number per channel
    (:func:`pilot_kernel` sets them). It generates and measures nothing (the quantity is
    check()'s ``measure``), and the prior's support ``lo``, ``hi`` is unused: a pilot is not
    conditioned on q."""

    name = "your-data"
    channels: tuple[str, ...] = ("x",)
    spread: tuple[float, ...] = (1.0,)

    def __post_init__(self):
        super().__post_init__()
        sp = np.asarray(self.spread, float)
        if sp.shape != (self.C,) or not (np.isfinite(sp).all() and (sp > 0).all()):
            raise ValueError(f"{self.name}: spread must be {self.C} finite numbers > 0 (one per "
                             f"channel), got {self.spread!r}")

    def to_model(self, X):
        return ((np.asarray(X, np.float32) - np.float32(self.offset))
                / np.float32(self.spread)).astype(np.float32)

    def from_model(self, Z):
        return (np.asarray(Z, np.float32) * np.float32(self.spread)
                + np.float32(self.offset)).astype(np.float32)


def pilot_kernel(trajectories, units=None, seed: int = 0, profile: str = "default",
                 progress: bool = False) -> kernels.denoise:
    """A kernel pilot for ``trajectories`` (n, T, C), n >= 2, finite, T a multiple of 4 (the
    U-Net halves the time axis twice): a ``diffusion-unet`` of shape :data:`PILOT_SHAPE` at
    ``profile``'s sizes (default: 600 steps, batch 16, width 16), trained on them with ``seed``,
    returned as its own ``denoise`` kernel at t* = :data:`PILOT_T_STAR`, in your units.

    ``units``: ``(offset, scale)``, the normalisation the model you forecast will train with
    (it sees (x − offset) / scale; each a number or one per channel, scale > 0). It matters:
    the denoiser's smallest step adds noise of a fixed size in those units, so the same data at
    another scale gets another kernel (``bench/driftcheck_pilot.py`` measures how much, on the
    companion's five tasks). None: each channel's mean and standard deviation (1 for a constant
    channel). The trained pilot is cached (keyed by a hash of the trajectories), so a second
    check of the same data does not train."""
    from . import models

    X = _as_trajectories(trajectories)
    n, T, C = X.shape
    try:
        P = get_profile(profile)
    except ValueError as exc:
        raise DriftCheckError(str(exc)) from None
    spec = models.make_spec("diffusion-unet", P, **pilot_sizes(PILOT_SHAPE, P))
    halvings = len(spec.mults) - 1
    if T % 2 ** halvings:
        raise DriftCheckError(f"pilot: trajectories have T={T} frames; the pilot's U-Net halves "
                              f"the time axis {halvings} times, so T must be a multiple of "
                              f"{2 ** halvings} (pad or crop the trajectories)")
    total, squares = np.zeros(C), np.zeros(C)
    for s in range(0, n, 16384):   # chunked: a memory map is not read in whole
        Xc = np.asarray(X[s:s + 16384], np.float64)
        _check_finite(Xc, s)
        total += Xc.sum(axis=(0, 1))
        squares += (Xc ** 2).sum(axis=(0, 1))
    offset, spread = _units(units, total / (n * T), squares / (n * T), C)
    task = YourData(channels=tuple(f"channel {c}" for c in range(C)), T=T, offset=offset,
                    spread=spread)
    data = Dataset(task.name, X, np.zeros(n), 0,
                   {"task": task.name, "params": task, "X": cache.fingerprint(X)})
    trained = models.fit(spec, data, P, seed=_int_option(seed, "seed", 0), progress=progress)
    return kernels.denoise(trained, PILOT_T_STAR)


def fit_scale(samples, trajectories, kernel: str = "smooth", *, length: float = SMOOTH_LENGTH,
              k: int = 8, psd=None, n_ref: int | None = None, seed: int = 0) -> ScaleChoice:
    """Fit a data-only kernel's scale from a few samples (m, T, C) of a model trained on
    ``trajectories`` (n, T, C) (same units): the samples' nearest-data distance ratio r =
    mean distance to the nearest data trajectory (``metrics.nn_distances``) / data spacing
    (``kernels.data_spacing``), then the scale whose locality is r (``kernels.scale_for_locality``)
    — the companion's "matched" mode. For ``spectral`` without ``psd`` the spectrum is fitted to the
    samples' residuals to their nearest data trajectory (``kernels.nearest_residuals``, first
    1,000 samples). A few hundred samples suffice. Returns a :class:`ScaleChoice` for ``check``."""
    X = _as_trajectories(trajectories)
    S = _as_trajectories(samples, "samples")
    if S.shape[1:] != X.shape[1:]:
        raise DriftCheckError(f"samples have trajectories of shape {S.shape[1:]}, the data "
                              f"{X.shape[1:]}; expected samples of shape (m, {X.shape[1]}, "
                              f"{X.shape[2]})")
    S = np.ascontiguousarray(S[:5000])
    _check_finite(S, 0, "samples")
    g = make_rng(seed, "driftcheck", "fit_scale")
    spacing = _spacing(X, g)
    dist, nearest = _nearest(S, X)        # = metrics.nn_distances(S, X), blocked (see there)
    ratio = float(dist.mean() / spacing) if spacing > 0 else float("nan")
    if kernel == "spectral" and psd is None:  # = kernels.nearest_residuals(S[:1000], X)
        psd = kernels.fit_spectral(S[:1000] - np.asarray(X[nearest[:1000]]))
    make, params = _family(kernel, X, length, k, psd, reference_size(len(X), n_ref), g)
    value = _scale_for(kernel, make, _locality_rows(X, seed), spacing, ratio, g)
    return ScaleChoice(value, kernel, f"fitted to {len(S)} model samples: locality = their "
                       f"nearest-data distance ratio {ratio:.3g}", ratio, False, params)


def _resolve_kernel(kernel, scale, X, X_loc, length, k, psd, n_ref, g, spacing):
    """(Kernel, ScaleChoice) from check()'s kernel and scale arguments; ``X_loc``: the rows a
    locality is measured on."""
    if isinstance(kernel, kernels.Kernel):
        if scale is not None:
            raise DriftCheckError("scale: a Kernel instance carries its own scale; pass "
                                  "scale=None (or a family name such as 'smooth' with a scale)")
        return kernel, ScaleChoice(float(kernel.scale), kernel.name, "the kernel's own scale")
    if isinstance(scale, ScaleChoice):
        if scale.kernel != kernel:
            raise DriftCheckError(f"scale was fitted for kernel {scale.kernel!r}, not {kernel!r}; "
                                  "expected the same family in fit_scale and check")
        psd = scale.params.get("psd", psd)
    make, params = _family(kernel, X, length, k, psd, n_ref, g)
    if scale is None:
        value = _scale_for(kernel, make, X_loc, spacing, DEFAULT_LOCALITY, g)
        choice = ScaleChoice(value, kernel, f"companion default: locality {DEFAULT_LOCALITY:.3g} "
                             "data spacings", DEFAULT_LOCALITY, True, params)
    elif isinstance(scale, ScaleChoice):
        choice = ScaleChoice(scale.value, kernel, scale.source, scale.locality, scale.default,
                             params)
    else:
        try:
            value = float(scale)
        except (TypeError, ValueError):
            value = float("nan")
        if isinstance(scale, bool) or not np.isfinite(value) or value < 0:
            raise DriftCheckError(f"scale: got {scale!r}; expected a finite number >= 0, None "
                                  "(the companion's default) or fit_scale(...)")
        choice = ScaleChoice(value, kernel, "given", None, False, params)
    return make(choice.value), choice


def _pilot(X: np.ndarray, scale, units, seed: int,
           progress: bool) -> tuple[kernels.Kernel, ScaleChoice]:
    """(Kernel, ScaleChoice) of check()'s ``kernel="pilot"``: :func:`pilot_kernel` on X."""
    if scale is not None:
        raise DriftCheckError(f"scale: got {scale!r}; the kernel pilot has its own scale (its "
                              f"denoiser at t* = {PILOT_T_STAR}): pass scale=None")
    kern = pilot_kernel(X, units=units, seed=seed, progress=progress)
    return kern, ScaleChoice(float(PILOT_T_STAR), "pilot", pilot_source(kern, units),
                             default=units is None)


def pilot_source(kern: kernels.denoise, units) -> str:
    """Where a pilot kernel's scale (its t*) came from, for the report: the pilot's shape and
    the units it trained in (``units`` as given to :func:`pilot_kernel`)."""
    task = kern.trained.task

    def shown(values):
        v = np.asarray(values, float) + 0.0   # no "-0"
        return f"{v[0]:.4g}" if np.ptp(v) == 0 else "(" + ", ".join(f"{x:.4g}" for x in v) + ")"

    label = pilot_label(PILOT_SHAPE, get_profile("default"))
    return (f"t*: a diffusion U-Net pilot trained on these trajectories, {label}, in units "
            f"(x - {shown(task.offset)}) / {shown(task.spread)}"
            f"{' (standardised)' if units is None else ''}, denoising from step {kern.scale:g}")


def _sample(kern: kernels.Kernel, Xc: np.ndarray, g: np.random.Generator,
            user_kernel: bool) -> np.ndarray:
    """kern.sample(Xc) (n, T, C); failures of a user's kernel (or a ValueError of ours: a psd
    that does not fit) become DriftCheckError."""
    try:
        with _quiet_torch(single_thread=isinstance(kern, kernels.neighbour)):
            Xp = kern.sample(Xc, g)
    except Exception as exc:
        if not (user_kernel or isinstance(exc, ValueError)):
            raise
        raise DriftCheckError(f"kernel {kern!r} failed on a batch of shape {Xc.shape}: "
                              f"{type(exc).__name__}: {exc}") from None
    if Xp.shape != Xc.shape:
        raise DriftCheckError(f"kernel {kern!r} returned shape {Xp.shape} for a batch of shape "
                              f"{Xc.shape}; expected the same shape")
    return Xp


# ----------------------------------------------------------------------------- bootstrap

def _bin_fractions(idx: np.ndarray, B: int) -> np.ndarray:
    """Per-row fraction of entries in each bin: idx (c, d) bin indices -> (c, B) float64."""
    c, d = idx.shape
    flat = (np.arange(c)[:, None] * B + idx).ravel()
    return np.bincount(flat, minlength=c * B).reshape(c, B) / d


_POISSON1_CDF = np.cumsum([math.exp(-1) / math.factorial(j) for j in range(12)]).astype(np.float32)


def _poisson1(shape: tuple, g: np.random.Generator) -> np.ndarray:
    """Poisson(1) counts, float32 of ``shape``, by inverting the CDF at float32 uniforms (twice
    as fast as ``Generator.poisson``; counts above 11, probability 1e-9, are cut to 12)."""
    return np.searchsorted(_POISSON1_CDF, g.random(shape, dtype=np.float32)).astype(np.float32)


def _paired_bootstrap(q_data: np.ndarray, q_fore: np.ndarray, bins: metrics.Bins, n_boot: int,
                      level: float, g: np.random.Generator, block: int = 8192) -> dict:
    """Poisson(1)-weight bootstrap over trajectories of (data histogram, forecast histogram,
    their difference, TV, mean shift), streamed in blocks of trajectories.

    ``q_data`` (n,), ``q_fore`` (n, draws). Returns the central ``level`` interval of each:
    ``p_data``, ``p_forecast``, ``delta`` as (lo, hi) pairs of (B,) arrays, ``tv`` and
    ``mean_shift`` as (lo, hi) floats. The mean shift of a trajectory is the mean of its finite
    forecast q minus its data q (trajectories with no finite forecast are left out). Per block,
    one (n_boot, block) weight matrix multiplies the stacked per-trajectory columns [forecast bin
    fractions | data bin | shift | has a shift | 1] (float32 within a block, summed in float64)."""
    B = bins.n + 2
    S = np.zeros((n_boot, 2 * B + 3))
    for s in range(0, len(q_data), block):
        qd, qf = q_data[s:s + block], q_fore[s:s + block]
        fin = np.isfinite(qf)
        valid = fin.any(1)
        shift = np.where(fin, qf, 0).sum(1) / np.maximum(fin.sum(1), 1) - qd
        cols = np.concatenate([_bin_fractions(bins.index(qf), B),
                               _bin_fractions(bins.index(qd)[:, None], B),
                               np.stack([np.where(valid, shift, 0.0), valid,
                                         np.ones(len(qd))], 1)], 1).astype(np.float32)
        S += _poisson1((n_boot, len(qd)), g) @ cols
    P_f, P_d = S[:, :B], S[:, B:2 * B]
    weight = np.maximum(S[:, -1:], 1)
    P_f, P_d = P_f / weight, P_d / weight
    a = (1 - level) / 2

    def band(v):
        return np.quantile(v, a, axis=0), np.quantile(v, 1 - a, axis=0)

    with np.errstate(invalid="ignore", divide="ignore"):
        ms = S[:, -3] / S[:, -2]
    ms = ms[np.isfinite(ms)]
    return {"p_data": band(P_d), "p_forecast": band(P_f), "delta": band(P_f - P_d),
            "tv": tuple(float(v) for v in band(0.5 * np.abs(P_f - P_d).sum(1))),
            "mean_shift": tuple(float(v) for v in band(ms)) if len(ms) else (np.nan, np.nan)}


# ----------------------------------------------------------------------------- the check

def check(trajectories, measure: Callable[[np.ndarray], np.ndarray], kernel="smooth", scale=None,
          bins=20, draws: int | None = None, seed: int = 0, *, length: float = SMOOTH_LENGTH,
          k: int = 8, psd=None, n_ref: int | None = None, level: float = 0.95,
          n_boot: int = 200, units=None,
          chunk: int = 16384, progress: bool = False,
          measure_name: str | None = None) -> "DriftCheck":
    """Forecast where the quantity ``measure`` of ``trajectories`` drifts under a data deviation
    kernel, before any training.

    ``trajectories``: array (n, T, C) (a float32 ``np.load(..., mmap_mode="c")`` memory map is
    read chunk by chunk, not copied) or a list of equal-length (T, C) arrays, n >= 2, in your
    units. ``measure``: a vectorised callable (n, T, C) -> (n,) of floats (e.g. a task's
    ``measure``); it must be finite on every data trajectory. ``kernel``: ``"white"``,
    ``"smooth"`` (correlation ``length`` time steps), ``"spectral"`` (needs ``psd``, or a
    ``fit_scale`` result), ``"neighbour"`` (``k`` nearest of ``n_ref`` reference trajectories,
    default :func:`reference_size`), ``"pilot"`` (a small diffusion U-Net trained on the
    trajectories first, :func:`pilot_kernel`, in ``units``; ``scale`` must be None), or any
    ``paper_lib.kernels.Kernel`` instance (e.g. ``kernels.denoise(trained, t_star)`` of your
    model; then ``scale`` must be None). ``scale``: a number, a :func:`fit_scale` result, or None
    for the companion's default locality (:data:`DEFAULT_LOCALITY`; the report then carries a
    caveat). ``bins``: int (equal bins over the data's range) or a ``metrics.Bins``. ``draws``:
    perturbations per trajectory (None: enough for ~10⁵ forecast values, 1..16). ``level``,
    ``n_boot``: the paired bootstrap (module docstring). ``units``: kernel ``"pilot"`` only,
    the ``(offset, scale)`` your model will normalise with (:func:`pilot_kernel`). ``chunk``:
    trajectories per batch (memory O(chunk · T · C)). ``progress``: a tqdm bar on stderr.
    Results are deterministic for a given ``seed`` and ``chunk``.
    """
    t0 = time.perf_counter()
    X = _as_trajectories(trajectories)
    n, T, C = X.shape
    if not callable(measure):
        raise DriftCheckError(f"measure: got {type(measure).__name__}; expected a callable "
                              "(n, T, C) -> (n,)")
    name = measure_name or _name_of(measure)
    draws = _draws(draws, n)
    n_boot = _int_option(n_boot, "n_boot", 10)
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise DriftCheckError(f"level: got {level!r}; expected a probability in (0, 1)")
    n_ref, chunk = reference_size(n, n_ref), _int_option(chunk, "chunk", 1)

    from tqdm.auto import tqdm

    with tqdm(total=n * (1 + draws), unit="traj", unit_scale=True, disable=not progress,
              file=sys.stderr, desc="drift check", leave=False) as bar:
        bar.set_description("drift check: measuring the data")
        q_data = _measure_data(measure, X, name, chunk, bar)
        bins_ = _make_bins(bins, q_data)
        g_kernel = make_rng(seed, "driftcheck", "kernel")
        bar.set_description("drift check: data spacing and scale")
        spacing = _spacing(X, make_rng(seed, "driftcheck", "spacing"))
        X_loc = _locality_rows(X, seed)
        if isinstance(kernel, str) and kernel == "pilot":
            bar.set_description("drift check: training the pilot")
            kern, choice = _pilot(X, scale, units, seed, progress)
        elif units is not None:
            raise DriftCheckError(f"units: got {units!r}; only kernel 'pilot' trains in units "
                                  f"(kernel {kernel!r} perturbs the data in its own units)")
        else:
            kern, choice = _resolve_kernel(kernel, scale, X, X_loc, length, k, psd, n_ref,
                                           make_rng(seed, "driftcheck", "scale"), spacing)
        user_kernel = isinstance(kernel, kernels.Kernel)
        loc = kernels.locality(X_loc, _sample(kern, X_loc, make_rng(seed, "driftcheck", "loc"),
                                              user_kernel), spacing) \
            if spacing > 0 else float("nan")
        q_fore = np.empty((n, draws))
        bar.set_description("drift check: forecast")
        for s in range(0, n, chunk):
            Xc = np.ascontiguousarray(X[s:s + chunk])
            for d in range(draws):
                Xp = _sample(kern, Xc, g_kernel, user_kernel)
                q_fore[s:s + len(Xc), d] = _call_measure(measure, Xp, name, "perturbed")
                bar.update(len(Xc))
    boot = _paired_bootstrap(q_data, q_fore, bins_, n_boot, float(level),
                             make_rng(seed, "driftcheck", "bootstrap"))
    p_data, p_fore = metrics.histogram(q_data, bins_), metrics.histogram(q_fore, bins_)
    fin = np.isfinite(q_fore)
    return DriftCheck(
        bins=bins_, n=n, T=T, C=C, draws=draws, measure=name, kernel=choice.kernel,
        kernel_repr=repr(kern), scale=choice, locality=loc, spacing=float(spacing), level=level,
        n_boot=n_boot, seed=seed, p_data=p_data, p_data_band=boot["p_data"],
        p_forecast=p_fore, p_forecast_band=boot["p_forecast"],
        delta=metrics.mass_shift(p_fore, p_data), delta_band=boot["delta"],
        tv=metrics.tv(p_fore, p_data), tv_band=boot["tv"], w1=metrics.w1(q_fore, q_data),
        mean_data=float(q_data.mean()), mean_forecast=float(q_fore[fin].mean()) if fin.any()
        else float("nan"), mean_shift_band=boot["mean_shift"], n_nonfinite=int((~fin).sum()),
        seconds=time.perf_counter() - t0, q_data=q_data, q_forecast=q_fore)


@dataclass
class DriftCheck:
    """The result of :func:`check`. Histograms are probabilities on ``bins`` (length bins.n + 2:
    underflow, the n bins, overflow); ``*_band`` are (lo, hi) pairs of the central ``level``
    bootstrap interval (for ``tv_band``: of the bootstrap TV, biased upward by noise; see
    ``tv_beyond_noise``); ``delta`` = p_forecast − p_data. ``tv``: total variation between the
    two histograms; ``w1``: 1-Wasserstein distance between forecast and data q (units of q, finite
    values); means in units of q. ``locality``: how far the kernel moved data, in data spacings
    (``spacing``, flattened Euclidean, data units). ``q_data`` (n,), ``q_forecast`` (n, draws)."""

    bins: metrics.Bins
    n: int
    T: int
    C: int
    draws: int
    measure: str
    kernel: str
    kernel_repr: str
    scale: ScaleChoice
    locality: float
    spacing: float
    level: float
    n_boot: int
    seed: int
    p_data: np.ndarray
    p_data_band: tuple
    p_forecast: np.ndarray
    p_forecast_band: tuple
    delta: np.ndarray
    delta_band: tuple
    tv: float
    tv_band: tuple
    w1: float
    mean_data: float
    mean_forecast: float
    mean_shift_band: tuple
    n_nonfinite: int
    seconds: float
    q_data: np.ndarray = field(repr=False)
    q_forecast: np.ndarray = field(repr=False)

    @property
    def change(self) -> np.ndarray:
        """Per bin (bins.n + 2,): +1 gains beyond noise (the bootstrap interval of Δ is above 0),
        −1 loses beyond noise (below 0), 0 otherwise."""
        lo, hi = self.delta_band
        return (lo > 0).astype(int) - (hi < 0).astype(int)

    @property
    def gains(self) -> np.ndarray:
        """Indices of the bins that gain mass beyond noise."""
        return np.flatnonzero(self.change > 0)

    @property
    def losses(self) -> np.ndarray:
        """Indices of the bins that lose mass beyond noise."""
        return np.flatnonzero(self.change < 0)

    @property
    def tv_beyond_noise(self) -> float:
        """½ Σ |Δ| over the bins that change beyond noise: the part of ``tv`` the bootstrap test
        supports. (``tv_band`` is the bootstrap range of TV, which noise biases upward.)"""
        return 0.5 * float(np.abs(self.delta[self.change != 0]).sum())

    @property
    def mean_shift(self) -> float:
        return self.mean_forecast - self.mean_data

    @property
    def caveat(self) -> str | None:
        """The caveat printed when the scale (or a pilot's units) is the companion's default,
        else None."""
        if not self.scale.default:
            return None
        return _PILOT_CAVEAT if self.kernel == "pilot" else _CAVEAT.format(loc=self.scale.locality)

    def to_frame(self):
        """One row per bin: label, lo/hi edges (−inf/inf for under/overflow) and centre in units
        of q, p_data, p_forecast and delta with their bands (``_lo``/``_hi``), and ``change``
        ("gain", "loss" or "")."""
        import pandas as pd

        e = self.bins.edges
        rows = {"bin": self.bins.labels, "lo": np.r_[-np.inf, e], "hi": np.r_[e, np.inf],
                "center": self.bins.centers}
        for key in ("p_data", "p_forecast", "delta"):
            rows[key] = getattr(self, key)
            rows[f"{key}_lo"], rows[f"{key}_hi"] = getattr(self, f"{key}_band")
        rows["change"] = np.array(["loss", "", "gain"])[self.change + 1]
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """A few lines of text: what was checked, where mass goes, how much and how sure."""
        pct = int(round(self.level * 100))
        sc = self.scale
        lines = [f"drift check: {self.n:,} trajectories (T={self.T}, C={self.C}), measure "
                 f"{self.measure}, kernel {self.kernel} at scale {sc.value:.4g} ({sc.source}; "
                 f"moves data {self.locality:.3g} data spacings), {self.draws} draw(s) each",
                 f"forecast moves {self.tv:.1%} of the mass (TV {self.tv:.4f}; "
                 f"{self.tv_beyond_noise:.1%} in bins that change beyond noise); W1 "
                 f"{self.w1:.4g}; mean "
                 f"{self.mean_data:.4g} -> {self.mean_forecast:.4g} ({self.mean_shift:+.4g}, {pct}%"
                 f" interval {self.mean_shift_band[0]:+.4g}..{self.mean_shift_band[1]:+.4g})"]
        labels, (lo, hi) = self.bins.labels, self.delta_band
        for word, idx in (("gains", self.gains), ("losses", self.losses)):
            top = idx[np.argsort(-np.abs(self.delta[idx]))][:5]
            parts = [f"{labels[i]} {self.delta[i]:+.2%} ({lo[i]:+.2%}..{hi[i]:+.2%})" for i in top]
            more = f" and {len(idx) - len(top)} more" if len(idx) > len(top) else ""
            lines.append(f"{word} beyond noise: " + (", ".join(parts) + more if parts else "none"))
        lines.append(f"{len(self.gains) + len(self.losses)} of {self.bins.n + 2} bins change "
                     f"beyond noise ({pct}% paired bootstrap interval of the per-bin difference "
                     f"excludes 0, {self.n_boot} resamples)")
        if self.n_nonfinite:
            lines.append(f"{self.n_nonfinite} perturbed trajectories had a non-finite q (counted "
                         "in the underflow/overflow bins)")
        if self.caveat:
            lines.append("caveat: " + self.caveat)
        return "\n".join(lines)

    def chart(self):
        """Altair chart (companion theme): data histogram (grey bars) and forecast (points with
        bootstrap bands) over q, above the per-bin difference with its band, coloured where it
        changes beyond noise. Under/overflow bins are drawn half a bin outside the support."""
        import altair as alt

        from . import plots

        df = self.to_frame().drop(columns=["lo", "hi"])   # ±inf edges are not JSON
        w = self.bins.width
        df["x0"], df["x1"], df["zero"] = df["center"] - w / 2, df["center"] + w / 2, 0.0
        df["status"] = df["change"].replace({"": "within noise"})
        xs = alt.Scale(zero=False, nice=False)
        tip = ["bin", alt.Tooltip("p_data:Q", format=".4f"),
               alt.Tooltip("p_forecast:Q", format=".4f"), alt.Tooltip("delta:Q", format="+.4f"),
               "change"]
        C = plots.COLORS
        bars = alt.Chart(df).mark_bar(color=C["prior"], opacity=0.6).encode(
            x=alt.X("x0:Q", title=self.measure, scale=xs), x2="x1",
            y=alt.Y("p_data:Q", title="probability"), y2="zero:Q", tooltip=tip)
        err = alt.Chart(df).mark_rule(color=C["kernel"]).encode(
            x="center:Q", y="p_forecast_lo:Q", y2="p_forecast_hi:Q")
        pts = alt.Chart(df).mark_point(color=C["kernel"], filled=True).encode(
            x="center:Q", y="p_forecast:Q", tooltip=tip)
        top = alt.layer(bars, err, pts).properties(
            width=420, height=200, title=f"data (grey bars) and forecast (points: {self.kernel} "
            f"kernel, {self.locality:.2g} data spacings)")
        color = alt.Color("status:N", title=None, scale=alt.Scale(
            domain=["gain", "loss", "within noise"], range=[C["model"], C["alt3"], C["prior"]]))
        dbar = alt.Chart(df).mark_bar().encode(
            x=alt.X("x0:Q", title=self.measure, scale=xs), x2="x1",
            y=alt.Y("delta:Q", title="forecast − data"), y2="zero:Q", color=color, tooltip=tip)
        derr = alt.Chart(df).mark_rule(color="black").encode(
            x="center:Q", y="delta_lo:Q", y2="delta_hi:Q")
        bottom = alt.layer(dbar, derr).properties(
            width=420, height=140, title=f"change per bin ({round(self.level * 100)}% "
            "bootstrap band; outer bars: below / above the bins)")
        return alt.vconcat(top, bottom)

    def _html(self, chart_html: str) -> str:
        """The report page: vl-convert's self-contained chart page with a header (summary,
        caveat) before the chart and the table after it."""
        df = self.to_frame()
        head = ["bin", "p_data", "p_forecast", "delta", f"delta {round(self.level * 100)}% band",
                "change"]
        rows = []
        for r in df.itertuples(index=False):
            cls = f' class="{r.change}"' if r.change else ""
            rows.append(f"<tr{cls}><td>{html.escape(r.bin)}</td><td>{r.p_data:.4f}</td>"
                        f"<td>{r.p_forecast:.4f}</td><td>{r.delta:+.4f}</td>"
                        f"<td>{r.delta_lo:+.4f} .. {r.delta_hi:+.4f}</td><td>{r.change}</td></tr>")
        table = ('<table class="drift"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
                 + "</tr></thead><tbody>" + "\n".join(rows) + "</tbody></table>")
        caveat = f'<p class="caveat"><b>Caveat.</b> {html.escape(self.caveat)}</p>' \
            if self.caveat else ""
        style = ("<style>body{font-family:'DejaVu Sans',sans-serif;margin:1.5em;max-width:60em}"
                 "pre{white-space:pre-wrap}table.drift{border-collapse:collapse;font-size:13px}"
                 "table.drift td,table.drift th{border:1px solid #ccc;padding:2px 8px;"
                 "text-align:right}tr.gain{background:#dbeaf5}tr.loss{background:#f8e0d4}"
                 ".caveat{background:#fff4d6;padding:.6em;border-left:4px solid #E69F00}</style>")
        header = (f"{style}<h1>Drift check: {html.escape(self.measure)}</h1>"
                  f"<pre>{html.escape(self.summary())}</pre>{caveat}")
        marker = '<div id="vega-chart"></div>'
        page = chart_html.replace("<title>Chart</title>", "<title>Drift check</title>", 1)
        if page.count(marker) != 1:   # an unexpected vl-convert page: fall back to no chart
            return f"<!DOCTYPE html><html><body>{header}{table}</body></html>"
        return page.replace(marker, f"{header}{marker}<h2>Per bin</h2>{table}", 1)

    def save(self, path: str | Path, scale: float = 2.0) -> dict[str, Path]:
        """Write the report ``path`` (.html: self-contained, chart + summary + table, and the
        caveat when the scale was the default) with ``.png`` (the chart) and ``.csv`` (``to_frame``)
        beside it. Everything is rendered before any file is touched and each file is written
        atomically; if a write fails, the files this call already wrote are removed. Returns
        {"html", "png", "csv"} paths."""
        import vl_convert as vlc

        out = check_output_path(path)
        spec = self.chart().to_json()
        png = vlc.vegalite_to_png(spec, scale=scale)
        page = self._html(vlc.vegalite_to_html(spec, bundle=True)).encode()
        buf = io.StringIO()
        self.to_frame().to_csv(buf, index=False, float_format="%.6g", lineterminator="\n")
        paths = {"csv": out.with_suffix(".csv"), "png": out.with_suffix(".png"), "html": out}
        blobs = {"csv": buf.getvalue().encode(), "png": png, "html": page}
        from .cache import atomic_write_bytes

        done = []
        try:
            for key in ("csv", "png", "html"):
                atomic_write_bytes(paths[key], blobs[key])
                done.append(paths[key])
        except OSError as exc:
            for p in done:
                p.unlink(missing_ok=True)
            raise DriftCheckError(f"cannot write the report {paths[key]}: {exc.strerror or exc}; "
                                  "expected a path in a writable folder") from None
        return paths


def check_output_path(path: str | Path) -> Path:
    """Validate a report path before any work: it must end in .html, not be a folder, and its
    nearest existing parent must be a folder where a file can be created (tested by creating and
    removing a temporary file). Returns it as a Path."""
    p = Path(path)
    expected = "expected a path such as report.html in a writable folder"
    if p.suffix.lower() != ".html":
        raise DriftCheckError(f"output {str(p)!r} does not end in .html; {expected}")
    if p.is_dir():
        raise DriftCheckError(f"output {str(p)!r} is a folder; {expected}")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DriftCheckError(f"cannot write {str(p)!r}: {str(parent)!r} is not a folder; "
                              f"{expected}")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".driftcheck.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise DriftCheckError(f"cannot write {str(p)!r}: {exc.strerror or exc} in "
                              f"{str(parent)!r}; {expected}") from None
    return p


# ----------------------------------------------------------------------------- files and measures

def _split_key(spec: str) -> tuple[Path, str | None]:
    """``FILE.npz:KEY`` -> (FILE.npz, KEY); anything else -> (path, None)."""
    head, sep, key = str(spec).rpartition(":")
    if sep and head.lower().endswith(".npz"):
        return Path(head), key
    return Path(spec), None


def _long_format(df, path: Path) -> np.ndarray:
    """Trajectories (n, T, C) float32 from a long table: columns id, t, then one per channel;
    every id must have the same t values (rows are sorted by id, then t)."""
    import pandas as pd

    expected = "expected long format: columns id, t, then one column per channel"
    if len(df) == 0:
        raise DriftCheckError(f"{path}: the table has no rows; {expected}")
    missing = [c for c in ("id", "t") if c not in df.columns]
    channels = [c for c in df.columns if c not in ("id", "t")]
    if missing or not channels:
        raise DriftCheckError(f"{path}: columns {list(map(str, df.columns))}; {expected}")
    for c in ["t", *channels]:
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise DriftCheckError(f"{path}: column {c!r} is not numeric; {expected}")
    df = df.sort_values(["id", "t"], kind="stable")
    counts = df.groupby("id", sort=False).size().to_numpy()
    if (counts != counts[0]).any():
        i = int(np.flatnonzero(counts != counts[0])[0])
        ids = df["id"].drop_duplicates().to_numpy()
        raise DriftCheckError(f"{path}: id {ids[i]!r} has {counts[i]} rows, id {ids[0]!r} has "
                              f"{counts[0]}; expected the same t values for every id")
    n, T = len(counts), int(counts[0])
    t = df["t"].to_numpy().reshape(n, T)
    if (t != t[0]).any() or (np.diff(t[0]) == 0).any():
        raise DriftCheckError(f"{path}: the ids do not all have the same, distinct t values; "
                              "expected one row per (id, t) and the same t values for every id")
    return df[channels].to_numpy(np.float32).reshape(n, T, len(channels))


def load_trajectories(spec: str | Path) -> np.ndarray:
    """Trajectories (n, T, C) from a file: ``.npy`` (memory-mapped copy-on-write, not read into
    memory), ``.npz`` (``FILE.npz:KEY``; the key may be left out when the file holds one array),
    ``.csv`` or ``.parquet`` (needs pyarrow) in long format. Shapes are checked by
    :func:`check`; file problems raise :class:`DriftCheckError`."""
    path, key = _split_key(spec)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz", ".csv", ".parquet"):
        raise DriftCheckError(f"{path}: unknown file type {suffix or '(none)'!r}; expected "
                              f"{FORMATS}")
    if not path.is_file():
        raise DriftCheckError(f"{path}: no such file; expected {FORMATS}")
    if path.stat().st_size == 0:
        raise DriftCheckError(f"{path}: the file is empty; expected {FORMATS}")
    if key is not None and suffix != ".npz":
        raise DriftCheckError(f"{spec}: only .npz files take a :KEY")
    try:
        if suffix == ".npy":
            return np.load(path, mmap_mode="c", allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names = list(z.files)
                if not names:
                    raise DriftCheckError(f"{path}: the archive holds no arrays; expected an "
                                          ".npz with an (n, T, C) array")
                if key is None and len(names) > 1:
                    raise DriftCheckError(f"{path}: holds {len(names)} arrays ({', '.join(names)})"
                                          f"; name one as {path}:KEY")
                key = names[0] if key is None else key
                if key not in names:
                    raise DriftCheckError(f"{path}: no array {key!r}; arrays: {', '.join(names)}"
                                          f" (use {path}:KEY)")
                return z[key]
        import pandas as pd

        if suffix == ".csv":
            return _long_format(pd.read_csv(path), path)
        if importlib.util.find_spec("pyarrow") is None:
            raise DriftCheckError(f"{path}: reading .parquet needs pyarrow (pip install pyarrow);"
                                  " or save the data as .npy, .npz or .csv")
        return _long_format(pd.read_parquet(path, engine="pyarrow"), path)
    except DriftCheckError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DriftCheckError(f"{path}: cannot read it as {suffix} ({msg}); expected "
                              f"{FORMATS}") from None
    except Exception as exc:  # parser errors of pandas/pyarrow have their own classes
        if type(exc).__module__.split(".")[0] not in ("pandas", "pyarrow"):
            raise
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DriftCheckError(f"{path}: cannot read it as {suffix} ({msg}); expected "
                              f"{FORMATS}") from None


def resolve_measure(spec: str) -> Callable[[np.ndarray], np.ndarray]:
    """The measure named by ``spec``: ``task:NAME`` (a companion task's ``measure``, e.g.
    ``task:cone`` is travel distance), ``module:function`` (attributes may be dotted), or
    ``path/to/file.py:function``. A Task instance or class found there gives its ``measure``; a
    task module without a ``measure`` function (``paper_lib.tasks.sine:measure``) gives the
    measure of its one Task class."""
    from .tasks import Task, get_task

    expected = "expected module:function, path/to/file.py:function or task:NAME"
    mod_name, sep, attr = str(spec).partition(":")
    if not sep or not mod_name or not attr:
        raise DriftCheckError(f"measure {spec!r}: {expected}")
    if mod_name == "task":
        try:
            return get_task(attr).measure
        except ValueError as exc:
            raise DriftCheckError(f"measure {spec!r}: {exc}") from None
    try:
        if mod_name.endswith(".py"):
            if not Path(mod_name).is_file():
                raise DriftCheckError(f"measure {spec!r}: no such file {mod_name!r}; {expected}")
            s = importlib.util.spec_from_file_location(Path(mod_name).stem, mod_name)
            mod = importlib.util.module_from_spec(s)
            s.loader.exec_module(mod)
        else:
            mod = importlib.import_module(mod_name)
    except DriftCheckError:
        raise
    except Exception as exc:
        raise DriftCheckError(f"measure {spec!r}: cannot import {mod_name!r} "
                              f"({type(exc).__name__}: {exc}); {expected}") from None
    obj = mod
    for part in attr.split("."):
        if isinstance(obj, type) and issubclass(obj, Task):
            obj = obj()
        if not hasattr(obj, part):
            obj = None
            break
        obj = getattr(obj, part)
    if obj is None and attr == "measure":
        found = [v for v in vars(mod).values() if isinstance(v, type) and issubclass(v, Task)
                 and v is not Task and v.__module__ == mod.__name__]
        if len(found) == 1:
            obj = found[0]
    if isinstance(obj, type) and issubclass(obj, Task):
        obj = obj()
    if isinstance(obj, Task):
        obj = obj.measure
    if obj is None:
        raise DriftCheckError(f"measure {spec!r}: {mod_name!r} has no attribute {attr!r}; "
                              f"{expected}")
    if not callable(obj):
        raise DriftCheckError(f"measure {spec!r}: {type(obj).__name__} is not callable; "
                              f"{expected}")
    return obj

