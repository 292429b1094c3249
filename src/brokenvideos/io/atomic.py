"""Atomic writes: write beside the target, fsync, then rename over it.

A step killed half-way leaves either the old file or the new one, never a torn one; the
temporary names start with '.tmp-' so a resumed step can sweep them. A full disk is the same case:
the partial temporary is removed and the step stops with one line naming the file (``DiskFull``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

from brokenvideos.errors import InputError

_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(InputError):
    """A write ran out of space. Raised after the partial file is gone, so a re-run trusts nothing."""

    def __init__(self, path, problem: str | None = None):
        if problem is None:
            problem = (f"no space left on device ({_free(Path(path).parent)} free there); nothing partial "
                       f"was kept: free some space, or point `results:` at a bigger disk, and re-run to "
                       f"resume")
        super().__init__(path, problem)


def _free(directory: Path) -> str:
    try:
        return f"{shutil.disk_usage(directory).free / 2**20:.1f} MiB"
    except OSError:
        return "unknown"


def _is_disk_full(exc: BaseException) -> bool:
    # Writers report it their own way: OSError's errno (Python, PIL), only the text (pyarrow's
    # OSError, the encoder process's RuntimeError).
    return getattr(exc, "errno", None) in _FULL or "No space left on device" in str(exc) \
        or "Disk quota exceeded" in str(exc)


@contextlib.contextmanager
def _reporting_disk_full(target: Path, outermost: bool = False):
    """``outermost``: a folder being built names itself, not the temporary file inside it that hit
    the limit; a file written on its own keeps a DiskFull raised deeper down as it is."""
    try:
        yield
    except DiskFull as exc:
        if outermost:
            raise DiskFull(target) from exc
        raise
    except Exception as exc:
        if _is_disk_full(exc):
            raise DiskFull(target) from exc
        raise


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``target``; on success rename it onto ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = target.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{target.stem}-", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        with _reporting_disk_full(target):
            yield tmp
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(target, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target, obj) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike):
    """Build a directory under a temporary name, then swap it in whole."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        with _reporting_disk_full(target, outermost=True):
            yield tmp
        if target.exists():
            old = target.with_name(f".old-{target.name}-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def sweep_temporaries(directory: str | os.PathLike, stems=None) -> int:
    """Remove leftovers of interrupted atomic writes; returns how many were removed.

    ``stems`` limits the sweep to temporaries of those targets (``.tmp-<stem>-…``): directories
    shared by concurrent writers (every shard of a generator) must only sweep their own.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    prefixes = (".tmp-", ".old-") if stems is None else \
        tuple(f"{kind}{stem}-" for stem in stems for kind in (".tmp-", ".old-"))
    removed = 0
    for p in directory.iterdir():
        if p.name.startswith(prefixes):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed += 1
    return removed
