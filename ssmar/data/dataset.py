"""Load a skeleton file into in-memory tensors plus the SSL partition of its train split.

Skeleton clips are small, so every split is preprocessed once into one tensor
``[N, C, T, V, M]``; augmentation then runs batched on the training device. The video
counterpart is :func:`ssmar.video.dataset.prepare_video_data`; :func:`ssmar.engine.inputs.prepare_data`
chooses between them by ``data.type``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssmar.data.layouts import Layout, layout_for_data
from ssmar.data.preprocess import clip_to_array, resolve_channels
from ssmar.data.skeleton_format import load_skeleton_pickle, require_known_labels, split_members
from ssmar.data.splits import load_or_make_split, stratified_pick
from ssmar.data.types import ClipSet, PreparedData
from ssmar.errors import SsmarError


def encode_annotations(annotations: list[dict], layout: Layout, frames: int, max_persons: int,
                       channels: str | None = None) -> ClipSet:
    arrays = [clip_to_array(ann, layout, frames, max_persons, channels) for ann in annotations]
    return ClipSet(torch.from_numpy(np.stack(arrays)),
                   torch.tensor([int(ann["label"]) for ann in annotations], dtype=torch.long),
                   [ann["frame_dir"] for ann in annotations])


def validation_carve_out(data: dict[str, Any], data_cfg: dict[str, Any],
                         source: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The positions of ``data``'s train split that train, and those split off as validation (None without a
    carve-out): whole subjects (``val_subjects``, the honest proxy for a cross-subject test) or a stratified
    fraction of clips (``val_fraction``). Only clips with known labels are held out (validation is scored);
    the others stay in training, unlabelled. Training and ``ssmar eval`` both call this: the same clips."""
    annotations = data["annotations"]
    labels = np.array([int(ann["label"]) for ann in annotations])
    train_pos = np.array(split_members(data, data_cfg["train_split"], source))
    val_fraction = float(data_cfg.get("val_fraction") or 0.0)
    val_subjects = data_cfg.get("val_subjects")
    if val_fraction > 0 and val_subjects:
        raise SsmarError("set either data.val_fraction or data.val_subjects, not both")
    if val_subjects:
        subjects = np.array([annotations[i].get("subject") for i in train_pos], dtype=object)
        held = np.isin(subjects, list(val_subjects)) & (labels[train_pos] >= 0)
        if not held.any() or held.all():
            raise SsmarError(f"{source}: data.val_subjects={list(val_subjects)} must name some but not all subjects "
                             f"of the train split (its clips carry 'subject': {sorted(set(subjects.tolist()), key=str)})")
        return train_pos[~held], train_pos[held]
    if val_fraction > 0:
        # The carve-out depends on the data only, so every method and ratio is tuned on the same clips.
        known = np.flatnonzero(labels[train_pos] >= 0)
        picked = known[stratified_pick(labels[train_pos][known], seed=12345, ratio=val_fraction, min_per_class=0)]
        return np.delete(train_pos, picked), train_pos[picked]
    return train_pos, None


def prepare_skeleton_data(cfg: dict[str, Any], work_dir: Path, seed: int, write_split: bool = True) -> PreparedData:
    """Encode the configured splits of ``data.file``; ``write_split=False`` (DDP ranks but 0) neither
    reads nor writes WORK_DIR/split.json: the trainer takes rank 0's partition."""
    data_cfg = cfg["data"]
    if not data_cfg.get("file"):
        raise SsmarError("no data file given; set data.file=PATH (a skeleton pickle) or use `ssmar data synth`")
    source = str(data_cfg["file"])
    data = load_skeleton_pickle(source)
    layout = layout_for_data(data)
    annotations = data["annotations"]
    channels = resolve_channels(data_cfg.get("channels"), annotations, source)
    labels = np.array([int(ann["label"]) for ann in annotations])
    class_names = list(data.get("class_names") or [f"class_{i}" for i in range(labels.max() + 1)])

    if data_cfg["eval_on"] not in ("test", "val"):
        raise SsmarError(f"data.eval_on must be 'test' or 'val', got '{data_cfg['eval_on']}'")
    train_pos, eval_pos = validation_carve_out(data, data_cfg, source)
    if data_cfg["eval_on"] == "val" and eval_pos is None:
        raise SsmarError("data.eval_on=val needs a carve-out of the train split: set data.val_fraction > 0 "
                         "or data.val_subjects=[...]")
    if data_cfg["eval_on"] == "test":
        eval_pos = np.array(split_members(data, data_cfg["test_split"], source))
    val_fraction = float(data_cfg.get("val_fraction") or 0.0)

    def encode(positions: np.ndarray) -> ClipSet:
        return encode_annotations([annotations[i] for i in positions], layout, data_cfg["frames"], data_cfg["max_persons"],
                                  channels)

    train, evaluation = encode(train_pos), encode(eval_pos)
    require_known_labels(evaluation.labels.numpy(), evaluation.names,
                         "validation" if data_cfg["eval_on"] == "val" else data_cfg["test_split"], source)
    params = {"data": Path(source).name, "train_split": data_cfg["train_split"], "val_fraction": val_fraction,
              **({"val_subjects": list(data_cfg["val_subjects"])} if data_cfg.get("val_subjects") else {}),
              "labelled_ratio": data_cfg["labelled_ratio"], "labels_per_class": data_cfg["labels_per_class"],
              "seed": seed}
    split_file = work_dir / "split.json" if write_split else None
    labelled, unlabelled = load_or_make_split(split_file, train.names, train.labels.numpy(), params,
                                              num_classes=len(class_names))
    return PreparedData(train=train, labelled=torch.from_numpy(labelled), unlabelled=torch.from_numpy(unlabelled),
                        evaluation=evaluation, class_names=class_names, layout=layout, channels=channels,
                        body_map=data.get("body_map"), body_names=data.get("body_names"),
                        info={"source": source, "train_clips": len(train), "eval_clips": len(evaluation),
                              "labelled": int(len(labelled)), "unlabelled": int(len(unlabelled))})
