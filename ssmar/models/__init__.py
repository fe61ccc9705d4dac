"""Backbones: each returns a pooled embedding and logits from a separate linear head."""

from __future__ import annotations

import inspect
from typing import Any

import torch.nn as nn

from ssmar.errors import SsmarError

MODEL_NAMES = ("stgcn", "tsm_resnet")


def build_model(cfg: dict[str, Any], num_classes: int, adjacency: Any | None, in_channels: int) -> nn.Module:
    """Build the backbone named by ``cfg['name']`` (``model`` section of the config).

    ``adjacency`` is the skeleton graph (None for video data). The ``model`` section holds
    the keys of every backbone; each gets the ones its constructor names.
    """
    name = cfg.get("name", "stgcn")
    if name == "stgcn":
        from ssmar.models.stgcn import STGCN

        if adjacency is None:
            raise SsmarError("model.name=stgcn needs skeleton data (data.type=skeleton); "
                             "for videos use model.name=tsm_resnet")
        return STGCN(num_classes=num_classes, adjacency=adjacency, in_channels=in_channels, **_params(cfg, STGCN))
    if name == "tsm_resnet":
        from ssmar.models.tsm import TSMResNet

        return TSMResNet(num_classes=num_classes, in_channels=in_channels, **_params(cfg, TSMResNet))
    raise SsmarError(f"unknown model.name '{name}'; choose one of: {', '.join(MODEL_NAMES)}")


def _params(cfg: dict[str, Any], model_class: type) -> dict[str, Any]:
    accepted = set(inspect.signature(model_class).parameters) - {"num_classes", "adjacency", "in_channels"}
    return {key: value for key, value in cfg.items() if key in accepted}
