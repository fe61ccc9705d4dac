"""APLT: Asynchronous Pseudo Labeling and Training (Zhang et al., IJCAI 2025).

Offline (backbone frozen, every ``period`` epochs after ``warmup_epochs``): embed all
training clips (plus ``num_aug`` weak views of each labelled clip), run semi-supervised
k-means, screen unlabelled clips with per-class thresholds, and freeze the refined centres
as the prototype classifier. Online: the linear head learns from labels and FixMatch-style
confident predictions; the prototype head learns with an additive-margin softmax from the
labels and the *offline* pseudo-labels, which stay fixed until the next round.
``mode=sync`` is the ablation the paper argues against: pseudo-labels and prototypes are
recomputed every step from the live model. See docs/aplt.md for every choice marked ours.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ssmar.algorithms.base import Algorithm, Batch, StepResult
from ssmar.algorithms.hooks import confidence_mask, consistency_loss
from ssmar.aplt.diagnostics import accuracy_at_coverage, cluster_purity, pseudo_label_quality
from ssmar.aplt.feature_bank import build_feature_bank
from ssmar.aplt.losses import additive_margin_loss
from ssmar.aplt.offline import OfflineRound, offline_round, scatter_pseudo_labels
from ssmar.aplt.plots import plot_rounds
from ssmar.aplt.prototypes import PrototypeMemory, prototype_drift
from ssmar.aplt.thresholds import make_threshold_policy
from ssmar.engine import faults
from ssmar.engine.distributed import all_reduce_sum, broadcast_
from ssmar.errors import SsmarError
from ssmar.utils.io import save_json


class APLT(Algorithm):
    name = "aplt"
    needs_labelled_strong = True
    defaults = {
        "p_cutoff": 0.95,  # confidence threshold of L_u^logits (FixMatch part) [paper: FixMatch-style]
        "lambda_u": 1.0,  # weight of the unlabelled losses
        "lambda_m": 1.0,  # weight of the margin losses; 0 = "no margin losses" ablation
        "margin": 0.2,  # additive margin m of the prototype head [ours]
        "scale": 16.0,  # cosine scale s [ours]
        "warmup_epochs": 5,  # W: epochs before the first offline round (linear head only)
        "period": 5,  # E: epochs of online training between offline rounds
        "num_aug": 4,  # A: weak views per labelled clip in the feature bank; 0 = ablation
        "threshold_policy": "mean",  # mean | quantile | ema | labelled | fixed | none
        "threshold_params": {},  # q (quantile), momentum (ema), c (labelled), value (fixed)
        "agreement": False,  # also screen out clips whose cluster differs from the frozen linear head's argmax [ours]
        "kmeans_iters": 50,
        "bank_model": "ema",  # which weights embed the bank: ema (what is evaluated) | online
        "bank_batch_size": 256,
        # inference: probs = softmax(linear) + fusion * softmax(s * cos to prototypes); 1 chosen on a
        # validation carve-out over the linear head alone (0) [ours; docs/aplt.md]
        "fusion": 1.0,
        "mode": "async",  # async (APLT) | sync (ablation: recompute every step from the live model)
        "sync_kmeans_iters": 5,
    }

    def __init__(self, model: nn.Module, num_classes: int, params: dict[str, Any], context):
        super().__init__(model, num_classes, params, context)
        p = self.params
        if p["mode"] not in ("async", "sync"):
            raise SsmarError(f"algorithm.params.mode must be 'async' or 'sync', got {p['mode']!r}")
        if p["period"] < 1 or p["warmup_epochs"] < 0:
            raise SsmarError("algorithm.params: need period >= 1 and warmup_epochs >= 0")
        self.policy = make_threshold_policy(p["threshold_policy"], **(p["threshold_params"] or {}))
        backbone = self._unwrap(model)
        self.memory = PrototypeMemory(num_classes, backbone.embed_dim).to(context.device)
        train_size = len(context.data.train)
        self.pseudo_labels = torch.full((train_size,), -1, dtype=torch.long)
        self.pseudo_keep = torch.zeros(train_size, dtype=torch.bool)
        self.round = 0
        self.rounds: list[dict[str, Any]] = []
        self.sync_bank: torch.Tensor | None = None  # sync mode: live features of every train clip
        self.sync_centres: torch.Tensor | None = None

    @staticmethod
    def _unwrap(model: nn.Module) -> nn.Module:
        return getattr(model, "module", model)

    @property
    def prototypes_ready(self) -> bool:
        return self.round > 0

    # ------------------------------------------------------------------ offline phase
    def on_epoch_start(self, epoch: int) -> None:
        p = self.params
        due = epoch >= p["warmup_epochs"] and (epoch - p["warmup_epochs"]) % p["period"] == 0
        if p["mode"] == "sync":
            due = epoch == p["warmup_epochs"]  # initialise the live bank once; then every step
        if due:
            self.offline_phase(epoch)

    @torch.no_grad()
    def offline_phase(self, epoch: int) -> OfflineRound:
        ctx, p = self.context, self.params
        started = time.time()
        encoder = ctx.ema_model if p["bank_model"] == "ema" else self._unwrap(self.model)
        was_training = encoder.training
        encoder.eval()
        data = ctx.data
        generator = torch.Generator().manual_seed(int(ctx.cfg["seed"]) * 1_000_003 + self.round)
        clips, embed, bank_logits = self._bank_shard(encoder)
        bank = build_feature_bank(embed, clips, data.labelled, data.train.labels[data.labelled], data.unlabelled,
                                  num_aug=int(p["num_aug"]), augment=ctx.weak_augment, generator=generator,
                                  batch_size=int(p["bank_batch_size"]), device=ctx.device, progress=ctx.progress)
        encoder.train(was_training)
        all_reduce_sum(bank.features)  # each row is non-zero on the one process that embedded it
        logits_seen = all_reduce_sum(bank_logits())
        faults.point("offline")
        if len(logits_seen) != len(bank.features):
            raise SsmarError(f"APLT: {len(logits_seen)} logits for {len(bank.features)} bank rows")
        result = offline_round(bank.features, bank.labels, self.num_classes, self.policy,
                               max_iter=int(p["kmeans_iters"]),
                               classifier_labels=logits_seen.argmax(dim=1) if p["agreement"] else None)
        for shared in (result.prototypes, result.centres, result.assign, result.keep):
            broadcast_(shared)  # rank 0's round everywhere, even where GPU k-means is not bit-reproducible
        previous = self.memory.prototypes.clone()
        self.memory.update(result.prototypes)
        unlabelled_rows = bank.is_unlabelled
        positions = bank.dataset_index[unlabelled_rows]
        self.pseudo_labels, self.pseudo_keep = scatter_pseudo_labels(
            len(data.train), positions, result.assign[unlabelled_rows], result.keep[unlabelled_rows])
        if p["mode"] == "sync":
            self._init_sync_bank(bank.features, bank.dataset_index, bank.is_view, result.centres)
        logits = logits_seen[-len(positions):] if len(positions) else torch.empty(0, self.num_classes)
        self.round += 1
        self._record_round(epoch, result, positions, unlabelled_rows, logits, previous, time.time() - started)
        return result

    def _bank_shard(self, encoder: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor],
                                                       Callable[[torch.Tensor], torch.Tensor],
                                                       Callable[[], torch.Tensor]]:
        """``clips_fn`` and ``embed_fn`` for ``build_feature_bank`` that split its work over DDP processes,
        and a function returning the logits of the rows embedded here (zeros elsewhere).

        The bank loads one batch (``clips_fn``), then embeds it and its augmented views; load i is
        process i mod N's. The others stand in zeros for its clips (never loaded) and embeddings, so
        every process draws the same augmentation stream as one process would, and the sum over
        processes is, bit for bit, the bank one process builds (x + 0 = x). One process: plain calls.
        """
        ctx = self.context
        world, rank = ctx.dist.world_size, ctx.dist.rank
        dim = self.memory.prototypes.shape[1]
        loads, logits = [], []

        def clips(indices: torch.Tensor) -> torch.Tensor:
            loads.append(len(loads) % world == rank)
            if loads[-1]:
                return ctx.clips(indices)
            return torch.zeros((len(indices), *ctx.data.train.clips.shape[1:]), device=ctx.device)

        def embed(x: torch.Tensor) -> torch.Tensor:
            if not loads[-1]:
                logits.append(torch.zeros(len(x), self.num_classes, device=x.device))
                return torch.zeros(len(x), dim, device=x.device)
            out = encoder(x)
            logits.append(out["logits"].float())
            return out["feat"]

        return clips, embed, lambda: torch.cat(logits)

    def _record_round(self, epoch: int, result: OfflineRound, positions: torch.Tensor, rows: torch.Tensor,
                      logits: torch.Tensor, previous: torch.Tensor, seconds: float) -> None:
        """Pseudo-label quality against the hidden labels, beside the classifier's own confident labels."""
        if not self.context.dist.is_main or len(positions) == 0:
            return
        true = self.context.data.train.labels[positions.cpu()]
        assign, keep = result.assign[rows].cpu(), result.keep[rows].cpu()
        quality = pseudo_label_quality(assign, keep, true, self.num_classes)
        probs = logits.softmax(dim=1).cpu()
        confidence, predicted = probs.max(dim=1)
        coverage = quality["coverage"]
        fixmatch_mask = confidence >= self.params["p_cutoff"]
        record = {
            "round": self.round, "epoch": epoch, "seconds": seconds,
            "coverage": coverage, "accuracy": quality["accuracy"],
            "accuracy_unscreened": quality["accuracy_unscreened"],
            "purity": cluster_purity(assign, true, self.num_classes),
            # FixMatch-style labels of the same frozen model: argmax kept by confidence,
            # compared at APLT's coverage and at its own threshold.
            "classifier_accuracy_at_equal_coverage": accuracy_at_coverage(confidence, predicted, true, coverage)
            if coverage > 0 else None,
            "aplt_margin_accuracy_at_equal_coverage": accuracy_at_coverage(result.margin[rows].cpu(), assign, true,
                                                                           coverage) if coverage > 0 else None,
            # Accuracy-coverage curves (coverage 0.1 ... 1.0): APLT ranked by distance relative to its
            # class threshold (the order its screening uses), the classifier by confidence.
            "coverage_levels": COVERAGE_LEVELS,
            "aplt_accuracy_curve": accuracy_curve(-relative_distance(result, rows), assign, true),
            "classifier_accuracy_curve": accuracy_curve(confidence, predicted, true),
            "classifier_threshold_coverage": float(fixmatch_mask.float().mean()),
            "classifier_threshold_accuracy": float((predicted == true)[fixmatch_mask].float().mean())
            if fixmatch_mask.any() else None,
            "thresholds": [None if not torch.isfinite(t) else float(t) for t in result.thresholds.cpu()],
            "kept_per_class": quality["per_class"]["kept"],
            "per_class": quality["per_class"],
            "drift_mean": float(prototype_drift(previous, self.memory.prototypes).mean()) if self.round > 1 else None,
            "kmeans_iterations": result.iterations, "kmeans_converged": result.converged,
        }
        self.rounds.append(record)
        self.context.logger.info(
            f"APLT round {self.round} (epoch {epoch}): kept {coverage:.1%} of unlabelled at accuracy "
            f"{quality['accuracy']:.1%} (classifier at equal coverage "
            f"{record['classifier_accuracy_at_equal_coverage'] or 0:.1%}); purity {record['purity']:.1%}; "
            f"{result.iterations} k-means iterations; {seconds:.1f}s")
        save_json({"rounds": self.rounds}, self.context.work_dir / "aplt_rounds.json")
        plot_rounds(self.rounds, self.context.work_dir / "aplt_rounds.png")

    # ------------------------------------------------------------------ synchronous ablation
    def _init_sync_bank(self, features: torch.Tensor, index: torch.Tensor, is_view: torch.Tensor,
                        centres: torch.Tensor) -> None:
        self.sync_bank = torch.zeros(len(self.context.data.train), features.shape[1], device=features.device)
        self.sync_bank[index[~is_view]] = features[~is_view]
        self.sync_centres = centres

    @torch.no_grad()
    def _sync_update(self, batch: Batch, feat_lb: torch.Tensor, feat_ulb: torch.Tensor) -> None:
        """Refresh the live bank with this step's features, then re-cluster and re-screen."""
        data = self.context.data
        self.sync_bank[batch.idx_lb] = F.normalize(feat_lb.detach().float(), dim=1)
        self.sync_bank[batch.idx_ulb] = F.normalize(feat_ulb.detach().float(), dim=1)
        labels = torch.full((len(self.sync_bank),), -1, dtype=torch.long, device=self.sync_bank.device)
        labels[data.labelled.to(labels.device)] = data.train.labels[data.labelled].to(labels.device)
        result = offline_round(self.sync_bank, labels, self.num_classes, self.policy,
                               max_iter=int(self.params["sync_kmeans_iters"]), init_centres=self.sync_centres)
        self.sync_centres = result.centres
        self.memory.update(result.prototypes)
        unlabelled = data.unlabelled.to(labels.device)
        self.pseudo_labels, self.pseudo_keep = scatter_pseudo_labels(
            len(self.sync_bank), unlabelled, result.assign[unlabelled], result.keep[unlabelled])

    # ------------------------------------------------------------------ online phase
    def train_step(self, batch: Batch) -> StepResult:
        p = self.params
        lb_weak, lb_strong, ulb_weak, ulb_strong = self.forward_views(
            batch.x_lb, batch.x_lb_strong, batch.x_ulb_weak, batch.x_ulb_strong)
        loss_sup = self.supervised_loss(lb_weak["logits"], batch.y_lb)
        probs = ulb_weak["logits"].detach().softmax(dim=1)
        confidence, fixmatch_labels = probs.max(dim=1)
        fixmatch_mask = confidence_mask(probs, p["p_cutoff"])
        loss_u_logits = consistency_loss(ulb_strong["logits"], fixmatch_labels, fixmatch_mask)
        stats = {"loss_sup": loss_sup.item(), "loss_u_logits": loss_u_logits.item(),
                 "fixmatch_mask": fixmatch_mask.float().mean().item()}
        weight_u = p["lambda_u"] * self.unsup_ramp()
        if not self.prototypes_ready:  # warm-up: no prototypes yet
            return StepResult(loss=loss_sup + weight_u * loss_u_logits, stats=stats,
                              pseudo_labels=fixmatch_labels, mask=fixmatch_mask)
        if p["mode"] == "sync":
            self._sync_update(batch, lb_weak["feat"], ulb_weak["feat"])
        positions = batch.idx_ulb.cpu()
        offline_labels = self.pseudo_labels[positions].to(batch.idx_ulb.device)
        offline_keep = self.pseudo_keep[positions].to(batch.idx_ulb.device)
        loss_sup_margin = additive_margin_loss(self.memory(lb_strong["feat"]), batch.y_lb, p["margin"], p["scale"])
        loss_u_margin = additive_margin_loss(self.memory(ulb_strong["feat"]), offline_labels, p["margin"], p["scale"],
                                             weight=offline_keep.float())
        loss = (loss_sup + p["lambda_m"] * loss_sup_margin
                + weight_u * (loss_u_logits + p["lambda_m"] * loss_u_margin))
        stats.update({"loss_sup_margin": loss_sup_margin.item(), "loss_u_margin": loss_u_margin.item(),
                      "offline_keep": offline_keep.float().mean().item()})
        return StepResult(loss=loss, stats=stats, pseudo_labels=offline_labels.clamp_min(0), mask=offline_keep.float())

    def epoch_stats(self) -> dict[str, Any]:
        return {"aplt_round": self.round}

    # ------------------------------------------------------------------ inference and state
    def score_outputs(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        return fused_scores(out, self.memory.prototypes, self.params) if self.prototypes_ready else out["logits"]

    def diagnostic_scorers(self) -> dict[str, Callable[[dict[str, torch.Tensor]], torch.Tensor]]:
        if not self.prototypes_ready:
            return {}
        prototypes, scale = self.memory.prototypes, self.params["scale"]
        scorers = {"prototype": lambda out: scale * prototype_cosine(out["feat"], prototypes)}
        if self.params["fusion"]:  # the linear head alone, as every other method is scored
            scorers["linear"] = lambda out: out["logits"]
        else:  # what fusion = 1 would have scored, without a second run
            scorers["fused"] = lambda out: fused_scores(out, prototypes, {**self.params, "fusion": 1.0})
        return scorers

    @classmethod
    def inference_scores(cls, state: dict[str, Any], params: dict[str, Any],
                         device: torch.device) -> Callable[[dict[str, torch.Tensor]], torch.Tensor] | None:
        merged = {**cls.defaults, **params}
        if not merged["fusion"] or not state.get("round"):
            return None
        prototypes = state["prototypes"].to(device)
        return lambda out: fused_scores(out, prototypes, merged)

    def state_dict(self) -> dict[str, Any]:
        return {"prototypes": self.memory.prototypes.cpu().clone(), "pseudo_labels": self.pseudo_labels.clone(),
                "pseudo_keep": self.pseudo_keep.clone(), "round": self.round, "rounds": self.rounds,
                "policy": self.policy.state_dict(),
                "sync_bank": None if self.sync_bank is None else self.sync_bank.cpu(),
                "sync_centres": None if self.sync_centres is None else self.sync_centres.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():  # exact copy: update() would re-normalise and move the last bit
            self.memory.prototypes.copy_(state["prototypes"])
        self.pseudo_labels, self.pseudo_keep = state["pseudo_labels"].clone(), state["pseudo_keep"].clone()
        self.round, self.rounds = state["round"], list(state["rounds"])
        self.policy.load_state_dict(state["policy"])
        device = self.context.device
        self.sync_bank = None if state["sync_bank"] is None else state["sync_bank"].to(device)
        self.sync_centres = None if state["sync_centres"] is None else state["sync_centres"].to(device)


COVERAGE_LEVELS = [round(0.1 * i, 1) for i in range(1, 11)]


def relative_distance(result: OfflineRound, rows: torch.Tensor) -> torch.Tensor:
    """Distance to the assigned centre over that class's threshold (finite thresholds only)."""
    thresholds = result.thresholds.to(result.distance.device)
    scale = torch.where(torch.isfinite(thresholds), thresholds, torch.ones_like(thresholds)).clamp_min(1e-12)
    return (result.distance[rows] / scale[result.assign[rows]]).cpu()


def accuracy_curve(scores: torch.Tensor, predicted: torch.Tensor, true: torch.Tensor) -> list[float]:
    return [accuracy_at_coverage(scores, predicted, true, level) for level in COVERAGE_LEVELS]


def fused_scores(out: dict[str, torch.Tensor], prototypes: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    """Linear-head logits, or (with ``fusion`` > 0) log of the linear and prototype probabilities mixed."""
    if not params["fusion"]:
        return out["logits"]
    cosine = prototype_cosine(out["feat"], prototypes)
    mixed = out["logits"].softmax(dim=1) + params["fusion"] * (params["scale"] * cosine).softmax(dim=1)
    return mixed.log()


def prototype_cosine(feat: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each embedding to each (unit-norm) prototype: ``[N, K]``."""
    return F.normalize(feat, dim=1) @ prototypes.to(feat.dtype).T
