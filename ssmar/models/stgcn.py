"""A compact ST-GCN (Yan et al., AAAI 2018) sized for CPU training.

Blocks alternate a spatial graph convolution over the skeleton (partitioned adjacency
with learnable edge importance) and a temporal convolution, with residual links.
The network returns the pooled embedding separately from the logits so that
semi-supervised methods (APLT's feature bank and prototype head) can use it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from ssmar.models.streams import StreamInput


class GraphConv(nn.Module):
    """Spatial graph convolution: one 1x1 conv per adjacency partition, summed over partitions."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor):
        super().__init__()
        self.partitions = adjacency.shape[0]
        self.register_buffer("adjacency", adjacency)
        self.edge_importance = nn.Parameter(torch.ones_like(adjacency))
        self.conv = nn.Conv2d(in_channels, out_channels * self.partitions, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        x = self.conv(x).view(n, self.partitions, -1, t, v)
        return torch.einsum("nkctv,kvw->nctw", x, self.adjacency * self.edge_importance)


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
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, (stride, 1)), nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.tcn(self.gcn(x))
        if self.residual is not None:
            out = out + self.residual(x)
        return self.relu(out)


class STGCN(nn.Module):
    """Input ``[N, C, T, V, M]`` (joints; ``streams`` chooses what the first layer sees, see
    :mod:`ssmar.data.streams`); output ``{"feat": [N, D], "logits": [N, classes]}``.

    ``channels``/``strides`` give one block each; the defaults (4 blocks, 32→128 channels,
    temporal stride 2 in the first and third block) matched the accuracy of a stride-1 first
    block on a UTD-MHAD validation carve-out at ~1.7x the speed, so runs fit a 2-core CPU.
    """

    def __init__(self, num_classes: int, adjacency: np.ndarray | torch.Tensor, in_channels: int = 3,
                 channels: Sequence[int] = (32, 64, 64, 128),
                 strides: Sequence[int] = (2, 1, 2, 1),
                 temporal_kernel: int = 9, dropout: float = 0.0, head_dropout: float = 0.0,
                 streams: Sequence[str] = ("joint",), parents: np.ndarray | None = None):
        super().__init__()
        self.stream_input = StreamInput(streams, parents)
        in_channels = self.stream_input.channels(in_channels)
        if len(channels) != len(strides):
            raise ValueError("model.channels and model.strides must have the same length")
        adjacency = torch.as_tensor(np.asarray(adjacency), dtype=torch.float32)
        num_joints = adjacency.shape[-1]
        self.data_bn = nn.BatchNorm1d(in_channels * num_joints)
        blocks, previous = [], in_channels
        for index, (width, stride) in enumerate(zip(channels, strides)):
            blocks.append(STGCNBlock(previous, width, adjacency, temporal_kernel, stride, dropout, residual=index > 0))
            previous = width
        self.blocks = nn.ModuleList(blocks)
        self.embed_dim = previous
        self.head_dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(previous, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding ``[N, D]`` (mean over time, joints and persons)."""
        x = self.stream_input(x)
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
        x = self.data_bn(x).view(n * m, v, c, t).permute(0, 2, 3, 1).contiguous()
        for block in self.blocks:
            x = block(x)
        return x.mean(dim=(2, 3)).view(n, m, -1).mean(dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feat = self.embed(x)
        return {"feat": feat, "logits": self.head(self.head_dropout(feat))}

