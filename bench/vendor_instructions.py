"""Which instructions whose result depends on the CPU's maker a transformer run executes: the check
behind the portable mode's fused AdamW (``paper_lib.arithmetic``; README, Reproducibility).

    .venv/bin/python bench/vendor_instructions.py [--steps 3] [--settings native,...] \
        [--out bench/vendor_instructions.csv]

x86 defines the result of almost every floating-point instruction exactly (IEEE 754 add,
multiply, fused multiply-add, divide, square root, conversions), so two CPUs that execute the
same instructions on the same data compute the same bits. The approximations ``rcpps``/``rcpss``
and ``rsqrtps``/``rsqrtss`` (and their VEX forms) are the exception: only their error bound is
specified, and Intel and AMD implement them differently. The portable mode fixes which code path
each library takes; this script checks that the path it fixes executes none of them.

It disassembles torch's CPU library (``objdump``, Debian package ``binutils``; MKL and oneDNN are
linked into it) and numpy's and OpenBLAS's, and lists every such instruction. Then, per setting,
a child trains the transformer of ``code_paths.py`` for ``--steps`` steps on one thread and draws
500 motions, with ``gdb`` (Debian package ``gdb``; attaching needs root or
``kernel.yama.ptrace_scope = 0``) holding a breakpoint on every listed instruction of torch's
library that counts its hits and never stops. A row records how many of those instructions ran
(``executed``), how often (``executions``), in which functions, and how many executable memory
regions the child created (``generated_code_regions``: code generated at run time, such as
oneDNN's JIT kernels, which no scan of the files can see). numpy and OpenBLAS hold none of the
instructions (AVX-512's exactly specified ``rcp14``/``rsqrt14`` in numpy's AVX-512 loops aside,
which the portable mode's numpy pin never runs), so their code is not traced.

Settings: ``native`` (no pins), ``library-portable`` (``make figures ARITHMETIC=portable``: the
library's variables, oneDNN off and the transformer's AdamW fused) and ``portable-unfused`` (the
same with the unfused AdamW the portable mode used before; ``torch.sqrt`` then runs MKL's vector
square root, which starts from ``rsqrtps``). Results go to ``--out`` (written atomically); the
scan takes a few minutes.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))   # paper_lib from this checkout, installed or not
sys.path.insert(0, str(HERE))          # code_paths.py beside this script
import code_paths  # noqa: E402
from paper_lib.cache import atomic_write_csv  # noqa: E402

COLUMNS = ["setting", "environment", "torch_instructions", "numpy_openblas_instructions",
           "executed", "executions", "functions", "generated_code_regions", "weights_sha",
           "samples_sha"]
LIBRARY = code_paths.SETTINGS["library-portable"]   # make figures ARITHMETIC=portable
SETTINGS = {"native": {}, "portable-unfused": {**LIBRARY, "UNFUSED_ADAMW": "1"},
            "library-portable": LIBRARY}
# a maker-specific approximation, SSE or VEX encoded: (v)rcpps, (v)rcpss, (v)rsqrtps, (v)rsqrtss
APPROXIMATION = re.compile(r"\tv?(?:rcp|rsqrt)[ps]s\b")
FUNCTION = re.compile(r"^[0-9a-f]+ <(.+)>:$")


def scan(library: Path) -> list[tuple[int, str]]:
    """(address in the file, function) of every maker-specific approximation in ``library``."""
    out, function = [], "?"
    with subprocess.Popen(["objdump", "-d", "--no-show-raw-insn", str(library)],
                          stdout=subprocess.PIPE, text=True, errors="replace") as p:
        for line in p.stdout:
            if line.endswith(">:\n"):
                m = FUNCTION.match(line.rstrip("\n"))
                function = m.group(1) if m else function
            elif ("rcp" in line or "rsqrt" in line) and APPROXIMATION.search(line):
                out.append((int(line.split(":", 1)[0], 16), function))
    if p.returncode:
        sys.exit(f"vendor_instructions: objdump failed on {library}")
    return out


def _libraries() -> tuple[Path, list[Path]]:
    """torch's CPU library; numpy's and OpenBLAS's."""
    import numpy
    import torch

    np_root = Path(numpy.__file__).parent
    others = sorted(np_root.glob("_core/_multiarray_umath*.so")) + \
        sorted((np_root.parent / "numpy.libs").glob("*openblas*.so*"))
    return Path(torch.__file__).parent / "lib" / "libtorch_cpu.so", others


