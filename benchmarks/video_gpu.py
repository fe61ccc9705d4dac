"""TSM-ResNet + APLT training throughput on one GPU: fp32 against bf16 autocast (and channels-last).

The clips are synthetic (random tensors held on the training device, no video decoding),
so the numbers are the cost of the model, the batched augmentations and APLT alone. Each
mode builds a fresh :class:`ssmar.engine.trainer.Trainer` and times, separately, one APLT
offline round (feature bank of every clip, semi-supervised k-means, screening) and one
epoch of ``ceil(clips / batch)`` training steps after a few untimed warm-up steps (cuDNN
autotuning). If the first mode runs out of memory the batch is halved until it fits, and
every mode then uses that batch. Prints a Markdown table and writes
``benchmarks/results/video_gpu.json`` (or ``--out``).

    .venv/bin/python benchmarks/video_gpu.py                        # GPU: TSM-R50, 8 x 224 x 224
    .venv/bin/python benchmarks/video_gpu.py --device cpu --tiny    # smoke test of the script
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ssmar.config import load_config
from ssmar.data.splits import make_ssl_split
from ssmar.data.types import ClipSet, PreparedData
from ssmar.engine.trainer import Trainer
from ssmar.runtime.io import save_json

RESULTS = Path(__file__).parent / "results" / "video_gpu.json"
MODES = {  # name: (train.amp, train.channels_last)
    "fp32": (False, False),
    "bf16": (True, False),
    "bf16_cl": (True, True),
}
TINY = {"clips": 16, "batch": 2, "segments": 2, "resolution": 32, "depth": 18, "classes": 4, "warmup_steps": 1}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (CPU smoke test): " + str(TINY))
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8, help="labelled clips per step (halved on OOM)")
    parser.add_argument("--uratio", type=int, default=2)
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--classes", type=int, default=52)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {list(MODES)}")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.tiny:
        for key, value in TINY.items():
            setattr(args, key, value)
    unknown = set(args.modes.split(",")) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {sorted(unknown)}; choose from {list(MODES)}")
    return args


def synthetic_data(args: argparse.Namespace, device: torch.device) -> PreparedData:
    """Random clips on ``device`` with every class present; 10 % labelled (at least one per class)."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(args.clips) % args.classes
    labels = labels[torch.randperm(args.clips, generator=generator)]
    clips = torch.rand(args.clips, 3, args.segments, args.resolution, args.resolution, device=device)
    names = [f"clip{i:05d}" for i in range(args.clips)]
    labelled, unlabelled = make_ssl_split(labels.numpy(), seed=0, ratio=0.1)
    train = ClipSet(clips, labels, names)
    return PreparedData(train=train, labelled=torch.from_numpy(labelled), unlabelled=torch.from_numpy(unlabelled),
                        evaluation=train, class_names=[f"class_{i}" for i in range(args.classes)], layout=None,
                        info={"source": "synthetic"})


def make_trainer(args: argparse.Namespace, mode: str, batch: int, data: PreparedData, work_dir: Path) -> Trainer:
    amp, channels_last = MODES[mode]
    cfg = load_config(None, [
        "data.type=video", f"data.segments={args.segments}", f"data.resolution={args.resolution}",
        "model.name=tsm_resnet", f"model.depth={args.depth}", "algorithm.name=aplt",
        "algorithm.params.warmup_epochs=0", f"algorithm.params.bank_batch_size={4 * batch}",
        f"train.batch_size={batch}", f"train.uratio={args.uratio}", "train.epochs=2", "train.lr=0.01",
        f"train.amp={amp}", f"train.channels_last={channels_last}", "train.progress=false",
        f"device={args.device}", f"work_dir={work_dir}"])
    return Trainer(cfg, work_dir, data=data)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_mode(args: argparse.Namespace, mode: str, batch: int, data: PreparedData, device: torch.device) -> dict:
    """Offline round, warm-up steps, then one timed epoch; the row of the results table."""
    steps = math.ceil(args.clips / batch)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory(prefix=f"video_gpu_{mode}_") as work_dir:
        trainer = make_trainer(args, mode, batch, data, Path(work_dir))
        synchronize(device)
        started = time.perf_counter()
        trainer.algorithm.on_epoch_start(0)  # APLT offline round: feature bank, k-means, prototypes
        synchronize(device)
        offline_s = time.perf_counter() - started
        trainer.steps_per_epoch = args.warmup_steps
        trainer._train_epoch(None)
        trainer.steps_per_epoch = steps
        synchronize(device)
        started = time.perf_counter()
        record = trainer._train_epoch(None)
        synchronize(device)
        epoch_s = time.perf_counter() - started
    clips_per_step = batch * (1 + args.uratio)
    return {"mode": mode, "amp": trainer.amp, "channels_last": MODES[mode][1] and device.type == "cuda",
            "batch": batch, "steps": steps, "offline_round_s": round(offline_s, 3), "epoch_s": round(epoch_s, 3),
            "step_ms": round(1000 * epoch_s / steps, 1), "clips_per_s": round(clips_per_step * steps / epoch_s, 2),
            "frames_per_s": round(clips_per_step * args.segments * steps / epoch_s, 1),
            "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            if device.type == "cuda" else None,
            "final_loss": round(record["loss"], 4)}


