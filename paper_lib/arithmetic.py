"""Arithmetic modes: which CPU code paths torch's libraries may take (README, Reproducibility).

``native`` (a Python process's default): each library picks the fastest kernels for this CPU.
Results are bit-identical from run to run on one machine; on another CPU family the diffusion and
VAE rows agree to about 1e-6 and the transformer's move within the spread of retraining it (its
training amplifies any last-bit difference, ``bench/training_chaos.py``).

``portable``: the transformer trains and samples the same bits on any x86-64 CPU with AVX2, Intel or
AMD (an AMD CPU gives the bits of an emulated Intel and an emulated AMD CPU,
``bench/code_paths.py``): ATen's kernels at AVX2, MKL on its vendor-neutral ``COMPATIBLE`` branch on
one MKL thread, oneDNN switched off while a transformer trains or samples, numpy's kernels (its own
and OpenBLAS's) at AVX2, and the transformer's AdamW fused (:func:`optimizer_options`). It costs
about half as much again of transformer training time; the other classes keep oneDNN (their
convolutions are ~4× slower without it, and their rows agree across CPUs without it). Portable
results are cached apart from native ones, in :data:`FOLDERS`.

Why AdamW fused: the unfused AdamW takes the square root of its second moment with
``torch.sqrt``, which ATen hands to MKL's vector math, and MKL's float square root starts from
``rsqrtps``, an instruction whose approximation each CPU maker implements differently; MKL's
``COMPATIBLE`` branch does not avoid it there. The fused AdamW computes the root with the exactly
rounded ``sqrtps``. ``bench/vendor_instructions.py`` runs a portable transformer under a debugger
with a breakpoint on every such instruction in torch's library: with the unfused AdamW, 20,763
executions in MKL's square root over 3 training steps and 500 motions; with the fused one none,
and no code generated at run time.

The mode is read from ``PAPER_LIB_ARITHMETIC``. The variables of ``ENVIRONMENT[mode]`` must be set
before Python starts (the libraries read them once, when they load):
``python -m paper_lib.runnb`` sets them for the notebook it runs, and ``python -m
paper_lib.arithmetic MODE COMMAND...`` starts any command with them. ``make`` runs its notebooks
(``figures``, ``smoke``, ``nbval``, ``lab``) in ``portable`` wherever the CPU allows it (x86-64
with AVX2: :func:`supported`), so the committed figures are portable; ``ARITHMETIC=native``
chooses the other mode.
"""
from __future__ import annotations

import os
import platform
import sys
from contextlib import contextmanager

__all__ = ["MODES", "ENVIRONMENT", "FOLDERS", "TORCH_PINS", "NUMPY_PINS", "VARIABLE", "mode",
           "check", "supported", "environment", "pinned", "optimizer_options", "main"]

VARIABLE = "PAPER_LIB_ARITHMETIC"
MODES = ("native", "portable")
# torch's libraries: ATen's vectorised kernels, MKL's BLAS and vector math (oneDNN: see pinned)
TORCH_PINS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE", "MKL_NUM_THREADS": "1"}
# numpy's own loops and its OpenBLAS, which generate and measure the data: at their AVX2 level,
# which is the native one on an AVX2 CPU (same bits) and holds an AVX-512 CPU to it
NUMPY_PINS = {"NPY_ENABLE_CPU_FEATURES": "X86_V3", "OPENBLAS_CORETYPE": "Haswell"}
ENVIRONMENT = {"native": {}, "portable": {**TORCH_PINS, **NUMPY_PINS}}
# the cache folder of each mode's results (cache.cache_dir); renamed when a mode's bits change:
# portable-2, the transformer's AdamW fused (before: portable)
FOLDERS = {"native": "", "portable": "portable-2"}


def mode() -> str:
    """The arithmetic mode named by ``$PAPER_LIB_ARITHMETIC`` (unset or empty: ``native``); an
    unknown name raises ``ValueError`` with the valid ones."""
    name = os.environ.get(VARIABLE) or "native"
    if name not in MODES:
        raise ValueError(f"{VARIABLE}={name!r} is not an arithmetic mode; valid modes: "
                         f"{', '.join(MODES)}")
    return name


