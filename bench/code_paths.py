"""Which CPU code paths change the transformer's trained weights: the check behind the README's
"Across CPU families" section.

    .venv/bin/python bench/code_paths.py [--steps 60] [--settings native,portable,...] \
        [--cpus host,Haswell-v4,EPYC-Rome-v2] [--host-name host] [--out bench/code_paths.csv]

The transformer's training amplifies any change in the last bits of its arithmetic (README,
Reproducibility), and three libraries pick their kernels by the CPU they run on: ATen's vectorised
kernels (``ATEN_CPU_CAPABILITY``: AVX-512 where the CPU has it, else AVX2), oneDNN's JIT kernels
(``ONEDNN_MAX_CPU_ISA``) and MKL's BLAS (its own dispatch, by ISA *and* vendor; ``MKL_CBWR``
fixes a branch). Each setting below trains the same small transformer (``sine``, default size,
``--steps`` steps, one thread) and draws 500 motions in a fresh child process with the named
environment, and records a hash of its training data, of its weights and of its samples, and the
time of a training step of the transformer and of the default U-Net on ``cone`` (the cost of the
setting). A setting whose hash differs from ``native`` is a code path that another CPU would
take and that changes the result.

``portable`` pins every choice: ATen to AVX2, MKL to its ``COMPATIBLE`` branch (Intel's branch
for identical results on Intel and other vendors' CPUs) on one MKL thread (its ``COMPATIBLE``
branch otherwise rounds differently with 1 and 2 threads), and oneDNN switched off
(``torch.backends.mkldnn``). The settings after it perturb it as a different CPU would; their
hashes equal to ``portable``'s show that the perturbation no longer reaches the result. Run the
script on two machines and compare the ``portable`` rows: equal hashes mean the two machines
train the same transformer bit for bit. ``portable-avx2`` is the cheaper candidate: MKL on its
AVX2 branch in strict mode (``MKL_CBWR=AVX2,STRICT``: the same bits on one thread and two, at
native speed), ATen at AVX2, oneDNN off; the emulated check below finds it not vendor-neutral.

``library-portable`` is the library's own mode as ``make figures ARITHMETIC=portable`` runs it
(``paper_lib.arithmetic``): the torch pins above, numpy's and OpenBLAS's kernels held at AVX2
(they generate the data: ``data_sha`` is a hash of the training set), and oneDNN off inside the
transformer's training and sampling. It is the row to compare between two real machines:

    .venv/bin/python bench/code_paths.py --settings native,library-portable --host-name model \
        --out code_paths_<machine>.csv

on each (``--host-name model`` writes the CPU's model name into the ``cpu`` column); equal
``data_sha``, ``weights_sha`` and ``samples_sha`` in the ``library-portable`` rows mean the two
machines generate the same data and train and sample the same transformer bit for bit.

``--cpus host,Haswell-v4,EPYC-Rome-v2`` runs every setting on this machine and again on each
named CPU model emulated by QEMU's user mode (``qemu-x86_64 -cpu MODEL``, Debian package
``qemu-user``). MKL and oneDNN choose their kernels from what CPUID says (vendor, model, cache
sizes), and QEMU answers CPUID for the named model, so an emulated Intel CPU against an emulated
AMD CPU checks the libraries' vendor dispatch without a second machine. Compare emulated rows
with each other, not with ``host``, except ``library-portable``'s: ``torch.sqrt`` (computed by
MKL's vector math, which the unfused AdamW uses) starts from ``rsqrtps``, whose result each CPU
maker, and QEMU, computes its own way (``vendor_instructions.py``), even on MKL's ``COMPATIBLE``
branch, so it comes out one unit in the last place apart under QEMU 7.2 and on the real CPU for
about one value in eight. The library's portable mode fuses the transformer's AdamW (no
``torch.sqrt``), and its emulated rows equal the real CPU's. Emulation is several hundred times
slower
(use ``--steps 2``: any differing bit changes a hash), its step times are left empty, and QEMU
7.2 has no AVX-512. Results go to ``--out`` (written atomically).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))   # paper_lib from this checkout, installed or not
sys.path.insert(0, str(HERE))          # benchmark.py beside this script
from paper_lib.arithmetic import ENVIRONMENT, TORCH_PINS, VARIABLE  # noqa: E402
from paper_lib.cache import atomic_write_csv  # noqa: E402
COLUMNS = ["setting", "cpu", "environment", "cpu_capability", "data_sha", "weights_sha",
           "samples_sha", "transformer_ms_per_step", "unet_ms_per_step", "same_weights_as"]
# the torch part of the library's portable mode (paper_lib.arithmetic; its numpy pins give this
# VM's native bits), with oneDNN off for the U-Net's timing too
PORTABLE = {**TORCH_PINS, "NO_ONEDNN": "1"}
PORTABLE_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "NO_ONEDNN": "1"}
SETTINGS = {
    "native": {},
    "native-1-thread": {"OMP_NUM_THREADS": "1"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "onednn-sse41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
    "mkl-compatible": {"MKL_CBWR": "COMPATIBLE"},
    "portable": PORTABLE,
    "portable-onednn-sse41": {**PORTABLE, "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "portable-1-thread": {**PORTABLE, "OMP_NUM_THREADS": "1"},
    "portable-avx2": PORTABLE_AVX2,
    "portable-avx2-onednn-sse41": {**PORTABLE_AVX2, "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "portable-avx2-1-thread": {**PORTABLE_AVX2, "OMP_NUM_THREADS": "1"},
    # the library's own mode, as `make figures ARITHMETIC=portable` runs it: the torch pins, the
    # numpy pins (which generate the data) and oneDNN off inside arithmetic.pinned
    "library-portable": {**ENVIRONMENT["portable"], VARIABLE: "portable"},
}
QEMU = "qemu-x86_64"
# taken from no outer environment (nor the library's mode: each setting names its own variables)
_SET_HERE = {k for env in SETTINGS.values() for k in env} | {"PAPER_LIB_ARITHMETIC"}


def _unet_ms_per_step(P, steps: int) -> float:
    """Wall time of one default U-Net training step on one thread, ms (``benchmark.py``'s
    single-thread rate: batches of ``cone`` trajectories)."""
    from benchmark import _single_thread_rate

    return 1e3 * P.batch_size / _single_thread_rate(P, steps, warmup=1)


def child(steps: int, unet_steps: int) -> dict:
    """Train and sample in this process (its environment set by the parent); hashes and step
    times as a dict."""
    import hashlib

    import torch

    if os.environ.get("NO_ONEDNN"):
        torch.backends.mkldnn.enabled = False
    import paper_lib
    from paper_lib import drift, models

    P = paper_lib.get_profile("default")
    task = drift.task_for("sine", P)
    data = paper_lib.make_dataset(task, P.n_train, seed=0, use_cache=False)
    trained = models.fit(models.make_spec("transformer", P, train_steps=steps), data, P, seed=0,
                         use_cache=False, progress=False)
    w = torch.cat([v.double().ravel() for v in trained.state.values() if v.is_floating_point()])
    X = models.sample(trained, 500, seed=0)
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "data_sha": hashlib.sha256(data.X.tobytes() + data.q.tobytes()).hexdigest()[:16],
            "weights_sha": hashlib.sha256(w.numpy().tobytes()).hexdigest()[:16],
            "samples_sha": hashlib.sha256(X.tobytes()).hexdigest()[:16],
            "transformer_ms_per_step": round(1e3 * trained.train_seconds / steps, 1),
            "unet_ms_per_step": round(_unet_ms_per_step(P, unet_steps), 1) if unet_steps else ""}


def setting_names(ap: argparse.ArgumentParser, text: str, valid) -> list[str]:
    """``--settings`` (comma-separated) as a list; an unknown or missing name is ``ap.error``
    (exit status 2) listing the ``valid`` ones."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = sorted(set(names) - set(valid))
    if bad or not names:
        ap.error(f"--settings: unknown {', '.join(bad) or '(none given)'}; valid settings: "
                 f"{', '.join(valid)}")
    return names


