"""The benchmark harness: grid layout, resumability, reports and input errors, on a tiny data set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ssmar.bench import format_mean_std, markdown_table, plan_grid, run_grid
from ssmar.bench import runner
from ssmar.bench.report import stream_table
from ssmar.bench.runner import Cell
from ssmar.cli.main import main
from ssmar.config import load_config
from ssmar.data.skeleton_format import save_skeleton_pickle
from ssmar.data.synth import generate_synthetic
from ssmar.engine.fusion import evaluate_fusion
from ssmar.engine.runs import run_training
from ssmar.errors import SsmarError

TINY = ["train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=4", "model.channels=[8,16]",
        "model.strides=[1,2]", "data.frames=16", "train.eval_batch_size=64", "threads=1", "train.progress=false"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench_data") / "tiny.pkl"
    save_skeleton_pickle(generate_synthetic(num_subjects=3, clips_per_class=1, test_subjects=1), path)
    return path


def bench(data_file: Path, work_dir: Path, *args: str, overrides: list[str] = TINY) -> int:
    return main(["bench", "--data", str(data_file), "--work-dir", str(work_dir), *args, *overrides])


def spy_run_training(monkeypatch: pytest.MonkeyPatch, fail_ratio: float | None = None) -> list[tuple[str, float]]:
    """Record (method, ratio) of every training run; optionally make one ratio's cells crash."""
    calls: list[tuple[str, float]] = []

    def spy(cfg, resume=None):
        calls.append((cfg["algorithm"]["name"], cfg["data"]["labelled_ratio"]))
        if cfg["data"]["labelled_ratio"] == fail_ratio:
            raise RuntimeError("simulated crash")
        return run_training(cfg, resume)

    monkeypatch.setattr(runner, "run_training", spy)
    return calls


def test_grid_writes_cells_and_reports_and_never_recomputes(data_file, tmp_path, monkeypatch, capsys):
    root = tmp_path / "grid"
    calls = spy_run_training(monkeypatch)
    grid = ["--methods", "supervised,fullysupervised", "--ratios", "0.5,1", "--seeds", "0"]
    assert bench(data_file, root, *grid) == 0
    # fullysupervised ignores the ratio axis: one cell per seed, recorded at ratio 1.0
    assert sorted(calls) == [("fullysupervised", 1.0), ("supervised", 0.5), ("supervised", 1.0)]
    cells = ["supervised/ratio0.5/seed0", "supervised/ratio1/seed0", "fullysupervised/ratio1/seed0"]
    for cell in cells:
        assert json.loads((root / cell / "result.json").read_text())["top1"] >= 0
    with open(root / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["method"], float(r["ratio"])) for r in rows] == [("supervised", 0.5), ("supervised", 1.0),
                                                                 ("fullysupervised", 1.0)]
    assert {"top1", "mean_class_acc", "f1_macro", "wall_seconds", "work_dir"} <= set(rows[0])
    table = (root / "results.md").read_text()
    assert "| supervised | " in table and "| fullysupervised | — | — | " in table
    assert (root / "timing.md").is_file() and (root / "top1_vs_ratio.png").stat().st_size > 0
    assert "supervised       ratio 0.5" in capsys.readouterr().out

    # Re-running computes nothing, even for a cell that finished training but lost its result.json.
    mtimes = {cell: (root / cell / "result.json").stat().st_mtime_ns for cell in cells[:2]}
    (root / cells[2] / "result.json").unlink()
    calls.clear()
    assert bench(data_file, root, *grid) == 0
    assert calls == []
    assert mtimes == {cell: (root / cell / "result.json").stat().st_mtime_ns for cell in cells[:2]}
    assert (root / cells[2] / "result.json").is_file()

    # A finished cell with a different budget is refused rather than mixed into the tables.
    overrides = [o for o in TINY if not o.startswith("train.epochs")] + ["train.epochs=2"]
    assert bench(data_file, root, *grid, overrides=overrides) == 2
    assert "finished with other settings (train.epochs: 1 -> 2)" in capsys.readouterr().err

    (root / "results.md").unlink()
    assert main(["bench-report", str(root)]) == 0
    assert (root / "results.md").read_text() == table


