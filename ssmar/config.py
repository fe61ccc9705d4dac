"""Configuration: YAML files over built-in defaults, with ``key.sub=value`` overrides.

Every option has a default here, so a typo in a file or an override is an error that
names the key and the closest valid one, rather than a silently ignored setting. Every
option also has a :class:`Spec` (:data:`SCHEMA`): its type and valid range or set, checked
when the config is resolved, so a bad value is one error line before any file is written.
Sections owned by a component (``algorithm.params``, ``augment.*``) declare their own specs
and are checked with :func:`check_section`.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import re
from dataclasses import dataclass
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
        "name": "stgcn",  # skeletons: stgcn | stgcnpp (ST-GCN++) | ctrgcn (CTR-GCN); videos: tsm_resnet
        # graph backbones: one block per entry (the CPU width; published width: docs/backbones.md)
        "channels": [32, 64, 64, 128],
        "strides": [2, 1, 2, 1],
        "temporal_kernel": 9,  # stgcn only
        "dropout": 0.0,
        "head_dropout": 0.0,
        # skeleton backbones: input streams stacked as channels (early fusion), computed inside the model after
        # augmentation: joint, bone, joint_motion, bone_motion (ssmar/data/streams.py)
        "streams": ["joint"],
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
        "steps_per_epoch": 30,  # fixed for every method, so budgets are equal; auto: follow the data (below)
        # steps_per_epoch=auto (ssmar.engine.schedule.plan_budget): passes * training clips / batch_size steps,
        # clamped to [min_steps, max_steps], spread over the epochs. 15 passes and a 1200-step floor: the knee of
        # the fully supervised validation curves on UTD-MHAD and Penn Action (BENCHMARKS.md section 13)
        "passes": 15.0,
        "min_steps": 1200,
        "max_steps": 6000,
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


@dataclass(frozen=True)
class Spec:
    """What one option accepts: a type (``int``, ``float``, ``bool``, ``str``, ``list``, ``dict`` or
    ``any``), optionally a range (``low``/``high``, ``low`` exclusive when ``low_open``), a set of
    ``choices``, list ``items`` and a minimum list length; ``None`` only when
    ``optional``."""

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    items: Spec | None = None
    min_length: int = 0
    optional: bool = False
    also: tuple[Any, ...] = ()  # values accepted besides the type (e.g. "auto" for an integer)

    def coerce(self, value: Any) -> Any:
        """A YAML string that is a number where a number is expected (``1e-3``: YAML 1.1 reads it as text)."""
        if self.kind == "float" and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
        if self.kind == "list" and self.items is not None and isinstance(value, list):
            return [self.items.coerce(item) for item in value]
        return value

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if any(value == extra and type(value) is type(extra) for extra in self.also):
            return True
        if self.choices:
            return any(value == choice and type(value) is type(choice) for choice in self.choices)
        if self.kind == "any":
            return True
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                return False
        elif self.kind == "float":
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                return False
        elif self.kind == "str":
            return isinstance(value, str)
        elif self.kind == "dict":
            return isinstance(value, dict)
        elif self.kind == "list":
            return (isinstance(value, (list, tuple)) and len(value) >= self.min_length
                    and all(self.items is None or self.items.accepts(item) for item in value))
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def allowed(self) -> str:
        """What :meth:`accepts` admits, in words for the error line."""
        if self.choices:
            text = "one of " + ", ".join(str(choice) for choice in self.choices)
        elif self.kind == "list":
            inner = f" whose entries are each {self.items.allowed()}" if self.items is not None else ""
            text = f"a list{inner}" + (f" with at least {self.min_length} entries" if self.min_length else "")
        else:
            text = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "text",
                    "dict": "a mapping", "any": "any value"}[self.kind]
            bounds = []
            if self.low is not None:
                bounds.append(f"{'>' if self.low_open else '>='} {_bound(self.low)}")
            if self.high is not None:
                bounds.append(f"{'<' if self.high_open else '<='} {_bound(self.high)}")
            text += " " + " and ".join(bounds) if bounds else ""
        text += "".join(f" or {extra}" for extra in self.also)
        return text + (" (or null)" if self.optional else "")


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def integer(low: int | None = None, high: int | None = None, optional: bool = False) -> Spec:
    return Spec("int", low=low, high=high, optional=optional)


def number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False,
           optional: bool = False) -> Spec:
    return Spec("float", low=low, high=high, low_open=low_open, high_open=high_open, optional=optional)


PROBABILITY = number(0.0, 1.0)
FLAG = Spec("bool")
TEXT = Spec("str")
OPTIONAL_TEXT = Spec("str", optional=True)
POSITIVE = integer(1)


def one_of(*choices: Any, optional: bool = False) -> Spec:
    return Spec("any", choices=choices, optional=optional)


def list_of(items: Spec, min_length: int = 0, optional: bool = False) -> Spec:
    return Spec("list", items=items, min_length=min_length, optional=optional)


SCHEMA: dict[str, Any] = {
    "work_dir": OPTIONAL_TEXT,
    "seed": integer(0, 2**32 - 1),
    "device": TEXT,  # cpu | cuda | cuda:N, checked where the device is resolved
    "threads": integer(0),
    "data": {
        "type": one_of("skeleton", "video"),
        "file": OPTIONAL_TEXT,
        "train_split": TEXT,
        "test_split": TEXT,
        "val_fraction": number(0.0, 1.0, high_open=True),
        "val_subjects": list_of(integer(), min_length=1, optional=True),
        "eval_on": one_of("test", "val"),
        "frames": POSITIVE,
        "channels": one_of("xy", "xyz", "xy_score", "xyz_score", optional=True),
        "max_persons": POSITIVE,
        "labelled_ratio": number(0.0, 1.0, low_open=True),
        "labels_per_class": integer(1, optional=True),
        "include_labelled_in_unlabelled": FLAG,
        "video_root": OPTIONAL_TEXT,
        "train_list": OPTIONAL_TEXT,
        "test_list": OPTIONAL_TEXT,
        "label_names": OPTIONAL_TEXT,
        "segments": POSITIVE,
        "resolution": integer(16),
        "short_side": integer(16, optional=True),
        "frame_cache": OPTIONAL_TEXT,
        "decode_threads": POSITIVE,
        "allow_missing_classes": FLAG,
    },
    "model": {
        "name": TEXT,  # the backbone registry names the valid ones (ssmar.models)
        "channels": list_of(POSITIVE, min_length=1),
        "strides": list_of(POSITIVE, min_length=1),
        "temporal_kernel": POSITIVE,
        "dropout": number(0.0, 1.0, high_open=True),
        "head_dropout": number(0.0, 1.0, high_open=True),
        "streams": list_of(TEXT, min_length=1),  # names checked by ssmar.data.streams.check_streams
        "depth": one_of(18, 34, 50, 101),
        "shift_div": POSITIVE,
        "pretrained": OPTIONAL_TEXT,
    },
    "augment": {"weak": Spec("dict", optional=True), "strong": Spec("dict", optional=True)},
    "algorithm": {"name": TEXT, "params": Spec("dict", optional=True)},
    "train": {
        "epochs": POSITIVE,
        "steps_per_epoch": Spec("int", low=1, also=("auto",)),
        "passes": number(0.0, low_open=True),
        "min_steps": POSITIVE,
        "max_steps": POSITIVE,
        "batch_size": POSITIVE,
        "uratio": POSITIVE,
        "optimizer": one_of("sgd", "adamw"),
        "lr": number(0.0, low_open=True),
        "momentum": number(0.0, 1.0, high_open=True),
        "weight_decay": number(0.0),
        "warmup_epochs": integer(0),
        "label_smoothing": number(0.0, 1.0, high_open=True),
        "unsup_rampup": PROBABILITY,
        "ema": PROBABILITY,
        "eval_every": POSITIVE,
        "checkpoint_epochs": list_of(POSITIVE),
        "eval_batch_size": POSITIVE,
        "progress": FLAG,
        "sync_bn": FLAG,
        "amp": FLAG,
        "channels_last": FLAG,
    },
}


def check_section(values: dict[str, Any], specs: dict[str, Spec], prefix: str) -> None:
    """Check (and coerce in place) ``values`` against ``specs``; raise one line naming the key, the
    value and what is allowed. Keys without a spec are the owner's to reject."""
    for key, spec in specs.items():
        if key not in values:
            continue
        values[key] = spec.coerce(values[key])
        if not spec.accepts(values[key]):
            raise SsmarError(f"config: {prefix}{key}={values[key]!r} is not allowed; "
                             f"{prefix}{key} takes {spec.allowed()}")


