"""Execute one Jupytext notebook with papermill and record its wall time and peak memory.

``python -m paper_lib.runnb notebooks/02_mechanism.py build/default/02_mechanism.ipynb \
-p profile default`` does what the Makefile's notebook rule did with the jupytext and papermill
command lines, and times it:

1. the percent script is converted to ``OUT_DIR/NAME.src.ipynb`` (jupytext, in this process);
2. papermill executes it in a child process (``-k python3``, working directory ``--cwd``,
   default the script's folder) into ``OUT_DIR/NAME.tmp.ipynb``, with every ``-p NAME VALUE``
   injected as a parameter;
3. on success the executed notebook is renamed to OUT, the source copy removed, and one row
   ``notebook, profile, seconds, peak_mib, cache_dir, timestamp`` is appended to the timings
   table (default ``build/<profile>/timings.csv``; ``--timings`` to change it). On failure the
   temporary notebooks are left for inspection, nothing is recorded and the exit status is
   papermill's.

``seconds`` is the wall time of steps 1–2. ``peak_mib`` is the largest resident set of any child
process (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` once papermill has exited): papermill reaps the
Jupyter kernel it started, so this covers the kernel that ran the notebook's code. It is a peak
per process, not a sum over processes. ``cache_dir`` is the ``paper_lib`` cache the notebook saw
(``$PAPER_LIB_CACHE`` or the repository default).

Rows are appended under an exclusive ``flock`` (the header is written by whoever creates the
file), so notebooks run in parallel (``make -j2``) never interleave or duplicate lines.
"""
from __future__ import annotations

import argparse
import csv
import fcntl
import io
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["run_notebook", "append_timing", "read_timings", "TIMING_COLUMNS", "main"]

ROOT = Path(__file__).resolve().parents[1]
TIMING_COLUMNS = ["notebook", "profile", "seconds", "peak_mib", "cache_dir", "timestamp"]


def _cache_dir() -> str:
    from .cache import cache_dir

    return str(cache_dir())


def append_timing(path: str | Path, row: dict) -> None:
    """Append ``row`` (keys ``TIMING_COLUMNS``) to the CSV at ``path``, writing the header when
    the file is new or empty; serialised with an exclusive lock and flushed to disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([row[c] for c in TIMING_COLUMNS])
    with open(path, "a", newline="") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            if f.tell() == 0 and os.fstat(f.fileno()).st_size == 0:
                f.write(",".join(TIMING_COLUMNS) + "\n")
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_timings(path: str | Path):
    """The timings table at ``path`` as a pandas DataFrame (empty when there is none)."""
    import pandas as pd

    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=TIMING_COLUMNS)
    return pd.read_csv(path)


def _papermill() -> list[str]:
    exe = Path(sys.executable).parent / "papermill"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "papermill"]


def run_notebook(src: str | Path, out: str | Path, params: list[tuple[str, str]] | None = None,
                 cwd: str | Path | None = None, timings: str | Path | None = None,
                 kernel: str = "python3", log_level: str = "WARNING") -> dict:
    """Convert ``src`` (a percent script), execute it into ``out`` and record the timing row.

    Returns the row (``peak_mib`` of this process's children so far: call it once per process
    for a per-notebook peak, as the command line does). Raises ``subprocess.CalledProcessError``
    when papermill fails."""
    import jupytext

    src, out = Path(src), Path(out)
    params = list(params or [])
    profile = dict(params).get("profile", "default")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_src = out.parent / f"{out.stem}.src.ipynb"
    tmp_out = out.parent / f"{out.stem}.tmp.ipynb"
    start = time.perf_counter()
    jupytext.write(jupytext.read(src), tmp_src, fmt="ipynb")
    cmd = _papermill() + ["--no-progress-bar", "--log-level", log_level, "-k", kernel]
    for name, value in params:
        cmd += ["-p", name, str(value)]
    cmd += ["--cwd", str(cwd if cwd is not None else src.parent), str(tmp_src), str(tmp_out)]
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    os.replace(tmp_out, out)
    tmp_src.unlink(missing_ok=True)
    row = {"notebook": src.stem, "profile": profile, "seconds": round(seconds, 3),
           "peak_mib": round(peak_kib / 1024, 1), "cache_dir": _cache_dir(),
           "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path = Path(timings) if timings is not None else ROOT / "build" / str(profile) / "timings.csv"
    append_timing(path, row)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m paper_lib.runnb",
        description="Convert a Jupytext percent script, execute it with papermill in a child "
                    "process, and append its wall time and peak memory to a timings table.")
    ap.add_argument("src", help="notebook script, e.g. notebooks/01_synthetic_tasks.py")
    ap.add_argument("out", help="executed notebook to write, e.g. build/default/01_x.ipynb")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                    metavar=("NAME", "VALUE"), help="papermill parameter (repeatable)")
    ap.add_argument("--cwd", default=None, help="working directory of the notebook "
                                                "(default: the script's folder)")
    ap.add_argument("--timings", default=None,
                    help="timings CSV to append to (default build/<profile>/timings.csv)")
    ap.add_argument("-k", "--kernel", default="python3")
    ap.add_argument("--log-level", default="WARNING")
    a = ap.parse_args(argv)
    try:
        row = run_notebook(a.src, a.out, [tuple(p) for p in a.parameter], a.cwd, a.timings,
                           a.kernel, a.log_level)
    except subprocess.CalledProcessError as exc:
        print(f"runnb: {a.src} failed (papermill exit status {exc.returncode})", file=sys.stderr)
        return exc.returncode or 1
    print(f"runnb: {row['notebook']} ({row['profile']}) {row['seconds']:.1f} s, "
          f"peak {row['peak_mib']:.0f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
