"""Engine: splits, loader errors, training on real data, resume, eval and predict.

The CLI's answers to bad inputs (config typos, corrupt files, foreign checkpoints, ...) are
the catalogue of tests/bad_inputs.py, tested in test_bad_inputs.py.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bad_inputs import SKELETON_DATA_ROWS, BadInput, Scratch
from conftest import tiny_config
from ssmar.cli.main import main
from ssmar.config import load_config
from ssmar.data.ma52 import ma52_body_map
from ssmar.data.samplers import InfiniteSampler
from ssmar.data.skeleton_format import load_skeleton_pickle
from ssmar.data.splits import make_ssl_split, short_classes
from ssmar.engine.metrics import body_level_scores, classification_metrics
from ssmar.engine.runs import run_training
from ssmar.engine.trainer import Trainer
from ssmar.errors import SsmarError
from ssmar.runtime.io import save_json


def long_tailed_labels() -> np.ndarray:
    counts = [50, 20, 6, 2, 1]  # MA-52-like tail
    return np.concatenate([np.full(n, c) for c, n in enumerate(counts)])


def test_ssl_split_is_stratified_deterministic_and_keeps_one_label_per_class() -> None:
    labels = long_tailed_labels()
    labelled, unlabelled = make_ssl_split(labels, seed=3, ratio=0.1)
    again, _ = make_ssl_split(labels, seed=3, ratio=0.1)
    other, _ = make_ssl_split(labels, seed=4, ratio=0.1)
    assert np.array_equal(labelled, again) and not np.array_equal(labelled, other)
    assert set(labelled) | set(unlabelled) == set(range(len(labels))) and not set(labelled) & set(unlabelled)
    per_class = np.bincount(labels[labelled], minlength=5)
    assert per_class.tolist() == [5, 2, 1, 1, 1]  # round(10 %), at least one each
    by_count, _ = make_ssl_split(labels, seed=0, per_class=3)
    assert np.bincount(labels[by_count], minlength=5).tolist() == [3, 3, 3, 2, 1]
    assert short_classes(labels, by_count, 3) == [3, 4]  # the two classes that had fewer than 3 clips
    assert short_classes(labels, by_count, 2) == [4]
    with_unknown = np.concatenate([labels, [-1, -1]])  # clips not labelled yet never count as a class's
    assert short_classes(with_unknown, make_ssl_split(with_unknown, seed=0, per_class=3)[0], 3) == [3, 4]


def test_training_warns_when_a_class_has_fewer_clips_than_labels_per_class(synth_file: Path, tmp_path: Path) -> None:
    run_training(tiny_config(synth_file, tmp_path, "algorithm.name=supervised", "data.labels_per_class=1000",
                             "train.epochs=1", "train.steps_per_epoch=1"))
    log = (tmp_path / "log.txt").read_text()
    assert "data.labels_per_class=1000, but" in log and "none is left unlabelled" in log


@pytest.mark.parametrize("ratio", [0.0, 1.5, -0.1])
def test_ssl_split_rejects_bad_ratio(ratio: float) -> None:
    with pytest.raises(SsmarError, match="labelled ratio"):
        make_ssl_split(long_tailed_labels(), seed=0, ratio=ratio)


def test_atomic_writes_get_the_usual_permissions(tmp_path: Path) -> None:
    import os

    previous = os.umask(0o027)
    try:
        save_json({"a": 1}, tmp_path / "m.json")
    finally:
        os.umask(previous)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o640  # 0666 under the umask, not mkstemp's 0600
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"], "no temporary file left behind"


def test_sampler_resumes_the_same_stream() -> None:
    sampler = InfiniteSampler(torch.arange(10), batch_size=4, seed=1)
    first = [sampler.next() for _ in range(3)]
    state = sampler.state_dict()
    rest = [sampler.next() for _ in range(4)]
    resumed = InfiniteSampler(torch.arange(10), batch_size=4, seed=1)
    resumed.load_state_dict(state)
    assert all(torch.equal(a, resumed.next()) for a in rest)
    assert sorted(torch.cat(first)[:10].tolist()) == list(range(10))  # one pass covers every clip once


@pytest.mark.parametrize("row", SKELETON_DATA_ROWS, ids=[row.id for row in SKELETON_DATA_ROWS])
def test_loader_names_the_clip_and_the_problem(row: BadInput, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The loader itself raises these catalogue rows (test_bad_inputs runs every row through the CLI)."""
    row.setup(Scratch(tmp_path, monkeypatch))
    with pytest.raises(SsmarError) as raised:
        load_skeleton_pickle(tmp_path / "bad.pkl")
    assert f"error: {raised.value}" == row.expected(tmp_path)