def validate_config(cfg: dict[str, Any]) -> None:
    """Check every value of a resolved config against :data:`SCHEMA` and the rules between keys."""
    def walk(values: dict[str, Any], schema: dict[str, Any], prefix: str) -> None:
        check_section(values, {k: v for k, v in schema.items() if isinstance(v, Spec)}, prefix)
        for key, sub in schema.items():
            if isinstance(sub, dict):
                if not isinstance(values.get(key), dict):
                    raise SsmarError(f"config: {prefix}{key} must be a section (a mapping of keys), "
                                     f"got {values.get(key)!r}")
                walk(values[key], sub, f"{prefix}{key}.")

    walk(cfg, SCHEMA, "")
    data, model = cfg["data"], cfg["model"]
    if data["type"] == "skeleton" and data["train_split"] == data["test_split"]:
        raise SsmarError(f"config: data.train_split and data.test_split are both '{data['train_split']}', so the "
                         "test figures would be measured on training clips; name two different splits (or hold "
                         "out part of the train split with data.val_fraction / data.val_subjects)")
    if len(model["strides"]) != len(model["channels"]):
        raise SsmarError(f"config: model.strides={model['strides']} has {len(model['strides'])} entries but "
                         f"model.channels has {len(model['channels'])}; give one stride per block")
    if cfg["train"]["min_steps"] > cfg["train"]["max_steps"]:
        raise SsmarError(f"config: train.min_steps={cfg['train']['min_steps']} is above train.max_steps="
                         f"{cfg['train']['max_steps']}; make the floor at most the cap")
    if model["temporal_kernel"] % 2 == 0:
        raise SsmarError(f"config: model.temporal_kernel={model['temporal_kernel']} is even; use an odd kernel "
                         "(e.g. 9) so that the padding keeps the clip length")


