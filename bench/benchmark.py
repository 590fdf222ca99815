"""Timing benchmark of the companion: ``python bench/benchmark.py`` (or ``make bench``), a script
beside the library (it is not part of ``paper_lib``); the reference U-Nets are loaded by
``bench/references.py``.

Everything is measured in one run, so that the ratios hold on a noisy machine:

1. **training step** (trajectories/s) of our ``diffusion-unet`` at the profile's size (default:
   width 16, mults (1, 2, 4), T = 64, C = 2 for the cone task, batch 128) against two reference
   1D U-Nets with the same channels, horizon and batch and about the same parameter count:
   ``denoising_diffusion_pytorch.Unet1D`` (``dim``/``dim_mults`` chosen to match) and
   ``diffusers.UNet1DModel`` in the Diffuser (Janner et al.) configuration (``block_out_channels``
   chosen to match). Each step is what ``paper_lib.models.train`` does: a batch drawn from the
   data, the x0-prediction loss (``diffusion_loss``), backward, gradient clipping, the learning
   rate schedule, an AdamW step and the EMA update; only the network differs. After warm-up, the
   models are timed in interleaved repetitions (order rotated each time) and the median is
   reported. Then our step on one thread, alone and in ``parallel.workers()`` processes at once:
   how ``models.fit`` trains (single-threaded, models side by side);
2. **FLOPs per training step** (forward + backward, ``torch.utils.flop_counter``; matmuls and
   convolutions only) and the achieved FLOP/s against the machine's float32 GEMM rate (an
   ``n × n`` matmul timed in the same run, half before and half after the training steps);
3. **sampling**: DDPM with all K steps against DDIM with fewer steps, trajectories/s, on the
   profile's standard cone ``diffusion-unet`` (``drift.standard_run``, loaded from the cache when
   it is there), with the TV between their q-histograms next to the TV between two DDPM sample
   sets of different seeds (the noise reference): faster sampling must not change the science;
4. **kernels**: the time of a kernel prediction (``kernels.predict`` over ``kernel_n``
   trajectories × ``kernel_draws``, computed, never loaded from the cache) of every family
   (``denoise`` at the smallest t*) against train + DDPM-sample time of the model it predicts;
   the one-off setup of ``spectral`` (residual spectrum) and ``neighbour`` (kNN index) is
   reported and counted separately;
5. **notebooks**: every notebook executed as ``make figures`` does (``paper_lib.runnb``), first
   with a fresh empty cache (cold) and then again (warm), with wall time and peak memory per
   notebook and in total. Cache and figure output go to a temporary folder
   (``PAPER_LIB_CACHE``/``PAPER_LIB_FIGURES``), never to ``figures/``. Skipped by
   ``--skip-figures`` and ``--quick``; ``--notebook-timings COLD WARM`` reports two timings
   tables of ``make figures`` runs instead (``build/default/timings.csv`` after a run on an empty
   cache and after a rerun), so the figures need not be regenerated twice.

The results go to ``bench/results.csv`` in long format (``group, item, metric, value, unit,
note``; package versions in ``note``) and are printed as a table with the targets (make figures
cold ≤ 20 min and warm ≤ 10 s, our U-Net step at least as fast as both references, utilisation
≥ 20%, data-only kernels ≥ 100× cheaper than train + sample) marked PASS or FAIL.

``--quick`` runs every part but the notebooks at the ``smoke`` sizes in a temporary cache, in
seconds, to check that the benchmark works (``--with-figures`` adds the notebooks); its numbers
mean nothing and go to ``build/bench/results-quick.csv``. The reference U-Nets come with the
``bench`` extra (``pip install -e '.[bench]'``); without them their rows say "not installed"
and the rest runs.

torch uses its default thread count (``torch.get_num_threads()``, reported; ``--threads`` to
set it) and deterministic mode, as the notebooks do (``seeding.seed_everything``).
"""
from __future__ import annotations

import argparse
import copy
import io
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import references  # bench/references.py, beside this script
from paper_lib.profiles import Profile

__all__ = ["BenchConfig", "FULL", "QUICK", "Rows", "TARGETS", "make_train_step",
           "time_interleaved", "flops_per_step", "gemm_rates", "bench_training", "bench_sampling",
           "bench_side_by_side", "bench_kernels", "bench_figures", "figures_from_timings",
           "add_targets", "format_table", "main"]

