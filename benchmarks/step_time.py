"""Where a training step's time goes: batching, augmentation, the model, the EMA, evaluation.

Builds the trainer of a config exactly as ``ssmar train`` does and times each part of one
FixMatch-shaped step (B labelled + μB unlabelled clips, weak and strong views) on one CPU
thread, then one evaluation pass. Used to size the demo budget (BENCHMARKS.md §3): cut what
is not the model, then make the model cheap.

    python benchmarks/step_time.py -c configs/synth.yaml data.file=data/synth.pkl [key=value ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from ssmar.config import load_config
from ssmar.engine.trainer import Trainer


def milliseconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: allocator, kernels
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", "-c", required=True)
    parser.add_argument("--algorithm", default="fixmatch")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_intermixed_args(argv)
    cfg = load_config(args.config, [f"algorithm.name={args.algorithm}", "threads=1", "train.progress=false",
                                    *args.overrides])
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(cfg, Path(scratch))
        ctx, algorithm = trainer.context, trainer.algorithm
        labelled, unlabelled = trainer.labelled_sampler.next(), trainer.unlabelled_sampler.next()
        raw = ctx.clips(unlabelled)
        batch = trainer._make_batch()

        def step() -> None:
            result = algorithm.train_step(batch)
            trainer.optimizer.zero_grad()
            result.loss.backward()
            trainer.optimizer.step()

        parts = {
            "load clips (index the encoded tensors)": milliseconds(lambda: (ctx.clips(labelled), ctx.clips(unlabelled)),
                                                                   args.repeats),
            "weak augmentation (unlabelled batch)": milliseconds(lambda: ctx.weak_augment(raw, trainer.generator),
                                                                 args.repeats),
            "strong augmentation (unlabelled batch)": milliseconds(lambda: ctx.strong_augment(raw, trainer.generator),
                                                                   args.repeats),
            "whole batch (sampling, loading, all views)": milliseconds(trainer._make_batch, args.repeats),
            "model: forward + backward + optimiser step": milliseconds(step, max(2, args.repeats // 2)),
            "EMA update": milliseconds(lambda: trainer.ema.update(trainer.model, 1), args.repeats),
        }
        evaluation = milliseconds(trainer.evaluate, 2)
    clips = sum(len(view) for view in (batch.x_lb, batch.x_ulb_weak, batch.x_ulb_strong)
                if view is not None) + (len(batch.x_lb_strong) if batch.x_lb_strong is not None else 0)
    step_total = parts["whole batch (sampling, loading, all views)"] + parts["model: forward + backward + optimiser step"] \
        + parts["EMA update"]
    print(f"| part ({args.algorithm}, {clips} clips per step, {cfg['data']['frames']} frames, "
          f"channels {cfg['model']['channels']}, 1 thread) | ms | share of a step |")
    print("|---|---:|---:|")
    for name, value in parts.items():
        share = f"{100 * value / step_total:.1f} %" if not name.startswith(("load", "weak", "strong")) else "(in batch)"
        print(f"| {name} | {value:.1f} | {share} |")
    print(f"| one evaluation pass ({len(trainer.data.evaluation.clips)} clips) | {evaluation:.0f} | — |")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    raise SystemExit(main())
