"""The interface every algorithm implements, and what the engine hands it.

The engine owns the loop (sampling, augmentation, optimiser, EMA, checkpoints); an
algorithm only turns one labelled and one unlabelled batch into a loss, plus the
pseudo-labels and mask it used (for diagnostics against the hidden labels). Statistics
an algorithm keeps across steps live in ``state_dict`` so that ``--resume`` restores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from ssmar.config import Spec, check_section
from ssmar.errors import SsmarError

if TYPE_CHECKING:
    from ssmar.algorithms.context import TrainContext


@dataclass
class Batch:
    x_lb: torch.Tensor  # weak view of labelled clips
    y_lb: torch.Tensor
    idx_lb: torch.Tensor | None = None  # positions of the labelled clips in the train set
    x_lb_strong: torch.Tensor | None = None  # only for algorithms with needs_labelled_strong
    x_ulb_weak: torch.Tensor | None = None
    x_ulb_strong: torch.Tensor | None = None
    idx_ulb: torch.Tensor | None = None  # positions of the unlabelled clips in the train set
    y_ulb_hidden: torch.Tensor | None = None  # true labels: diagnostics only, never for training


@dataclass
class StepResult:
    loss: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)
    pseudo_labels: torch.Tensor | None = None  # [B_u] labels the unlabelled loss used
    mask: torch.Tensor | None = None  # [B_u] per-sample weight in [0, 1]


class Algorithm:
    name: ClassVar[str] = "base"
    uses_unlabelled: ClassVar[bool] = True
    needs_labelled_strong: ClassVar[bool] = False
    all_labels: ClassVar[bool] = False  # train on every clip of the train split (upper bound)
    defaults: ClassVar[dict[str, Any]] = {}
    specs: ClassVar[dict[str, Spec]] = {}  # type and range of each key of ``defaults``

    @classmethod
    def resolve_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """``defaults`` updated by ``params``, every key known and every value in its range: the engine
        calls this before it writes anything, so a bad value costs one error line and no file."""
        unknown = sorted(set(params) - set(cls.defaults))
        if unknown:
            raise SsmarError(f"algorithm.params: unknown key(s) {unknown} for {cls.name}; "
                             f"valid: {sorted(cls.defaults) or 'none'}")
        resolved = {**cls.defaults, **params}
        check_section(resolved, cls.specs, "algorithm.params.")
        return resolved

    @classmethod
    def check_budget(cls, params: dict[str, Any], epochs: int) -> None:
        """Raise one error line when a budget of ``epochs`` cannot run this algorithm as configured
        (APLT: no offline round before the end); called when the run is resolved."""

    def __init__(self, model: nn.Module, num_classes: int, params: dict[str, Any], context: "TrainContext"):
        self.params = self.resolve_params(params)
        self.model = model
        self.num_classes = num_classes
        self.context = context

    def train_step(self, batch: Batch) -> StepResult:
        raise NotImplementedError

    def forward_views(self, *views: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """One forward pass over concatenated views (shared BatchNorm statistics), split back."""
        sizes = [len(v) for v in views]
        output = self.model(torch.cat(views))
        return [{key: value for key, value in zip(output, parts)}
                for parts in zip(*(torch.split(value, sizes) for value in output.values()))]

    def supervised_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, label_smoothing=self.context.label_smoothing)

    def unsup_ramp(self) -> float:
        """Weight factor of unlabelled losses, rising linearly from 0 to 1 over the first
        ``train.unsup_rampup`` share of steps; shared by every SSL method so that none trains
        on the pseudo-labels of an untrained model (short budgets from scratch need it; ours)."""
        rampup_steps = self.context.unsup_rampup * self.context.total_steps
        return min(1.0, self.context.step / rampup_steps) if rampup_steps > 0 else 1.0

    def on_epoch_start(self, epoch: int) -> None:
        """Hook before each epoch's steps (APLT runs its offline phase here)."""

    def epoch_stats(self) -> dict[str, Any]:
        """Extra per-epoch statistics to log (e.g. class-wise thresholds)."""
        return {}

    def score_outputs(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """Class scores used for evaluation, from the (EMA) model's outputs ``feat`` and ``logits``:
        the linear head by default."""
        return out["logits"]

    def diagnostic_scorers(self) -> dict[str, Callable[[dict[str, torch.Tensor]], torch.Tensor]]:
        """Other scoring rules on the same outputs, reported beside ``score_outputs`` at each evaluation
        as ``eval_<name>_top1``; diagnostics only, they select nothing (APLT: its prototype head)."""
        return {}

    @classmethod
    def inference_scores(cls, state: dict[str, Any], params: dict[str, Any],
                         device: torch.device) -> Callable[[dict[str, torch.Tensor]], torch.Tensor] | None:
        """Scoring of a loaded checkpoint's model outputs, as ``score_outputs`` scores them in training
        (None = the linear head's logits); ``params`` are the run's resolved params, as it recorded them."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
