"""Shared fixtures: the real-data folder, UTD-MHAD as a skeleton pickle, tiny synthetic data."""

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from ssmar.config import load_config
from ssmar.data.importers import import_utd_mhad
from ssmar.data.layouts import get_layout
from ssmar.data.skeleton_format import save_skeleton_pickle
from ssmar.data.synth import generate_synthetic

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

# A model and budget small enough for a unit test on a shared 2-core CPU.
TINY_RUN = ["data.frames=16", "model.channels=[8,16]", "model.strides=[1,2]", "train.batch_size=4",
            "threads=1", "train.progress=false"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder ``../shared/data`` next to the repository; skip tests when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (a fresh clone has none; CI provides it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def utd_file(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All 861 UTD-MHAD clips as a canonical pickle (cross-subject split)."""
    directory = shared_data / "utd_mhad_skeleton"
    if not directory.is_dir():
        pytest.skip(f"UTD-MHAD skeletons not found at {directory}")
    path = tmp_path_factory.mktemp("utd") / "utd.pkl"
    save_skeleton_pickle(import_utd_mhad(directory), path)
    return path


@pytest.fixture(scope="session")
def synth_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic set: 3 subjects (2 train, 1 test), 2 clips per class each."""
    path = tmp_path_factory.mktemp("synth") / "synth.pkl"
    save_skeleton_pickle(generate_synthetic(num_subjects=3, clips_per_class=2, test_subjects=1), path)
    return path


def load_benchmark(name: str) -> ModuleType:
    """A script of benchmarks/ (not a package) as a module, so that tests call its functions."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_config(data_file: Path, work_dir: Path, *overrides: str) -> dict:
    """A config for a tiny run on ``data_file``; ``overrides`` win over :data:`TINY_RUN`."""
    return load_config(None, [f"data.file={data_file}", f"work_dir={work_dir}", *TINY_RUN, *overrides])


def generated(layout_name: str, coordinates: int, clips_per_class: int = 4, classes: int = 3) -> dict:
    """Clips in ``layout_name`` where class k swings body part k (so the classes are learnable); every
    fourth clip has a second person, clips vary in length and some joints are missing (score 0)."""
    layout = get_layout(layout_name)
    rng = np.random.default_rng(1)
    rest = rng.normal(0, 0.3, (layout.num_joints, coordinates)).astype(np.float32)
    moving = [layout.part_groups()[k] for k in range(classes)]
    annotations, split = [], {"train": [], "test": []}
    for k in range(classes):
        for i in range(clips_per_class):
            frames = int(rng.integers(12, 20))
            phase = np.sin(np.linspace(0, 4 * np.pi, frames))[:, None]
            keypoint = np.repeat(rest[None, None], frames, axis=1) + rng.normal(0, 0.01, (1, frames, *rest.shape))
            keypoint[0, :, moving[k], 0] += (0.5 * phase).T
            score = rng.uniform(0.5, 1.0, keypoint.shape[:3])
            keypoint[0, 3, 0], score[0, 3, 0] = 0.0, 0.0
            if i % 4 == 3:
                keypoint, score = np.concatenate([keypoint, keypoint + 1.0]), np.concatenate([score, score])
            name = f"{layout_name}_c{k}_{i}"
            annotations.append({"frame_dir": name, "label": k, "keypoint": keypoint.astype(np.float32),
                                "keypoint_score": score.astype(np.float32), "total_frames": frames})
            split["train" if i < clips_per_class - 1 else "test"].append(name)
    return {"split": split, "annotations": annotations, "layout": layout_name,
            "class_names": [f"class_{k}" for k in range(classes)]}
