"""CTR-GCN (Chen et al., "Channel-wise Topology Refinement Graph Convolution for Skeleton-Based Action
Recognition", ICCV 2021).

The graph convolution learns a topology per sample and per channel: each adjacency subset holds a shared
topology ``A`` (a parameter initialised from the skeleton graph) refined by ``alpha`` times a channel-wise
term, the tanh of pairwise differences between two 1x1-convolution embeddings of the joints (pooled over
time), expanded to one ``V x V`` map per output channel; features are aggregated channel by channel along
it. The temporal module is multi-scale (5x1 convolutions with dilations 1 and 2, a max-pool branch and a
1x1 branch). Published width: 10 blocks of 64 channels, 128 from block 5 and 256 from block 8, temporal
stride 2 at those two blocks.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ssmar.models.skeleton import (
    PUBLISHED_CHANNELS, PUBLISHED_STRIDES, MultiBranchTemporalConv, ResidualGraphBlock, SkeletonBackbone,
)

DILATIONS = (1, 2)


class ChannelTopologyGraphConv(nn.Module):
    """CTR-GC over all adjacency subsets at once (grouped convolutions), summed over subsets.

    ``alpha`` starts at 0, so training starts from the shared topology and the refinement grows in.
    """

    def __init__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor, reduction: int = 8):
        super().__init__()
        self.subsets = adjacency.shape[0]
        relation = max(8, in_channels // reduction)  # the paper's 8 for raw coordinates, in/8 deeper
        self.topology = nn.Parameter(adjacency.clone())
        self.alpha = nn.Parameter(torch.zeros(1))
        # the query and key embeddings and the value transform, one 1x1 convolution split three ways
        self.split = [self.subsets * relation, self.subsets * relation, self.subsets * out_channels]
        self.embed = nn.Conv2d(in_channels, sum(self.split), 1)
        self.refine = nn.Conv2d(self.subsets * relation, self.subsets * out_channels, 1, groups=self.subsets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        query, key, value = torch.split(self.embed(x), self.split, dim=1)
        query, key = query.mean(2), key.mean(2)  # [N, K*R, V]: pooled over time
        relation = torch.tanh(query.unsqueeze(-1) - key.unsqueeze(-2))  # [N, K*R, V, V]
        value = value.reshape(n, self.subsets, -1, t, v)
        # alpha scales the refinement's weights rather than its [N, K*C, V, V] output, and the shared topology
        # aggregates on its own: the same sum without two passes over the largest tensor of the block
        refined = F.conv2d(relation, self.refine.weight * self.alpha, self.refine.bias * self.alpha,
                           groups=self.subsets).view(n, self.subsets, -1, v, v)
        return torch.einsum("kvw,nkctv->nctw", self.topology, value) + torch.einsum("nkcvw,nkctv->nctw", refined, value)


def ctrgcn_block(in_channels: int, out_channels: int, adjacency: torch.Tensor, *, stride: int, residual: bool,
                 dropout: float) -> ResidualGraphBlock:
    return ResidualGraphBlock(
        ChannelTopologyGraphConv(in_channels, out_channels, adjacency),
        MultiBranchTemporalConv(out_channels, out_channels, kernel=5, dilations=DILATIONS, stride=stride,
                                dropout=dropout, fuse=False),
        in_channels, out_channels, stride, residual)


class CTRGCN(SkeletonBackbone):
    """CTR-GCN; the defaults are the published width (``model.channels``/``model.strides`` in the config
    choose it, see docs/backbones.md for the CPU widths)."""

    def __init__(self, num_classes: int, adjacency: np.ndarray | torch.Tensor, in_channels: int = 3,
                 channels: Sequence[int] = PUBLISHED_CHANNELS, strides: Sequence[int] = PUBLISHED_STRIDES,
                 dropout: float = 0.0, head_dropout: float = 0.0, streams: Sequence[str] = ("joint",),
                 parents: np.ndarray | None = None):
        super().__init__(num_classes, adjacency, in_channels, channels, strides, head_dropout, streams, parents,
                         block=partial(ctrgcn_block, dropout=dropout))
