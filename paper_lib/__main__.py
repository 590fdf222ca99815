"""``python -m paper_lib drift``: the drift check for your own data from the command line.

The work is done by :mod:`paper_lib.driftcheck`; this module parses options, reads the files and
prints. User errors (bad files, shapes, values, options, an unwritable report) end with one line
on stderr and exit status 2, before anything is written; ``--help`` explains every option.
"""
from __future__ import annotations

import argparse
import math
import sys

__all__ = ["main", "parser"]

_DESCRIPTION = """\
Forecast, before any training, where the distribution of a quantity of your trajectories will
drift: every trajectory is perturbed by a small local error (a data deviation kernel), the
quantity is measured on the perturbed copies, and their histogram is compared with the data's.
Bins that gain mass beyond bootstrap noise are values a model is likely to over-produce; bins that
lose mass, values it will under-produce. Writes an HTML report (chart, table) with a PNG and a CSV
beside it and prints a short summary."""

_EPILOG = """\
examples:
  python -m paper_lib drift --data paths.npy --measure task:cone --out report.html
  python -m paper_lib drift --data runs.npz:X --measure mypkg.quantities:energy \\
      --kernel neighbour --bins 30 --out reports/energy.html
  python -m paper_lib drift --data paths.csv --measure ./measures.py:length \\
      --samples model_samples.npy --out report.html
  python -m paper_lib drift --data paths.npy --measure task:cone --kernel pilot \\
      --units 0:1 --out report.html

exit status: 0 done, 2 a user error (one line on stderr; nothing written)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (and exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _bins(text: str):
    """``N`` or ``LO:HI:N`` -> int or metrics.Bins."""
    from .metrics import Bins

    parts = text.split(":")
    try:
        if len(parts) == 1:
            n = int(parts[0])
            if n < 1:
                raise ValueError
            return n
        if len(parts) == 3:
            return Bins(float(parts[0]), float(parts[1]), int(parts[2]))
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r}: expected N (equal bins over the data's range) or"
                                     " LO:HI:N (N equal bins on [LO, HI), LO < HI)")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 1")
    return v


def _scale(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number >= 0")
    return v


def _units(text: str) -> tuple:
    """``OFFSET:SCALE`` (each one number or comma-separated, one per channel) -> (offset,
    scale)."""
    head, sep, tail = text.partition(":")
    try:
        parts = [[float(v) for v in side.split(",")] for side in (head, tail)]
        ok = bool(sep) and all(math.isfinite(v) for side in parts for v in side) \
            and all(v > 0 for v in parts[1])
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"{text!r}: expected OFFSET:SCALE, finite numbers with "
                                         "SCALE > 0, each one number or one per channel, comma-"
                                         "separated (0.5,0:2 or 0:1,0.1)")
    return tuple(side[0] if len(side) == 1 else tuple(side) for side in parts)


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m paper_lib``."""
    from .driftcheck import DEFAULT_LOCALITY, FORMATS, KERNELS
    from .forecast import SMOOTH_LENGTH

    top = _Parser(prog="python -m paper_lib", description="paper_lib command-line tools.")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    p = sub.add_parser("drift", help="forecast where a dataset's quantity will drift",
                       description=_DESCRIPTION, epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="FILE",
                   help=f"the trajectories, shape (n, T, C), n >= 2: {FORMATS}. Long format: one "
                        "row per trajectory id and time step t, every id with the same t values. "
                        ".npy files are memory-mapped, not read into memory.")
    p.add_argument("--measure", required=True, metavar="SPEC",
                   help="the quantity, a vectorised function (n, T, C) -> (n,) of floats: "
                        "module:function (e.g. paper_lib.tasks.cone:travel_distance), "
                        "path/to/file.py:function, or task:NAME for a companion task's measure "
                        "(task:sine, task:cone, task:logistic, task:maze, task:pendulum; "
                        "paper_lib.tasks.sine:measure also works). It must be finite on every "
                        "data trajectory.")
    p.add_argument("--kernel", default="smooth", choices=KERNELS,
                   help="the data deviation kernel (default: smooth): white = iid Gaussian noise "
                        "per entry; smooth = Gaussian noise correlated over --length time steps; "
                        "spectral = noise with the residual spectrum of --samples (required); "
                        "neighbour = a step towards one of the --k nearest other trajectories; "
                        "pilot = the denoiser of a small diffusion U-Net trained on the data "
                        "first (600 steps of batch 16, width 16: about 16 s of training on a "
                        "2-core CPU, whatever the number of trajectories; cached), in --units "
                        "(T must be a multiple of 4). A trained model's own denoise kernel is "
                        "available from Python: "
                        "paper_lib.driftcheck.check(X, m, kernel=paper_lib.kernels.denoise(...)).")
    p.add_argument("--units", type=_units, metavar="OFFSET:SCALE",
                   help="pilot kernel: the normalisation the model you will train uses (it sees "
                        "(x - OFFSET) / SCALE; each one number or one per channel, comma-"
                        "separated). The pilot's kernel depends on it. Default: the data "
                        "standardised (each channel's mean and standard deviation; the report "
                        "then carries a caveat)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scale", type=_scale, metavar="S",
                   help="the kernel's scale: the noise std per entry in data units (white, "
                        "smooth), the spectrum's amplitude factor (spectral), the step fraction "
                        "alpha towards the neighbour (neighbour; 1 lands on it). Default: the "
                        f"companion's calibrated locality, {DEFAULT_LOCALITY:.3g} data spacings "
                        "(the report then says so)")
    g.add_argument("--samples", metavar="FILE",
                   help="a few hundred samples of a model trained on this data (same formats and "
                        "shape (m, T, C)): the scale is fitted so the kernel moves data as far as "
                        "these samples lie from their nearest data trajectory")
    p.add_argument("--bins", type=_bins, default=20, metavar="N|LO:HI:N",
                   help="histogram bins: N equal bins over the data's range of the quantity "
                        "(default 20), or N equal bins on [LO, HI); mass outside goes to an "
                        "underflow and an overflow bin")
    p.add_argument("--draws", type=_positive_int, metavar="D",
                   help="perturbed copies per trajectory (default: enough for about 100,000 "
                        "forecast values, between 1 and 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); the same seed "
                   "gives the same report")
    p.add_argument("--length", type=_scale, default=SMOOTH_LENGTH, metavar="L",
                   help=f"smooth kernel: correlation length in time steps (default "
                        f"{SMOOTH_LENGTH:g})")
    p.add_argument("--k", type=_positive_int, default=8,
                   help="neighbour kernel: number of nearest trajectories to step towards "
                        "(default 8), searched exactly among up to 4,096 reference trajectories "
                        "drawn from the data (all of them when there are fewer; 1,073 at 10^6, "
                        "to bound the search)")
    p.add_argument("--level", type=float, default=0.95,
                   help="bootstrap interval level (default 0.95): a bin gains (loses) mass beyond "
                        "noise when this interval of its paired bootstrap difference forecast - "
                        "data lies above (below) 0")
    p.add_argument("--boot", type=_positive_int, default=200, metavar="B",
                   help="bootstrap resamples (default 200, at least 10)")
    p.add_argument("--out", required=True, metavar="REPORT.html",
                   help="the report: a self-contained HTML page (chart, summary, table); "
                        "REPORT.png (chart) and REPORT.csv (table) are written beside it. Missing "
                        "folders are created; nothing is written when the check fails.")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    return top


