"""Batched inference over a clip set, shared by training-time and stand-alone evaluation."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn as nn


@torch.no_grad()
def predict_scores(model: nn.Module, clips: torch.Tensor, device: torch.device, batch_size: int,
                   score_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None) -> np.ndarray:
    """Class scores ``[N, K]`` from ``score_fn(model, x)`` (default: the linear head's logits)."""
    was_training = model.training
    model.eval()
    scores = []
    for start in range(0, len(clips), batch_size):
        x = clips[start:start + batch_size].to(device)
        scores.append((score_fn(model, x) if score_fn else model(x)["logits"]).float().cpu())
    model.train(was_training)
    return torch.cat(scores).numpy()
