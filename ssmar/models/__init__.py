"""Backbones: each returns a pooled embedding and logits from a separate linear head."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from ssmar.errors import SsmarError


def build_model(cfg: dict[str, Any], num_classes: int, adjacency: Any, in_channels: int) -> nn.Module:
    """Build the backbone named by ``cfg['name']`` (``model`` section of the config)."""
    name = cfg.get("name", "stgcn")
    params = {k: v for k, v in cfg.items() if k != "name"}
    if name == "stgcn":
        from ssmar.models.stgcn import STGCN

        return STGCN(num_classes=num_classes, adjacency=adjacency, in_channels=in_channels, **params)
    raise SsmarError(f"unknown model.name '{name}'; choose one of: stgcn")
