"""Load a trained checkpoint as a recognizer: preprocess clips like training did, score them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ssmar.algorithms import algorithm_class
from ssmar.data.dataset import encode_annotations
from ssmar.data.layouts import Layout
from ssmar.data.skeleton_format import load_skeleton_pickle, split_members
from ssmar.engine.evaluate import predict_scores
from ssmar.engine.trainer import load_checkpoint, resolve_device
from ssmar.errors import SsmarError
from ssmar.models import build_model


@dataclass
class Recognizer:
    model: nn.Module  # the EMA weights, in eval mode
    config: dict[str, Any]
    meta: dict[str, Any]
    layout: Layout
    device: torch.device
    score_fn: Any = None  # algorithm-specific scoring (e.g. APLT's prototype fusion); None = linear head

    def encode(self, annotations: list[dict]) -> tuple[torch.Tensor, np.ndarray, list[str]]:
        joints = {np.shape(ann["keypoint"])[2] for ann in annotations}
        if joints != {self.layout.num_joints}:
            raise SsmarError(f"mismatched joint count: the model expects {self.layout.num_joints} joints "
                             f"({self.layout.name}), the clips have {sorted(joints)}")
        encoded = encode_annotations(annotations, self.layout, self.meta["frames"], self.meta["max_persons"])
        return encoded.clips, encoded.labels.numpy(), encoded.names

    def encode_split(self, data_file: str | Path, split: str) -> tuple[torch.Tensor, np.ndarray, list[str]]:
        data = load_skeleton_pickle(data_file)
        annotations = [data["annotations"][i] for i in split_members(data, split, str(data_file))]
        return self.encode(annotations)

    def scores(self, clips: torch.Tensor, batch_size: int = 128) -> np.ndarray:
        return predict_scores(self.model, clips, self.device, batch_size, self.score_fn)

    def probabilities(self, clips: torch.Tensor) -> np.ndarray:
        return torch.softmax(torch.from_numpy(self.scores(clips)), dim=1).numpy()


def load_recognizer(checkpoint: str | Path, device: str = "cpu") -> Recognizer:
    state = load_checkpoint(checkpoint)
    meta = state["meta"]
    layout_fields = dict(meta["layout"])
    for key in ("joint_names", "scale_pair", "center_joints"):
        layout_fields[key] = tuple(layout_fields[key])
    for key in ("edges", "flip_pairs"):
        layout_fields[key] = tuple(tuple(pair) for pair in layout_fields[key])
    layout = Layout(**layout_fields)
    torch_device = resolve_device(device)
    model = build_model(meta["model"], meta["num_classes"], layout.adjacency("spatial"), meta["in_channels"])
    try:
        model.load_state_dict(state["ema"])
    except RuntimeError as exc:
        raise SsmarError(f"{checkpoint}: weights do not fit the model described in it ({str(exc).splitlines()[0]})") from exc
    model.to(torch_device).eval()
    algorithm = algorithm_class(meta["algorithm"])
    score_fn = getattr(algorithm, "inference_scores", None)
    if score_fn is not None:
        score_fn = score_fn(state["algorithm"], state["config"]["algorithm"]["params"], torch_device)
    return Recognizer(model=model, config=state["config"], meta=meta, layout=layout, device=torch_device,
                      score_fn=score_fn)
