"""Configuration: YAML files over built-in defaults, with ``key.sub=value`` overrides.

Every option has a default here, so a typo in a file or an override is an error that
names the key and the closest valid one, rather than a silently ignored setting.
"""

from __future__ import annotations

import copy
import difflib
import os
from pathlib import Path
from typing import Any

import yaml

from ssmar.errors import SsmarError

DEFAULTS: dict[str, Any] = {
    "work_dir": None,  # default: work_dirs/<config stem>
    "seed": 0,
    "device": "cpu",  # cpu | cuda | cuda:N
    "threads": 0,  # torch intra-op threads; 0 = all cores
    "data": {
        "type": "skeleton",  # skeleton (data.file) | video (data.train_list / test_list; docs/video.md)
        "file": None,  # skeleton pickle (PYSKL/MMAction2 format)
        "train_split": "train",
        "test_split": "test",
        "val_fraction": 0.0,  # stratified carve-out of the train split, for tuning / model selection
        "val_subjects": None,  # or: hold these subjects of the train split out as validation (cross-subject)
        "eval_on": "test",  # test | val: which split the per-epoch evaluation and final metrics use
        "frames": 32,  # fixed clip length after temporal resampling
        "max_persons": 1,
        "channels": None,  # None = the file's coordinates (xyz or xy) | xy | xyz | xy_score | xyz_score (+ confidence)
        "labelled_ratio": 0.1,  # fraction of each class labelled (at least one per class)
        "labels_per_class": None,  # if set, overrides labelled_ratio
        "include_labelled_in_unlabelled": False,  # USB convention is False for skeletons here; see docs
        # video only (data.type=video)
        "video_root": None,  # folder the lists' clip paths are relative to; None = each list file's folder
        "train_list": None,  # MMAction2 list, '<clip> <label>' per line
        "test_list": None,  # what evaluation uses (point it at a val list to tune)
        "label_names": None,  # 'id<TAB>name' file (MA-52 label_name.txt); None = class_<id>
        "segments": 8,  # frames per clip, one per equal segment (TSN sampling)
        "resolution": 224,  # square network input (crop) size
        "short_side": None,  # frames are resized to this short side before cropping; None = resolution * 8/7
        "frame_cache": None,  # None (decode every time) | memory | a folder for one .npz of frames per video
        "decode_threads": 4,  # videos of a batch decoded in parallel
        "allow_missing_classes": False,  # allow classes without a training clip (subsets like the MA-52 demo)
    },
    "model": {
        "name": "stgcn",
        "channels": [32, 64, 64, 128],
        "strides": [2, 1, 2, 1],
        "temporal_kernel": 9,
        "dropout": 0.0,
        "head_dropout": 0.0,
        "motion": False,  # stgcn: also feed frame-to-frame joint displacements (computed after augmentation)
        # tsm_resnet only (each backbone takes the keys its constructor names)
        "depth": 50,  # 18 | 34 | 50 | 101
        "shift_div": 8,  # 1/shift_div of the channels shift each way in time
        "pretrained": None,  # None | imagenet (needs torchvision) | path to a torchvision ResNet state_dict
    },
    "augment": {
        "weak": {},  # parameters of ssmar.data.augment.weak_augment
        "strong": {},  # parameters of ssmar.data.augment.strong_augment
    },
    "algorithm": {
        "name": "supervised",
        "params": {},  # algorithm-specific, checked against the algorithm's defaults
    },
    "train": {
        "epochs": 20,
        "steps_per_epoch": 30,  # fixed for every method, so budgets are equal
        "batch_size": 16,  # labelled clips per step: global, split evenly over DDP processes (docs/distributed.md)
        "uratio": 2,  # unlabelled clips per labelled clip (mu)
        "optimizer": "sgd",  # sgd | adamw
        "lr": 0.05,
        "momentum": 0.9,
        "weight_decay": 0.0005,
        "warmup_epochs": 2,
        "label_smoothing": 0.0,  # >0 caps confidence below FixMatch-style thresholds: keep 0 for SSL
        "unsup_rampup": 0.2,  # share of steps over which every SSL method's unlabelled weight ramps 0 -> 1
        "ema": 0.99,
        "eval_every": 5,  # epochs
        "checkpoint_epochs": [],  # also keep epoch_<n>.pt after these epochs (e.g. for benchmarks/offline_labellers.py)
        "eval_batch_size": 128,
        "progress": True,
        "sync_bn": False,  # DDP: BatchNorm statistics over the global batch (1-process parity) instead of per process
        "amp": False,  # CUDA only: bfloat16 autocast of the forward pass and losses (no GradScaler needed)
        "channels_last": False,  # CUDA only: channels-last memory format for 2-D conv backbones (TSM)
    },
}


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Defaults, then the YAML file (with ``_base_`` inheritance), then overrides."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        _merge(cfg, _read_yaml(Path(path)), source=str(path))
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SsmarError(f"override '{item}' is not key=value; write e.g. train.epochs=20")
        set_key(cfg, key.strip(), yaml.safe_load(raw) if raw.strip() else None, source="command line")
    return cfg


def set_key(cfg: dict[str, Any], dotted: str, value: Any, source: str = "config") -> None:
    node: Any = cfg
    parts = dotted.split(".")
    for depth, part in enumerate(parts[:-1]):
        _check_key(node, part, ".".join(parts[: depth + 1]), source)
        node = node[part]
        if not isinstance(node, dict):
            raise SsmarError(f"{source}: '{'.'.join(parts[:depth + 1])}' is not a section; cannot set '{dotted}'")
    _check_key(node, parts[-1], dotted, source)
    node[parts[-1]] = value


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SsmarError(f"config file not found: {path}; see configs/ for examples")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SsmarError(f"{path}: invalid YAML{where} ({problem}); fix the syntax, see configs/ for "
                         "examples") from exc
    if not isinstance(loaded, dict):
        raise SsmarError(f"{path}: a config must be a mapping of sections")
    base = loaded.pop("_base_", None)
    if base is None:
        return loaded
    merged = _read_yaml((path.parent / base).resolve())
    _deep_update(merged, loaded)
    return merged


def _merge(cfg: dict[str, Any], update: dict[str, Any], source: str, prefix: str = "") -> None:
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        _check_key(cfg, key, dotted, source)
        if isinstance(cfg[key], dict) and isinstance(value, dict) and not _is_free_section(dotted):
            _merge(cfg[key], value, source, prefix=f"{dotted}.")
        else:
            cfg[key] = copy.deepcopy(value)


def _is_free_section(dotted: str) -> bool:
    """Sections whose keys are checked later by the component that owns them."""
    return dotted in ("algorithm.params", "augment.weak", "augment.strong")


def _check_key(node: dict[str, Any], key: str, dotted: str, source: str) -> None:
    parent = dotted.rpartition(".")[0]
    if key in node or _is_free_section(parent):
        return
    close = difflib.get_close_matches(key, list(node), n=1)
    hint = f"; did you mean '{(parent + '.' if parent else '') + close[0]}'?" if close else ""
    raise SsmarError(f"{source}: unknown config key '{dotted}'{hint}")


def _deep_update(base: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value


def dump_config(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