def test_failed_cell_is_the_only_one_rerun(data_file, tmp_path, monkeypatch):
    root = tmp_path / "grid"
    base = load_config(None, TINY)
    cells = plan_grid(["supervised"], [0.3, 0.6], [0])
    calls = spy_run_training(monkeypatch, fail_ratio=0.6)
    reported: list[dict] = []
    with pytest.raises(SsmarError, match=r"1 of 2 cells failed \(supervised ratio 0.6 seed 0: simulated crash"):
        run_grid(base, cells, root, data_file, on_result=reported.append)
    assert [r["ratio"] for r in reported] == [0.3]  # the finished cell was reported despite the crash
    calls = spy_run_training(monkeypatch)
    results = run_grid(base, cells, root, data_file)
    assert calls == [("supervised", 0.6)]
    assert [r["ratio"] for r in results] == [0.3, 0.6]


def test_interrupted_cell_continues_from_latest_checkpoint(data_file, tmp_path):
    root = tmp_path / "grid"
    cells = plan_grid(["supervised"], [0.5], [1])
    run_grid(load_config(None, TINY), cells, root, data_file)
    cell_dir = cells[0].work_dir(root)
    # Make it look like a 2-epoch run killed after epoch 1: checkpoint present, no final metrics.
    (cell_dir / "result.json").unlink()
    metrics = json.loads((cell_dir / "metrics.json").read_text())
    metrics["config"]["train"]["epochs"] = 2
    (cell_dir / "metrics.json").write_text(json.dumps({**metrics, "final": {}}))
    longer = load_config(None, [o for o in TINY if not o.startswith("train.epochs")] + ["train.epochs=2"])
    [result] = run_grid(longer, cells, root, data_file)
    assert "resumed from" in (cell_dir / "log.txt").read_text()
    assert [h["epoch"] for h in json.loads((cell_dir / "metrics.json").read_text())["history"]] == [1, 2]
    assert result["wall_seconds"] >= metrics["elapsed_s"]


def test_rescore_reevaluates_finished_cells_without_training(data_file, tmp_path, monkeypatch, capsys):
    root = tmp_path / "grid"
    assert bench(data_file, root, "--methods", "supervised", "--ratios", "0.5,1.0", "--seeds", "0") == 0
    cell_dir = Cell("supervised", 0.5, 0).work_dir(root)
    first = json.loads((cell_dir / "result.json").read_text())
    (Cell("supervised", 1.0, 0).work_dir(root) / "result.json").unlink()
    (Cell("supervised", 1.0, 0).work_dir(root) / "metrics.json").unlink()  # now an unfinished cell
    # Pretend the recorded evaluation was different (as if the inference rule had changed since).
    (cell_dir / "result.json").write_text(json.dumps({**first, "top1": -1.0}))
    checkpoint_before = (cell_dir / "latest.pt").read_bytes()
    calls = spy_run_training(monkeypatch)
    capsys.readouterr()
    assert bench(data_file, root, "--methods", "supervised", "--ratios", "0.5,1.0", "--seeds", "0", "--rescore") == 0
    assert calls == [], "rescoring trains nothing"
    rescored = json.loads((cell_dir / "result.json").read_text())
    assert rescored["top1"] == pytest.approx(first["top1"]) and rescored["rescored_from"]["top1"] == -1.0
    assert rescored["wall_seconds"] == first["wall_seconds"]
    assert (cell_dir / "latest.pt").read_bytes() == checkpoint_before
    out = capsys.readouterr().out
    assert "-1.00 ->" in out and "ratio 1 seed 0 has not finished; skipped" in out


