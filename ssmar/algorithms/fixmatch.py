"""FixMatch (Sohn et al., NeurIPS 2020): confident weak-view predictions supervise the strong view.

``FixMatch.train_step`` is the loop body of the whole FixMatch family (FlexMatch,
FreeMatch, SoftMatch): they differ only in the hooks ``masking`` (how a threshold or
weight is set) and ``extra_loss`` (FreeMatch's fairness term), and keep their statistics
in ``self.statistics`` so that ``state_dict`` covers them. As in USB, targets always come
from the plain weak-view prediction; only the mask may look at an adjusted one.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ssmar.algorithms.base import Algorithm, Batch, StepResult
from ssmar.algorithms.hooks import Statistics, confidence_mask, consistency_loss, pseudo_label
from ssmar.config import FLAG, PROBABILITY, Spec, number
from ssmar.errors import SsmarError

CONSISTENCY_DEFAULTS: dict[str, Any] = {
    "lambda_u": 1.0,  # weight of the unlabelled loss
    "hard_label": True,  # one-hot (argmax) targets; False: soft targets softmax(weak-view logits / T)
}
CONSISTENCY_SPECS: dict[str, Spec] = {"lambda_u": number(0.0), "hard_label": FLAG, "T": number(0.0, low_open=True)}


class FixMatch(Algorithm):
    name = "fixmatch"
    defaults = {
        **CONSISTENCY_DEFAULTS,
        "p_cutoff": 0.95,  # τ: top probability a weak-view prediction needs to become a target
        "T": 1.0,  # soft-target temperature (USB declares 0.5 but its FixMatch/FlexMatch soft path applies none)
    }
    specs = {**CONSISTENCY_SPECS, "p_cutoff": PROBABILITY}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.statistics: dict[str, Statistics] = {}

    def train_step(self, batch: Batch) -> StepResult:
        out_lb, out_weak, out_strong = self.forward_views(batch.x_lb, batch.x_ulb_weak, batch.x_ulb_strong)
        loss_sup = self.supervised_loss(out_lb["logits"], batch.y_lb)
        teacher = out_weak["logits"].detach()
        probs = teacher.softmax(dim=-1)
        mask, stats = self.masking(probs, batch)
        targets = pseudo_label(teacher, self.params["hard_label"], self.params["T"])
        logits_strong = out_strong["logits"]
        loss_unsup = consistency_loss(logits_strong, targets, mask)
        ramp = self.unsup_ramp()
        loss = loss_sup + ramp * self.params["lambda_u"] * loss_unsup
        extra, extra_stats = self.extra_loss(logits_strong, mask)
        if extra is not None:
            loss = loss + ramp * extra
        stats = {"loss_sup": loss_sup.item(), "loss_unsup": loss_unsup.item(), "mask_ratio": mask.mean().item(),
                 "unsup_weight": ramp,
                 **stats, **extra_stats}
        return StepResult(loss=loss, stats=stats, pseudo_labels=probs.argmax(dim=-1), mask=mask)

    def masking(self, probs: Tensor, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        """Per-sample weight in [0, 1] from the teacher's probabilities, and what to log about it."""
        return confidence_mask(probs, self.params["p_cutoff"]), {"threshold": float(self.params["p_cutoff"])}

    def extra_loss(self, logits_strong: Tensor, mask: Tensor) -> tuple[Tensor | None, dict[str, float]]:
        """A further weighted loss term (None: none) and its stats."""
        return None, {}

    def state_dict(self) -> dict[str, Any]:
        return {name: hook.state_dict() for name, hook in self.statistics.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != set(self.statistics):
            raise SsmarError(f"checkpoint: {self.name} state holds {sorted(state)}, expected {sorted(self.statistics)}; "
                             "resume with the algorithm the checkpoint was trained with")
        for name, hook in self.statistics.items():
            hook.load_state_dict(state[name])