def child(go: str, steps: int) -> None:
    """Wait until the file ``go`` exists (gdb attaches meanwhile), then train and sample; print
    the hashes and the count of executable regions created at run time as one JSON line."""
    import torch  # noqa: F401  - the library is mapped before the parent reads our maps

    if os.environ.get("UNFUSED_ADAMW"):
        from paper_lib import arithmetic

        arithmetic.optimizer_options = lambda kind: {}
    print(os.getpid(), flush=True)
    while not os.path.exists(go):
        time.sleep(0.1)
    r = code_paths.child(steps, 0)
    maps = [ln.split() for ln in Path("/proc/self/maps").read_text().splitlines()]
    r["generated_code_regions"] = sum("x" in f[1] and len(f) < 6 for f in maps)
    print(json.dumps(r), flush=True)


def _base(pid: int, library: Path) -> int:
    """Where ``library`` is mapped in process ``pid`` (its mapping at file offset 0)."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        f = line.split()
        if len(f) >= 6 and Path(f[5]).name == library.name and int(f[2], 16) == 0:
            return int(f[0].split("-")[0], 16)
    sys.exit(f"vendor_instructions: {library.name} is not mapped in the child")


def traced(name: str, steps: int, library: Path, sites: list[tuple[int, str]]) -> dict:
    """Run the child of setting ``name`` under gdb with a counting breakpoint on every site."""
    env = {**{k: v for k, v in os.environ.items() if k not in {*LIBRARY, "UNFUSED_ADAMW"}},
           **SETTINGS[name], "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        p = subprocess.Popen([sys.executable, __file__, "--child", go, "--steps", str(steps)],
                             env=env, stdout=subprocess.PIPE, text=True)
        pid = int(p.stdout.readline())
        base = _base(pid, library)
        cmds = ["set pagination off", "set confirm off"]
        for i, (address, _) in enumerate(sites, start=1):
            cmds += [f"break *{base + address:#x}", f"ignore {i} 1000000000"]
        cmds += [f"shell touch {go}", "continue", "info breakpoints"]
        (Path(tmp) / "cmds").write_text("\n".join(cmds) + "\n")
        gdb = subprocess.run(["gdb", "-p", str(pid), "-batch", "-x", str(Path(tmp) / "cmds")],
                             capture_output=True, text=True)
        out, _ = p.communicate()
    if p.returncode:
        sys.exit(f"vendor_instructions: the child of {name!r} failed (gdb said: "
                 f"{gdb.stderr[-500:]})")
    # (breakpoint number, hits) of every breakpoint that was hit; breakpoint i is sites[i - 1]
    hit = [(int(i), int(n)) for i, n in re.findall(
        r"^(\d+)\s+breakpoint\s.*\n\s+breakpoint already hit (\d+) time", gdb.stdout, re.M)]
    functions = sorted({sites[i - 1][1] for i, _ in hit})
    r = json.loads(out.strip().splitlines()[-1])
    return {"executed": len(hit), "executions": sum(n for _, n in hit),
            "functions": " ".join(functions),
            "generated_code_regions": r["generated_code_regions"],
            "weights_sha": r["weights_sha"], "samples_sha": r["samples_sha"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--settings", default=",".join(SETTINGS),
                    help=f"comma-separated, from: {', '.join(SETTINGS)}")
    ap.add_argument("--out", default=str(HERE / "vendor_instructions.csv"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.steps)
        return
    names = code_paths.setting_names(ap, a.settings, SETTINGS)
    missing = [tool for tool in ("objdump", "gdb") if shutil.which(tool) is None]
    if missing:
        ap.error(f"needs {' and '.join(missing)} (Debian packages binutils, gdb)")
    torch_lib, others = _libraries()
    sites = scan(torch_lib)
    elsewhere = sum(len(scan(lib)) for lib in others)
    rows = []
    for name in names:
        r = {"setting": name, "environment": " ".join(f"{k}={v}" for k, v in
                                                        SETTINGS[name].items()),
             "torch_instructions": len(sites), "numpy_openblas_instructions": elsewhere,
             **traced(name, a.steps, torch_lib, sites)}
        rows.append(r)
        print(*(r[c] for c in COLUMNS if c != "environment"), sep="  ", flush=True)
    atomic_write_csv(Path(a.out), COLUMNS, rows)


if __name__ == "__main__":
    main()
