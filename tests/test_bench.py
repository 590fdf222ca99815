"""The benchmark's pieces at tiny sizes (seconds): the quick run without notebooks, its result
table and targets, the parameter matching of the reference U-Nets (skipped when the ``bench``
extra is not installed), and the notebook timing wrapper used by the Makefile."""
import importlib.util
import math
import os
import shutil
import sys

import pandas as pd
import pytest
import torch

from paper_lib import ROOT, runnb

sys.path.insert(0, str(ROOT / "bench"))   # the benchmark is a script beside the library
import benchmark as bench  # noqa: E402
import references  # noqa: E402
from paper_lib.models import build, count_params, make_spec
from paper_lib.profiles import get_profile

TINY = get_profile("smoke").with_(n_train=64, train_steps=5, n_samples=32, kernel_n=32,
                                  batch_size=8, width=4)
CFG = bench.BenchConfig(profile=TINY, warmup=1, reps=2, steps_per_rep=1, gemm_n=64,
                        gemm_reps=2, ddim_steps=5, kernel_reps=1, figures=False,
                        references=False, quick=True)


def test_quick_run_without_references_or_notebooks(tmp_path):
    rows = bench.run(CFG)
    df = rows.frame()
    assert list(df.columns) == bench.Rows.columns
    assert {"env", "train", "flops", "sample", "kernel", "target"} <= set(df.group)
    assert rows.get("train", "diffusion-unet", "trajectories_per_s") > 0
    assert rows.get("flops", "diffusion-unet", "flops_per_step") > 0
    assert rows.get("train", "diffusion-unet 1 thread", "trajectories_per_s") > 0
    side = df[(df.group == "train") & df.item.str.endswith("x 1 thread")]
    assert set(side.metric) == {"trajectories_per_s", "ratio_over_threaded"}
    assert (side.value > 0).all()
    assert 0 < rows.get("flops", "diffusion-unet", "utilisation") < 10
    assert rows.get("sample", "ddim", "trajectories_per_s") > 0
    assert 0 <= rows.get("sample", "ddpm-vs-ddpm", "tv") <= 1
    for family in (*bench.DATA_ONLY, "denoise"):
        assert rows.get("kernel", family, "speedup") > 0
    # parts that did not run are reported as such, not as a pass
    targets = df[df.group == "target"].set_index("item")
    assert targets.loc["make figures cold <= 20 min", "note"].startswith("n/a")
    path = rows.write(tmp_path / "results.csv")
    back = pd.read_csv(path)
    assert list(back.columns) == bench.Rows.columns and len(back) == len(df)
    assert "== train ==" in bench.format_table(rows)


def test_targets_pass_fail_and_missing():
    rows = bench.Rows()
    rows.add("notebook", "make figures", "cold_seconds", 1000, "s")
    rows.add("notebook", "make figures", "warm_seconds", 30, "s")
    rows.add("sample", "ddpm-vs-ddpm", "tv", 0.0)
    rows.add("sample", "ddim-vs-ddpm", "tv", 0.1)
    verdicts = {label: v for label, _, v in bench.add_targets(rows)}
    assert verdicts["make figures cold <= 20 min"].startswith("PASS")
    assert verdicts["make figures warm <= 10 s"].startswith("FAIL")
    assert verdicts["U-Net utilisation >= 20% of GEMM (side by side, as models.fit trains)"]\
        .startswith("n/a")
    rows.add("flops", "diffusion-unet", "utilisation", 0.1)
    rows.add("flops", "diffusion-unet 2 x 1 thread", "utilisation", 0.25)
    assert bench._side_by_side_utilisation(rows) == 0.25
    assert verdicts["check: DDIM drift within DDPM seed noise (TV <= 1.5x)"].startswith("n/a")


def test_train_step_timing_flops_and_gemm():
    spec = make_spec("diffusion-unet", TINY)
    data = torch.randn(16, 16, 2)
    step = bench.make_train_step(build(spec, 16, 2), spec, data)
    assert math.isfinite(step())
    assert bench.flops_per_step(step) > 0
    rates = bench.time_interleaved({"a": step, "b": step}, spec.batch_size, 1, 2, 1)
    assert set(rates) == {"a", "b"} and all(len(r) == 2 and min(r) > 0 for r in rates.values())
    assert min(bench.gemm_rates(32, 2)) > 0


def test_unet_shapes_of_the_parameter_search():
    m = references._mults(3)
    assert (1, 2, 4) in m and (1, 2, 2) in m
    assert (1, 1, 1) not in m and all(b <= 2 * a for mm in m for a, b in zip(mm, mm[1:]))
    assert references._unet_shape((16, 24, 48)) and not references._unet_shape((16, 48, 48))


