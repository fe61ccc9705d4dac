"""Training entry points of the library: one run from a resolved config, and the re-evaluation of a
finished run. ``ssmar train`` and the benchmark grid call these; the CLI only parses arguments."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ssmar.config import load_config
from ssmar.engine.resolve import has_resolved_settings
from ssmar.engine.trainer import Trainer
from ssmar.errors import SsmarError
from ssmar.runtime import distributed


def resume_path(resume: str | None, work_dir: Path) -> Path | None:
    if resume is None:
        return None
    if resume == "auto":
        latest = work_dir / "latest.pt"
        return latest if latest.is_file() else None
    path = Path(resume)
    if not path.is_file():
        raise SsmarError(f"--resume {resume}: no such checkpoint; use --resume auto or a path to latest.pt")
    return path


def run_training(cfg: dict[str, Any], resume: str | None = None) -> dict[str, Any]:
    """Train (or resume) one run as configured; return the final metrics (on every DDP process)."""
    # Rank 0 decides (only its work dir is sure to hold latest.pt: it alone writes there), before
    # the data is loaded so that a wrong path fails fast; the process group starts with the Trainer.
    is_main = os.environ.get("RANK", "0") == "0"
    checkpoint = resume_path(resume, Path(cfg["work_dir"])) if is_main else None
    trainer = Trainer(cfg, Path(cfg["work_dir"]))
    checkpoint = distributed.broadcast_object(checkpoint)
    if checkpoint is not None:
        trainer.resume(checkpoint)
    if trainer.epoch >= int(trainer.cfg["train"]["epochs"]):  # a finished run: nothing to train, say what it got
        distributed.shutdown()
        final = finished_metrics(trainer.work_dir) if is_main else {}
        trainer.logger.info(f"{checkpoint} finished its {trainer.epoch} epochs already; nothing to train. "
                            "Its final metrics:")
        return final
    final = trainer.fit()
    distributed.shutdown()
    return final


def recorded_final(work_dir: Path) -> dict[str, Any] | None:
    """The final metrics in a run folder's ``metrics.json``, or None while the run is absent or unfinished
    (benchmark scripts use it to skip finished runs and to read their results)."""
    path = work_dir / "metrics.json"
    return json.loads(path.read_text()).get("final") or None if path.is_file() else None


def finished_metrics(work_dir: Path) -> dict[str, Any]:
    """The final metrics a finished run recorded in its ``metrics.json``."""
    path = work_dir / "metrics.json"
    try:
        final = json.loads(path.read_text()).get("final") or {}
    except (OSError, ValueError) as exc:
        raise SsmarError(f"{path} is unreadable ({exc}); evaluate the run's checkpoint with ssmar eval") from exc
    if not final:
        raise SsmarError(f"{work_dir}: latest.pt is at the end of training but metrics.json has no final metrics; "
                         "evaluate it with ssmar eval --checkpoint")
    return final


def rescore_run(run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Final metrics of a finished run as the current code evaluates them (e.g. after a change of
    inference rule), from its ``latest.pt`` and ``config.yaml`` plus ``overrides``: no training,
    and nothing in ``run_dir`` changes (the trainer works in a scratch directory)."""
    checkpoint = run_dir / "latest.pt"
    if not checkpoint.is_file() or not (run_dir / "config.yaml").is_file():
        raise SsmarError(f"{run_dir}: no latest.pt / config.yaml to rescore; train the run first")
    if not has_resolved_settings(yaml.safe_load((run_dir / "config.yaml").read_text()) or {}):
        print(f"warning: {run_dir}/config.yaml records no resolved settings (written before ssmar saved them); "
              "its params are completed with this version's defaults", file=sys.stderr)
    cfg = load_config(run_dir / "config.yaml", [*(overrides or []), "train.progress=false"])
    with tempfile.TemporaryDirectory() as scratch:
        cfg["work_dir"] = scratch
        trainer = Trainer(cfg, Path(scratch))
        trainer.resume(checkpoint)
        return trainer.evaluate()
