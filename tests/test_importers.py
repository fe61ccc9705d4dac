"""Importers: UTD-MHAD and Penn Action .mat files and user .npy folders into the canonical skeleton dict."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ssmar.cli.main import main
from ssmar.config import load_config
from ssmar.data.dataset import prepare_skeleton_data
from ssmar.data.importers import (PENN_ACTION_CLASSES, UTD_MHAD_CLASSES, import_npy_folder, import_penn_action,
                                  import_utd_mhad, read_class_names)
from ssmar.data.layouts import get_layout
from ssmar.data.preprocess import clip_to_array, normalise
from ssmar.data.skeleton_format import load_skeleton_pickle, save_skeleton_pickle, validate_skeleton_data
from ssmar.errors import SsmarError


@pytest.fixture(scope="module")
def utd(shared_data: Path) -> dict:
    directory = shared_data / "utd_mhad_skeleton"
    if not directory.is_dir():
        pytest.skip(f"UTD-MHAD skeletons not found at {directory}")
    return import_utd_mhad(directory)


def test_utd_mhad_full_import(utd: dict) -> None:
    anns = utd["annotations"]
    assert len(anns) == 861
    assert utd["class_names"] == list(UTD_MHAD_CLASSES) and len(utd["class_names"]) == 27
    assert utd["layout"] == "kinect_v1_20"
    assert set(Counter(a["label"] for a in anns).values()) <= {31, 32}
    assert sorted({a["label"] for a in anns}) == list(range(27))
    by_name = {a["frame_dir"]: a for a in anns}
    assert "a01_s1_t1" in by_name and by_name["a01_s1_t1"]["label"] == 0
    assert {by_name[n]["subject"] for n in utd["split"]["train"]} == {1, 3, 5, 7}
    assert {by_name[n]["subject"] for n in utd["split"]["test"]} == {2, 4, 6, 8}
    assert len(utd["split"]["train"]) + len(utd["split"]["test"]) == 861
    assert not set(utd["split"]["train"]) & set(utd["split"]["test"])
    for ann in anns:
        kp = ann["keypoint"]
        assert kp.dtype == np.float32 and kp.shape[0] == 1 and kp.shape[2:] == (20, 3)
        assert 41 <= kp.shape[1] <= 125 and ann["total_frames"] == kp.shape[1]
        assert ann["keypoint_score"].shape == (1, kp.shape[1], 20)
    names = [a["frame_dir"] for a in anns]
    assert names == sorted(names)  # zero-padded action number: sorted by action, subject, trial
    validate_skeleton_data(utd)


def test_utd_mhad_cli_writes_pickle(shared_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "utd.pkl"
    assert main(["import", "utd-mhad", str(shared_data / "utd_mhad_skeleton"), "-o", str(out)]) == 0
    assert "861 clips, 27 classes" in capsys.readouterr().out
    assert len(load_skeleton_pickle(out)["annotations"]) == 861


def test_utd_mhad_errors(tmp_path: Path) -> None:
    with pytest.raises(SsmarError, match="not found"):
        import_utd_mhad(tmp_path / "nope")
    with pytest.raises(SsmarError, match="no UTD-MHAD files"):
        import_utd_mhad(tmp_path)
    (tmp_path / "a01_s1_t1_skeleton.mat").write_bytes(b"garbage")
    with pytest.raises(SsmarError, match="a01_s1_t1_skeleton.mat"):
        import_utd_mhad(tmp_path)


@pytest.fixture(scope="module")
def penn(shared_data: Path) -> dict:
    directory = shared_data / "penn_action" / "labels"
    if not directory.is_dir():
        pytest.skip(f"Penn Action labels not found at {directory}")
    return import_penn_action(directory)


def test_penn_action_full_import(penn: dict, shared_data: Path) -> None:
    anns = penn["annotations"]
    assert len(anns) == 2326 and penn["layout"] == "penn_action_13"
    assert penn["class_names"] == list(PENN_ACTION_CLASSES) and len(PENN_ACTION_CLASSES) == 15
    assert sorted({a["label"] for a in anns}) == list(range(15))  # the six alternate spellings are mapped
    counts = Counter(penn["class_names"][a["label"]] for a in anns)
    assert counts["squats"] == 231 and counts["bowling"] == 220 and counts["jump_rope"] == 82
    assert (len(penn["split"]["train"]), len(penn["split"]["test"])) == (1258, 1068)
    assert not set(penn["split"]["train"]) & set(penn["split"]["test"])
    by_name = {a["frame_dir"]: a for a in anns}
    first = by_name["0001"]  # baseball_pitch, back view, test split, 151 frames of 480 x 360
    assert first["label"] == 0 and first["view"] == "back" and "0001" in penn["split"]["test"]
    assert first["total_frames"] == 151 and first["img_shape"] == (360, 480)
    for ann in anns:
        kp, score = ann["keypoint"], ann["keypoint_score"]
        assert kp.dtype == np.float32 and kp.shape == (1, ann["total_frames"], 13, 2)
        assert score.shape == kp.shape[:3] and set(np.unique(score)) <= {0.0, 1.0}
        assert not kp[score == 0].any()  # invisible joints are missing joints: zero, score 0
        assert (kp[score == 1] >= 0).all()
    invisible = np.mean(np.concatenate([a["keypoint_score"].ravel() for a in anns]) == 0)
    assert 0.2 < invisible < 0.25
    validate_skeleton_data(penn)


def test_penn_action_joint_sides_are_the_persons(penn: dict) -> None:
    """The layout's "right_shoulder" (the dataset README's "left_shoulder") is on the image's left when
    the person faces the camera and on its right when they turn their back: the person's right."""
    right, left = (get_layout("penn_action_13").joint_names.index(n) for n in ("right_shoulder", "left_shoulder"))
    on_image_left = {"front": [], "back": []}
    for ann in penn["annotations"]:
        kp, seen = ann["keypoint"][0], ann["keypoint_score"][0]
        both = (seen[:, right] > 0) & (seen[:, left] > 0)
        if ann["view"] in on_image_left and both.any():
            on_image_left[ann["view"]].append(np.mean(kp[both, right, 0] < kp[both, left, 0]) > 0.5)
    assert np.mean(on_image_left["front"]) > 0.9 and len(on_image_left["front"]) > 500
    assert np.mean(on_image_left["back"]) < 0.3 and len(on_image_left["back"]) > 500