def test_parallel_jobs_run_in_separate_processes(data_file, tmp_path):
    root = tmp_path / "grid"
    base = load_config(None, [o for o in TINY if o != "threads=1"])
    results = run_grid(base, plan_grid(["supervised"], [0.3, 0.6], [0]), root, data_file, jobs=2)
    assert [r["ratio"] for r in results] == [0.3, 0.6]
    expected_threads = max(1, runner.available_cores() // 2)
    assert all(r["config"]["threads"] == expected_threads and r["config"]["train"]["progress"] is False
               for r in results)


def test_mean_std_formatting_and_table():
    assert format_mean_std([70.0, 72.0, 74.0]) == "72.00 ± 2.00 (3)"
    assert format_mean_std([50.0]) == "50.00 (1)"
    results = [{"method": "supervised", "ratio": 0.1, "top1": 10.0},
               {"method": "supervised", "ratio": 0.1, "top1": 20.0},
               {"method": "supervised", "ratio": 0.5, "top1": 40.0},
               {"method": "fullysupervised", "ratio": 1.0, "top1": 80.0},
               {"method": "aplt", "ratio": 0.5, "top1": 45.0}]
    assert markdown_table(results, "top1").splitlines() == [
        "| method | 10% | 50% | all labels |",
        "| --- | ---: | ---: | ---: |",
        "| supervised | 15.00 ± 7.07 (2) | 40.00 (1) |  |",
        "| aplt |  | 45.00 (1) |  |",
        "| fullysupervised | — | — | 80.00 (1) |",
    ]
    # one row per stream's model of a late-fusion cell; the fully supervised streams keep the bound's column
    fused = [{"method": "fullysupervised", "ratio": 1.0, "top1": 90.0, "late_fusion": {"joint": 85.0, "bone": 86.0}},
             {"method": "supervised", "ratio": 0.1, "top1": 60.0, "late_fusion": {"joint": 50.0, "bone": 55.0}}]
    assert stream_table(fused).splitlines() == [
        "| method | 10% | all labels |",
        "| --- | ---: | ---: |",
        "| supervised (bone) | 55.00 (1) |  |",
        "| supervised (joint) | 50.00 (1) |  |",
        "| fullysupervised (bone) | — | 86.00 (1) |",
        "| fullysupervised (joint) | — | 85.00 (1) |",
    ]


def test_report_adds_last_epoch_pseudo_labels(tmp_path):
    """Coverage/accuracy come from each cell's last epoch with pseudo-labels, in percent; methods
    without pseudo-labels (or without a history) leave the cells empty."""
    budget = {"train": {"epochs": 2, "steps_per_epoch": 1, "batch_size": 4, "uratio": 1, "ema": 0.99},
              "data": {"frames": 8, "eval_on": "test", "file": "tiny.pkl"}}
    histories = {("fixmatch", 0): [{"epoch": 1, "pl_coverage": 0.1, "pl_acc": 0.5},
                                   {"epoch": 2, "pl_coverage": 0.4, "pl_acc": 0.75}, {"epoch": 3, "loss": 1.0}],
                 ("fixmatch", 1): [{"epoch": 1, "pl_coverage": 0.2, "pl_acc": None}],
                 ("supervised", 0): [{"epoch": 1, "loss": 1.0}]}
    for method, seed in [*histories, ("supervised", 1)]:
        cell = Cell(method, 0.1, seed).work_dir(tmp_path)
        cell.mkdir(parents=True)
        (cell / "result.json").write_text(json.dumps({"method": method, "ratio": 0.1, "seed": seed, "top1": 50.0,
                                                      "wall_seconds": 60.0, "work_dir": str(cell),
                                                      "config": budget}))
        if (method, seed) in histories:
            (cell / "metrics.json").write_text(json.dumps({"history": histories[method, seed]}))
    assert main(["bench-report", str(tmp_path)]) == 0
    with open(tmp_path / "results.csv") as handle:
        rows = {(r["method"], r["seed"]): r for r in csv.DictReader(handle)}
    assert (float(rows["fixmatch", "0"]["pl_coverage"]), float(rows["fixmatch", "0"]["pl_acc"])) == (40.0, 75.0)
    assert (float(rows["fixmatch", "1"]["pl_coverage"]), rows["fixmatch", "1"]["pl_acc"]) == (20.0, "")
    assert rows["supervised", "0"]["pl_coverage"] == rows["supervised", "1"]["pl_coverage"] == ""
    report = (tmp_path / "results.md").read_text()
    coverage = report.split("## Pseudo-label coverage")[1].split("## ")[0]
    assert "| fixmatch | 30.00 ± 14.14 (2) |" in coverage and "| supervised |" not in coverage
    accuracy = report.split("## Pseudo-label accuracy")[1]
    assert "| fixmatch | 75.00 (1) |" in accuracy
    (Cell("supervised", 0.1, 1).work_dir(tmp_path) / "metrics.json").write_text("{")  # truncated history
    assert main(["bench-report", str(tmp_path)]) == 2


def test_late_fusion_cell_fuses_one_run_per_stream(data_file, tmp_path, monkeypatch):
    root = tmp_path / "grid"
    calls: list[list[str]] = []

    def spy(cfg, resume=None):
        calls.append(cfg["model"]["streams"])
        return run_training(cfg, resume)

    monkeypatch.setattr(runner, "run_training", spy)
    grid = ["--methods", "supervised", "--ratios", "0.5", "--seeds", "0", "--late-fusion", "joint,bone"]
    assert bench(data_file, root, *grid) == 0
    assert calls == [["joint"], ["bone"]]
    cell = root / "supervised" / "ratio0.5" / "seed0"
    result = json.loads((cell / "result.json").read_text())
    streams = {name: json.loads((cell / name / "result.json").read_text())["top1"] for name in ("joint", "bone")}
    assert result["late_fusion"] == streams
    # the cell's top-1 is the late fusion of the two stream runs, as `ssmar eval --fuse` scores it
    fused, _ = evaluate_fusion([cell / "joint" / "latest.pt", cell / "bone" / "latest.pt"], [None, None], [1.0, 1.0])
    assert result["top1"] == pytest.approx(fused["fused"]["top1"])
    assert result["wall_seconds"] > 0
    assert "| supervised (bone) | " in (root / "results.md").read_text()

    # resumed: nothing retrains; fused from other streams: only the missing stream trains, then it fuses again
    calls.clear()
    assert bench(data_file, root, *grid) == 0
    assert calls == []
    assert bench(data_file, root, *grid[:-1], "joint,bone,joint_motion") == 0
    assert calls == [["joint_motion"]]
    result = json.loads((cell / "result.json").read_text())
    assert list(result["late_fusion"]) == ["joint", "bone", "joint_motion"]
    # the same fusion by hand: ssmar eval --fuse takes any number of checkpoints, equal weights by default
    checkpoints = [str(cell / name / "latest.pt") for name in result["late_fusion"]]
    assert main(["eval", "--fuse", *checkpoints, "--out", str(tmp_path / "fused")]) == 0
    by_hand = json.loads((tmp_path / "fused" / "metrics.json").read_text())
    assert by_hand["weights"] == [1.0, 1.0, 1.0] and by_hand["fused"]["top1"] == pytest.approx(result["top1"])
    assert main(["eval", "--fuse", checkpoints[0]]) == 2


@pytest.mark.parametrize("args, message", [
    (["--methods", "supervised,nosuchmethod"], "unknown method 'nosuchmethod'"),
    (["--methods", "supervised", "--ratios", "0.1,1.5"], "labelled ratio 1.5 is outside (0, 1]"),
    (["--methods", "supervised", "--ratios", "0"], "labelled ratio 0 is outside (0, 1]"),
    (["--methods", ",", "--ratios", "0.1"], "the list of methods is empty"),
    (["--methods", "supervised", "--seeds", ""], "the list of seeds is empty"),
    (["--methods", "supervised", "--seeds", "zero"], "--seeds 'zero' is not a comma-separated list"),
    (["--methods", "supervised", "seed=3"], "override 'seed=3' is set per cell by the grid; use --seeds"),
    (["--methods", "supervised", "--jobs", "0"], "--jobs must be >= 1"),
    (["--methods", "supervised", "data.labels_per_class=2"], "data.labels_per_class=2 would replace"),
    (["--methods", "supervised", "--late-fusion", "joint"], "give 2 or more of joint, bone"),
    (["--methods", "supervised", "--late-fusion", "joint,elbow"], "give 2 or more of joint, bone"),
    (["--methods", "supervised", "--late-fusion", "joint,bone,joint"], "each at most once"),
])
def test_bad_input_fails_before_any_run(data_file, tmp_path, monkeypatch, capsys, args, message):
    calls = spy_run_training(monkeypatch)
    assert bench(data_file, tmp_path / "grid", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: bench: ") and message in err and err.count("\n") == 1
    assert calls == [] and not (tmp_path / "grid").exists()


def test_missing_data_file_and_empty_report(tmp_path, capsys):
    assert bench(tmp_path / "missing.pkl", tmp_path / "grid", "--methods", "supervised") == 2
    assert "data file not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["bench-report", str(tmp_path / "empty")]) == 2
    assert "no finished benchmark cells" in capsys.readouterr().err


def test_cell_directory_names():
    assert Cell("fixmatch", 0.1, 2).work_dir(Path("w")) == Path("w/fixmatch/ratio0.1/seed2")
    assert [c.ratio for c in plan_grid(["fullysupervised"], [0.1, 0.2], [0, 0])] == [1.0]
