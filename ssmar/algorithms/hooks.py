"""Pieces the SSL baselines share, with USB semantics (Wang et al., NeurIPS 2022).

Stateless helpers turn teacher logits into targets, masks and the unlabelled loss. The
stateful hooks (FlexMatch, FreeMatch, SoftMatch) keep every statistic as a tensor on the
training device, saved by ``state_dict`` so that a resumed run continues the same
averages; batch statistics are summed over processes first, so under DDP every process
holds the same global statistic.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ssmar.config import Spec, number
from ssmar.errors import SsmarError
from ssmar.runtime.distributed import all_gather_cat, all_reduce_sum


def pseudo_label(logits: Tensor, hard: bool = True, temperature: float = 1.0) -> Tensor:
    """Targets from teacher logits: argmax class indices, or softmax(logits / T) (T < 1 sharpens)."""
    logits = logits.detach()
    return logits.argmax(dim=-1) if hard else torch.softmax(logits / temperature, dim=-1)


def confidence_mask(probs: Tensor, threshold: float | Tensor) -> Tensor:
    """1.0 where the top probability reaches ``threshold`` (a float or one per sample), else 0.0."""
    return (probs.max(dim=-1).values >= threshold).to(probs.dtype)


def consistency_loss(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Cross-entropy to hard (indices) or soft (distributions) targets, weighted per sample.

    The mean runs over the whole batch, masked-out samples included (USB), so the loss
    grows with the share of confident samples rather than being renormalised.
    """
    if targets.dim() == logits.dim():
        loss = -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    else:
        loss = F.cross_entropy(logits, targets, reduction="none")
    return (loss * mask).mean()


# ema_p / ema_halflife of the methods that keep running statistics (FreeMatch, SoftMatch)
STATISTIC_SPECS: dict[str, Spec] = {"ema_p": number(0.0, 1.0, high_open=True),
                                    "ema_halflife": number(0.0, 1.0, low_open=True, optional=True)}


def statistic_momentum(params: dict[str, Any], total_steps: int) -> float:
    """Momentum of a method's running statistics: ``ema_p``, or, when ``ema_halflife`` is set, the
    momentum whose half-life is that share of the run's steps.

    USB's 0.999 has a half-life of 693 steps, set for runs of 10^6 steps; over a few hundred steps
    the statistics would barely leave their initial values (docs/algorithms.md), so small budgets
    scale the half-life with the run instead [ours].
    """
    share = params.get("ema_halflife")
    if share is None:
        return float(params["ema_p"])
    return 0.5 ** (1.0 / max(1.0, float(share) * total_steps))


def global_sums(*parts: Tensor) -> list[Tensor]:
    """Sum each tensor over processes in one collective (float64), returned in the same shapes."""
    flat = torch.cat([part.detach().double().reshape(-1) for part in parts])
    all_reduce_sum(flat)
    return [chunk.view(part.shape) for chunk, part in zip(flat.split([part.numel() for part in parts]), parts)]


class Statistics:
    """A hook whose named tensor attributes are its checkpointed state."""

    state_names: ClassVar[tuple[str, ...]] = ()

    def state_dict(self) -> dict[str, Tensor]:
        return {name: getattr(self, name).detach().cpu().clone() for name in self.state_names}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.state_names:
            current, saved = getattr(self, name), state.get(name)
            if not isinstance(saved, Tensor) or saved.shape != current.shape:
                raise SsmarError(f"checkpoint: {type(self).__name__}.{name} is missing or has another shape "
                                 f"than {tuple(current.shape)}; resume with the data and config it was trained with")
            current.copy_(saved)


