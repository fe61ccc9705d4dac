"""Margin softmax of the prototype head (L_sup^margin and L_u^margin).

CosFace-style additive margin [paper names a margin softmax; the exact form is ours]:
logits = s·(cos − m·onehot(target)), then cross-entropy. The margin makes a sample sit
clearly nearer its own prototype than any other; the scale turns cosines in [-1, 1] into
logits peaked enough for softmax. Defaults (ours): m = 0.2 and s = 16, the usual choices
for a few dozen classes (the face-recognition values m = 0.35, s = 64 target thousands).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ssmar.runtime.distributed import mean_over_processes
from ssmar.errors import SsmarError


def additive_margin_loss(cosine: Tensor, target: Tensor, margin: float = 0.2, scale: float = 16.0,
                         weight: Tensor | None = None, per_batch: bool = False) -> Tensor:
    """Weighted mean CosFace loss over ``cosine`` [B, K] and ``target`` [B].

    ``weight`` [B] (bool mask or non-negative floats) weights each sample; rows with
    ``target < 0`` (e.g. screened-out pseudo-labels) get weight 0. The result is
    sum(w·loss) / sum(w), and exactly 0 (with zero gradients, no NaN) when no weight is left.
    Under DDP the denominator is the mean of sum(w) over processes, so that the mean of the
    per-process losses, which DDP's gradient averaging optimises, is the global weighted mean.
    ``per_batch`` divides by the batch size B instead, as FixMatch's unlabelled loss is
    normalised (USB), so that a pseudo-label weighs the same in both unlabelled losses whatever
    share of the batch is kept.
    """
    if cosine.ndim != 2 or target.shape != cosine.shape[:1]:
        raise SsmarError(f"additive_margin_loss: cosine must be [B, K] and target [B], got {tuple(cosine.shape)} "
                         f"and {tuple(target.shape)}")
    if weight is not None and weight.shape != target.shape:
        raise SsmarError(f"additive_margin_loss: weight shape {tuple(weight.shape)} != target shape "
                         f"{tuple(target.shape)}; pass one weight per sample")
    valid = target >= 0
    target = target.clamp_min(0)
    w = valid.to(cosine.dtype) if weight is None else valid.to(cosine.dtype) * weight.to(cosine.dtype)
    logits = scale * (cosine - margin * F.one_hot(target, cosine.shape[1]).to(cosine.dtype))
    per_sample = F.cross_entropy(logits, target, reduction="none")
    if per_batch:
        return (w * per_sample).sum() / max(1, len(target))
    return (w * per_sample).sum() / mean_over_processes(w.sum()).clamp_min(torch.finfo(w.dtype).tiny)