def _trains(net) -> bool:
    """One bench training step of ``net`` on random data gives a finite loss."""
    spec = make_spec("diffusion-unet", TINY)
    return math.isfinite(bench.make_train_step(net, spec, torch.randn(16, 64, 2))())


def _ours(C=2):
    return count_params(build(make_spec("diffusion-unet", get_profile("smoke")), 64, C))


@pytest.mark.skipif(importlib.util.find_spec("denoising_diffusion_pytorch") is None,
                    reason="bench extra (denoising-diffusion-pytorch) not installed")
def test_ddp_unet1d_matched_and_trainable():
    cls, note = references.ddp_unet1d()
    assert cls is not None, note
    target = _ours()
    kw, n = references.closest_ddp_config(cls, target, 2)
    assert abs(n / target - 1) < 0.15 and kw["dim"] % 2 == 0
    net = bench._channels_first(cls(**kw, channels=2))
    assert count_params(net) == n
    assert _trains(net)


@pytest.mark.skipif(importlib.util.find_spec("diffusers") is None,
                    reason="bench extra (diffusers) not installed")
def test_diffusers_unet1d_matched_and_trainable():
    cls, note = references.diffusers_unet1d()
    assert cls is not None, note
    target = _ours()
    chans, n = references.closest_diffusers_config(cls, target, 64, 2)
    assert all(c % 8 == 0 for c in chans) and abs(n / target - 1) < 0.25
    net = bench._channels_first(references.diffusers_model(cls, chans, 64, 2), "sample")
    assert _trains(net)


