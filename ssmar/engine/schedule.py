"""Optimiser, learning-rate schedule (linear warm-up, then cosine decay to zero) and the training budget."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ssmar.errors import SsmarError


def build_optimizer(model: torch.nn.Module, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    # No weight decay on biases and normalisation parameters.
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 or name.endswith(".bias") else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=True)
    if cfg["optimizer"] == "adamw":
        return torch.optim.AdamW(groups, lr=cfg["lr"])
    raise SsmarError(f"unknown train.optimizer '{cfg['optimizer']}'; choose sgd or adamw")


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass(frozen=True)
class Budget:
    """The run's length: ``epochs`` x ``steps_per_epoch`` optimiser steps, and where that came from."""

    epochs: int
    steps_per_epoch: int
    rule: str  # "fixed" (an integer train.steps_per_epoch) or "auto" (train.passes over the training clips)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def describe(self, train_cfg: dict[str, Any], labelled: int, unlabelled: int, uses_unlabelled: bool) -> str:
        """One line: the steps, how they were chosen and how often each labelled (unlabelled) clip is drawn."""
        batch = int(train_cfg["batch_size"])
        how = "train.steps_per_epoch as given"
        if self.rule == "auto":
            how = (f"steps_per_epoch=auto: {train_cfg['passes']:g} passes over the {labelled + unlabelled} training "
                   f"clips at batch {batch}, floor {train_cfg['min_steps']}, cap {train_cfg['max_steps']}")
        seen = f"{self.total_steps * batch / max(1, labelled):.1f} passes over the {labelled} labelled clips"
        if uses_unlabelled:
            drawn = self.total_steps * batch * int(train_cfg["uratio"])
            seen += f", {drawn / max(1, unlabelled):.1f} over the {unlabelled} unlabelled"
        return (f"budget: {self.total_steps} steps = {self.epochs} epochs x {self.steps_per_epoch} steps ({how}); "
                f"{seen}")


def plan_budget(train_cfg: dict[str, Any], train_clips: int) -> Budget:
    """How many steps to train, from the ``train`` config and the size of the training split.

    An integer ``steps_per_epoch`` is used as given. ``auto`` makes the schedule follow the data: the
    total is ``passes * train_clips / batch_size`` steps (rounded up), clamped to
    ``[min_steps, max_steps]``, then spread over ``epochs`` (rounded up to whole epochs of equal length).
    ``train_clips`` counts the whole training split, labelled and unlabelled, so every method trained on
    the same data gets the same number of steps. Epochs stay the unit of warm-up, evaluation and APLT's rounds.
    """
    epochs = int(train_cfg["epochs"])
    if train_cfg["steps_per_epoch"] != "auto":
        return Budget(epochs, int(train_cfg["steps_per_epoch"]), "fixed")
    low, high = int(train_cfg["min_steps"]), int(train_cfg["max_steps"])
    wanted = math.ceil(float(train_cfg["passes"]) * train_clips / int(train_cfg["batch_size"]))
    total = min(max(wanted, low), high)
    return Budget(epochs, max(1, math.ceil(total / epochs)), "auto")
