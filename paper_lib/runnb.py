"""Execute one Jupytext notebook with papermill and record its wall time and peak memory.

``python -m paper_lib.runnb notebooks/02_mechanism.py build/default/02_mechanism.ipynb \
-p profile default`` does what the Makefile's notebook rule did with the jupytext and papermill
command lines, and times it:

0. the parameters are checked before any kernel starts: every ``-p NAME`` must be assigned in the
   notebook's cell tagged ``parameters`` (``profil`` for ``profile`` is refused, listing the valid
   names) and a ``profile`` must be one of ``paper_lib.profiles.PROFILES``; a bad one is one line
   on stderr, exit status 2, and nothing is written; so is an unknown ``$PAPER_LIB_ARITHMETIC``
   (``paper_lib.arithmetic``), whose mode's variables the kernel is started with;
1. the percent script is converted to ``OUT_DIR/NAME.src.ipynb`` (jupytext, in this process);
2. papermill executes it in a child process (``-k python3``, working directory ``--cwd``,
   default the script's folder) into ``OUT_DIR/NAME.tmp.ipynb``, with every ``-p NAME VALUE``
   injected as a parameter;
3. on success the executed notebook is renamed to OUT, the source copy removed, and one row
   ``notebook, profile, seconds, peak_mib, cache_dir, timestamp, cpu_seconds`` is appended to
   the timings table (default ``build/<profile>/timings.csv``; ``--timings`` to change it). On
   failure the temporary notebooks are left for inspection, nothing is recorded and the exit
   status is papermill's.

Every ``CacheCorruptWarning`` the notebook's kernel printed (a corrupt cache entry, rebuilt) is
read back from the executed notebook's outputs and repeated on stderr, one line per entry, so it
is seen on the terminal and not only inside the notebook.

Ctrl-C (SIGINT) or SIGTERM: papermill runs in its own session and is asked to stop (SIGINT, so it
shuts its kernel down; SIGTERM, then SIGKILL if it does not exit), the temporary ``.src.ipynb``
and ``.tmp.ipynb`` are removed, one line is printed and the exit status is 130 (143 for SIGTERM).
OUT is never half-written: it appears only by the rename of step 3.

``seconds`` is the wall time of steps 1–2. ``peak_mib`` is the largest resident set of any child
process (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` once papermill has exited): papermill reaps the
Jupyter kernel it started, so this covers the kernel that ran the notebook's code. It is a peak per
process, not a sum over processes. ``cpu_seconds`` is the CPU time (user + system) of the children
reaped during the run, together, the kernel's training workers included: ``cpu_seconds / seconds``
is how many cores the notebook kept busy on average (2 at most on the 2-core machine; what falls
short of it is idle). ``cache_dir`` is the ``paper_lib`` cache the notebook saw
(``$PAPER_LIB_CACHE`` or the repository default).

Rows are appended under an exclusive ``flock`` (the header is written by whoever creates the
file), so notebooks run in parallel (``make -j2``) never interleave or duplicate lines.
"""
from __future__ import annotations

import argparse
import ast
import csv
import fcntl
import io
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from . import arithmetic, cache

__all__ = ["run_notebook", "append_timing", "read_timings", "notebook_parameters",
           "check_parameters", "cache_warnings", "BadParameter", "Interrupted", "TIMING_COLUMNS",
           "main"]

ROOT = Path(__file__).resolve().parents[1]
TIMING_COLUMNS = ["notebook", "profile", "seconds", "peak_mib", "cache_dir", "timestamp",
                  "cpu_seconds"]
STOP_SECONDS = 15.0   # how long papermill gets to shut its kernel down after SIGINT


class BadParameter(ValueError):
    """A ``-p NAME VALUE`` the notebook cannot take (unknown name, unknown profile), or an
    unknown arithmetic mode."""


class Interrupted(Exception):
    """The run was stopped by a signal (``signum``) before it finished."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _cache_dir() -> str:
    from .cache import cache_dir

    return str(cache_dir())


def append_timing(path: str | Path, row: dict) -> None:
    """Append ``row`` (keys ``TIMING_COLUMNS``) to the CSV at ``path``, writing the header when
    the file is new or empty; serialised with an exclusive lock and flushed to disk. A table of
    an earlier version (other columns) is first rewritten with today's columns (new ones empty),
    atomically; a writer that waited on the replaced file appends to the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ",".join(TIMING_COLUMNS)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([row[c] for c in TIMING_COLUMNS])
    while True:
        with open(path, "a+", newline="") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                if not _is_open_file(path, f):
                    continue                     # replaced or removed while we waited
                f.seek(0)
                first = f.readline().rstrip("\r\n")
                if first and first != header:    # an earlier version's columns: rewrite, retry
                    f.seek(0)
                    cache.atomic_write_csv(path, TIMING_COLUMNS,
                                           [{c: r.get(c, "") for c in TIMING_COLUMNS}
                                            for r in csv.DictReader(f)])
                    continue
                if not first:
                    f.write(header + "\n")
                f.write(buf.getvalue())
                f.flush()
                os.fsync(f.fileno())
                return
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def _is_open_file(path: Path, f) -> bool:
    """Whether ``path`` still names the file open as ``f`` (not replaced, not removed)."""
    try:
        return os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False


