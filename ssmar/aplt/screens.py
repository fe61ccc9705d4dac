"""Screens: which of a labeller's pseudo-labels the online phase may learn from.

The paper screens by self-adaptive per-class thresholds on the distance to the class centre
[paper]; measured, they keep about two thirds of the unlabelled clips whatever their quality
(issue 12). The ``precision`` screen screens for quality instead of coverage: it keeps a
clip when the labeller's *estimated precision at the clip's score* reaches a target, the
precision being measured on labelled clips the labeller did not see (cross-fitting).

- ``precision``: cross-fitted precision-vs-score curve, per-class thresholds at a target [ours].
- ``confidence``: the labeller's own posterior probability at a target, for labellers whose
  score is a probability (``posterior``, ``labelprop``, ``multiproto`` with ``maxprob``); clips
  below it may keep a weight from their probability (``below``) [ours].
- ``paper``: the paper's thresholds (:mod:`ssmar.aplt.thresholds`) on distance = -score.
- ``none``: keep every unlabelled row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from ssmar.aplt.labellers import Labeller, Labelling
from ssmar.aplt.regime import ByShare, anchors, by_share, labelled_share
from ssmar.aplt.registry import construct
from ssmar.aplt.thresholds import make_threshold_policy, screen
from ssmar.errors import SsmarError


@dataclass
class ScreenResult:
    """A screen's decision over the bank rows (tensors on the features' device)."""

    keep: Tensor  # [N] bool, True only on unlabelled rows that pass
    thresholds: Tensor  # [K] float32 per-class score threshold (+inf = keep none, -inf = keep all)
    weight: Tensor  # [N] float32 in [0, 1]: per-row loss weight (keep as 0/1 for hard screens)
    estimated_precision: Tensor | None  # [K] the screen's estimate at its threshold (NaN: keeps none)


class Screen:
    """Base class: checks the inputs; screens with state across rounds override the state methods."""

    name: ClassVar[str] = ""

    def __call__(self, labeller: Labeller, labelling: Labelling, features: Tensor, labels: Tensor, groups: Tensor,
                 num_classes: int, logits: Tensor | None = None) -> ScreenResult:
        """Screen ``labelling`` (made by ``labeller`` from these inputs); ``groups`` [N] is a clip id per row,
        shared by a labelled clip and its augmented views."""
        n = features.shape[0]
        shapes = {tuple(t.shape) for t in (labels, groups, labelling.assign, labelling.score)}
        if shapes != {(n,)}:
            raise SsmarError(f"screen {self.name!r}: labels, groups and the labelling's assign and score need one entry "
                             f"per bank row ({n}), got shapes {sorted(shapes)}")
        with torch.no_grad():
            device = features.device
            return self._screen(labeller, labelling, features, labels.to(device, torch.long),
                                groups.to(device, torch.long), num_classes, logits)

    def _screen(self, labeller: Labeller, labelling: Labelling, features: Tensor, labels: Tensor, groups: Tensor,
                num_classes: int, logits: Tensor | None) -> ScreenResult:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise SsmarError(f"screen state is for {state.get('name')!r}, not {self.name!r}; "
                             "resume with the same aplt screen setting as the checkpoint")


class NoScreen(Screen):
    """Keep every unlabelled row (the coverage end of every ablation)."""

    name = "none"

    def _screen(self, labeller, labelling, features, labels, groups, num_classes, logits):
        unlabelled = labels < 0
        return ScreenResult(unlabelled, torch.full((num_classes,), -math.inf, device=features.device),
                            unlabelled.float(), None)


class PaperScreen(Screen):
    """The paper's self-adaptive per-class thresholds [paper; formulas ours], on distance = -score.

    ``policy`` and its options are those of :func:`ssmar.aplt.thresholds.make_threshold_policy`
    (mean, quantile q, ema momentum, labelled c, fixed value, none); with the ``kmeans``
    labeller's default score this is today's screening exactly. τ = +inf ("no constraint")
    becomes the score threshold -inf.
    """

    name = "paper"

    def __init__(self, policy: str = "mean", **policy_params: Any):
        self.policy = make_threshold_policy(policy, **policy_params)

    def _screen(self, labeller, labelling, features, labels, groups, num_classes, logits):
        unlabelled = labels < 0
        distance = -labelling.score
        tau = self.policy.compute(distance, labelling.assign, unlabelled, ~unlabelled, num_classes)
        keep = screen(distance, labelling.assign, tau) & unlabelled
        return ScreenResult(keep, -tau, keep.float(), None)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "policy": self.policy.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.policy.load_state_dict(state["policy"])


class PrecisionScreen(Screen):
    """Keep a clip when the labeller's precision at its score, estimated out of sample, reaches ``target``.

    Cross-fitting: the labelled clips of each class with at least two clips are dealt into
    ``folds`` folds (seeded, so a resumed run repeats them; a class keeps at least one
    visible clip in every fold, and a single-clip class is never hidden). For each fold its
    clips, views included, are set to -1 and the labeller reruns; each hidden clip's
    original row (its group's first labelled row, FeatureBank's order) then yields
    (assigned class, score, correct?) exactly as an unlabelled row would.

    Fit: scores become positions — with ``by="rank"`` the fraction of that run's unlabelled
    rows of the same assigned class scoring at most as high (comparable across classes and
    runs), with ``by="score"`` the raw score. Precision vs position is pooled over classes by
    isotonic regression (pool-adjacent-violators), each block shrunk towards the pooled
    held-out accuracy by ``prior`` pseudo-rows and made monotone from above (conservative).
    Each class then moves that curve by its own evidence, shrunk the same way:
    shift_k = (correct_k - expected_k) / (n_k + prior) over its held-out rows, so a class
    with 1-3 labelled clips stays near the pooled curve and one without held-out rows uses
    it as is. A clip is kept where curve + shift of its class >= ``target``; the per-class
    threshold is the lowest kept score. Without any held-out row (one labelled clip per
    class) nothing can be estimated, and the screen falls back to the paper's per-class mean
    threshold (``fallback``), so that the margin loss keeps its pseudo-labels.

    Biases, both ways: each rerun lost a share of its anchors, so it labels worse than the
    full labelling that is screened (pessimistic; more so with ``folds=2`` than with more
    folds, which cost one labeller run each). But the backbone, and the classifier whose
    logits ``posterior`` reads, were trained on these very labelled clips, so their features
    and logits are cleaner than an unlabelled clip's (optimistic; strongest for
    ``posterior``). Only a labelled carve-out kept out of training would remove the second
    bias; check the screen's kept accuracy on validation.

    ``soft=True`` gives every unlabelled row its estimated precision as loss weight
    (confidence-weighted targets); ``keep`` still marks the rows that reach the target.
    """

    name = "precision"

    def __init__(self, target: float = 0.9, folds: int = 2, by: str = "rank", prior: float = 4.0,
                 soft: bool = False, seed: int = 0):
        if not 0 < target <= 1 or folds < 2 or prior < 0 or by not in ("rank", "score"):
            raise SsmarError(f"screen 'precision': need 0 < target <= 1, folds >= 2, prior >= 0 and by in "
                             f"['rank', 'score'], got target={target}, folds={folds}, prior={prior}, by={by!r}")
        self.target, self.folds, self.by, self.prior, self.soft, self.seed = target, folds, by, prior, soft, seed
        self.fallback = PaperScreen("mean")

    def _screen(self, labeller, labelling, features, labels, groups, num_classes, logits):
        unlabelled = labels < 0
        held_class, held_position, held_correct = self._held_out(labeller, labelling, features, labels, groups,
                                                                 num_classes, logits)
        if held_class.numel() == 0:  # one labelled clip per class: nothing to hold out, nothing to estimate
            return self.fallback(labeller, labelling, features, labels, groups, num_classes, logits)
        position = self._position(labelling.score, labelling.assign, unlabelled, num_classes)
        starts, values = pooled_precision_curve(held_position, held_correct, self.prior)
        expected = step_lookup(starts, values, held_position)
        gap = torch.zeros(num_classes, device=features.device)
        gap.index_add_(0, held_class, held_correct.float() - expected)
        shift = gap / (torch.bincount(held_class, minlength=num_classes) + self.prior).clamp_min(1e-12)
        estimate = (step_lookup(starts, values, position) + shift[labelling.assign]).clamp(0, 1)
        keep = unlabelled & (estimate >= self.target)
        kept_class = labelling.assign[keep]
        thresholds = torch.full((num_classes,), math.inf, device=features.device).scatter_reduce(
            0, kept_class, labelling.score[keep], "amin")
        at_threshold = torch.full((num_classes,), math.inf, device=features.device).scatter_reduce(
            0, kept_class, estimate[keep], "amin")
        at_threshold = at_threshold.masked_fill(at_threshold.isinf(), math.nan)
        weight = torch.where(unlabelled, estimate, 0.0) if self.soft else keep.float()
        return ScreenResult(keep, thresholds, weight, at_threshold)

    def _held_out(self, labeller: Labeller, labelling: Labelling, features: Tensor, labels: Tensor, groups: Tensor,
                  num_classes: int, logits: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Assigned class, position and correctness of every hidden clip's original row, over all folds."""
        unlabelled = labels < 0
        labelled_rows = (~unlabelled).nonzero().squeeze(1)
        clips, inverse = torch.unique(groups[labelled_rows], return_inverse=True)
        originals = torch.full_like(clips, features.shape[0]).scatter_reduce(0, inverse, labelled_rows, "amin")
        fold = self._deal(labels[originals], num_classes).to(features.device)
        found: list[tuple[Tensor, Tensor, Tensor]] = []
        for f in range(self.folds):
            if not (fold == f).any():
                continue
            hidden = ~unlabelled & torch.isin(groups, clips[fold == f])
            fold_labels = labels.masked_fill(hidden, -1)
            visible = torch.bincount(fold_labels[fold_labels >= 0], minlength=num_classes)
            run = labeller(features, fold_labels, num_classes, logits=logits,
                           init_centres=labelling.centres if (visible == 0).any() else None)
            rows = originals[fold == f]
            position = self._position(run.score, run.assign, unlabelled, num_classes)
            found.append((run.assign[rows], position[rows], run.assign[rows] == labels[rows]))
        if not found:
            empty = torch.empty(0, device=features.device)
            return empty.long(), empty, empty.bool()
        held_class, held_position, held_correct = (torch.cat(parts) for parts in zip(*found))
        return held_class, held_position, held_correct

    def _deal(self, clip_class: Tensor, num_classes: int) -> Tensor:
        """Fold [C] of each labelled clip, stratified by class; -1 for a class's only clip (never hidden)."""
        generator = torch.Generator().manual_seed(self.seed)
        clip_class = clip_class.cpu()
        fold = torch.full_like(clip_class, -1)
        for k in range(num_classes):
            members = (clip_class == k).nonzero().squeeze(1)
            if members.numel() >= 2:
                order = members[torch.randperm(members.numel(), generator=generator)]
                fold[order] = torch.arange(order.numel()) % self.folds
        return fold

    def _position(self, score: Tensor, assign: Tensor, reference: Tensor, num_classes: int) -> Tensor:
        """Position [N] of each row's score among the ``reference`` rows' scores of the same assigned class."""
        if self.by == "score":
            return score.float()
        position = torch.ones_like(score, dtype=torch.float32)
        for k in range(num_classes):
            rows = assign == k
            pool = score[rows & reference].sort().values
            if pool.numel():
                position[rows] = torch.searchsorted(pool, score[rows], right=True).float() / pool.numel()
        return position


