"""Settings that follow the labelled share (issue 24).

What helps APLT where labels are scarce (a strict screen, a strong pull towards the frozen
prototypes) costs where they are many: at 50 % labels the classifier already labels the
unlabelled clips almost perfectly and a strict screen only removes clips. A setting given as a
mapping ``{share: value}`` (labelled clips / training clips) is interpolated linearly between
its anchors and held constant beyond them, e.g. ``lambda_m: {0.1: 1.0, 0.5: 0.25}``; a plain
number means the same value at every share. Mappings read back from JSON have text keys, which
are accepted too.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import Tensor

from ssmar.errors import SsmarError

ByShare = float | Mapping[Any, float]


def anchors(value: ByShare, name: str, low: float = 0.0, high: float = math.inf) -> list[tuple[float, float]]:
    """The (share, value) anchors of ``value``, sorted; one clear error when it is neither a number in
    [low, high] nor a non-empty mapping from shares in [0, 1] to such numbers."""
    example = f"e.g. {name}=0.5 or {name}={{0.1: {low + 1:g}, 0.5: {low:g}}}"

    def number(raw: Any, what: str) -> float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise SsmarError(f"{name}: {what} {raw!r} is not a number; {example}")
        try:
            parsed = float(raw)
        except ValueError:
            raise SsmarError(f"{name}: {what} {raw!r} is not a number; {example}") from None
        if not math.isfinite(parsed):
            raise SsmarError(f"{name}: {what} {raw!r} must be finite; {example}")
        return parsed

    if isinstance(value, Mapping):
        if not value:
            raise SsmarError(f"{name}: an empty mapping gives no value at any labelled share; {example}")
        points = sorted((number(share, "labelled share"), number(v, "value")) for share, v in value.items())
    else:
        points = [(0.0, number(value, "value"))]
    for share, v in points:
        if not 0.0 <= share <= 1.0:
            raise SsmarError(f"{name}: labelled share {share:g} must lie in [0, 1]; {example}")
        if not low <= v <= high:
            raise SsmarError(f"{name}: value {v:g} must lie in [{low:g}, {high:g}]; {example}")
    return points


def canonical(value: ByShare, name: str) -> ByShare:
    """A number as given; a mapping as ``{"0.1": 1.0, ...}``, sorted, text keys: the form it has after a
    round trip through JSON (result files) or YAML, so that every saved copy of a run's settings is equal."""
    if not isinstance(value, Mapping):
        anchors(value, name)
        return value
    return {f"{share:g}": v for share, v in anchors(value, name)}


def by_share(value: ByShare, share: float, name: str = "setting") -> float:
    """``value`` at the labelled ``share``: the number itself, or the mapping interpolated linearly."""
    points = anchors(value, name)
    if share <= points[0][0]:
        return points[0][1]
    for (s0, v0), (s1, v1) in zip(points, points[1:]):
        if share <= s1:
            return v0 + (v1 - v0) * (share - s0) / (s1 - s0)
    return points[-1][1]


def labelled_share(labels: Tensor, groups: Tensor) -> float:
    """Labelled clips / all clips of a feature bank (``labels`` -1 where unlabelled; a labelled clip's
    augmented views share its ``groups`` id and count once)."""
    clips = torch.unique(groups)
    if clips.numel() == 0:
        return 0.0
    return torch.unique(groups[labels >= 0]).numel() / clips.numel()
