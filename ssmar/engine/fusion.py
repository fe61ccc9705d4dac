"""Late fusion of recognizers trained on different modalities (e.g. pose and RGB).

Each checkpoint scores its own data (a skeleton pickle, a video list); clips are matched
by name, where a skeleton's ``frame_dir`` is the video's list path without its extension
(the MMAction2 convention ``ssmar extract-pose`` follows), and the fused prediction is
the weighted mean of the models' softmax probabilities. Only clips every model scored
count, and the report says how many each model had that the others lacked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ssmar.engine.metrics import classification_metrics
from ssmar.errors import SsmarError
from ssmar.video.decode import frame_dir_of


@dataclass
class ScoredClips:
    """One model's class probabilities on its own evaluation clips."""

    probs: np.ndarray  # [N, K]
    labels: np.ndarray  # [N]
    names: list[str]
    class_names: list[str]
    body_map: list[int] | None = None
    body_names: list[str] | None = None
    source: str = ""


def score_checkpoint(checkpoint: str | Path, data: str | Path | None = None, split: str | None = None,
                     device: str = "cpu") -> ScoredClips:
    """Softmax probabilities of ``checkpoint`` on its evaluation data (or on ``data``)."""
    from ssmar.engine.inference import load_recognizer

    recognizer = load_recognizer(checkpoint, device)
    encoded = recognizer.encode_source(data, split)
    probs = recognizer.probabilities(encoded.clips)
    meta = recognizer.meta
    return ScoredClips(probs, encoded.labels, encoded.names, list(meta["class_names"]), meta.get("body_map"),
                       meta.get("body_names"), source=encoded.source)


def late_fusion(models: Sequence[ScoredClips], weights: Sequence[float]) -> tuple[ScoredClips, dict[str, Any]]:
    """Weighted mean of the models' probabilities on the clips all of them scored.

    Returns the fused set (in the first model's clip order, with its class names and the
    first body-level map any model has) and a report of matched and unmatched clip counts.
    """
    if len(models) < 2 or len(weights) != len(models):
        raise SsmarError(f"late fusion needs at least two models and one weight each, got {len(models)} models "
                         f"and {len(weights)} weights")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise SsmarError(f"fusion weights must be >= 0 with a positive sum, got {list(weights)}")
    num_classes = {m.probs.shape[1] for m in models}
    if len(num_classes) > 1:
        raise SsmarError(f"the models predict different numbers of classes ({sorted(num_classes)}); "
                         "fuse models trained on the same label set")
    rows = [_rows_by_key(model) for model in models]
    common = [key for key in rows[0] if all(key in other for other in rows[1:])]
    if not common:
        raise SsmarError(f"no clip names in common (e.g. '{next(iter(rows[0]))}' vs '{next(iter(rows[1]))}'); "
                         "skeleton frame_dir must equal the video's list path without its extension")
    labels = models[0].labels[[rows[0][key] for key in common]]
    probs = np.zeros((len(common), num_classes.pop()))
    for model, index, weight in zip(models, rows, weights):
        picked = [index[key] for key in common]
        disagree = np.flatnonzero(model.labels[picked] != labels)
        if len(disagree):
            key = common[disagree[0]]
            raise SsmarError(f"clip '{key}' has label {labels[disagree[0]]} in {models[0].source} but "
                             f"{model.labels[picked][disagree[0]]} in {model.source}; the data sets disagree")
        probs += weight * model.probs[picked]
    probs /= sum(weights)
    first = models[0]
    with_body = next((m for m in models if m.body_map is not None), first)  # e.g. only the MA-52 video model has one
    fused = ScoredClips(probs, labels, [first.names[rows[0][key]] for key in common], first.class_names,
                        with_body.body_map, with_body.body_names, source="fusion")
    report = {"matched": len(common), "unmatched": [len(index) - len(common) for index in rows]}
    return fused, report


def evaluate_fusion(checkpoints: Sequence[str | Path], data: Sequence[str | Path | None], weights: Sequence[float],
                    split: str | None = None, device: str = "cpu") -> tuple[dict[str, Any], ScoredClips]:
    """Score each checkpoint on its data, fuse, and return metrics of every model and of the fusion.

    Each model's own metrics are on the matched clips only, so they compare with the fused ones.
    """
    models = [score_checkpoint(ckpt, source, split, device) for ckpt, source in zip(checkpoints, data)]
    fused, report = late_fusion(models, weights)
    per_model = []
    for checkpoint, model in zip(checkpoints, models):
        index = _rows_by_key(model)
        picked = [index[frame_dir_of(name)] for name in fused.names]
        metrics = _metrics(model.probs[picked], fused)
        per_model.append({"checkpoint": str(checkpoint), "data": model.source, **metric_summary(metrics)})
    fused_metrics = _metrics(fused.probs, fused)
    result = {"weights": list(weights), **report, "models": per_model,
              "fused": {k: v for k, v in fused_metrics.items() if k != "confusion"},
              "confusion": fused_metrics["confusion"]}
    return result, fused


def parse_weights(text: str, count: int) -> list[float]:
    """``"1,1"`` -> [1.0, 1.0], one weight per model."""
    try:
        weights = [float(part) for part in text.split(",")]
    except ValueError:
        raise SsmarError(f"--weights {text!r}: give {count} comma-separated numbers, e.g. 1,1") from None
    if len(weights) != count:
        raise SsmarError(f"--weights {text!r}: need {count} weights (one per checkpoint), got {len(weights)}")
    return weights


def metric_summary(metrics: dict[str, Any]) -> dict[str, float]:
    """The headline numbers, rounded, as `ssmar eval` prints them."""
    keys = ["top1", "top5", "mean_class_acc", "f1_micro", "f1_macro"]
    keys += [k for k in ("body_top1", "body_top5", "f1_mean") if k in metrics]
    return {k: round(metrics[k], 2) for k in keys}


def _rows_by_key(model: ScoredClips) -> dict[str, int]:
    rows: dict[str, int] = {}
    for row, name in enumerate(model.names):
        key = frame_dir_of(name)
        if key in rows:
            raise SsmarError(f"{model.source}: clips '{model.names[rows[key]]}' and '{name}' both match as '{key}'; "
                             "clip names must be unique without their extensions")
        rows[key] = row
    return rows


def _metrics(probs: np.ndarray, reference: ScoredClips) -> dict[str, Any]:
    return classification_metrics(probs, reference.labels, reference.class_names, reference.body_map,
                                  reference.body_names)
