"""Load a trained checkpoint as a recognizer: preprocess clips like training did, score them."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ssmar.algorithms import algorithm_class
from ssmar.data.dataset import encode_annotations, validation_carve_out
from ssmar.data.layouts import Layout
from ssmar.data.preprocess import resolve_channels
from ssmar.data.skeleton_format import load_skeleton_pickle, require_known_labels, split_members
from ssmar.engine.checkpoint import load_checkpoint, resolve_device
from ssmar.engine.evaluate import predict_scores
from ssmar.engine.resolve import has_resolved_settings
from ssmar.errors import SsmarError
from ssmar.models import build_model


@dataclass
class EncodedSet:
    """Clips ready for :meth:`Recognizer.scores`, with where they came from."""

    clips: Any  # tensor, or lazy VideoClips for video checkpoints
    labels: np.ndarray
    names: list[str]
    source: str  # skeleton pickle or video list
    split: str


@dataclass
class Recognizer:
    model: nn.Module  # the EMA weights, in eval mode
    config: dict[str, Any]
    meta: dict[str, Any]
    layout: Layout | None  # None for video checkpoints
    device: torch.device
    score_outputs: Any = None  # algorithm-specific scoring of the outputs (APLT's fusion); None = linear head

    def encode(self, annotations: list[dict]) -> tuple[torch.Tensor, np.ndarray, list[str]]:
        if self.layout is None:
            raise SsmarError("this is a video checkpoint; it scores video lists, not skeleton clips")
        joints = {np.shape(ann["keypoint"])[2] for ann in annotations}
        if joints != {self.layout.num_joints}:
            raise SsmarError(f"mismatched joint count: the model expects {self.layout.num_joints} joints "
                             f"({self.layout.name}), the clips have {sorted(joints)}; give it poses in the layout "
                             "it was trained on")
        # Checkpoints from before data.channels resolve like training did: the clips' own coordinates.
        channels = resolve_channels(self.meta.get("channels"), annotations, "these clips",
                                    fix="give it poses with the coordinates it was trained on")
        encoded = encode_annotations(annotations, self.layout, self.meta["frames"], self.meta["max_persons"], channels)
        return encoded.clips, encoded.labels.numpy(), encoded.names

    def encode_split(self, data_file: str | Path, split: str) -> tuple[torch.Tensor, np.ndarray, list[str]]:
        data = load_skeleton_pickle(data_file)
        annotations = [data["annotations"][i] for i in split_members(data, split, str(data_file))]
        return self.encode(annotations)

    def encode_source(self, data: str | Path | None = None, split: str | None = None) -> EncodedSet:
        """The evaluation clips of the data this checkpoint was trained on, or of ``data``.

        Skeleton: ``data`` is a pickle and ``split`` one of its splits (default: the split the run was
        scored on: its validation carve-out for a run with ``data.eval_on=val``, else the test split), every
        clip labelled (what is scored must have labels). Video: ``data`` is an MMAction2 list (default:
        ``data.<split>_list``, with ``split`` train or test), read with the checkpoint's segments and resolution.
        """
        data_cfg = self.config["data"]
        if data_cfg.get("type", "skeleton") != "video":
            source = data or data_cfg["file"]
            if split is None and data_cfg.get("eval_on") == "val":
                # the run was scored on its carve-out of the train split: the same clips, never the test split
                loaded = load_skeleton_pickle(source)
                _, val_pos = validation_carve_out(loaded, data_cfg, str(source))
                clips, labels, names = self.encode([loaded["annotations"][i] for i in val_pos])
                return EncodedSet(clips, labels, names, str(source), "validation")
            split = split or data_cfg["test_split"]
            clips, labels, names = self.encode_split(source, split)
            require_known_labels(labels, names, split, str(source))
            return EncodedSet(clips, labels, names, str(source), split)
        from ssmar.video.dataset import load_video_list

        split = split or "test"
        if data is None and split not in ("train", "test"):
            raise SsmarError(f"video checkpoints know the splits train and test (data.train_list / "
                             f"data.test_list), not '{split}'; pass a list file with --data")
        source = data or data_cfg[f"{split}_list"]
        encoded = load_video_list(source, data_cfg, train=False, num_classes=self.meta["num_classes"])
        return EncodedSet(encoded.clips, encoded.labels.numpy(), encoded.names, str(source), split)

    def scores(self, clips: torch.Tensor, batch_size: int | None = None, score_outputs: Any = None) -> np.ndarray:
        """Class scores ``[N, K]``, in batches of the run's ``train.eval_batch_size`` unless given;
        ``score_outputs`` replaces the run's own scoring of the model outputs (e.g. to keep the features too)."""
        batch_size = batch_size or int(self.config["train"]["eval_batch_size"])
        return predict_scores(self.model, clips, self.device, batch_size, score_outputs or self.score_outputs)

    def probabilities(self, clips: torch.Tensor) -> np.ndarray:
        return torch.softmax(torch.from_numpy(self.scores(clips)), dim=1).numpy()

    def top_classes(self, annotations: list[dict], top: int) -> list[dict[str, Any]]:
        """Per clip: its name and the ``top`` most probable classes with their probabilities."""
        clips, _, names = self.encode(annotations)
        class_names = self.meta["class_names"]
        results = []
        for name, probs in zip(names, self.probabilities(clips)):
            order = np.argsort(-probs)[:top]
            results.append({"clip": name, "top": [{"class_id": int(i), "class": class_names[i],
                                                   "probability": float(probs[i])} for i in order]})
        return results