class ClasswiseStatus(Statistics):
    """FlexMatch's curriculum: each class's threshold follows how many clips it has learned.

    Every clip of the unlabelled pool remembers the class of its latest prediction above
    τ (−1: never). σ(c) counts the clips of class c; the learning effect is
    β(c) = σ(c) / max(max σ, N − Σσ) with threshold warm-up (clips never predicted
    confidently act as one more class, so thresholds start near 0 and rise as the pool is
    learned), else σ(c) / max σ; the threshold is τ·M(β(c)) with M(x) = x / (2 − x).
    """

    state_names = ("selected",)

    def __init__(self, pool: Tensor, train_size: int, num_classes: int, threshold: float = 0.95,
                 warmup: bool = True, device: torch.device | str = "cpu"):
        self.num_classes, self.threshold, self.warmup = num_classes, threshold, warmup
        pool = pool.long().to(device)
        self.compact = torch.full((train_size,), -1, dtype=torch.long, device=device)  # train position -> pool slot
        self.compact[pool] = torch.arange(len(pool), device=device)
        self.selected = torch.full((len(pool),), -1, dtype=torch.long, device=device)

    def learning_effect(self) -> Tensor:
        sigma = torch.bincount(self.selected[self.selected >= 0], minlength=self.num_classes).float()
        norm = sigma.max()
        if self.warmup:
            norm = torch.maximum(norm, (self.selected < 0).sum().float())
        return sigma / norm.clamp(min=1)

    def thresholds(self) -> Tensor:
        beta = self.learning_effect()
        return self.threshold * beta / (2 - beta)

    def mask(self, probs: Tensor, idx: Tensor) -> Tensor:
        """Mask by the current class thresholds, then record this batch's confident clips (USB order)."""
        max_probs, pred = probs.max(dim=-1)
        mask = (max_probs >= self.thresholds()[pred]).to(probs.dtype)
        slots = self.compact[idx]
        if bool((slots < 0).any()):
            raise ValueError("ClasswiseStatus.mask: idx_ulb holds positions outside the unlabelled pool")
        confident = max_probs >= self.threshold
        self.selected[all_gather_cat(slots[confident])] = all_gather_cat(pred[confident])
        return mask


class SelfAdaptiveThreshold(Statistics):
    """FreeMatch's threshold: τ_t(c) = MaxNorm(p̃_t)(c) · τ_t, both EMAs of the teacher.

    τ_t is an EMA of the mean top probability (a global confidence level, starting at
    1/K), p̃_t an EMA of the mean probability vector (the local, class-wise level), and
    the label histogram h_t an EMA of the argmax frequencies, used by the fairness loss.
    """

    state_names = ("global_threshold", "class_probs", "label_hist")

    def __init__(self, num_classes: int, momentum: float = 0.999, device: torch.device | str = "cpu"):
        self.momentum = momentum
        self.global_threshold = torch.tensor(1.0 / num_classes, device=device)
        self.class_probs = torch.full((num_classes,), 1.0 / num_classes, device=device)
        self.label_hist = torch.full((num_classes,), 1.0 / num_classes, device=device)

    def update(self, probs: Tensor) -> None:
        max_probs, pred = probs.max(dim=-1)
        hist = torch.bincount(pred, minlength=len(self.class_probs))
        conf, prob, hist = global_sums(max_probs.sum(), probs.sum(dim=0), hist)
        count, m = hist.sum(), self.momentum
        self.global_threshold.mul_(m).add_((1 - m) * (conf / count).float())
        self.class_probs.mul_(m).add_((1 - m) * (prob / count).float())
        self.label_hist.mul_(m).add_((1 - m) * (hist / count).float())

    def thresholds(self) -> Tensor:
        return self.class_probs / self.class_probs.max() * self.global_threshold

    def mask(self, probs: Tensor) -> Tensor:
        """Update the EMAs with this batch first, then mask against them (USB order)."""
        self.update(probs)
        max_probs, pred = probs.max(dim=-1)
        return (max_probs >= self.thresholds()[pred]).to(probs.dtype)

    def fairness_loss(self, logits_strong: Tensor, mask: Tensor) -> Tensor:
        """Self-adaptive fairness: −H(SumNorm(p̃/h), SumNorm(p̄_s/h_s)) over the masked strong views.

        A negative cross-entropy: minimising it moves the batch's mean prediction (each
        class divided by how often it is the argmax) towards the classes the model's
        normalised level holds low, for more diverse predictions against collapse onto a
        few classes. Batch-local like USB (p̃ and h are the global EMAs).
        """
        selected = mask.bool()
        if not bool(selected.any()):
            return logits_strong.new_zeros(())
        probs = logits_strong[selected].softmax(dim=-1)
        hist = torch.bincount(probs.argmax(dim=-1), minlength=probs.shape[-1]).to(probs.dtype)
        hist = hist / hist.sum()
        model = self.class_probs * torch.nan_to_num(1 / self.label_hist, posinf=0.0)
        batch = probs.mean(dim=0) * torch.nan_to_num(1 / hist, posinf=0.0)
        return (model / model.sum() * torch.log(batch / batch.sum() + 1e-12)).sum()


