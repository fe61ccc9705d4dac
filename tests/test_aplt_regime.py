"""Issue 24's pieces: settings that follow the labelled share, and every clip weighted by its offline certainty."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_config
from ssmar.aplt.labellers import Labelling, make_labeller
from ssmar.aplt.offline import offline_round
from ssmar.aplt.regime import by_share, canonical, labelled_share
from ssmar.aplt.screens import clean_fraction, make_screen
from ssmar.bench.runner import stale_settings
from ssmar.engine.resolve import resolve_run
from ssmar.engine.trainer import Trainer
from ssmar.errors import SsmarError


def test_by_share_interpolates_between_anchors_and_holds_beyond_them() -> None:
    schedule = {0.5: 0.25, 0.1: 1.0}  # unsorted on purpose
    assert by_share(0.7, 0.33) == 0.7
    assert [by_share(schedule, share) for share in (0.0, 0.1, 0.3, 0.5, 0.9)] == pytest.approx(
        [1.0, 1.0, 0.625, 0.25, 0.25])
    assert by_share({"0.1": 1.0, "0.5": 0.25}, 0.3) == pytest.approx(0.625)  # keys as JSON gives them back
    assert canonical(schedule, "x") == {"0.1": 1.0, "0.5": 0.25} and canonical(0.7, "x") == 0.7


@pytest.mark.parametrize("value, message", [
    ({}, "empty mapping"), ({1.5: 1.0}, "share 1.5 must lie in"), ({0.1: "high"}, "'high' is not a number"),
    ({0.1: -1.0}, "value -1 must lie in"), ([1.0], "is not a number"), (float("nan"), "must be finite")])
def test_by_share_rejects_bad_settings_in_one_line(value, message: str) -> None:
    with pytest.raises(SsmarError, match=message) as error:
        by_share(value, 0.2, "algorithm.params.lambda_m")
    assert "\n" not in str(error.value) and "algorithm.params.lambda_m" in str(error.value)


def test_labelled_share_counts_a_clip_and_its_views_once() -> None:
    groups = torch.tensor([0, 0, 0, 1, 2, 3, 4, 5, 6, 7])  # clip 0 labelled, with two augmented views
    labels = torch.tensor([2, 2, 2, 1, -1, -1, -1, -1, -1, -1])
    assert labelled_share(labels, groups) == pytest.approx(2 / 8)


def labelling_from(probs: torch.Tensor) -> Labelling:
    return Labelling(assign=probs.argmax(1), score=probs.max(1).values, probs=probs,
                     centres=F.normalize(torch.eye(probs.shape[1]), dim=1))


def screen_rows(screen_name: str, probs: torch.Tensor, labels: torch.Tensor, **params):
    n, k = probs.shape
    return make_screen(screen_name, **params)(make_labeller("posterior"), labelling_from(probs), torch.eye(n, k),
                                              labels, torch.arange(n), k)


def test_below_weights_noise_0_a_clean_cluster_1_and_nothing_labelled() -> None:
    k = 4
    clean = F.one_hot(torch.tensor([0, 1, 2, 3]), k).float() * 0.97 + 0.01  # sure, right
    noise = torch.full((3, k), 1 / k)  # a posterior no better than chance
    between = torch.tensor([[0.6, 0.2, 0.1, 0.1]])
    probs = torch.cat([clean, noise, between, clean[:1]])
    labels = torch.tensor([-1] * 8 + [0])  # the last row is a labelled clip
    soft = screen_rows("confidence", probs, labels, threshold=0.9, below=1.0)
    assert soft.keep.tolist() == [True] * 4 + [False] * 5
    assert soft.weight[:4].tolist() == [1.0] * 4 and soft.weight[4:7].abs().max() < 1e-6 and soft.weight[8] == 0
    assert soft.weight[7].item() == pytest.approx((0.6 - 0.25) / 0.75)  # the label's clean fraction
    half = screen_rows("confidence", probs, labels, threshold=0.9, below=0.5)
    assert half.weight[7].item() == pytest.approx(0.5 * soft.weight[7].item())
    hard = screen_rows("confidence", probs, labels, threshold=0.9, below=0.0)  # the hard screen, as before
    assert torch.equal(hard.weight, hard.keep.float()) and torch.equal(hard.keep, soft.keep)
    assert clean_fraction(torch.tensor([0.0, 0.25, 1.0]), 4).tolist() == [0.0, 0.0, 1.0]


def test_the_default_screen_is_hard_at_10_percent_and_weighs_every_clip_at_50() -> None:
    probs = torch.tensor([[0.95, 0.05]] + [[0.7, 0.3]] * 9)  # one clip above the threshold, the rest below
    for labelled, below in ((1, 0.0), (5, 1.0), (3, 0.5)):  # shares 0.1, 0.5, 0.3
        labels = torch.tensor([0] * labelled + [-1] * (10 - labelled))
        weight = screen_rows("confidence", probs, labels).weight
        assert weight[labelled:].tolist() == pytest.approx([below * 0.4] * (10 - labelled))


def test_the_confidence_threshold_follows_the_banks_labelled_share() -> None:
    k = 3
    probs = torch.tensor([[0.8, 0.1, 0.1]] * 10)  # 0.8 sure everywhere
    schedule = {0.1: 0.9, 0.5: 0.7}
    for labelled, threshold, kept in ((1, 0.9, 0), (5, 0.7, 5), (3, 0.8, 7)):
        labels = torch.tensor([0] * labelled + [-1] * (10 - labelled))
        result = screen_rows("confidence", probs, labels, threshold=schedule)
        assert result.thresholds.tolist() == pytest.approx([threshold] * k)
        assert int(result.keep.sum()) == kept  # 0.8 >= 0.8 at share 0.3 keeps every unlabelled row


def test_posterior_labeller_with_soft_screen_on_generated_features() -> None:
    """End to end through offline_round: a tight cluster per class keeps weight 1, clips whose classifier
    logits are flat get (almost) none."""
    torch.manual_seed(0)
    k, per_class = 3, 12
    centres = F.normalize(torch.randn(k, 16), dim=1)
    truth = torch.arange(k).repeat_interleave(per_class)
    features = F.normalize(centres[truth] + 0.03 * torch.randn(len(truth), 16), dim=1)
    logits = 8.0 * F.one_hot(truth, k).float()
    logits[1::per_class] = 0.0  # one clip per class that the classifier cannot place
    labels = torch.full_like(truth, -1)
    labels[::per_class] = truth[::per_class]
    result = offline_round(features, labels, k, make_labeller("posterior", k=5), make_screen(
        "confidence", threshold=0.9, below=1.0), groups=torch.arange(len(truth)), logits=logits)
    sure = (labels < 0) & (logits.abs().sum(1) > 0)
    assert result.keep[sure].all() and (result.weight[sure] == 1).all()
    assert (result.weight[1::per_class] < result.weight[sure].min()).all()
    assert (result.weight[labels >= 0] == 0).all()


def test_aplt_resolves_share_dependent_settings_at_the_runs_share(synth_file: Path, tmp_path: Path) -> None:
    trainer = Trainer(tiny_config(synth_file, tmp_path, "algorithm.name=aplt", "data.labelled_ratio=0.3",
                                  "algorithm.params.lambda_m={0.1: 1.0, 0.5: 0.0}",
                                  "algorithm.params.fusion={0.0: 2.0, 1.0: 0.0}"), tmp_path)
    algorithm = trainer.algorithm
    share = len(trainer.data.labelled) / len(trainer.data.train)
    assert 0.2 <= share <= 0.35
    assert algorithm.at_share["lambda_m"] == pytest.approx(1.0 - (share - 0.1) / 0.4)
    assert algorithm.at_share["fusion"] == pytest.approx(2.0 * (1 - share))
    assert algorithm.state_dict()["fusion"] == pytest.approx(2.0 * (1 - share))  # what inference fuses with
    with pytest.raises(SsmarError, match="algorithm.params.lambda_m: labelled share 2 must lie in"):
        Trainer(tiny_config(synth_file, tmp_path / "bad", "algorithm.name=aplt", "algorithm.params.lambda_m={2: 1}"),
                tmp_path / "bad")


def test_soft_weights_reach_both_unlabelled_losses(synth_file: Path, tmp_path: Path) -> None:
    """A screen no clip passes (threshold 1): with ``below: 0`` only online targets are left; with ``below: 1``
    every clip's offline label, at its clean-fraction weight, trains both the linear and the prototype head."""
    losses = {}
    for below in (0.0, 1.0):
        trainer = Trainer(tiny_config(synth_file, tmp_path / str(below), "algorithm.name=aplt",
                                      "data.labelled_ratio=0.3", "algorithm.params.num_aug=1",
                                      "algorithm.params.warmup_epochs=0", "algorithm.params.p_cutoff=1.0",
                                      "train.unsup_rampup=0",
                                      f"algorithm.params.screen_params={{threshold: 1.0, below: {below}}}"),
                          tmp_path / str(below))
        algorithm = trainer.algorithm
        algorithm.on_epoch_start(0)
        unlabelled = trainer.data.unlabelled
        assert not algorithm.pseudo_keep.any()
        weight = algorithm.pseudo_weight[unlabelled]
        assert ((weight > 0).float().mean() > 0.5) == (below > 0) and (weight <= 1).all()
        losses[below] = algorithm.train_step(trainer._make_batch()).stats
    assert losses[0.0]["loss_u_logits"] == 0 and losses[0.0]["loss_u_margin"] == 0
    assert losses[1.0]["loss_u_logits"] > 0 and losses[1.0]["loss_u_margin"] > 0


