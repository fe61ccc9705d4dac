"""Feature bank of the offline phase: frozen-backbone embeddings of every training clip.

Each labelled clip is embedded once as is and ``num_aug`` more times under a weak
augmentation, each view keeping its label, so that a class with one or two labels still
has several anchors for the clustering [paper names labelled augmentation; mechanism
ours]. Rows are L2-normalised for cosine clustering [ours]. Clips are loaded, embedded and
written batch by batch into one preallocated tensor, so memory is the bank plus one batch.
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

    @property
    def is_unlabelled(self) -> Tensor:
        return self.labels < 0

    @property
    def num_unlabelled(self) -> int:
        return int(self.is_unlabelled.sum())


def build_feature_bank(embed_fn: Callable[[Tensor], Tensor], clips_fn: Callable[[Tensor], Tensor],
                       labelled_idx: Tensor | Sequence[int], labelled_targets: Tensor | Sequence[int],
                       unlabelled_idx: Tensor | Sequence[int], num_aug: int = 4,
                       augment: Callable[[Tensor, torch.Generator | None], Tensor] | None = None,
                       generator: torch.Generator | None = None, batch_size: int = 256,
                       device: torch.device | str = "cpu", progress: bool = False) -> FeatureBank:
    """Embed labelled clips (plus ``num_aug`` augmented views each) and unlabelled clips.

    ``embed_fn(x) -> [B, D]`` is the frozen backbone in eval mode (the caller's job);
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
    if num_aug < 0 or batch_size < 1 or (num_aug > 0 and augment is None):
        raise SsmarError(f"feature bank: need num_aug >= 0 (with an augment function when > 0) and batch_size >= 1, "
                         f"got num_aug={num_aug}, batch_size={batch_size}, augment={augment!r}")
    num_labelled, num_unlabelled = labelled_idx.numel(), unlabelled_idx.numel()
    total = num_labelled * (1 + num_aug) + num_unlabelled
    if total == 0:
        raise SsmarError("feature bank: no clips to embed; the labelled and unlabelled index lists are both empty")
    device = torch.device(device)
    features: Tensor | None = None
    bar = tqdm(total=total, unit="clip", desc="feature bank", disable=not progress)

    def write(row: int, clips: Tensor, indices: Tensor) -> None:
        nonlocal features
        embedding = embed_fn(clips.to(device))
        if embedding.ndim != 2 or embedding.shape[0] != indices.numel():
            raise SsmarError(f"feature bank: embed_fn returned shape {tuple(embedding.shape)} for "
                             f"{indices.numel()} clips; it must return [B, D] embeddings")
        if not torch.isfinite(embedding).all():
            raise SsmarError(f"feature bank: non-finite embedding for clips {indices[:8].tolist()}...; the backbone "
                             "has diverged or the clips hold NaN — check the checkpoint and the input data")
        if features is None:
            features = torch.empty(total, embedding.shape[1], device=device)
        features[row:row + indices.numel()] = F.normalize(embedding.float(), dim=1)
        bar.update(indices.numel())

    with torch.no_grad(), bar:
        for start in range(0, num_labelled, batch_size):
            indices = labelled_idx[start:start + batch_size]
            clips = clips_fn(indices)
            write(start, clips, indices)
            for view in range(1, num_aug + 1):
                write(view * num_labelled + start, augment(clips, generator), indices)
        for start in range(0, num_unlabelled, batch_size):
            indices = unlabelled_idx[start:start + batch_size]
            write(num_labelled * (1 + num_aug) + start, clips_fn(indices), indices)

    labels = torch.cat([labelled_targets.repeat(1 + num_aug), torch.full((num_unlabelled,), -1, dtype=torch.long)])
    dataset_index = torch.cat([labelled_idx.repeat(1 + num_aug), unlabelled_idx])
    is_view = torch.zeros(total, dtype=torch.bool)
    is_view[num_labelled:num_labelled * (1 + num_aug)] = True
    return FeatureBank(features, labels.to(device), dataset_index.to(device), is_view.to(device))


def _as_long(values: Tensor | Sequence[int], name: str) -> Tensor:
    tensor = torch.as_tensor(values).cpu()
    if tensor.ndim != 1 or (tensor.numel() and tensor.is_floating_point()):
        raise SsmarError(f"feature bank: {name} must be a 1-D sequence of integers, got shape {tuple(tensor.shape)} "
                         f"dtype {tensor.dtype}")
    return tensor.long()
