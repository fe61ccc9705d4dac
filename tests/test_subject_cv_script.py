"""benchmarks/subject_cv.py on finished run folders: nothing is retrained, folds are pooled and paired."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import load_benchmark


def finished_run(directory: Path, top1: float, clips: int) -> None:
    directory.mkdir(parents=True)
    (directory / "metrics.json").write_text(json.dumps({"final": {"top1": top1, "num_samples": clips}}))


def test_folds_are_pooled_by_clip_and_paired_by_subject(tmp_path: Path) -> None:
    subject_cv = load_benchmark("subject_cv")
    root = tmp_path / "cv"
    # two subjects with 100 and 50 held-out clips; the variant wins 2 points on one, 4 on the other
    for name, (first, second) in {"base": (90.0, 80.0), "smooth": (92.0, 84.0)}.items():
        finished_run(subject_cv.run_dir(root, name, 0, 1), first, 100)
        finished_run(subject_cv.run_dir(root, name, 0, 3), second, 50)
    out, plot = tmp_path / "cv.md", tmp_path / "cv.png"
    # every run is finished, so no training starts (the config need not even exist)
    assert subject_cv.main([str(tmp_path / "absent.yaml"), str(root), "--subjects", "1", "3",
                            "--variant", "base", "--variant", "smooth", "train.label_smoothing=0.1",
                            "--out", str(out), "--plot", str(plot)]) == 0
    lines = out.read_text().splitlines()
    assert lines[2] == "| base | — | 90.00 | 80.00 | 86.67 (130/150) | — |"
    assert lines[3].startswith("| smooth | `train.label_smoothing=0.1` | 92.00 | 84.00 | 89.33 (134/150) | +3.00 [")
    assert plot.stat().st_size > 0


def test_a_fusion_is_a_row_scored_fold_by_fold(tmp_path: Path) -> None:
    subject_cv = load_benchmark("subject_cv")
    root = tmp_path / "cv"
    for name in ("base", "bone"):
        finished_run(subject_cv.run_dir(root, name, 0, 1), 90.0, 100)
    cache = root / "fused" / "base+bone" / "seed0_val1.json"  # what an earlier call's fusion left
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({"top1": 95.0, "num_samples": 100}))
    out = tmp_path / "cv.md"
    subject_cv.main([str(tmp_path / "absent.yaml"), str(root), "--subjects", "1", "--variant", "base",
                     "--variant", "bone", "model.streams=[bone]", "--fuse", "late", "base", "bone", "--out", str(out)])
    assert out.read_text().splitlines()[4] == "| late | `late fusion: base + bone` | 95.00 | 95.00 (95/100) | +5.00 (n=1) |"


def test_an_unfinished_run_is_not_read_as_a_result(tmp_path: Path) -> None:
    subject_cv = load_benchmark("subject_cv")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"history": [{"epoch": 5}]}))
    assert subject_cv.recorded_final(tmp_path / "run") is None
    assert subject_cv.recorded_final(tmp_path / "absent") is None
