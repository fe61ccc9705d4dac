"""Every SSL method end to end on generated data, against a figure its unlabelled loss must move.

Each method trains twice from the same seed: as configured, and with its unlabelled loss weighted 0
(``lambda_u=0``: what a broken unlabelled loss amounts to). The figure is what every method's
unlabelled loss optimises: on the unlabelled clips, the mean log-probability that a strong view
gives the class its weak view predicts (PseudoLabel trains the weak view alone; its confidence
carries over). Ten steps of a tiny model are far too few for accuracy to separate the two runs,
but this figure does, by about a nat or more; a loss that is zeroed, detached or never reaches the
optimiser leaves the two runs equal and fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import tiny_config
from ssmar.engine.trainer import Trainer

# Thresholds off so that the unlabelled loss acts on an untrained model from the first step.
METHODS = {
    "pseudolabel": ["algorithm.params.p_cutoff=0.0"],
    "fixmatch": ["algorithm.params.p_cutoff=0.0"],
    "flexmatch": ["algorithm.params.p_cutoff=0.0"],
    "freematch": [],
    "softmatch": [],
    "aplt": ["algorithm.params.p_cutoff=0.0", "algorithm.params.warmup_epochs=1", "algorithm.params.period=1",
             "algorithm.params.num_aug=1"],
}
RUN = ["data.labelled_ratio=0.3", "train.epochs=2", "train.steps_per_epoch=5", "train.unsup_rampup=0",
       "train.eval_every=100"]


def consistency(trainer: Trainer) -> float:
    """Mean log-probability of the weak view's predicted class under a strong view, over the unlabelled clips."""
    model, data = trainer.model.eval(), trainer.data
    clips = data.train.clips[data.unlabelled]
    views = torch.Generator().manual_seed(123)
    with torch.no_grad():
        weak = model(trainer.context.weak_augment(clips, views))["logits"]
        strong = model(trainer.context.strong_augment(clips, views))["logits"]
    return float(strong.log_softmax(dim=1).gather(1, weak.argmax(dim=1, keepdim=True)).mean())


@pytest.mark.parametrize("method", sorted(METHODS))
def test_the_unlabelled_loss_of_each_ssl_method_trains_the_model(method: str, synth_file: Path, tmp_path: Path) -> None:
    figures = {}
    for weight in (1.0, 0.0):
        work_dir = tmp_path / f"lambda_u{weight}"
        trainer = Trainer(tiny_config(synth_file, work_dir, f"algorithm.name={method}", *RUN, *METHODS[method],
                                      f"algorithm.params.lambda_u={weight}"), work_dir)
        final = trainer.fit()
        assert final["num_samples"] == len(trainer.data.evaluation.labels)
        figures[weight] = consistency(trainer)
    assert figures[1.0] > figures[0.0] + 0.5, f"{method}: unlabelled loss on {figures[1.0]:.3f}, off {figures[0.0]:.3f}"
