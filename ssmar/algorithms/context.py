"""What the engine hands an algorithm: data, augmentations, RNG, device, EMA model and the run's
settings an algorithm may read, typed (an algorithm never sees the raw config)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from ssmar.data.types import PreparedData
from ssmar.runtime.distributed import DistInfo

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class TrainContext:
    device: torch.device
    data: PreparedData
    work_dir: Path
    weak_augment: Augment
    strong_augment: Augment
    generator: torch.Generator  # all augmentation randomness; checkpointed
    ema_model: nn.Module
    dist: DistInfo
    logger: logging.Logger
    seed: int  # the run's seed (``seed``)
    steps_per_epoch: int
    total_steps: int
    unsup_rampup: float = 0.0  # share of steps over which unlabelled losses ramp 0 -> 1 (``train.unsup_rampup``)
    label_smoothing: float = 0.0
    progress: bool = False  # draw progress bars (``train.progress``, on the main process only)
    epoch: int = 0
    step: int = 0

    def clips(self, positions: torch.Tensor) -> torch.Tensor:
        """Training clips at ``positions`` (into the train set), on the training device."""
        return self.data.train.clips[positions.cpu()].to(self.device, non_blocking=True)
