"""SoftMatch (Chen et al., ICLR 2023): every clip trains, weighted by a truncated Gaussian of its confidence.

Confident clips (above the running mean confidence) get weight 1, less confident ones a
smoothly smaller weight; uniform distribution alignment rebalances the predictions the
weights are computed from, not the targets (USB). See ``hooks.GaussianWeighting`` and
``hooks.DistributionAlignment``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ssmar.algorithms.base import Batch
from ssmar.algorithms.fixmatch import CONSISTENCY_DEFAULTS, CONSISTENCY_SPECS, FixMatch
from ssmar.algorithms.hooks import STATISTIC_SPECS, DistributionAlignment, GaussianWeighting, statistic_momentum
from ssmar.config import FLAG, number


class SoftMatch(FixMatch):
    name = "softmatch"
    defaults = {
        **CONSISTENCY_DEFAULTS,
        "T": 0.5,  # soft-target temperature (unused with hard labels)
        "ema_p": 0.999,  # momentum of the EMAs of μ_t, σ_t² and of the mean prediction
        # share of the run's steps as the EMAs' half-life, overriding ema_p; null = ema_p [ours: 0.1 chosen on the
        # validation carve-out for FreeMatch and SoftMatch alike, BENCHMARKS.md §8]
        "ema_halflife": 0.1,
        "n_sigma": 2.0,  # the Gaussian's variance is σ_t² / n_sigma²
        "dist_align": True,  # weigh by predictions aligned to the uniform class distribution
    }
    specs = {**CONSISTENCY_SPECS, **STATISTIC_SPECS, "n_sigma": number(0.0, low_open=True), "dist_align": FLAG}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        momentum, device = statistic_momentum(self.params, self.context.total_steps), self.context.device
        self.weighting = GaussianWeighting(self.num_classes, momentum, float(self.params["n_sigma"]), device)
        self.statistics["weighting"] = self.weighting
        if self.params["dist_align"]:
            self.alignment = DistributionAlignment(self.num_classes, momentum, device)
            self.statistics["alignment"] = self.alignment

    def masking(self, probs: Tensor, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        mask = self.weighting.weights(self.alignment(probs) if self.params["dist_align"] else probs)
        return mask, {"threshold": self.weighting.mean.item(), "conf_var": self.weighting.var.item()}

    def epoch_stats(self) -> dict[str, Any]:
        return {"mean_prediction": self.alignment.model_probs.tolist()} if self.params["dist_align"] else {}