def read_timings(path: str | Path):
    """The timings table at ``path`` as a pandas DataFrame (empty when there is none)."""
    import pandas as pd

    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=TIMING_COLUMNS)
    return pd.read_csv(path)


# ----------------------------------------------------------------------------- parameters

def notebook_parameters(nb) -> list[str]:
    """Names assigned in the cell tagged ``parameters`` of a notebook (nbformat node or a path to
    a Jupytext script), in order; empty when there is no such cell."""
    if isinstance(nb, (str, Path)):
        sources = _script_parameter_cells(Path(nb).read_text())
    else:
        sources = [cell.source for cell in nb.cells if cell.get("cell_type") == "code"
                   and "parameters" in cell.get("metadata", {}).get("tags", [])]
    names: list[str] = []
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise BadParameter(f"the parameters cell does not parse: {exc}") from None
        for node in tree.body:
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign))
                       else [])
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name) and n.id not in names:
                        names.append(n.id)
    return names


_CELL = re.compile(r"^# %%(.*)$")


def _script_parameter_cells(text: str) -> list[str]:
    """Sources of the cells of a Jupytext percent script whose ``# %%`` line carries the tag
    ``parameters``, read as plain text (no jupytext import: the check runs in a fraction of a
    second, before anything slow starts)."""
    cells, current = [], None
    for line in text.splitlines():
        m = _CELL.match(line)
        if m:
            if current is not None:
                cells.append("\n".join(current))
            current = [] if re.search(r"tags=\[[^\]]*[\"']parameters[\"']", m.group(1)) else None
        elif current is not None:
            current.append(line)
    if current is not None:
        cells.append("\n".join(current))
    return cells


def check_parameters(params: list[tuple[str, str]], valid: list[str], src: str | Path = "") -> None:
    """Raise :class:`BadParameter` (one line) for a name not in ``valid`` or an unknown profile."""
    where = f" of {src}" if src else ""
    unknown = [name for name, _ in params if name not in valid]
    if unknown:
        s = "s" if len(unknown) > 1 else ""
        raise BadParameter(f"unknown parameter{s} {', '.join(map(repr, unknown))}{where}; valid "
                           f"parameters: {', '.join(valid) if valid else '(none)'}")
    from .profiles import PROFILES

    for name, value in params:
        if name == "profile" and str(value) not in PROFILES:
            raise BadParameter(f"unknown profile {value!r}; valid profiles: "
                               f"{', '.join(sorted(PROFILES))}")


# ----------------------------------------------------------------------------- cache warnings

_WARNING = re.compile(r"CacheCorruptWarning:?\s*(.*)")


def cache_warnings(path: str | Path) -> list[str]:
    """The messages of the ``CacheCorruptWarning``s in an executed notebook's outputs (stream
    text, and error outputs when warnings were turned into errors), in order, without repeats.
    Empty when the notebook is missing or unreadable."""
    try:
        nb = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    found: list[str] = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text = out.get("text", "")
                lines = ("".join(text) if isinstance(text, list) else text).splitlines()
            elif out.get("output_type") == "error" and out.get("ename") == "CacheCorruptWarning":
                lines = [f"CacheCorruptWarning: {out.get('evalue', '')}"]
            else:
                continue
            for line in lines:
                m = _WARNING.search(line)
                if m and m.group(1).strip() and m.group(1).strip() not in found:
                    found.append(m.group(1).strip())
    return found


# ----------------------------------------------------------------------------- running

def _papermill() -> list[str]:
    exe = Path(sys.executable).parent / "papermill"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "papermill"]


def _forward(stream, stop: threading.Event) -> None:
    """Copy papermill's stderr to ours line by line until ``stop`` is set (after an interrupt its
    shutdown traceback is not wanted)."""
    for line in iter(stream.readline, b""):
        if stop.is_set():
            continue
        try:
            sys.stderr.write(line.decode(errors="replace"))
            sys.stderr.flush()
        except (OSError, ValueError):   # our stderr is gone: keep draining the pipe
            pass
    stream.close()


