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
from ssmar.aplt.embedding import bank_generator, embed_bank, train_table
from ssmar.aplt.feature_bank import FeatureBank
from ssmar.aplt.labellers import make_labeller
from ssmar.aplt.losses import additive_margin_loss
from ssmar.aplt.offline import OfflineRound, offline_round, scatter_pseudo_labels
from ssmar.aplt.prototypes import PrototypeMemory, fused_scores, prototype_cosine, refine_prototypes
from ssmar.aplt.regime import by_share, canonical
from ssmar.aplt.rounds import round_record, round_summary, save_rounds
from ssmar.aplt.screens import make_screen
from ssmar.config import FLAG, POSITIVE, PROBABILITY, TEXT, Spec, integer, number, one_of
from ssmar.errors import SsmarError
from ssmar.runtime import faults
from ssmar.runtime.distributed import all_reduce_sum, broadcast_

# The paper-faithful configuration (docs/aplt.md): one k-means centre per class, the per-class
# mean-distance threshold, one clean pass per clip, the margin loss averaged over kept clips at weight 1,
# prototypes applied to the online features as they come.
PAPER_PRESET: dict[str, Any] = {
    "labeller": "kmeans", "labeller_params": {}, "screen": "paper", "screen_params": {},
    "bank_views": 1, "margin_norm": "kept", "same_space": False, "logits_targets": "online", "lambda_m": 1.0,
}
REGIME_PARAMS = ("lambda_m", "fusion")  # numbers, or mappings {labelled share: value} (ssmar/aplt/regime.py)


