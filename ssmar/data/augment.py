"""Batched skeleton augmentations for semi-supervised training (weak / strong views).

Every transform takes a batch ``x`` of shape ``[N, C, T, V, M]`` (C = 2 or 3 coordinates,
T frames, V joints, M persons; a last confidence channel, ``data.channels=*_score``, is allowed
where the transform only moves joints and frames) on any device and a CPU :class:`torch.Generator`, and
returns a new tensor of the same shape and dtype. All random numbers are drawn from that
generator on the CPU and then moved to ``x``'s device, so a seed gives the same
augmentation on CPU and GPU. Each sample gets its own random parameters.

Geometric transforms act about the origin, so inputs should be centred (as the ssmar
preprocessing does). Joints that are exactly zero (missing joints, padded frames, absent
persons) stay zero under every transform: linear maps keep zero at zero, jitter skips
them, and temporal resampling never blends them with real joints.

See ``docs/augmentations.md`` for a table of transforms, defaults and the WA / SA recipes.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from ssmar.config import FLAG, PROBABILITY, Spec, check_section, integer, list_of, number
from ssmar.errors import SsmarError


def _rand(generator: torch.Generator, *shape: int) -> torch.Tensor:
    """Uniform [0, 1) float32 numbers on the CPU, drawn from ``generator``."""
    return torch.rand(shape, generator=generator)


def _symmetric(generator: torch.Generator, bound: torch.Tensor | float, *shape: int) -> torch.Tensor:
    """Uniform numbers in [-bound, bound]."""
    return (2 * _rand(generator, *shape) - 1) * bound


def _present(x: torch.Tensor) -> torch.Tensor:
    """``[N, 1, T, V, M]`` bool: the joint has a non-zero coordinate (zero joints are missing)."""
    return (x != 0).any(dim=1, keepdim=True)


def _joint_mask(x: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """Zero the joints where ``drop`` ([N, V] bool, CPU) is true, in every frame and person."""
    keep = ~drop.to(x.device)
    return x * keep[:, None, None, :, None].to(x.dtype)


def _plane_rotation(angle: torch.Tensor, a: int, b: int, size: int) -> torch.Tensor:
    """``[N, size, size]`` rotations by ``angle`` in the plane of axes ``a`` -> ``b``."""
    matrix = torch.eye(size).repeat(len(angle), 1, 1)
    cos, sin = angle.cos(), angle.sin()
    matrix[:, a, a], matrix[:, a, b], matrix[:, b, a], matrix[:, b, b] = cos, -sin, sin, cos
    return matrix


class SkeletonTransform:
    """Base class: ``transform(x, generator)`` applies :meth:`apply` to each sample with probability ``p``.

    ``geometric`` transforms change coordinate values (rotation, scale, shear, jitter, axis mask) and
    take coordinates only; the others move or drop whole joints and frames, so a confidence channel
    moves with its joint. :class:`Compose` with ``score_channel`` hands geometric ones the coordinates.
    """

    geometric = False

    def __init__(self, p: float = 1.0):
        if not 0.0 <= p <= 1.0:
            raise SsmarError(f"{type(self).__name__}: probability p={p} must be in [0, 1]")
        self.p = p

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        channels = (2, 3) if self.geometric else (2, 3, 4)
        if x.ndim != 5 or x.shape[1] not in channels:
            what = "C = 2 or 3 coordinates" if self.geometric else "C = 2 or 3 coordinates, optionally plus a score"
            raise SsmarError(f"{type(self).__name__}: expected a batch [N, C, T, V, M] with {what}, "
                             f"got shape {tuple(x.shape)}")
        if generator.device.type != "cpu":
            raise SsmarError(f"{type(self).__name__}: pass a CPU torch.Generator (got one on {generator.device}); "
                             "random numbers are drawn on the CPU so seeds match across devices")
        out = self.apply(x, generator)
        if self.p < 1.0:
            chosen = (_rand(generator, x.shape[0]) < self.p).to(x.device)
            out = torch.where(chosen[:, None, None, None, None], out, x)
        return out

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Transform every sample of ``x`` (without modifying it)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class _LinearTransform(SkeletonTransform):
    """A random per-sample C x C matrix applied to the coordinates about the origin."""

    geometric = True

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        matrix = self.matrices(x.shape[0], x.shape[1], generator).to(device=x.device, dtype=x.dtype)
        # An explicit sum rather than a matmul: exact in float32 even where TF32 matmuls are enabled.
        return (matrix[:, :, :, None, None, None] * x[:, None]).sum(dim=2)

    def matrices(self, n: int, c: int, generator: torch.Generator) -> torch.Tensor:
        """``[n, c, c]`` float32 CPU matrices, one per sample."""
        raise NotImplementedError


class RandomRotation(_LinearTransform):
    """Rotate by random Euler angles in [-max_degrees, max_degrees] about x, y and z.

    ``max_degrees`` is one bound for all axes or an (x, y, z) triple. For 2-D poses only
    the in-plane (z) angle is used. Rotation keeps bone lengths.
    """

    def __init__(self, max_degrees: float | Sequence[float] = 10.0, p: float = 1.0):
        super().__init__(p)
        bounds = [float(max_degrees)] * 3 if isinstance(max_degrees, (int, float)) else [float(d) for d in max_degrees]
        if len(bounds) != 3:
            raise SsmarError(f"RandomRotation: max_degrees must be a number or 3 numbers (x, y, z), got {max_degrees}")
        self.max_degrees = bounds

    def matrices(self, n: int, c: int, generator: torch.Generator) -> torch.Tensor:
        angles = _symmetric(generator, torch.tensor(self.max_degrees) * (math.pi / 180), n, 3)
        if c == 2:
            return _plane_rotation(angles[:, 2], 0, 1, size=2)
        return (_plane_rotation(angles[:, 2], 0, 1, size=3) @ _plane_rotation(angles[:, 1], 2, 0, size=3)
                @ _plane_rotation(angles[:, 0], 1, 2, size=3))


class RandomScale(_LinearTransform):
    """Scale each axis by an independent factor in [1 - scale, 1 + scale]; ``scale=0`` is the identity."""

    def __init__(self, scale: float = 0.1, p: float = 1.0):
        super().__init__(p)
        self.scale = float(scale)

    def matrices(self, n: int, c: int, generator: torch.Generator) -> torch.Tensor:
        return torch.diag_embed(1 + _symmetric(generator, self.scale, n, c))


class RandomShear(_LinearTransform):
    """Multiply by identity plus random off-diagonal entries in [-shear, shear] (PYSKL/CTR-GCN style)."""

    def __init__(self, shear: float = 0.3, p: float = 1.0):
        super().__init__(p)
        self.shear = float(shear)

    def matrices(self, n: int, c: int, generator: torch.Generator) -> torch.Tensor:
        off_diagonal = _symmetric(generator, self.shear, n, c, c) * (1 - torch.eye(c))
        return torch.eye(c) + off_diagonal


class RandomTemporalCrop(SkeletonTransform):
    """Crop a random window of ``ratio * T`` frames, ratio in [min_ratio, 1], and resize it back to T.

    The window start is random, so this also shifts the clip in time; frames are linearly
    interpolated, except next to a missing (zero) joint, where the nearest frame is taken.
    ``min_ratio=1`` is the identity.
    """

    def __init__(self, min_ratio: float = 0.9, p: float = 1.0):
        super().__init__(p)
        if not 0.0 < min_ratio <= 1.0:
            raise SsmarError(f"RandomTemporalCrop: min_ratio={min_ratio} must be in (0, 1]")
        self.min_ratio = float(min_ratio)

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, c, t, v, m = x.shape
        ratio = self.min_ratio + (1 - self.min_ratio) * _rand(generator, n)
        span = ratio * (t - 1)                                  # window length in frame steps
        start = _rand(generator, n) * (t - 1 - span)
        # Multiply before dividing so that ratio 1 maps frame i exactly onto source frame i.
        position = (start[:, None] + span[:, None] * torch.arange(t) / max(t - 1, 1)).clamp(0, t - 1)
        low = position.floor().long()
        high = (low + 1).clamp(max=t - 1)
        weight = (position - low).to(device=x.device, dtype=x.dtype)[:, None, :, None, None]

        def frames(index: torch.Tensor) -> torch.Tensor:
            return x.gather(2, index.to(x.device)[:, None, :, None, None].expand(n, c, t, v, m))

        before, after = frames(low), frames(high)
        blended = before + (after - before) * weight
        nearest = torch.where(weight < 0.5, before, after)
        both_present = _present(before) & _present(after)
        return torch.where(both_present, blended, nearest)


class RandomFlip(SkeletonTransform):
    """Mirror the x axis and swap left/right joints given as ``flip_pairs`` [(left, right), ...].

    Off in the default recipes: mirroring turns e.g. "swipe left" into "swipe right".
    """

    def __init__(self, flip_pairs: Sequence[Sequence[int]], p: float = 0.5):
        super().__init__(p)
        self.flip_pairs = [(int(a), int(b)) for a, b in flip_pairs]

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        num_joints = x.shape[3]
        order = list(range(num_joints))
        for left, right in self.flip_pairs:
            if not (0 <= left < num_joints and 0 <= right < num_joints):
                raise SsmarError(f"RandomFlip: flip pair ({left}, {right}) outside the {num_joints} joints; "
                                 "use flip pairs of this skeleton layout")
            order[left], order[right] = right, left
        flipped = x[:, :, :, order, :].clone()
        flipped[:, 0] = -flipped[:, 0]
        return flipped


class RandomJitter(SkeletonTransform):
    """Add Gaussian noise with std ``sigma`` times the sample's size to every present joint.

    The size is the root-mean-square distance of the sample's joints from their centroid,
    so ``sigma`` means the same for normalised and raw (metre or pixel) coordinates.
    """

    geometric = True

    def __init__(self, sigma: float = 0.02, p: float = 1.0):
        super().__init__(p)
        self.sigma = float(sigma)

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        present = _present(x).to(x.dtype)
        dims = (2, 3, 4)
        count = present.sum(dim=dims, keepdim=True).clamp(min=1)
        centroid = (x * present).sum(dim=dims, keepdim=True) / count
        spread = (((x - centroid) * present) ** 2).sum(dim=(1, 2, 3, 4), keepdim=True) / count
        noise = torch.randn(x.shape, generator=generator).to(device=x.device, dtype=x.dtype)
        return x + noise * (self.sigma * spread.sqrt()) * present


class RandomJointMask(SkeletonTransform):
    """Zero ``round(ratio * V)`` randomly chosen joints for the whole clip (all frames and persons)."""

    def __init__(self, ratio: float = 0.1, p: float = 1.0):
        super().__init__(p)
        if not 0.0 <= ratio <= 1.0:
            raise SsmarError(f"RandomJointMask: ratio={ratio} must be in [0, 1]")
        self.ratio = float(ratio)

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, v = x.shape[0], x.shape[3]
        rank = _rand(generator, n, v).argsort(dim=1).argsort(dim=1)   # a random permutation per sample
        return _joint_mask(x, rank < round(self.ratio * v))


class RandomPartMask(SkeletonTransform):
    """Zero ``num_parts`` randomly chosen body parts (joint groups, e.g. an arm) for the whole clip."""

    def __init__(self, joint_groups: Sequence[Sequence[int]], num_parts: int = 1, p: float = 1.0):
        super().__init__(p)
        self.joint_groups = [[int(j) for j in group] for group in joint_groups]
        if not 0 <= num_parts <= len(self.joint_groups):
            raise SsmarError(f"RandomPartMask: num_parts={num_parts} must be in 0..{len(self.joint_groups)} "
                             "(the number of joint groups)")
        self.num_parts = int(num_parts)

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, v = x.shape[0], x.shape[3]
        membership = torch.zeros(len(self.joint_groups), v, dtype=torch.bool)
        for index, group in enumerate(self.joint_groups):
            if any(not 0 <= j < v for j in group):
                raise SsmarError(f"RandomPartMask: joint group {group} has joints outside the {v} joints; "
                                 "use joint groups of this skeleton layout")
            membership[index, group] = True
        chosen = _rand(generator, n, len(self.joint_groups)).argsort(dim=1)[:, :self.num_parts]
        return _joint_mask(x, membership[chosen].any(dim=1))


class RandomTemporalMask(SkeletonTransform):
    """Zero a random contiguous span of 1 .. ``max(1, round(max_ratio * T))`` frames (all joints, persons)."""

    def __init__(self, max_ratio: float = 0.2, p: float = 1.0):
        super().__init__(p)
        if not 0.0 <= max_ratio <= 1.0:
            raise SsmarError(f"RandomTemporalMask: max_ratio={max_ratio} must be in [0, 1]")
        self.max_ratio = float(max_ratio)

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, t = x.shape[0], x.shape[2]
        longest = max(1, round(self.max_ratio * t))
        length = 1 + (_rand(generator, n) * longest).long().clamp(max=longest - 1)
        start = torch.minimum((_rand(generator, n) * (t - length + 1)).long(), t - length)
        frame = torch.arange(t)
        drop = (frame >= start[:, None]) & (frame < (start + length)[:, None])   # [N, T]
        return x * (~drop).to(device=x.device, dtype=x.dtype)[:, None, :, None, None]


class RandomAxisMask(SkeletonTransform):
    """Zero one randomly chosen coordinate axis (x, y or z) for the whole clip."""

    geometric = True

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, c = x.shape[:2]
        axis = (_rand(generator, n) * c).long().clamp(max=c - 1)
        keep = axis[:, None] != torch.arange(c)
        return x * keep.to(device=x.device, dtype=x.dtype)[:, :, None, None, None]


class Compose:
    """Apply transforms in order, each with its own share of the generator's stream.

    ``score_channel``: the last channel of ``x`` is a confidence, which geometric transforms leave alone.
    """

    def __init__(self, transforms: Sequence[SkeletonTransform], score_channel: bool = False):
        self.transforms = list(transforms)
        self.score_channel = score_channel

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for transform in self.transforms:
            if self.score_channel and transform.geometric:
                x = torch.cat([transform(x[:, :-1], generator), x[:, -1:]], dim=1)
            else:
                x = transform(x, generator)
        return x

    def __repr__(self) -> str:
        return f"Compose([{', '.join(map(repr, self.transforms))}], score_channel={self.score_channel})"


WEAK_DEFAULTS: dict[str, Any] = {
    "rotate_degrees": 10.0,    # RandomRotation bound per axis
    "scale": 0.1,              # RandomScale: factors in [0.9, 1.1]
    "crop_min_ratio": 0.9,     # RandomTemporalCrop: keep 90-100 % of the frames
    "flip_pairs": None,        # RandomFlip left/right pairs; None = no flip
    "flip_p": 0.5,
}
STRONG_DEFAULTS: dict[str, Any] = {
    **WEAK_DEFAULTS,
    "rotate_degrees": 30.0,
    "shear": 0.3,              # RandomShear bound; 0 = off
    "jitter_sigma": 0.02,      # RandomJitter std relative to the sample's size; 0 = off
    "joint_mask_ratio": 0.1,   # RandomJointMask share of joints; 0 = off
    "part_mask_parts": 1,      # RandomPartMask groups per sample (needs joint_groups); 0 = off
    "temporal_mask_ratio": 0.2,  # RandomTemporalMask longest span; 0 = off
    "axis_mask": True,         # RandomAxisMask on/off
    "p": 0.5,                  # probability of each strong op (shear, jitter, masks)
}

# type and range of each option above (ssmar.config.Spec), checked when the augmentations are built
WEAK_SPECS: dict[str, Spec] = {
    "rotate_degrees": number(0.0, 180.0), "scale": number(0.0, 1.0, high_open=True),
    "crop_min_ratio": number(0.0, 1.0, low_open=True),
    "flip_pairs": list_of(list_of(integer(0), min_length=2), optional=True), "flip_p": PROBABILITY,
}
STRONG_SPECS: dict[str, Spec] = {
    **WEAK_SPECS, "shear": number(0.0), "jitter_sigma": number(0.0), "joint_mask_ratio": PROBABILITY,
    "part_mask_parts": integer(0), "temporal_mask_ratio": PROBABILITY, "axis_mask": FLAG, "p": PROBABILITY,
}


def weak_augment(cfg: dict[str, Any] | None = None, score_channel: bool = False) -> Compose:
    """Weak augmentation (WA): small rotation, scaling and temporal crop (plus optional flip).

    ``cfg`` overrides keys of :data:`WEAK_DEFAULTS`; ``score_channel`` as in :class:`Compose`.
    """
    options = resolve_options(cfg, WEAK_DEFAULTS, WEAK_SPECS, "weak")
    return Compose(_weak_ops(options), score_channel)


def strong_augment(cfg: dict[str, Any] | None = None,
                   joint_groups: Sequence[Sequence[int]] | None = None, score_channel: bool = False) -> Compose:
    """Strong augmentation (SA): WA with larger rotation, plus shear, jitter and masking ops.

    The geometric WA ops always apply; each strong op applies with probability ``p``.
    ``joint_groups`` (body parts as joint-index lists) enables body-part masking. ``cfg``
    overrides keys of :data:`STRONG_DEFAULTS`; a 0 / False value turns an op off.
    """
    options = resolve_options(cfg, STRONG_DEFAULTS, STRONG_SPECS, "strong")
    p = options["p"]
    ops = _weak_ops(options)
    if options["shear"]:
        ops.append(RandomShear(options["shear"], p=p))
    if options["jitter_sigma"]:
        ops.append(RandomJitter(options["jitter_sigma"], p=p))
    if options["joint_mask_ratio"]:
        ops.append(RandomJointMask(options["joint_mask_ratio"], p=p))
    if joint_groups and options["part_mask_parts"]:
        ops.append(RandomPartMask(joint_groups, options["part_mask_parts"], p=p))
    if options["temporal_mask_ratio"]:
        ops.append(RandomTemporalMask(options["temporal_mask_ratio"], p=p))
    if options["axis_mask"]:
        ops.append(RandomAxisMask(p=p))
    return Compose(ops, score_channel)


def _weak_ops(options: dict[str, Any]) -> list[SkeletonTransform]:
    ops: list[SkeletonTransform] = [RandomTemporalCrop(options["crop_min_ratio"])]
    if options["flip_pairs"]:
        ops.append(RandomFlip(options["flip_pairs"], p=options["flip_p"]))
    ops += [RandomRotation(options["rotate_degrees"]), RandomScale(options["scale"])]
    return ops


def resolve_options(cfg: dict[str, Any] | None, defaults: dict[str, Any], specs: dict[str, Spec],
                    name: str) -> dict[str, Any]:
    """``defaults`` updated by ``cfg``: every option known and in the range its spec gives."""
    unknown = sorted(set(cfg or {}) - set(defaults))
    if unknown:
        raise SsmarError(f"unknown {name} augmentation option(s) {', '.join(unknown)}; "
                         f"known: {', '.join(defaults)}")
    options = {**defaults, **(cfg or {})}
    check_section(options, specs, f"augment.{name.split()[0]}.")
    return options