def test_short_supervised_run_on_utd_mhad_beats_chance_by_far(utd_file: Path, tmp_path: Path) -> None:
    cfg = load_config(None, [f"data.file={utd_file}", "algorithm.name=fullysupervised", "train.epochs=4",
                             "train.steps_per_epoch=20", "train.eval_every=4", "threads=2",
                             "train.progress=false", f"work_dir={tmp_path}"])
    final = run_training(cfg)
    assert final["top1"] > 30  # 27 classes: chance is 3.7 %
    for name in ("config.yaml", "split.json", "log.txt", "metrics.json", "latest.pt", "confusion.png", "confusion.npy"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "best.pt").exists(), "evaluated on test: no checkpoint is selected on it"
    assert list((tmp_path / "tb").iterdir()), "TensorBoard events written"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["final"]["top1"] == pytest.approx(final["top1"])
    assert set(metrics["final"]) >= {"top5", "mean_class_acc", "f1_micro", "f1_macro", "per_class_acc"}


@pytest.mark.parametrize("budget", [["train.steps_per_epoch=3"],
                                    ["train.steps_per_epoch=auto", "train.min_steps=9", "train.max_steps=9"]])
def test_resume_restores_the_same_state_and_result(synth_file: Path, tmp_path: Path, budget: list[str]) -> None:
    """An interrupted run resumed from latest.pt ends bit-identical to an uninterrupted one (CPU), with a
    fixed budget and with one that follows the data (here clamped to 9 steps: 3 per epoch)."""
    overrides = ["algorithm.name=fixmatch", "data.labelled_ratio=0.3", "train.epochs=3", *budget,
                 "train.eval_every=1", "algorithm.params.p_cutoff=0.5"]
    straight = Trainer(tiny_config(synth_file, tmp_path / "a", *overrides), tmp_path / "a")
    straight.fit()
    # "Kill" after two epochs: train a run whose budget schedule is the same but stop it early.
    first = Trainer(tiny_config(synth_file, tmp_path / "b", *overrides), tmp_path / "b")
    first.cfg["train"]["epochs"] = 2  # the schedule was built for 3 epochs; only the loop stops early
    first.fit()
    resumed = Trainer(tiny_config(synth_file, tmp_path / "b", *overrides), tmp_path / "b")
    resumed.resume(tmp_path / "b" / "latest.pt")
    assert resumed.epoch == 2 and resumed.context.step == 6
    resumed.fit()
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert straight.history[-1]["eval_top1"] == resumed.history[-1]["eval_top1"]


