"""APLT as an algorithm: offline round, frozen prototypes, sync ablation, resume, a real run."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_config
from ssmar.aplt.labellers import make_labeller
from ssmar.aplt.offline import offline_round, scatter_pseudo_labels
from ssmar.aplt.screens import make_screen
from ssmar.config import load_config
from ssmar.engine.runs import run_training
from ssmar.engine.trainer import Trainer
from ssmar.errors import SsmarError

# An untrained tiny model is sure of nothing: a confidence threshold of 0 keeps every pseudo-label.
APLT_TINY = ["algorithm.name=aplt", "data.labelled_ratio=0.3", "algorithm.params.num_aug=2",
             "algorithm.params.p_cutoff=0.5", "train.unsup_rampup=0", "algorithm.params.screen_params={threshold: 0.0}"]


def aplt_trainer(data_file: Path, work_dir: Path, *overrides: str) -> Trainer:
    return Trainer(tiny_config(data_file, work_dir, *APLT_TINY, *overrides), work_dir)


def test_offline_round_screens_far_points_and_refines_prototypes() -> None:
    torch.manual_seed(0)
    centres = F.normalize(torch.randn(3, 8), dim=1)
    near = F.normalize(centres.repeat_interleave(10, 0) + 0.05 * torch.randn(30, 8), dim=1)
    far = F.normalize(centres + 0.9 * torch.randn(3, 8), dim=1)  # one loose point per class
    features = torch.cat([near, far])
    labels = torch.full((33,), -1)
    labels[[0, 10, 20]] = torch.tensor([0, 1, 2])
    result = offline_round(features, labels, 3, make_labeller("kmeans"), make_screen("paper", policy="mean"),
                           groups=torch.arange(33))
    assert result.assign[:30].tolist() == [c for c in range(3) for _ in range(10)]
    assert not result.keep[labels >= 0].any(), "labelled rows are never 'kept' pseudo-labels"
    assert result.keep[30:].sum() < 3 and result.keep[:30].sum() >= 15
    kept = result.keep.clone()
    kept[[0, 10, 20]] = True
    expected = F.normalize(torch.stack([features[kept & (result.assign == c)].mean(0) for c in range(3)]), dim=1)
    assert torch.allclose(result.prototypes, expected, atol=1e-5)
    assert torch.equal(result.weight, result.keep.float())  # a hard screen: weight 1 on kept rows
    table, _, weights = scatter_pseudo_labels(40, torch.arange(33) + 7, result.assign, result.keep, result.weight)
    assert table[:7].eq(-1).all() and torch.equal(table[7:], result.assign) and torch.equal(weights[7:], result.weight)


def test_agreement_screen_drops_rows_where_cluster_and_classifier_disagree() -> None:
    torch.manual_seed(0)
    centres = F.normalize(torch.randn(3, 8), dim=1)
    features = F.normalize(centres.repeat_interleave(10, 0) + 0.05 * torch.randn(30, 8), dim=1)
    labels = torch.full((30,), -1)
    labels[[0, 10, 20]] = torch.tensor([0, 1, 2])
    kmeans, keep_all, groups = make_labeller("kmeans"), make_screen("none"), torch.arange(30)
    plain = offline_round(features, labels, 3, kmeans, keep_all, groups)
    classifier = plain.assign.clone()
    classifier[[1, 2, 11]] = (classifier[[1, 2, 11]] + 1) % 3  # the linear head disagrees on three clips
    screened = offline_round(features, labels, 3, kmeans, keep_all, groups, classifier_labels=classifier)
    assert plain.keep[[1, 2, 11]].all() and not screened.keep[[1, 2, 11]].any()
    others = torch.ones(30, dtype=torch.bool)
    others[[1, 2, 11]] = False
    assert torch.equal(screened.keep[others], plain.keep[others])


def test_prototypes_stay_frozen_during_online_phase(synth_file: Path, tmp_path: Path) -> None:
    trainer = aplt_trainer(synth_file, tmp_path, "train.steps_per_epoch=3", "algorithm.params.warmup_epochs=0",
                           "algorithm.params.period=5")
    trainer.algorithm.on_epoch_start(0)
    assert trainer.algorithm.round == 1
    before = trainer.algorithm.memory.prototypes.clone()
    labels_before = trainer.algorithm.pseudo_labels.clone()
    weights_before = [p.detach().clone() for p in trainer.model.parameters()]
    record = trainer._train_epoch(None)
    assert record["loss_u_margin"] > 0 and record["loss_sup_margin"] > 0
    assert torch.equal(before, trainer.algorithm.memory.prototypes), "prototypes must not move online"
    assert torch.equal(labels_before, trainer.algorithm.pseudo_labels)
    assert not trainer.algorithm.memory.prototypes.requires_grad
    assert any(not torch.equal(a, b) for a, b in zip(weights_before, trainer.model.parameters()))


def test_sync_ablation_recomputes_prototypes_every_step(synth_file: Path, tmp_path: Path) -> None:
    trainer = aplt_trainer(synth_file, tmp_path, "train.steps_per_epoch=2", "algorithm.params.warmup_epochs=0",
                           "algorithm.params.mode=sync")
    trainer.algorithm.on_epoch_start(0)
    snapshots = []
    for _ in range(2):
        trainer.algorithm.train_step(trainer._make_batch()).loss.backward()
        trainer.optimizer.step()
        snapshots.append(trainer.algorithm.memory.prototypes.clone())
    assert not torch.equal(snapshots[0], snapshots[1])


def test_resume_mid_round_restores_the_same_pseudo_labels(synth_file: Path, tmp_path: Path) -> None:
    overrides = ["train.epochs=4", "train.steps_per_epoch=2", "algorithm.params.warmup_epochs=1",
                 "algorithm.params.period=2", "algorithm.params.screen=paper",
                 "algorithm.params.screen_params={policy: ema}"]
    straight = aplt_trainer(synth_file, tmp_path / "a", *overrides)
    straight.fit()
    first = aplt_trainer(synth_file, tmp_path / "b", *overrides)
    first.cfg["train"]["epochs"] = 2  # stop between the rounds of epochs 1 and 3
    first.fit()
    resumed = aplt_trainer(synth_file, tmp_path / "b", *overrides)
    resumed.resume(tmp_path / "b" / "latest.pt")
    assert resumed.algorithm.round == 1
    assert torch.equal(resumed.algorithm.pseudo_labels, first.algorithm.pseudo_labels)
    assert torch.equal(resumed.algorithm.memory.prototypes, first.algorithm.memory.prototypes)
    resumed.fit()
    assert resumed.algorithm.round == straight.algorithm.round == 2
    assert torch.equal(resumed.algorithm.pseudo_labels, straight.algorithm.pseudo_labels)
    assert torch.equal(resumed.algorithm.memory.prototypes, straight.algorithm.memory.prototypes)
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    rounds = json.loads((tmp_path / "b" / "aplt_rounds.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2] and (tmp_path / "b" / "aplt_rounds.png").is_file()


def test_fusion_changes_scores_only_when_enabled(synth_file: Path, tmp_path: Path) -> None:
    trainer = aplt_trainer(synth_file, tmp_path, "algorithm.params.warmup_epochs=0", "algorithm.params.fusion=1.0")
    trainer.algorithm.on_epoch_start(0)
    x = trainer.data.evaluation.clips[:4]
    model = trainer.ema.module.eval()
    fused = trainer.algorithm.score_outputs(model(x))
    plain = model(x)["logits"]
    assert fused.shape == plain.shape and not torch.allclose(fused, plain)
    assert torch.allclose(fused.exp().sum(1), torch.full((4,), 2.0), atol=1e-4)  # two softmaxes, weight 1 each
    trainer.algorithm.at_share["fusion"] = 0.0
    assert torch.equal(trainer.algorithm.score_outputs(model(x)), plain)


def test_evaluation_reports_the_prototype_head_beside_the_linear_head(synth_file: Path, tmp_path: Path) -> None:
    trainer = aplt_trainer(synth_file, tmp_path, "algorithm.params.warmup_epochs=0", "algorithm.params.fusion=0")
    assert set(trainer.evaluate()) >= {"top1"} and "fused_top1" not in trainer.evaluate()  # no prototypes yet
    trainer.algorithm.on_epoch_start(0)
    metrics = trainer.evaluate()
    labels = trainer.data.evaluation.labels
    model = trainer.ema.module.eval()
    with torch.no_grad():
        feat = model(trainer.data.evaluation.clips)["feat"]
    nearest = (F.normalize(feat, dim=1) @ trainer.algorithm.eval_prototypes.T).argmax(1)
    assert metrics["prototype_top1"] == pytest.approx(float((nearest == labels).float().mean() * 100), abs=1e-3)
    trainer.algorithm.at_share["fusion"] = 1.0  # the default: top1 is fused, the linear head is the diagnostic
    fused_metrics = trainer.evaluate()
    assert fused_metrics["linear_top1"] == pytest.approx(metrics["top1"]) and "fused_top1" not in fused_metrics
    assert fused_metrics["top1"] == pytest.approx(metrics["fused_top1"]), "the diagnostic is what fusion 1 scores"
    assert fused_metrics["top1"] == pytest.approx(metrics["fused_top1"])


@pytest.mark.slow
def test_short_aplt_run_on_utd_mhad_beats_chance(utd_file: Path, tmp_path: Path) -> None:
    cfg = load_config(None, [f"data.file={utd_file}", "algorithm.name=aplt", "data.labelled_ratio=0.2",
                             "train.epochs=4", "train.steps_per_epoch=10", "train.eval_every=4",
                             "algorithm.params.warmup_epochs=2", "algorithm.params.period=1", "threads=2",
                             # 40 steps leave no clip 0.9 sure: keep every label to measure the labeller
                             "algorithm.params.screen_params={threshold: 0.0}",
                             "train.progress=false", f"work_dir={tmp_path}"])
    final = run_training(cfg)
    assert final["top1"] > 15  # 27 classes: chance is 3.7 %
    rounds = json.loads((tmp_path / "aplt_rounds.json").read_text())["rounds"]
    assert len(rounds) == 2 and all(0 < r["coverage"] <= 1 for r in rounds)
    assert all(r["accuracy"] > 1 / 27 for r in rounds), "offline pseudo-labels beat chance"


@pytest.mark.parametrize("labeller", ["kmeans", "multiproto", "labelprop", "posterior"])
def test_every_labeller_with_the_precision_screen_drives_training(labeller: str, synth_file: Path,
                                                                  tmp_path: Path) -> None:
    trainer = aplt_trainer(synth_file, tmp_path, "train.steps_per_epoch=2", "algorithm.params.warmup_epochs=0",
                           f"algorithm.params.labeller={labeller}", "algorithm.params.screen=precision",
                           "algorithm.params.screen_params={}",
                           "algorithm.params.bank_views=2")
    trainer.algorithm.on_epoch_start(0)
    record = trainer._train_epoch(None)
    assert record["loss_sup_margin"] > 0 and torch.isfinite(torch.tensor(record["loss"]))
    rounds = json.loads((tmp_path / "aplt_rounds.json").read_text())["rounds"]
    assert 0 <= rounds[0]["coverage"] <= 1 and rounds[0]["space_drift_weak"] >= 0
    weight = trainer.algorithm.pseudo_weight
    assert set(weight.unique().tolist()) <= {0.0, 1.0}  # a hard screen
    assert (trainer.algorithm.pseudo_labels[weight > 0] >= 0).all()


def test_same_space_prototypes_sit_closer_to_the_features_the_margin_loss_sees(synth_file: Path,
                                                                               tmp_path: Path) -> None:
    drift = {}
    for same_space in (False, True):
        work_dir = tmp_path / str(same_space)
        trainer = aplt_trainer(synth_file, work_dir, "train.steps_per_epoch=1", "train.epochs=2",
                               "algorithm.params.warmup_epochs=1", f"algorithm.params.same_space={same_space}")
        trainer.fit()
        algorithm = trainer.algorithm
        drift[same_space] = json.loads((work_dir / "aplt_rounds.json").read_text())["rounds"][0]["space_drift_weak"]
        if same_space:  # the loss's prototypes come from the online model, inference keeps the EMA model's
            assert not torch.allclose(algorithm.memory.prototypes, algorithm.eval_prototypes)
    assert drift[True] < drift[False]


def test_paper_preset_and_bad_names(synth_file: Path, tmp_path: Path) -> None:
    paper = aplt_trainer(synth_file, tmp_path / "p", "algorithm.params.preset=paper",
                         "algorithm.params.screen_params={policy: quantile, q: 0.5}").algorithm.params
    assert (paper["labeller"], paper["screen"], paper["bank_views"], paper["margin_norm"]) == ("kmeans", "paper", 1,
                                                                                              "kept")
    assert paper["screen_params"] == {"policy": "quantile", "q": 0.5}  # explicit params win over the preset
    for key, value, valid in (("labeller", "spectral", "kmeans"), ("screen", "oracle", "precision"),
                              ("preset", "best", "paper")):
        with pytest.raises(SsmarError, match=valid) as error:
            aplt_trainer(synth_file, tmp_path / key, f"algorithm.params.{key}={value}")
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("targets", ["online", "offline"])
def test_logits_targets_offline_trains_the_linear_head_on_the_kept_offline_labels(targets: str, synth_file: Path,
                                                                                  tmp_path: Path) -> None:
    """p_cutoff 1: no online target passes, so only offline targets can give L_u^logits a value."""
    trainer = aplt_trainer(synth_file, tmp_path, "algorithm.params.warmup_epochs=0", "algorithm.params.p_cutoff=1.0",
                           f"algorithm.params.logits_targets={targets}")
    trainer.algorithm.on_epoch_start(0)
    assert (trainer.algorithm.pseudo_weight[trainer.data.unlabelled] > 0).all()  # screen threshold 0: all kept
    result = trainer.algorithm.train_step(trainer._make_batch())
    assert result.stats["fixmatch_mask"] == 0
    assert (result.stats["loss_u_logits"] > 0) == (targets == "offline")