class APLT(Algorithm):
    name = "aplt"
    needs_labelled_strong = True
    defaults = {
        "preset": None,  # None (the defaults below) | paper (PAPER_PRESET; explicit params still win)
        "p_cutoff": 0.95,  # confidence threshold of L_u^logits (FixMatch part) [paper: FixMatch-style]
        "lambda_u": 1.0,  # weight of the unlabelled losses
        # weight of the margin losses; 0 = "no margin losses" ablation; a mapping {share: value} follows the
        # labelled share (ssmar/aplt/regime.py): the paper's 1 where labels are scarce, none at 50 %, where the
        # frozen prototypes' pull cost accuracy on the validation carve-out (BENCHMARKS.md §14) [ours]
        "lambda_m": {"0.1": 1.0, "0.5": 0.0},  # (text keys: the canonical form, ssmar/aplt/regime.py)
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
        # confidence | paper (per-class distance thresholds) | precision | none; the default confidence screen
        # keeps clips at 0.9 and, as the labelled share grows, weighs the others too (ssmar/aplt/screens.py)
        "screen": "confidence",
        "screen_params": {},  # the screen's options: {threshold: 0.9}, {policy: ema} for paper, {target: 0.9} ...
        "agreement": False,  # also screen out clips whose label differs from the frozen linear head's argmax [ours]
        "margin_norm": "batch",  # L_u^margin over the batch size, as L_u^logits (batch) | over the kept clips (kept)
        "same_space": False,  # margin loss against prototypes re-embedded by the online model (see docs/aplt.md)
        "bank_model": "ema",  # which weights embed the bank: ema (what is evaluated) | online
        "bank_batch_size": 256,
        # inference: probs = softmax(linear) + fusion * softmax(s * cos to prototypes); 1 chosen on a
        # validation carve-out over the linear head alone (0) [ours; docs/aplt.md]
        "fusion": 1.0,  # a number, or a mapping {share: value} that follows the labelled share [ours]
        "mode": "async",  # async (APLT) | sync (ablation: recompute every step from the live model)
        # targets of L_u^logits: offline (the offline label where the screen kept the clip, the online target
        # elsewhere) [ours; chosen on the validation carve-out, BENCHMARKS.md §8] | online (the live weak view's
        # confident argmax, FixMatch-style) [paper]
        "logits_targets": "offline",
    }

    specs = {
        "preset": one_of("paper", optional=True), "p_cutoff": PROBABILITY, "lambda_u": number(0.0),
        "lambda_m": Spec("any"), "margin": number(0.0), "scale": number(0.0, low_open=True),
        "warmup_epochs": integer(0), "period": POSITIVE, "num_aug": integer(0), "bank_views": POSITIVE,
        "labeller": TEXT, "labeller_params": Spec("dict", optional=True), "screen": TEXT,
        "screen_params": Spec("dict", optional=True), "agreement": FLAG, "margin_norm": one_of("batch", "kept"),
        "same_space": FLAG, "bank_model": one_of("ema", "online"), "bank_batch_size": POSITIVE,
        "fusion": Spec("any"), "mode": one_of("async", "sync"), "logits_targets": one_of("online", "offline"),
    }

    @classmethod
    def resolve_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """The preset under the explicit params; the labeller and screen named exist and take their options."""
        resolved = super().resolve_params({**(PAPER_PRESET if params.get("preset") == "paper" else {}), **params})
        make_labeller(resolved["labeller"], **(resolved["labeller_params"] or {}))
        make_screen(resolved["screen"], **(resolved["screen_params"] or {}))
        for name in REGIME_PARAMS:
            resolved[name] = canonical(resolved[name], f"algorithm.params.{name}")
        return resolved

    @classmethod
    def check_budget(cls, params: dict[str, Any], epochs: int) -> None:
        """The first offline round runs at the start of epoch ``warmup_epochs`` (counted from 0): a budget
        that ends before it trains FixMatch plus an unused prototype head, which must not pass as APLT."""
        if params["warmup_epochs"] >= epochs:
            raise SsmarError(f"algorithm aplt: algorithm.params.warmup_epochs={params['warmup_epochs']} leaves no "
                             f"offline round in a budget of {epochs} epoch(s); raise train.epochs to at least "
                             f"{params['warmup_epochs'] + 1} or lower algorithm.params.warmup_epochs to at most "
                             f"{epochs - 1}")

    def __init__(self, model: nn.Module, num_classes: int, params: dict[str, Any], context):
        super().__init__(model, num_classes, params, context)
        p = self.params
        self.labeller = make_labeller(p["labeller"], **(p["labeller_params"] or {}))
        self.screen = make_screen(p["screen"], **(p["screen_params"] or {}))
        backbone = self._unwrap(model)
        # the settings that may follow the labelled share, at this run's share
        self.share = len(context.data.labelled) / max(1, len(context.data.train))
        self.at_share = {name: by_share(p[name], self.share, name) for name in REGIME_PARAMS}
        if context.dist.is_main:
            context.logger.info(f"aplt: labelled share {self.share:.3f}: " + ", ".join(
                f"{name} {value:.3g}" for name, value in self.at_share.items()))
        self.memory = PrototypeMemory(num_classes, backbone.embed_dim).to(context.device)  # what L^margin uses
        self.eval_prototypes = torch.zeros(num_classes, backbone.embed_dim, device=context.device)  # inference
        train_size = len(context.data.train)
        self.pseudo_labels = torch.full((train_size,), -1, dtype=torch.long)
        self.pseudo_keep = torch.zeros(train_size, dtype=torch.bool)
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
        clips = bank.dataset_index[originals]
        if p["same_space"]:  # the same labels and kept set, averaged in the online model's space
            self.space_features = self._same_space_features()
            self.memory.update(refine_prototypes(self.space_features[clips], result.assign[originals],
                                                 result.keep[originals], bank.labels[originals], self.num_classes,
                                                 result.prototypes))
        else:
            self.space_features = self._train_table(bank.features[originals], clips)
            self.memory.update(result.prototypes)
        unlabelled_rows = bank.is_unlabelled
        positions = bank.dataset_index[unlabelled_rows]
        self.pseudo_labels, self.pseudo_keep, self.pseudo_weight = scatter_pseudo_labels(
            len(ctx.data.train), positions, result.assign[unlabelled_rows], result.keep[unlabelled_rows],
            result.weight[unlabelled_rows])
        if p["mode"] == "sync":
            self._init_sync_bank(bank, result.centres)
        logits = bank.logits[unlabelled_rows]
        self.round += 1
        self._record_round(epoch, result, positions, unlabelled_rows, logits, previous, time.time() - started)
        return result

    def _embed_bank(self, encoder: nn.Module, num_aug: int, views: int, batch_norm: str) -> FeatureBank:
        """Every training clip embedded by ``encoder`` (:func:`ssmar.aplt.embedding.embed_bank`, split over
        DDP processes), with this round's augmentation stream."""
        ctx = self.context
        return embed_bank(encoder, ctx.data, ctx.clips, ctx.weak_augment, bank_generator(ctx.seed, self.round),
                          num_aug=num_aug, views=views, batch_norm=batch_norm,
                          batch_size=int(self.params["bank_batch_size"]), device=ctx.device, dist=ctx.dist,
                          progress=ctx.progress)

    def _train_table(self, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return train_table(rows, positions, len(self.context.data.train))

    def _same_space_features(self) -> torch.Tensor:
        """Every training clip embedded as the margin loss sees it: the online model with batch statistics."""
        bank = self._embed_bank(self._unwrap(self.model), num_aug=0, views=1, batch_norm="batch")
        return self._train_table(bank.features, bank.dataset_index)

    def _record_round(self, epoch: int, result: OfflineRound, positions: torch.Tensor, rows: torch.Tensor,
                      logits: torch.Tensor, previous: torch.Tensor, seconds: float) -> None:
        """Pseudo-label quality against the hidden labels, beside the classifier's own confident labels."""
        ctx = self.context
        if not ctx.dist.is_main or len(positions) == 0:
            return
        record = round_record(self.round, epoch, seconds, result, rows, ctx.data.train.labels[positions.cpu()], logits,
                              previous, self.eval_prototypes, float(self.params["p_cutoff"]), self.num_classes)
        self.rounds.append(record)
        ctx.logger.info(round_summary(record, self.params["labeller"], self.params["screen"]))
        save_rounds(self.rounds, ctx.work_dir)

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
            save_rounds(self.rounds, self.context.work_dir)

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
        self.pseudo_labels, self.pseudo_keep, self.pseudo_weight = scatter_pseudo_labels(
            len(self.sync_bank), unlabelled, result.assign[unlabelled], result.keep[unlabelled],
            result.weight[unlabelled])

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
        kept = self.pseudo_keep[positions].to(batch.idx_ulb.device)
        if p["logits_targets"] == "offline":  # kept: the offline label; else a confident online label, else the
            offline = kept | (~fixmatch_mask.bool() & (offline_weight > 0))  # offline label at its soft weight
            loss_u_logits = consistency_loss(ulb_strong["logits"], torch.where(offline, offline_labels, fixmatch_labels),
                                             torch.where(offline, offline_weight, fixmatch_mask.float()))
            stats["loss_u_logits"] = loss_u_logits.item()
        loss_sup_margin = additive_margin_loss(self.memory(lb_strong["feat"]), batch.y_lb, p["margin"], p["scale"])
        loss_u_margin = additive_margin_loss(self.memory(ulb_strong["feat"]), offline_labels, p["margin"], p["scale"],
                                             weight=offline_weight, per_batch=p["margin_norm"] == "batch")
        lambda_m = self.at_share["lambda_m"]
        loss = loss_sup + lambda_m * loss_sup_margin + weight_u * (loss_u_logits + lambda_m * loss_u_margin)
        stats.update({"loss_sup_margin": loss_sup_margin.item(), "loss_u_margin": loss_u_margin.item(),
                      "offline_keep": kept.float().mean().item(),
                      "offline_weight": offline_weight.mean().item()})
        return StepResult(loss=loss, stats=stats, pseudo_labels=offline_labels.clamp_min(0), mask=offline_weight)

    def epoch_stats(self) -> dict[str, Any]:
        return {"aplt_round": self.round}

    # ------------------------------------------------------------------ inference and state
    def score_outputs(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        if not self.prototypes_ready:
            return out["logits"]
        return fused_scores(out, self.eval_prototypes, self.at_share["fusion"], self.params["scale"])

    def diagnostic_scorers(self) -> dict[str, Callable[[dict[str, torch.Tensor]], torch.Tensor]]:
        if not self.prototypes_ready:
            return {}
        prototypes, scale = self.eval_prototypes, self.params["scale"]
        scorers = {"prototype": lambda out: scale * prototype_cosine(out["feat"], prototypes)}
        if self.at_share["fusion"]:  # the linear head alone, as every other method is scored
            scorers["linear"] = lambda out: out["logits"]
        else:  # what fusion = 1 would have scored, without a second run
            scorers["fused"] = lambda out: fused_scores(out, prototypes, 1.0, scale)
        return scorers

    @classmethod
    def inference_scores(cls, state: dict[str, Any], params: dict[str, Any],
                         device: torch.device) -> Callable[[dict[str, torch.Tensor]], torch.Tensor] | None:
        fusion = state.get("fusion", params["fusion"])  # checkpoints before issue 24: a plain number
        if not fusion or not state.get("round"):
            return None
        prototypes = state["prototypes"].to(device)
        return lambda out: fused_scores(out, prototypes, fusion, params["scale"])

    def state_dict(self) -> dict[str, Any]:
        def cpu(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.cpu().clone()

        return {"prototypes": cpu(self.eval_prototypes), "train_prototypes": cpu(self.memory.prototypes),
                "pseudo_labels": self.pseudo_labels.clone(), "pseudo_keep": self.pseudo_keep.clone(),
                "pseudo_weight": self.pseudo_weight.clone(), "fusion": self.at_share["fusion"],
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
        self.pseudo_keep = state["pseudo_keep"].clone() if "pseudo_keep" in state else self.pseudo_weight > 0
        self.round, self.rounds = state["round"], list(state["rounds"])
        self.screen.load_state_dict(state["screen"])
        self.sync_bank, self.sync_logits = on_device(state["sync_bank"]), on_device(state["sync_logits"])
        self.sync_centres = on_device(state["sync_centres"])

