"""What each graph backbone costs on this machine: ms per FixMatch step, parameters, MACs per clip.

Every backbone (ST-GCN, ST-GCN++, CTR-GCN) at its CPU width and its published width, with the joint
stream alone and with all four streams early-fused, measured side by side in one process on one thread.
A step is what ``ssmar train`` does per step (batch, weak and strong views, FixMatch's loss, backward,
optimiser, EMA) on UTD-MHAD (Kinect v1, 20 joints): 16 labelled + 32 unlabelled clips of 32 frames; the
figure is the median of ``--steps`` steps after ``--warmup``, wall time and the process's CPU time (the
machine's load average is recorded beside them). MACs are counted on one clip's forward pass
(``torch.utils.flop_counter``; MACs = FLOPs / 2).

    python benchmarks/backbone_cost.py --data data/utd_mhad.pkl --json benchmarks/results/backbone_cost.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ssmar.config import load_config
from ssmar.data.importers import import_utd_mhad
from ssmar.data.skeleton_format import save_skeleton_pickle
from ssmar.data.streams import STREAMS
from ssmar.engine.trainer import Trainer
from ssmar.models.skeleton import PUBLISHED_CHANNELS, PUBLISHED_STRIDES
from ssmar.runtime.io import save_json

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = (list(PUBLISHED_CHANNELS), list(PUBLISHED_STRIDES))
CPU = ([32, 64, 64, 128], [2, 1, 2, 1])  # the config's default layout, the CPU width of every backbone
BACKBONES = ("stgcn", "stgcnpp", "ctrgcn")
STREAM_SETS = {"joint": ["joint"], "all four": list(STREAMS)}


def step_ms(trainer: Trainer, steps: int, warmup: int) -> tuple[float, float]:
    """Median wall time and median CPU time of one training step, as the trainer's loop runs it. On one
    thread the CPU time is what the step costs when the machine's cores are shared (other processes stretch
    the wall time, not the CPU time)."""
    wall, cpu = [], []
    for index in range(warmup + steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        batch = trainer._make_batch()
        result = trainer.algorithm.train_step(batch)
        trainer.optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        trainer.optimizer.step()
        trainer.context.step += 1
        trainer.ema.update(trainer.model, trainer.context.step)
        if index >= warmup:
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def clip_macs(model: torch.nn.Module, frames: int, joints: int) -> int:
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(1, 3, frames, joints, 1))
    model.train()
    return counter.get_total_flops() // 2


def measure(data_file: Path, name: str, width: str, streams: list[str], steps: int, warmup: int) -> dict:
    channels, strides = PUBLISHED if width == "published" else CPU
    cfg = load_config(ROOT / "configs" / "utd_mhad.yaml", [
        f"data.file={data_file}", "data.frames=32", "algorithm.name=fixmatch", "train.batch_size=16",
        "train.uratio=2", "threads=1", "train.progress=false", f"model.name={name}",
        f"model.channels={channels}", f"model.strides={strides}", f"model.streams=[{','.join(streams)}]"])
    with tempfile.TemporaryDirectory() as scratch:
        torch.manual_seed(0)
        trainer = Trainer(cfg, Path(scratch))
        wall, cpu = step_ms(trainer, steps, warmup)
        return {"backbone": name, "width": width, "channels": channels, "strides": strides, "streams": streams,
                "ms_per_step": round(wall, 1), "cpu_ms_per_step": round(cpu, 1),
                "params": sum(p.numel() for p in trainer.model.parameters()),
                "macs_per_clip": clip_macs(trainer.model, 32, trainer.data.layout.num_joints),
                "load_average_1min": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="UTD-MHAD skeleton pickle (default: imported from "
                        "../shared/data/utd_mhad_skeleton into a temporary file)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        data_file = args.data
        if data_file is None:
            data_file = Path(scratch) / "utd.pkl"
            save_skeleton_pickle(import_utd_mhad(ROOT.parent / "shared" / "data" / "utd_mhad_skeleton"), data_file)
        rows = []
        for name in BACKBONES:
            for width in ("cpu", "published"):
                for streams in STREAM_SETS.values():
                    rows.append(measure(data_file, name, width, streams, args.steps, args.warmup))
                    row = rows[-1]
                    print(f"| {name} | {width} {row['channels']} | {'+'.join(streams)} | {row['ms_per_step']:.0f} | "
                          f"{row['cpu_ms_per_step']:.0f} | "
                          f"{row['params'] / 1e6:.3f} M | {row['macs_per_clip'] / 1e9:.3f} G |", flush=True)
    if args.json:
        save_json({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "machine": platform.processor() or platform.machine(), "threads": 1, "torch": torch.__version__,
                   "steps": args.steps, "warmup": args.warmup, "rows": rows}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
