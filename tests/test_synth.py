"""The embedded synthetic data: determinism, format, cross-subject split, signal above nuisance, CLI."""

import re

import numpy as np
import pytest

from ssmar.cli.main import main
from ssmar.data.layouts import layout_for_data
from ssmar.data.ma52 import MA52_BODY_RANGES
from ssmar.data.skeleton_format import load_skeleton_pickle, validate_skeleton_data
from ssmar.data.synth import MA52_SYNTH_CLASSES, MAX_SECONDS, MIN_PERIOD, generate_synthetic, signal_table
from ssmar.errors import SsmarError

# MA-52 label_name.txt, in label order (github.com/VUT-HFUT/Micro-Action).
MA52_CLASSES = (
    "shaking body", "sitting straightly", "shrugging", "turning around", "rising up", "bowing head", "head up",
    "tilting head", "turning head", "nodding", "shaking head", "scratching arms", "playing objects",
    "putting hands together", "rubbing hands", "pointing oneself", "clenching fist", "stretching arms",
    "retracting arms", "waving", "spreading hands", "hands touching fingers", "other finger movements",
    "illustrative gestures", "shaking legs", "curling legs", "spread legs", "closing legs", "crossing legs",
    "stretching feet", "retracting feet", "tiptoe", "scratching or touching neck", "scratching or touching chest",
    "scratching or touching back", "scratching or touching shoulder", "arms akimbo", "crossing arms",
    "playing or tidying hair", "scratching or touching hindbrain", "scratching or touching forehead",
    "scratching or touching face", "rubbing eyes", "touching nose", "touching ears", "covering face",
    "covering mouth", "pushing glasses", "patting legs", "touching legs", "scratching legs", "scratching feet",
)
SMALL = dict(num_subjects=3, clips_per_class=1, test_subjects=1)
MEDIUM = dict(num_subjects=9, clips_per_class=2, test_subjects=3)


@pytest.fixture(scope="module")
def data() -> dict:
    return generate_synthetic(**MEDIUM)


def test_same_seed_is_bit_identical_and_seeds_differ():
    first, again, other = (generate_synthetic(seed=seed, **SMALL) for seed in (5, 5, 6))
    assert first["split"] == again["split"]
    for a, b in zip(first["annotations"], again["annotations"]):
        assert a["frame_dir"] == b["frame_dir"] and a["total_frames"] == b["total_frames"]
        assert np.array_equal(a["keypoint"], b["keypoint"]) and np.array_equal(a["keypoint_score"], b["keypoint_score"])
    assert any(a["total_frames"] != b["total_frames"] or not np.array_equal(a["keypoint"], b["keypoint"])
               for a, b in zip(first["annotations"], other["annotations"]))


def test_classes_are_ma52_classes_with_body_levels(data):
    assert len(MA52_SYNTH_CLASSES) >= 12 and len(set(MA52_SYNTH_CLASSES)) == len(MA52_SYNTH_CLASSES)
    assert set(MA52_SYNTH_CLASSES) <= set(MA52_CLASSES)
    assert data["class_names"] == list(MA52_SYNTH_CLASSES)
    body_of_id = {i: name for name, first, last in MA52_BODY_RANGES for i in range(first, last + 1)}
    for cls, name in enumerate(MA52_SYNTH_CLASSES):
        assert data["body_names"][data["body_map"][cls]] == body_of_id[MA52_CLASSES.index(name)]


def test_format_shapes_and_values(data):
    validate_skeleton_data(data)
    assert layout_for_data(data).name == "mediapipe_pose_33"
    anns = data["annotations"]
    assert len(anns) == 9 * 2 * len(MA52_SYNTH_CLASSES)
    lengths = np.array([ann["total_frames"] for ann in anns])
    assert lengths.min() >= 40 and lengths.max() <= 80 and lengths.std() > 5
    for ann in anns:
        frames = ann["total_frames"]
        assert ann["keypoint"].dtype == ann["keypoint_score"].dtype == np.float32
        assert ann["keypoint"].shape == (1, frames, 33, 3) and ann["keypoint_score"].shape == (1, frames, 33)
        assert np.isfinite(ann["keypoint"]).all()
        assert 0 < ann["keypoint"][..., :2].min() and ann["keypoint"][..., :2].max() < 1  # inside the image
        assert 0 <= ann["keypoint_score"].min() and ann["keypoint_score"].max() <= 1
        assert ann["fps"] == 30 and ann["img_shape"] == (720, 1280)
        assert re.fullmatch(rf"c{ann['label']:02d}_s{ann['subject']:02d}_r\d\d", ann["frame_dir"])
    scores = np.concatenate([ann["keypoint_score"].ravel() for ann in anns[::7]])
    assert np.median(scores) > 0.7 and 0.001 < (scores < 0.3).mean() < 0.2  # mostly visible, some lost joints