def test_eval_and_predict_round_trip(synth_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_training(tiny_config(synth_file, tmp_path, "algorithm.name=supervised", "data.labelled_ratio=0.5",
                             "train.epochs=1", "train.steps_per_epoch=2"))
    checkpoint = tmp_path / "latest.pt"
    assert main(["eval", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "ev")]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert summary["top1"] == pytest.approx(saved["top1"], abs=0.01) and (tmp_path / "ev" / "confusion.png").is_file()
    data = load_skeleton_pickle(synth_file)
    clip = data["annotations"][0]["frame_dir"]
    assert main(["predict", "--checkpoint", str(checkpoint), "--pose", str(synth_file), f"{clip}.mp4",
                 "--json", "--top", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    probabilities = [entry["probability"] for entry in result[0]["top"]]
    assert result[0]["clip"] == clip and len(probabilities) == 3
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0001


def test_eval_of_a_run_tuned_on_validation_scores_its_carve_out_not_the_test_split(
        synth_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    final = run_training(tiny_config(synth_file, tmp_path, "algorithm.name=fullysupervised", "data.val_fraction=0.3",
                                     "data.eval_on=val", "train.epochs=1", "train.steps_per_epoch=3"))
    assert main(["eval", "--checkpoint", str(tmp_path / "latest.pt"), "--out", str(tmp_path / "ev")]) == 0
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["split"] == "validation" and saved["top1"] == pytest.approx(final["top1"], abs=0.01)
    assert main(["eval", "--checkpoint", str(tmp_path / "latest.pt"), "--split", "test",
                 "--out", str(tmp_path / "ev_test")]) == 0  # the test split only when asked for
    assert json.loads((tmp_path / "ev_test" / "metrics.json").read_text())["split"] == "test"
    capsys.readouterr()


def test_body_level_scores_rank_bodies_by_their_best_action() -> None:
    """MA-52's body level (metrics and submission): a body class scores as its best action."""
    body_map, body_names = ma52_body_map()
    scores = np.random.default_rng(0).normal(size=(40, 52))
    body = body_level_scores(scores, body_map)
    assert body.shape == (40, 7)
    assert (body.argmax(axis=1) == np.asarray(body_map)[scores.argmax(axis=1)]).all()
    head = [action for action, b in enumerate(body_map) if b == 2]
    assert body[3, 2] == scores[3, head].max()
    true = scores.argmax(axis=1)  # perfect action predictions give perfect body predictions
    metrics = classification_metrics(scores, true, [f"a{i}" for i in range(52)], body_map, body_names)
    assert metrics["top1"] == metrics["body_top1"] == 100.0


def test_cross_subject_validation_carve_out(synth_file: Path, tmp_path: Path) -> None:
    from ssmar.engine.inputs import prepare_data

    data = load_skeleton_pickle(synth_file)
    subject_of = {ann["frame_dir"]: ann["subject"] for ann in data["annotations"]}
    train_subjects = sorted({subject_of[name] for name in data["split"]["train"]})
    cfg = tiny_config(synth_file, tmp_path, "data.eval_on=val", f"data.val_subjects=[{train_subjects[0]}]")
    prepared = prepare_data(cfg, tmp_path, seed=0)
    assert {subject_of[n] for n in prepared.evaluation.names} == {train_subjects[0]}
    assert train_subjects[0] not in {subject_of[n] for n in prepared.train.names}
    everyone = ",".join(str(s) for s in train_subjects)
    with pytest.raises(SsmarError, match="some but not all subjects"):
        prepare_data(tiny_config(synth_file, tmp_path / "b", f"data.val_subjects=[{everyone}]"), tmp_path / "b", 0)


def test_best_checkpoint_only_on_validation_and_the_callers_config_untouched(synth_file: Path,
                                                                            tmp_path: Path) -> None:
    cfg = tiny_config(synth_file, tmp_path, "algorithm.name=fullysupervised", "data.labelled_ratio=0.2",
                      "data.val_fraction=0.3", "data.eval_on=val", "train.epochs=2", "train.steps_per_epoch=1",
                      "train.eval_every=1")
    run_training(cfg)
    assert cfg["data"]["labelled_ratio"] == 0.2, "the trainer worked on a copy"
    assert load_config(tmp_path / "config.yaml")["data"]["labelled_ratio"] == 1.0  # what the run trained on
    best = json.loads((tmp_path / "metrics.json").read_text())["best"]
    assert (tmp_path / "best.pt").is_file() and best["epoch"] in (1, 2)
    assert torch.load(tmp_path / "best.pt", weights_only=False)["epoch"] == best["epoch"]


def test_demo_main_job_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`ssmar demo` (the README's main job) with a tiny budget: data, runs, table, plots."""
    # APLT as a variant with one warm-up epoch, so that its offline round runs within the 2 epochs
    assert main(["demo", "--work-dir", str(tmp_path), "--methods", "supervised,aplt@warmup_epochs=1", "--jobs", "1",
                 "train.epochs=2", "train.steps_per_epoch=2", "data.frames=16", "model.channels=[8,16]",
                 "model.strides=[1,2]", "threads=1", "train.progress=false"]) == 0
    out = capsys.readouterr().out
    assert "| supervised |" in out and "| aplt@warmup_epochs=1 |" in out
    for name in ("synth.pkl", "results.csv", "results.md", "top1_vs_ratio.png",
                 "aplt@warmup_epochs=1/ratio0.1/seed0/confusion.png", "aplt@warmup_epochs=1/ratio0.1/seed0/aplt_rounds.json"):
        assert (tmp_path / name).is_file(), name
