"""The arithmetic modes (paper_lib.arithmetic): a bad or half-set mode is one clear error, portable
results are cached apart, and under ``portable`` the transformer's weights and samples no longer
depend on the code path another CPU would take."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paper_lib import arithmetic, cache, drift, get_profile, make_dataset, models

ROOT = Path(__file__).resolve().parents[1]

# trains the default-size transformer for 2 steps on sine and draws 50 motions; prints whether
# oneDNN is on afterwards and a hash of the weights and samples
CHILD = """
import hashlib, torch, paper_lib
from paper_lib import drift, models
P = paper_lib.get_profile("default")
data = paper_lib.make_dataset(drift.task_for("sine", P), 256, seed=0, use_cache=False)
tr = models.fit(models.make_spec("transformer", P, train_steps=2), data, P, seed=0,
                use_cache=False, progress=False)
X = models.sample(tr, 50, seed=0)
w = torch.cat([v.double().ravel() for v in tr.state.values() if v.is_floating_point()])
print(torch.backends.mkldnn.enabled, hashlib.sha256(w.numpy().tobytes() + X.tobytes()).hexdigest())
"""


def _unpinned() -> dict:
    """This process's environment without any arithmetic mode or pin."""
    return {k: v for k, v in os.environ.items()
            if k not in {"PAPER_LIB_ARITHMETIC", "ONEDNN_MAX_CPU_ISA",
                         *arithmetic.ENVIRONMENT["portable"]}}