def _label(setting: str, cpu: str) -> str:
    return setting if cpu == "host" else f"{setting} on {cpu}"


def _host_name(name: str) -> str:
    """``--host-name``: "model" is this CPU's model name (from /proc/cpuinfo), anything else is
    taken as it is."""
    if name != "model":
        return name
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
                "host")


def _run(name: str, cpu: str, steps: int, unet_steps: int) -> dict:
    """One row: the child for setting ``name`` on ``cpu`` ("host" or a QEMU CPU model)."""
    env = SETTINGS[name]
    full = {**{k: v for k, v in os.environ.items() if k not in _SET_HERE}, **env}
    cmd = [sys.executable, __file__, "--child", "--steps", str(steps),
           "--unet-steps", str(unet_steps)]
    if cpu != "host":
        cmd = [QEMU, "-cpu", cpu, *cmd]
    out = subprocess.run(cmd, env=full, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"code_paths: setting {name!r} on {cpu} failed:\n{out.stderr[-2000:]}")
    r = {"setting": name, "cpu": cpu,
         "environment": " ".join(f"{k}={v}" for k, v in env.items()),
         **json.loads(out.stdout.strip().splitlines()[-1])}
    if cpu != "host":   # emulated: times say nothing about a real CPU
        r["transformer_ms_per_step"] = ""
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--unet-steps", type=int, default=20, help="U-Net steps timed")
    ap.add_argument("--settings", default=",".join(SETTINGS),
                    help=f"comma-separated, from: {', '.join(SETTINGS)}")
    ap.add_argument("--cpus", default="host",
                    help="comma-separated: host and/or QEMU CPU models (qemu-x86_64 -cpu help)")
    ap.add_argument("--host-name", default="host",
                    help='the cpu column of rows run on this machine ("model": its CPU model '
                         'name, to tell two real machines apart)')
    ap.add_argument("--out", default=str(HERE / "code_paths.csv"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.steps, a.unet_steps)))
        return
    names = setting_names(ap, a.settings, SETTINGS)
    cpus = [c.strip() for c in a.cpus.split(",") if c.strip()] or ["host"]
    if set(cpus) != {"host"} and shutil.which(QEMU) is None:
        ap.error(f"--cpus {a.cpus}: emulating a CPU needs {QEMU} (Debian package qemu-user)")
    rows, first = [], {}
    for cpu, name in ((c, n) for c in cpus for n in names):
        r = _run(name, cpu, a.steps, a.unet_steps if cpu == "host" else 0)
        if cpu == "host":
            r["cpu"] = _host_name(a.host_name)
        r["same_weights_as"] = first.setdefault(r["weights_sha"], _label(name, cpu))
        rows.append(r)
        print(*(r[c] for c in COLUMNS), sep="  ", flush=True)
    atomic_write_csv(Path(a.out), COLUMNS, rows)


if __name__ == "__main__":
    main()
