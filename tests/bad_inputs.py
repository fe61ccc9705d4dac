"""The bad-input catalogue (docs/bad_inputs.md): one row per bad input, shared by the tests.

Each row is a real command line (``ssmar ...`` without the program name) run in a
scratch folder ``{tmp}`` that holds a good data file (``synth.pkl``) and a finished
tiny run (``prior/``: latest.pt, split.json, metrics.json, ...). ``setup``
writes the bad input there. ``message`` is the exact error line the CLI prints after
``error: ``, with ``{tmp}`` for the scratch folder (``<tmp>`` in the docs).
"""

from __future__ import annotations

import errno
import os
import pickle
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from conftest import TINY_RUN

# Work dir prior/ was trained with these (see test_bad_inputs.prior_run); rows reuse them so that
# only the bad input differs.
PRIOR_RUN = [*TINY_RUN, "algorithm.name=supervised", "data.labelled_ratio=0.5", "train.epochs=1",
             "train.steps_per_epoch=1"]


def train(*options: str, data: str = "{tmp}/synth.pkl", work_dir: str = "{tmp}/run") -> tuple[str, ...]:
    """``ssmar train`` with the prior run's settings plus ``options``."""
    return ("train", f"data.file={data}", "--work-dir", work_dir, *PRIOR_RUN, *options)


def clip(label: int = 0, frames: int = 5) -> dict[str, Any]:
    """One 20-joint clip named c0."""
    return {"frame_dir": "c0", "label": label, "total_frames": frames,
            "keypoint": np.zeros((1, frames, 20, 3), np.float32)}


@dataclass(frozen=True)
class Scratch:
    """Where a row runs: the scratch folder and pytest's monkeypatch (for simulated OS failures)."""

    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    def write_pickle(self, data: Any) -> None:
        (self.tmp / "bad.pkl").write_bytes(pickle.dumps(data))

    def synth(self) -> dict[str, Any]:
        return pickle.loads((self.tmp / "synth.pkl").read_bytes())


@dataclass(frozen=True)
class BadInput:
    id: str
    what: str  # the bad input, as the docs name it
    args: tuple[str, ...]  # argv after ``ssmar``; ``{tmp}`` is the scratch folder
    message: str  # the printed line after ``error: ``
    setup: Callable[[Scratch], None] = lambda scratch: None
    exit_code: int = 2

    def argv(self, tmp: Path) -> list[str]:
        return [arg.replace("{tmp}", str(tmp)) for arg in self.args]

    def expected(self, tmp: Path) -> str:
        return "error: " + self.message.replace("{tmp}", str(tmp))


def _data(data: Any) -> Callable[[Scratch], None]:
    return lambda scratch: scratch.write_pickle(data)


def _bytes(name: str, content: bytes) -> Callable[[Scratch], None]:
    return lambda scratch: (scratch.tmp / name).write_bytes(content)


def _truncated(scratch: Scratch) -> None:
    (scratch.tmp / "bad.pkl").write_bytes((scratch.tmp / "synth.pkl").read_bytes()[:1000])


def _class_without_labels(scratch: Scratch) -> None:
    """The synthetic data minus every training clip of class 0 (class_names still lists it)."""
    data = scratch.synth()
    gone = {a["frame_dir"] for a in data["annotations"] if a["label"] == 0 and a["frame_dir"] in data["split"]["train"]}
    data["annotations"] = [a for a in data["annotations"] if a["frame_dir"] not in gone]
    data["split"]["train"] = [name for name in data["split"]["train"] if name not in gone]
    scratch.write_pickle(data)


def _joint_mismatch(scratch: Scratch) -> None:
    data = scratch.synth()
    data["annotations"][1]["keypoint"] = data["annotations"][1]["keypoint"][:, :, :20]
    data["annotations"][1]["keypoint_score"] = data["annotations"][1]["keypoint_score"][:, :, :20]
    scratch.write_pickle(data)


def _npy_list(scratch: Scratch) -> None:
    (scratch.tmp / "clips").mkdir()
    np.save(scratch.tmp / "clips" / "a.npy", np.zeros((5, 20, 3), np.float32))
    (scratch.tmp / "list.txt").write_text("a.npy 0\nb.npy 1\n")
    (scratch.tmp / "out.pkl").write_bytes(b"a previous output that must survive")


def _penn_labels(**variables: Any) -> Callable[[Scratch], None]:
    """A Penn Action labels/ folder with one file 0001.mat holding ``variables``, and an earlier out.pkl."""
    def setup(scratch: Scratch) -> None:
        from scipy.io import savemat

        (scratch.tmp / "labels").mkdir()
        savemat(scratch.tmp / "labels" / "0001.mat", variables)
        (scratch.tmp / "out.pkl").write_bytes(b"a previous output that must survive")
    return setup


PENN_CLIP = {"x": np.ones((3, 13)), "y": np.ones((3, 13)), "visibility": np.ones((3, 13), np.uint8),
             "action": "bowl", "train": np.array([[1]]), "dimensions": np.array([[360, 480, 3]])}


