"""A run records what it ran (resolved settings, budget, code version), later commands use that
record, the guards of a run's budget, and benchmark cells keyed by their resolved settings."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import ssmar
from conftest import tiny_config
from ssmar.algorithms.aplt import APLT
from ssmar.algorithms.fixmatch import FixMatch
from ssmar.bench import plan_grid, run_grid
from ssmar.bench.report import code_line, collect_results, markdown_table
from ssmar.bench.suite import load_suite, run_suite, suite_markdown, update_markdown
from ssmar.cli.main import main
from ssmar.config import load_config
from ssmar.engine.inference import load_recognizer
from ssmar.engine.resolve import resolve_run
from ssmar.engine.runs import run_training
from ssmar.engine.trainer import Trainer
from ssmar.errors import SsmarError

# Two offline rounds in three short epochs: warm-up 1, a round at the start of epochs 2 and 3.
APLT_ROUNDS = ["algorithm.name=aplt", "data.labelled_ratio=0.3", "train.epochs=3", "train.steps_per_epoch=2",
               "algorithm.params.warmup_epochs=1", "algorithm.params.period=1", "algorithm.params.num_aug=1"]


@pytest.fixture(scope="module")
def aplt_run(synth_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work_dir = tmp_path_factory.mktemp("aplt_run")
    run_training(tiny_config(synth_file, work_dir, *APLT_ROUNDS))
    return work_dir


def test_a_run_records_its_resolved_settings_budget_and_code(aplt_run: Path) -> None:
    saved = yaml.safe_load((aplt_run / "config.yaml").read_text())
    params = saved["algorithm"]["params"]
    assert set(params) == set(APLT.defaults) and params["warmup_epochs"] == 1
    assert params["logits_targets"] == APLT.defaults["logits_targets"] and params["labeller"] == "posterior"
    assert saved["augment"]["strong"]["rotate_degrees"] == 30.0 and "flip_p" in saved["augment"]["weak"]
    assert saved["provenance"]["total_steps"] == 6
    code = saved["provenance"]["code"]
    assert code["version"] == ssmar.__version__
    git = subprocess.run(["git", "-C", str(Path(ssmar.__file__).parent), "rev-parse", "HEAD"], capture_output=True,
                         text=True)
    assert code["commit"] == (git.stdout.strip() if git.returncode == 0 else None)
    checkpoint = torch.load(aplt_run / "latest.pt", weights_only=True)
    metrics = json.loads((aplt_run / "metrics.json").read_text())
    for record in (checkpoint, metrics):
        assert record["provenance"] == saved["provenance"] and record["config"]["algorithm"]["params"] == params
    # the saved config loads and resolves to itself: a later rescore or resume runs what was recorded
    reloaded = load_config(aplt_run / "config.yaml")
    assert resolve_run(reloaded) == reloaded


def test_aplt_runs_two_offline_rounds_and_records_them(aplt_run: Path) -> None:
    rounds = json.loads((aplt_run / "aplt_rounds.json").read_text())
    rounds = rounds["rounds"] if isinstance(rounds, dict) else rounds
    assert [r["round"] for r in rounds] == [1, 2]
    assert [r["epoch"] for r in rounds] == [1, 2]  # the rounds before the 2nd and 3rd epochs (0-based 1, 2)
    assert all(0.0 <= r["coverage"] <= 1.0 and r["known_labels"] == 1.0 for r in rounds)
    assert rounds[0]["drift_mean"] is None and rounds[1]["drift_mean"] is not None
    history = json.loads((aplt_run / "metrics.json").read_text())["history"]
    assert [h["aplt_round"] for h in history] == [0, 1, 2]
    assert "eval_prototype_top1" in history[-1], "the prototype head is scored once a round has run"


def test_eval_scores_with_the_runs_saved_params_not_todays_defaults(aplt_run: Path, monkeypatch, capsys) -> None:
    clips = load_recognizer(aplt_run / "latest.pt").encode_source().clips
    before = load_recognizer(aplt_run / "latest.pt").scores(clips)
    monkeypatch.setitem(APLT.defaults, "fusion", 0.0)  # a changed default: the linear head alone
    monkeypatch.setitem(APLT.defaults, "scale", 2.0)
    assert np.array_equal(load_recognizer(aplt_run / "latest.pt").scores(clips), before)
    assert main(["eval", "--checkpoint", str(aplt_run / "latest.pt"), "--out", str(aplt_run / "ev")]) == 0
    recorded = json.loads((aplt_run / "metrics.json").read_text())["final"]
    assert json.loads((aplt_run / "ev" / "metrics.json").read_text())["top1"] == pytest.approx(recorded["top1"])
    # a checkpoint from before runs recorded their settings is scored as then: with the defaults of the day
    old = torch.load(aplt_run / "latest.pt", weights_only=True)
    old.pop("provenance")
    old["config"]["algorithm"]["params"] = {"warmup_epochs": 1, "period": 1, "num_aug": 1}
    torch.save(old, aplt_run / "old.pt")
    capsys.readouterr()
    old_scores = load_recognizer(aplt_run / "old.pt").scores(clips)
    assert capsys.readouterr().err.count("warning:") == 1
    assert not np.array_equal(old_scores, before)


def test_resume_of_a_finished_run_prints_its_final_metrics(aplt_run: Path, synth_file: Path, capsys) -> None:
    options = [f"data.file={synth_file}", "data.frames=16", "model.channels=[8,16]", "model.strides=[1,2]",
               "train.batch_size=4", "threads=1", "train.progress=false", *APLT_ROUNDS]
    capsys.readouterr()
    assert main(["train", "--work-dir", str(aplt_run), "--resume", "auto", *options]) == 0
    final = json.loads((aplt_run / "metrics.json").read_text())["final"]
    assert f"top1 {final['top1']:.2f}" in capsys.readouterr().out


def test_offline_phase_leaves_weights_ema_and_batchnorm_statistics_untouched(synth_file: Path,
                                                                            tmp_path: Path) -> None:
    trainer = Trainer(tiny_config(synth_file, tmp_path, *APLT_ROUNDS, "train.epochs=2"), tmp_path)
    trainer.fit()  # one round at the start of epoch 2, trained after it: BatchNorm statistics are not fresh
    model = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    ema = {k: v.clone() for k, v in trainer.ema.module.state_dict().items()}
    assert any("running_mean" in key for key in model), "the tiny model has BatchNorm buffers to check"
    trainer.model.train()
    for bank_model in ("ema", "online"):
        trainer.algorithm.params["bank_model"] = bank_model
        trainer.algorithm.offline_phase(2)
        for name, state in (("model", trainer.model.state_dict()), ("ema", trainer.ema.module.state_dict())):
            expected = model if name == "model" else ema
            changed = [key for key, value in state.items() if not torch.equal(value, expected[key])]
            assert not changed, f"offline phase ({bank_model} bank) changed {name}: {changed[:3]}"
    assert trainer.model.training, "the online model is left in training mode"


def test_aplt_budget_without_an_offline_round_is_a_config_error(synth_file: Path, tmp_path: Path) -> None:
    with pytest.raises(SsmarError, match=r"warmup_epochs=3 leaves no offline round in a budget of 3 epoch"):
        Trainer(tiny_config(synth_file, tmp_path, *APLT_ROUNDS, "algorithm.params.warmup_epochs=3"), tmp_path)
    assert not any(tmp_path.iterdir()), "nothing written"


GRID = ["train.epochs=1", "train.steps_per_epoch=1", "data.frames=16", "model.channels=[8,16]",
        "model.strides=[1,2]", "train.batch_size=4", "threads=1", "train.progress=false"]


def test_bench_cells_are_keyed_by_resolved_settings_and_variants_share_a_grid(synth_file: Path, tmp_path: Path,
                                                                              monkeypatch) -> None:
    base = load_config(None, GRID)
    cells = plan_grid(["fixmatch", "fixmatch@p_cutoff=0.5+T=0.5"], [0.5], [0])
    results = run_grid(base, cells, tmp_path, synth_file)
    assert [r["config"]["algorithm"]["params"]["p_cutoff"] for r in results] == [0.95, 0.5]
    assert results[1]["config"]["algorithm"]["params"]["T"] == 0.5
    assert (tmp_path / "fixmatch@p_cutoff=0.5+T=0.5" / "ratio0.5" / "seed0" / "result.json").is_file()
    table = markdown_table(collect_results(tmp_path), "top1")
    assert "| fixmatch |" in table and "| fixmatch@p_cutoff=0.5+T=0.5 |" in table
    assert code_line(results).startswith("Code: every cell ran at")
    # a default changes after the cells ran: the plain cell is stale, the variant (explicit value) is not
    monkeypatch.setitem(FixMatch.defaults, "p_cutoff", 0.9)
    with pytest.raises(SsmarError, match=r"fixmatch/ratio0.5/seed0 was finished with other settings "
                                         r"\(algorithm.params.p_cutoff: 0.95 -> 0.9\); pass --rerun-stale"):
        run_grid(base, cells, tmp_path, synth_file)
    rerun = run_grid(base, cells, tmp_path, synth_file, rerun_stale=True)
    assert rerun[0]["config"]["algorithm"]["params"]["p_cutoff"] == 0.9 and rerun[1] == results[1]


def test_a_cell_is_reused_when_its_data_moved_and_stale_when_the_data_changed(synth_file: Path, tmp_path: Path) -> None:
    base, cells = load_config(None, GRID), plan_grid(["supervised"], [0.5], [0])
    first = run_grid(base, cells, tmp_path / "grid", synth_file)
    assert first[0]["provenance"]["data_sha256"] == hashlib.sha256(synth_file.read_bytes()).hexdigest()
    moved = tmp_path / "elsewhere" / "synth.pkl"
    moved.parent.mkdir()
    shutil.copy(synth_file, moved)
    assert run_grid(base, cells, tmp_path / "grid", moved) == first
    moved.write_bytes(moved.read_bytes() + b"\n")  # other bytes under the new path: not the data the cell saw
    with pytest.raises(SsmarError, match=r"supervised/ratio0.5/seed0 was finished with other settings \(data.file: "):
        run_grid(base, cells, tmp_path / "grid", moved)
    # a cell from before digests were recorded: the file still at its recorded path vouches for the bytes
    result_path = cells[0].work_dir(tmp_path / "grid") / "result.json"
    undigested = json.loads(result_path.read_text())
    del undigested["provenance"]["data_sha256"]
    result_path.write_text(json.dumps(undigested))
    copy = tmp_path / "copy" / "synth.pkl"
    copy.parent.mkdir()
    shutil.copy(synth_file, copy)
    assert run_grid(base, cells, tmp_path / "grid", copy)[0]["top1"] == first[0]["top1"]
    with pytest.raises(SsmarError, match=r"was finished with other settings \(data.file: "):
        run_grid(base, cells, tmp_path / "grid", moved)


def test_tables_flag_cells_from_different_code_versions() -> None:
    cell = {"method": "fixmatch", "ratio": 0.1, "seed": 0, "top1": 50.0}
    mixed = [{**cell, "provenance": {"code": {"version": "0.1.0", "commit": "a" * 40, "dirty": False}}},
             {**cell, "seed": 1, "provenance": {"code": {"version": "0.1.0", "commit": "b" * 40, "dirty": True}}},
             {**cell, "seed": 2}]
    assert code_line(mixed) == ("**Mixed code versions**: cells ran at `aaaaaaa` (1 cells), `bbbbbbb+dirty` (1 cells), "
                                "`unrecorded` (1 cells); the comparison may mix code changes with methods.")


def test_a_suite_runs_and_writes_its_block_between_markers(synth_file: Path, tmp_path: Path) -> None:
    suite_file = tmp_path / "tiny.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "tiny", "data": str(synth_file), "methods": ["supervised", {"name": "fixmatch", "params": {"T": 0.5}}],
        "ratios": [0.5], "seeds": [0], "budget": {"epochs": 1, "steps_per_epoch": 1, "batch_size": 4},
        "overrides": GRID[2:], "work_dir": str(tmp_path / "grid")}))
    suite = load_suite(suite_file)
    assert suite.methods == ["supervised", "fixmatch@T=0.5"]
    run_suite(suite)
    document = tmp_path / "BENCH.md"
    document.write_text("before\n<!-- suite:tiny -->\nold table\n<!-- /suite:tiny -->\nafter\n")
    update_markdown(document, suite_markdown(suite), "tiny")
    text = document.read_text()
    assert text.startswith("before\n<!-- suite:tiny -->\n") and text.endswith("<!-- /suite:tiny -->\nafter\n")
    assert "old table" not in text and "| fixmatch@T=0.5 |" in text and "(2 of 2 cells finished)" in text
    assert "Code: every cell ran at" in text
    with pytest.raises(SsmarError, match="no <!-- suite:other --> .* markers"):
        update_markdown(document, suite_markdown(suite), "other")


def test_a_late_fusion_suite_tabulates_the_fusion_and_each_stream(synth_file: Path, tmp_path: Path) -> None:
    suite_file = tmp_path / "fused.yaml"
    spec = {"name": "fused", "data": str(synth_file), "methods": ["fullysupervised"], "ratios": [1.0], "seeds": [0],
            "budget": {"epochs": 1, "steps_per_epoch": 1, "batch_size": 4}, "overrides": GRID[2:],
            "late_fusion": ["joint", "bone"], "work_dir": str(tmp_path / "grid")}
    suite_file.write_text(yaml.safe_dump(spec))
    suite = load_suite(suite_file)
    run_suite(suite)
    block = suite_markdown(suite)
    fused = json.loads((tmp_path / "grid" / "fullysupervised" / "ratio1" / "seed0" / "result.json").read_text())
    assert f"| fullysupervised | {fused['top1']:.2f} (1) |" in block.split("Each stream's own model")[0]
    streams = block.split("Each stream's own model")[1]
    assert "| fullysupervised (joint) |" in streams and "| fullysupervised (bone) |" in streams
    suite_file.write_text(yaml.safe_dump({**spec, "late_fusion": "joint,bone"}))
    with pytest.raises(SsmarError, match="late_fusion must be a list of input streams"):
        load_suite(suite_file)
