"""Batched inference over a clip set, shared by training-time and stand-alone evaluation."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn as nn


@torch.no_grad()
def predict_scores(model: nn.Module, clips: torch.Tensor, device: torch.device, batch_size: int,
                   score_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
                   start: int = 0, stop: int | None = None) -> np.ndarray:
    """Class scores ``[stop - start, K]`` from ``score_fn(model, x)`` (default: the linear head's logits)
    for ``clips[start:stop]``, sliced batch by batch so that lazy (video) clips load one batch at a time."""
    stop = len(clips) if stop is None else stop
    was_training = model.training
    model.eval()
    scores = []
    for first in range(start, stop, batch_size):
        x = clips[first:min(first + batch_size, stop)].to(device)
        scores.append((score_fn(model, x) if score_fn else model(x)["logits"]).float().cpu())
    model.train(was_training)
    return torch.cat(scores).numpy()
