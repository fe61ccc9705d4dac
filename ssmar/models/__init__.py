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
from ssmar.data.layouts import Layout
from ssmar.data.streams import bone_parents, check_streams
from ssmar.errors import SsmarError

BACKBONES = {
    "stgcn": "ssmar.models.stgcn:STGCN",
    "stgcnpp": "ssmar.models.stgcnpp:STGCNPlusPlus",
    "ctrgcn": "ssmar.models.ctrgcn:CTRGCN",
    "tsm_resnet": "ssmar.models.tsm:TSMResNet",
}
FROM_DATA = ("num_classes", "adjacency", "parents", "in_channels")  # constructor arguments the data decides
SKELETON_ONLY = ("adjacency", "parents")  # a backbone that takes these needs skeleton data


def backbone_class(name: str) -> type:
    if name not in BACKBONES:
        raise SsmarError(f"unknown model.name '{name}'; choose one of: {', '.join(BACKBONES)}")
    module_name, _, class_name = BACKBONES[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def upgrade_model_cfg(cfg: dict[str, Any]) -> dict[str, Any]:
    """A ``model`` section written before ``model.streams`` existed (``motion: true`` fed joints and their
    motion, in that channel order), in today's keys; other sections unchanged."""
    if "motion" not in cfg:
        return cfg
    cfg = dict(cfg)
    motion = cfg.pop("motion")
    cfg.setdefault("streams", ["joint", "joint_motion"] if motion else ["joint"])
    return cfg


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
    params = {key: value for key, value in cfg.items() if key in accepted}
    if "streams" in params:
        params["streams"] = list(check_streams(params["streams"]))
    return params


def build_model(cfg: dict[str, Any], num_classes: int, layout: Layout | None, in_channels: int) -> nn.Module:
    """Build the backbone named by ``cfg['name']`` (``model`` section of the config).

    ``layout`` is the skeleton format (None for video data): graph backbones take its adjacency and the
    bone parents of their input streams.
    """
    cfg = upgrade_model_cfg(cfg)
    name = cfg.get("name", "stgcn")
    params = backbone_params(cfg)
    cls = backbone_class(name)
    takes = set(inspect.signature(cls).parameters)
    data_args: dict[str, Any] = {"num_classes": num_classes, "in_channels": in_channels}
    if takes & set(SKELETON_ONLY):
        if layout is None:
            raise SsmarError(f"model.name={name} needs skeleton data (data.type=skeleton); "
                             "for videos use model.name=tsm_resnet")
        data_args.update(adjacency=layout.adjacency("spatial"), parents=bone_parents(layout))
    return cls(**{key: value for key, value in data_args.items() if key in takes}, **params)
