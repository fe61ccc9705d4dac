"""Clips nobody has labelled yet (label -1): accepted by the format and the importers, always in the
unlabelled part of a split, never scored as if their labels were known, refused for evaluation."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config
from ssmar.cli.main import main
from ssmar.data.importers import import_npy_folder
from ssmar.data.ma52 import read_list_file
from ssmar.data.skeleton_format import load_skeleton_pickle, save_skeleton_pickle
from ssmar.data.splits import load_or_make_split, make_ssl_split
from ssmar.engine.runs import run_training
from ssmar.errors import SsmarError

# An untrained tiny model is sure of nothing: thresholds of 0 keep every pseudo-label (as in test_aplt).
APLT_TINY = ["algorithm.name=aplt", "algorithm.params.num_aug=1", "algorithm.params.warmup_epochs=0",
             "algorithm.params.period=1", "algorithm.params.p_cutoff=0.0", "train.unsup_rampup=0",
             "algorithm.params.screen_params={threshold: 0.0}", "train.epochs=1", "train.steps_per_epoch=2"]


def hide_labels(source: Path, target: Path, keep_per_class: int) -> dict:
    """``source`` with every training clip after the first ``keep_per_class`` of its class set to -1."""
    data = load_skeleton_pickle(source)
    train, seen = set(data["split"]["train"]), {}
    for ann in data["annotations"]:
        if ann["frame_dir"] in train:
            seen[ann["label"]] = seen.get(ann["label"], 0) + 1
            if seen[ann["label"]] > keep_per_class:
                ann["label"] = -1
    save_skeleton_pickle(data, target)
    return data


def test_split_puts_unknown_labels_in_the_unlabelled_part() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, -1, -1, -1, -1])
    labelled, unlabelled = make_ssl_split(labels, seed=0, ratio=0.3)
    assert sorted(labels[labelled].tolist()) == [0, 1] and set(range(6, 10)) <= set(unlabelled.tolist())
    labelled, unlabelled = make_ssl_split(labels, seed=0, ratio=1.0)
    assert labelled.tolist() == [0, 1, 2, 3, 4, 5] and unlabelled.tolist() == [6, 7, 8, 9]
    labelled, _ = make_ssl_split(labels, seed=1, per_class=2)
    assert sorted(labels[labelled].tolist()) == [0, 0, 1, 1]


def test_class_without_any_labelled_clip_says_how_to_fix() -> None:
    labels = np.array([0, 0, -1, -1])
    params = {"data": "mine.pkl", "train_split": "train", "labelled_ratio": 1.0, "labels_per_class": None, "seed": 0}
    with pytest.raises(SsmarError, match=r"mine.pkl: class\(es\) \[1\] have no labelled clip in split 'train' "
                                         r"\(2 of its clips are not labelled yet\); label at least one clip"):
        load_or_make_split(None, ["a", "b", "c", "d"], labels, params, num_classes=2)


def test_import_npy_without_labels(tmp_path: Path) -> None:
    for name in ("b", "a"):
        np.save(tmp_path / f"{name}.npy", np.ones((4, 20, 3), np.float32))
    folder = import_npy_folder(tmp_path)
    assert [(a["frame_dir"], a["label"]) for a in folder["annotations"]] == [("a", -1), ("b", -1)]
    (tmp_path / "list.txt").write_text("a.npy 1\nb.npy\n")
    listed = import_npy_folder(tmp_path, tmp_path / "list.txt")
    assert [a["label"] for a in listed["annotations"]] == [1, -1]
    assert main(["import", "npy", str(tmp_path), "-o", str(tmp_path / "out.pkl")]) == 0
    assert {a["label"] for a in load_skeleton_pickle(tmp_path / "out.pkl")["annotations"]} == {-1}


def test_video_list_lines_without_labels_only_where_allowed(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("x.mp4 3\ny.mp4\nz z.mp4 -1\n")
    assert read_list_file(path, allow_unlabelled=True) == [("x.mp4", 3), ("y.mp4", -1), ("z z.mp4", -1)]
    with pytest.raises(SsmarError, match=":2: expected '<clip> <label>'"):
        read_list_file(path)


def test_training_with_unknown_labels_measures_pseudo_labels_on_known_ones_only(synth_file: Path,
                                                                                tmp_path: Path) -> None:
    data = hide_labels(synth_file, tmp_path / "partly.pkl", keep_per_class=1)
    unknown = sum(a["label"] < 0 for a in data["annotations"])
    run_training(tiny_config(tmp_path / "partly.pkl", tmp_path / "run", *APLT_TINY, "data.labelled_ratio=1.0"))
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["counts"] == {"labelled": 15, "unlabelled": unknown}
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    assert history[-1]["pl_coverage"] is not None
    assert history[-1]["pl_acc"] is None and history[-1]["pl_known_labels"] == 0.0, "no known label: n/a"
    rounds = json.loads((tmp_path / "run" / "aplt_rounds.json").read_text())["rounds"]
    assert rounds[0]["accuracy"] is None and rounds[0]["known_labels"] == 0.0 and 0 <= rounds[0]["coverage"] <= 1

    # hidden labels of a fully labelled set still score them, beside the truly unknown ones
    hide_labels(synth_file, tmp_path / "mixed.pkl", keep_per_class=3)
    run_training(tiny_config(tmp_path / "mixed.pkl", tmp_path / "mixed", *APLT_TINY, "data.labelled_ratio=0.5"))
    last = json.loads((tmp_path / "mixed" / "metrics.json").read_text())["history"][-1]
    assert 0 < last["pl_known_labels"] < 1 and last["pl_acc"] is not None
    assert json.loads((tmp_path / "mixed" / "aplt_rounds.json").read_text())["rounds"][0]["accuracy"] is not None


def test_evaluating_clips_without_labels_is_an_error(synth_file: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    data = load_skeleton_pickle(synth_file)
    first_test = data["split"]["test"][0]
    for ann in data["annotations"]:
        if ann["frame_dir"] == first_test:
            ann["label"] = -1
    save_skeleton_pickle(data, tmp_path / "d.pkl")
    with pytest.raises(SsmarError, match=rf"split 'test' has 1 clip\(s\) without a label \(label -1\), "
                                         rf"e.g. '{first_test}'; evaluation needs labels"):
        run_training(tiny_config(tmp_path / "d.pkl", tmp_path / "run", "train.epochs=1"))