def _arrays(shape: tuple[int, ...], names: list[str] | None = None, nan_clip: int | None = None
            ) -> Callable[[Scratch], None]:
    """An array-format pair train_data.npy / train_label.pkl (clips a, b, ...) and an earlier out.pkl."""
    def setup(scratch: Scratch) -> None:
        array = np.ones(shape, np.float32)
        if nan_clip is not None:
            array[nan_clip, :, 2] = np.nan
        np.save(scratch.tmp / "train_data.npy", array)
        clip_names = names if names is not None else [chr(ord("a") + i) for i in range(shape[0])]
        (scratch.tmp / "train_label.pkl").write_bytes(pickle.dumps((clip_names, [0] * len(clip_names))))
        (scratch.tmp / "out.pkl").write_bytes(b"a previous output that must survive")
    return setup


def import_arrays(*options: str) -> tuple[str, ...]:
    return ("import", "arrays", "{tmp}/train_data.npy", "{tmp}/train_label.pkl", "-o", "{tmp}/out.pkl", *options)


class _FullDisk:
    """A file whose every write fails as on a full disk."""

    def __init__(self, handle: Any):
        self._handle = handle

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> "_FullDisk":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.close()


def _disk_full(scratch: Scratch) -> None:
    """Every file ``ssmar.runtime.io.atomic_open`` opens fails on its first write with ENOSPC."""
    import ssmar.runtime.io

    full = types.SimpleNamespace(**{**vars(os), "fdopen": lambda *a, **k: _FullDisk(os.fdopen(*a, **k))})
    scratch.monkeypatch.setattr(ssmar.runtime.io, "os", full)


def _broken_video(scratch: Scratch) -> None:
    for module in ("mediapipe", "av"):  # the pose extras (pip install 'ssmar[pose]')
        pytest.importorskip(module)
    (scratch.tmp / "broken.mp4").write_bytes(b"\x00\x01 not a video " * 64)


def _foreign_checkpoint(scratch: Scratch) -> None:
    import torch

    torch.save({"state_dict": {"weight": torch.zeros(2)}}, scratch.tmp / "weights.pt")


def _checkpoint_without_body_map(scratch: Scratch) -> None:
    """The prior run's checkpoint as if trained on data without body-level classes (e.g. UTD-MHAD)."""
    from ssmar.engine.checkpoint import load_checkpoint
    from ssmar.runtime.io import save_torch

    state = load_checkpoint(scratch.tmp / "prior" / "latest.pt")
    state["meta"]["body_map"] = state["meta"]["body_names"] = None
    save_torch(state, scratch.tmp / "nobody.pt")


def _video_checkpoint(scratch: Scratch) -> None:
    """The prior run's checkpoint as if it came from an RGB (data.type=video) run: no skeleton layout."""
    from ssmar.engine.checkpoint import load_checkpoint
    from ssmar.runtime.io import save_torch

    state = load_checkpoint(scratch.tmp / "prior" / "latest.pt")
    state["meta"]["layout"] = None
    state["config"]["data"]["type"] = "video"
    save_torch(state, scratch.tmp / "rgb.pt")


def timeline(source: str, *options: str, checkpoint: str = "{tmp}/prior/latest.pt") -> tuple[str, ...]:
    """``ssmar timeline`` of ``source`` with the window and still-body gate given (nothing read from the
    training data) and no progress bar."""
    return ("timeline", source, "--checkpoint", checkpoint, "-o", "{tmp}/tl", "--min-motion", "0", "--no-progress",
            *options)


