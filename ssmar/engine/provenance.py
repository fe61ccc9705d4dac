"""Which code and data a run ran: the package version and, where the package sits in a git checkout,
the commit and whether the checkout had uncommitted changes; the data file's content digest. Recorded
in every run's ``config.yaml``, checkpoint and benchmark ``result.json`` so that a table can say which
code made each cell, and a cell trained on the same data under another path is recognised."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import ssmar


@functools.cache
def code_version() -> dict[str, Any]:
    """``{"version", "commit", "dirty"}``; commit and dirty are None outside a git checkout (an
    installed wheel, no git binary): a run still trains, its tables then say 'unrecorded'."""
    root = Path(ssmar.__file__).resolve().parents[1]
    commit = _git(root, "rev-parse", "HEAD")
    dirty = None
    if commit is not None:
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        dirty = bool(status) if status is not None else None
    return {"version": ssmar.__version__, "commit": commit, "dirty": dirty}


def file_digest(path: str | Path | None) -> str | None:
    """The SHA-256 of a file's bytes; None when there is no such file (video data has no ``data.file``)."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        return None
    stat = path.stat()
    return _digest(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _digest(path: Path, size: int, mtime_ns: int) -> str:  # size and mtime key the cache: a rewritten file is hashed again
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def short_version(code: dict[str, Any] | None) -> str:
    """``a1b2c3d`` / ``a1b2c3d+dirty`` / ``0.1.0`` / ``unrecorded``: how tables name a cell's code."""
    if not code:
        return "unrecorded"
    if not code.get("commit"):
        return str(code.get("version") or "unrecorded")
    return code["commit"][:7] + ("+dirty" if code.get("dirty") else "")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