def pooled_precision_curve(position: Tensor, correct: Tensor, prior: float) -> tuple[Tensor, Tensor]:
    """Non-decreasing step curve of precision vs position: block starts [B] and values [B].

    Isotonic regression by pool-adjacent-violators over distinct positions; each block's
    accuracy is shrunk towards the overall accuracy by ``prior`` pseudo-rows, then lowered to
    the minimum of itself and the blocks above it, so shrinkage cannot break monotonicity
    and the curve errs low.
    """
    distinct, inverse = torch.unique(position, return_inverse=True)
    count = torch.bincount(inverse, minlength=distinct.numel()).double()
    hits = torch.zeros_like(count).index_add_(0, inverse, correct.double())
    blocks: list[list[float]] = []  # [hits, rows, index of first distinct position]
    for index, (h, n) in enumerate(zip(hits.tolist(), count.tolist())):
        blocks.append([h, n, index])
        while len(blocks) > 1 and blocks[-2][0] * blocks[-1][1] > blocks[-1][0] * blocks[-2][1]:
            h_last, n_last, _ = blocks.pop()
            blocks[-1][0] += h_last
            blocks[-1][1] += n_last
    overall = float(hits.sum() / count.sum())
    values = torch.tensor([(h + prior * overall) / (n + prior) for h, n, _ in blocks], device=position.device)
    values = values.flip(0).cummin(0).values.flip(0)
    starts = distinct[torch.tensor([start for _, _, start in blocks], device=position.device)]
    return starts, values.float()


