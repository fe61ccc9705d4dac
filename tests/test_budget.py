"""The training budget: an integer train.steps_per_epoch as given, or steps_per_epoch=auto following the data."""

import math
from pathlib import Path

import pytest

from conftest import tiny_config
from ssmar.bench.report import budget_line
from ssmar.config import load_config
from ssmar.engine.schedule import plan_budget
from ssmar.engine.trainer import Trainer


def train_cfg(**values) -> dict:
    return {**load_config(None, ["train.steps_per_epoch=auto"])["train"], **values}


def test_an_integer_steps_per_epoch_is_used_as_given() -> None:
    budget = plan_budget(train_cfg(epochs=20, steps_per_epoch=30, passes=1000.0), train_clips=10**6)
    assert (budget.epochs, budget.steps_per_epoch, budget.total_steps, budget.rule) == (20, 30, 600, "fixed")


@pytest.mark.parametrize(("clips", "total"), [
    (50, 100),  # 10 passes x 50 clips / batch 10 = 50 steps: below the floor
    (300, 300),  # 300 steps: in between, proportional to the data
    (600, 600),  # twice the clips, twice the steps
    (5000, 1000),  # 5,000 steps wanted: the cap
])
def test_auto_follows_the_data_between_floor_and_cap(clips: int, total: int) -> None:
    cfg = train_cfg(epochs=10, batch_size=10, passes=10.0, min_steps=100, max_steps=1000)
    budget = plan_budget(cfg, clips)
    assert budget.rule == "auto" and budget.epochs == 10
    assert budget.steps_per_epoch == total // 10 and budget.total_steps == total


def test_auto_rounds_up_to_whole_epochs() -> None:
    budget = plan_budget(train_cfg(epochs=4, batch_size=16, passes=3.0, min_steps=1, max_steps=10**6), 101)
    assert math.ceil(3 * 101 / 16) == 19 and budget.steps_per_epoch == 5 and budget.total_steps == 20


def test_every_method_gets_the_same_steps_on_the_same_data(synth_file: Path, tmp_path: Path) -> None:
    """The rule counts the whole training split, so the share of labels and the algorithm do not change it."""
    steps = {}
    for method, ratio in (("supervised", 0.2), ("fixmatch", 0.2), ("fixmatch", 0.5), ("fullysupervised", 0.2)):
        cfg = tiny_config(synth_file, tmp_path / f"{method}{ratio}", f"algorithm.name={method}",
                          f"data.labelled_ratio={ratio}", "train.steps_per_epoch=auto", "train.epochs=2",
                          "train.passes=3", "train.min_steps=1", "train.max_steps=1000")
        trainer = Trainer(cfg, tmp_path / f"{method}{ratio}")
        steps[method, ratio] = trainer.total_steps
        clips = len(trainer.data.train.labels)
    assert set(steps.values()) == {2 * math.ceil(math.ceil(3 * clips / 4) / 2)}, steps


def test_train_logs_the_budget_and_the_time_estimate(synth_file: Path, tmp_path: Path) -> None:
    cfg = tiny_config(synth_file, tmp_path, "algorithm.name=fixmatch", "data.labelled_ratio=0.5", "train.epochs=1",
                      "train.steps_per_epoch=auto", "train.passes=0.5", "train.min_steps=5", "train.max_steps=5")
    trainer = Trainer(cfg, tmp_path)
    trainer.fit()
    log = (tmp_path / "log.txt").read_text()
    labelled, unlabelled = len(trainer.data.labelled), len(trainer.data.unlabelled)
    assert (f"budget: 5 steps = 1 epochs x 5 steps (steps_per_epoch=auto: 0.5 passes over the "
            f"{labelled + unlabelled} training clips at batch 4, floor 5, cap 5); "
            f"{5 * 4 / labelled:.1f} passes over the {labelled} labelled clips, "
            f"{5 * 8 / unlabelled:.1f} over the {unlabelled} unlabelled") in log
    assert "estimated time: " in log and "min for the remaining 1 steps" in log
    assert "the mean of steps 2-4 of this run; evaluations not included" in log


def test_bench_report_states_the_rule_of_an_auto_budget() -> None:
    cfg = load_config(None, ["train.steps_per_epoch=auto", "train.passes=12", "train.min_steps=600", "data.file=penn.pkl"])
    line = budget_line([{"config": cfg}, {"config": cfg}])
    assert line.startswith("Every run: 20 epochs × auto (12 passes over the training clips, 600-6000) steps, batch 16")