def test_split_is_cross_subject(data):
    subject = {ann["frame_dir"]: ann["subject"] for ann in data["annotations"]}
    train, test = data["split"]["train"], data["split"]["test"]
    assert sorted(train + test) == sorted(subject)
    assert {subject[f] for f in train}.isdisjoint({subject[f] for f in test})
    assert {subject[f] for f in test} == {6, 7, 8} and len(test) == 3 * 2 * len(MA52_SYNTH_CLASSES)


def test_every_class_moves_clearly_above_idle_motion_and_sensor_noise():
    """The action of every clip (10th percentile) moves its joints at least twice as far as idle motion
    and fidgets (90th percentile) and five times the per-frame sensor noise: no class hides in the noise."""
    rows = signal_table(seed=1, num_subjects=6, clips_per_class=2)
    assert [row["class"] for row in rows] == list(MA52_SYNTH_CLASSES)
    for row in rows:
        assert row["signal_p10_cm"] > 2 * row["idle_p90_cm"], row
        assert row["signal_p10_cm"] > 5 * row["noise_cm"], row
        assert 0 < row["noise_cm"] < 1 and 0 < row["idle_cm"] < 2.5, row
        assert (row["signal_deg"] is None) == (row["level"] != "head"), row
        assert row["signal_deg"] is None or row["signal_deg"] > 15, row  # visible head rotations


def test_oscillations_do_not_alias_at_32_frames():
    """The longest clip resampled to 32 frames still has at least 4 samples per period of the fastest
    oscillation (2 Hz), so resampling does not alias it."""
    assert MIN_PERIOD >= 4 * MAX_SECONDS / 32


def test_viewpoint_is_per_subject(data):
    """Each subject is filmed from their own viewpoint: the apparent shoulder width (over the nose-hip
    height) varies across subjects (camera yaw) much more than within a subject."""
    ratio = {}
    for ann in data["annotations"]:
        k = ann["keypoint"][0]
        width = np.abs(k[:, 11, 0] - k[:, 12, 0]).mean() / np.abs(k[:, 0, 1] - k[:, 23:25, 1].mean(-1)).mean()
        ratio.setdefault(ann["subject"], []).append(width)
    means = np.array([np.mean(v) for v in ratio.values()])
    within = np.mean([np.std(v) for v in ratio.values()])
    assert means.std() > 2 * within and means.max() > 1.3 * means.min()


def test_frame_rate_scales_clip_length():
    lengths = [ann["total_frames"] for ann in generate_synthetic(fps=15, **SMALL)["annotations"]]
    assert 20 <= min(lengths) and max(lengths) <= 40


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_subjects=0), "num_subjects must be an integer >= 1"),
    (dict(clips_per_class=1.5), "clips_per_class"),
    (dict(num_subjects=4, test_subjects=4), "must be below num_subjects"),
    (dict(test_subjects=-1), "test_subjects"),
    (dict(fps=0), "fps"),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(SsmarError, match=match):
        generate_synthetic(**kwargs)


def test_cli_writes_a_valid_file(tmp_path, capsys):
    out = tmp_path / "synth.pkl"
    assert main(["data", "synth", "-o", str(out), "--subjects", "3", "--clips-per-class", "2", "--seed", "3"]) == 0
    data = load_skeleton_pickle(out)
    assert len(data["annotations"]) == 3 * 2 * len(MA52_SYNTH_CLASSES)
    assert len(data["split"]["test"]) == 2 * len(MA52_SYNTH_CLASSES)  # a third of the subjects
    assert "90 clips, 15 classes, 3 subjects, split train=60 test=30" in capsys.readouterr().out


def test_cli_default_size(tmp_path):
    out = tmp_path / "synth.pkl"
    assert main(["data", "synth", "-o", str(out)]) == 0
    data = load_skeleton_pickle(out)
    assert len(data["annotations"]) == 42 * 2 * len(MA52_SYNTH_CLASSES)
    assert len(data["split"]["test"]) == 14 * 2 * len(MA52_SYNTH_CLASSES)


def test_cli_reports_bad_arguments(tmp_path, capsys):
    out = tmp_path / "synth.pkl"
    assert main(["data", "synth", "-o", str(out), "--subjects", "2", "--test-subjects", "2"]) == 2
    assert "must be below num_subjects" in capsys.readouterr().err and not out.exists()
