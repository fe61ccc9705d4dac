"""The weak and strong augmentation of a run, chosen by its data type (skeleton or video)."""

from __future__ import annotations

from typing import Any

from ssmar.data.augment import strong_augment, weak_augment
from ssmar.engine.context import Augment


def build_augmentations(cfg: dict[str, Any]) -> tuple[Augment, Augment]:
    """(weak, strong) from ``cfg['augment']``; video views are cropped to ``data.resolution``."""
    if cfg["data"].get("type", "skeleton") == "video":
        from ssmar.video.augment import video_strong_augment, video_weak_augment

        size = int(cfg["data"]["resolution"])
        return video_weak_augment(cfg["augment"]["weak"], size), video_strong_augment(cfg["augment"]["strong"], size)
    return weak_augment(cfg["augment"]["weak"]), strong_augment(cfg["augment"]["strong"])
