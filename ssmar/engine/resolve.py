"""The resolved run configuration: built once, at the start of a run, and what the run records.

:func:`resolve_run` checks a loaded config and fills in every value a component would otherwise
default on its own: the algorithm's params after its preset and defaults, every augmentation
option, the run-specific data settings of an all-label method. Each component is then handed its
section of this one config, and ``config.yaml``, every checkpoint, ``metrics.json`` and a
benchmark cell's ``result.json`` save it with :func:`run_provenance` (budget in steps, code
version). Resolving is idempotent, so a saved ``config.yaml`` loads and resolves to itself: a run
re-scored or resumed later runs with the settings it recorded, not with today's defaults.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ssmar.algorithms import algorithm_class
from ssmar.config import PROVENANCE_KEY, validate_config
from ssmar.engine.inputs import augment_options
from ssmar.engine.provenance import code_version, file_digest
from ssmar.engine.schedule import Budget
from ssmar.models import backbone_params

__all__ = ["PROVENANCE_KEY", "has_resolved_settings", "resolve_run", "run_provenance"]


def resolve_run(cfg: dict[str, Any]) -> dict[str, Any]:
    """A checked copy of ``cfg`` with every component's section resolved; raises one
    :class:`~ssmar.errors.SsmarError` line on the first bad value, before anything is written.

    The copy has the JSON form its result files will hold (text keys, lists), so that the settings a
    checkpoint, ``config.yaml`` and ``metrics.json`` record compare equal (a setting by labelled share
    given as ``{0.1: 1.0}`` is ``{"0.1": 1.0}`` in all of them)."""
    cfg = copy.deepcopy(cfg)
    validate_config(cfg)
    algorithm = algorithm_class(cfg["algorithm"]["name"])
    params = algorithm.resolve_params(cfg["algorithm"]["params"] or {})
    # the budget's epochs are known before the data is loaded, whatever the rule (plan_budget spreads the
    # steps over train.epochs whole epochs), so APLT's round guard is checked here, before anything is written
    algorithm.check_budget(params, int(cfg["train"]["epochs"]))
    cfg["algorithm"]["params"] = copy.deepcopy(params)
    backbone_params(cfg["model"])
    cfg["augment"] = copy.deepcopy(augment_options(cfg))
    if algorithm.all_labels:  # what the run trains on, and what its config.yaml says
        cfg["data"]["labelled_ratio"], cfg["data"]["labels_per_class"] = 1.0, None
    return json.loads(json.dumps(cfg))


def run_provenance(cfg: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """What a resolved config does not say itself: the budget in steps (planned from the data where
    ``train.steps_per_epoch=auto``), the code that ran and the data file's digest."""
    return {"total_steps": budget.total_steps, "steps_per_epoch": budget.steps_per_epoch, "code": code_version(),
            "data_sha256": file_digest(cfg["data"].get("file"))}


def has_resolved_settings(saved: dict[str, Any]) -> bool:
    """Whether a saved checkpoint / metrics / result records its resolved settings (written by this
    version or later); older files hold only the params given, completed by the defaults of the day."""
    return PROVENANCE_KEY in saved
