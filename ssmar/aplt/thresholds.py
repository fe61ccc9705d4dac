"""Self-adaptive per-class thresholds on the distance to the assigned centre.

The paper gives each class its own threshold τ(k), adapting round by round, so that a tight
class is screened tightly and a loose class loosely [paper]; the formulas are ours:

- ``mean`` (default): τ(k) = mean distance of class k's unlabelled members this round.
- ``quantile``: τ(k) = q-quantile of those distances (linear interpolation, q default 0.8).
- ``ema``: FreeMatch-style, τ_t(k) = m·τ_{t-1}(k) + (1-m)·mean_t(k), m default 0.7; a class's
  first round with members uses its mean; a round without members leaves τ(k) unchanged.
- ``labelled``: calibration on the labelled members (originals and views): τ(k) = mean +
  c·std of their distances (population std, so a single anchor gives its own distance), c
  default 1.0.
- ``fixed``: one ``value`` for every class. ``none``: keep everything (τ = +inf).

A class with no members to measure (no unlabelled members; for ``labelled``, no labelled
members) gets τ(k) = +inf: there is nothing to screen, and +inf marks "no constraint" in logs.
``compute`` is called once per offline round; ``ema`` carries state across rounds, saved by
``state_dict`` so that a resumed run continues the same average.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ssmar.aplt.registry import construct
from ssmar.errors import SsmarError


class ThresholdPolicy:
    """Turns one round's distances into per-class thresholds τ [K] (float32)."""

    name = ""

    def compute(self, distance: Tensor, assign: Tensor, is_unlabelled: Tensor, labelled_mask: Tensor,
                num_classes: int) -> Tensor:
        """Thresholds for this round from ``distance`` [N] to the centre ``assign`` [N] points to."""
        _check_round(distance, assign, is_unlabelled, labelled_mask, num_classes)
        with torch.no_grad():
            return self._compute(distance, assign, is_unlabelled, labelled_mask, num_classes).float()

    def _compute(self, distance: Tensor, assign: Tensor, is_unlabelled: Tensor, labelled_mask: Tensor,
                 num_classes: int) -> Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise SsmarError(f"threshold state is for policy {state.get('name')!r}, not {self.name!r}; "
                             "resume with the same aplt threshold setting as the checkpoint")


class MeanThreshold(ThresholdPolicy):
    name = "mean"

    def _compute(self, distance, assign, is_unlabelled, labelled_mask, num_classes):
        count, mean, _ = class_moments(distance[is_unlabelled], assign[is_unlabelled], num_classes)
        return _inf_where_empty(mean, count)


class QuantileThreshold(ThresholdPolicy):
    name = "quantile"

    def __init__(self, q: float = 0.8):
        if not 0.0 <= q <= 1.0:
            raise SsmarError(f"quantile threshold q={q} is outside [0, 1]; set aplt threshold q in [0, 1]")
        self.q = q

    def _compute(self, distance, assign, is_unlabelled, labelled_mask, num_classes):
        return class_quantile(distance[is_unlabelled], assign[is_unlabelled], num_classes, self.q)


class EmaThreshold(ThresholdPolicy):
    name = "ema"

    def __init__(self, momentum: float = 0.7):
        if not 0.0 <= momentum < 1.0:
            raise SsmarError(f"ema threshold momentum={momentum} is outside [0, 1); set aplt threshold momentum")
        self.momentum = momentum
        self.tau: Tensor | None = None  # [K] float64 on CPU; +inf = class not seen yet

    def _compute(self, distance, assign, is_unlabelled, labelled_mask, num_classes):
        count, mean, _ = class_moments(distance[is_unlabelled], assign[is_unlabelled], num_classes)
        previous = torch.full((num_classes,), math.inf, dtype=torch.float64) if self.tau is None else self.tau
        if previous.numel() != num_classes:
            raise SsmarError(f"ema threshold state has {previous.numel()} classes, this run has {num_classes}; "
                             "start a fresh run or use a checkpoint of the same dataset")
        previous = previous.to(mean.device)
        smoothed = torch.where(previous.isinf(), mean, self.momentum * previous + (1 - self.momentum) * mean)
        tau = torch.where(count > 0, smoothed, previous)
        self.tau = tau.cpu()
        return tau

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tau": None if self.tau is None else self.tau.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.tau = None if state.get("tau") is None else torch.as_tensor(state["tau"], dtype=torch.float64).cpu()


