"""Input streams of a skeleton clip: joint, bone, joint-motion and bone-motion.

These are the field's four standard streams (2s-AGCN, MS-G3D, CTR-GCN, PYSKL). A bone is the
vector from a joint's parent to the joint along the layout's tree (rooted at its centre joint),
so the root's bone is zero; motion is the frame-to-frame displacement. Stacked as input channels
they are *early fusion*; one model per stream with scores averaged (``ssmar eval --fuse``) is
*late fusion*. A missing joint (all coordinates zero) gives zero bones and motion next to it, so
an undetected limb never reads as a long bone or a jump.
"""

from __future__ import annotations

from collections import deque
from typing import Sequence

import numpy as np
import torch

from ssmar.data.layouts import Layout
from ssmar.errors import SsmarError

STREAMS = ("joint", "bone", "joint_motion", "bone_motion")


def bone_parents(layout: Layout) -> np.ndarray:
    """Each joint's parent in a breadth-first tree over the layout's edges from its centre joint; the
    root, and any joint the edges do not reach, is its own parent (its bone is zero)."""
    parents = np.arange(layout.num_joints)
    neighbours: list[list[int]] = [[] for _ in range(layout.num_joints)]
    for a, b in layout.edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    seen = {layout.center}
    queue = deque([layout.center])
    while queue:
        joint = queue.popleft()
        for other in sorted(neighbours[joint]):
            if other not in seen:
                seen.add(other)
                parents[other] = joint
                queue.append(other)
    return parents


def present(x: torch.Tensor) -> torch.Tensor:
    """``[N, 1, T, V, M]``: whether each joint was detected (any coordinate non-zero)."""
    return (x != 0).any(dim=1, keepdim=True)


def bone(x: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
    """``x[..., v, :] - x[..., parents[v], :]`` for ``x`` of shape ``[N, C, T, V, M]``; zero where the joint
    or its parent is missing."""
    seen = present(x)
    both = seen & seen[:, :, :, parents]
    return (x - x[:, :, :, parents]) * both


def motion(x: torch.Tensor) -> torch.Tensor:
    """Frame-to-frame displacement ``[N, C, T, V, M]`` (the last frame repeats the step before it; zero
    where a joint is missing in either frame), so small, slow movements reach the first layer directly."""
    seen = present(x)
    step = (x[:, :, 1:] - x[:, :, :-1]) * (seen[:, :, 1:] & seen[:, :, :-1])
    return torch.cat([step, step[:, :, -1:]], dim=2)


def check_streams(streams: Sequence[str], option: str = "model.streams", at_least: int = 1,
                  example: str = "model.streams=[joint,bone]") -> tuple[str, ...]:
    """The stream names as a tuple; unknown or repeated names, or fewer than ``at_least``, are one error line
    naming ``option`` (a model's input channels need one stream, a late fusion two)."""
    unknown = [name for name in streams if name not in STREAMS]
    if unknown or len(streams) < at_least or len(set(streams)) != len(streams):
        count = "at least one" if at_least == 1 else f"{at_least} or more"
        raise SsmarError(f"{option}={list(streams)}: give {count} of {', '.join(STREAMS)}, each at most once, "
                         f"e.g. {example}")
    return tuple(streams)


def compose_streams(x: torch.Tensor, streams: Sequence[str], parents: torch.Tensor) -> torch.Tensor:
    """The requested streams of ``x`` stacked as channels, in the order given: ``[N, C * len(streams), T, V, M]``."""
    bones = bone(x, parents) if any(name.startswith("bone") for name in streams) else None
    parts = {"joint": lambda: x, "bone": lambda: bones, "joint_motion": lambda: motion(x),
             "bone_motion": lambda: motion(bones)}
    return torch.cat([parts[name]() for name in streams], dim=1) if len(streams) > 1 else parts[streams[0]]()