def test_penn_action_clips_normalise_to_body_size(penn: dict) -> None:
    """Crops to the upper or lower body (no shoulder-hip pair visible in any frame) still come out near unit size."""
    layout = get_layout("penn_action_13")
    spans = [np.abs(clip_to_array(ann, layout, frames=32, max_persons=1)).max() for ann in penn["annotations"]]
    assert max(spans) < 20 and np.median(spans) < 3


def test_penn_action_validation_carve_out_is_stratified(penn: dict, tmp_path: Path) -> None:
    """No subject ids: data.val_fraction holds out a stratified 20 % of each class of the train split, and
    10 % labels are then drawn per class from the rest."""
    path = tmp_path / "penn.pkl"
    save_skeleton_pickle(penn, path)
    cfg = load_config(None, [f"data.file={path}", "data.val_fraction=0.2", "data.eval_on=val", "data.frames=8"])
    data = prepare_skeleton_data(cfg, tmp_path, seed=0, write_split=False)
    train_labels = np.array([a["label"] for a in penn["annotations"] if a["frame_dir"] in set(penn["split"]["train"])])
    per_class = np.bincount(train_labels, minlength=15)
    held = np.bincount(data.evaluation.labels.numpy(), minlength=15)
    assert len(data.evaluation.labels) + len(data.train.labels) == 1258
    assert (np.abs(held - 0.2 * per_class) <= 1).all() and held.min() > 0
    assert not set(data.evaluation.names) & (set(data.train.names) | set(penn["split"]["test"]))
    labelled = np.bincount(data.train.labels[data.labelled].numpy(), minlength=15)
    assert (np.abs(labelled - 0.1 * (per_class - held)) <= 1).all() and labelled.min() >= 1


