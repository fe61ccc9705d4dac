"""What the engine shares with an algorithm: data, augmentations, RNG, device, EMA model."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from ssmar.data.dataset import PreparedData
from ssmar.runtime.distributed import DistInfo

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class TrainContext:
    cfg: dict[str, Any]
    device: torch.device
    data: PreparedData
    work_dir: Path
    weak_augment: Augment
    strong_augment: Augment
    generator: torch.Generator  # all augmentation randomness; checkpointed
    ema_model: nn.Module
    dist: DistInfo
    logger: logging.Logger
    steps_per_epoch: int
    total_steps: int
    label_smoothing: float = 0.0
    epoch: int = 0
    step: int = 0

    def clips(self, positions: torch.Tensor) -> torch.Tensor:
        """Training clips at ``positions`` (into the train set), on the training device."""
        return self.data.train.clips[positions.cpu()].to(self.device, non_blocking=True)

    @property
    def progress(self) -> bool:
        return bool(self.cfg["train"]["progress"]) and self.dist.is_main
