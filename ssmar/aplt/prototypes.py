"""Refined class prototypes and the frozen memory-based prototype classifier.

After screening, each class centre is recomputed from its labelled members plus the kept
unlabelled members [paper]. The prototypes are then frozen for the whole next online
phase [paper]: they live in a buffer (no gradient, no optimiser, no momentum) and only the
offline phase replaces them, so the online model cannot drag its own targets around. At
inference the prototype head's scores can be fused with the linear head's (:func:`fused_scores`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmar.aplt.ss_kmeans import check_unit_rows, class_feature_sums, normalised_class_means
from ssmar.errors import SsmarError


def refine_prototypes(features: Tensor, assign: Tensor, keep_mask: Tensor, labels: Tensor, num_classes: int,
                      fallback_centres: Tensor, chunk_size: int = 65536) -> Tensor:
    """L2-normalised mean [K, D] of each class's labelled rows and kept unlabelled rows.

    Labelled rows (``labels >= 0``) count for their label whatever ``keep_mask`` says;
    unlabelled rows count for ``assign`` when kept. A class left with no member takes its
    ``fallback_centres`` row (e.g. the k-means centre) instead of vanishing.
    """
    check_unit_rows(features, "prototype features", chunk_size)
    if not assign.shape == keep_mask.shape == labels.shape == features.shape[:1]:
        raise SsmarError(f"refine_prototypes: assign {tuple(assign.shape)}, keep_mask {tuple(keep_mask.shape)} and "
                         f"labels {tuple(labels.shape)} must each have one entry per feature row ({features.shape[0]})")
    if fallback_centres.shape != (num_classes, features.shape[1]):
        raise SsmarError(f"refine_prototypes: fallback_centres shape {tuple(fallback_centres.shape)} != "
                         f"({num_classes}, {features.shape[1]}); pass the k-means centres")
    with torch.no_grad():
        device = features.device
        labels = labels.to(device)
        members = torch.where(labels >= 0, labels, torch.where(keep_mask.to(device), assign.to(device), -1))
        sums, counts = class_feature_sums(features, members, num_classes, chunk_size)
        return normalised_class_means(sums, counts, fallback_centres.to(device))


def prototype_drift(old: Tensor, new: Tensor) -> Tensor:
    """Per-class cosine distance [K] between two prototype sets: how far a round moved each class."""
    if old.shape != new.shape:
        raise SsmarError(f"prototype_drift: shapes {tuple(old.shape)} and {tuple(new.shape)} differ; "
                         "compare prototypes of the same model")
    with torch.no_grad():
        return 1 - F.cosine_similarity(old.float(), new.float().to(old.device), dim=1)


class PrototypeMemory(nn.Module):
    """Frozen prototype classifier: cosine similarity [B, K] of features to the stored prototypes.

    The scale (and margin) belong to the loss. Prototypes start at zero (all cosines 0) until
    the first offline phase calls :meth:`update`; they are saved with the model's state_dict.
    """

    prototypes: Tensor

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.register_buffer("prototypes", torch.zeros(num_classes, dim))

    def update(self, new: Tensor) -> None:
        """Replace the prototypes (offline phase only); rows are L2-normalised here."""
        if new.shape != self.prototypes.shape:
            raise SsmarError(f"PrototypeMemory.update: got shape {tuple(new.shape)}, the memory holds "
                             f"{tuple(self.prototypes.shape)}; check num_classes and the embedding size")
        with torch.no_grad():
            self.prototypes.copy_(F.normalize(new.detach().float(), dim=1))

    def forward(self, features: Tensor) -> Tensor:
        return prototype_cosine(features, self.prototypes)


def fused_scores(out: dict[str, Tensor], prototypes: Tensor, fusion: float, scale: float) -> Tensor:
    """Linear-head logits, or (with ``fusion`` > 0) log of the linear and prototype probabilities mixed,
    the prototype head's cosines scaled by ``scale``."""
    if not fusion:
        return out["logits"]
    cosine = prototype_cosine(out["feat"], prototypes)
    mixed = out["logits"].softmax(dim=1) + fusion * (scale * cosine).softmax(dim=1)
    return mixed.log()


def prototype_cosine(feat: Tensor, prototypes: Tensor) -> Tensor:
    """Cosine similarity of each embedding to each (unit-norm) prototype: ``[N, K]``."""
    return F.normalize(feat, dim=1) @ prototypes.to(feat.dtype).T