def test_a_finished_cell_with_a_by_share_setting_is_not_stale(synth_file: Path, tmp_path: Path) -> None:
    """A result file holds the settings through JSON, where {0.1: 1.0} comes back as {"0.1": 1.0}; the resolved
    settings (what a checkpoint holds) have that form already, the screen's by-share options included."""
    cfg = tiny_config(synth_file, tmp_path, "algorithm.name=aplt", "algorithm.params.lambda_m={0.1: 1.0, 0.5: 0.0}",
                      "algorithm.params.screen_params={below: {0.1: 0.0, 0.5: 1.0}}")
    resolved = resolve_run(cfg)
    saved = json.loads(json.dumps({"config": resolved, "provenance": {}}))
    assert saved["config"] == resolved
    assert resolved["algorithm"]["params"]["lambda_m"] == {"0.1": 1.0, "0.5": 0.0}
    assert resolved["algorithm"]["params"]["screen_params"]["below"] == {"0.1": 0.0, "0.5": 1.0}
    assert stale_settings(saved, cfg) == []
    changed = tiny_config(synth_file, tmp_path, "algorithm.name=aplt", "algorithm.params.lambda_m={0.1: 1.0, 0.5: 0.5}",
                          "algorithm.params.screen_params={below: {0.1: 0.0, 0.5: 1.0}}")
    assert stale_settings(saved, changed) == ["algorithm.params.lambda_m.0.5: 0.0 -> 0.5"]
