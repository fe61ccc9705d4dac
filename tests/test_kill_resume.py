"""Kill and resume: a run SIGKILLed at a crash point (``SSMAR_FAULT``, see ssmar/runtime/faults.py)
and resumed with ``--resume`` ends bit-identical to an uninterrupted run (CPU is deterministic)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY_RUN

REPO = Path(__file__).resolve().parents[1]
# APLT covers every crash point: offline rounds open epochs 2 and 3 (warm-up 1, period 1);
# evaluation only at the end, so checkpoint writes are latest.pt of epochs 1 and 2, then best.pt, latest.pt.
RUN = [*TINY_RUN, "algorithm.name=aplt", "data.labelled_ratio=0.3", "train.epochs=3", "train.steps_per_epoch=3",
       "train.eval_every=3", "algorithm.params.warmup_epochs=1", "algorithm.params.period=1",
       "algorithm.params.p_cutoff=0.1"]


def train(work_dir: Path, data_file: Path, *options: str, fault: str | None = None) -> subprocess.CompletedProcess:
    """``ssmar train`` in a child process, so that SIGKILL is real."""
    env = {key: value for key, value in os.environ.items() if key != "SSMAR_FAULT"}
    env["OMP_NUM_THREADS"] = "1"
    if fault:
        env["SSMAR_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "ssmar.cli.main", "train", "--work-dir", str(work_dir),
                           f"data.file={data_file}", *RUN, *options],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def outcome(work_dir: Path) -> tuple[dict, dict]:
    """What must not depend on the kill: the metrics (minus wall-clock time) and the final checkpoint."""
    metrics = json.loads((work_dir / "metrics.json").read_text())
    history = [{k: v for k, v in record.items() if k != "time"} for record in metrics["history"]]
    state = torch.load(work_dir / "latest.pt", map_location="cpu", weights_only=False)
    return {"history": history, "final": metrics["final"], "best": metrics["best"]}, state


@pytest.fixture(scope="module")
def uninterrupted(synth_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work_dir = tmp_path_factory.mktemp("uninterrupted")
    done = train(work_dir, synth_file)
    assert done.returncode == 0, done.stderr
    return work_dir


@pytest.mark.parametrize("fault, survivor_epoch", [
    ("step:5", 1),  # mid-epoch 2: the partial epoch is lost and redone from epoch 1's checkpoint
    ("offline:2", 2),  # APLT's second offline round, between its feature bank and its clustering
    ("checkpoint_write:2", 1),  # in the temp file of epoch 2's latest.pt: epoch 1's must survive intact
])
def test_killed_run_resumes_to_the_uninterrupted_result(fault: str, survivor_epoch: int, synth_file: Path,
                                                        uninterrupted: Path, tmp_path: Path) -> None:
    killed = train(tmp_path, synth_file, fault=fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    survivor = torch.load(tmp_path / "latest.pt", map_location="cpu", weights_only=False)  # never half-written
    assert survivor["epoch"] == survivor_epoch
    if fault.startswith("checkpoint_write"):
        assert list(tmp_path.glob(".latest.pt.*.tmp")), "the kill cut a temp file short"

    resumed = train(tmp_path, synth_file, "--resume")  # no value: auto, WORK_DIR/latest.pt
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {tmp_path / 'latest.pt'} at epoch {survivor_epoch}" in resumed.stderr
    assert not list(tmp_path.glob(".*.tmp")), "stale temp files are cleaned up on restart"
    (metrics, state), (expected_metrics, expected) = outcome(tmp_path), outcome(uninterrupted)
    assert metrics == expected_metrics
    for part in ("model", "ema"):
        for key, value in expected[part].items():
            assert torch.equal(state[part][key], value), f"{part}.{key}"
    assert state["algorithm"]["round"] == expected["algorithm"]["round"] == 2
    for key in ("prototypes", "train_prototypes", "pseudo_labels", "pseudo_keep", "pseudo_weight"):
        assert torch.equal(state["algorithm"][key], expected["algorithm"][key]), key
    assert state["rng"]["augment"].equal(expected["rng"]["augment"])
