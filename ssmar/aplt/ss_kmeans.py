"""Semi-supervised spherical k-means: the offline pseudo-labeller of APLT.

Labelled points (label >= 0) are pinned to their class, so the labels steer the clusters
instead of merely naming them afterwards [paper]. Everything is chunked over rows: the
N x K similarity matrix is never materialised and no N x D copy of the features is made,
so a 1M x 256 bank runs in bounded memory on CPU or GPU. Centre sums are kept in float64
and updated incrementally (only points that changed cluster are added/subtracted), which
makes an iteration cost one chunked matmul.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ssmar.errors import SsmarError

UNIT_NORM_TOLERANCE = 1e-2


@dataclass
class KMeansResult:
    """Outcome of :func:`semi_supervised_kmeans` (all tensors on the features' device)."""

    assign: Tensor  # [N] long: cluster (= class) of every row; labelled rows keep their label
    centres: Tensor  # [K, D] float32, L2-normalised
    distance: Tensor  # [N] float32: 1 - cos to the assigned centre
    second_distance: Tensor  # [N] float32: 1 - cos to the nearest other centre (+inf when K == 1)
    iterations: int
    converged: bool


def check_unit_rows(features: Tensor, name: str, chunk_size: int = 65536) -> None:
    """Raise unless ``features`` is a 2-D float tensor with L2-normalised rows.

    Cosine k-means on raw features would silently weight long vectors more; checking is a
    cheap chunked pass, normalising here would cost an N x D copy.
    """
    if features.ndim != 2 or not features.is_floating_point():
        raise SsmarError(f"{name} must be a 2-D float tensor [N, D], got {tuple(features.shape)} {features.dtype}; "
                         "pass the FeatureBank.features tensor")
    for start in range(0, features.shape[0], chunk_size):
        norms = features[start:start + chunk_size].float().norm(dim=1)
        worst = (norms - 1).abs().max().item() if norms.numel() else 0.0
        if not worst <= UNIT_NORM_TOLERANCE:
            raise SsmarError(f"{name} rows must be L2-normalised (a row near index {start} has |norm - 1| = {worst:.3g}); "
                             "normalise with torch.nn.functional.normalize(features, dim=1) first")


def class_feature_sums(features: Tensor, classes: Tensor, num_classes: int,
                       chunk_size: int = 65536) -> tuple[Tensor, Tensor]:
    """Per-class float64 sums [K, D] and long counts [K] of rows; rows with class < 0 are skipped."""
    sums = torch.zeros(num_classes, features.shape[1], dtype=torch.float64, device=features.device)
    counts = torch.zeros(num_classes, dtype=torch.long, device=features.device)
    for start in range(0, features.shape[0], chunk_size):
        chunk_classes = classes[start:start + chunk_size]
        rows = (chunk_classes >= 0).nonzero().squeeze(1)
        members = chunk_classes[rows]
        sums.index_add_(0, members, features[start:start + chunk_size][rows].double())
        counts.index_add_(0, members, torch.ones_like(members))
    return sums, counts


def normalised_class_means(sums: Tensor, counts: Tensor, fallback: Tensor) -> Tensor:
    """L2-normalised class means from :func:`class_feature_sums`; empty classes take ``fallback``'s row."""
    norms = sums.norm(dim=1, keepdim=True)
    present = (counts > 0).unsqueeze(1) & (norms > 0)
    means = (sums / norms.clamp_min(torch.finfo(torch.float64).tiny)).float()
    return torch.where(present, means, F.normalize(fallback.float(), dim=1))


def semi_supervised_kmeans(features: Tensor, labels: Tensor, num_classes: int, max_iter: int = 50,
                           tol: float = 0.0, chunk_size: int = 65536,
                           init_centres: Tensor | None = None) -> KMeansResult:
    """Cluster L2-normalised ``features`` into ``num_classes`` clusters with labelled rows pinned.

    ``labels[i] >= 0`` fixes row i to that class; ``-1`` marks an unlabelled row, which goes to
    its nearest centre by cosine. Centres start at the normalised labelled class means (or at
    ``init_centres`` [K, D], e.g. the previous round's prototypes, which is required when a
    class has no labelled row) and are re-estimated from all members; a class that loses all
    members keeps its previous centre. Stops when at most ``tol`` x (number of unlabelled rows)
    assignments changed in an iteration (``tol=0``: none changed) or after ``max_iter``.
    When not converged, ``assign`` is the last assignment and ``centres`` its means.
    """
    _check_kmeans_inputs(features, labels, num_classes, max_iter, tol, chunk_size, init_centres)
    with torch.no_grad():
        labels = labels.to(features.device, torch.long)
        sums, counts = class_feature_sums(features, labels, num_classes, chunk_size)
        if init_centres is None:
            missing = (counts == 0).nonzero().squeeze(1).tolist()
            if missing:
                raise SsmarError(f"semi-supervised k-means: classes {missing[:20]} have no labelled sample; "
                                 "label at least one clip per class or pass init_centres")
            centres = normalised_class_means(sums, counts, sums.float())
        else:
            centres = F.normalize(init_centres.to(features.device, torch.float32), dim=1)
        assign = labels.clone()
        changed_limit = tol * int((labels < 0).sum())
        converged = False
        iteration = 0
        for iteration in range(1, max_iter + 1):
            changed = _reassign(features, labels, centres, assign, sums, counts, chunk_size)
            sums.masked_fill_((counts == 0).unsqueeze(1), 0.0)  # drop float64 residue of emptied classes
            centres = normalised_class_means(sums, counts, centres)
            if changed <= changed_limit:
                converged = True
                break
        distance, second_distance = _distances(features, assign, centres, chunk_size)
    return KMeansResult(assign, centres, distance, second_distance, iteration, converged)


def _check_kmeans_inputs(features: Tensor, labels: Tensor, num_classes: int, max_iter: int, tol: float,
                         chunk_size: int, init_centres: Tensor | None) -> None:
    if num_classes < 1 or max_iter < 1 or chunk_size < 1 or not 0 <= tol < 1:
        raise SsmarError(f"semi-supervised k-means: need num_classes >= 1, max_iter >= 1, chunk_size >= 1 and "
                         f"0 <= tol < 1, got {num_classes}, {max_iter}, {chunk_size}, {tol}; fix the APLT config")
    check_unit_rows(features, "k-means features", chunk_size)
    if labels.shape != features.shape[:1]:
        raise SsmarError(f"semi-supervised k-means: labels shape {tuple(labels.shape)} does not match "
                         f"{features.shape[0]} feature rows; pass one label (or -1) per row")
    if labels.numel() and int(labels.max()) >= num_classes:
        raise SsmarError(f"semi-supervised k-means: label {int(labels.max())} >= num_classes={num_classes}; "
                         "check the dataset's class count")
    if init_centres is not None and init_centres.shape != (num_classes, features.shape[1]):
        raise SsmarError(f"semi-supervised k-means: init_centres shape {tuple(init_centres.shape)} != "
                         f"({num_classes}, {features.shape[1]}); pass one centre per class in feature space")


def _reassign(features: Tensor, labels: Tensor, centres: Tensor, assign: Tensor, sums: Tensor,
              counts: Tensor, chunk_size: int) -> int:
    """Move unlabelled rows to their nearest centre, updating ``assign``/``sums``/``counts`` in place."""
    centres_t = centres.to(features.dtype).T.contiguous()
    changed = 0
    for start in range(0, features.shape[0], chunk_size):
        chunk = features[start:start + chunk_size]
        chunk_labels = labels[start:start + chunk_size]
        nearest = torch.where(chunk_labels >= 0, chunk_labels, (chunk @ centres_t).argmax(dim=1))
        old = assign[start:start + chunk_size]
        moved = (nearest != old).nonzero().squeeze(1)
        if moved.numel() == 0:
            continue
        rows = chunk[moved].double()
        new_class, old_class = nearest[moved], old[moved]
        sums.index_add_(0, new_class, rows)
        counts.index_add_(0, new_class, torch.ones_like(new_class))
        had_class = (old_class >= 0).nonzero().squeeze(1)
        sums.index_add_(0, old_class[had_class], rows[had_class], alpha=-1)
        counts.index_add_(0, old_class[had_class], torch.full_like(had_class, -1))
        old[moved] = new_class
        changed += moved.numel()
    return changed


def _distances(features: Tensor, assign: Tensor, centres: Tensor, chunk_size: int) -> tuple[Tensor, Tensor]:
    """Cosine distance of each row to its assigned centre and to the nearest other centre."""
    centres_t = centres.to(features.dtype).T.contiguous()
    distance = torch.empty(features.shape[0], device=features.device)
    second = torch.empty_like(distance)
    for start in range(0, features.shape[0], chunk_size):
        cos = (features[start:start + chunk_size] @ centres_t).float()
        own = assign[start:start + chunk_size].unsqueeze(1)
        distance[start:start + chunk_size] = 1 - cos.gather(1, own).squeeze(1)
        second[start:start + chunk_size] = 1 - cos.scatter_(1, own, float("-inf")).max(dim=1).values
    return distance, second
