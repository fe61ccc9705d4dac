"""``ssmar suggest``: from a trained run, the unlabelled clips worth labelling next.

The pool is the run's unlabelled training clips (``split.json``: clips nobody has labelled, and in
the benchmark protocol those whose labels are hidden). The run's EMA model embeds the pool and the
labelled clips and scores the pool; a strategy (:mod:`ssmar.engine.acquisition`) ranks it. The
output is a CSV a person fills in (an empty ``label`` column that ``ssmar label`` reads) and, for
clips whose pose came from a video that is still on disk, a preview of the clip with its skeleton.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ssmar.data.layouts import layout_for_data
from ssmar.data.skeleton_format import load_skeleton_pickle
from ssmar.engine.acquisition import check_strategy, rank_pool
from ssmar.engine.inference import Recognizer, load_recognizer
from ssmar.errors import SsmarError
from ssmar.pose.render import render_clip
from ssmar.runtime.io import save_csv

SUGGESTIONS_FILE = "suggestions.csv"
PREVIEWS_DIR = "suggestions"
PREVIEW_SIDE = 240  # long side of preview frames: enough to see the movement, small enough to embed
CSV_COLUMNS = ("clip", "rank", "strategy", "predicted_class", "predicted_id", "confidence", "margin",
               "distance_to_labelled", "typicality", "cluster", "preview", "label")


@dataclass
class Suggestions:
    csv_path: Path
    rows: list[dict[str, Any]]
    pool_size: int
    previews_missing: list[str] = field(default_factory=list)  # clips from video whose preview failed


def suggest(run_dir: str | Path, strategy: str, budget: int | None = None, *, seed: int = 0,
            output: str | Path | None = None, previews: bool = True, device: str = "cpu") -> Suggestions:
    """Rank ``run_dir``'s unlabelled clips with ``strategy`` and keep ``budget`` of them (default: one per
    class); write the CSV (default RUN/suggestions.csv) and the previews (next to it, in ``suggestions/``)."""
    check_strategy(strategy)  # before the model loads
    run_dir = Path(run_dir)
    checkpoint, split_file = run_dir / "latest.pt", run_dir / "split.json"
    if not checkpoint.is_file() or not split_file.is_file():
        missing = "latest.pt" if not checkpoint.is_file() else "split.json"
        raise SsmarError(f"{run_dir}: no {missing}, so there is no trained run to suggest from; pass the "
                         "--work-dir of a finished `ssmar train`, or train one first")
    recognizer = load_recognizer(checkpoint, device)
    if recognizer.layout is None:
        raise SsmarError(f"{checkpoint} is a video checkpoint; ssmar suggest ranks skeleton clips: train on "
                         "poses (`ssmar extract-pose`) to get suggestions")
    source = recognizer.config["data"]["file"]
    data = load_skeleton_pickle(source)
    split = json.loads(split_file.read_text())
    by_name = {ann["frame_dir"]: ann for ann in data["annotations"]}
    absent = [name for name in split["labelled"] + split["unlabelled"] if name not in by_name]
    if absent:
        raise SsmarError(f"{split_file} names clip '{absent[0]}' that {source} no longer holds; suggest from a run "
                         "trained on this file")
    pool_names = split["unlabelled"]
    if not pool_names:
        raise SsmarError(f"{run_dir}: the run has no unlabelled clips; nothing to suggest")
    features, probabilities = embed(recognizer, [by_name[n] for n in pool_names + split["labelled"]])
    pool = len(pool_names)
    budget = recognizer.meta["num_classes"] if budget is None else budget
    ranking = rank_pool(strategy, features[:pool], features[pool:], probabilities[:pool], budget, seed)

    output = Path(output) if output is not None else run_dir / SUGGESTIONS_FILE
    class_names = recognizer.meta["class_names"]
    try:
        edges = layout_for_data(data).edges
    except SsmarError:
        edges = ()
    rows, failed = [], []
    for rank, position in enumerate(ranking.order.tolist(), 1):
        name = pool_names[position]
        probs = probabilities[position]
        preview = ""
        if previews and by_name[name].get("video"):
            preview = render_preview(by_name[name], edges, output.parent / PREVIEWS_DIR)
            if not preview:
                failed.append(name)
            else:
                preview = str(Path(preview).relative_to(output.parent))
        rows.append({"clip": name, "rank": rank, "strategy": strategy,
                     "predicted_class": class_names[int(probs.argmax())], "predicted_id": int(probs.argmax()),
                     "confidence": round(float(probs.max()), 4), "margin": round(float(ranking.margin[position]), 4),
                     "distance_to_labelled": round(float(ranking.distance[position]), 4),
                     "typicality": round(float(ranking.typicality[position]), 4),
                     "cluster": int(ranking.cluster[position]), "preview": preview, "label": ""})
    save_csv(rows, CSV_COLUMNS, output)
    return Suggestions(csv_path=output, rows=rows, pool_size=pool, previews_missing=failed)


@torch.no_grad()
def embed(recognizer: Recognizer, annotations: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings [N, D] and class probabilities [N, K] of ``annotations`` under the run's model."""
    clips, _, _ = recognizer.encode(annotations)
    features: list[torch.Tensor] = []

    def keep_features(out: dict[str, torch.Tensor]) -> torch.Tensor:
        features.append(out["feat"].float().cpu())
        return recognizer.score_outputs(out) if recognizer.score_outputs else out["logits"]

    scores = torch.from_numpy(recognizer.scores(clips, score_outputs=keep_features))
    return torch.cat(features), torch.softmax(scores, dim=1)


def render_preview(annotation: dict[str, Any], edges: Sequence[tuple[int, int]], folder: Path) -> str:
    """The clip's skeleton over its video as a GIF plus a contact sheet; the sheet's path, or ''
    when the video is gone or unreadable (the suggestion stands without its preview)."""
    video = Path(annotation["video"])
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", annotation["frame_dir"])[-80:]
    animation, sheet = folder / f"{stem}.gif", folder / f"{stem}.sheet.png"
    try:
        render_clip(video, annotation, edges, animation, sheet, max_side=PREVIEW_SIDE, grid=3)
    except (SsmarError, OSError):  # VideoError is an SsmarError
        return ""
    return str(sheet)


def suggestion_rows(csv_path: Path) -> list[dict[str, str]]:
    """The rows of a suggestions CSV (for the report)."""
    with open(csv_path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