def run_with_fitting_batch(args: argparse.Namespace, mode: str, batch: int, data: PreparedData,
                           device: torch.device, shrink: bool) -> tuple[dict | None, int]:
    """``run_mode``, halving the batch on CUDA OOM while ``shrink``; (row or None, batch used)."""
    while True:
        try:
            return run_mode(args, mode, batch, data, device), batch
        except torch.cuda.OutOfMemoryError:
            pass  # leave the except block first, so the traceback's references to GPU tensors go
        gc.collect()
        torch.cuda.empty_cache()
        if not shrink or batch == 1:
            print(f"{mode}: out of GPU memory at batch {batch}", file=sys.stderr)
            return None, batch
        batch //= 2
        print(f"{mode}: out of GPU memory; retrying with batch {batch}", file=sys.stderr)


def markdown(rows: list[dict]) -> str:
    base = next((r["clips_per_s"] for r in rows if r.get("mode") == "fp32" and "error" not in r), None)
    lines = ["| mode | batch | steps | offline round (s) | epoch (s) | step (ms) | clips/s | frames/s | speed-up "
             "| peak GPU mem (GiB) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['mode']} | {r['batch']} | – | – | – | – | {r['error']} | – | – | – |")
            continue
        speedup = f"{r['clips_per_s'] / base:.2f}x" if base else "–"
        memory = r["peak_gpu_mem_gib"] if r["peak_gpu_mem_gib"] is not None else "–"
        lines.append(f"| {r['mode']} | {r['batch']} | {r['steps']} | {r['offline_round_s']} | {r['epoch_s']} | "
                     f"{r['step_ms']} | {r['clips_per_s']} | {r['frames_per_s']} | {speedup} | {memory} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            print("error: CUDA is not available here; run with --device cpu --tiny for a smoke test", file=sys.stderr)
            return 2
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
    data = synthetic_data(args, device)
    rows: list[dict[str, Any]] = []
    batch, fitted = args.batch, False
    for mode in args.modes.split(","):
        row, batch = run_with_fitting_batch(args, mode, batch, data, device, shrink=not fitted)
        fitted = fitted or row is not None
        rows.append(row or {"mode": mode, "batch": batch, "error": "OOM"})
        print(f"{mode}: {row or 'OOM'}", file=sys.stderr)
    environment = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
                   or platform.machine(), "torch": torch.__version__, "python": platform.python_version(),
                   "cudnn_benchmark": torch.backends.cudnn.benchmark,
                   "tf32_conv": torch.backends.cudnn.allow_tf32, "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}
    setup = {k: getattr(args, k) for k in ("clips", "uratio", "segments", "resolution", "depth", "classes",
                                           "warmup_steps", "tiny")}
    table = markdown(rows)
    print(f"TSM-ResNet-{args.depth} + APLT, {args.clips} synthetic clips of {args.segments} x {args.resolution}^2, "
          f"uratio {args.uratio}, on {environment['device']} (torch {torch.__version__})\n")
    print(table)
    save_json({"setup": setup, "environment": environment, "rows": rows, "table": table}, args.out)
    print(f"\nwritten to {args.out}")
    return 0 if any("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
