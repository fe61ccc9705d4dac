"""APLT: Asynchronous Pseudo Labeling and Training (Zhang et al., IJCAI 2025).

Offline (backbone frozen, every ``period`` epochs after ``warmup_epochs``): embed all
training clips (plus ``num_aug`` weak views of each labelled clip, each row averaged over
``bank_views`` passes), label them with a pluggable labeller (the paper's semi-supervised
k-means, or a stronger one), screen the unlabelled clips, and freeze the refined centres as
the prototype classifier. Online: the linear head learns from labels and FixMatch-style
confident predictions; the prototype head learns with an additive-margin softmax from the
labels and the *offline* pseudo-labels, which stay fixed until the next round.
``mode=sync`` is the ablation the paper argues against: pseudo-labels and prototypes are
recomputed every step from the live model. ``preset=paper`` restores the paper-faithful
configuration. See docs/aplt.md for every choice marked ours.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ssmar.algorithms.base import Algorithm, Batch, StepResult
from ssmar.algorithms.hooks import confidence_mask, consistency_loss
from ssmar.aplt.diagnostics import compare_with_classifier
from ssmar.aplt.feature_bank import FeatureBank, build_feature_bank
from ssmar.aplt.labellers import make_labeller
from ssmar.aplt.losses import additive_margin_loss
from ssmar.aplt.offline import OfflineRound, offline_round, scatter_pseudo_labels
from ssmar.aplt.plots import plot_rounds
from ssmar.aplt.prototypes import PrototypeMemory, prototype_drift, refine_prototypes
from ssmar.aplt.screens import make_screen
from ssmar.errors import SsmarError
from ssmar.runtime import faults
from ssmar.runtime.distributed import all_reduce_sum, broadcast_
from ssmar.runtime.io import save_json

# The paper-faithful configuration (docs/aplt.md): one k-means centre per class, the per-class
# mean-distance threshold, one clean pass per clip, the margin loss averaged over kept clips,
# prototypes applied to the online features as they come.
PAPER_PRESET: dict[str, Any] = {
    "labeller": "kmeans", "labeller_params": {}, "screen": "paper", "screen_params": {},
    "bank_views": 1, "margin_norm": "kept", "same_space": False,
}


class APLT(Algorithm):
    name = "aplt"
    needs_labelled_strong = True
    defaults = {
        "preset": None,  # None (the defaults below) | paper (PAPER_PRESET; explicit params still win)
        "p_cutoff": 0.95,  # confidence threshold of L_u^logits (FixMatch part) [paper: FixMatch-style]
        "lambda_u": 1.0,  # weight of the unlabelled losses
        "lambda_m": 1.0,  # weight of the margin losses; 0 = "no margin losses" ablation
        "margin": 0.2,  # additive margin m of the prototype head [ours]
        "scale": 16.0,  # cosine scale s [ours]
        "warmup_epochs": 5,  # W: epochs before the first offline round (linear head only)
        "period": 5,  # E: epochs of online training between offline rounds
        "num_aug": 4,  # A: weak views per labelled clip in the feature bank; 0 = ablation
        "bank_views": 1,  # passes averaged per bank row: the clean clip + (bank_views - 1) weak views [ours]
        # chosen on the validation carve-out (docs/aplt.md, BENCHMARKS.md): the frozen classifier's posterior,
        # smoothed over the bank's neighbours and balanced to the labelled set's class frequencies, kept where
        # it is at least 0.9 sure [ours]
        "labeller": "posterior",  # posterior | kmeans [paper] | multiproto | labelprop (ssmar/aplt/labellers.py)
        "labeller_params": {"balance": "labelled"},  # the labeller's options, e.g. {k: 15} for labelprop
        "screen": "confidence",  # confidence | paper (per-class distance thresholds) | precision | none
        "screen_params": {},  # the screen's options: {threshold: 0.9}, {policy: ema} for paper, {target: 0.9} ...
        "agreement": False,  # also screen out clips whose label differs from the frozen linear head's argmax [ours]
        "margin_norm": "batch",  # L_u^margin over the batch size, as L_u^logits (batch) | over the kept clips (kept)
        "same_space": False,  # margin loss against prototypes re-embedded by the online model (see docs/aplt.md)
        "bank_model": "ema",  # which weights embed the bank: ema (what is evaluated) | online
        "bank_batch_size": 256,
        # inference: probs = softmax(linear) + fusion * softmax(s * cos to prototypes); 1 chosen on a
        # validation carve-out over the linear head alone (0) [ours; docs/aplt.md]
        "fusion": 1.0,
        "mode": "async",  # async (APLT) | sync (ablation: recompute every step from the live model)
    }

    def __init__(self, model: nn.Module, num_classes: int, params: dict[str, Any], context):
        preset = params.get("preset")
        if preset not in (None, "paper"):
            raise SsmarError(f"algorithm.params.preset must be null or 'paper', got {preset!r}")
        super().__init__(model, num_classes, {**(PAPER_PRESET if preset == "paper" else {}), **params}, context)
        p = self.params
        choices = {"mode": ("async", "sync"), "margin_norm": ("batch", "kept"), "bank_model": ("ema", "online")}
        for key, valid in choices.items():
            if p[key] not in valid:
                raise SsmarError(f"algorithm.params.{key} must be one of {list(valid)}, got {p[key]!r}")
        if p["period"] < 1 or p["warmup_epochs"] < 0 or p["bank_views"] < 1:
            raise SsmarError("algorithm.params: need period >= 1, warmup_epochs >= 0 and bank_views >= 1")
        self.labeller = make_labeller(p["labeller"], **(p["labeller_params"] or {}))
        self.screen = make_screen(p["screen"], **(p["screen_params"] or {}))
        backbone = self._unwrap(model)
        self.memory = PrototypeMemory(num_classes, backbone.embed_dim).to(context.device)  # what L^margin uses
        self.eval_prototypes = torch.zeros(num_classes, backbone.embed_dim, device=context.device)  # inference
        train_size = len(context.data.train)
        self.pseudo_labels = torch.full((train_size,), -1, dtype=torch.long)
        self.pseudo_weight = torch.zeros(train_size)
        # [train, D] every clip in the space the margin loss's prototypes live in, until the drift is measured
        self.space_features: torch.Tensor | None = None
        self.round = 0
        self.rounds: list[dict[str, Any]] = []
        self.sync_bank: torch.Tensor | None = None  # sync mode: live features and logits of every train clip
        self.sync_logits: torch.Tensor | None = None
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
        bank = self._embed_bank(encoder, int(p["num_aug"]), int(p["bank_views"]), batch_norm="eval")
        faults.point("offline")
        result = offline_round(bank.features, bank.labels, self.num_classes, self.labeller, self.screen,
                               groups=bank.dataset_index, logits=bank.logits,
                               classifier_labels=bank.logits.argmax(dim=1) if p["agreement"] else None)
        for shared in (result.prototypes, result.centres, result.assign, result.weight):
            broadcast_(shared)  # rank 0's round everywhere, even where GPU k-means is not bit-reproducible
        previous = self.eval_prototypes.clone()
        self.eval_prototypes = F.normalize(result.prototypes.float(), dim=1)
        originals = ~bank.is_view
        self.space_features = self._train_table(bank.features[originals], bank.dataset_index[originals])
        if p["same_space"]:
            self.space_features = self._same_space_features()
            labels = torch.full((len(ctx.data.train),), -1, dtype=torch.long, device=ctx.device)
            labels[ctx.data.labelled.to(ctx.device)] = ctx.data.train.labels[ctx.data.labelled].to(ctx.device)
            assign = self._train_table(result.assign[originals, None].float(), bank.dataset_index[originals])
            keep = self._train_table(result.keep[originals, None].float(), bank.dataset_index[originals])
            self.memory.update(refine_prototypes(self.space_features, assign[:, 0].long(), keep[:, 0].bool(),
                                                 labels, self.num_classes, result.prototypes))
        else:
            self.memory.update(result.prototypes)
        unlabelled_rows = bank.is_unlabelled
        positions = bank.dataset_index[unlabelled_rows]
        self.pseudo_labels, self.pseudo_weight = scatter_pseudo_labels(
            len(ctx.data.train), positions, result.assign[unlabelled_rows], result.weight[unlabelled_rows])
        if p["mode"] == "sync":
            self._init_sync_bank(bank, result.centres)
        logits = bank.logits[unlabelled_rows]
        self.round += 1
        self._record_round(epoch, result, positions, unlabelled_rows, logits, previous, time.time() - started)
        return result

    def _embed_bank(self, encoder: nn.Module, num_aug: int, views: int, batch_norm: str) -> FeatureBank:
        """The feature bank of every training clip, embedded by ``encoder`` without gradients.

        ``batch_norm="eval"``: the encoder in eval mode (running statistics); ``"batch"``: its
        BatchNorm layers normalise with each bank batch's own statistics, as in a training step,
        without updating the running statistics (everything else in eval mode). Work is split over
        DDP processes (:meth:`_bank_shard`) and summed, so every process holds the whole bank.
        """
        ctx = self.context
        modes = {module: module.training for module in encoder.modules()}
        encoder.eval()
        saved = {}
        if batch_norm == "batch":
            for module in encoder.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    saved[module] = (module.momentum, module.num_batches_tracked.clone())
                    module.momentum = 0.0  # running = 1 · running + 0 · batch: unchanged
                    module.train()
        generator = torch.Generator().manual_seed(ctx.seed * 1_000_003 + self.round)
        clips, embed = self._bank_shard(encoder)
        try:
            bank = build_feature_bank(embed, clips, ctx.data.labelled, ctx.data.train.labels[ctx.data.labelled],
                                      ctx.data.unlabelled, num_aug=num_aug, augment=ctx.weak_augment,
                                      generator=generator, batch_size=int(self.params["bank_batch_size"]),
                                      device=ctx.device, progress=ctx.progress, views=views)
        finally:
            for module, (momentum, tracked) in saved.items():
                module.momentum = momentum
                module.num_batches_tracked.copy_(tracked)
            for module, training in modes.items():
                module.train(training)
        all_reduce_sum(bank.features)  # each row is non-zero on the one process that embedded it
        all_reduce_sum(bank.logits)
        return bank

    def _bank_shard(self, encoder: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor],
                                                       Callable[[torch.Tensor], dict[str, torch.Tensor]]]:
        """``clips_fn`` and ``embed_fn`` for ``build_feature_bank`` that split its work over DDP processes.

        The bank loads one batch (``clips_fn``), then embeds it and its augmented views; load i is
        process i mod N's. The others stand in zeros for its clips (never loaded) and outputs, so
        every process draws the same augmentation stream as one process would, and the sum over
        processes is, bit for bit, the bank one process builds (x + 0 = x). One process: plain calls.
        """
        ctx = self.context
        world, rank = ctx.dist.world_size, ctx.dist.rank
        dim = self.memory.prototypes.shape[1]
        loads: list[bool] = []

        def clips(indices: torch.Tensor) -> torch.Tensor:
            loads.append(len(loads) % world == rank)
            if loads[-1]:
                return ctx.clips(indices)
            return torch.zeros((len(indices), *ctx.data.train.clips.shape[1:]), device=ctx.device)

        def embed(x: torch.Tensor) -> dict[str, torch.Tensor]:
            if not loads[-1]:
                return {"feat": torch.zeros(len(x), dim, device=x.device),
                        "logits": torch.zeros(len(x), self.num_classes, device=x.device)}
            out = encoder(x)
            return {"feat": out["feat"], "logits": out["logits"].float()}

        return clips, embed

    def _train_table(self, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Bank rows [n, D] scattered into a train-set table [train, D] (zeros where no row)."""
        table = torch.zeros(len(self.context.data.train), rows.shape[1], device=rows.device)
        table[positions] = rows.float()
        return table

    def _same_space_features(self) -> torch.Tensor:
        """Every training clip embedded as the margin loss sees it: the online model with batch statistics."""
        bank = self._embed_bank(self._unwrap(self.model), num_aug=0, views=1, batch_norm="batch")
        return self._train_table(bank.features, bank.dataset_index)

    def _record_round(self, epoch: int, result: OfflineRound, positions: torch.Tensor, rows: torch.Tensor,
                      logits: torch.Tensor, previous: torch.Tensor, seconds: float) -> None:
        """Pseudo-label quality against the hidden labels, beside the classifier's own confident labels."""
        if not self.context.dist.is_main or len(positions) == 0:
            return
        true = self.context.data.train.labels[positions.cpu()]
        assign, keep = result.assign[rows].cpu(), result.keep[rows].cpu()
        record = {
            "round": self.round, "epoch": epoch, "seconds": seconds,
            **compare_with_classifier(assign, keep, result.screening_order(rows), true, logits.cpu(),
                                      float(self.params["p_cutoff"]), self.num_classes),
            "thresholds": [None if not torch.isfinite(t) else float(t) for t in result.thresholds.cpu()],
            "drift_mean": float(prototype_drift(previous, self.eval_prototypes).mean()) if self.round > 1 else None,
        }
        self.rounds.append(record)
        self.context.logger.info(
            f"APLT round {self.round} (epoch {epoch}): kept {record['coverage']:.1%} of unlabelled at accuracy "
            f"{record['accuracy']:.1%} (classifier at equal coverage "
            f"{record['classifier_accuracy_at_equal_coverage'] or 0:.1%}); {self.params['labeller']} labeller, "
            f"{self.params['screen']} screen; {seconds:.1f}s")
        self._save_rounds()

    def _save_rounds(self) -> None:
        save_json({"rounds": self.rounds}, self.context.work_dir / "aplt_rounds.json")
        plot_rounds(self.rounds, self.context.work_dir / "aplt_rounds.png")

    @torch.no_grad()
    def _record_space_drift(self, batch: Batch, feat_weak: torch.Tensor, feat_strong: torch.Tensor) -> None:
        """Cosine distance between the unlabelled clips' features in the prototypes' space and the
        online features the margin loss sees, over the global batch of the first step after a round
        (docs/aplt.md); then the per-clip table is dropped."""
        reference = self.space_features[batch.idx_ulb.to(self.space_features.device)]
        self.space_features = None
        sums = torch.stack([(1 - F.cosine_similarity(F.normalize(feat.float(), dim=1), reference, dim=1)).sum()
                            for feat in (feat_weak, feat_strong)] + [reference.new_tensor(float(len(reference)))])
        weak, strong, count = all_reduce_sum(sums.double()).tolist()
        if self.context.dist.is_main and self.rounds:
            self.rounds[-1].update({"space_drift_weak": weak / count, "space_drift_strong": strong / count})
            self._save_rounds()

    # ------------------------------------------------------------------ synchronous ablation
    def _init_sync_bank(self, bank: FeatureBank, centres: torch.Tensor) -> None:
        originals = ~bank.is_view
        self.sync_bank = self._train_table(bank.features[originals], bank.dataset_index[originals])
        self.sync_logits = self._train_table(bank.logits[originals], bank.dataset_index[originals])
        self.sync_centres = centres

    @torch.no_grad()
    def _sync_update(self, batch: Batch, lb_weak: dict[str, torch.Tensor], ulb_weak: dict[str, torch.Tensor]) -> None:
        """Refresh the live bank with this step's features and logits, then relabel and re-screen."""
        data = self.context.data
        for idx, out in ((batch.idx_lb, lb_weak), (batch.idx_ulb, ulb_weak)):
            self.sync_bank[idx] = F.normalize(out["feat"].detach().float(), dim=1)
            self.sync_logits[idx] = out["logits"].detach().float()
        labels = torch.full((len(self.sync_bank),), -1, dtype=torch.long, device=self.sync_bank.device)
        labels[data.labelled.to(labels.device)] = data.train.labels[data.labelled].to(labels.device)
        result = offline_round(self.sync_bank, labels, self.num_classes, self.labeller, self.screen,
                               groups=torch.arange(len(labels), device=labels.device), logits=self.sync_logits,
                               init_centres=self.sync_centres)
        self.sync_centres = result.centres
        self.memory.update(result.prototypes)
        self.eval_prototypes = self.memory.prototypes.clone()
        unlabelled = data.unlabelled.to(labels.device)
        self.pseudo_labels, self.pseudo_weight = scatter_pseudo_labels(
            len(self.sync_bank), unlabelled, result.assign[unlabelled], result.weight[unlabelled])

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
            self._sync_update(batch, lb_weak, ulb_weak)
        elif self.space_features is not None:
            self._record_space_drift(batch, ulb_weak["feat"], ulb_strong["feat"])
        positions = batch.idx_ulb.cpu()
        offline_labels = self.pseudo_labels[positions].to(batch.idx_ulb.device)
        offline_weight = self.pseudo_weight[positions].to(batch.idx_ulb.device)
        loss_sup_margin = additive_margin_loss(self.memory(lb_strong["feat"]), batch.y_lb, p["margin"], p["scale"])
        loss_u_margin = additive_margin_loss(self.memory(ulb_strong["feat"]), offline_labels, p["margin"], p["scale"],
                                             weight=offline_weight, per_batch=p["margin_norm"] == "batch")
        loss = (loss_sup + p["lambda_m"] * loss_sup_margin
                + weight_u * (loss_u_logits + p["lambda_m"] * loss_u_margin))
        stats.update({"loss_sup_margin": loss_sup_margin.item(), "loss_u_margin": loss_u_margin.item(),
                      "offline_keep": (offline_weight > 0).float().mean().item()})
        return StepResult(loss=loss, stats=stats, pseudo_labels=offline_labels.clamp_min(0), mask=offline_weight)

    def epoch_stats(self) -> dict[str, Any]:
        return {"aplt_round": self.round}

    # ------------------------------------------------------------------ inference and state
    def score_outputs(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        return fused_scores(out, self.eval_prototypes, self.params) if self.prototypes_ready else out["logits"]

    def diagnostic_scorers(self) -> dict[str, Callable[[dict[str, torch.Tensor]], torch.Tensor]]:
        if not self.prototypes_ready:
            return {}
        prototypes, scale = self.eval_prototypes, self.params["scale"]
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
        def cpu(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.cpu().clone()

        return {"prototypes": cpu(self.eval_prototypes), "train_prototypes": cpu(self.memory.prototypes),
                "pseudo_labels": self.pseudo_labels.clone(), "pseudo_weight": self.pseudo_weight.clone(),
                "round": self.round, "rounds": self.rounds,
                "screen": self.screen.state_dict(), "sync_bank": cpu(self.sync_bank),
                "sync_logits": cpu(self.sync_logits), "sync_centres": cpu(self.sync_centres)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = self.context.device

        def on_device(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.to(device)

        with torch.no_grad():  # exact copy: update() would re-normalise and move the last bit
            self.memory.prototypes.copy_(state["train_prototypes"])
        self.eval_prototypes = state["prototypes"].to(device)
        self.pseudo_labels, self.pseudo_weight = state["pseudo_labels"].clone(), state["pseudo_weight"].clone()
        self.round, self.rounds = state["round"], list(state["rounds"])
        self.screen.load_state_dict(state["screen"])
        self.sync_bank, self.sync_logits = on_device(state["sync_bank"]), on_device(state["sync_logits"])
        self.sync_centres = on_device(state["sync_centres"])


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
