"""Everything that depends on ``data.type``, in one place above both data sources: the prepared
training data (with the data decisions every source shares, such as the unlabelled pool) and the
weak and strong augmentations of a run (skeleton or video)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ssmar.algorithms.context import Augment
from ssmar.data.augment import (STRONG_DEFAULTS, STRONG_SPECS, WEAK_DEFAULTS, WEAK_SPECS, resolve_options,
                                 strong_augment, weak_augment)
from ssmar.data.dataset import prepare_skeleton_data
from ssmar.data.preprocess import has_score
from ssmar.data.types import PreparedData
from ssmar.errors import SsmarError


def prepare_data(cfg: dict[str, Any], work_dir: Path, seed: int, write_split: bool = True) -> PreparedData:
    """The configured data with its SSL partition (``write_split=False``, DDP ranks but 0: neither read
    nor write WORK_DIR/split.json, the trainer takes rank 0's partition)."""
    data_type = cfg["data"].get("type", "skeleton")
    if data_type == "video":
        from ssmar.video.dataset import prepare_video_data

        data = prepare_video_data(cfg, work_dir, seed, write_split)
    elif data_type == "skeleton":
        data = prepare_skeleton_data(cfg, work_dir, seed, write_split)
    else:
        raise SsmarError(f"unknown data.type '{data_type}'; use skeleton or video")
    if cfg["data"]["include_labelled_in_unlabelled"]:
        data.unlabelled_pool = torch.cat([data.labelled, data.unlabelled])
    return data


def augment_options(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"weak": ..., "strong": ...}``: every augmentation option of the run's data type, defaults filled
    in and checked; what a run records and what :func:`build_augmentations` builds from."""
    if cfg["data"].get("type", "skeleton") == "video":
        from ssmar.video.augment import (VIDEO_STRONG_DEFAULTS, VIDEO_STRONG_SPECS, VIDEO_WEAK_DEFAULTS,
                                         VIDEO_WEAK_SPECS)

        weak, strong = (VIDEO_WEAK_DEFAULTS, VIDEO_WEAK_SPECS, "weak video"), (VIDEO_STRONG_DEFAULTS,
                                                                                VIDEO_STRONG_SPECS, "strong video")
    else:
        weak, strong = (WEAK_DEFAULTS, WEAK_SPECS, "weak"), (STRONG_DEFAULTS, STRONG_SPECS, "strong")
    return {"weak": resolve_options(cfg["augment"]["weak"], *weak),
            "strong": resolve_options(cfg["augment"]["strong"], *strong)}


def build_augmentations(cfg: dict[str, Any], channels: str | None = None) -> tuple[Augment, Augment]:
    """(weak, strong) from ``cfg['augment']``; video views are cropped to ``data.resolution``.
    ``channels`` (the prepared skeleton data's) with a score: geometric ops leave the score channel alone."""
    if cfg["data"].get("type", "skeleton") == "video":
        from ssmar.video.augment import video_strong_augment, video_weak_augment

        size = int(cfg["data"]["resolution"])
        return video_weak_augment(cfg["augment"]["weak"], size), video_strong_augment(cfg["augment"]["strong"], size)
    score = channels is not None and has_score(channels)
    return (weak_augment(cfg["augment"]["weak"], score_channel=score),
            strong_augment(cfg["augment"]["strong"], score_channel=score))