def step_lookup(starts: Tensor, values: Tensor, query: Tensor) -> Tensor:
    """Value of the step curve at ``query``: its last block starting at or below; the first block below all."""
    index = (torch.searchsorted(starts, query.contiguous(), right=True) - 1).clamp_min(0)
    return values[index]


class ConfidenceScreen(Screen):
    """Keep a clip when the labeller's posterior probability of its class reaches ``threshold`` [ours].

    The offline counterpart of FixMatch's confidence mask: a labeller with a posterior (the
    frozen classifier's, smoothed over the bank's neighbours and class-balanced) states its own
    precision, and on the validation carve-out its probability was the better-calibrated
    measure (docs/aplt.md; the cross-fitted ``precision`` screen, estimated on labelled clips
    the backbone was trained on, kept nearly everything). One threshold for every class, so a
    class the labeller is unsure of yields fewer clips rather than a looser cut.

    Every clip, weighted (issue 24): a kept clip weighs 1; a clip below the threshold weighs
    ``below`` × its label's clean fraction (p - 1/K) / (1 - 1/K), the share of a label that is
    signal when it is right with probability p and otherwise uniform: 0 for a label no better
    than chance, growing to ``below`` near the threshold. ``below: 0`` is the hard screen.
    ``threshold`` and ``below`` may follow the bank's labelled share (:mod:`ssmar.aplt.regime`). By
    default ``below`` does, from 0 (the hard screen) at 10 % labels to 1 at 50 %: on the validation
    carve-out weighing every clip cost 2 clips at a share of 0.17 and gained 2 and 4 at 0.25 and 0.5
    (BENCHMARKS.md §14).
    """

    name = "confidence"
    BELOW = {0.1: 0.0, 0.5: 1.0}

    def __init__(self, threshold: ByShare = 0.9, below: ByShare | None = None):
        below = dict(self.BELOW) if below is None else below
        anchors(threshold, "screen 'confidence': threshold", 0.0, 1.0)
        anchors(below, "screen 'confidence': below", 0.0, 1.0)
        self.threshold, self.below = threshold, below

    def _screen(self, labeller, labelling, features, labels, groups, num_classes, logits):
        if labelling.probs is None:
            raise SsmarError(f"screen 'confidence' needs a labeller with a posterior; {labeller.name!r} has none "
                             "(use posterior or labelprop, kmeans/multiproto with balance, or another screen)")
        share = labelled_share(labels, groups)
        threshold, below = by_share(self.threshold, share), by_share(self.below, share)
        unlabelled = labels < 0
        confidence = labelling.probs.gather(1, labelling.assign[:, None]).squeeze(1)
        keep = unlabelled & (confidence >= threshold)
        weight = torch.where(keep, 1.0, below * clean_fraction(confidence, num_classes) * unlabelled)
        return ScreenResult(keep, torch.full((num_classes,), threshold, device=features.device), weight.float(),
                            None)


def clean_fraction(probability: Tensor, num_classes: int) -> Tensor:
    """The share α of a label that is signal, from the probability p that it is right, under uniform noise:
    p = α + (1 - α) / K, so α = (p - 1/K) / (1 - 1/K), clamped to [0, 1]."""
    chance = 1.0 / num_classes
    return ((probability - chance) / (1.0 - chance)).clamp(0.0, 1.0)


SCREENS: dict[str, type[Screen]] = {screen_class.name: screen_class for screen_class in (
    PrecisionScreen, ConfidenceScreen, PaperScreen, NoScreen)}


def make_screen(name: str, **params: Any) -> Screen:
    """Build a screen by name; ``params`` are its keyword options (see each class)."""
    return construct(SCREENS, "screen", name, params)
