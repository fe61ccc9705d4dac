"""One offline round of APLT, from a feature bank to frozen prototypes and pseudo-labels.

semi-supervised k-means → per-class thresholds → screening → refined prototypes. Kept
apart from the model so it can be tested and benchmarked on any features, and reused by
the synchronous ablation (which runs it every step on a live memory bank).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ssmar.aplt.prototypes import refine_prototypes
from ssmar.aplt.ss_kmeans import semi_supervised_kmeans
from ssmar.aplt.thresholds import ThresholdPolicy, screen


@dataclass
class OfflineRound:
    assign: Tensor  # [N] cluster of every bank row (labelled rows: their label)
    keep: Tensor  # [N] bool: unlabelled rows that pass their class threshold
    distance: Tensor  # [N] cosine distance to the assigned centre
    margin: Tensor  # [N] distance to the second centre minus distance to the own one
    thresholds: Tensor  # [K]
    centres: Tensor  # [K, D] k-means centres
    prototypes: Tensor  # [K, D] refined from labelled + kept members
    iterations: int
    converged: bool


def offline_round(features: Tensor, labels: Tensor, num_classes: int, policy: ThresholdPolicy,
                  max_iter: int = 50, chunk_size: int = 65536, init_centres: Tensor | None = None,
                  classifier_labels: Tensor | None = None) -> OfflineRound:
    """Cluster, screen and refine. ``labels`` is -1 on unlabelled rows; ``features`` are L2-normalised.

    ``classifier_labels`` (one per row), when given, adds an agreement screen: an unlabelled row
    is kept only where its cluster equals the frozen classifier's prediction [ours].
    """
    result = semi_supervised_kmeans(features, labels, num_classes, max_iter=max_iter, chunk_size=chunk_size,
                                    init_centres=init_centres)
    is_unlabelled = labels < 0
    thresholds = policy.compute(result.distance, result.assign, is_unlabelled, ~is_unlabelled, num_classes)
    keep = screen(result.distance, result.assign, thresholds) & is_unlabelled
    if classifier_labels is not None:
        keep &= result.assign == classifier_labels.to(result.assign.device)
    prototypes = refine_prototypes(features, result.assign, keep, labels, num_classes, result.centres, chunk_size)
    return OfflineRound(assign=result.assign, keep=keep, distance=result.distance,
                        margin=result.second_distance - result.distance, thresholds=thresholds,
                        centres=result.centres, prototypes=prototypes, iterations=result.iterations,
                        converged=result.converged)


def scatter_pseudo_labels(size: int, positions: Tensor, assign: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
    """Per-clip tables over the train set: pseudo-label (-1 where none) and keep flag."""
    labels = torch.full((size,), -1, dtype=torch.long)
    kept = torch.zeros(size, dtype=torch.bool)
    labels[positions.cpu()] = assign.cpu()
    kept[positions.cpu()] = keep.cpu()
    return labels, kept
