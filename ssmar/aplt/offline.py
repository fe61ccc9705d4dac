"""One offline round of APLT, from a feature bank to frozen prototypes and pseudo-labels.

labeller → screen → refined prototypes. The labeller (the paper's semi-supervised k-means or
a stronger one, :mod:`ssmar.aplt.labellers`) gives every bank row a class and a certainty;
the screen (:mod:`ssmar.aplt.screens`) decides which unlabelled rows are trusted; the
prototypes are the class means of labelled and kept rows. Kept apart from the model so it
can be tested and benchmarked on any features (``benchmarks/offline_labellers.py`` replays
it on saved checkpoints), and reused by the synchronous ablation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ssmar.aplt.labellers import Labeller
from ssmar.aplt.prototypes import refine_prototypes
from ssmar.aplt.screens import Screen


@dataclass
class OfflineRound:
    assign: Tensor  # [N] class of every bank row (labelled rows: their label)
    score: Tensor  # [N] the labeller's certainty (higher = more certain)
    keep: Tensor  # [N] bool: unlabelled rows that pass the screen
    weight: Tensor  # [N] loss weight of each unlabelled row (hard screens: 1 where kept, else 0)
    thresholds: Tensor  # [K] per-class score thresholds of the screen
    centres: Tensor  # [K, D] the labeller's class centres
    prototypes: Tensor  # [K, D] refined from labelled + kept members

    def screening_order(self, rows: Tensor) -> Tensor:
        """Score above the own class's threshold (where finite): the order in which the screen keeps rows."""
        thresholds = self.thresholds.to(self.score.device)
        finite = torch.where(torch.isfinite(thresholds), thresholds, torch.zeros_like(thresholds))
        return (self.score[rows] - finite[self.assign[rows]]).cpu()


def offline_round(features: Tensor, labels: Tensor, num_classes: int, labeller: Labeller, screen: Screen,
                  groups: Tensor, logits: Tensor | None = None, init_centres: Tensor | None = None,
                  classifier_labels: Tensor | None = None) -> OfflineRound:
    """Label, screen and refine. ``labels`` is -1 on unlabelled rows; ``features`` are L2-normalised;
    ``groups`` is the clip of each row (a labelled clip and its views share one), for cross-fitting screens.

    ``classifier_labels`` (one per row), when given, adds an agreement screen: an unlabelled row
    is kept only where its class equals the frozen classifier's prediction [ours].
    """
    labelling = labeller(features, labels, num_classes, logits=logits, init_centres=init_centres)
    screened = screen(labeller, labelling, features, labels, groups, num_classes, logits=logits)
    eligible = labels.to(features.device) < 0
    if classifier_labels is not None:
        eligible &= labelling.assign == classifier_labels.to(labelling.assign.device)
    keep = screened.keep.to(features.device) & eligible
    weight = screened.weight.to(features.device) * eligible  # soft screens weigh rows below their target too
    prototypes = refine_prototypes(features, labelling.assign, keep, labels, num_classes, labelling.centres)
    return OfflineRound(assign=labelling.assign, score=labelling.score, keep=keep, weight=weight,
                        thresholds=screened.thresholds, centres=labelling.centres, prototypes=prototypes)


def scatter_pseudo_labels(size: int, positions: Tensor, assign: Tensor, keep: Tensor,
                          weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-clip tables over the train set: pseudo-label (-1 where none), kept by the screen (bool) and
    loss weight (0 = not used; soft screens weigh clips they did not keep too)."""
    labels = torch.full((size,), -1, dtype=torch.long)
    kept = torch.zeros(size, dtype=torch.bool)
    weights = torch.zeros(size)
    labels[positions.cpu()] = assign.cpu()
    kept[positions.cpu()] = keep.cpu()
    weights[positions.cpu()] = weight.float().cpu()
    return labels, kept, weights
