"""Feature bank of the offline phase: frozen-backbone embeddings of every training clip.

Each labelled clip is embedded once as is and ``num_aug`` more times under a weak
augmentation, each view keeping its label, so that a class with one or two labels still
has several anchors for the clustering [paper names labelled augmentation; mechanism
ours]. Rows are L2-normalised for cosine clustering [ours]. With ``views`` > 1, each labelled
original and each unlabelled row is the mean of the clean clip's embedding and ``views`` − 1
weak views of it (an offline phase can afford several passes; the mean is a steadier point than
one deterministic view) [ours]. When the encoder returns logits too, the bank keeps their mean
over the same views, for labellers that read the frozen classifier. Clips are loaded, embedded
and written batch by batch into preallocated tensors, so memory is the bank plus one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from ssmar.errors import SsmarError


@dataclass
class FeatureBank:
    """Rows in order: labelled originals, then their views (view 1 of every labelled clip, then
    view 2, ...), then unlabelled clips. All tensors live on the embedding device."""

    features: Tensor  # [N, D] float32, L2-normalised
    labels: Tensor  # [N] long, -1 for unlabelled rows
    dataset_index: Tensor  # [N] long, the clip's index in the training set
    is_view: Tensor  # [N] bool, True for augmented views of labelled clips
    logits: Tensor | None = None  # [N, K] mean classifier logits of each row's views, when the encoder gives them

    @property
    def is_unlabelled(self) -> Tensor:
        return self.labels < 0

    @property
    def num_unlabelled(self) -> int:
        return int(self.is_unlabelled.sum())


Embedding = Tensor | dict[str, Tensor]


def build_feature_bank(embed_fn: Callable[[Tensor], Embedding], clips_fn: Callable[[Tensor], Tensor],
                       labelled_idx: Tensor | Sequence[int], labelled_targets: Tensor | Sequence[int],
                       unlabelled_idx: Tensor | Sequence[int], num_aug: int = 4,
                       augment: Callable[[Tensor, torch.Generator | None], Tensor] | None = None,
                       generator: torch.Generator | None = None, batch_size: int = 256,
                       device: torch.device | str = "cpu", progress: bool = False, views: int = 1) -> FeatureBank:
    """Embed labelled clips (plus ``num_aug`` augmented views each) and unlabelled clips.

    ``embed_fn(x)`` is the frozen backbone in eval mode (the caller's job) returning ``[B, D]``
    embeddings or a model output dict with ``feat`` [B, D] and ``logits`` [B, K];
    ``clips_fn(indices) -> clips`` loads a batch for CPU dataset indices; ``augment(clips,
    generator)`` receives clips as ``clips_fn`` returned them, before they move to ``device``.
    Runs under ``torch.no_grad`` (not inference mode, so the bank may later meet autograd).
    """
    labelled_idx = _as_long(labelled_idx, "labelled_idx")
    labelled_targets = _as_long(labelled_targets, "labelled_targets")
    unlabelled_idx = _as_long(unlabelled_idx, "unlabelled_idx")
    if labelled_targets.shape != labelled_idx.shape or (labelled_targets < 0).any():
        raise SsmarError(f"feature bank: need one non-negative target per labelled index, got "
                         f"{labelled_targets.numel()} targets for {labelled_idx.numel()} clips")
    if num_aug < 0 or batch_size < 1 or views < 1 or ((num_aug > 0 or views > 1) and augment is None):
        raise SsmarError(f"feature bank: need num_aug >= 0, views >= 1 (with an augment function when either adds "
                         f"views) and batch_size >= 1, got num_aug={num_aug}, views={views}, batch_size={batch_size}, "
                         f"augment={augment!r}")
    num_labelled, num_unlabelled = labelled_idx.numel(), unlabelled_idx.numel()
    total = num_labelled * (1 + num_aug) + num_unlabelled
    if total == 0:
        raise SsmarError("feature bank: no clips to embed; the labelled and unlabelled index lists are both empty")
    device = torch.device(device)
    features: Tensor | None = None
    logits: Tensor | None = None
    bar = tqdm(total=total, unit="clip", desc="feature bank", disable=not progress)

    def embed(clips: Tensor, indices: Tensor) -> tuple[Tensor, Tensor | None]:
        out = embed_fn(clips.to(device))
        feat, head = (out["feat"], out.get("logits")) if isinstance(out, dict) else (out, None)
        if feat.ndim != 2 or feat.shape[0] != indices.numel():
            raise SsmarError(f"feature bank: embed_fn returned shape {tuple(feat.shape)} for "
                             f"{indices.numel()} clips; it must return [B, D] embeddings")
        if not torch.isfinite(feat).all():
            raise SsmarError(f"feature bank: non-finite embedding for clips {indices[:8].tolist()}...; the backbone "
                             "has diverged or the clips hold NaN — check the checkpoint and the input data")
        return F.normalize(feat.float(), dim=1), None if head is None else head.float()

    def write(row: int, clips: Tensor, indices: Tensor, passes: int) -> None:
        """Rows ``row...``: the mean over the clean pass and ``passes - 1`` weak views of ``clips``."""
        nonlocal features, logits
        feat, head = embed(clips, indices)
        for _ in range(passes - 1):
            view_feat, view_head = embed(augment(clips, generator), indices)
            feat = feat + view_feat
            head = None if head is None else head + view_head
        if features is None:
            features = torch.empty(total, feat.shape[1], device=device)
            logits = None if head is None else torch.empty(total, head.shape[1], device=device)
        features[row:row + indices.numel()] = F.normalize(feat, dim=1)
        if logits is not None:
            logits[row:row + indices.numel()] = head / passes
        bar.update(indices.numel())

    with torch.no_grad(), bar:
        for start in range(0, num_labelled, batch_size):
            indices = labelled_idx[start:start + batch_size]
            clips = clips_fn(indices)
            write(start, clips, indices, views)
            for view in range(1, num_aug + 1):
                write(view * num_labelled + start, augment(clips, generator), indices, 1)
        for start in range(0, num_unlabelled, batch_size):
            indices = unlabelled_idx[start:start + batch_size]
            write(num_labelled * (1 + num_aug) + start, clips_fn(indices), indices, views)

    labels = torch.cat([labelled_targets.repeat(1 + num_aug), torch.full((num_unlabelled,), -1, dtype=torch.long)])
    dataset_index = torch.cat([labelled_idx.repeat(1 + num_aug), unlabelled_idx])
    is_view = torch.zeros(total, dtype=torch.bool)
    is_view[num_labelled:num_labelled * (1 + num_aug)] = True
    return FeatureBank(features, labels.to(device), dataset_index.to(device), is_view.to(device), logits)


def _as_long(values: Tensor | Sequence[int], name: str) -> Tensor:
    tensor = torch.as_tensor(values).cpu()
    if tensor.ndim != 1 or (tensor.numel() and tensor.is_floating_point()):
        raise SsmarError(f"feature bank: {name} must be a 1-D sequence of integers, got shape {tuple(tensor.shape)} "
                         f"dtype {tensor.dtype}")
    return tensor.long()
