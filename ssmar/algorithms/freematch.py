"""FreeMatch (Wang et al., ICLR 2023): self-adaptive thresholds plus a fairness term.

The threshold follows the model's own confidence (low early, so that more clips train;
high later, so that fewer wrong ones do), modulated per class; see
``hooks.SelfAdaptiveThreshold``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ssmar.algorithms.base import Batch
from ssmar.algorithms.fixmatch import CONSISTENCY_DEFAULTS, CONSISTENCY_SPECS, FixMatch
from ssmar.algorithms.hooks import STATISTIC_SPECS, SelfAdaptiveThreshold, statistic_momentum
from ssmar.config import number


class FreeMatch(FixMatch):
    name = "freematch"
    defaults = {
        **CONSISTENCY_DEFAULTS,
        "T": 0.5,  # soft-target temperature (unused with hard labels)
        "ema_p": 0.999,  # momentum of the EMAs behind τ_t, p̃_t and the label histogram
        # share of the run's steps as the EMAs' half-life, overriding ema_p; null = ema_p [ours: 0.1 chosen on the
        # validation carve-out for FreeMatch and SoftMatch alike, BENCHMARKS.md §8]
        "ema_halflife": 0.1,
        "ent_loss_ratio": 0.001,  # weight of the self-adaptive fairness loss (USB configs; its argparse default is 0.01)
    }
    specs = {**CONSISTENCY_SPECS, **STATISTIC_SPECS, "ent_loss_ratio": number(0.0)}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        momentum = statistic_momentum(self.params, self.context.total_steps)
        self.threshold = SelfAdaptiveThreshold(self.num_classes, momentum, self.context.device)
        self.statistics["threshold"] = self.threshold

    def masking(self, probs: Tensor, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        mask = self.threshold.mask(probs)
        return mask, {"threshold": self.threshold.global_threshold.item()}

    def extra_loss(self, logits_strong: Tensor, mask: Tensor) -> tuple[Tensor | None, dict[str, float]]:
        loss = self.threshold.fairness_loss(logits_strong, mask)
        return self.params["ent_loss_ratio"] * loss, {"loss_fair": loss.item()}

    def epoch_stats(self) -> dict[str, Any]:
        return {"class_threshold": self.threshold.thresholds().tolist()}
