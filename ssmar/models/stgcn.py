"""A compact ST-GCN (Yan et al., AAAI 2018) sized for CPU training.

Blocks alternate a spatial graph convolution over the skeleton (partitioned adjacency
with learnable edge importance) and a temporal convolution, with residual links.
The input end, pooling and head are shared with the other graph backbones
(:class:`ssmar.models.skeleton.SkeletonBackbone`).
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from ssmar.models.skeleton import SkeletonBackbone, residual_link


class GraphConv(nn.Module):
    """Spatial graph convolution: one 1x1 conv per adjacency partition, summed over partitions.

    ``learnable=False`` (ST-GCN): the graph is fixed and a learnable edge-importance mask scales it.
    ``learnable=True`` (ST-GCN++): the adjacency itself is a parameter initialised from the graph, so
    training can also add links the skeleton does not have.
    """

    def __init__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor, learnable: bool = False):
        super().__init__()
        self.partitions = adjacency.shape[0]
        if learnable:
            self.adjacency = nn.Parameter(adjacency.clone())
            self.edge_importance = None
        else:
            self.register_buffer("adjacency", adjacency)
            self.edge_importance = nn.Parameter(torch.ones_like(adjacency))
        self.conv = nn.Conv2d(in_channels, out_channels * self.partitions, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        x = self.conv(x).view(n, self.partitions, -1, t, v)
        graph = self.adjacency if self.edge_importance is None else self.adjacency * self.edge_importance
        return torch.einsum("nkctv,kvw->nctw", x, graph)


class STGCNBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor,
                 temporal_kernel: int, stride: int, dropout: float, residual: bool = True):
        super().__init__()
        self.gcn = GraphConv(in_channels, out_channels, adjacency)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1), ((temporal_kernel - 1) // 2, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout, inplace=True),
        )
        self.residual = residual_link(in_channels, out_channels, stride, residual)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.tcn(self.gcn(x))
        if self.residual is not None:
            out = out + self.residual(x)
        return self.relu(out)


class STGCN(SkeletonBackbone):
    """ST-GCN: ``channels``/``strides`` give one block each; the defaults (4 blocks, 32→128 channels,
    temporal stride 2 in the first and third block) matched the accuracy of a stride-1 first
    block on a UTD-MHAD validation carve-out at ~1.7x the speed, so runs fit a 2-core CPU.
    """

    def __init__(self, num_classes: int, adjacency: np.ndarray | torch.Tensor, in_channels: int = 3,
                 channels: Sequence[int] = (32, 64, 64, 128),
                 strides: Sequence[int] = (2, 1, 2, 1),
                 temporal_kernel: int = 9, dropout: float = 0.0, head_dropout: float = 0.0,
                 streams: Sequence[str] = ("joint",), parents: np.ndarray | None = None):
        super().__init__(num_classes, adjacency, in_channels, channels, strides, head_dropout, streams, parents,
                         block=partial(STGCNBlock, temporal_kernel=temporal_kernel, dropout=dropout))