def test_normalise_uses_the_mirror_scale_pair_then_the_spread() -> None:
    layout = get_layout("penn_action_13")  # scale pair right shoulder (1) - right hip (7); mirror 2 - 8
    keypoint = np.zeros((1, 2, 13, 2), np.float32)
    keypoint[0, :, 2] = (0, 0)
    keypoint[0, :, 8] = (0, 50)
    keypoint[0, :, 7] = (10, 50)
    score = np.zeros((1, 2, 13), np.float32)
    score[0, :, [2, 7, 8]] = 1
    assert np.allclose(normalise(keypoint, score, layout)[0, 0, 2], (-5 / 50, -50 / 50))
    score[0, :, 2] = 0  # nothing but the hips: twice their spread (5 from their mean) is the size
    assert np.allclose(normalise(keypoint, score, layout)[0, 0, 7], (5 / 10, 0))


def test_penn_action_cli_and_errors(shared_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "penn.pkl"
    assert main(["import", "penn-action", str(shared_data / "penn_action" / "labels"), "-o", str(out)]) == 0
    assert "2326 clips, 15 classes, splits train=1258, test=1068" in capsys.readouterr().out
    assert load_skeleton_pickle(out)["layout"] == "penn_action_13"
    with pytest.raises(SsmarError, match="not found"):
        import_penn_action(tmp_path / "nope")
    with pytest.raises(SsmarError, match="no .mat files"):
        import_penn_action(tmp_path)


def _clip(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.normal(size=shape).astype(np.float32)


@pytest.fixture()
def npy_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "c0.npy", _clip(rng, (10, 5, 3)))           # rank 3 [T, V, C]
    np.save(tmp_path / "sub" / "c1.npy", _clip(rng, (2, 12, 5, 3)))  # rank 4 [M, T, V, C]
    np.save(tmp_path / "c2.npy", _clip(rng, (8, 5, 2)).astype(np.float64))
    (tmp_path / "list.txt").write_text("c0.npy 0\nsub/c1 2\n\nc2.npy 1\n")
    return tmp_path


def test_npy_folder_round_trip(npy_folder: Path, tmp_path: Path) -> None:
    (npy_folder / "names.txt").write_text("0\tsit\r\n1\tstand up\r\n2\twave\r\n")
    (npy_folder / "train.txt").write_text("c0.npy 0\nsub/c1.npy\n")
    (npy_folder / "test.txt").write_text("c2\n")
    data = import_npy_folder(npy_folder, npy_folder / "list.txt", npy_folder / "names.txt", layout="coco_17",
                             split_files={"train": npy_folder / "train.txt", "test": npy_folder / "test.txt"})
    assert data["class_names"] == ["sit", "stand up", "wave"] and data["layout"] == "coco_17"
    assert data["split"] == {"train": ["c0", "sub/c1"], "test": ["c2"]}
    anns = {a["frame_dir"]: a for a in data["annotations"]}
    assert anns["c0"]["keypoint"].shape == (1, 10, 5, 3) and anns["sub/c1"]["keypoint"].shape == (2, 12, 5, 3)
    assert anns["c2"]["keypoint"].dtype == np.float32 and anns["c2"]["total_frames"] == 8
    np.testing.assert_array_equal(anns["c0"]["keypoint"][0], np.load(npy_folder / "c0.npy"))
    assert [anns[n]["label"] for n in ("c0", "sub/c1", "c2")] == [0, 2, 1]

    out = tmp_path / "out.pkl"
    argv = ["import", "npy", str(npy_folder), "--list", str(npy_folder / "list.txt"),
            "--class-names", str(npy_folder / "names.txt"), "--split", f"train={npy_folder / 'train.txt'}",
            "--split", f"test={npy_folder / 'test.txt'}", "-o", str(out)]
    assert main(argv) == 0
    loaded = load_skeleton_pickle(out)
    assert loaded["split"] == data["split"]
    np.testing.assert_array_equal(loaded["annotations"][1]["keypoint"], anns["sub/c1"]["keypoint"])


def test_npy_folder_defaults(npy_folder: Path) -> None:
    data = import_npy_folder(npy_folder, npy_folder / "list.txt")
    assert data["split"] == {"train": ["c0", "sub/c1", "c2"]}
    assert "class_names" not in data and "layout" not in data


def test_zero_joints_get_zero_score(npy_folder: Path) -> None:
    clip = np.ones((4, 5, 3), np.float32)
    clip[1, 2] = 0
    np.save(npy_folder / "c0.npy", clip)
    score = import_npy_folder(npy_folder, npy_folder / "list.txt")["annotations"][0]["keypoint_score"]
    assert score[0, 1, 2] == 0 and score.sum() == 4 * 5 - 1


def test_class_names_plain(tmp_path: Path) -> None:
    (tmp_path / "n.txt").write_text("a b\n\nc\n")
    assert read_class_names(tmp_path / "n.txt") == ["a b", "c"]


@pytest.mark.parametrize(("list_text", "match"), [
    ("c0.npy 0\nmissing.npy 1\n", r"clip missing listed in .*list.txt line 2 not found in"),
    ("c0.npy 0\nc2.npy two\n", r"line 2: expected '<file> <label>'"),
    ("c0.npy zero\n", r"line 1: expected '<file> <label>'"),
    ("c0.npy -2\n", r"line 1: label -2 out of range"),
    ("c0.npy 0\nc0 1\n", r"line 2: clip c0 already listed on line 1"),
    ("# only a comment\n", r"lists no clips"),
])
def test_npy_list_errors(npy_folder: Path, list_text: str, match: str) -> None:
    (npy_folder / "list.txt").write_text(list_text)
    with pytest.raises(SsmarError, match=match):
        import_npy_folder(npy_folder, npy_folder / "list.txt")


@pytest.mark.parametrize(("array", "match"), [
    (np.zeros((5, 3), np.float32), r"rank 2"),
    (np.zeros((1, 1, 4, 5, 3), np.float32), r"rank 5"),
    (np.array(["a", "b"]), r"expected a numeric array"),
    (np.full((4, 5, 3), np.nan, np.float32), r"clip 'c0'.*NaN"),
    (np.zeros((4, 5, 7), np.float32), r"clip 'c0'.*2 or 3 coordinates"),
])
def test_npy_bad_arrays(npy_folder: Path, array: np.ndarray, match: str) -> None:
    np.save(npy_folder / "c0.npy", array)
    with pytest.raises(SsmarError, match=match):
        import_npy_folder(npy_folder, npy_folder / "list.txt")


def test_npy_other_errors(npy_folder: Path) -> None:
    listing = npy_folder / "list.txt"
    with pytest.raises(SsmarError, match="list file not found"):
        import_npy_folder(npy_folder, npy_folder / "nope.txt")
    with pytest.raises(SsmarError, match="clip directory not found"):
        import_npy_folder(npy_folder / "nope", listing)
    (npy_folder / "c0.npy").write_bytes(b"not numpy")
    with pytest.raises(SsmarError, match="c0.npy: not a readable .npy"):
        import_npy_folder(npy_folder, listing)


def test_npy_split_and_class_errors(npy_folder: Path) -> None:
    listing = npy_folder / "list.txt"
    (npy_folder / "s.txt").write_text("c0\nghost\n")
    with pytest.raises(SsmarError, match="s.txt line 2: clip ghost is not in"):
        import_npy_folder(npy_folder, listing, split_files={"train": npy_folder / "s.txt"})
    (npy_folder / "s.txt").write_text("c2 0\n")
    with pytest.raises(SsmarError, match="line 1: clip c2 has label 0 here but 1"):
        import_npy_folder(npy_folder, listing, split_files={"train": npy_folder / "s.txt"})
    (npy_folder / "n.txt").write_text("a\nb\n")
    with pytest.raises(SsmarError, match=r"list.txt line 2: label 2 out of range \(expected 0..1, or -1 for a clip not labelled yet\)"):
        import_npy_folder(npy_folder, listing, class_names_file=npy_folder / "n.txt")
    (npy_folder / "n.txt").write_text("0\ta\nb\n")
    with pytest.raises(SsmarError, match="line 2: expected 'id<TAB>name'"):
        read_class_names(npy_folder / "n.txt")
    (npy_folder / "n.txt").write_text("0\ta\n2\tb\n")
    with pytest.raises(SsmarError, match="without gaps"):
        read_class_names(npy_folder / "n.txt")


def test_cli_bad_split_argument(npy_folder: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["import", "npy", str(npy_folder), "--list", "l", "--split", "nolist", "-o", "x.pkl"])
    assert "expected NAME=LIST" in capsys.readouterr().err
