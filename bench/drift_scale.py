"""Scale of the drift check (paper_lib.driftcheck.check): time and peak memory at 10⁴, 10⁵ and
10⁶ random-walk trajectories of T = 64 × C = 2 float32 (10⁶: 512 MB), measure travel distance.

    .venv/bin/python bench/drift_scale.py [--sizes 10000,100000,1000000] \
        [--kernels smooth,neighbour,pilot]

Each (size, kernel) runs in a fresh child process, so its peak resident memory (``ru_maxrss``) is
its own. The child builds the data in memory, imports everything and runs a tiny warm-up check,
then records its resident memory (``baseline``: interpreter, libraries and the input array),
times ``check`` (default scale: the companion's locality, so this includes the data spacing and
the scale fit) and then ``save`` of the report. ``peak_rss_mb`` is the peak during ``check``,
``peak_above_input_mb`` = that peak − baseline: the memory the check needs beyond the input;
``save_peak_rss_mb`` the peak after rendering the report too (vl-convert's renderer, ~180 MB,
independent of n). The ``pilot`` kernel trains its U-Net inside the timed check, on an empty
cache of its own (a temporary folder), as a first run on new data would. Targets: 10⁶ in <= 180 s
with <= 2,048 MB above the input. Results go to bench/drift_scale.csv (written atomically).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))   # paper_lib from this checkout, installed or not
T, C = 64, 2
COLUMNS = ["n", "kernel", "draws", "check_seconds", "save_seconds", "input_mb", "baseline_rss_mb",
           "peak_rss_mb", "peak_above_input_mb", "save_peak_rss_mb", "load_avg_1min", "cpus",
           "note"]


def _rss_mb() -> float:
    """Current resident memory of this process in MiB (Linux /proc; else the peak so far)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_walks(n: int, seed: int = 0, block: int = 65536):
    """n random walks (n, T, C) float32 with unit Gaussian steps, built block by block so no
    float64 copy of the whole array is ever made."""
    import numpy as np

    from paper_lib.seeding import rng

    g = rng(seed, "bench", "drift_scale")
    X = np.empty((n, T, C), np.float32)
    for s in range(0, n, block):
        e = min(n, s + block)
        np.cumsum(g.standard_normal((e - s, T, C), dtype=np.float32), axis=1, out=X[s:e])
    return X


def child(n: int, kernel: str) -> dict:
    """One measurement (run in a fresh process)."""
    from paper_lib import driftcheck
    from paper_lib.tasks import travel_distance

    X = random_walks(n)
    warm = driftcheck.pilot_kernel(random_walks(64, seed=1), profile="smoke") \
        if kernel == "pilot" else kernel     # a tiny pilot warms up torch without the real one
    driftcheck.check(random_walks(64, seed=1), travel_distance, kernel=warm, draws=1)
    base = _rss_mb()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["PAPER_LIB_CACHE"] = cache    # the pilot is trained, not loaded
        r = driftcheck.check(X, travel_distance, kernel=kernel)
    t1 = time.perf_counter()
    peak_check = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as d:
        r.save(Path(d) / "report.html")
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"n": n, "kernel": kernel, "draws": r.draws, "check_seconds": round(t1 - t0, 1),
            "save_seconds": round(t2 - t1, 1), "input_mb": round(X.nbytes / 2 ** 20),
            "baseline_rss_mb": round(base), "peak_rss_mb": round(peak_check),
            "peak_above_input_mb": round(peak_check - base), "save_peak_rss_mb": round(peak),
            "load_avg_1min": round(os.getloadavg()[0], 1), "cpus": os.cpu_count(),
            "note": f"TV {r.tv:.3f}, mean shift {r.mean_shift:+.3f}, locality {r.locality:.2f}"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--kernels", default="smooth,neighbour,pilot")
    ap.add_argument("--out", default=str(HERE / "drift_scale.csv"))
    ap.add_argument("--child", nargs=2, metavar=("N", "KERNEL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1])))
        return 0
    rows = []
    for kernel in args.kernels.split(","):
        for n in map(int, args.sizes.split(",")):
            p = subprocess.run([sys.executable, __file__, "--child", str(n), kernel],
                               capture_output=True, text=True)
            if p.returncode != 0:
                sys.stderr.write(p.stderr)
                return p.returncode
            rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(", ".join(f"{k} {v}" for k, v in rows[-1].items()), flush=True)
    from paper_lib.cache import atomic_write_csv

    atomic_write_csv(Path(args.out), COLUMNS, rows)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