def _child(env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", CHILD], env={**_unpinned(), **env}, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_unknown_mode_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("PAPER_LIB_ARITHMETIC", "portabel")
    for call in (arithmetic.mode, cache.cache_dir):
        with pytest.raises(ValueError, match="PAPER_LIB_ARITHMETIC='portabel'.*native, portable"):
            call()
    monkeypatch.setenv("PAPER_LIB_ARITHMETIC", "")
    assert arithmetic.mode() == "native" and arithmetic.check() == "native"


def test_portable_without_its_variables_refuses_to_train(monkeypatch, tmp_path):
    """Set after Python started, the variables cannot take effect: training says which are
    missing instead of caching native bits as portable ones."""
    monkeypatch.setenv("PAPER_LIB_CACHE", str(tmp_path))
    monkeypatch.setenv("PAPER_LIB_ARITHMETIC", "portable")
    monkeypatch.delenv("MKL_CBWR", raising=False)
    assert cache.cache_dir() == tmp_path / arithmetic.FOLDERS["portable"]
    P = get_profile("smoke")
    data = make_dataset(drift.task_for("sine", P), 8, seed=0, use_cache=False)
    with pytest.raises(ValueError, match="MKL_CBWR=COMPATIBLE.*before Python starts"):
        models.fit(models.make_spec("vae", P, train_steps=1), data, P, use_cache=False,
                   progress=False)


def test_runnb_rejects_an_unknown_mode_before_starting(monkeypatch, tmp_path):
    monkeypatch.setenv("PAPER_LIB_ARITHMETIC", "fast")
    out = subprocess.run([sys.executable, "-m", "paper_lib.runnb",
                          "notebooks/01_synthetic_tasks.py", str(tmp_path / "x.ipynb"),
                          "-p", "profile", "smoke"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "valid modes: native, portable" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not list(tmp_path.iterdir())


def test_portable_transformer_ignores_the_code_path_of_another_cpu():
    """oneDNN limited to SSE4.1, as on an older CPU, changes the natively trained transformer
    (so the check can fail) but not the one trained and sampled in the portable mode; oneDNN is
    switched back on afterwards."""
    portable = {**arithmetic.ENVIRONMENT["portable"], "PAPER_LIB_ARITHMETIC": "portable"}
    sse41 = {"ONEDNN_MAX_CPU_ISA": "SSE41"}
    native, native_sse41 = _child({}), _child(sse41)
    pinned, pinned_sse41 = _child(portable), _child({**portable, **sse41})
    assert native != native_sse41
    assert pinned == pinned_sse41 != native
    assert all(line.startswith("True ") for line in (native, pinned))


def test_a_worker_gets_the_cache_root_and_the_mode(monkeypatch, tmp_path):
    """A training job sent to a worker (paper_lib.parallel) uses the submitting process's cache
    root and mode, so a portable job's entries land in the portable folder once, not twice."""
    import torch

    from paper_lib import parallel

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)   # this process keeps its own
    monkeypatch.setenv("PAPER_LIB_CACHE", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("PAPER_LIB_ARITHMETIC", "native")
    seen = {}
    parallel._call(lambda: seen.update(folder=cache.cache_dir()), str(tmp_path), "portable")
    assert seen["folder"] == tmp_path / arithmetic.FOLDERS["portable"]


def test_portable_transformer_takes_no_square_root_from_mkl(monkeypatch):
    """ATen hands an elementwise ``torch.sqrt`` to MKL's vector math, whose float square root
    starts from ``rsqrtps``, an approximation each CPU maker implements differently
    (``bench/vendor_instructions.py``). Under ``portable`` a transformer's optimiser step takes
    none (its AdamW is fused); natively it does, so the check can fail. Other classes keep
    their AdamW."""
    import torch

    from paper_lib.models import train

    P = get_profile("smoke")
    task = drift.task_for("sine", P)
    data = torch.as_tensor(task.to_model(make_dataset(task, 16, seed=0, use_cache=False).X))
    calls = []
    for owner, name in ((torch, "_foreach_sqrt"), (torch.Tensor, "sqrt"), (torch, "sqrt")):
        real = getattr(owner, name)
        monkeypatch.setattr(owner, name,
                            lambda *a, _real=real, **k: calls.append(1) or _real(*a, **k))
    for mode, kind, takes_sqrt in (("native", "transformer", True),
                                   ("portable", "transformer", False),
                                   ("portable", "vae", True)):
        monkeypatch.setenv("PAPER_LIB_ARITHMETIC", mode)
        spec = models.make_spec(kind, P)
        net, ema, opt, gen, sched = train.initial_state(spec, data, 0, torch.device("cpu"))
        calls.clear()
        train.train_step(net, ema, opt, data, gen, spec, sched, 0)
        assert bool(calls) == takes_sqrt, (mode, kind)
        assert bool(opt.defaults.get("fused")) == (not takes_sqrt)


def _launch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "paper_lib.arithmetic", *args], env=_unpinned(),
                          cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("mode", arithmetic.MODES)
def test_the_launcher_starts_a_command_with_its_modes_variables(mode):
    """``python -m paper_lib.arithmetic MODE CMD`` (how make starts nbval and lab) hands CMD the
    mode and every one of its variables, and a child Python started that way passes ``check``."""
    if not arithmetic.supported(mode):
        pytest.skip(f"this CPU cannot run {mode}")
    code = ("import json, os; from paper_lib import arithmetic; arithmetic.check(); "
            "print(json.dumps({k: os.environ.get(k) for k in "
            "[arithmetic.VARIABLE, *arithmetic.ENVIRONMENT['portable']]}))")
    out = _launch(mode, sys.executable, "-c", code)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen.pop(arithmetic.VARIABLE) == mode
    assert seen == {k: arithmetic.ENVIRONMENT[mode].get(k) for k in seen}


def test_the_launcher_refuses_a_bad_mode_or_a_missing_command():
    for args in (("portabel", "true"), ("native",), ()):
        out = _launch(*args)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, args
        assert "native,portable" in out.stderr
    out = _launch("native", "no-such-command-here")
    assert out.returncode == 2 and "cannot run 'no-such-command-here'" in out.stderr
    with pytest.raises(ValueError, match="'fast'.*native, portable"):
        arithmetic.supported("fast")


def test_make_runs_the_notebooks_portable_where_the_cpu_allows_it():
    """The Makefile's default mode is the launcher's ``default`` (portable on x86-64 with AVX2,
    else native), figures and smoke notebooks get it, nbval starts through the launcher with it,
    and ``ARITHMETIC=native`` overrides it; pytest itself runs in no mode."""
    default = _launch("default").stdout.strip()
    assert default == ("portable" if arithmetic.supported("portable") else "native")
    # a make of its own, not one that inherits the variables of a `make test ARITHMETIC=...`
    env = {k: v for k, v in os.environ.items()
           if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS", "ARITHMETIC", arithmetic.VARIABLE}}

    def probe(*args):
        """What a recipe of each kind of target sees as its mode (make runs nothing else)."""
        rule = ("build/smoke/p.ipynb build/default/p.ipynb p-other: ; "
                "@echo $${PAPER_LIB_ARITHMETIC-none}")
        out = subprocess.run(["make", "-s", "--no-print-directory", *args, "--eval", rule,
                              "build/smoke/p.ipynb", "build/default/p.ipynb", "p-other"],
                             cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        return out.stdout.split()

    assert probe() == [default, default, "none"]
    assert probe("ARITHMETIC=native") == ["native", "native", "none"]
    nbval = subprocess.run(["make", "-n", "--no-print-directory", "nbval"], cwd=ROOT, env=env,
                           capture_output=True, text=True).stdout
    assert f"-m paper_lib.arithmetic {default} .venv/bin/python -m pytest" in nbval


def test_portable_is_supported_only_on_x86_64_with_avx2(monkeypatch, tmp_path):
    """``supported`` reads the machine and the CPU flags: an ARM machine, or an x86-64 one whose
    flags lack AVX2 or cannot be read, cannot run ``portable``; ``native`` runs anywhere."""
    import builtins
    flags = {"with": "flags\t\t: fpu sse2 avx avx2 fma\n", "without": "flags\t\t: fpu sse2 avx\n"}
    real_open = builtins.open

    def fake_open(which):
        def opener(path, *args, **kwargs):
            if str(path) != "/proc/cpuinfo":
                return real_open(path, *args, **kwargs)
            if which is None:
                raise FileNotFoundError(path)
            f = tmp_path / "cpuinfo"
            f.write_text(flags[which])
            return real_open(f, *args, **kwargs)
        return opener

    for machine, which, expected in (("x86_64", "with", True), ("x86_64", "without", False),
                                     ("x86_64", None, False), ("arm64", "with", False)):
        monkeypatch.setattr(arithmetic.platform, "machine", lambda m=machine: m)
        monkeypatch.setattr(builtins, "open", fake_open(which))
        assert arithmetic.supported("portable") is expected, (machine, which)
        assert arithmetic.supported("native") is True
