"""Backbones: each returns a pooled embedding and logits from a separate linear head.

The registry names each backbone's class; the keys a backbone takes are its constructor's
parameters (less what the data sets: classes, graph, input channels). The config's ``model``
section holds the keys of every backbone with their defaults, so a key the chosen backbone does
not take is ignored while it keeps its default and an error once set to anything else
(e.g. ``model.depth=18`` with ``model.name=stgcn``): a setting is never dropped silently.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch.nn as nn

from ssmar.config import DEFAULTS
from ssmar.errors import SsmarError

BACKBONES = {
    "stgcn": "ssmar.models.stgcn:STGCN",
    "tsm_resnet": "ssmar.models.tsm:TSMResNet",
}
FROM_DATA = ("num_classes", "adjacency", "in_channels")  # constructor arguments the data decides


def backbone_class(name: str) -> type:
    if name not in BACKBONES:
        raise SsmarError(f"unknown model.name '{name}'; choose one of: {', '.join(BACKBONES)}")
    module_name, _, class_name = BACKBONES[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def backbone_params(cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``model`` keys the backbone ``cfg['name']`` takes; a key it does not take must keep its default."""
    name = cfg.get("name", "stgcn")
    accepted = set(inspect.signature(backbone_class(name)).parameters) - set(FROM_DATA)
    defaults = DEFAULTS["model"]
    foreign = sorted(key for key, value in cfg.items()
                     if key != "name" and key not in accepted and (key not in defaults or value != defaults[key]))
    if foreign:
        settings = ", ".join(f"model.{key}={cfg[key]!r}" for key in foreign)
        raise SsmarError(f"{settings}: not a setting of model.name={name}, which takes "
                         f"{', '.join(f'model.{key}' for key in sorted(accepted))}; remove it or choose the "
                         "backbone it belongs to")
    return {key: value for key, value in cfg.items() if key in accepted}


def build_model(cfg: dict[str, Any], num_classes: int, adjacency: Any | None, in_channels: int) -> nn.Module:
    """Build the backbone named by ``cfg['name']`` (``model`` section of the config).

    ``adjacency`` is the skeleton graph (None for video data).
    """
    name = cfg.get("name", "stgcn")
    params = backbone_params(cfg)
    if name == "stgcn":
        if adjacency is None:
            raise SsmarError("model.name=stgcn needs skeleton data (data.type=skeleton); "
                             "for videos use model.name=tsm_resnet")
        return backbone_class(name)(num_classes=num_classes, adjacency=adjacency, in_channels=in_channels, **params)
    return backbone_class(name)(num_classes=num_classes, in_channels=in_channels, **params)