ROOT = Path(__file__).resolve().parents[1]
TASK = "cone"
KIND = "diffusion-unet"
DATA_ONLY = ("white", "smooth", "spectral", "neighbour")


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of one benchmark run. Model and data sizes come from ``profile`` (a name or a
    ``Profile``; :func:`run` resolves it once, and every part below receives the ``Profile``)."""

    profile: "str | Profile" = "default"
    warmup: int = 5            # training steps per model before timing
    reps: int = 7              # timed repetitions per model (median reported)
    steps_per_rep: int = 10    # training steps per repetition
    gemm_n: int = 2048         # matmul size of the GEMM reference
    gemm_reps: int = 10
    ddim_steps: int = 20
    sample_seeds: tuple[int, ...] = (0, 1)  # sample sets per sampler (>= 2: noise reference)
    kernel_reps: int = 3       # timed predictions per kernel (median reported)
    locality: float = 1.0      # data-only kernels are timed at the scale moving data this far
    figures: bool = True
    references: bool = True    # time the reference U-Nets when their packages are installed
    quick: bool = False


FULL = BenchConfig()
QUICK = BenchConfig(profile="smoke", warmup=1, reps=3, steps_per_rep=2, gemm_n=256, gemm_reps=4,
                    ddim_steps=5, kernel_reps=1, figures=False, quick=True)


# ----------------------------------------------------------------------------- result rows

class Rows:
    """The long-format result table: one dict per (group, item, metric)."""

    columns = ["group", "item", "metric", "value", "unit", "note"]

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, group: str, item: str, metric: str, value=float("nan"), unit: str = "",
            note: str = "") -> None:
        value = float("nan") if value is None else float(value)
        self.rows.append({"group": group, "item": item, "metric": metric, "value": value,
                          "unit": unit, "note": note})

    def get(self, group: str, item: str, metric: str, default=float("nan")) -> float:
        for r in reversed(self.rows):
            if (r["group"], r["item"], r["metric"]) == (group, item, metric):
                return r["value"]
        return default

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def write(self, path: str | Path) -> Path:
        from paper_lib.cache import atomic_write_bytes

        buf = io.StringIO()
        self.frame().to_csv(buf, index=False, float_format="%.6g", lineterminator="\n")
        path = Path(path)
        atomic_write_bytes(path, buf.getvalue().encode())
        return path


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if v == 0 or 1e-3 <= abs(v) < 1e6:
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return f"{v:.3e}"


def format_table(rows: Rows) -> str:
    """The rows as an aligned text table, one block per group."""
    out = []
    groups = list(dict.fromkeys(r["group"] for r in rows.rows))
    for g in groups:
        rs = [r for r in rows.rows if r["group"] == g]
        cells = [(r["item"], r["metric"], _fmt(r["value"]), r["unit"], r["note"]) for r in rs]
        w = [max(len(c[i]) for c in cells) for i in range(4)]
        out.append(f"== {g} ==")
        for c in cells:
            out.append(f"  {c[0]:<{w[0]}}  {c[1]:<{w[1]}}  {c[2]:>{w[2]}} {c[3]:<{w[3]}}  {c[4]}"
                       .rstrip())
    return "\n".join(out)


def _log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- timing primitives

def _channels_first(net, attr: str | None = None):
    """Wrap a network taking (B, C, T) so it takes (B, T, C) like ours (``attr``: the field of
    the output holding the tensor, e.g. diffusers' ``sample``)."""
    import torch

    class ChannelsFirst(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = net

        def forward(self, x, t):
            y = self.inner(x.transpose(1, 2), t)
            y = getattr(y, attr) if attr else y
            return y.transpose(1, 2)

    return ChannelsFirst()


def make_train_step(net, spec, data, seed: int = 0):
    """A function doing one training step of ``paper_lib.models.train`` on ``net`` (a denoiser
    mapping (x_t (B, T, C), t (B,)) to (B, T, C)): batch from ``data`` (model units, (n, T, C)
    tensor), ``diffusion_loss``, backward, gradient clipping, learning rate, AdamW, EMA.
    Returns the loss."""
    import torch

    from paper_lib.models.diffusion import make_schedule
    from paper_lib.models.train import train_step

    sched = make_schedule(spec)
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    state = {"step": 0}
    net.train()

    def step() -> float:
        loss = train_step(net, ema, opt, data, gen, spec, sched, state["step"] % spec.train_steps)
        state["step"] += 1
        return float(loss.detach())

    return step


def time_interleaved(steps: dict, per_call: int, warmup: int, reps: int,
                     calls_per_rep: int) -> dict[str, list[float]]:
    """Items per second of each function in ``steps`` (name -> callable doing ``per_call``
    items): ``warmup`` calls each, then ``reps`` rounds in which every function is timed over
    ``calls_per_rep`` calls, the order rotated each round. Returns name -> rates (one per rep)."""
    names = list(steps)
    for name in names:
        for _ in range(warmup):
            steps[name]()
    rates = {name: [] for name in names}
    for r in range(reps):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter()
            for _ in range(calls_per_rep):
                steps[name]()
            rates[name].append(per_call * calls_per_rep / (time.perf_counter() - t0))
    return rates


def flops_per_step(step) -> float:
    """FLOPs of one call of ``step`` (forward and backward): ``paper_lib.cost.counted``, the
    count behind the notebooks' cost fractions (matmuls and convolutions; element-wise work and
    the optimiser are not counted)."""
    from paper_lib.cost import counted

    return counted(step)


def gemm_rates(n: int, reps: int, warmup: int = 2) -> list[float]:
    """FLOP/s of ``reps`` float32 ``n × n`` matmuls (2 n³ FLOPs each) after ``warmup``."""
    import torch

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    c = torch.empty(n, n)
    for _ in range(warmup):
        torch.mm(a, b, out=c)
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        rates.append(2.0 * n ** 3 / (time.perf_counter() - t0))
    return rates


# ----------------------------------------------------------------------------- 1 + 2: training

def bench_training(cfg: BenchConfig, rows: Rows) -> None:
    """Training-step throughput, FLOPs and utilisation of ours and the references."""
    import torch

    from paper_lib import models
    from paper_lib.datasets import make_dataset
    from paper_lib.seeding import seed_everything
    from paper_lib.tasks import get_task

    P = cfg.profile
    task = get_task(TASK)
    spec = models.make_spec(KIND, P)
    T, C = task.T, task.C
    data = torch.as_tensor(task.to_model(make_dataset(task, P.n_train).X))
    seed_everything(0)
    torch.manual_seed(0)
    ours = models.build(spec, T, C)
    n_ours = models.count_params(ours)
    nets = {"diffusion-unet": (ours, f"ours: width {spec.width}, mults {spec.mults}, "
                                     f"depth {spec.depth}, kernel {spec.kernel_size}")}
    counts = {"diffusion-unet": n_ours}
    if cfg.references:
        Unet1D, note = references.ddp_unet1d()
        if Unet1D is None:
            rows.add("train", "ddp-Unet1D", "trajectories_per_s", note=note)
        else:
            kw, n = references.closest_ddp_config(Unet1D, n_ours, C, len(spec.mults))
            torch.manual_seed(0)
            nets["ddp-Unet1D"] = (_channels_first(Unet1D(**kw, channels=C)),
                                  f"{note}; dim={kw['dim']}, dim_mults={kw['dim_mults']}")
            counts["ddp-Unet1D"] = n
        UNet1DModel, note = references.diffusers_unet1d()
        if UNet1DModel is None:
            rows.add("train", "diffusers-UNet1DModel", "trajectories_per_s", note=note)
        else:
            chans, n = references.closest_diffusers_config(UNet1DModel, n_ours, T, C, len(spec.mults))
            torch.manual_seed(0)
            nets["diffusers-UNet1DModel"] = (
                _channels_first(references.diffusers_model(UNet1DModel, chans, T, C), "sample"),
                f"{note}; block_out_channels={chans}, Diffuser/RL configuration")
            counts["diffusers-UNet1DModel"] = n

    steps, flops = {}, {}
    for name, (net, _) in nets.items():
        steps[name] = make_train_step(net, spec, data, seed=0)
        with torch.no_grad():  # the shapes agree with ours before anything is timed
            x = data[:2]
            y = net(x, torch.zeros(2, dtype=torch.long))
            if y.shape != x.shape:
                raise RuntimeError(f"{name}: output {tuple(y.shape)} for input {tuple(x.shape)}")
        flops[name] = flops_per_step(steps[name])  # also the first warm-up step

    _log(f"GEMM {cfg.gemm_n}x{cfg.gemm_n}, then training steps of {', '.join(nets)} "
         f"({cfg.reps} x {cfg.steps_per_rep} steps each, batch {spec.batch_size})")
    gemm = gemm_rates(cfg.gemm_n, cfg.gemm_reps - cfg.gemm_reps // 2)
    rates = time_interleaved(steps, spec.batch_size, cfg.warmup, cfg.reps, cfg.steps_per_rep)
    gemm += gemm_rates(cfg.gemm_n, cfg.gemm_reps // 2)
    peak = float(np.median(gemm))
    rows.add("flops", "gemm", "float32_flop_per_s", peak, "FLOP/s",
             f"median of {len(gemm)} {cfg.gemm_n}x{cfg.gemm_n} matmuls (half before, half after "
             f"the training steps); best {max(gemm):.4g}")

    shape = f"T={T}, C={C}, batch {spec.batch_size}, K={spec.diffusion_steps}, x0-prediction"
    for name, (net, note) in nets.items():
        med = float(np.median(rates[name]))
        rows.add("train", name, "params", counts[name], "", note)
        rows.add("train", name, "trajectories_per_s", med, "traj/s",
                 f"median of {cfg.reps} x {cfg.steps_per_rep} steps; {shape}; range "
                 f"{min(rates[name]):.4g}-{max(rates[name]):.4g}")
        rows.add("train", name, "step_ms", 1000 * spec.batch_size / med, "ms")
        if name != "diffusion-unet":
            rows.add("train", name, "ratio_ours_over_ref",
                     float(np.median(rates["diffusion-unet"])) / med, "x",
                     f"params ours {n_ours} / ref {counts[name]} "
                     f"({100 * (counts[name] / n_ours - 1):+.1f}%)")
        achieved = flops[name] * med / spec.batch_size
        rows.add("flops", name, "flops_per_step", flops[name], "FLOP",
                 "forward + backward, FlopCounterMode")
        rows.add("flops", name, "achieved_flop_per_s", achieved, "FLOP/s")
        rows.add("flops", name, "utilisation", achieved / peak, "fraction", "achieved / GEMM")
    bench_side_by_side(cfg, rows, float(np.median(rates["diffusion-unet"])),
                       flops["diffusion-unet"] / spec.batch_size, peak)


def _single_thread_rate(profile: Profile, steps: int, warmup: int) -> float:
    """Trajectories/s of our U-Net's training step on one thread (run in a worker process)."""
    import torch

    from paper_lib import models
    from paper_lib.datasets import make_dataset
    from paper_lib.tasks import get_task

    torch.set_num_threads(1)
    P, task = profile, get_task(TASK)
    spec = models.make_spec(KIND, P)
    data = torch.as_tensor(task.to_model(make_dataset(task, P.n_train).X))
    torch.manual_seed(0)
    step = make_train_step(models.build(spec, task.T, task.C), spec, data, seed=0)
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * spec.batch_size / (time.perf_counter() - t0)


def bench_side_by_side(cfg: BenchConfig, rows: Rows, rate_here: float,
                       flops_per_trajectory: float | None = None, peak: float | None = None) -> None:
    """How ``models.fit`` trains: one thread per model, several models side by side
    (``paper_lib.parallel``). Times our U-Net's step on one thread alone, then in as many
    processes at once as ``parallel.workers()``, against the multi-threaded rate measured above."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from paper_lib.parallel import workers

    n = max(1, workers())
    steps = cfg.reps * cfg.steps_per_rep
    args = (cfg.profile, steps, cfg.warmup)
    with ProcessPoolExecutor(n, mp_context=get_context("spawn")) as ex:   # one pool: start once
        alone = ex.submit(_single_thread_rate, *args).result()
        together = [f.result() for f in [ex.submit(_single_thread_rate, *args)
                                         for _ in range(n)]]
    rows.add("train", "diffusion-unet 1 thread", "trajectories_per_s", alone, "traj/s",
             f"one process, torch.set_num_threads(1), {steps} steps (as models.fit trains)")
    rows.add("train", f"diffusion-unet {n} x 1 thread", "trajectories_per_s", sum(together),
             "traj/s", f"{n} processes at once (paper_lib.parallel), sum of their rates "
             f"({', '.join(f'{r:.0f}' for r in together)})")
    rows.add("train", f"diffusion-unet {n} x 1 thread", "ratio_over_threaded",
             sum(together) / rate_here, "x", f"against one process with "
             f"{rows.get('env', 'torch', 'threads'):.0f} threads (the row diffusion-unet)")
    if flops_per_trajectory and peak:
        rows.add("flops", f"diffusion-unet {n} x 1 thread", "utilisation",
                 sum(together) * flops_per_trajectory / peak, "fraction",
                 "achieved / GEMM, training as models.fit does (side by side)")


# ----------------------------------------------------------------------------- 3: sampling

def bench_sampling(cfg: BenchConfig, rows: Rows) -> dict:
    """DDPM (all K steps) against DDIM (``cfg.ddim_steps``) on the standard cone U-Net.
    Returns ``run``, ``ddpm_seconds`` (median time of ``n_samples`` DDPM samples) and the DDPM
    samples of the first seed."""
    from paper_lib import drift, metrics, models

    P = cfg.profile
    t0 = time.perf_counter()
    run = drift.standard_run(TASK, KIND, P, seed=0)
    tr = run.trained
    origin = "loaded from the cache" if tr.from_cache else \
        f"trained now ({time.perf_counter() - t0:.1f} s)"
    K = tr.spec.diffusion_steps
    steps = min(int(cfg.ddim_steps), K)
    n = P.n_samples
    _log(f"sampling {n} trajectories, DDPM {K} steps and DDIM {steps} steps, seeds "
         f"{list(cfg.sample_seeds)} (model {origin})")
    X, secs = {}, {"ddpm": [], "ddim": []}
    for s in cfg.sample_seeds:
        for sampler in ("ddpm", "ddim"):
            t1 = time.perf_counter()
            X[sampler, s] = models.sample(tr, n, seed=s, sampler=sampler,
                                          steps=steps if sampler == "ddim" else None)
            secs[sampler].append(time.perf_counter() - t1)
    task, bins = run.task, drift.quantity_bins(run.task, P)
    p = {k: metrics.histogram(task.measure(x), bins) for k, x in X.items()}
    prior = metrics.uniform_histogram(bins)
    where = f"{TASK} {KIND}, profile {P.name}, seed 0 ({origin}); n={n}"
    for sampler, label in (("ddpm", f"DDPM {K} steps"), ("ddim", f"DDIM {steps} steps")):
        med = float(np.median(secs[sampler]))
        rows.add("sample", sampler, "trajectories_per_s", n / med, "traj/s",
                 f"{label}; {where}; median of {len(secs[sampler])}")
        rows.add("sample", sampler, "seconds", med, "s", f"{n} trajectories")
        rows.add("sample", sampler, "tv_to_prior",
                 float(np.mean([metrics.tv(p[sampler, s], prior) for s in cfg.sample_seeds])),
                 "TV", "drift: mean over seeds of TV(q-histogram, uniform prior)")
    rows.add("sample", "ddim", "speedup_over_ddpm",
             float(np.median(secs["ddpm"]) / np.median(secs["ddim"])), "x")
    s0, s1 = cfg.sample_seeds[0], cfg.sample_seeds[1 % len(cfg.sample_seeds)]
    noise = metrics.tv(p["ddpm", s0], p["ddpm", s1])
    cross = float(np.mean([metrics.tv(p["ddim", s0], p["ddpm", s1]),
                           metrics.tv(p["ddim", s1], p["ddpm", s0])]))
    rows.add("sample", "ddpm-vs-ddpm", "tv", noise, "TV",
             f"noise reference: DDPM seeds {s0} and {s1}")
    rows.add("sample", "ddim-vs-ddpm", "tv", cross, "TV",
             f"DDIM {steps} against DDPM of the other seed (independent noise), mean of both")
    return {"run": run, "ddpm_seconds": float(np.median(secs["ddpm"])),
            "X": X["ddpm", cfg.sample_seeds[0]]}


# ----------------------------------------------------------------------------- 4: kernels

def bench_kernels(cfg: BenchConfig, rows: Rows, sampled: dict) -> None:
    """Kernel prediction time against train + sample time of the model it predicts. The kernels
    are built as the notebooks build them (``forecast.family_maker`` on the model's
    ``forecast.Target``); data-only kernels at the scale moving the data ``cfg.locality``
    spacings (``kernels.scale_for_locality``)."""
    from paper_lib import forecast, kernels
    from paper_lib.seeding import rng

    P = cfg.profile
    run, X_model = sampled["run"], sampled["X"]
    tr = run.trained
    tg = forecast.make_target(run, X_model, P)
    cost = tr.train_seconds + sampled["ddpm_seconds"]
    cost_note = (f"train {tr.train_seconds:.1f} s "
                 f"({'recorded when trained, from the cache' if tr.from_cache else 'this run'}) "
                 f"+ DDPM {P.n_samples} samples {sampled['ddpm_seconds']:.2f} s (this run)")
    setup_notes = {"spectral": f"residual spectrum of {min(len(X_model), 1000)} samples",
                   "neighbour": "kNN index (k=8)"}
    t_star = min(t for t in P.t_stars if t < tr.spec.diffusion_steps)
    _log(f"kernel predictions: {len(tg.data)} trajectories x {P.kernel_draws} draws "
         f"(denoise at t*={t_star})")
    for family in (*DATA_ONLY, "denoise"):
        t0 = time.perf_counter()
        make = forecast.family_maker(family, tg, X_model, tr)
        setup = time.perf_counter() - t0 if family in setup_notes else 0.0
        if family == "denoise":
            scale, note = t_star, f"t*={t_star}"
        else:
            scale = kernels.scale_for_locality(make, tg.data.X[:forecast.N_LOCALITY], tg.spacing,
                                               cfg.locality, rng(0, "bench-loc", family),
                                               use_cache=False)
            scale = min(scale, 1.0) if family == "neighbour" else scale
            note = f"scale {scale:.4g} (locality {cfg.locality:g})"
        k = make(scale)
        secs = []
        for r in range(cfg.kernel_reps):
            t1 = time.perf_counter()
            kernels.predict(tg.task, tg.data, k, P.kernel_draws, tg.bins,
                            rng(0, "bench-predict", family, r), use_cache=False)
            secs.append(time.perf_counter() - t1)
        pred = float(np.median(secs))
        rows.add("kernel", family, "predict_seconds", pred, "s",
                 f"{len(tg.data)} x {P.kernel_draws} draws, {note}; median of {len(secs)}")
        rows.add("kernel", family, "setup_seconds", setup, "s", setup_notes.get(family, "none"))
        rows.add("kernel", family, "train_plus_sample_seconds", cost, "s", cost_note)
        rows.add("kernel", family, "speedup", cost / pred, "x", "train+sample / predict")
        rows.add("kernel", family, "speedup_with_setup", cost / (pred + setup), "x",
                 "train+sample / (setup + predict)")


# ----------------------------------------------------------------------------- 5: notebooks

def bench_figures(cfg: BenchConfig, rows: Rows, notebooks=None, phases=("cold", "warm")) -> None:
    """Execute every notebook as ``make figures`` does (``paper_lib.runnb``, one after the
    other) with a fresh cache (cold), then again (warm); cache, figures and executed notebooks
    live in a temporary folder, removed afterwards unless a notebook failed."""
    from paper_lib.runnb import read_timings

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")) if notebooks is None \
        else [Path(p) for p in notebooks]
    tmp = Path(tempfile.mkdtemp(prefix="paper_lib_bench_"))
    env = {**os.environ, "PAPER_LIB_CACHE": str(tmp / "cache"),
           "PAPER_LIB_FIGURES": str(tmp / "figures"), "PYTHONHASHSEED": "0"}
    timings = tmp / "timings.csv"
    failed = False
    before = _tree_state(ROOT / "figures")
    threads = env.get("OMP_NUM_THREADS", "unset")
    for phase in phases:
        _log(f"notebooks, {phase} cache: {', '.join(p.stem for p in notebooks)} "
             f"(profile {cfg.profile.name}, in {tmp})")
        total, peak, ok = 0.0, 0.0, True
        for nb in notebooks:
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "paper_lib.runnb", str(nb),
                                str(tmp / phase / f"{nb.stem}.ipynb"), "-p", "profile",
                                cfg.profile.name, "--cwd", str(nb.parent), "--timings", str(timings)],
                               env=env, cwd=ROOT)
            wall = time.perf_counter() - t0
            total += wall
            if r.returncode != 0:
                failed, ok = True, False
                rows.add("notebook", nb.stem, f"{phase}_seconds",
                         note=f"FAILED (exit {r.returncode}); outputs kept in {tmp}")
                continue
            row = read_timings(timings).iloc[-1]
            peak = max(peak, float(row["peak_mib"]))
            rows.add("notebook", nb.stem, f"{phase}_seconds", float(row["seconds"]), "s",
                     f"papermill execution (runnb); profile {cfg.profile.name}; "
                     f"OMP_NUM_THREADS={threads}")
            rows.add("notebook", nb.stem, f"{phase}_wall_seconds", wall, "s",
                     "including the runnb wrapper's start-up")
            rows.add("notebook", nb.stem, f"{phase}_peak_mib", float(row["peak_mib"]), "MiB",
                     "peak RSS of the largest child process (the kernel)")
        note = "all notebooks one after the other (make figures)" + ("" if ok else "; FAILED")
        rows.add("notebook", "make figures", f"{phase}_seconds", total, "s", note)
        rows.add("notebook", "make figures", f"{phase}_peak_mib", peak, "MiB",
                 "largest notebook peak")
    changed = sorted(set(before.items()) ^ set(_tree_state(ROOT / "figures").items()))
    if changed:  # the notebooks are meant to write only under PAPER_LIB_FIGURES
        rows.add("notebook", "figures/", "files_changed", len({p for p, _ in changed}), "",
                 "WARNING: the committed figures/ folder changed during the run: "
                 + ", ".join(sorted({p for p, _ in changed})[:5]))
    if not failed:
        shutil.rmtree(tmp, ignore_errors=True)


def figures_from_timings(cold: str | Path, warm: str | Path, rows: Rows) -> None:
    """The notebook rows of :func:`bench_figures` from two timings tables that ``make figures``
    wrote (``build/default/timings.csv``, copied after a run on an empty cache and after a rerun
    on the filled one), instead of executing the notebooks again; the last row per notebook."""
    from paper_lib.runnb import read_timings

    for phase, path in (("cold", cold), ("warm", warm)):
        t = read_timings(path)
        if t.empty:
            raise ValueError(f"no timings in {path}")
        t = t.groupby("notebook").tail(1).sort_values("notebook")
        for r in t.itertuples():
            rows.add("notebook", r.notebook, f"{phase}_seconds", float(r.seconds), "s",
                     f"make figures (runnb), profile {r.profile}, {r.timestamp}; from {path}")
            rows.add("notebook", r.notebook, f"{phase}_peak_mib", float(r.peak_mib), "MiB",
                     "peak RSS of the largest child process")
        rows.add("notebook", "make figures", f"{phase}_seconds", float(t.seconds.sum()), "s",
                 f"sum over the notebooks of {path}")
        rows.add("notebook", "make figures", f"{phase}_peak_mib", float(t.peak_mib.max()), "MiB",
                 "largest notebook peak")


def _tree_state(folder: Path) -> dict[str, int]:
    """Relative path -> modification time (ns) of every file under ``folder``."""
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for p in folder.rglob("*") if p.is_file()}


# ----------------------------------------------------------------------------- 6: targets

# (label, (group, item, metric) or a function of the rows, comparison, threshold, unit)
TARGETS = [
    ("make figures cold <= 20 min", ("notebook", "make figures", "cold_seconds"), "<=", 1200, "s"),
    ("make figures warm <= 10 s", ("notebook", "make figures", "warm_seconds"), "<=", 10, "s"),
    ("U-Net step >= denoising-diffusion-pytorch Unet1D",
     ("train", "ddp-Unet1D", "ratio_ours_over_ref"), ">=", 1.0, "x"),
    ("U-Net step >= diffusers UNet1DModel",
     ("train", "diffusers-UNet1DModel", "ratio_ours_over_ref"), ">=", 1.0, "x"),
    ("U-Net utilisation >= 20% of GEMM (side by side, as models.fit trains)",
     lambda rows: _side_by_side_utilisation(rows), ">=", 0.2, "fraction"),
    ("data-only kernels >= 100x cheaper than train+sample (incl. setup)",
     lambda rows: min([rows.get("kernel", f, "speedup_with_setup") for f in DATA_ONLY],
                      default=float("nan")), ">=", 100, "x"),
    ("check: DDIM drift within DDPM seed noise (TV <= 1.5x)",
     lambda rows: _ratio(rows.get("sample", "ddim-vs-ddpm", "tv"),
                         rows.get("sample", "ddpm-vs-ddpm", "tv")), "<=", 1.5, "x noise"),
]


def _side_by_side_utilisation(rows: Rows) -> float:
    """Utilisation of the side-by-side training rows (bench_side_by_side), else of the
    single-process step."""
    df = rows.frame()
    side = df[(df.group == "flops") & df.item.str.endswith("x 1 thread")
              & (df.metric == "utilisation")]
    return float(side.value.iloc[-1]) if len(side) else rows.get("flops", "diffusion-unet",
                                                                   "utilisation")


def _ratio(a: float, b: float) -> float:
    """a / b, NaN when b is 0 (or either is NaN)."""
    return a / b if b else float("nan")


def add_targets(rows: Rows) -> list[tuple[str, float, str]]:
    """Append a ``target`` row per entry of ``TARGETS``: its value and PASS/FAIL (n/a when the
    part did not run). Returns (label, value, verdict) triples."""
    out = []
    for label, what, op, thr, unit in TARGETS:
        with np.errstate(all="ignore"):
            v = what(rows) if callable(what) else rows.get(*what)
        v = float(v) if v is not None else float("nan")
        if math.isnan(v):
            verdict = "n/a (not measured)"
        else:
            ok = v <= thr if op == "<=" else v >= thr
            verdict = f"{'PASS' if ok else 'FAIL'} (target {op} {thr:g})"
        rows.add("target", label, "value", v, unit, verdict)
        out.append((label, v, verdict))
    return out


# ----------------------------------------------------------------------------- entry point

def _env_rows(cfg: BenchConfig, rows: Rows) -> None:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    rows.add("env", "torch", "threads", torch.get_num_threads(), "",
             f"torch {torch.__version__}; OMP_NUM_THREADS={omp}; deterministic algorithms on "
             f"(as in the notebooks)")
    rows.add("env", "machine", "cpu_count", os.cpu_count() or float("nan"), "", cpu)
    rows.add("env", "python", "version", float("nan"), "",
             f"python {platform.python_version()}; {platform.platform()}")
    rows.add("env", "bench", "quick", float(cfg.quick), "",
             f"profile {cfg.profile.name}; {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")


def run(cfg: BenchConfig, timings: tuple | None = None) -> Rows:
    """Every part of the benchmark that ``cfg`` enables; returns the rows with targets.
    ``timings``: (cold, warm) timings tables of ``make figures`` runs to report instead of
    executing the notebooks (:func:`figures_from_timings`)."""
    from paper_lib.profiles import get_profile

    cfg = replace(cfg, profile=get_profile(cfg.profile))   # resolved once; a Profile below
    rows = Rows()
    _env_rows(cfg, rows)
    _log(f"profile {cfg.profile.name}{' (quick)' if cfg.quick else ''}, torch threads "
         f"{rows.get('env', 'torch', 'threads'):.0f}")
    bench_training(cfg, rows)
    sampled = bench_sampling(cfg, rows)
    bench_kernels(cfg, rows, sampled)
    if timings is not None:
        figures_from_timings(*timings, rows)
    elif cfg.figures:
        bench_figures(cfg, rows)
    add_targets(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/benchmark.py",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="seconds-long functional check at the smoke sizes (numbers meaningless)")
    ap.add_argument("--skip-figures", action="store_true",
                    help="do not execute the notebooks (cold and warm cache)")
    ap.add_argument("--with-figures", action="store_true",
                    help="execute the notebooks even with --quick (at the smoke profile they "
                         "write figures to build/smoke/figures, as paper_lib.setup does)")
    ap.add_argument("--out", default=None, help="results CSV (default bench/results.csv; "
                                                "with --quick build/bench/results-quick.csv)")
    ap.add_argument("--profile", default=None,
                    help="profile of the model and notebook sizes (default: default; "
                         "--quick: smoke)")
    ap.add_argument("--notebook-timings", nargs=2, metavar=("COLD", "WARM"), default=None,
                    help="report the notebooks from two timings tables of make figures runs "
                         "(empty cache, then filled) instead of executing them")
    ap.add_argument("--ddim-steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's own default, reported)")
    ap.add_argument("--no-references", action="store_true",
                    help="skip the reference U-Nets even when installed")
    ap.add_argument("--cache", default=None,
                    help="paper_lib cache for the sampling and kernel parts (default: "
                         "$PAPER_LIB_CACHE or .cache/; --quick: a temporary folder)")
    a = ap.parse_args(argv)
    cfg = QUICK if a.quick else FULL
    cfg = replace(cfg, figures=(cfg.figures or a.with_figures) and not a.skip_figures,
                  references=not a.no_references,
                  profile=a.profile or cfg.profile,
                  ddim_steps=a.ddim_steps or cfg.ddim_steps)
    out = Path(a.out) if a.out else (ROOT / "build" / "bench" / "results-quick.csv" if a.quick
                                     else ROOT / "bench" / "results.csv")
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    tmp_cache = None
    old_cache = os.environ.get("PAPER_LIB_CACHE")
    if a.cache:
        os.environ["PAPER_LIB_CACHE"] = str(Path(a.cache).resolve())
    elif a.quick:
        tmp_cache = tempfile.mkdtemp(prefix="paper_lib_bench_cache_")
        os.environ["PAPER_LIB_CACHE"] = tmp_cache
    t0 = time.perf_counter()
    try:
        rows = run(cfg, a.notebook_timings)
    finally:
        if tmp_cache is not None:
            shutil.rmtree(tmp_cache, ignore_errors=True)
        if old_cache is None:
            os.environ.pop("PAPER_LIB_CACHE", None)
        else:
            os.environ["PAPER_LIB_CACHE"] = old_cache
    rows.add("env", "bench", "seconds", time.perf_counter() - t0, "s", "this benchmark run")
    path = rows.write(out)
    print(format_table(rows))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
