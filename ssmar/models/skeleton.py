"""What the graph backbones (ST-GCN, ST-GCN++, CTR-GCN) share: the input end (streams, data BN), the
stack of blocks, the pooled embedding and the linear head, and the multi-branch temporal convolution of
ST-GCN++ and CTR-GCN.

Each backbone only says how one block is built. The embedding is returned separately from the logits so
that semi-supervised methods (APLT's feature bank and prototype head) can use it.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
import torch
import torch.nn as nn

from ssmar.models.streams import StreamInput

# the published layout of ST-GCN, ST-GCN++ and CTR-GCN: 10 blocks, 64 -> 128 -> 256 channels, stride 2 where it widens
PUBLISHED_CHANNELS = (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
PUBLISHED_STRIDES = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)


class BlockFactory(Protocol):
    def __call__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor, *, stride: int,
                 residual: bool) -> nn.Module: ...


class SkeletonBackbone(nn.Module):
    """Input ``[N, C, T, V, M]`` (joints; ``streams`` chooses what the first block sees, see
    :mod:`ssmar.data.streams`); output ``{"feat": [N, D], "logits": [N, classes]}``.

    ``channels``/``strides`` give one block each (``block`` builds it); the first block has no residual
    link, as in the published networks, because its input is the raw coordinates.
    """

    def __init__(self, num_classes: int, adjacency: np.ndarray | torch.Tensor, in_channels: int,
                 channels: Sequence[int], strides: Sequence[int], head_dropout: float, streams: Sequence[str],
                 parents: np.ndarray | None, block: BlockFactory):
        super().__init__()
        self.stream_input = StreamInput(streams, parents)
        in_channels = self.stream_input.channels(in_channels)
        if len(channels) != len(strides):
            raise ValueError("model.channels and model.strides must have the same length")
        adjacency = torch.as_tensor(np.asarray(adjacency), dtype=torch.float32)
        self.data_bn = nn.BatchNorm1d(in_channels * adjacency.shape[-1])
        blocks, previous = [], in_channels
        for index, (width, stride) in enumerate(zip(channels, strides)):
            blocks.append(block(previous, width, adjacency, stride=stride, residual=index > 0))
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


def residual_link(in_channels: int, out_channels: int, stride: int, enabled: bool = True) -> nn.Module | None:
    """The shortcut of a block: none, identity, or a strided 1x1 convolution with BN where the shape changes."""
    if not enabled:
        return None
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, (stride, 1)), nn.BatchNorm2d(out_channels))


class MultiBranchTemporalConv(nn.Module):
    """Parallel temporal branches over ``[N, C, T, V]``, concatenated along channels (ST-GCN++, CTR-GCN).

    One branch per dilation (1x1 reduction, BN, ReLU, ``kernel``x1 dilated convolution), a max-pool branch
    (1x1 reduction, BN, ReLU, 3x1 max-pool) and a strided 1x1 branch, then BN; each branch gets
    ``out / branches`` channels (the first the remainder). Several receptive fields at the cost of one
    narrow convolution each. ``fuse`` adds ST-GCN++'s transform after the concatenation (ReLU, 1x1
    convolution, BN) so that the branches mix inside the module.

    BN acts per channel, so the branches' reductions are one 1x1 convolution and their closing BNs one BN
    over the concatenation: the same function as separate branches in a third of the operations, which is
    what a step costs on a CPU at small widths.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, dilations: Sequence[int], stride: int,
                 dropout: float, fuse: bool):
        super().__init__()
        count = len(dilations) + 2
        widths = [out_channels // count] * count
        widths[0] += out_channels - sum(widths)
        self.widths = widths[:-1]  # the reduced branches: one per dilation, then max-pool
        reduced = sum(self.widths)
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, reduced, 1), nn.BatchNorm2d(reduced), nn.ReLU(inplace=True))
        self.temporal = nn.ModuleList(
            nn.Conv2d(width, width, (kernel, 1), (stride, 1), ((kernel - 1) * dilation // 2, 0), (dilation, 1))
            for width, dilation in zip(widths, dilations))
        self.pool = nn.MaxPool2d((3, 1), (stride, 1), (1, 0))
        self.pointwise = nn.Conv2d(in_channels, widths[-1], 1, (stride, 1))
        self.bn = nn.BatchNorm2d(out_channels)
        self.fuse = nn.Sequential(nn.ReLU(), nn.Conv2d(out_channels, out_channels, 1), nn.BatchNorm2d(out_channels)) \
            if fuse else nn.Identity()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *parts, pooled = torch.split(self.reduce(x), self.widths, dim=1)
        branches = [conv(part) for conv, part in zip(self.temporal, parts)] + [self.pool(pooled), self.pointwise(x)]
        return self.dropout(self.fuse(self.bn(torch.cat(branches, dim=1))))


class ResidualGraphBlock(nn.Module):
    """The block of ST-GCN++ and CTR-GCN: graph convolution, BN, its own shortcut and ReLU, then the temporal
    module, the block's shortcut and ReLU. The two networks differ only in ``gcn`` and ``tcn``."""

    def __init__(self, gcn: nn.Module, tcn: nn.Module, in_channels: int, out_channels: int, stride: int,
                 residual: bool):
        super().__init__()
        self.gcn = gcn
        self.gcn_bn = nn.BatchNorm2d(out_channels)
        self.gcn_residual = residual_link(in_channels, out_channels, 1)
        self.tcn = tcn
        self.residual = residual_link(in_channels, out_channels, stride, residual)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.tcn(self.relu(self.gcn_bn(self.gcn(x)) + self.gcn_residual(x)))
        if self.residual is not None:
            out = out + self.residual(x)
        return self.relu(out)