class GaussianWeighting(Statistics):
    """SoftMatch's soft mask: a truncated Gaussian of the top probability.

    λ(p) = exp(−(max p − μ_t)² / (2σ_t² / n_sigma²)) below the EMA mean μ_t, 1 above it, with
    μ_t and σ_t² EMAs of the batch mean and unbiased variance of max p (USB's scaling of
    the variance by n_sigma²: a larger n_sigma cuts uncertain samples more steeply).
    """

    state_names = ("mean", "var")

    def __init__(self, num_classes: int, momentum: float = 0.999, n_sigma: float = 2.0,
                 device: torch.device | str = "cpu"):
        self.momentum, self.n_sigma = momentum, n_sigma
        self.mean = torch.tensor(1.0 / num_classes, device=device)
        self.var = torch.tensor(1.0, device=device)

    def update(self, probs: Tensor) -> None:
        max_probs = probs.max(dim=-1).values
        total, squares, count = global_sums(max_probs.sum(), max_probs.square().sum(),
                                            torch.tensor(float(len(max_probs)), device=probs.device))
        mean = total / count
        var = ((squares - count * mean**2) / (count - 1).clamp(min=1)).clamp(min=0)
        m = self.momentum
        self.mean.mul_(m).add_((1 - m) * mean.float())
        self.var.mul_(m).add_((1 - m) * var.float())

    def weights(self, probs: Tensor) -> Tensor:
        """Update μ_t, σ_t² with this batch first, then weigh it (USB order)."""
        self.update(probs)
        below = (probs.max(dim=-1).values - self.mean).clamp(max=0)
        return torch.exp(-below.square() / (2 * self.var / self.n_sigma**2))


class DistributionAlignment(Statistics):
    """SoftMatch's uniform alignment: p ← SumNorm(p · u / p̄), p̄ an EMA of the mean teacher prediction.

    Classes the model over-predicts are scaled down and rare ones up, so that confidence
    (SoftMatch's weights) is not biased towards the classes learned first. p̄ starts at
    the first batch's mean.
    """

    state_names = ("model_probs", "started")

    def __init__(self, num_classes: int, momentum: float = 0.999, device: torch.device | str = "cpu"):
        self.momentum = momentum
        self.target = torch.full((num_classes,), 1.0 / num_classes, device=device)
        self.model_probs = self.target.clone()
        self.started = torch.tensor(False, device=device)

    def __call__(self, probs: Tensor) -> Tensor:
        total, count = global_sums(probs.sum(dim=0), torch.tensor(float(len(probs)), device=probs.device))
        mean = (total / count).float()
        ema = self.momentum * self.model_probs + (1 - self.momentum) * mean
        self.model_probs.copy_(torch.where(self.started, ema, mean))
        self.started.fill_(True)
        aligned = probs * (self.target + 1e-6) / (self.model_probs + 1e-6)
        return aligned / aligned.sum(dim=-1, keepdim=True)
