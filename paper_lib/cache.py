"""Content-addressed store for datasets, trained models and sample banks.

An entry is named by a hash of the JSON of everything that determines it (its *spec*). Each entry
is a payload file plus a small JSON manifest holding the payload's SHA-256; both are written to a
temporary file and renamed, the manifest last, so an interrupted write leaves no valid entry. A
payload that is missing, truncated or whose hash does not match is reported with a warning and
rebuilt.
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

from . import arithmetic

__all__ = ["cache_dir", "spec_key", "memo", "load", "store", "atomic_write_bytes",
           "atomic_write_csv", "entry_paths",
           "locked", "fingerprint", "CacheCorruptWarning"]

ROOT = Path(__file__).resolve().parents[1]
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class CacheCorruptWarning(UserWarning):
    """A cache entry existed but could not be trusted; it is rebuilt."""


def cache_root() -> Path:
    """``$PAPER_LIB_CACHE`` or ``<repo>/.cache/paper_lib``."""
    return Path(os.environ.get("PAPER_LIB_CACHE", ROOT / ".cache" / "paper_lib"))


def cache_dir() -> Path:
    """Where entries go: the cache root, or its folder for the portable arithmetic mode
    (``arithmetic.FOLDERS``), whose results differ from native ones in the last bits."""
    return cache_root() / arithmetic.FOLDERS[arithmetic.mode()]   # native: "" (the root)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _jsonable(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return repr(obj)
    if isinstance(obj, (int, str, bool)) or obj is None:
        return obj
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    return repr(obj)


def spec_key(kind: str, spec: Any) -> str:
    """A stable hex key for ``(kind, spec)``; ``spec`` is any JSON-able structure or dataclass."""
    text = json.dumps({"kind": kind, "spec": _jsonable(spec)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def entry_paths(kind: str, spec: Any) -> tuple[Path, Path]:
    """(payload path, manifest path) of an entry."""
    key = spec_key(kind, spec)
    d = cache_dir() / kind
    return d / f"{key}.pkl", d / f"{key}.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    """Write ``rows`` (dicts keyed by ``columns``) as a CSV table with a header, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def store(kind: str, spec: Any, obj: Any) -> None:
    """Store ``obj`` (picklable; tensors and arrays included) under ``(kind, spec)``."""
    payload, manifest = entry_paths(kind, spec)
    data = pickle.dumps(obj, protocol=5)
    atomic_write_bytes(payload, data)
    meta = {"kind": kind, "spec": _jsonable(spec), "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data)}
    atomic_write_bytes(manifest, json.dumps(meta, indent=1).encode())


def load(kind: str, spec: Any) -> Any:
    """The stored object, or ``None`` when there is no valid entry (a corrupt one is warned about)."""
    payload, manifest = entry_paths(kind, spec)
    if not manifest.exists():
        return None
    try:
        meta = json.loads(manifest.read_text())
        data = payload.read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise ValueError(f"checksum mismatch ({len(data)} of {meta['bytes']} bytes)")
        return pickle.loads(data)
    except Exception as exc:  # any failure means the entry cannot be trusted
        warnings.warn(f"cache entry {payload.name} ({kind}) is corrupt: {exc}; rebuilding",
                      CacheCorruptWarning, stacklevel=3)
        manifest.unlink(missing_ok=True)
        payload.unlink(missing_ok=True)
        return None


@contextlib.contextmanager
def locked(kind: str, spec: Any):
    """Hold an exclusive lock on entry ``(kind, spec)`` across processes (``fcntl.flock`` on a
    ``.lock`` file beside it). Concurrent runs (``make -j2``, two notebooks wanting the same model)
    build an entry once: the second waits for the first, then finds the entry. The lock is
    released when its holder exits, however it exits."""
    payload, _ = entry_paths(kind, spec)
    payload.parent.mkdir(parents=True, exist_ok=True)
    with open(payload.with_suffix(".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def memo(kind: str, spec: Any, build: Callable[[], Any]) -> Any:
    """Load ``(kind, spec)`` from the cache, or call ``build()``, store its result and return it.
    Building holds :func:`locked`, so concurrent processes never build the same entry twice."""
    obj = load(kind, spec)
    if obj is None:
        with locked(kind, spec):
            obj = load(kind, spec)   # built by another process while this one waited
            if obj is None:
                obj = build()
                store(kind, spec, obj)
    return obj


def fingerprint(obj: Any) -> Any:
    """A JSON-able stand-in for ``obj`` in a cache spec: arrays and tensors become their shape,
    dtype and the SHA-256 of their bytes; objects with a ``fingerprint()`` method (kernels,
    trained models) give their own; dicts, lists and tuples are fingerprinted item by item;
    anything else is left to :func:`spec_key`."""
    if hasattr(obj, "fingerprint") and callable(obj.fingerprint):
        return obj.fingerprint()
    if hasattr(obj, "detach") and hasattr(obj, "numpy"):  # a torch tensor
        obj = obj.detach().cpu().numpy()
    if hasattr(obj, "dtype") and hasattr(obj, "tobytes") and getattr(obj, "ndim", 0) > 0:
        a = obj if obj.flags.c_contiguous else obj.copy(order="C")
        return {"shape": list(a.shape), "dtype": str(a.dtype),
                "sha256": hashlib.sha256(a.data).hexdigest()}
    if isinstance(obj, dict):
        return {str(k): fingerprint(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [fingerprint(v) for v in obj]
    return obj
