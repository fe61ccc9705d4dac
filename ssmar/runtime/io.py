"""File IO: atomic writes, and reading pickles from other people without running their code.

Everything is written to a temporary file in the target directory, flushed, fsynced
and renamed over the target, so readers see either the old or the new content.
Pickles are read by :func:`load_plain_pickle`, which builds only plain data.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import contextlib
import csv
import functools
import io
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

from ssmar.errors import SsmarError
from ssmar.runtime import faults


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary sibling of ``path``; rename it over ``path`` on success."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise SsmarError(f"cannot write {target}: {exc.strerror}; choose a writable directory") from exc
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~_umask())  # mkstemp's 0600 -> what open() would have given
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise SsmarError(f"writing {target} failed: {exc.strerror}; free space or fix permissions, then retry; "
                             "the previous file is untouched") from exc
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_pickle(obj: Any, path: str | os.PathLike) -> None:
    with atomic_open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)


class UnsafePickleError(SsmarError):
    """A pickle asked for a Python global outside :data:`PLAIN_PICKLE_GLOBALS`."""

    def __init__(self, refused: str):
        super().__init__(refused)
        self.refused = refused


@functools.cache
def numpy_globals() -> dict[str, Any]:
    """NumPy's array and scalar constructors under the module names that NumPy 1.x and 2.x write
    (``numpy.core`` vs ``numpy._core``), each mapped to this NumPy's own function, so a file written
    by either version loads here."""
    import numpy as np

    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float32(0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    table: dict[str, Any] = {"numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype}
    for package in ("numpy.core", "numpy._core"):
        table[f"{package}.multiarray._reconstruct"] = reconstruct
        table[f"{package}.multiarray.scalar"] = scalar
        table[f"{package}.numeric._frombuffer"] = frombuffer
    return table


# What PYSKL / MMAction2 / ssmar skeleton pickles hold: builtin containers and scalars, NumPy arrays,
# dtypes and scalars, and ``_codecs.encode``, which protocol-2 pickles (mmcv's default) use to carry
# bytes; the same short list PyTorch's ``weights_only`` loader admits for these types.
_BUILTINS = ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float",
             "complex", "bool", "slice", "range")
PLAIN_PICKLE_GLOBALS: dict[str, Any] = {
    **{f"builtins.{name}": getattr(builtins, name) for name in _BUILTINS},
    "collections.OrderedDict": collections.OrderedDict,
    "_codecs.encode": codecs.encode,
}


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        found = PLAIN_PICKLE_GLOBALS.get(qualified)
        if found is None and module.split(".")[0] == "numpy":
            found = numpy_globals().get(qualified)
        if found is None:
            raise UnsafePickleError(qualified)
        return found


def load_plain_pickle(path: str | os.PathLike) -> Any:
    """Unpickle ``path`` admitting only plain data (see :data:`PLAIN_PICKLE_GLOBALS`): a pickle that
    names any other global (a function to call, a class to build) raises :class:`UnsafePickleError`
    before anything is called. Other read errors propagate as :mod:`pickle` raises them."""
    with open(path, "rb") as handle:
        return _PlainUnpickler(handle).load()


def save_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_open(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, default=_json_default)
        handle.write("\n")


def save_text(text: str, path: str | os.PathLike) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def save_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str], path: str | os.PathLike) -> None:
    """``rows`` under a header of ``columns`` (other keys ignored), written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    save_text(buffer.getvalue(), path)


def save_npy(array: Any, path: str | os.PathLike) -> None:
    """A NumPy array as ``.npy`` (no pickled objects inside), written atomically."""
    import numpy as np

    with atomic_open(path, "wb") as handle:
        np.save(handle, np.asarray(array), allow_pickle=False)


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    import torch

    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)
        faults.point("checkpoint_write")  # kill-and-resume tests: die before the rename


def pyplot() -> Any:
    """matplotlib's pyplot on the headless Agg backend, imported on first use (commands that draw nothing start
    without it, and no display is needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_table(text: str, out: str | os.PathLike | None) -> None:
    """Print a result table and, when ``out`` is given, save it there atomically (the benchmark scripts' ``--out``)."""
    print(text, end="" if text.endswith("\n") else "\n")
    if out:
        save_text(text, out)


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> None:
    """Save a matplotlib figure atomically and close it."""
    plt = pyplot()

    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
