"""The record of APLT's offline rounds: each round's pseudo-label quality against the hidden labels,
beside the same frozen model's classifier, kept in ``WORK_DIR/aplt_rounds.json`` and drawn in
``aplt_rounds.png`` (docs/aplt.md); the benchmark scripts read the file back with :func:`read_rounds`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ssmar.aplt.diagnostics import compare_with_classifier
from ssmar.aplt.offline import OfflineRound
from ssmar.aplt.plots import plot_rounds
from ssmar.aplt.prototypes import prototype_drift
from ssmar.errors import SsmarError
from ssmar.runtime.io import save_json

ROUNDS_FILE = "aplt_rounds.json"
ROUNDS_PLOT = "aplt_rounds.png"


def round_record(round_index: int, epoch: int, seconds: float, result: OfflineRound, rows: Tensor, true: Tensor,
                 logits: Tensor, previous: Tensor, prototypes: Tensor, p_cutoff: float,
                 num_classes: int) -> dict[str, Any]:
    """One round's record: its offline labels of the unlabelled bank ``rows`` (hidden labels ``true``) against
    the classifier's ``logits`` on the same clips, the screen's thresholds and how far the prototypes moved
    from ``previous`` (from the second round on). The quality figures are measured on the clips whose labels
    are known (``true`` >= 0; ``known_labels`` is their share) and are None when there are none; the
    coverage counts every clip."""
    assign, keep, true, logits = result.assign[rows].cpu(), result.keep[rows].cpu(), true.cpu(), logits.cpu()
    order, known = result.screening_order(rows).cpu(), true >= 0
    if known.any():
        quality = compare_with_classifier(assign[known], keep[known], order[known], true[known], logits[known],
                                          p_cutoff, num_classes)
    else:
        quality = {"accuracy": None, "accuracy_unscreened": None, "purity": None,
                   "classifier_accuracy_at_equal_coverage": None}
    return {
        "round": round_index, "epoch": epoch, "seconds": seconds, **quality,
        "coverage": float(keep.float().mean()), "known_labels": float(known.float().mean()),
        "thresholds": [None if not torch.isfinite(t) else float(t) for t in result.thresholds.cpu()],
        "drift_mean": float(prototype_drift(previous, prototypes).mean()) if round_index > 1 else None,
    }


def round_summary(record: dict[str, Any], labeller: str, screen: str) -> str:
    """The log line of a round."""
    def percent(value: float | None) -> str:
        return "n/a" if value is None or math.isnan(value) else f"{value:.1%}"

    return (f"APLT round {record['round']} (epoch {record['epoch']}): kept {record['coverage']:.1%} of unlabelled at "
            f"accuracy {percent(record['accuracy'])} (classifier at equal coverage "
            f"{percent(record['classifier_accuracy_at_equal_coverage'])}); {labeller} labeller, {screen} screen; "
            f"{record['seconds']:.1f}s")


def save_rounds(rounds: list[dict[str, Any]], work_dir: Path) -> None:
    save_json({"rounds": rounds}, work_dir / ROUNDS_FILE)
    plot_rounds(rounds, work_dir / ROUNDS_PLOT)


def read_rounds(run_dir: Path) -> list[dict[str, Any]]:
    """The rounds a run recorded (empty when it wrote none)."""
    path = run_dir / ROUNDS_FILE
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text())["rounds"]
    except (OSError, ValueError, KeyError) as exc:
        raise SsmarError(f"{path} is unreadable ({exc!r}); rerun the APLT run or delete the file") from exc
