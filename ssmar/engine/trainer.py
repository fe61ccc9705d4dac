"""The training loop, in plain PyTorch.

One loop serves every algorithm: separate samplers draw labelled and unlabelled
batches, augmentation runs batched on the device, the algorithm turns the batch into a
loss, and the engine steps the optimiser, the schedule and the EMA copy. Each epoch it
evaluates the EMA model, logs to text/TensorBoard/``metrics.json`` and writes an atomic
checkpoint holding everything needed to resume bit-exactly on CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from ssmar.algorithms import algorithm_class
from ssmar.algorithms.base import Algorithm, Batch, StepResult
from ssmar.algorithms.context import Augment, TrainContext
from ssmar.config import dump_config
from ssmar.data.samplers import InfiniteSampler
from ssmar.data.splits import short_classes
from ssmar.data.types import PreparedData
from ssmar.engine.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, plain_state, resolve_device
from ssmar.engine.ema import ModelEMA
from ssmar.engine.evaluate import predict_scores
from ssmar.engine.inputs import build_augmentations, prepare_data
from ssmar.engine.metrics import classification_metrics, save_confusion
from ssmar.engine.resolve import PROVENANCE_KEY, resolve_run, run_provenance
from ssmar.engine.schedule import build_optimizer, plan_budget, warmup_cosine
from ssmar.errors import SsmarError
from ssmar.models import build_model
from ssmar.runtime import distributed, faults
from ssmar.runtime.io import save_json, save_text, save_torch


TIMED_STEPS = 3  # steps the time estimate is measured over


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_logger(work_dir: Path, is_main: bool) -> logging.Logger:
    logger = logging.getLogger(f"ssmar.run.{work_dir.resolve()}")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if is_main:
        formatter = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
        for handler in (logging.FileHandler(work_dir / "log.txt"), logging.StreamHandler(sys.stderr)):
            handler.setFormatter(formatter)
            logger.addHandler(handler)
    return logger


class PseudoLabelMeter:
    """Pseudo-label quality of one epoch, against the hidden labels of the unlabelled split.

    ``mask`` is a per-sample weight: coverage is its mean over every unlabelled clip, accuracy the
    weighted share of correct pseudo-labels among the clips whose labels are known (label >= 0;
    ``None`` when there are none: clips nobody has labelled cannot score it); per class by the
    hidden (true) class.
    """

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.weight = torch.zeros(num_classes, dtype=torch.float64)
        self.correct = torch.zeros(num_classes, dtype=torch.float64)
        self.count = torch.zeros(num_classes, dtype=torch.float64)
        self.overall = torch.zeros(2, dtype=torch.float64)  # mask weight and clips, known labels or not

    def add(self, pseudo: torch.Tensor, mask: torch.Tensor, true: torch.Tensor) -> None:
        pseudo, mask, true = pseudo.detach().cpu(), mask.detach().float().cpu().double(), true.cpu()
        self.overall += torch.stack([mask.sum(), mask.new_tensor(float(len(mask)))])
        known = true >= 0
        pseudo, mask, true = pseudo[known], mask[known], true[known]
        self.count += torch.bincount(true, minlength=self.num_classes).double()
        self.weight += torch.bincount(true, weights=mask, minlength=self.num_classes)
        self.correct += torch.bincount(true, weights=mask * (pseudo == true).double(), minlength=self.num_classes)

    def summary(self) -> dict[str, Any]:
        for tensor in (self.weight, self.correct, self.count, self.overall):
            distributed.all_reduce_sum(tensor)
        if self.overall[1] == 0:
            return {}
        per_class_cov = torch.where(self.count > 0, self.weight / self.count.clamp(min=1), torch.nan)
        per_class_acc = torch.where(self.weight > 0, self.correct / self.weight.clamp(min=1e-12), torch.nan)
        coverage = float(self.overall[0] / self.overall[1])
        return {
            "mask_ratio": coverage,
            "pl_acc": float(self.correct.sum() / self.weight.sum()) if self.weight.sum() > 0 else None,
            "pl_coverage": coverage,
            "pl_known_labels": float(self.count.sum() / self.overall[1]),  # share of clips pl_acc is measured on
            "pl_per_class_acc": [None if torch.isnan(v) else float(v) for v in per_class_acc],
            "pl_per_class_coverage": [None if torch.isnan(v) else float(v) for v in per_class_cov],
        }


class Trainer:
    def __init__(self, cfg: dict[str, Any], work_dir: Path, data: PreparedData | None = None):
        """``data`` replaces loading ``cfg['data']`` (benchmarks pass in-memory synthetic clips). The run
        works on the resolved copy of ``cfg`` (:func:`~ssmar.engine.resolve.resolve_run`): the run's own
        settings (e.g. every label for an all-label method) never reach the caller's."""
        # resolved and checked once, before anything is written: a bad value costs one error line and no file
        cfg = self.cfg = resolve_run(cfg)
        self.work_dir = Path(work_dir)
        self.algorithm_cls = algorithm_class(cfg["algorithm"]["name"])
        self.dist = distributed.init_distributed(cfg["device"])
        device = cfg["device"]
        if device.startswith("cuda") and self.dist.world_size > 1:
            device = f"cuda:{self.dist.local_rank}"
        self.device = resolve_device(device)
        if self.device.type == "cuda":
            if self.device.index is None:  # plain "cuda": the current device, so set_device gets an index
                self.device = torch.device("cuda", torch.cuda.current_device())
            torch.cuda.set_device(self.device)
        if cfg["threads"]:
            torch.set_num_threads(int(cfg["threads"]))
        if self.dist.is_main:  # only rank 0 writes files
            try:
                self.work_dir.mkdir(parents=True, exist_ok=True)
                probe = self.work_dir / ".write_test"
                probe.write_text("")
                probe.unlink()
            except OSError as exc:
                raise SsmarError(f"work dir {self.work_dir} is not writable ({exc.strerror}); "
                                 "pass a writable --work-dir") from exc
            for stale in self.work_dir.glob(".*.tmp"):  # left by a write that a crash (SIGKILL) cut short
                stale.unlink(missing_ok=True)
        self.logger = make_logger(self.work_dir, self.dist.is_main)
        seed_everything(cfg["seed"])
        torch.use_deterministic_algorithms(self.device.type == "cpu", warn_only=True)

        self.data: PreparedData = data if data is not None else prepare_data(cfg, self.work_dir, seed=cfg["seed"],
                                                                             write_split=self.dist.is_main)
        if self.dist.world_size > 1:  # every process trains on rank 0's partition (its split.json)
            self.data.labelled, self.data.unlabelled, self.data.unlabelled_pool = distributed.broadcast_object(
                (self.data.labelled, self.data.unlabelled, self.data.unlabelled_pool))
        if self.algorithm_cls.uses_unlabelled and len(self.data.unlabelled) == 0:
            raise SsmarError(f"{cfg['algorithm']['name']} needs unlabelled clips but the split has none; "
                             "lower data.labelled_ratio")

        train_cfg = cfg["train"]
        in_channels = self.data.train.clips.shape[1]
        self.model = build_model(cfg["model"], self.data.num_classes, self.data.layout, in_channels).to(self.device)
        if train_cfg["sync_bn"] and self.dist.world_size > 1:
            self.model = distributed.convert_sync_batchnorm(self.model)
        # bfloat16 autocast needs no GradScaler (fp32's exponent range); both options are CUDA-only.
        on_cuda = self.device.type == "cuda"
        self.amp = bool(train_cfg["amp"]) and on_cuda
        if train_cfg["channels_last"] and on_cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
        if (train_cfg["amp"] or train_cfg["channels_last"]) and not on_cuda:
            self.logger.info("train.amp / train.channels_last apply on CUDA only; ignored on this device")
        self.ema = ModelEMA(self.model, train_cfg["ema"])
        self.optimizer = build_optimizer(self.model, train_cfg)
        self.budget = plan_budget(train_cfg, len(self.data.train.labels))
        self.steps_per_epoch, self.total_steps = self.budget.steps_per_epoch, self.budget.total_steps
        self.provenance = run_provenance(cfg, self.budget)
        self.scheduler = warmup_cosine(self.optimizer, int(train_cfg["warmup_epochs"]) * self.steps_per_epoch,
                                       self.total_steps)
        self.train_model: nn.Module = self.model
        if self.dist.world_size > 1:
            self.train_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

        # One augmentation stream shared by all processes (see _augment): one state to checkpoint.
        self.generator = torch.Generator().manual_seed(cfg["seed"] * 7919)
        weak, strong = build_augmentations(cfg, self.data.channels)
        self.context = TrainContext(
            device=self.device, data=self.data, work_dir=self.work_dir,
            weak_augment=weak, strong_augment=strong,
            generator=self.generator, ema_model=self.ema.module, dist=self.dist, logger=self.logger,
            seed=int(cfg["seed"]), steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps,
            unsup_rampup=float(train_cfg["unsup_rampup"]), label_smoothing=float(train_cfg["label_smoothing"]),
            progress=bool(train_cfg["progress"]) and self.dist.is_main)
        self.algorithm: Algorithm = self.algorithm_cls(self.train_model, self.data.num_classes,
                                                       dict(cfg["algorithm"]["params"] or {}), self.context)
        batch = int(train_cfg["batch_size"])
        if batch % self.dist.world_size:
            raise SsmarError(f"train.batch_size={batch} is the global batch and must split evenly over "
                             f"{self.dist.world_size} processes; use a multiple of {self.dist.world_size}")
        self.labelled_sampler = InfiniteSampler(self.data.labelled, batch, seed=cfg["seed"],
                                                rank=self.dist.rank, world_size=self.dist.world_size)
        self.unlabelled_sampler = None
        if self.algorithm_cls.uses_unlabelled:
            self.unlabelled_sampler = InfiniteSampler(self.data.unlabelled_pool, batch * int(train_cfg["uratio"]), seed=cfg["seed"] + 1,
                                                      rank=self.dist.rank, world_size=self.dist.world_size)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}
        self.elapsed = 0.0
        self.writer = None
        self._first_step, self._clock = 0, 0.0  # for the time estimate: fit() restarts it where it begins

    # ----------------------------------------------------------------- checkpoints
    def _model_meta(self) -> dict[str, Any]:
        """What inference needs to rebuild the model and preprocess new clips."""
        return {"model": self.cfg["model"], "num_classes": self.data.num_classes,
                "class_names": self.data.class_names,
                "layout": dataclasses.asdict(self.data.layout) if self.data.layout is not None else None,
                "in_channels": int(self.data.train.clips.shape[1]), "channels": self.data.channels,
                "algorithm": self.cfg["algorithm"]["name"],
                "frames": self.cfg["data"]["frames"], "max_persons": self.cfg["data"]["max_persons"],
                "body_map": self.data.body_map, "body_names": self.data.body_names}

    def checkpoint_state(self) -> dict[str, Any]:
        return plain_state({
            "format": CHECKPOINT_FORMAT, "config": self.cfg, PROVENANCE_KEY: self.provenance,
            "meta": self._model_meta(),
            "epoch": self.epoch, "step": self.context.step, "elapsed": self.elapsed,
            "model": self.model.state_dict(), "ema": self.ema.module.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "labelled_sampler": self.labelled_sampler.state_dict(),
            "unlabelled_sampler": self.unlabelled_sampler.state_dict() if self.unlabelled_sampler else None,
            "algorithm": self.algorithm.state_dict(), "history": self.history, "best": self.best,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "augment": self.generator.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        })

    def resume(self, path: Path | None) -> None:
        """Continue from checkpoint ``path``. Under DDP only rank 0 reads it (other ranks pass any
        value, e.g. None) and sends the state to the others, so their work dirs need no copy."""
        state = distributed.broadcast_object(load_checkpoint(path) if self.dist.is_main else None)
        meta = state["meta"]
        saved = {**{f"model.{k}": v for k, v in meta["model"].items()}, "classes": meta["num_classes"]}
        wanted = {**{f"model.{k}": v for k, v in self.cfg["model"].items()}, "classes": self.data.num_classes}
        differ = [f"{key}={saved.get(key)!r} (this run: {wanted.get(key)!r})"
                  for key in sorted(saved.keys() | wanted.keys()) if saved.get(key) != wanted.get(key)]
        if differ:
            raise SsmarError(f"{path} holds a different model: {', '.join(differ)}; resume with the config it was "
                             "trained with, or train from scratch in a new --work-dir")
        self.model.load_state_dict(state["model"])
        self.ema.module.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.labelled_sampler.load_state_dict(state["labelled_sampler"])
        if self.unlabelled_sampler is not None:
            self.unlabelled_sampler.load_state_dict(state["unlabelled_sampler"])
        self.algorithm.load_state_dict(state["algorithm"])
        self.epoch, self.context.step = state["epoch"], state["step"]
        self.history, self.best, self.elapsed = state["history"], state["best"], state["elapsed"]
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        generator, keys, *position = rng["numpy"]  # keys: a tensor (plain_state) or, in older checkpoints, an array
        np.random.set_state((generator, np.asarray(keys, dtype=np.uint32), *position))
        random.setstate(rng["python"])
        self.generator.set_state(rng["augment"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.logger.info(f"resumed from {path} at epoch {self.epoch} (step {self.context.step})")

    # ----------------------------------------------------------------- loop
    def _augment(self, augment: Augment, clips: torch.Tensor) -> torch.Tensor:
        """``augment`` this process's slice of the global batch as if the whole batch were augmented.

        Augmentations draw per-sample parameters in batch order from a generator shared by all
        processes, and the number of draws depends on the batch shape only. Each process
        therefore augments a global-batch-shaped tensor holding its clips in its slice (zeros,
        never loaded, elsewhere) and keeps its slice: every clip gets the parameters it gets in
        one process (parity), and all processes end with the same generator state (resume).
        """
        world, rank = self.dist.world_size, self.dist.rank
        if world == 1:
            return augment(clips, self.generator)
        mine = slice(rank * len(clips), (rank + 1) * len(clips))
        full = clips.new_zeros((world * len(clips), *clips.shape[1:]))
        full[mine] = clips
        return augment(full, self.generator)[mine]

    def _make_batch(self) -> Batch:
        ctx = self.context
        lb_idx = self.labelled_sampler.next()
        x_lb_raw = ctx.clips(lb_idx)
        batch = Batch(x_lb=self._augment(ctx.weak_augment, x_lb_raw),
                      y_lb=self.data.train.labels[lb_idx].to(self.device), idx_lb=lb_idx.to(self.device))
        if self.algorithm_cls.needs_labelled_strong:
            batch.x_lb_strong = self._augment(ctx.strong_augment, x_lb_raw)
        if self.unlabelled_sampler is not None:
            ulb_idx = self.unlabelled_sampler.next()
            x_ulb = ctx.clips(ulb_idx)
            batch.x_ulb_weak = self._augment(ctx.weak_augment, x_ulb)
            batch.x_ulb_strong = self._augment(ctx.strong_augment, x_ulb)
            batch.idx_ulb = ulb_idx.to(self.device)
            batch.y_ulb_hidden = self.data.train.labels[ulb_idx].to(self.device)
        return batch

    def _train_epoch(self, bar: tqdm | None) -> dict[str, Any]:
        self.train_model.train()
        meter = PseudoLabelMeter(self.data.num_classes)
        sums: dict[str, float] = {}
        for _ in range(self.steps_per_epoch):
            batch = self._make_batch()
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                result: StepResult = self.algorithm.train_step(batch)
            if not torch.isfinite(result.loss):  # before the step, so no weight takes a NaN
                raise SsmarError(f"loss became {result.loss.item()} at step {self.context.step + 1}; "
                                 "lower train.lr or check the data for extreme values")
            self.optimizer.zero_grad(set_to_none=True)
            result.loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.context.step += 1
            self._estimate_time()
            self.ema.update(self.model, self.context.step)
            stats = {"loss": result.loss.item(), **result.stats}
            for key, value in stats.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            if result.mask is not None and result.pseudo_labels is not None:
                meter.add(result.pseudo_labels, result.mask, batch.y_ulb_hidden)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=self.epoch + 1, loss=f"{stats['loss']:.3f}")
            faults.point("step")
        # Mean over steps and processes (equal slices: the global mean), the same on every process.
        totals = distributed.all_reduce_sum(torch.tensor(list(sums.values()), dtype=torch.float64))
        record = {key: float(total) / (self.steps_per_epoch * self.dist.world_size)
                  for key, total in zip(sums, totals)}
        record.update(meter.summary())
        record["lr"] = self.optimizer.param_groups[0]["lr"]
        return record

    def _estimate_time(self) -> None:
        """Log the estimated training time once, from the wall time of this run's 2nd to 4th steps (the
        first carries one-off costs): real batches, so the estimate includes augmentation and the algorithm."""
        done = self.context.step - self._first_step
        if done == 1:
            self._clock = time.perf_counter()
        elif done == 1 + TIMED_STEPS and self.dist.is_main:
            per_step = (time.perf_counter() - self._clock) / TIMED_STEPS
            remaining = self.total_steps - self.context.step
            self.logger.info(f"estimated time: {per_step * remaining / 60:.1f} min for the remaining {remaining} steps "
                             f"({per_step:.2f} s/step, the mean of steps 2-{1 + TIMED_STEPS} of this run; "
                             "evaluations not included)")

    def evaluate(self) -> dict[str, Any]:
        """Metrics of the EMA model; under DDP each process scores a contiguous share of the clips and
        the scores are gathered, so every process computes the same metrics."""
        labels = self.data.evaluation.labels.numpy()
        diagnostics = self.algorithm.diagnostic_scorers()
        scores, *extra = self._evaluation_scores([self.algorithm.score_outputs, *diagnostics.values()])
        metrics = classification_metrics(scores, labels, self.data.class_names, self.data.body_map,
                                         self.data.body_names)
        for name, diagnostic in zip(diagnostics, extra):
            metrics[f"{name}_top1"] = float((diagnostic.argmax(1) == labels).mean() * 100)
        return metrics

    def _evaluation_scores(self, scorers: list[Callable[[dict[str, torch.Tensor]], torch.Tensor]]) -> list[np.ndarray]:
        """Each scorer's ``[N, K]`` scores from one forward pass over the evaluation clips."""
        clips = self.data.evaluation.clips
        start, stop = (len(clips) * r // self.dist.world_size for r in (self.dist.rank, self.dist.rank + 1))
        scores = np.zeros((0, self.data.num_classes * len(scorers)), np.float32)
        if stop > start:
            scores = predict_scores(self.ema.module, clips, self.device, int(self.cfg["train"]["eval_batch_size"]),
                                    lambda out: torch.cat([scorer(out) for scorer in scorers], dim=1),
                                    start=start, stop=stop)
        gathered = distributed.all_gather_cat(torch.from_numpy(scores)).numpy()
        return np.split(gathered, len(scorers), axis=1)

    def fit(self) -> dict[str, Any]:
        """Train to the configured budget (from a resumed state if any); return final metrics."""
        cfg, is_main = self.cfg, self.dist.is_main
        epochs = int(cfg["train"]["epochs"])
        selects_best = cfg["data"]["eval_on"] == "val"
        if is_main:
            save_text(dump_config({**cfg, PROVENANCE_KEY: self.provenance}), self.work_dir / "config.yaml")
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.work_dir / "tb"), purge_step=self.context.step or None)
            self.logger.info(f"data: {self.data.info}; algorithm: {cfg['algorithm']['name']}; "
                             f"{epochs} epochs x {self.steps_per_epoch} steps on {self.device}")
            self.logger.info(self.budget.describe(cfg["train"], len(self.data.labelled), len(self.data.unlabelled),
                                                  self.algorithm_cls.uses_unlabelled))
            self._warn_short_classes()
        self._first_step = self.context.step
        bar = tqdm(total=self.total_steps, initial=self.context.step, desc=cfg["algorithm"]["name"], unit="step",
                   dynamic_ncols=True, leave=False, file=sys.stderr, mininterval=1.0) if self.context.progress else None
        final: dict[str, Any] = {}
        while self.epoch < epochs:
            started = time.time()
            self.context.epoch = self.epoch
            self.algorithm.on_epoch_start(self.epoch)
            record = {"epoch": self.epoch + 1, **self._train_epoch(bar), **self.algorithm.epoch_stats()}
            self.epoch += 1
            if self.dist.world_size > 1:  # rank 0's BatchNorm statistics everywhere: what latest.pt holds
                distributed.broadcast_buffers(self.model)
                distributed.broadcast_buffers(self.ema.module)
            if self.epoch % int(cfg["train"]["eval_every"]) == 0 or self.epoch == epochs:
                metrics = self.evaluate()
                record.update({f"eval_{k}": v for k, v in metrics.items()
                               if k in ("top5", "mean_class_acc", "f1_macro") or k.endswith("top1")})
                # best.pt is selected on a validation split only: chosen by test top-1 it would be a model
                # selected on the test data. Evaluating on test, latest.pt is the run's model.
                if selects_best and (not self.best or metrics["top1"] > self.best["top1"]):
                    self.best = {"epoch": self.epoch, "top1": metrics["top1"]}
                    if is_main:
                        save_torch(self.checkpoint_state(), self.work_dir / "best.pt")
                if self.epoch == epochs:
                    final = metrics
            self.elapsed += time.time() - started
            record["time"] = self.elapsed
            self.history.append(record)
            if is_main:
                self._log_epoch(record)
                state = self.checkpoint_state()
                save_torch(state, self.work_dir / "latest.pt")
                if self.epoch in cfg["train"]["checkpoint_epochs"]:
                    save_torch(state, self.work_dir / f"epoch_{self.epoch:03d}.pt")
                self._write_metrics(final)
        if bar is not None:
            bar.close()
        if is_main and final:
            self._write_final(final)
        if self.writer is not None:
            self.writer.close()
        return final

    def _warn_short_classes(self) -> None:
        """Say so when data.labels_per_class asks for more labels than a class has clips."""
        per_class = self.cfg["data"]["labels_per_class"]
        if not per_class:
            return
        short = short_classes(self.data.train.labels.numpy(), self.data.labelled.numpy(), per_class)
        if short:
            names = ", ".join(self.data.class_names[c] for c in short[:5]) + (" ..." if len(short) > 5 else "")
            self.logger.warning(f"data.labels_per_class={per_class}, but {len(short)} class(es) have fewer training "
                                f"clips ({names}): all of their clips are labelled and none is left unlabelled")

    def _log_epoch(self, record: dict[str, Any]) -> None:
        scalars = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "epoch"}
        text = " ".join(f"{k}={v:.4g}" for k, v in scalars.items())
        self.logger.info(f"epoch {record['epoch']}/{self.cfg['train']['epochs']} {text}")
        for key, value in scalars.items():
            group = "eval" if key.startswith("eval_") else "ssl" if key.startswith(("pl_", "mask")) else "train"
            self.writer.add_scalar(f"{group}/{key.removeprefix('eval_')}", value, self.context.step)
        self.writer.flush()

    def _write_metrics(self, final: dict[str, Any]) -> None:
        save_json({"config": self.cfg, PROVENANCE_KEY: self.provenance, "data": self.data.info, "history": self.history, "best": self.best,
                   "final": {k: v for k, v in final.items() if k != "confusion"}, "elapsed_s": self.elapsed},
                  self.work_dir / "metrics.json")

    def _write_final(self, final: dict[str, Any]) -> None:
        confusion = np.asarray(final["confusion"])
        save_confusion(confusion, self.data.class_names, self.work_dir,
                       title=f"{self.cfg['algorithm']['name']}: top-1 {final['top1']:.1f}%")
        self.logger.info(f"final: top1={final['top1']:.2f} top5={final['top5']:.2f} "
                         f"mean_class_acc={final['mean_class_acc']:.2f} f1_macro={final['f1_macro']:.2f} "
                         f"({self.elapsed:.0f}s); work dir {self.work_dir}")
