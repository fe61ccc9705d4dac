"""benchmarks/annotation_loop.py on generated data: the simulated labelling rounds, their cache, and the
refusal to mix cells trained with other settings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import TINY_RUN, load_benchmark
from ssmar.data.skeleton_format import load_skeleton_pickle

def test_rounds_add_the_strategy_picks_and_rerun_reads_the_cache(synth_file: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    loop = load_benchmark("annotation_loop")
    argv = ["--data", str(synth_file), "--methods", "supervised", "--strategies", "random,typiclust",
            "--seeds", "0", "--rounds", "2", "--budget", "3", "--work-dir", str(tmp_path / "loop"),
            *TINY_RUN, "train.epochs=1", "train.steps_per_epoch=1"]
    assert loop.main(argv) == 0
    rows = list(csv.DictReader((tmp_path / "loop" / "results.csv").open()))
    num_classes = len(load_skeleton_pickle(synth_file)["class_names"])
    assert sorted((r["strategy"], int(r["round"]), int(r["labelled"])) for r in rows) == sorted(
        (strategy, round_, num_classes + 3 * round_) for strategy in ("random", "typiclust") for round_ in range(3))
    start = json.loads((tmp_path / "loop/supervised/start/seed0/round0/cell.json").read_text())
    first = json.loads((tmp_path / "loop/supervised/typiclust/seed0/round1/cell.json").read_text())
    assert first["labelled_clips"] == start["labelled_clips"] + start["picks"]["typiclust"]
    assert not set(start["picks"]["typiclust"]) & set(start["labelled_clips"])  # suggestions come from the pool
    capsys.readouterr()

    assert loop.main(argv) == 0  # every cell cached: same table, nothing retrained
    assert list(csv.DictReader((tmp_path / "loop" / "results.csv").open())) == rows
    more = [*argv, "--seeds", "0,1", "--tables-only"]  # seed 1 never ran: left out, not trained
    assert loop.main(more) == 0 and not (tmp_path / "loop/supervised/start/seed1").exists()
    assert list(csv.DictReader((tmp_path / "loop" / "results.csv").open())) == rows
    assert loop.main([*argv, "train.epochs=2"]) == 2  # other settings never reuse these cells
    assert "use another --work-dir" in capsys.readouterr().err
