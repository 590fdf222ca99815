"""The notebook runner (``python -m paper_lib.runnb``, the Makefile's notebook rule) on bad input
and faults: a typo in a parameter name or an unknown profile is refused before any kernel starts
(exit 2, one line, nothing written); Ctrl-C stops the run (exit 130, temporary notebooks removed,
no kernel left behind); a corrupt cache entry met inside the notebook is also said on stderr."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paper_lib import ROOT, runnb
from paper_lib.profiles import PROFILES

pytestmark = pytest.mark.skipif(importlib.util.find_spec("papermill") is None,
                                reason="papermill missing")

PARAMETERS = '''# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
profile = "default"
n_steps: int = 3
'''

TINY = PARAMETERS + '''
# %%
open("ran.txt", "w").write(profile)
'''

SLEEPY = PARAMETERS + '''
# %%
import os
import time
open("started.txt", "w").write(str(os.getpid()))
time.sleep(300)
'''

CORRUPT = PARAMETERS + '''
# %%
import paper_lib.cache as cache

spec = {"what": "a model the notebook trained earlier"}
cache.store("model", spec, [1, 2, 3])
payload, _ = cache.entry_paths("model", spec)
payload.write_bytes(payload.read_bytes()[:5])      # truncated, as by a full disk
print(cache.memo("model", spec, lambda: [1, 2, 3]))
'''


def _notebook(tmp_path, text, name="00_tiny"):
    src = tmp_path / "nb" / f"{name}.py"
    src.parent.mkdir(exist_ok=True)
    src.write_text(text)
    return src


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.ipynb")) if folder.exists() else []


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_parameter_names_are_read_from_the_parameters_cell(tmp_path):
    assert runnb.notebook_parameters(_notebook(tmp_path, TINY)) == ["profile", "n_steps"]
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        assert "profile" in runnb.notebook_parameters(nb), nb.name


def test_typo_in_a_parameter_name_is_refused_before_the_kernel_starts(tmp_path, capsys):
    src = _notebook(tmp_path, TINY)
    out = tmp_path / "build" / "00_tiny.ipynb"
    timings = tmp_path / "build" / "timings.csv"
    rc = runnb.main([str(src), str(out), "-p", "profil", "smoke", "--timings", str(timings)])
    err = capsys.readouterr().err
    assert rc == 2
    assert not out.exists() and _leftovers(out.parent) == [] and not timings.exists()
    assert not (src.parent / "ran.txt").exists(), "the notebook ran"
    assert len(_lines(err)) == 1, err
    assert "'profil'" in err and "valid parameters: profile, n_steps" in err


def test_unknown_profile_is_refused_at_once_in_one_line(tmp_path, capsys):
    src = _notebook(tmp_path, TINY)
    out = tmp_path / "build" / "00_tiny.ipynb"
    t0 = time.perf_counter()
    rc = runnb.main([str(src), str(out), "-p", "profile", "smok",
                     "--timings", str(tmp_path / "timings.csv")])
    seconds = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert rc == 2 and seconds < 5, (rc, seconds)
    assert len(_lines(err)) == 1, err
    assert "'smok'" in err and all(name in err for name in PROFILES)
    assert not out.exists() and _leftovers(out.parent) == []


def test_unknown_profile_from_the_command_line_prints_one_line(tmp_path):
    src = _notebook(tmp_path, TINY)
    out = tmp_path / "build" / "00_tiny.ipynb"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "paper_lib.runnb", str(src), str(out),
                        "-p", "profile", "paperr"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    seconds = time.perf_counter() - t0
    assert r.returncode == 2
    # the check imports neither jupytext nor numpy/pandas/altair (paper_lib loads them lazily)
    assert seconds < 3, seconds
    assert _lines(r.stderr) == [f"runnb: unknown profile 'paperr'; valid profiles: "
                                f"{', '.join(sorted(PROFILES))}"]
    assert not out.parent.exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_interrupt_exits_130_and_removes_the_temporary_notebooks(tmp_path):
    src = _notebook(tmp_path, SLEEPY)
    out = tmp_path / "build" / "00_tiny.ipynb"
    timings = tmp_path / "build" / "timings.csv"
    started = src.parent / "started.txt"
    proc = subprocess.Popen([sys.executable, "-m", "paper_lib.runnb", str(src), str(out),
                             "-p", "profile", "smoke", "--timings", str(timings)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not started.exists() or not started.read_text():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the notebook's sleep cell never started"
            time.sleep(0.2)
        kernel = int(started.read_text())
        assert _leftovers(out.parent), "expected temporary notebooks while running"
        proc.send_signal(signal.SIGINT)          # this process only: the runner must handle it
        rc = proc.wait(90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert rc == 130, err
    assert "Traceback" not in err, err
    assert "interrupted" in _lines(err)[-1], err
    assert not out.exists() and _leftovers(out.parent) == [] and not timings.exists()
    deadline = time.monotonic() + 15
    while _alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(kernel), "the notebook's kernel was left running"


def test_corrupt_cache_entry_is_reported_on_stderr(tmp_path, capsys):
    src = _notebook(tmp_path, CORRUPT)
    out = tmp_path / "build" / "00_tiny.ipynb"
    assert runnb.main([str(src), str(out), "-p", "profile", "smoke",
                       "--timings", str(tmp_path / "timings.csv")]) == 0
    err = capsys.readouterr().err
    # inside the notebook, as before ...
    cells = json.loads(out.read_text())["cells"]
    inside = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
    assert "CacheCorruptWarning" in inside
    # ... and on the terminal
    said = [line for line in err.splitlines() if "CacheCorruptWarning" in line]
    assert len(said) == 1, err
    assert "(model) is corrupt" in said[0] and "rebuilding" in said[0]


def test_cache_warnings_reads_stream_and_error_outputs(tmp_path):
    nb = {"cells": [
        {"cell_type": "code", "outputs": [
            {"output_type": "stream", "name": "stderr",
             "text": ["/x/drift.py:99: CacheCorruptWarning: cache entry a.pkl (samples) is "
                      "corrupt: checksum mismatch; rebuilding\n", "  warnings.warn(\n"]},
            {"output_type": "stream", "name": "stdout", "text": "all fine\n"}]},
        {"cell_type": "code", "outputs": [
            {"output_type": "error", "ename": "CacheCorruptWarning",
             "evalue": "cache entry b.pkl (model) is corrupt: truncated; rebuilding"}]},
        {"cell_type": "markdown"}]}
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    assert runnb.cache_warnings(path) == [
        "cache entry a.pkl (samples) is corrupt: checksum mismatch; rebuilding",
        "cache entry b.pkl (model) is corrupt: truncated; rebuilding"]
    assert runnb.cache_warnings(tmp_path / "missing.ipynb") == []
