"""The offline phase's feature bank of every training clip, embedded by a frozen encoder and split
over DDP processes; what APLT's rounds and the offline studies (benchmarks/offline_labellers.py) build.

Work is split by bank batch (:func:`bank_shard`) and the per-process banks summed, so every process
holds the whole bank, bit for bit the bank one process builds.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
from torch import Tensor

from ssmar.aplt.feature_bank import FeatureBank, build_feature_bank
from ssmar.data.types import PreparedData
from ssmar.runtime.distributed import DistInfo, all_reduce_sum

Clips = Callable[[Tensor], Tensor]  # train-set positions -> clips on the device
Augment = Callable[[Tensor, torch.Generator], Tensor]


def bank_generator(seed: int, round_index: int) -> torch.Generator:
    """The augmentation stream of a round's bank views: one per (run seed, round), apart from training's."""
    return torch.Generator().manual_seed(seed * 1_000_003 + round_index)


@torch.no_grad()
def embed_bank(encoder: nn.Module, data: PreparedData, clips: Clips, augment: Augment, generator: torch.Generator,
               *, num_aug: int, views: int, batch_norm: str, batch_size: int, device: torch.device,
               dist: DistInfo, progress: bool = False) -> FeatureBank:
    """The feature bank of every training clip (labelled ones plus ``num_aug`` weak views each, each row the
    mean over ``views`` passes), embedded by ``encoder`` without gradients.

    ``batch_norm="eval"``: the encoder in eval mode (running statistics); ``"batch"``: its BatchNorm
    layers normalise with each bank batch's own statistics, as in a training step, without updating
    the running statistics (everything else in eval mode). The encoder's modes are restored after.
    """
    modes = {module: module.training for module in encoder.modules()}
    encoder.eval()
    saved = {}
    if batch_norm == "batch":
        for module in encoder.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                saved[module] = (module.momentum, module.num_batches_tracked.clone())
                module.momentum = 0.0  # running = 1 · running + 0 · batch: unchanged
                module.train()
    load, embed = bank_shard(encoder, data, clips, device, dist)
    try:
        bank = build_feature_bank(embed, load, data.labelled, data.train.labels[data.labelled], data.unlabelled,
                                  num_aug=num_aug, augment=augment, generator=generator, batch_size=batch_size,
                                  device=device, progress=progress, views=views)
    finally:
        for module, (momentum, tracked) in saved.items():
            module.momentum = momentum
            module.num_batches_tracked.copy_(tracked)
        for module, training in modes.items():
            module.train(training)
    all_reduce_sum(bank.features)  # each row is non-zero on the one process that embedded it
    all_reduce_sum(bank.logits)
    return bank


def bank_shard(encoder: nn.Module, data: PreparedData, clips: Clips, device: torch.device,
               dist: DistInfo) -> tuple[Clips, Callable[[Tensor], dict[str, Tensor]]]:
    """``clips_fn`` and ``embed_fn`` for ``build_feature_bank`` that split its work over DDP processes.

    The bank loads one batch (``clips_fn``), then embeds it and its augmented views; load i is
    process i mod N's. The others stand in zeros for its clips (never loaded) and outputs, so
    every process draws the same augmentation stream as one process would, and the sum over
    processes is, bit for bit, the bank one process builds (x + 0 = x). One process: plain calls.
    """
    world, rank = dist.world_size, dist.rank
    loads: list[bool] = []

    def load(indices: Tensor) -> Tensor:
        loads.append(len(loads) % world == rank)
        if loads[-1]:
            return clips(indices)
        return torch.zeros((len(indices), *data.train.clips.shape[1:]), device=device)

    def embed(x: Tensor) -> dict[str, Tensor]:
        if not loads[-1]:
            return {"feat": torch.zeros(len(x), encoder.embed_dim, device=x.device),
                    "logits": torch.zeros(len(x), data.num_classes, device=x.device)}
        out = encoder(x)
        return {"feat": out["feat"], "logits": out["logits"].float()}

    return load, embed


def train_table(rows: Tensor, positions: Tensor, size: int) -> Tensor:
    """Bank rows [n, D] scattered into a train-set table [size, D] (zeros where no row)."""
    table = torch.zeros(size, rows.shape[1], device=rows.device)
    table[positions] = rows.float()
    return table
