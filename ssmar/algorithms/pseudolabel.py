"""Pseudo-Label (Lee, ICML-W 2013): confident predictions on a clip become its own targets.

Targets and loss come from the same weak view (no strong augmentation), the unlabelled
weight ramps up with the shared ``train.unsup_rampup`` (USB uses a 0.4 warm-up for Pseudo-Label).
"""

from __future__ import annotations

from ssmar.algorithms.base import Algorithm, Batch, StepResult
from ssmar.algorithms.hooks import confidence_mask, consistency_loss, pseudo_label
from ssmar.config import PROBABILITY, number


class PseudoLabel(Algorithm):
    name = "pseudolabel"
    defaults = {
        "p_cutoff": 0.95,  # τ: top probability a prediction needs to become a target
        "lambda_u": 1.0,  # weight of the unlabelled loss once warmed up
    }
    specs = {"p_cutoff": PROBABILITY, "lambda_u": number(0.0)}

    def train_step(self, batch: Batch) -> StepResult:
        out_lb, out_weak = self.forward_views(batch.x_lb, batch.x_ulb_weak)
        loss_sup = self.supervised_loss(out_lb["logits"], batch.y_lb)
        logits = out_weak["logits"]
        probs = logits.detach().softmax(dim=-1)
        mask = confidence_mask(probs, self.params["p_cutoff"])
        loss_unsup = consistency_loss(logits, pseudo_label(logits), mask)
        ramp = self.unsup_ramp()
        loss = loss_sup + self.params["lambda_u"] * ramp * loss_unsup
        stats = {"loss_sup": loss_sup.item(), "loss_unsup": loss_unsup.item(), "mask_ratio": mask.mean().item(),
                 "threshold": float(self.params["p_cutoff"]), "unsup_weight": ramp}
        return StepResult(loss=loss, stats=stats, pseudo_labels=probs.argmax(dim=-1), mask=mask)
