"""Loading someone else's file runs no code: skeleton pickles go through a restricted unpickler,
checkpoints through PyTorch's ``weights_only`` loader; real files of every kind still load."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_RUN
from ssmar.cli.main import main
from ssmar.data.skeleton_format import load_skeleton_pickle
from ssmar.engine.checkpoint import load_checkpoint
from ssmar.runtime.io import UnsafePickleError, load_plain_pickle


class MarkerPayload:
    """Unpickling this calls ``os.system``, which creates ``marker``: the attack of issue 17."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class NumPy2Pickler(pickle._Pickler):
    """Writes NumPy's constructors under NumPy 2's module names (``numpy._core``), as NumPy 2.x does,
    so that this NumPy 1.x environment can produce the files a NumPy 2.x user would send."""

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", "") or ""
        if not module.startswith("numpy.core"):
            return super().save_global(obj, name)
        module, name = "numpy._core" + module[len("numpy.core"):], name or obj.__qualname__
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)


def pyskl_style_clips() -> dict:
    """Content as PYSKL/MMAction2 write it: float16 keypoints, tuples, NumPy scalar labels."""
    clip = {"frame_dir": "S001C001P001R001A001", "label": np.int64(1), "img_shape": (1080, 1920),
            "original_shape": (1080, 1920), "total_frames": 6,
            "keypoint": np.random.default_rng(0).normal(size=(1, 6, 17, 2)).astype(np.float16),
            "keypoint_score": np.ones((1, 6, 17), np.float16)}
    other = {**clip, "frame_dir": "S001C001P001R001A002", "label": 0}
    return {"split": {"xsub_train": [clip["frame_dir"]], "xsub_val": [other["frame_dir"]]},
            "annotations": [clip, other]}


def write(data: object, path: Path, protocol: int, pickler: type = pickle.Pickler) -> Path:
    with open(path, "wb") as handle:
        pickler(handle, protocol=protocol).dump(data)
    return path


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("pickler", [pickle.Pickler, NumPy2Pickler], ids=["numpy1", "numpy2"])
def test_skeleton_pickles_of_every_writer_load_unchanged(protocol: int, pickler: type, tmp_path: Path) -> None:
    data = pyskl_style_clips()
    loaded = load_skeleton_pickle(write(data, tmp_path / "clips.pkl", protocol, pickler))
    assert loaded["split"] == data["split"]
    for got, want in zip(loaded["annotations"], data["annotations"]):
        assert got["img_shape"] == want["img_shape"] and got["label"] == want["label"]
        assert got["keypoint"].dtype == np.float16
        np.testing.assert_array_equal(got["keypoint"], want["keypoint"])


def test_numpy2_pickler_writes_numpy2_names(tmp_path: Path) -> None:
    """The simulated NumPy 2 files really name ``numpy._core`` (else the test above proves nothing)."""
    raw = write({"a": np.zeros(2, np.float32)}, tmp_path / "a.pkl", 4, NumPy2Pickler).read_bytes()
    assert b"numpy._core.multiarray" in raw and b"numpy.core" not in raw


def test_files_ssmar_writes_load_as_plain_pickle_reads_them(synth_file: Path) -> None:
    data, reference = load_skeleton_pickle(synth_file), pickle.loads(synth_file.read_bytes())  # ours: trusted
    assert data["class_names"] == reference["class_names"] and data["split"] == reference["split"]
    for got, want in zip(data["annotations"], reference["annotations"], strict=True):
        np.testing.assert_array_equal(got["keypoint"], want["keypoint"])


def test_utd_import_loads_through_the_restricted_unpickler(utd_file: Path) -> None:
    assert len(load_skeleton_pickle(utd_file)["annotations"]) == 861


def test_malicious_skeleton_pickle_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"annotations": [MarkerPayload(marker)]}))

    code = main(["train", f"data.file={evil}", "--work-dir", str(tmp_path / "run"), *TINY_RUN])

    assert not marker.exists(), "the payload ran"
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {evil}: refused to load: the pickle asks for the Python global 'posix.system', which a skeleton "
        "file never holds (plain lists, dicts, numbers, strings and NumPy arrays only) and which could run code; "
        "re-create the file from its source (ssmar import, ssmar extract-pose) or re-save it with plain "
        "containers"]
    with pytest.raises(UnsafePickleError):
        load_plain_pickle(evil)
    assert not marker.exists()


@pytest.fixture(scope="module")
def tiny_run(synth_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work_dir = tmp_path_factory.mktemp("run")
    assert main(["train", f"data.file={synth_file}", "--work-dir", str(work_dir), *TINY_RUN,
                 "train.epochs=2", "train.steps_per_epoch=1", "train.eval_every=1"]) == 0
    return work_dir


def test_checkpoints_hold_tensors_and_plain_containers_only(tiny_run: Path) -> None:
    state = torch.load(tiny_run / "latest.pt", map_location="cpu", weights_only=True)  # no extra globals
    assert state["epoch"] == 2 and isinstance(state["rng"]["numpy"][1], torch.Tensor)


def test_malicious_checkpoint_runs_nothing(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    state = torch.load(tiny_run / "latest.pt", weights_only=True)
    torch.save({**state, "history": MarkerPayload(marker)}, evil)

    code = main(["eval", "--checkpoint", str(evil), "--out", str(tmp_path / "ev")])

    assert not marker.exists(), "the payload ran"
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {evil}: refused to load: the checkpoint asks for the Python global 'posix.system', which could "
        "run code (an ssmar checkpoint holds tensors and plain containers only); if you trust its source, "
        f"convert it once: ssmar convert-checkpoint --trust {evil} NEW.pt"]
    assert not (tmp_path / "ev").exists()


def test_checkpoints_written_before_the_rule_still_load_and_resume(tiny_run: Path, synth_file: Path,
                                                                   tmp_path: Path) -> None:
    """Older checkpoints held NumPy's random state as an array: admitted (array constructors only)."""
    work_dir = tmp_path / "run"
    shutil.copytree(tiny_run, work_dir)
    state = torch.load(work_dir / "latest.pt", weights_only=True)
    generator, keys, *position = state["rng"]["numpy"]
    state["rng"]["numpy"] = (generator, keys.numpy(), *position)
    torch.save(state, work_dir / "latest.pt")
    assert isinstance(load_checkpoint(work_dir / "latest.pt")["rng"]["numpy"][1], np.ndarray)

    assert main(["train", f"data.file={synth_file}", "--work-dir", str(work_dir), *TINY_RUN, "train.epochs=3",
                 "train.steps_per_epoch=1", "train.eval_every=1", "--resume"]) == 0
    assert load_checkpoint(work_dir / "latest.pt")["epoch"] == 3


def test_convert_checkpoint_needs_trust_and_makes_a_safe_file(tiny_run: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    legacy, converted = tmp_path / "legacy.pt", tmp_path / "converted.pt"
    state = torch.load(tiny_run / "latest.pt", weights_only=True)
    state["config"]["work_dir"] = Path(state["config"]["work_dir"])  # a global weights_only refuses
    torch.save(state, legacy)
    with pytest.raises(Exception, match="pathlib.PosixPath"):
        load_checkpoint(legacy)

    assert main(["convert-checkpoint", str(legacy), str(converted)]) == 2
    assert "add --trust" in capsys.readouterr().err and not converted.exists()
    assert main(["convert-checkpoint", "--trust", str(legacy), str(converted)]) == 0
    restored = torch.load(converted, weights_only=True)
    assert restored["config"]["work_dir"] == str(state["config"]["work_dir"])
    torch.testing.assert_close(restored["model"], state["model"])
