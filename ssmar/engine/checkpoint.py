"""Checkpoint IO: the format tag, reading a checkpoint back, and the device a run or a loaded
model goes to. The trainer writes checkpoints (``Trainer.checkpoint_state``); inference reads them
through this module without importing the trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ssmar.errors import SsmarError

CHECKPOINT_FORMAT = "ssmar-checkpoint-v1"

def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SsmarError(f"device '{name}' requested but CUDA is not available here; use --device cpu")
    if not (name == "cpu" or name.startswith("cuda")):
        raise SsmarError(f"unknown device '{name}'; use cpu, cuda or cuda:N")
    return torch.device(name)

def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SsmarError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for corrupt files
        raise SsmarError(f"{path}: unreadable checkpoint ({type(exc).__name__}); it is corrupt or truncated, "
                         "use another checkpoint of the run (epoch_<n>.pt, best.pt where written) or retrain") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise SsmarError(f"{path} is not an ssmar checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r}); "
                         "pass a latest.pt / best.pt written by ssmar train")
    return state
