"""data.channels: coordinates with or without the pose estimator's confidence as a last input channel."""

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config
from ssmar.data.augment import strong_augment, weak_augment
from ssmar.data.layouts import get_layout
from ssmar.data.preprocess import clip_to_array, resolve_channels
from ssmar.engine.inference import load_recognizer
from ssmar.engine.runs import run_training
from ssmar.errors import SsmarError

COCO = get_layout("coco_17")


def _clip(coordinates: int = 2, frames: int = 6) -> dict:
    rng = np.random.default_rng(0)
    keypoint = rng.normal(size=(1, frames, 17, coordinates)).astype(np.float32)
    score = rng.uniform(0.2, 1.0, size=(1, frames, 17)).astype(np.float32)
    keypoint[0, 2, 3] = 0.0  # a missing joint: coordinates 0 and score 0
    score[0, 2, 3] = 0.0
    return {"frame_dir": "c0", "label": 0, "keypoint": keypoint, "keypoint_score": score}


def test_score_channel_is_the_confidence_and_zero_where_missing() -> None:
    clip = _clip()
    plain = clip_to_array(clip, COCO, frames=6, max_persons=2)
    scored = clip_to_array(clip, COCO, frames=6, max_persons=2, channels="xy_score")
    assert plain.shape == (2, 6, 17, 2) and scored.shape == (3, 6, 17, 2)
    np.testing.assert_array_equal(scored[:2], plain)  # the coordinates are unchanged
    np.testing.assert_allclose(scored[2, :, :, 0], clip["keypoint_score"][0])
    assert scored[2, 2, 3, 0] == 0 and (scored[:, :, :, 1] == 0).all()  # missing joint, padded person


def test_xy_drops_depth_and_defaults_follow_the_file() -> None:
    clip = _clip(coordinates=3)
    assert clip_to_array(clip, COCO, 6, 1, channels="xy").shape[0] == 2
    assert clip_to_array(clip, COCO, 6, 1, channels="xyz_score").shape[0] == 4
    assert resolve_channels(None, [clip], "f.pkl") == "xyz"
    assert resolve_channels(None, [_clip()], "f.pkl") == "xy"
    with pytest.raises(SsmarError, match=r"data.channels=xyz_score needs 3 coordinates per joint, but f.pkl "
                                         r"\(e.g. clip 'c0'\) has 2; use data.channels=xy or xy_score"):
        resolve_channels("xyz_score", [_clip()], "f.pkl")
    with pytest.raises(SsmarError, match="unknown data.channels 'xys'"):
        resolve_channels("xys", [clip], "f.pkl")


@pytest.mark.parametrize("make", [weak_augment, strong_augment])
def test_geometric_augmentations_leave_the_score_alone(make) -> None:
    x = torch.randn(8, 3, 12, 17, 1)
    score = torch.rand(8, 12, 17, 1) + 0.1
    x = torch.cat([x, score[:, None]], dim=1)
    options = {"rotate_degrees": 45.0, "scale": 0.3, "crop_min_ratio": 1.0}  # no temporal resampling
    out = make(options, score_channel=True)(x, torch.Generator().manual_seed(0))
    kept = out[:, 3] != 0  # joints and frames the masks did not drop keep their score
    assert kept.any() and torch.equal(out[:, 3][kept], x[:, 3][kept])
    assert torch.equal((out[:, 3] == 0), (out[:, :3] == 0).all(dim=1))  # score 0 exactly where a joint is dropped
    assert not torch.allclose(out[:, :3], x[:, :3])  # the coordinates did move
    # without the flag the same ops would rotate the score into the coordinates
    assert not torch.equal(make(options)(x[:, 1:], torch.Generator().manual_seed(0))[:, 2], x[:, 3])


def test_training_with_the_score_channel_and_predicting_from_its_checkpoint(synth_file: Path, tmp_path: Path) -> None:
    cfg = tiny_config(synth_file, tmp_path / "run", "data.channels=xyz_score", "train.epochs=1",
                      "train.steps_per_epoch=2", "data.labelled_ratio=0.5")
    run_training(cfg)
    recognizer = load_recognizer(tmp_path / "run" / "latest.pt")
    assert recognizer.meta["channels"] == "xyz_score" and recognizer.meta["in_channels"] == 4
    encoded = recognizer.encode_source()
    assert encoded.clips.shape[1] == 4
    assert recognizer.scores(encoded.clips).shape == (len(encoded.names), len(recognizer.meta["class_names"]))


@pytest.mark.parametrize("make", [weak_augment, strong_augment])
def test_the_score_channel_does_not_change_what_happens_to_the_coordinates(make) -> None:
    x = torch.randn(8, 3, 12, 17, 1)
    with_score = torch.cat([x, torch.rand(8, 1, 12, 17, 1) + 0.1], dim=1)
    plain = make()(x, torch.Generator().manual_seed(3))
    scored = make(score_channel=True)(with_score, torch.Generator().manual_seed(3))
    torch.testing.assert_close(scored[:, :3], plain)  # same random draws, same coordinates
