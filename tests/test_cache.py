import pickle

import numpy as np
import pytest

from paper_lib import cache


def test_memo_builds_once_then_loads():
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(5)}

    a = cache.memo("thing", {"n": 5}, build)
    b = cache.memo("thing", {"n": 5}, build)
    assert len(calls) == 1 and np.array_equal(a["x"], b["x"])
    cache.memo("thing", {"n": 6}, build)
    assert len(calls) == 2


def test_spec_key_is_order_independent_and_type_sensitive():
    assert cache.spec_key("k", {"a": 1, "b": 2}) == cache.spec_key("k", {"b": 2, "a": 1})
    assert cache.spec_key("k", {"a": 1}) != cache.spec_key("k", {"a": 1.0})
    assert cache.spec_key("k", {"a": 1}) != cache.spec_key("j", {"a": 1})


def test_truncated_entry_is_detected_and_rebuilt():
    cache.memo("thing", {"n": 1}, lambda: list(range(1000)))
    payload, _ = cache.entry_paths("thing", {"n": 1})
    payload.write_bytes(payload.read_bytes()[:50])
    with pytest.warns(cache.CacheCorruptWarning, match="corrupt"):
        out = cache.memo("thing", {"n": 1}, lambda: "rebuilt")
    assert out == "rebuilt"
    assert cache.load("thing", {"n": 1}) == "rebuilt"


def test_payload_without_manifest_is_not_trusted():
    payload, manifest = cache.entry_paths("thing", {"n": 2})
    payload.parent.mkdir(parents=True, exist_ok=True)
    payload.write_bytes(pickle.dumps("stale"))
    assert cache.load("thing", {"n": 2}) is None


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"

    with pytest.raises(TypeError):
        cache.atomic_write_bytes(target, object())  # not bytes: the write fails midway
    assert list(tmp_path.iterdir()) == []
    cache.atomic_write_bytes(target, b"ok")
    assert target.read_bytes() == b"ok" and (target.stat().st_mode & 0o777) == 0o644


def test_atomic_write_csv_header_rows_and_a_bad_row(tmp_path):
    target = tmp_path / "t.csv"
    cache.atomic_write_csv(target, ["a", "b"], [{"a": 1, "b": "x,y"}, {"a": 2, "b": 3.5}])
    assert target.read_text() == 'a,b\n1,"x,y"\n2,3.5\n'
    with pytest.raises(ValueError, match="zz"):   # a key outside the columns: nothing written
        cache.atomic_write_csv(target, ["a", "b"], [{"a": 1, "zz": 2}])
    assert target.read_text().startswith("a,b\n1,") and len(list(tmp_path.iterdir())) == 1


def _build_slowly(root, marker):
    import os
    import time

    os.environ["PAPER_LIB_CACHE"] = root

    def build():
        with open(marker, "a") as f:
            f.write("built\n")
        time.sleep(0.5)
        return 42

    return cache.memo("lock-test", {"k": 1}, build)


def test_concurrent_processes_build_an_entry_once(tmp_path):
    import multiprocessing as mp

    marker = tmp_path / "builds.txt"
    ctx = mp.get_context("fork")   # plain Python children: fork is safe here and starts at once
    with ctx.Pool(2) as pool:
        out = pool.starmap(_build_slowly, [(str(tmp_path / "c"), str(marker))] * 2)
    assert out == [42, 42]
    assert marker.read_text() == "built\n"


def test_fingerprint_hashes_arrays_and_recurses():
    a = np.arange(12.0).reshape(3, 4)
    f = cache.fingerprint({"x": a, "n": 3, "l": [a[:, ::2]]})
    assert f["n"] == 3 and f["x"]["shape"] == [3, 4] and len(f["x"]["sha256"]) == 64
    assert f["l"][0] == cache.fingerprint(np.ascontiguousarray(a[:, ::2]))
    b = a.copy()
    b[0, 0] = -0.0 + 1e-12
    assert cache.fingerprint(b) != cache.fingerprint(a)
    assert cache.fingerprint(a.astype(np.float32)) != cache.fingerprint(a)