def load_recognizer(checkpoint: str | Path, device: str = "cpu", skeleton_only: str | None = None) -> Recognizer:
    """The checkpoint's EMA model, ready to score; ``skeleton_only`` (what needs poses, e.g. "the timeline")
    refuses a video (RGB) checkpoint before any model is built."""
    state = load_checkpoint(checkpoint)
    meta = state["meta"]
    if skeleton_only and meta["layout"] is None:
        raise SsmarError(f"{checkpoint} is a video (RGB, data.type=video) checkpoint; {skeleton_only} scores poses: "
                         "pass a checkpoint trained on skeletons (e.g. on ssmar extract-pose data)")
    layout = None
    if meta["layout"] is not None:
        layout = Layout.from_dict(meta["layout"])
    torch_device = resolve_device(device)
    # The checkpoint holds every weight: never fetch pretrained ones again.
    model_cfg = {**meta["model"], "pretrained": None}
    model = build_model(model_cfg, meta["num_classes"], layout, meta["in_channels"])
    try:
        model.load_state_dict(state["ema"])
    except RuntimeError as exc:
        raise SsmarError(f"{checkpoint}: weights do not fit the model described in it ({str(exc).splitlines()[0]})") from exc
    model.to(torch_device).eval()
    algorithm = algorithm_class(meta["algorithm"])
    params = state["config"]["algorithm"]["params"] or {}
    if not has_resolved_settings(state):  # before runs recorded their resolved settings: as it was scored then
        print(f"warning: {checkpoint} records no resolved settings (written before ssmar saved them); its "
              f"{meta['algorithm']} params are completed with this version's defaults", file=sys.stderr)
        params = {**algorithm.defaults, **params}
    score_outputs = algorithm.inference_scores(state["algorithm"], params, torch_device)
    return Recognizer(model=model, config=state["config"], meta=meta, layout=layout, device=torch_device,
                      score_outputs=score_outputs)


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path | None = None, split: str | None = None,
                        device: str = "cpu", out: str | Path | None = None,
                        submission: str | Path | None = None) -> tuple[dict[str, Any], Path]:
    """Score ``checkpoint`` on its evaluation split (or ``data`` / ``split``) and write ``metrics.json``
    and the confusion matrix to ``out`` (default: ``eval_<split>`` beside the checkpoint), plus, with
    ``submission``, MA-52 challenge predictions. Returns the metrics and the output directory."""
    from ssmar.engine.metrics import body_level_scores, classification_metrics, save_confusion
    from ssmar.runtime.io import save_json

    recognizer = load_recognizer(checkpoint, device)
    meta = recognizer.meta
    if submission and meta.get("body_map") is None:
        raise SsmarError("--submission needs a body-level map (MA-52 data with body_map); this checkpoint's data "
                         "has none")
    encoded = recognizer.encode_source(data, split)
    scores = recognizer.scores(encoded.clips)
    metrics = classification_metrics(scores, encoded.labels, meta["class_names"], meta.get("body_map"),
                                     meta.get("body_names"))
    out = Path(out) if out else Path(checkpoint).parent / f"eval_{encoded.split}"
    save_json({"checkpoint": str(checkpoint), "data": encoded.source, "split": encoded.split,
               **{k: v for k, v in metrics.items() if k != "confusion"}}, out / "metrics.json")
    save_confusion(metrics["confusion"], meta["class_names"], out,
                   title=f"{Path(checkpoint).name} on {encoded.split}: top-1 {metrics['top1']:.1f}%")
    if submission:
        from ssmar.data.ma52 import write_submission

        body_order = np.argsort(-body_level_scores(scores, meta["body_map"]), axis=1)[:, :5]
        write_submission(submission, encoded.names, np.argsort(-scores, axis=1)[:, :5], body_order)
    return metrics, out


def video_poses(videos: list[str], pose_file: str | Path | None = None) -> list[dict]:
    """One pose annotation per video: looked up by file stem in ``pose_file``, else extracted now
    with MediaPipe."""
    if pose_file is None:
        from ssmar.pose import extract_clip_pose

        return [extract_clip_pose(video) for video in videos]
    by_name = {ann["frame_dir"]: ann for ann in load_skeleton_pickle(pose_file)["annotations"]}
    missing = [video for video in videos if Path(video).stem not in by_name]
    if missing:
        raise SsmarError(f"{pose_file} has no pose for {missing[0]} (clips are matched by file stem); "
                         "drop --pose to extract it now")
    return [by_name[Path(video).stem] for video in videos]
