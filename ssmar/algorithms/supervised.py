"""Supervised baselines: the labelled subset only (lower bound) or every label (upper bound)."""

from __future__ import annotations

from ssmar.algorithms.base import Algorithm, Batch, StepResult


class Supervised(Algorithm):
    name = "supervised"
    uses_unlabelled = False

    def train_step(self, batch: Batch) -> StepResult:
        logits = self.model(batch.x_lb)["logits"]
        loss = self.supervised_loss(logits, batch.y_lb)
        return StepResult(loss=loss, stats={"loss_sup": loss.item()})


class FullySupervised(Supervised):
    name = "fullysupervised"
    all_labels = True
