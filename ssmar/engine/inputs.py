"""Everything that depends on ``data.type``, in one place above both data sources: the prepared
training data and the weak and strong augmentations of a run (skeleton or video)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssmar.algorithms.context import Augment
from ssmar.data.augment import strong_augment, weak_augment
from ssmar.data.dataset import prepare_skeleton_data
from ssmar.data.types import PreparedData
from ssmar.errors import SsmarError


def prepare_data(cfg: dict[str, Any], work_dir: Path, seed: int, write_split: bool = True) -> PreparedData:
    """The configured data with its SSL partition (``write_split=False``, DDP ranks but 0: neither read
    nor write WORK_DIR/split.json, the trainer takes rank 0's partition)."""
    data_type = cfg["data"].get("type", "skeleton")
    if data_type == "video":
        from ssmar.video.dataset import prepare_video_data

        return prepare_video_data(cfg, work_dir, seed, write_split)
    if data_type != "skeleton":
        raise SsmarError(f"unknown data.type '{data_type}'; use skeleton or video")
    return prepare_skeleton_data(cfg, work_dir, seed, write_split)


def build_augmentations(cfg: dict[str, Any]) -> tuple[Augment, Augment]:
    """(weak, strong) from ``cfg['augment']``; video views are cropped to ``data.resolution``."""
    if cfg["data"].get("type", "skeleton") == "video":
        from ssmar.video.augment import video_strong_augment, video_weak_augment

        size = int(cfg["data"]["resolution"])
        return video_weak_augment(cfg["augment"]["weak"], size), video_strong_augment(cfg["augment"]["strong"], size)
    return weak_augment(cfg["augment"]["weak"]), strong_augment(cfg["augment"]["strong"])
