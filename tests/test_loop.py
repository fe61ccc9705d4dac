"""The annotation loop: suggestion strategies, merging human labels, and the whole loop end to end
(unlabelled clips in -> train -> suggest -> label -> retrain -> report) on generated data."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_config
from ssmar.cli.main import main
from ssmar.data.labels import label_file
from ssmar.data.skeleton_format import load_skeleton_pickle, save_skeleton_pickle
from ssmar.engine.acquisition import rank_pool
from ssmar.engine.runs import run_training
from ssmar.errors import SsmarError

LOOP_RUN = ["algorithm.name=aplt", "algorithm.params.num_aug=1", "algorithm.params.warmup_epochs=0",
            "algorithm.params.period=1", "train.epochs=1", "train.steps_per_epoch=2", "data.labelled_ratio=1.0"]


def blobs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three tight clusters of 10 unit vectors (rows 0-9, 10-19, 20-29) plus one outlier per cluster
    (rows 30-32); labelled: one clip of the first cluster."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.eye(3, 8)
    near = centres.repeat_interleave(10, 0) + 0.05 * torch.randn(30, 8, generator=generator)
    far = centres + 0.6 * torch.randn(3, 8, generator=generator)
    pool = F.normalize(torch.cat([near, far]), dim=1)
    labelled = F.normalize(centres[:1] + 0.05 * torch.randn(1, 8, generator=generator), dim=1)
    return pool, labelled


def test_strategies_rank_as_they_promise() -> None:
    pool, labelled = blobs()
    probabilities = torch.full((33, 3), 0.1)
    probabilities[:, 0] = 0.8
    probabilities[7] = torch.tensor([0.34, 0.33, 0.33])  # the least sure clip
    uncertainty = rank_pool("uncertainty", pool, labelled, probabilities, budget=2)
    assert uncertainty.order[0] == 7 and uncertainty.margin[7] == pytest.approx(0.01, abs=1e-6)

    diversity = rank_pool("diversity", pool, labelled, probabilities, budget=3)
    assert all(position >= 10 for position in diversity.order), "k-centre leaves the labelled cluster alone"
    assert diversity.distance[diversity.order[0]] == diversity.distance.max()

    typical = rank_pool("typiclust", pool, labelled, probabilities, budget=2, seed=0)
    picked = set(typical.order.tolist())
    assert picked <= set(range(10, 30)), "typical clips of the two uncovered clusters, never an outlier"
    assert {position // 10 for position in picked} == {1, 2}

    first, again = (rank_pool("random", pool, labelled, probabilities, budget=5, seed=3).order for _ in range(2))
    other_seed = rank_pool("random", pool, labelled, probabilities, budget=5, seed=4).order
    assert first.tolist() == again.tolist() != other_seed.tolist()
    with pytest.raises(SsmarError, match=r"budget 34 is larger than the pool of 33 unlabelled clip\(s\); pass a "
                                         r"--budget from 1 to 33"):
        rank_pool("random", pool, labelled, probabilities, budget=34)


@pytest.fixture()
def partly_labelled(synth_file: Path, tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """The synthetic set with one labelled training clip per class; the other training labels become
    -1 (returned as the oracle's answers), as if nobody had labelled them yet."""
    data = load_skeleton_pickle(synth_file)
    train, seen, truth = set(data["split"]["train"]), set(), {}
    for ann in data["annotations"]:
        if ann["frame_dir"] in train:
            if ann["label"] in seen:
                truth[ann["frame_dir"]], ann["label"] = ann["label"], -1
            seen.add(ann["label"])
    path = tmp_path / "mine.pkl"
    save_skeleton_pickle(data, path)
    return path, truth


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.write_text("clip,label\n" + "".join(f"{clip},{label}\n" for clip, label in rows))


def test_label_merges_names_and_ids_atomically(partly_labelled: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    data_file, truth = partly_labelled
    names = load_skeleton_pickle(data_file)["class_names"]
    (first, label_a), (second, label_b) = list(truth.items())[:2]
    write_csv(tmp_path / "ok.csv", [(first, names[label_a]), (second, str(label_b)), (list(truth)[2], "")])
    change = label_file(data_file, tmp_path / "ok.csv")
    labels = {a["frame_dir"]: a["label"] for a in load_skeleton_pickle(data_file)["annotations"]}
    assert (labels[first], labels[second], labels[list(truth)[2]]) == (label_a, label_b, -1)
    assert (change.labelled, change.relabelled, change.still_unlabelled) == (2, 0, len(truth) - 2)

    before = data_file.read_bytes()
    other = (label_a + 1) % len(names)
    bad = {
        "unknown-clip": ([("ghost", names[0])], r"bad.csv line 2: clip 'ghost' is not in .*mine.pkl; use the clip"),
        "unknown-class": ([(first, "flying")], r"bad.csv line 2: unknown class 'flying'; use a class name of the file"),
        "duplicate": ([(second, "1"), (second, "1")], rf"line 3: clip '{second}' is listed again \(first on line 2\)"),
        "conflict": ([(second, "1"), (second, "2")], rf"line 3: clip '{second}' is labelled '{names[2]}' here but "
                                                     rf"'{names[1]}' on line 2; keep the right one"),
        "contradicts-file": ([(first, str(other))], rf"clip '{first}' already has label '{names[label_a]}' in .* and "
                                                    rf"the CSV says '{names[other]}'; fix the CSV, or pass --relabel"),
        "empty": ([(first, "")], r"has no row with a label"),
    }
    for rows, message in bad.values():
        write_csv(tmp_path / "bad.csv", rows)
        with pytest.raises(SsmarError, match=message):
            label_file(data_file, tmp_path / "bad.csv")
        assert data_file.read_bytes() == before, "nothing is written on a bad labels file"
    write_csv(tmp_path / "relabel.csv", [(first, str(other))])
    assert label_file(data_file, tmp_path / "relabel.csv", relabel=True).relabelled == 1


def write_video(path: Path, frames: int, fps: float) -> None:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (96, 96))
    for t in range(frames):
        writer.write(np.full((96, 96, 3), 40 + t % 100, np.uint8))
    writer.release()


def test_loop_end_to_end(partly_labelled: tuple[Path, dict[str, int]], tmp_path: Path,
                         capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("cv2")
    data_file, truth = partly_labelled
    data = load_skeleton_pickle(data_file)
    with_video = list(truth)[:2]  # two clips whose pose "came from" a video still on disk
    for ann in data["annotations"]:
        if ann["frame_dir"] in with_video:
            write_video(tmp_path / f"{ann['frame_dir']}.mp4", ann["keypoint"].shape[1], ann["fps"])
            ann["video"] = str(tmp_path / f"{ann['frame_dir']}.mp4")
    save_skeleton_pickle(data, data_file)

    run = tmp_path / "round0"
    run_training(tiny_config(data_file, run, *LOOP_RUN))
    assert json.loads((run / "split.json").read_text())["counts"] == {"labelled": 15, "unlabelled": len(truth)}

    budget = len(truth)  # every clip: the two with videos are among them, whatever the ranking
    assert main(["suggest", str(run), "--strategy", "diversity", "--budget", str(budget)]) == 0
    assert f"wrote {run / 'suggestions.csv'}: {budget} of {len(truth)} unlabelled clips" in capsys.readouterr().out
    with open(run / "suggestions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["rank"]) for r in rows] == list(range(1, budget + 1))
    assert sorted(r["clip"] for r in rows) == sorted(truth) and all(r["label"] == "" for r in rows)
    previews = {r["clip"]: r["preview"] for r in rows if r["preview"]}
    assert sorted(previews) == sorted(with_video) and all((run / p).is_file() for p in previews.values())

    # a person labels the top 15 (here: the oracle), the file is updated, the next round trains on 30 labels
    for row in rows[:15]:
        row["label"] = str(truth[row["clip"]])
    with open(tmp_path / "filled.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["label", str(data_file), str(tmp_path / "filled.csv")]) == 0
    assert "15 clip(s) newly labelled" in capsys.readouterr().out
    run_training(tiny_config(data_file, tmp_path / "round1", *LOOP_RUN))
    assert json.loads((tmp_path / "round1" / "split.json").read_text())["counts"]["labelled"] == 30

    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    for section in ("Result", "Settings", "Top-1 over training", "Confusion matrix", "Per-class accuracy",
                    "Pseudo-labels", "Suggested next labels"):
        assert f"<h2>{section}</h2>" in page
    code = json.loads((run / "metrics.json").read_text())["provenance"]["code"]
    version = code["commit"][:7] if code["commit"] else code["version"]
    assert f"<h1>ssmar run: aplt on mine.pkl, 25.0 % labelled, seed 0, code {version}" in page
    assert "<td>algorithm.params.logits_targets</td><td>&quot;offline&quot;</td>" in page
    assert page.count("data:image/png;base64,") >= 4 + len(with_video)
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "the page must load nothing from the network"
    assert "n/a" in page, "pseudo-label accuracy with no known hidden label is n/a"


def test_suggest_and_report_refuse_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(SsmarError, match=r"no latest.pt, so there is no trained run to suggest from"):
        main_raise(["suggest", str(tmp_path)])
    with pytest.raises(SsmarError, match=r"neither a finished run \(no metrics.json\) nor a benchmark grid"):
        main_raise(["report", str(tmp_path)])


def main_raise(argv: list[str]) -> None:
    """Run a command's handler directly, so its SsmarError reaches the test."""
    from ssmar.cli.main import build_parser

    args = build_parser().parse_args(argv)
    args.func(args)


def test_report_of_a_benchmark_grid(synth_file: Path, tmp_path: Path) -> None:
    root = tmp_path / "grid"
    assert main(["bench", "--data", str(synth_file), "--work-dir", str(root), "--methods", "supervised",
                 "--ratios", "0.2,0.5", "--seeds", "0", "train.epochs=1", "train.steps_per_epoch=2",
                 "model.channels=[8,16]", "model.strides=[1,2]", "data.frames=16", "train.batch_size=4",
                 "threads=1", "train.progress=false"]) == 0
    assert main(["report", str(root), "-o", str(tmp_path / "grid.html")]) == 0
    page = (tmp_path / "grid.html").read_text()
    assert "<h2>Result tables</h2>" in page and "<th>20%</th><th>50%</th>" in page
    assert page.count("<details><summary>supervised, ratio") == 2, "one folded run page per cell"
    assert "<h2>Accuracy vs labelled ratio</h2>\n<img alt=\"top-1 vs labelled ratio\"" in page
