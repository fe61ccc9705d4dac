"""The prepared-data types every data source fills (skeleton pickles here, video lists in
:mod:`ssmar.video.dataset`) and the engine and algorithms read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ssmar.data.layouts import Layout


@dataclass
class ClipSet:
    clips: torch.Tensor  # [N, C, T, V, M]; for video a lazy VideoClips, indexed to [B, 3, T, H, W]
    labels: torch.Tensor  # [N]
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, positions: np.ndarray | torch.Tensor) -> "ClipSet":
        positions = torch.as_tensor(positions, dtype=torch.long)
        return ClipSet(self.clips[positions], self.labels[positions], [self.names[i] for i in positions.tolist()])


@dataclass
class PreparedData:
    train: ClipSet  # the training split (minus any validation carve-out)
    labelled: torch.Tensor  # positions into train
    unlabelled: torch.Tensor  # positions into train; their labels are for diagnostics only
    evaluation: ClipSet  # what per-epoch evaluation and final metrics use (test or val)
    class_names: list[str]
    layout: Layout | None  # None for video data
    body_map: list[int] | None = None
    body_names: list[str] | None = None
    channels: str | None = None  # skeleton: the resolved data.channels (ssmar.data.preprocess.CHANNELS); video: None
    info: dict[str, Any] = field(default_factory=dict)
    # positions into train the unlabelled sampler draws from; None = ``unlabelled``. With
    # data.include_labelled_in_unlabelled (USB's option; off here, see docs) the labelled clips come first.
    unlabelled_pool: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.unlabelled_pool is None:
            self.unlabelled_pool = self.unlabelled

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

