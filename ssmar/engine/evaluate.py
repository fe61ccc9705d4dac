"""Batched inference over a clip set, shared by training-time and stand-alone evaluation."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn as nn


@torch.no_grad()
def predict_scores(model: nn.Module, clips: torch.Tensor, device: torch.device, batch_size: int,
                   score_outputs: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None,
                   start: int = 0, stop: int | None = None) -> np.ndarray:
    """Class scores ``[stop - start, K]`` from ``score_outputs(model(x))`` (default: the linear head's
    logits) for ``clips[start:stop]``, sliced batch by batch so that lazy (video) clips load one batch
    at a time."""
    stop = len(clips) if stop is None else stop
    was_training = model.training
    model.eval()
    scores = []
    for first in range(start, stop, batch_size):
        x = clips[first:min(first + batch_size, stop)].to(device)
        out = model(x)
        scores.append((score_outputs(out) if score_outputs else out["logits"]).float().cpu())
    model.train(was_training)
    return torch.cat(scores).numpy()