class MarkerPayload:
    """Unpickling this calls ``os.system``, which creates ``marker`` (tests/test_safe_loading.py asserts
    that it never appears)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {self.marker}",)


def _malicious_pickle(scratch: Scratch) -> None:
    scratch.write_pickle({"annotations": [MarkerPayload(str(scratch.tmp / "pwned"))]})


def _malicious_checkpoint(scratch: Scratch) -> None:
    import torch

    torch.save({"format": "ssmar-checkpoint-v1", "history": MarkerPayload(str(scratch.tmp / "pwned"))},
               scratch.tmp / "evil.pt")


def _file_as_parent(scratch: Scratch) -> None:
    (scratch.tmp / "afile").write_text("a file, not a folder")


def _unlabel(scratch: Scratch, split: str, label: int | None) -> None:
    """bad.pkl: the synthetic data with the clips of ``split`` (of class ``label``; None: only its first
    clip) marked as not labelled yet (-1)."""
    data = scratch.synth()
    members = data["split"][split] if label is not None else data["split"][split][:1]
    for ann in data["annotations"]:
        if ann["frame_dir"] in members and (label is None or ann["label"] == label):
            ann["label"] = -1
    scratch.write_pickle(data)


def _labels_csv(*rows: str) -> Callable[[Scratch], None]:
    return _bytes("labels.csv", ("clip,label\n" + "".join(f"{row}\n" for row in rows)).encode())


def _bad_yaml(scratch: Scratch) -> None:
    (scratch.tmp / "bad.yaml").write_text("train:\n  epochs: [3\n")


BAD_PKL = train(data="{tmp}/bad.pkl")
CATALOGUE: list[BadInput] = [
    # ---------------------------------------------------------------- skeleton data files
    BadInput("data-file-missing", "data file that does not exist", train(data="{tmp}/missing.pkl"),
             "skeleton file not found: {tmp}/missing.pkl; create it with `ssmar data synth` or `ssmar import`"),
    BadInput("corrupt-pickle", "corrupt pickle (not a pickle at all)", BAD_PKL,
             "{tmp}/bad.pkl: not a readable skeleton pickle (UnpicklingError: could not find MARK); "
             "the file is corrupt or truncated, re-create it",
             _bytes("bad.pkl", b"this is not a pickle")),
    BadInput("truncated-pickle", "truncated pickle (first 1000 bytes of a good file)", BAD_PKL,
             "{tmp}/bad.pkl: not a readable skeleton pickle (UnpicklingError: pickle data was truncated); "
             "the file is corrupt or truncated, re-create it",
             _truncated),
    BadInput("malicious-pickle", "skeleton pickle whose payload would run a command", BAD_PKL,
             "{tmp}/bad.pkl: refused to load: the pickle asks for the Python global 'posix.system', which a skeleton "
             "file never holds (plain lists, dicts, numbers, strings and NumPy arrays only) and which could run "
             "code; re-create the file from its source (ssmar import, ssmar extract-pose) or re-save it with plain "
             "containers",
             _malicious_pickle),
    BadInput("not-a-dict", "pickle of something else than a skeleton dict", BAD_PKL,
             "{tmp}/bad.pkl: expected a dict with 'annotations' (PYSKL/MMAction2 skeleton pickle), got list",
             _data([1, 2, 3])),
    BadInput("keypoint-rank", "wrong keypoint rank ([T, V, C] instead of [M, T, V, C])", BAD_PKL,
             "{tmp}/bad.pkl: clip 'c0': keypoint must have rank 4 [M, T, V, C], got shape (5, 20, 3)",
             _data({"annotations": [{**clip(), "keypoint": np.zeros((5, 20, 3), np.float32)}]})),
    BadInput("nan-frames", "NaN frames", BAD_PKL,
             "{tmp}/bad.pkl: clip 'c0': keypoint holds NaN or inf in 5 frame(s); "
             "fill missing joints with 0 and score 0 instead",
             _data({"annotations": [{**clip(), "keypoint": np.full((1, 5, 20, 3), np.nan, np.float32)}]})),
    BadInput("zero-length-clip", "zero-length clip", BAD_PKL,
             "{tmp}/bad.pkl: clip 'c0': keypoint has zero frames or persons (shape (1, 0, 20, 3)); drop the clip",
             _data({"annotations": [clip(frames=0)]})),
    BadInput("label-out-of-range", "label out of range", BAD_PKL,
             "{tmp}/bad.pkl: clip 'c0': label 7 out of range (expected an integer in 0..1, or -1 for a clip "
             "not labelled yet)",
             _data({"annotations": [clip(label=7)], "class_names": ["a", "b"]})),
    BadInput("duplicate-clip", "two clips with the same frame_dir", BAD_PKL,
             "{tmp}/bad.pkl: clip 'c0' appears twice; frame_dir must be unique",
             _data({"annotations": [clip(), clip()]})),
    BadInput("split-lists-missing-clip", "split lists a clip the file does not hold", BAD_PKL,
             "{tmp}/bad.pkl: split 'train' lists 1 clip(s) not in annotations, e.g. 'ghost'; "
             "fix the split or add the clips",
             _data({"annotations": [clip()], "split": {"train": ["c0", "ghost"]}})),
    BadInput("unknown-layout", "unknown skeleton layout", BAD_PKL,
             "unknown skeleton layout 'kinect_v9'; known layouts: kinect_v1_20, mediapipe_pose_33, coco_17, "
             "openpose_18, ntu_rgbd_25, ma52_openpose_28, penn_action_13 (or 'custom' with 'edges' in the data file)",
             _data({"annotations": [clip()], "layout": "kinect_v9", "split": {"train": ["c0"], "test": ["c0"]}})),
    BadInput("joint-count-mismatch", "clips with different joint counts", BAD_PKL,
             "mismatched joint count: layout mediapipe_pose_33 has 33 joints, clip c00_s00_r01 has 20; "
             "fix the file's 'layout' or its keypoints",
             _joint_mismatch),
    BadInput("unknown-split", "unknown split", train("data.train_split=val"),
             "{tmp}/synth.pkl: unknown split 'val' (this file has: test, train); "
             "use one of them (train: data.train_split / data.test_split; eval: --split)"),
    # ---------------------------------------------------------------- labelled / unlabelled partition
    BadInput("class-without-labels", "a class with no training clip to label", BAD_PKL,
             "bad.pkl: class(es) [0] have no clip in split 'train', so they cannot be labelled; "
             "check the file's labels, split and class_names",
             _class_without_labels),
    BadInput("class-only-unlabelled", "a class whose training clips are all not labelled yet (label -1)", BAD_PKL,
             "bad.pkl: class(es) [0] have no labelled clip in split 'train' (4 of its clips are not labelled yet); "
             "label at least one clip of each class with `ssmar label` (`ssmar suggest` picks candidates), or drop "
             "the class from class_names",
             lambda scratch: _unlabel(scratch, "train", 0)),
    BadInput("test-split-unlabelled", "evaluating a split that holds clips not labelled yet",
             ("eval", "--checkpoint", "{tmp}/prior/latest.pt", "--data", "{tmp}/bad.pkl", "--out", "{tmp}/ev"),
             "{tmp}/bad.pkl: split 'test' has 1 clip(s) without a label (label -1), e.g. 'c00_s02_r00'; evaluation "
             "needs labels: label them with `ssmar label` or evaluate on a labelled split",
             lambda scratch: _unlabel(scratch, "test", None)),
    BadInput("labelled-ratio-zero", "labelled ratio 0", train("data.labelled_ratio=0"),
             "config: data.labelled_ratio=0 is not allowed; data.labelled_ratio takes a number > 0 and <= 1"),
    BadInput("labelled-ratio-above-one", "labelled ratio > 1", train("data.labelled_ratio=1.5"),
             "config: data.labelled_ratio=1.5 is not allowed; data.labelled_ratio takes a number > 0 and <= 1"),
    BadInput("empty-unlabelled-set", "SSL method with an empty unlabelled set",
             train("algorithm.name=fixmatch", "data.labelled_ratio=1.0"),
             "fixmatch needs unlabelled clips but the split has none; lower data.labelled_ratio"),
    BadInput("split-file-mismatch", "work dir whose split.json was made with other settings",
             train("data.labelled_ratio=0.3", work_dir="{tmp}/prior"),
             "{tmp}/prior/split.json was made with labelled_ratio=0.5 (this run: 0.3); "
             "use a new --work-dir (or delete the split file to re-split this one)"),
    # ---------------------------------------------------------------- configuration and command line
    BadInput("config-typo", "config key typo", train("train.epoch=3"),
             "command line: unknown config key 'train.epoch'; did you mean 'train.epochs'?"),
    BadInput("bad-override-syntax", "override without '='", train("train.epochs"),
             "override 'train.epochs' is not key=value; write e.g. train.epochs=20"),
    BadInput("unknown-algorithm", "unknown algorithm", train("algorithm.name=fixmach"),
             "unknown algorithm 'fixmach'; choose one of: supervised, fullysupervised, pseudolabel, fixmatch, "
             "flexmatch, freematch, softmatch, aplt"),
    BadInput("unknown-algorithm-param", "unknown algorithm parameter",
             train("algorithm.name=fixmatch", "algorithm.params.p_cut=0.9"),
             "algorithm.params: unknown key(s) ['p_cut'] for fixmatch; valid: ['T', 'hard_label', 'lambda_u', "
             "'p_cutoff']"),
    BadInput("model-key-of-another-backbone", "model key the chosen backbone does not take", train("model.depth=18"),
             "model.depth=18: not a setting of model.name=stgcn, which takes model.channels, model.dropout, "
             "model.head_dropout, model.streams, model.strides, model.temporal_kernel; remove it or choose the "
             "backbone it belongs to"),
    BadInput("steps-per-epoch-word", "train.steps_per_epoch neither an integer nor auto",
             train("train.steps_per_epoch=many"),
             "config: train.steps_per_epoch='many' is not allowed; train.steps_per_epoch takes an integer >= 1 or auto"),
    BadInput("budget-floor-above-cap", "train.min_steps above train.max_steps",
             train("train.steps_per_epoch=auto", "train.min_steps=500", "train.max_steps=100"),
             "config: train.min_steps=500 is above train.max_steps=100; make the floor at most the cap"),
    BadInput("config-file-missing", "config file not found", ("train", "--config", "{tmp}/nope.yaml"),
             "config file not found: {tmp}/nope.yaml; see configs/ for examples"),
    BadInput("config-invalid-yaml", "config file with invalid YAML", ("train", "--config", "{tmp}/bad.yaml"),
             "{tmp}/bad.yaml: invalid YAML at line 3, column 1 (expected ',' or ']', but got '<stream end>'); "
             "fix the syntax, see configs/ for examples",
             _bad_yaml),
    BadInput("unknown-device", "unknown device", train("--device", "tpu"),
             "unknown device 'tpu'; use cpu, cuda or cuda:N"),
    BadInput("epochs-not-a-number", "a number option given a word", train("train.epochs=ten"),
             "config: train.epochs='ten' is not allowed; train.epochs takes an integer >= 1"),
    BadInput("steps-not-an-integer", "an integer option given a fraction", train("train.steps_per_epoch=1.5"),
             "config: train.steps_per_epoch=1.5 is not allowed; train.steps_per_epoch takes an integer >= 1 or "
             "auto"),
    BadInput("negative-lr", "negative learning rate", train("train.lr=-1"),
             "config: train.lr=-1 is not allowed; train.lr takes a number > 0"),
    BadInput("zero-batch", "batch size 0", train("train.batch_size=0"),
             "config: train.batch_size=0 is not allowed; train.batch_size takes an integer >= 1"),
    BadInput("zero-frames", "clip length 0", train("data.frames=0"),
             "config: data.frames=0 is not allowed; data.frames takes an integer >= 1"),
    BadInput("negative-seed", "negative seed", train("--seed", "-1"),
             "config: seed=-1 is not allowed; seed takes an integer >= 0 and <= 4294967295"),
    BadInput("unknown-optimizer", "an option outside its set", train("train.optimizer=adam"),
             "config: train.optimizer='adam' is not allowed; train.optimizer takes one of sgd, adamw"),
    BadInput("scalar-for-list", "a list option given one number", train("train.checkpoint_epochs=5"),
             "config: train.checkpoint_epochs=5 is not allowed; train.checkpoint_epochs takes a list whose entries "
             "are each an integer >= 1"),
    BadInput("value-for-section", "a whole section overridden by a value", train("train=5"),
             "config: train must be a section (a mapping of keys), got 5"),
    BadInput("strides-length", "one stride for two blocks", train("model.strides=[1]"),
             "config: model.strides=[1] has 1 entries but model.channels has 2; give one stride per block"),
    BadInput("even-temporal-kernel", "even temporal kernel", train("model.temporal_kernel=4"),
             "config: model.temporal_kernel=4 is even; use an odd kernel (e.g. 9) so that the padding keeps the "
             "clip length"),
    BadInput("train-on-test", "training and test split the same", train("data.test_split=train"),
             "config: data.train_split and data.test_split are both 'train', so the test figures would be measured "
             "on training clips; name two different splits (or hold out part of the train split with "
             "data.val_fraction / data.val_subjects)"),
    BadInput("threshold-out-of-range", "an algorithm's probability above 1",
             train("algorithm.name=fixmatch", "algorithm.params.p_cutoff=1.5"),
             "config: algorithm.params.p_cutoff=1.5 is not allowed; algorithm.params.p_cutoff takes a number >= 0 "
             "and <= 1"),
    BadInput("augment-out-of-range", "an augmentation probability above 1", train("augment.strong.p=2"),
             "config: augment.strong.p=2 is not allowed; augment.strong.p takes a number >= 0 and <= 1"),
    BadInput("unknown-labeller", "APLT labeller that does not exist",
             train("algorithm.name=aplt", "algorithm.params.labeller=kmean"),
             "unknown labeller 'kmean'; choose one of ['kmeans', 'labelprop', 'multiproto', 'posterior']"),
    BadInput("yaml-colon-without-space", "a YAML mapping written without the space after its colon",
             train("algorithm.name=aplt", "algorithm.params.screen_params={threshold:0.9}"),
             "command line: 'algorithm.params.screen_params.threshold:0.9' reads as one key without a value; YAML "
             "needs a space after the colon: write 'threshold: 0.9'"),
    BadInput("aplt-no-offline-round", "an APLT budget that ends before its first offline round",
             train("algorithm.name=aplt"),
             "algorithm aplt: algorithm.params.warmup_epochs=5 leaves no offline round in a budget of 1 epoch(s); "
             "raise train.epochs to at least 6 or lower algorithm.params.warmup_epochs to at most 0"),
    BadInput("bench-variant-not-key-value", "a bench method variant whose params are not key=value",
             ("bench", "--data", "{tmp}/synth.pkl", "--methods", "fixmatch,aplt@preset", "--work-dir", "{tmp}/grid"),
             "bench: method variant 'aplt@preset' has 'preset', which is not key=value; write e.g. "
             "aplt@preset=paper+fusion=0"),
    BadInput("bench-variant-unknown-param", "a bench method variant with a param the method does not take",
             ("bench", "--data", "{tmp}/synth.pkl", "--methods", "fixmatch@presett=paper", "--work-dir", "{tmp}/grid"),
             "algorithm.params: unknown key(s) ['presett'] for fixmatch; valid: ['T', 'hard_label', 'lambda_u', 'p_cutoff']"),
    # ---------------------------------------------------------------- files: work dir, checkpoints, outputs
    BadInput("unwritable-work-dir", "work dir that cannot be created (its parent is a file)",
             train(work_dir="{tmp}/afile/run"),
             "work dir {tmp}/afile/run is not writable (Not a directory); pass a writable --work-dir",
             _file_as_parent),
    BadInput("resume-path-missing", "--resume path that does not exist", train("--resume", "{tmp}/nope.pt"),
             "--resume {tmp}/nope.pt: no such checkpoint; use --resume auto or a path to latest.pt"),
    BadInput("checkpoint-other-model", "resume from a checkpoint of another model",
             train("model.channels=[8,32]", "--resume", work_dir="{tmp}/prior"),
             "{tmp}/prior/latest.pt holds a different model: model.channels=[8, 16] (this run: [8, 32]); "
             "resume with the config it was trained with, or train from scratch in a new --work-dir"),
    BadInput("corrupt-checkpoint", "corrupt checkpoint", ("eval", "--checkpoint", "{tmp}/bad.pt", "--out", "{tmp}/ev"),
             "{tmp}/bad.pt: unreadable checkpoint (UnpicklingError); it is corrupt or truncated, "
             "use another checkpoint of the run (epoch_<n>.pt, best.pt where written) or retrain",
             _bytes("bad.pt", b"garbage")),
    BadInput("foreign-checkpoint", "a torch file that is not an ssmar checkpoint",
             ("eval", "--checkpoint", "{tmp}/weights.pt", "--out", "{tmp}/ev"),
             "{tmp}/weights.pt is not an ssmar checkpoint (format None, expected 'ssmar-checkpoint-v1'); "
             "pass a latest.pt / best.pt written by ssmar train",
             _foreign_checkpoint),
    BadInput("malicious-checkpoint", "checkpoint whose pickle would run a command",
             ("eval", "--checkpoint", "{tmp}/evil.pt", "--out", "{tmp}/ev"),
             "{tmp}/evil.pt: refused to load: the checkpoint asks for the Python global 'posix.system', which could "
             "run code (an ssmar checkpoint holds tensors and plain containers only); if you trust its source, "
             "convert it once: ssmar convert-checkpoint --trust {tmp}/evil.pt NEW.pt",
             _malicious_checkpoint),
    BadInput("convert-without-trust", "convert-checkpoint without --trust",
             ("convert-checkpoint", "{tmp}/prior/latest.pt", "{tmp}/new.pt"),
             "convert-checkpoint reads {tmp}/prior/latest.pt with full unpickling, which runs any code it holds; "
             "add --trust if you know where it came from"),
    BadInput("checkpoint-is-directory", "a run directory passed as --checkpoint",
             ("eval", "--checkpoint", "{tmp}/prior", "--out", "{tmp}/ev"),
             "checkpoint {tmp}/prior is a directory; pass a file in it, e.g. {tmp}/prior/latest.pt"),
    BadInput("submission-without-body-map", "--submission for data without MA-52's body-level classes",
             ("eval", "--checkpoint", "{tmp}/nobody.pt", "--out", "{tmp}/ev", "--submission", "{tmp}/sub.csv"),
             "--submission needs a body-level map (MA-52 data with body_map); this checkpoint's data has none",
             _checkpoint_without_body_map),
    BadInput("eval-unknown-split", "eval on a split the data does not have",
             ("eval", "--checkpoint", "{tmp}/prior/latest.pt", "--data", "{tmp}/synth.pkl", "--split", "val",
              "--out", "{tmp}/ev"),
             "{tmp}/synth.pkl: unknown split 'val' (this file has: test, train); "
             "use one of them (train: data.train_split / data.test_split; eval: --split)"),
    BadInput("eval-joint-mismatch", "eval data with another joint count than the model",
             ("eval", "--checkpoint", "{tmp}/prior/latest.pt", "--data", "{tmp}/bad.pkl", "--out", "{tmp}/ev"),
             "mismatched joint count: the model expects 33 joints (mediapipe_pose_33), the clips have [20]; "
             "give it poses in the layout it was trained on",
             _data({"annotations": [clip()], "split": {"test": ["c0"]}})),
    BadInput("predict-missing-pose", "predict: --pose file without the video's clip",
             ("predict", "--checkpoint", "{tmp}/prior/latest.pt", "--pose", "{tmp}/synth.pkl", "ghost.mp4"),
             "{tmp}/synth.pkl has no pose for ghost.mp4 (clips are matched by file stem); "
             "drop --pose to extract it now"),
    BadInput("unreadable-video", "predict: unreadable video",
             ("predict", "--checkpoint", "{tmp}/prior/latest.pt", "{tmp}/broken.mp4"),
             "{tmp}/broken.mp4: cannot open as a video (Invalid data found when processing input); "
             "the file is truncated, corrupt or not a video",
             _broken_video),
    BadInput("timeline-window-longer", "timeline: a sequence shorter than one window",
             timeline("{tmp}/short.npy", "--window", "30"),
             "the sequence has 20 frames, fewer than one window (30 frames); pass --window 20 or less (the model "
             "then sees shorter actions than it was trained on)",
             lambda scratch: np.save(scratch.tmp / "short.npy", np.zeros((20, 33, 3), np.float32))),
    BadInput("timeline-video-checkpoint", "timeline: a checkpoint of a video (RGB) run",
             timeline("{tmp}/short.npy", "--window", "8", checkpoint="{tmp}/rgb.pt"),
             "{tmp}/rgb.pt is a video (RGB, data.type=video) checkpoint; the timeline scores poses: pass a "
             "checkpoint trained on skeletons (e.g. on ssmar extract-pose data)",
             _video_checkpoint),
    BadInput("timeline-unreadable-video", "timeline: unreadable video",
             timeline("{tmp}/broken.mp4", "--window", "8"),
             "{tmp}/broken.mp4: cannot open as a video (Invalid data found when processing input); "
             "the file is truncated, corrupt or not a video",
             _broken_video),
    BadInput("timeline-stdin-size", "timeline: frames on stdin without their size",
             timeline("-", "--window", "8"),
             "reading frames from stdin needs their size: pass --stdin-frames WIDTHxHEIGHT (raw rgb24, e.g. from "
             "ffmpeg -f rawvideo -pix_fmt rgb24 -)"),
    BadInput("missing-list-entry", "import: list entry whose .npy file is missing",
             ("import", "npy", "{tmp}/clips", "--list", "{tmp}/list.txt", "-o", "{tmp}/out.pkl"),
             "clip b listed in {tmp}/list.txt line 2 not found in {tmp}/clips (looked for {tmp}/clips/b.npy); "
             "fix the list or add the file",
             _npy_list),
    BadInput("penn-missing-folder", "import penn-action: folder that does not exist",
             ("import", "penn-action", "{tmp}/labels", "-o", "{tmp}/out.pkl"),
             "Penn Action labels directory not found: {tmp}/labels; check the path"),
    BadInput("penn-missing-keys", "import penn-action: .mat file without the joint arrays",
             ("import", "penn-action", "{tmp}/labels", "-o", "{tmp}/out.pkl"),
             "{tmp}/labels/0001.mat: no 'x', 'y', 'visibility' in this .mat file; is it a Penn Action label file?",
             _penn_labels(action="bowl", train=np.array([[1]]), dimensions=np.array([[360, 480, 3]]))),
    BadInput("penn-unknown-action", "import penn-action: an action name Penn Action does not have",
             ("import", "penn-action", "{tmp}/labels", "-o", "{tmp}/out.pkl"),
             "{tmp}/labels/0001.mat: unknown action 'curling'; Penn Action has baseball_pitch, baseball_swing, "
             "bench_press, bowling, clean_and_jerk, golf_swing, jumping_jacks, jump_rope, pull_ups, push_ups, "
             "sit_ups, squats, strumming_guitar, tennis_forehand, tennis_serve (also spelled bowl, pullup, pushup, "
             "situp, squat, strum_guitar); fix or remove the file",
             _penn_labels(**{**PENN_CLIP, "action": "curling"})),
    BadInput("arrays-wrong-joint-count", "import arrays: joint count that does not fit the named layout",
             import_arrays("--layout", "ntu_rgbd_25"),
             "{tmp}/train_data.npy: V=20 joints, but layout ntu_rgbd_25 has 25; pass the right --layout, "
             "or none to infer it",
             _arrays((2, 3, 5, 20, 1))),
    BadInput("arrays-channel-mismatch", "import arrays: channel count that does not match --channels",
             import_arrays("--channels", "xy"),
             "{tmp}/train_data.npy: C=3 channels per joint, but --channels xy needs 2; pass the --channels the "
             "arrays hold (xy, xyz, xy_score, xyz_score)",
             _arrays((2, 3, 5, 25, 1))),
    BadInput("arrays-label-count", "import arrays: label and sample counts differ", import_arrays(),
             "{tmp}/train_label.pkl lists 1 clip(s) but {tmp}/train_data.npy holds 2; pass the label file "
             "written with this data file",
             _arrays((2, 3, 5, 25, 1), names=["a"])),
    BadInput("arrays-nan", "import arrays: NaN coordinates", import_arrays(),
             "{tmp}/train_data.npy: clip 'b' (#1) holds NaN or inf; write missing joints as 0 (score 0) and "
             "export again",
             _arrays((2, 3, 5, 25, 1), nan_clip=1)),
    BadInput("arrays-empty-split", "import arrays: an empty split", import_arrays(),
             "{tmp}/train_data.npy: holds no clips, so split 'train' would be empty; pass a data file with clips "
             "or drop this pair",
             _arrays((0, 3, 5, 25, 1))),
    BadInput("export-empty-split", "export arrays: an empty split",
             ("export", "arrays", "{tmp}/bad.pkl", "-o", "{tmp}/arrays"),
             "{tmp}/bad.pkl: split 'test' is empty; remove it from the file's 'split' or add clips to it",
             _data({"annotations": [clip()], "split": {"train": ["c0"], "test": []}})),
    BadInput("channels-need-3d", "data.channels asks for z of 2-D poses", train("data.channels=xyz", data="{tmp}/bad.pkl"),
             "data.channels=xyz needs 3 coordinates per joint, but {tmp}/bad.pkl (e.g. clip 'c0') has 2; "
             "use data.channels=xy or xy_score",
             _data({"annotations": [{**clip(), "keypoint": np.zeros((1, 5, 20, 2), np.float32)}],
                    "split": {"train": ["c0"], "test": ["c0"]}})),
    # ---------------------------------------------------------------- the annotation loop: suggest, label
    BadInput("suggest-no-checkpoint", "suggest from a directory without a trained run", ("suggest", "{tmp}"),
             "{tmp}: no latest.pt, so there is no trained run to suggest from; pass the --work-dir of a finished "
             "`ssmar train`, or train one first"),
    BadInput("suggest-unknown-strategy", "suggest with an unknown strategy",
             ("suggest", "{tmp}/prior", "--strategy", "coreset"),
             "unknown strategy 'coreset'; choose one of: random, uncertainty, diversity, typiclust"),
    BadInput("suggest-budget-too-large", "suggest budget larger than the unlabelled pool",
             ("suggest", "{tmp}/prior", "--budget", "1000"),
             "budget 1000 is larger than the pool of 30 unlabelled clip(s); pass a --budget from 1 to 30"),
    BadInput("labels-unknown-clip", "labels CSV naming a clip the file does not hold",
             ("label", "{tmp}/synth.pkl", "{tmp}/labels.csv"),
             "{tmp}/labels.csv line 2: clip 'ghost' is not in {tmp}/synth.pkl; use the clip names of the file "
             "(its frame_dir, e.g. 'c00_s00_r00')",
             _labels_csv("ghost,nodding")),
    BadInput("labels-unknown-class", "labels CSV with a class the file does not have",
             ("label", "{tmp}/synth.pkl", "{tmp}/labels.csv"),
             "{tmp}/labels.csv line 2: unknown class 'flying'; use a class name of the file (e.g. 'shrugging', "
             "'bowing head', 'tilting head') or an id 0..14",
             _labels_csv("c00_s00_r01,flying")),
    BadInput("labels-duplicate", "labels CSV listing a clip twice",
             ("label", "{tmp}/synth.pkl", "{tmp}/labels.csv"),
             "{tmp}/labels.csv line 3: clip 'c00_s00_r01' is listed again (first on line 2); keep one line per clip",
             _labels_csv("c00_s00_r01,shrugging", "c00_s00_r01,0")),
    BadInput("labels-conflict", "labels CSV giving a clip two different labels",
             ("label", "{tmp}/synth.pkl", "{tmp}/labels.csv"),
             "{tmp}/labels.csv line 3: clip 'c00_s00_r01' is labelled 'nodding' here but 'shrugging' on line 2; "
             "keep the right one",
             _labels_csv("c00_s00_r01,shrugging", "c00_s00_r01,nodding")),
    BadInput("labels-contradict-file", "labels CSV contradicting a label the file already has",
             ("label", "{tmp}/synth.pkl", "{tmp}/labels.csv"),
             "{tmp}/labels.csv line 2: clip 'c00_s00_r01' already has label 'shrugging' in {tmp}/synth.pkl and the "
             "CSV says 'nodding'; fix the CSV, or pass --relabel to replace labels",
             _labels_csv("c00_s00_r01,nodding")),
    BadInput("disk-full", "disk full while writing (simulated ENOSPC)",
             ("data", "synth", "-o", "{tmp}/synth.pkl", "--subjects", "3", "--clips-per-class", "1"),
             "writing {tmp}/synth.pkl failed: No space left on device; free space or fix permissions, then retry; "
             "the previous file is untouched",
             _disk_full),
]

# Rows whose bad input is the skeleton data itself: test_engine checks the loader raises them directly.
SKELETON_DATA_ROWS = [row for row in CATALOGUE if row.id in (
    "not-a-dict", "keypoint-rank", "nan-frames", "zero-length-clip", "label-out-of-range", "duplicate-clip",
    "split-lists-missing-clip")]


def markdown_table() -> str:
    """The table of docs/bad_inputs.md, generated from :data:`CATALOGUE` (the docs test compares)."""
    def code(text: str) -> str:
        text = text.replace("|", "\\|")
        return f"`` {text} ``" if "`" in text else f"`{text}`"

    lines = ["| # | bad input | command (`ssmar ...`) | printed error | exit |", "|---|---|---|---|---|"]
    for number, row in enumerate(CATALOGUE, 1):
        command = " ".join(arg for arg in row.argv(Path("<tmp>")) if arg not in PRIOR_RUN)
        lines.append(f"| {number} | {row.what} | {code(command)} | {code(row.expected(Path('<tmp>')))} | "
                     f"{row.exit_code} |")
    return "\n".join(lines) + "\n"
