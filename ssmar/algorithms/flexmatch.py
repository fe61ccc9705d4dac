"""FlexMatch (Zhang et al., NeurIPS 2021): FixMatch with curriculum (class-wise) thresholds.

A class the model has learned little of so far gets a lower threshold, so that its
clips still contribute; see ``hooks.ClasswiseStatus`` for the bookkeeping.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ssmar.algorithms.base import Batch
from ssmar.algorithms.fixmatch import FixMatch
from ssmar.algorithms.hooks import ClasswiseStatus
from ssmar.config import FLAG


class FlexMatch(FixMatch):
    name = "flexmatch"
    defaults = {
        **FixMatch.defaults,  # p_cutoff 0.95 is the ceiling τ of every class threshold
        "thresh_warmup": True,  # count never-confident clips in the normalisation (thresholds start near 0)
    }
    specs = {**FixMatch.specs, "thresh_warmup": FLAG}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        context = self.context
        self.status = ClasswiseStatus(context.data.unlabelled_pool, len(context.data.train), self.num_classes,
                                      float(self.params["p_cutoff"]), bool(self.params["thresh_warmup"]),
                                      context.device)
        self.statistics["classwise"] = self.status

    def masking(self, probs: Tensor, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        threshold = self.status.thresholds().mean().item()
        return self.status.mask(probs, batch.idx_ulb), {"threshold": threshold}

    def epoch_stats(self) -> dict[str, Any]:
        return {"class_threshold": self.status.thresholds().tolist(),
                "learning_effect": self.status.learning_effect().tolist()}
