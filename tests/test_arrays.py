"""Array format (CTR-GCN / MS-G3D): import, export, and the whole path for the new layouts."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_RUN, generated
from ssmar.cli.main import main
from ssmar.data.arrays import export_arrays, import_arrays
from ssmar.data.layouts import get_layout
from ssmar.data.skeleton_format import load_skeleton_pickle, save_skeleton_pickle


@pytest.mark.parametrize("layout, coordinates, channels", [("ntu_rgbd_25", 3, None), ("ma52_openpose_28", 2, "xy_score")])
def test_arrays_round_trip_exactly(tmp_path: Path, layout: str, coordinates: int, channels) -> None:
    data = generated(layout, coordinates)
    written = export_arrays(data, tmp_path, channels=channels, frames=24)
    assert [p.name for p in written] == ["train_data.npy", "train_label.pkl", "test_data.npy", "test_label.pkl"]
    array = np.load(tmp_path / "train_data.npy", allow_pickle=False)
    assert array.shape == (9, coordinates + (channels is not None), 24, get_layout(layout).num_joints, 2)
    names, labels = pickle.loads((tmp_path / "train_label.pkl").read_bytes())
    assert names == data["split"]["train"] and labels == [0, 0, 0, 1, 1, 1, 2, 2, 2]

    back = import_arrays([(s, tmp_path / f"{s}_data.npy", tmp_path / f"{s}_label.pkl") for s in ("train", "test")],
                         channels=channels)
    assert back["layout"] == layout and back["split"] == data["split"]  # layout inferred from the joint count
    after_by_name = {ann["frame_dir"]: ann for ann in back["annotations"]}
    assert len(after_by_name) == len(data["annotations"])
    for before in data["annotations"]:
        after = after_by_name[before["frame_dir"]]
        assert after["label"] == before["label"]
        np.testing.assert_array_equal(after["keypoint"], before["keypoint"])  # padding and empty persons gone
        if channels:
            np.testing.assert_array_equal(after["keypoint_score"], before["keypoint_score"])
        else:  # no score in the arrays: present joints score 1, missing 0
            np.testing.assert_array_equal(after["keypoint_score"], before["keypoint"].any(axis=-1))


@pytest.mark.parametrize("layout, coordinates, channels", [("ntu_rgbd_25", 3, "xyz"), ("ma52_openpose_28", 2, "xy_score")])
def test_import_train_eval_predict(tmp_path: Path, layout: str, coordinates: int, channels: str,
                                   capsys: pytest.CaptureFixture) -> None:
    """The whole path for each new layout: arrays -> import -> train -> eval -> predict."""
    export_arrays(generated(layout, coordinates), tmp_path / "arrays", channels=channels)
    pkl, run = tmp_path / "data.pkl", tmp_path / "run"
    files = [str(tmp_path / "arrays" / f"{s}_{kind}") for s in ("train", "test") for kind in ("data.npy", "label.pkl")]
    assert main(["import", "arrays", *files, "--layout", layout, "--channels", channels, "-o", str(pkl)]) == 0
    assert "12 clips, 3 classes, splits train=9, test=3" in capsys.readouterr().out
    assert load_skeleton_pickle(pkl)["layout"] == layout
    assert main(["train", f"data.file={pkl}", "--work-dir", str(run), *TINY_RUN, f"data.channels={channels}",
                 "data.labelled_ratio=0.5", "train.epochs=2", "train.steps_per_epoch=2", "algorithm.name=fixmatch",
                 "augment.weak.flip_pairs=" + json.dumps([list(p) for p in get_layout(layout).flip_pairs])]) == 0
    assert main(["eval", "--checkpoint", str(run / "latest.pt"), "--out", str(tmp_path / "ev")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["split"] == "test" and 0 <= metrics["top1"] <= 100
    capsys.readouterr()
    test_clip = load_skeleton_pickle(pkl)["split"]["test"][0]
    assert main(["predict", "--checkpoint", str(run / "latest.pt"), "--pose", str(pkl), f"{test_clip}.mp4",
                 "--json", "--top", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result[0]["clip"] == test_clip and len(result[0]["top"]) == 3
    assert abs(sum(entry["probability"] for entry in result[0]["top"]) - 1.0) < 1e-4


def test_export_cli_writes_every_split(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    save_skeleton_pickle(generated("ntu_rgbd_25", 3), tmp_path / "d.pkl")
    assert main(["export", "arrays", str(tmp_path / "d.pkl"), "-o", str(tmp_path / "out"), "--frames", "30"]) == 0
    assert "wrote 2 split(s)" in capsys.readouterr().out
    assert np.load(tmp_path / "out" / "test_data.npy").shape == (3, 3, 30, 25, 2)


def test_import_names_the_file_for_layouts_it_cannot_infer_and_mixed_joint_counts(tmp_path: Path) -> None:
    from ssmar.errors import SsmarError

    for name, joints in (("a", 26), ("b", 25)):
        np.save(tmp_path / f"{name}_data.npy", np.ones((1, 3, 4, joints, 1), np.float32))
        (tmp_path / f"{name}_label.pkl").write_bytes(pickle.dumps(([f"{name}0"], [0])))
    pair = {name: (name, tmp_path / f"{name}_data.npy", tmp_path / f"{name}_label.pkl") for name in "ab"}
    with pytest.raises(SsmarError, match=r"a_data.npy: cannot infer the layout of 26-joint arrays; pass --layout"):
        import_arrays([pair["a"]])
    with pytest.raises(SsmarError, match=r"different joint counts .*a_data.npy: 26.*b_data.npy: 25"):
        import_arrays([pair["a"], pair["b"]], layout=None)
    (tmp_path / "bad_label.pkl").write_bytes(pickle.dumps({"names": ["a0"]}))
    with pytest.raises(SsmarError, match=r"bad_label.pkl: expected a pickle of \(names, labels\)"):
        import_arrays([("a", tmp_path / "a_data.npy", tmp_path / "bad_label.pkl")])


def test_label_files_go_through_the_restricted_unpickler(tmp_path: Path) -> None:
    from fractions import Fraction

    from ssmar.errors import SsmarError

    np.save(tmp_path / "a_data.npy", np.ones((1, 3, 4, 25, 1), np.float32))
    (tmp_path / "a_label.pkl").write_bytes(pickle.dumps((["a0"], [Fraction(1)])))
    with pytest.raises(SsmarError, match=r"a_label.pkl: refused to load: the pickle asks for the Python global "
                                         r"'fractions.Fraction', which a label file never holds"):
        import_arrays([("a", tmp_path / "a_data.npy", tmp_path / "a_label.pkl")])
