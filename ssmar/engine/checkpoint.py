"""Checkpoint IO: the format tag, reading a checkpoint back, and the device a run or a loaded
model goes to. The trainer writes checkpoints (``Trainer.checkpoint_state``); inference reads them
through this module without importing the trainer.

Checkpoints hold tensors and plain containers only (:func:`plain_state`) and are read with PyTorch's
``weights_only`` loader, so a checkpoint from someone else cannot run code. Checkpoints written
before that rule hold NumPy's random state as an array: NumPy's array constructors are admitted too.
"""

from __future__ import annotations

import pickle
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch

from ssmar.errors import SsmarError
from ssmar.runtime.io import numpy_globals, save_torch

CHECKPOINT_FORMAT = "ssmar-checkpoint-v1"

def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SsmarError(f"device '{name}' requested but CUDA is not available here; use --device cpu")
    if not (name == "cpu" or name.startswith("cuda")):
        raise SsmarError(f"unknown device '{name}'; use cpu, cuda or cuda:N")
    return torch.device(name)

def plain_state(value: Any) -> Any:
    """``value`` with NumPy arrays as tensors, NumPy scalars as Python numbers and paths as strings:
    what PyTorch's ``weights_only`` loader reads without admitting any other global."""
    if isinstance(value, dict):
        return {key: plain_state(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain_state(item) for item in value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PurePath):
        return str(value)
    return value


def _numpy_safe_globals() -> list[Any]:
    dtype_classes = {type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDG"}
    return [*((obj, name) for name, obj in numpy_globals().items()), *dtype_classes]


def _checkpoint_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise SsmarError(f"checkpoint {path} is a directory; pass a file in it, e.g. {path / 'latest.pt'}")
    if not path.is_file():
        raise SsmarError(f"checkpoint not found: {path}")
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read an ssmar checkpoint without running code from it (tensors and plain containers only)."""
    path = _checkpoint_file(path)
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files; UnpicklingError also for refused globals
        refused = _refused_globals(path) if isinstance(exc, pickle.UnpicklingError) else []
        if refused:
            raise SsmarError(f"{path}: refused to load: the checkpoint asks for the Python global '{refused[0]}', "
                             "which could run code (an ssmar checkpoint holds tensors and plain containers only); if "
                             f"you trust its source, convert it once: ssmar convert-checkpoint --trust {path} "
                             "NEW.pt") from None
        raise SsmarError(f"{path}: unreadable checkpoint ({type(exc).__name__}); it is corrupt or truncated, "
                         "use another checkpoint of the run (epoch_<n>.pt, best.pt where written) or retrain") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise SsmarError(f"{path} is not an ssmar checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r}); "
                         "pass a latest.pt / best.pt written by ssmar train")
    return state


def _refused_globals(path: Path) -> list[str]:
    """The globals a checkpoint names beyond what :func:`load_checkpoint` admits (read from the
    pickle's opcodes, nothing executed); empty when the file is not a readable torch archive."""
    admitted = set(numpy_globals())
    admitted |= {f"{cls.__module__}.{cls.__name__}" for cls in _numpy_safe_globals() if isinstance(cls, type)}
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip archive / no data.pkl: a corrupt file, not a refused one
        return []
    return [name for name in found if name not in admitted]


def convert_trusted_checkpoint(source: str | Path, target: str | Path) -> None:
    """Rewrite a checkpoint the user trusts (e.g. one an older ssmar wrote) as plain state that
    :func:`load_checkpoint` reads; unpickling ``source`` runs whatever code it holds, hence the
    CLI's explicit ``--trust``. ``target`` is written atomically and read back before returning."""
    source = _checkpoint_file(source)
    try:
        state = torch.load(source, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise SsmarError(f"{source}: unreadable checkpoint ({type(exc).__name__}); it is corrupt or truncated") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise SsmarError(f"{source} is not an ssmar checkpoint; only checkpoints written by ssmar train convert")
    save_torch(plain_state(state), target)
    load_checkpoint(target)
