"""ST-GCN++ (Duan et al., "PYSKL: Towards Good Practices for Skeleton Action Recognition", ACM MM 2022).

ST-GCN with three changes the paper found to matter: the adjacency is a parameter initialised from the
skeleton graph (no fixed edge-importance mask), the graph convolution has its own residual link, and the
temporal convolution is a multi-branch module (3x1 convolutions with dilations 1-4, a max-pool branch and
a 1x1 branch, concatenated and fused by a 1x1 convolution). Published width: 10 blocks of 64 channels,
128 from block 5 and 256 from block 8, temporal stride 2 at those two blocks.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import numpy as np
import torch

from ssmar.models.skeleton import (
    PUBLISHED_CHANNELS, PUBLISHED_STRIDES, MultiBranchTemporalConv, ResidualGraphBlock, SkeletonBackbone,
)
from ssmar.models.stgcn import GraphConv

DILATIONS = (1, 2, 3, 4)


def stgcnpp_block(in_channels: int, out_channels: int, adjacency: torch.Tensor, *, stride: int, residual: bool,
                  dropout: float) -> ResidualGraphBlock:
    return ResidualGraphBlock(
        GraphConv(in_channels, out_channels, adjacency, learnable=True),
        MultiBranchTemporalConv(out_channels, out_channels, kernel=3, dilations=DILATIONS, stride=stride,
                                dropout=dropout, fuse=True),
        in_channels, out_channels, stride, residual)


class STGCNPlusPlus(SkeletonBackbone):
    """ST-GCN++; the defaults are the published width (``model.channels``/``model.strides`` in the config
    choose it, see docs/backbones.md for the CPU widths)."""

    def __init__(self, num_classes: int, adjacency: np.ndarray | torch.Tensor, in_channels: int = 3,
                 channels: Sequence[int] = PUBLISHED_CHANNELS, strides: Sequence[int] = PUBLISHED_STRIDES,
                 dropout: float = 0.0, head_dropout: float = 0.0, streams: Sequence[str] = ("joint",),
                 parents: np.ndarray | None = None):
        super().__init__(num_classes, adjacency, in_channels, channels, strides, head_dropout, streams, parents,
                         block=partial(stgcnpp_block, dropout=dropout))