def check() -> str:
    """The mode, after checking that this process really runs in it: every variable of its
    ``ENVIRONMENT`` set, and (portable) torch's CPU kernels at AVX2. Otherwise ``ValueError``
    naming what is missing: the variables cannot take effect once torch is loaded."""
    name = mode()
    wrong = {k: os.environ.get(k) for k, v in ENVIRONMENT[name].items()
             if os.environ.get(k) != v}
    if wrong:
        need = " ".join(f"{k}={v}" for k, v in ENVIRONMENT[name].items())
        got = ", ".join(f"{k}={v!r}" for k, v in wrong.items())
        raise ValueError(f"{VARIABLE}={name} needs {need} in the environment before Python "
                         f"starts (got {got}); `python -m paper_lib.runnb` and `make figures "
                         f"ARITHMETIC={name}` set them")
    if name == "portable":
        import torch

        cap = torch.backends.cpu.get_cpu_capability()
        if cap != "AVX2":
            raise ValueError(f"{VARIABLE}=portable needs torch's CPU kernels at AVX2, got {cap!r} "
                             f"(a CPU without AVX2, or ATEN_CPU_CAPABILITY set after torch loaded)")
    return name


def supported(name: str) -> bool:
    """Whether this machine can run mode ``name``: ``portable`` needs an x86-64 CPU with AVX2
    (read from ``/proc/cpuinfo``, so Linux only); ``native`` runs anywhere."""
    if name not in MODES:
        raise ValueError(f"unknown arithmetic mode {name!r}; valid modes: {', '.join(MODES)}")
    if name == "native":
        return True
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx2" in line for line in f)
    except OSError:
        return False


def environment(name: str) -> dict[str, str]:
    """The environment of a child process that runs in mode ``name``: this process's, with
    ``PAPER_LIB_ARITHMETIC`` and the mode's variables set (they must be there before it starts)."""
    return {**os.environ, VARIABLE: name, **ENVIRONMENT[name]}


def main(argv: list[str] | None = None) -> int:
    """``python -m paper_lib.arithmetic MODE COMMAND [ARG...]``: run COMMAND with
    ``PAPER_LIB_ARITHMETIC=MODE`` and that mode's variables; ``python -m paper_lib.arithmetic
    default`` prints the mode ``make`` uses here (``portable`` where :func:`supported`, else
    ``native``). A bad mode or a missing command: one line on stderr, exit status 2."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["default"]:
        print("portable" if supported("portable") else "native")
        return 0
    if len(args) < 2 or args[0] not in MODES:
        print(f"usage: python -m paper_lib.arithmetic {{{','.join(MODES)}}} COMMAND [ARG...] | "
              f"default (got {' '.join(args) or 'nothing'})", file=sys.stderr)
        return 2
    if not supported(args[0]):
        print(f"arithmetic: mode {args[0]!r} needs an x86-64 CPU with AVX2; this machine has "
              f"none (use native)", file=sys.stderr)
        return 2
    try:
        os.execvpe(args[1], args[1:], environment(args[0]))
    except OSError as err:
        print(f"arithmetic: cannot run {args[1]!r}: {err.strerror}", file=sys.stderr)
        return 2


@contextmanager
def pinned(kind: str):
    """The arithmetic a model of class ``kind`` trains and samples in, after :func:`check`: under
    ``portable`` a transformer runs with oneDNN off; anything else runs as it is."""
    if check() == "portable" and kind == "transformer":
        import torch

        before = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = False
        try:
            yield
        finally:
            torch.backends.mkldnn.enabled = before
    else:
        yield


def optimizer_options(kind: str) -> dict:
    """Keyword arguments for the AdamW of a model of class ``kind`` in the current mode: under
    ``portable`` a transformer's is fused (its square root exactly rounded, not MKL's; module
    docstring), anything else gets none (native bits unchanged)."""
    return {"fused": True} if mode() == "portable" and kind == "transformer" else {}


if __name__ == "__main__":
    sys.exit(main())
