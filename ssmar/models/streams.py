"""Early fusion of the input streams, inside the network.

Computing the streams in the model's first step means every caller (training after augmentation,
evaluation, APLT's feature bank, prediction, the timeline) feeds plain joints and gets the same input.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from ssmar.data.streams import check_streams, compose_streams


class StreamInput(nn.Module):
    """Joints ``[N, C, T, V, M]`` in, the chosen streams stacked as channels out."""

    def __init__(self, streams: Sequence[str], parents: np.ndarray | torch.Tensor | None):
        super().__init__()
        self.streams = check_streams(streams)
        if parents is None:
            if any(name.startswith("bone") for name in self.streams):
                raise ValueError("bone streams need the skeleton's parents")
            parents = torch.zeros(0, dtype=torch.long)
        # not persistent: derived from the layout, so checkpoints from before streams existed still load
        self.register_buffer("parents", torch.as_tensor(np.asarray(parents), dtype=torch.long), persistent=False)

    def channels(self, joint_channels: int) -> int:
        return joint_channels * len(self.streams)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return compose_streams(x, self.streams, self.parents)