class LabelledThreshold(ThresholdPolicy):
    name = "labelled"

    def __init__(self, c: float = 1.0):
        if not math.isfinite(c):
            raise SsmarError(f"labelled threshold c={c} must be finite; set aplt threshold c")
        self.c = c

    def _compute(self, distance, assign, is_unlabelled, labelled_mask, num_classes):
        count, mean, std = class_moments(distance[labelled_mask], assign[labelled_mask], num_classes)
        return _inf_where_empty(mean + self.c * std, count)


class FixedThreshold(ThresholdPolicy):
    name = "fixed"

    def __init__(self, value: float):
        if not math.isfinite(value):
            raise SsmarError(f"fixed threshold value={value} must be finite; set aplt threshold value "
                             "(a cosine distance in [0, 2])")
        self.value = value

    def _compute(self, distance, assign, is_unlabelled, labelled_mask, num_classes):
        return torch.full((num_classes,), self.value, device=distance.device)


class NoThreshold(ThresholdPolicy):
    name = "none"

    def _compute(self, distance, assign, is_unlabelled, labelled_mask, num_classes):
        return torch.full((num_classes,), math.inf, device=distance.device)


POLICIES: dict[str, type[ThresholdPolicy]] = {policy.name: policy for policy in (
    MeanThreshold, QuantileThreshold, EmaThreshold, LabelledThreshold, FixedThreshold, NoThreshold)}


def make_threshold_policy(name: str = "mean", **params: Any) -> ThresholdPolicy:
    """Build a policy by name; ``params`` are its options (q, momentum, c, value)."""
    return construct(POLICIES, "threshold policy", name, params)


def screen(distance: Tensor, assign: Tensor, thresholds: Tensor) -> Tensor:
    """Keep mask [N]: distance <= τ(assigned class). Labelled rows are the caller's to ignore."""
    return distance <= thresholds.to(distance.device)[assign]


def class_moments(values: Tensor, classes: Tensor, num_classes: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class count [K] (long), mean and population std [K] (float64; 0 where count is 0)."""
    values = values.double()
    count = torch.zeros(num_classes, dtype=torch.long, device=values.device).index_add_(
        0, classes, torch.ones_like(classes))
    total = torch.zeros(num_classes, dtype=torch.float64, device=values.device).index_add_(0, classes, values)
    squares = torch.zeros_like(total).index_add_(0, classes, values * values)
    mean = total / count.clamp_min(1)
    std = (squares / count.clamp_min(1) - mean * mean).clamp_min(0).sqrt()
    return count, mean, std


def class_quantile(values: Tensor, classes: Tensor, num_classes: int, q: float) -> Tensor:
    """Per-class q-quantile [K] (linear interpolation, as torch.quantile); +inf for empty classes.

    One global sort instead of K torch.quantile calls, which also lifts torch.quantile's
    input-size limit.
    """
    if values.numel() == 0:
        return torch.full((num_classes,), math.inf, dtype=torch.float64, device=values.device)
    count = torch.bincount(classes, minlength=num_classes)
    values = values.double()
    by_value = values.argsort()
    sorted_values = values[by_value[classes[by_value].argsort(stable=True)]]  # grouped by class, ascending
    first = count.cumsum(0) - count
    position = q * (count - 1).clamp_min(0).double()
    low = position.floor().long()
    last = values.numel() - 1  # clamps the (unused) indices of empty classes
    pick_low = sorted_values[(first + low).clamp_max(last)]
    pick_high = sorted_values[(first + position.ceil().long()).clamp_max(last)]
    quantile = pick_low + (position - low) * (pick_high - pick_low)
    return _inf_where_empty(quantile, count)


def _inf_where_empty(values: Tensor, count: Tensor) -> Tensor:
    return torch.where(count > 0, values, torch.full_like(values, math.inf))


def _check_round(distance: Tensor, assign: Tensor, is_unlabelled: Tensor, labelled_mask: Tensor,
                 num_classes: int) -> None:
    shapes = {tuple(t.shape) for t in (distance, assign, is_unlabelled, labelled_mask)}
    if len(shapes) != 1 or distance.ndim != 1:
        raise SsmarError(f"threshold inputs must be 1-D and of equal length, got shapes {sorted(shapes)}; "
                         "pass the k-means distance, assign and the bank's masks")
    if is_unlabelled.dtype != torch.bool or labelled_mask.dtype != torch.bool:
        raise SsmarError("threshold masks is_unlabelled and labelled_mask must be bool tensors")
    if assign.numel() and not 0 <= int(assign.min()) <= int(assign.max()) < num_classes:
        raise SsmarError(f"threshold: assignments must lie in [0, {num_classes}); pass k-means' assign")