def _drift(args) -> int:
    from . import driftcheck as dc

    out = dc.check_output_path(args.out)       # fail before the work, not after it
    measure = dc.resolve_measure(args.measure)
    X = dc.load_trajectories(args.data)
    scale = args.scale
    if args.kernel == "pilot" and (args.samples is not None or scale is not None):
        raise dc.DriftCheckError("--kernel pilot has its own scale (its denoiser's first step); "
                                 "drop --scale and --samples")
    if args.samples is not None:
        S = dc.load_trajectories(args.samples)
        scale = dc.fit_scale(S, X, args.kernel, length=args.length, k=args.k, seed=args.seed)
    elif args.kernel == "spectral":
        raise dc.DriftCheckError("--kernel spectral needs --samples FILE (a model's samples: the "
                                 "noise spectrum is fitted to their residuals)")
    n = len(X)
    result = dc.check(X, measure, kernel=args.kernel, scale=scale, bins=args.bins,
                      draws=args.draws, seed=args.seed, length=args.length, k=args.k,
                      level=args.level, n_boot=args.boot, units=args.units,
                      progress=not args.quiet and n >= 50_000)
    paths = result.save(out)
    if not args.quiet:
        print(result.summary())
        print(f"report: {paths['html']} (chart {paths['png'].name}, table {paths['csv'].name})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m paper_lib ARGS``; returns the exit status (2 for user errors)."""
    from .driftcheck import DriftCheckError

    top = parser()
    try:
        args = top.parse_args(argv)
    except SystemExit as exc:          # --help (0) or a usage error (2, already printed)
        return int(exc.code or 0)
    if args.command is None:
        top.print_help(sys.stderr)
        return 2
    try:
        return _drift(args)
    except DriftCheckError as exc:
        print(f"python -m paper_lib drift: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("python -m paper_lib drift: interrupted; nothing written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