# A run's config.yaml also records what ran beyond its settings (budget in steps, code version;
# ssmar.engine.resolve): a record of the past, never read back as a setting.
PROVENANCE_KEY = "provenance"


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Defaults, then the YAML file (with ``_base_`` inheritance), then overrides."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        loaded = _read_yaml(Path(path))
        loaded.pop(PROVENANCE_KEY, None)
        _reject_glued_colons(loaded, "", str(path))
        _merge(cfg, loaded, source=str(path))
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SsmarError(f"override '{item}' is not key=value; write e.g. train.epochs=20")
        value = yaml.safe_load(raw) if raw.strip() else None
        _reject_glued_colons(value, key.strip() + ".", "command line")
        set_key(cfg, key.strip(), value, source="command line")
    validate_config(cfg)
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


_GLUED_KEY = re.compile(r"^[A-Za-z_][\w.]*:\S")


def _reject_glued_colons(value: Any, prefix: str, source: str) -> None:
    """YAML reads ``{threshold:2}`` (no space after the colon) as one key 'threshold:2' without a
    value; name that mistake instead of reporting an unknown key or a missing option later."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if inner is None and isinstance(key, str) and _GLUED_KEY.match(key):
                name, _, rest = key.partition(":")
                raise SsmarError(f"{source}: '{prefix}{key}' reads as one key without a value; YAML needs a space "
                                 f"after the colon: write '{name}: {rest}'")
            _reject_glued_colons(inner, f"{prefix}{key}.", source)
    elif isinstance(value, list):
        for item in value:
            _reject_glued_colons(item, prefix, source)


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