def _stop(proc: subprocess.Popen) -> None:
    """Ask papermill to stop (SIGINT: it shuts its kernel down), then SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, STOP_SECONDS), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            proc.send_signal(sig)
            proc.wait(wait)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


def _execute(cmd: list[str], env: dict | None = None) -> None:
    """Run papermill in its own session (a terminal's Ctrl-C reaches this process only, which
    stops papermill itself) with environment ``env`` (None: this process's), forwarding its
    stderr; raises ``CalledProcessError`` on failure."""
    stop = threading.Event()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, start_new_session=True, env=env)
    fwd = threading.Thread(target=_forward, args=(proc.stderr, stop), daemon=True)
    fwd.start()
    try:
        rc = proc.wait()
    except BaseException:
        stop.set()
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup
        try:
            _stop(proc)
        finally:
            signal.signal(signal.SIGINT, old)
        raise
    fwd.join(5)
    if rc:
        raise subprocess.CalledProcessError(rc, cmd)


def run_notebook(src: str | Path, out: str | Path, params: list[tuple[str, str]] | None = None,
                 cwd: str | Path | None = None, timings: str | Path | None = None,
                 kernel: str = "python3", log_level: str = "WARNING") -> dict:
    """Check the parameters, convert ``src`` (a percent script), execute it into ``out`` and
    record the timing row.

    Returns the row (``peak_mib`` of this process's children so far: call it once per process
    for a per-notebook peak, as the command line does) plus ``cache_warnings`` (see
    :func:`cache_warnings`). Raises :class:`BadParameter` before anything starts or is written,
    ``subprocess.CalledProcessError`` when papermill fails (temporary notebooks kept), and
    removes the temporary notebooks before re-raising an interruption (``KeyboardInterrupt``,
    :class:`Interrupted`)."""
    src, out = Path(src), Path(out)
    params = [(str(n), str(v)) for n, v in (params or [])]
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    check_parameters(params, notebook_parameters(src), src)
    try:   # the arithmetic mode's variables must be in place before the kernel loads torch
        env = arithmetic.environment(arithmetic.mode())
    except ValueError as exc:
        raise BadParameter(str(exc)) from None
    import jupytext   # slow to import (seconds): only once the parameters are known to be good

    nb = jupytext.read(src)
    profile = dict(params).get("profile", "default")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_src = out.parent / f"{out.stem}.src.ipynb"
    tmp_out = out.parent / f"{out.stem}.tmp.ipynb"
    cmd = _papermill() + ["--no-progress-bar", "--log-level", log_level, "-k", kernel]
    for name, value in params:
        cmd += ["-p", name, value]
    cmd += ["--cwd", str(cwd if cwd is not None else src.parent), str(tmp_src), str(tmp_out)]
    try:
        jupytext.write(nb, tmp_src, fmt="ipynb")
        try:
            _execute(cmd, env)
        except subprocess.CalledProcessError as exc:
            exc.cache_warnings = cache_warnings(tmp_out)
            raise
        seconds = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kib = usage.ru_maxrss  # KiB on Linux
        os.replace(tmp_out, out)
        tmp_src.unlink(missing_ok=True)
    except (KeyboardInterrupt, Interrupted):
        tmp_src.unlink(missing_ok=True)
        tmp_out.unlink(missing_ok=True)
        raise
    row = {"notebook": src.stem, "profile": profile, "seconds": round(seconds, 3),
           "peak_mib": round(peak_kib / 1024, 1), "cache_dir": _cache_dir(),
           "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "cpu_seconds": round(usage.ru_utime + usage.ru_stime
                                - before.ru_utime - before.ru_stime, 1)}
    path = Path(timings) if timings is not None else ROOT / "build" / str(profile) / "timings.csv"
    append_timing(path, row)
    return {**row, "cache_warnings": cache_warnings(out)}


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def _report_cache(name: str, messages: list[str]) -> None:
    for msg in messages:
        print(f"runnb: {name}: corrupt cache entry rebuilt (CacheCorruptWarning): {msg}",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m paper_lib.runnb",
        description="Convert a Jupytext percent script, execute it with papermill in a child "
                    "process, and append its wall time and peak memory to a timings table.")
    ap.add_argument("src", help="notebook script, e.g. notebooks/01_synthetic_tasks.py")
    ap.add_argument("out", help="executed notebook to write, e.g. build/default/01_x.ipynb")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                    metavar=("NAME", "VALUE"), help="papermill parameter (repeatable); NAME must "
                    "be assigned in the notebook's cell tagged 'parameters'")
    ap.add_argument("--cwd", default=None, help="working directory of the notebook "
                                                "(default: the script's folder)")
    ap.add_argument("--timings", default=None,
                    help="timings CSV to append to (default build/<profile>/timings.csv)")
    ap.add_argument("-k", "--kernel", default="python3")
    ap.add_argument("--log-level", default="WARNING")
    a = ap.parse_args(argv)
    # handle the signals here, whatever this process inherited (a background job ignores SIGINT)
    old = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    name = Path(a.src).stem
    try:
        row = run_notebook(a.src, a.out, [tuple(p) for p in a.parameter], a.cwd, a.timings,
                           a.kernel, a.log_level)
    except BadParameter as exc:
        print(f"runnb: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"runnb: {a.src}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        _report_cache(name, getattr(exc, "cache_warnings", []))
        print(f"runnb: {a.src} failed (papermill exit status {exc.returncode})", file=sys.stderr)
        return exc.returncode or 1
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"runnb: {name} interrupted ({signal.Signals(signum).name}); nothing written, "
              f"temporary notebooks removed", file=sys.stderr)
        return 128 + int(signum)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    _report_cache(name, row["cache_warnings"])
    print(f"runnb: {row['notebook']} ({row['profile']}) {row['seconds']:.1f} s, "
          f"{row['cpu_seconds']:.0f} s of CPU ({row['cpu_seconds'] / row['seconds']:.2f} cores "
          f"busy on average), peak {row['peak_mib']:.0f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