def test_missing_reference_is_reported(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert references.ddp_unet1d() == (None, "not installed")
    assert references.diffusers_unet1d() == (None, "not installed")


def test_notebook_rows_from_make_figures_timings(tmp_path):
    cold, warm = tmp_path / "cold.csv", tmp_path / "warm.csv"
    for path, secs in ((cold, [100.0, 200.0, 250.0]), (warm, [3.0, 4.0, 5.0])):
        for nb, sec in zip(["01_a", "02_b", "02_b"], secs):   # 02_b ran twice: the last counts
            runnb.append_timing(path, dict(zip(runnb.TIMING_COLUMNS,
                                               [nb, "default", sec, 500.0, "/c", "t", sec])))
    rows = bench.Rows()
    bench.figures_from_timings(cold, warm, rows)
    assert rows.get("notebook", "02_b", "cold_seconds") == 250.0
    assert rows.get("notebook", "make figures", "cold_seconds") == 350.0
    assert rows.get("notebook", "make figures", "warm_seconds") == 8.0
    verdicts = {label: v for label, _, v in bench.add_targets(rows)}
    assert verdicts["make figures cold <= 20 min"].startswith("PASS")
    assert verdicts["make figures warm <= 10 s"].startswith("PASS")
    with pytest.raises(ValueError, match="no timings"):
        bench.figures_from_timings(tmp_path / "missing.csv", warm, bench.Rows())


def test_append_timing_writes_one_header(tmp_path):
    path = tmp_path / "t" / "timings.csv"
    row = dict(zip(runnb.TIMING_COLUMNS, ["nb", "smoke", 1.5, 100.0, "/c", "now", 2.5]))
    runnb.append_timing(path, row)
    runnb.append_timing(path, {**row, "notebook": "nb, with comma"})
    df = runnb.read_timings(path)
    assert list(df.columns) == runnb.TIMING_COLUMNS
    assert list(df.notebook) == ["nb", "nb, with comma"]
    assert runnb.read_timings(tmp_path / "none.csv").empty


def test_append_timing_upgrades_a_table_of_an_earlier_version(tmp_path):
    """A timings table written before ``cpu_seconds`` existed gets today's header, its rows kept
    (the new column empty), and the new row after them; no temporary file is left."""
    path = tmp_path / "timings.csv"
    path.write_text("notebook,profile,seconds,peak_mib,cache_dir,timestamp\n"
                    "01_a,default,10.5,600.0,/c,t0\n")
    row = dict(zip(runnb.TIMING_COLUMNS, ["02_b", "default", 20.0, 700.0, "/c", "t1", 35.5]))
    runnb.append_timing(path, row)
    df = runnb.read_timings(path)
    assert list(df.columns) == runnb.TIMING_COLUMNS
    assert list(df.notebook) == ["01_a", "02_b"] and list(df.seconds) == [10.5, 20.0]
    assert df.cpu_seconds.isna().tolist() == [True, False] and df.cpu_seconds[1] == 35.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["timings.csv"]


NOTEBOOK = '''# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
profile = "default"

# %%
import os
open("ran.txt", "w").write(profile + " " + os.environ["PAPER_LIB_CACHE"])
'''


@pytest.mark.skipif(importlib.util.find_spec("papermill") is None, reason="papermill missing")
def test_runnb_executes_and_records(tmp_path, monkeypatch):
    src = tmp_path / "nb" / "00_tiny.py"
    src.parent.mkdir()
    src.write_text(NOTEBOOK)
    out = tmp_path / "build" / "00_tiny.ipynb"
    assert runnb.main([str(src), str(out), "-p", "profile", "smoke",
                       "--timings", str(tmp_path / "timings.csv")]) == 0
    assert out.exists() and not list(out.parent.glob("*.src.ipynb"))
    assert not list(out.parent.glob("*.tmp.ipynb"))
    ran = (src.parent / "ran.txt").read_text()  # ran in the script's folder with the parameter
    assert ran.startswith("smoke ") and ran.endswith(str(tmp_path / "cache"))
    t = runnb.read_timings(tmp_path / "timings.csv")
    assert len(t) == 1 and t.notebook[0] == "00_tiny" and t.profile[0] == "smoke"
    assert t.seconds[0] > 0 and t.peak_mib[0] > 10 and t.cache_dir[0] == str(tmp_path / "cache")
    assert 0 < t.cpu_seconds[0] <= os.cpu_count() * t.seconds[0]   # this run's children only


def test_code_paths_pinned_setting_ignores_a_perturbed_isa(tmp_path):
    """bench/code_paths.py at 2 steps: each pinned setting gives the same weights and samples when
    oneDNN is limited to SSE4.1 (as on another CPU) or, for ``portable-avx2``, on one thread
    instead of two; every setting trains on the same data (none pins numpy); the table has its
    columns, with ``--host-name`` in the cpu column."""
    import subprocess

    out = tmp_path / "paths.csv"
    pinned = {"portable": ["portable", "portable-onednn-sse41"],
              "portable-avx2": ["portable-avx2", "portable-avx2-onednn-sse41",
                                "portable-avx2-1-thread"]}
    subprocess.run([sys.executable, str(ROOT / "bench" / "code_paths.py"), "--steps", "2",
                    "--unet-steps", "1", "--settings", ",".join(sum(pinned.values(), [])),
                    "--host-name", "machine A", "--out", str(out)], check=True,
                   capture_output=True)
    df = pd.read_csv(out)
    assert list(df.setting) == sum(pinned.values(), []) and (df.cpu == "machine A").all()
    assert df.data_sha.nunique() == 1 and len(df.data_sha[0]) == 16
    for first, group in pinned.items():
        rows = df[df.setting.isin(group)]
        assert rows.weights_sha.nunique() == 1 and rows.samples_sha.nunique() == 1
        assert (rows.same_weights_as == first).all()
    assert df.weights_sha.nunique() == 2
    assert (df.transformer_ms_per_step > 0).all() and (df.unet_ms_per_step > 0).all()
    bad = subprocess.run([sys.executable, str(ROOT / "bench" / "code_paths.py"), "--settings",
                          "portabel"], capture_output=True, text=True)
    assert bad.returncode == 2 and "valid settings" in bad.stderr
    no_qemu = subprocess.run([sys.executable, str(ROOT / "bench" / "code_paths.py"), "--cpus",
                              "host,Haswell-v4"], capture_output=True, text=True,
                             env={**os.environ, "PATH": str(tmp_path)})
    assert no_qemu.returncode == 2 and "qemu-user" in no_qemu.stderr


def test_training_chaos_lockstep_and_the_key_bias():
    """bench/training_chaos.py at 3 steps: two copies on the same data stay bit-identical (the
    control), a one-rounding-step nudge of half the data separates them, and holding the key bias
    at zero keeps it exactly zero. The premise of that variant: a key bias does not change the
    transformer's output (softmax ignores a constant added to a row of scores)."""
    import training_chaos as chaos

    tiny = TINY.with_(train_steps=3)
    data = torch.linspace(-1, 1, 64).reshape(2, 32, 1)
    moved = chaos.nudged(data)
    assert (moved != data).sum() == 32 and torch.allclose(moved, data, rtol=2.4e-7, atol=0)
    same = chaos.lockstep("transformer", "sine", tiny, steps=3, every=1, nudge=False)
    assert [r["step"] for r in same] == [1, 2, 3]
    assert all(float(r["weights_rel"]) == 0 and float(r["outputs_rel"]) == 0 for r in same)
    apart = chaos.lockstep("transformer", "sine", tiny, steps=3, every=3)
    assert float(apart[-1]["weights_rel"]) > 0 and list(apart[-1]) == chaos.COLUMNS

    net = build(make_spec("transformer", TINY), 16, 2).eval()
    x = torch.randn(4, 15, 2)
    before = net(x)[0]
    with torch.no_grad():
        d = net.blocks[0].qkv.bias.shape[0] // 3
        for block in net.blocks:
            block.qkv.bias[d:2 * d] += torch.randn(d)
    assert torch.allclose(net(x)[0], before, atol=1e-5)
    chaos.hold_key_bias_at_zero(net)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        net.loss(torch.randn(4, 16, 2), None).backward()
        opt.step()
    assert all((b.qkv.bias[d:2 * d] == 0).all() for b in net.blocks)


@pytest.mark.skipif(not (shutil.which("as") and shutil.which("objdump")),
                    reason="binutils missing")
def test_vendor_instructions_scan_finds_each_approximation_in_its_function(tmp_path):
    """bench/vendor_instructions.py's scan on a tiny assembled object: the SSE and VEX forms of
    rcp/rsqrt (packed and scalar) are found, each in its function, and the exactly specified
    AVX-512 rcp14 and the IEEE sqrtps are not."""
    import subprocess

    import vendor_instructions as vi

    (tmp_path / "t.s").write_text("""
        .text
        .globl exact
    exact:
        sqrtps %xmm0, %xmm1
        vrcp14ps %zmm0, %zmm1
        ret
        .globl approximate
    approximate:
        rsqrtps %xmm0, %xmm1
        rcpss %xmm0, %xmm1
        vrcpps %ymm0, %ymm1
        vrsqrtss %xmm0, %xmm1, %xmm2
        ret
    """)
    subprocess.run(["as", str(tmp_path / "t.s"), "-o", str(tmp_path / "t.o")], check=True)
    sites = vi.scan(tmp_path / "t.o")
    assert [f for _, f in sites] == ["approximate"] * 4
    assert len({a for a, _ in sites}) == 4
    bad = subprocess.run([sys.executable, str(ROOT / "bench" / "vendor_instructions.py"),
                          "--settings", "portabel"], capture_output=True, text=True)
    assert bad.returncode == 2 and "valid settings" in bad.stderr


def _committed_paths(name: str) -> pd.DataFrame:
    return pd.read_csv(ROOT / "bench" / name).set_index("setting")


def test_code_paths_two_real_cpu_families_agree_only_in_the_portable_mode():
    """The committed runs of bench/code_paths.py (60 steps) on a real AMD EPYC (AVX2) and a real
    Intel Xeon (AVX-512): the same training data either way; natively different weights and
    samples, in the library's portable mode the same, bit for bit."""
    amd, intel = _committed_paths("code_paths.csv"), _committed_paths("code_paths_intel.csv")
    assert "AMD" in amd.cpu["native"] and "Intel" in intel.cpu["native"]
    assert (amd.cpu_capability["native"], intel.cpu_capability["native"]) == ("AVX2", "AVX512")
    assert amd.data_sha["native"] == intel.data_sha["native"] == intel.data_sha["library-portable"]
    for col in ("weights_sha", "samples_sha"):
        assert amd[col]["native"] != intel[col]["native"]
        assert amd[col]["library-portable"] == intel[col]["library-portable"]


def test_portable_mode_gives_the_committed_bits_on_this_cpu(tmp_path):
    """The library's portable mode on the machine running the tests trains and samples the
    transformer (2 steps) with the bits committed from a real AMD CPU and two emulated ones
    (bench/code_paths_emulated.csv), whatever this CPU's family; needs AVX2, as the mode does."""
    import subprocess

    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("the portable mode needs a CPU with AVX2")
    out = tmp_path / "here.csv"
    subprocess.run([sys.executable, str(ROOT / "bench" / "code_paths.py"), "--steps", "2",
                    "--unet-steps", "1", "--settings", "library-portable", "--out", str(out)],
                   check=True, capture_output=True)
    here = pd.read_csv(out).set_index("setting").loc["library-portable"]
    committed = _committed_paths("code_paths_emulated.csv").loc["library-portable"]
    assert set(committed.cpu) == {"AMD EPYC", "Haswell-v4", "EPYC-Rome-v2"}
    for col in ("data_sha", "weights_sha", "samples_sha"):
        assert committed[col].nunique() == 1 and here[col] == committed[col].iloc[0], col
