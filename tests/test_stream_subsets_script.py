"""benchmarks/stream_subsets.py on a tiny late-fusion grid: its prefixes reproduce the cells' own scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_benchmark

from ssmar.bench import format_mean_std
from ssmar.cli.main import main
from ssmar.data.skeleton_format import save_skeleton_pickle
from ssmar.data.synth import generate_synthetic
from ssmar.errors import SsmarError

TINY = ["train.epochs=1", "train.steps_per_epoch=3", "train.batch_size=4", "model.channels=[8,16]",
        "model.strides=[1,2]", "data.frames=16", "threads=1", "train.progress=false"]


def test_prefixes_of_the_chain_reproduce_each_stream_and_the_cells_fusion(tmp_path: Path) -> None:
    data = tmp_path / "tiny.pkl"
    save_skeleton_pickle(generate_synthetic(num_subjects=3, clips_per_class=1, test_subjects=1), data)
    root = tmp_path / "grid"
    assert main(["bench", "--data", str(data), "--work-dir", str(root), "--methods", "supervised", "--ratios", "0.5",
                 "--seeds", "0,1", "--late-fusion", "joint,bone,joint_motion", *TINY]) == 0
    cells = [json.loads((root / "supervised" / "ratio0.5" / f"seed{s}" / "result.json").read_text()) for s in (0, 1)]
    stream_subsets = load_benchmark("stream_subsets")
    out, plot = tmp_path / "streams.md", tmp_path / "streams.png"
    assert stream_subsets.main([str(root), "--chain", "bone", "joint", "joint_motion",
                                "--out", str(out), "--plot", str(plot)]) == 0
    rows = out.read_text().splitlines()[2:]
    assert [row.split(" | ")[2] for row in rows] == ["bone", "bone + joint", "bone + joint + joint_motion"]
    # the first prefix is the bone model alone; the whole chain is the cell's own fusion
    assert rows[0].split(" | ")[3] == format_mean_std([c["late_fusion"]["bone"] for c in cells])
    assert rows[2].split(" | ")[3] == format_mean_std([c["top1"] for c in cells])
    assert rows[0].split(" | ")[4] == "—" and rows[1].split(" | ")[4].count("[") == 1
    assert plot.stat().st_size > 0
    with pytest.raises(SsmarError, match="no run for stream\\(s\\) bone_motion"):
        stream_subsets.main([str(root), "--chain", "joint", "bone_motion"])
    with pytest.raises(SsmarError, match="no finished late-fusion cells"):
        stream_subsets.main([str(tmp_path / "empty")])
