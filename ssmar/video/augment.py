"""Batched RGB clip augmentations (weak / strong views), consistent across a clip's frames.

A transform takes ``x`` of shape ``[N, 3, T, H, W]`` (float, values in [0, 1]) on any
device and a CPU :class:`torch.Generator`, as :mod:`ssmar.data.augment` does, and returns
a new ``[N, 3, T, size, size]`` tensor. All random numbers are drawn on the CPU, so a seed
gives the same views on CPU and GPU. Each clip gets its own parameters, shared by all of
its T frames: a crop, flip or colour change that varied from frame to frame would be
motion, and micro-actions are told apart by small motions.

* WA: random resized crop to ``size`` plus horizontal flip.
* SA: WA plus RandAugment (``num_ops`` ops per clip from :data:`RAND_OPS`, at
  ``magnitude`` on a 0-10 scale, random sign where an op has one) plus random erasing.

Crop, flip and the geometric RandAugment ops (rotate, shear, translate) form one affine
map per clip, so a clip is resampled once (``grid_sample``); where a geometric op looks
past the crop it sees the surrounding frame, and black only beyond the frame. The colour
ops of a clip then apply in the fixed order of :data:`COLOUR_OPS`. Options and defaults:
``docs/video.md``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from ssmar.config import PROBABILITY, Spec, integer, list_of, number
from ssmar.data.augment import resolve_options
from ssmar.errors import SsmarError

GEOMETRIC_OPS = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
COLOUR_OPS = ("brightness", "contrast", "saturation", "sharpness", "posterize", "solarize", "autocontrast")
RAND_OPS = GEOMETRIC_OPS + COLOUR_OPS

# Strength of each op at magnitude 10 (torchvision's RandAugment ranges).
MAX_DEGREES = 30.0
MAX_SHEAR = 0.3
MAX_TRANSLATE = 0.45  # fraction of the image side
MAX_FACTOR = 0.9  # brightness / contrast / saturation / sharpness factor 1 +- 0.9
MAX_POSTERIZE_BITS = 4  # bits removed
GREY = (0.299, 0.587, 0.114)

VIDEO_WEAK_DEFAULTS: dict[str, Any] = {
    "crop_scale": [0.5, 1.0],  # area fraction of the random resized crop (TSM's multi-scale crop: >= 0.44)
    "crop_ratio": [0.75, 1.3333],  # aspect ratio range of the crop
    "flip_p": 0.5,  # horizontal flip probability
}
VIDEO_STRONG_DEFAULTS: dict[str, Any] = {
    **VIDEO_WEAK_DEFAULTS,
    "num_ops": 2,  # RandAugment ops per clip; 0 = off
    "magnitude": 9,  # 0-10
    "erase_p": 0.5,  # random erasing probability per clip; 0 = off
    "erase_scale": [0.02, 0.33],  # area fraction of the erased box
    "erase_value": 0.5,  # fill (mid grey, about the mean after normalisation)
}

_RANGE = list_of(number(0.0, low_open=True), min_length=2)
VIDEO_WEAK_SPECS: dict[str, Spec] = {"crop_scale": _RANGE, "crop_ratio": _RANGE, "flip_p": PROBABILITY}
VIDEO_STRONG_SPECS: dict[str, Spec] = {
    **VIDEO_WEAK_SPECS, "num_ops": integer(0), "magnitude": number(0.0, 10.0), "erase_p": PROBABILITY,
    "erase_scale": _RANGE, "erase_value": PROBABILITY,
}


class VideoAugment:
    """One view: crop + flip, then (if ``num_ops``) RandAugment, then (if ``erase_p``) random erasing."""

    def __init__(self, size: int, crop_scale: Sequence[float], crop_ratio: Sequence[float], flip_p: float,
                 num_ops: int = 0, magnitude: float = 0.0, erase_p: float = 0.0,
                 erase_scale: Sequence[float] = (0.02, 0.33), erase_value: float = 0.5):
        self.size = int(size)
        self.crop_scale = _interval(crop_scale, "crop_scale", 0.0, 1.0)
        self.crop_ratio = _interval(crop_ratio, "crop_ratio", 0.0, math.inf)
        self.erase_scale = _interval(erase_scale, "erase_scale", 0.0, 1.0)
        for name, value in (("flip_p", flip_p), ("erase_p", erase_p)):
            if not 0.0 <= value <= 1.0:
                raise SsmarError(f"video augmentation: {name}={value} must be in [0, 1]")
        if not 0 <= num_ops <= len(RAND_OPS) or not 0 <= magnitude <= 10:
            raise SsmarError(f"video augmentation: need 0 <= num_ops <= {len(RAND_OPS)} and 0 <= magnitude <= 10, "
                             f"got num_ops={num_ops}, magnitude={magnitude}")
        if self.size < 1:
            raise SsmarError(f"video augmentation: output size must be >= 1, got {size}")
        self.flip_p, self.num_ops, self.magnitude = float(flip_p), int(num_ops), float(magnitude)
        self.erase_p, self.erase_value = float(erase_p), float(erase_value)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != 3:
            raise SsmarError(f"video augmentation: expected RGB clips [N, 3, T, H, W], got shape {tuple(x.shape)}")
        if generator.device.type != "cpu":
            raise SsmarError(f"video augmentation: pass a CPU torch.Generator (got one on {generator.device}); "
                             "random numbers are drawn on the CPU so seeds match across devices")
        n = x.shape[0]
        affine = self._crop_and_flip(n, generator)
        chosen, amount = self._rand_augment(n, generator)
        for column, op in enumerate(GEOMETRIC_OPS):
            affine = affine @ _geometric(op, amount[:, column] * chosen[:, column])
        out = _warp(x, affine[:, :2], self.size)
        for column, op in enumerate(COLOUR_OPS, start=len(GEOMETRIC_OPS)):
            rows = chosen[:, column].nonzero().squeeze(1)
            if len(rows):
                strength = amount[rows, column].to(device=x.device, dtype=x.dtype)
                rows = rows.to(x.device)
                out[rows] = COLOUR_FUNCTIONS[op](out[rows], strength).clamp(0, 1)
        if self.erase_p > 0:
            out = self._erase(out, generator)
        return out

    def _crop_and_flip(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``[N, 3, 3]`` maps from output to input coordinates (both in [-1, 1])."""
        low, high = self.crop_scale
        area = low + (high - low) * torch.rand(n, generator=generator)
        log_low, log_high = math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1])
        ratio = torch.exp(log_low + (log_high - log_low) * torch.rand(n, generator=generator))
        width, height = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)
        centre = (2 * torch.rand(n, 2, generator=generator) - 1) * (1 - torch.stack([width, height], dim=1))
        flip = torch.where(torch.rand(n, generator=generator) < self.flip_p, -1.0, 1.0)
        affine = torch.zeros(n, 3, 3)
        affine[:, 0, 0], affine[:, 1, 1], affine[:, 2, 2] = width * flip, height, 1.0
        affine[:, :2, 2] = centre
        return affine

    def _rand_augment(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Which ops each clip gets (``[N, ops]`` bool, ``num_ops`` per row) and their signed strength in [-1, 1]."""
        rank = torch.rand(n, len(RAND_OPS), generator=generator).argsort(dim=1).argsort(dim=1)
        sign = torch.where(torch.rand(n, len(RAND_OPS), generator=generator) < 0.5, -1.0, 1.0)
        return rank < self.num_ops, sign * (self.magnitude / 10)

    def _erase(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Fill one random box per chosen clip, the same box in every frame."""
        n, h, w = x.shape[0], x.shape[3], x.shape[4]
        chosen = torch.rand(n, generator=generator) < self.erase_p
        low, high = self.erase_scale
        area = low + (high - low) * torch.rand(n, generator=generator)
        ratio = torch.exp(math.log(0.3) + (math.log(1 / 0.3) - math.log(0.3)) * torch.rand(n, generator=generator))
        box_h, box_w = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)
        top, left = torch.rand(n, generator=generator) * (1 - box_h), torch.rand(n, generator=generator) * (1 - box_w)
        rows = (torch.arange(h) + 0.5) / h
        cols = (torch.arange(w) + 0.5) / w
        inside_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])  # [N, H]
        inside_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])  # [N, W]
        mask = (inside_rows[:, :, None] & inside_cols[:, None, :] & chosen[:, None, None]).to(x.device)
        return x.masked_fill(mask[:, None, None], self.erase_value)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"VideoAugment({params})"


def video_weak_augment(cfg: dict[str, Any] | None, size: int) -> VideoAugment:
    """WA: random resized crop to ``size`` and horizontal flip; ``cfg`` overrides :data:`VIDEO_WEAK_DEFAULTS`."""
    return VideoAugment(size, **resolve_options(cfg, VIDEO_WEAK_DEFAULTS, VIDEO_WEAK_SPECS, "weak video"))


def video_strong_augment(cfg: dict[str, Any] | None, size: int) -> VideoAugment:
    """SA: WA plus RandAugment and random erasing; ``cfg`` overrides :data:`VIDEO_STRONG_DEFAULTS`."""
    return VideoAugment(size, **resolve_options(cfg, VIDEO_STRONG_DEFAULTS, VIDEO_STRONG_SPECS, "strong video"))


def _interval(values: Sequence[float], name: str, low: float, high: float) -> tuple[float, float]:
    if len(values) != 2 or not low < float(values[0]) <= float(values[1]) <= high:
        raise SsmarError(f"video augmentation: {name}={list(values)} must be [a, b] with {low} < a <= b <= {high}")
    return float(values[0]), float(values[1])


def _geometric(op: str, amount: torch.Tensor) -> torch.Tensor:
    """``[N, 3, 3]`` output-to-input maps; amount 0 is the identity."""
    matrix = torch.eye(3).repeat(len(amount), 1, 1)
    if op == "rotate":
        angle = amount * math.radians(MAX_DEGREES)
        matrix[:, 0, 0], matrix[:, 0, 1] = angle.cos(), -angle.sin()
        matrix[:, 1, 0], matrix[:, 1, 1] = angle.sin(), angle.cos()
    elif op == "shear_x":
        matrix[:, 0, 1] = amount * MAX_SHEAR
    elif op == "shear_y":
        matrix[:, 1, 0] = amount * MAX_SHEAR
    elif op == "translate_x":
        matrix[:, 0, 2] = amount * 2 * MAX_TRANSLATE  # the image spans 2 units
    else:
        matrix[:, 1, 2] = amount * 2 * MAX_TRANSLATE
    return matrix


def _warp(x: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Resample every frame of each clip with its clip's affine map (frames ride along as channels)."""
    n, c, t, h, w = x.shape
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, [n, c * t, size, size], align_corners=False)
    out = F.grid_sample(x.reshape(n, c * t, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(n, c, t, size, size)


def _grey(x: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(GREY, device=x.device, dtype=x.dtype).view(1, 3, 1, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def _blend(x: torch.Tensor, base: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """``base + factor * (x - base)`` with factor 1 + 0.9 * amount: > 1 enhances, < 1 fades to ``base``."""
    factor = (1 + MAX_FACTOR * amount).view(-1, 1, 1, 1, 1)
    return base + factor * (x - base)


def _smooth(x: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH filter on every frame (edge pixels replicated)."""
    n, c, t, h, w = x.shape
    kernel = torch.tensor([[1.0, 1, 1], [1, 5, 1], [1, 1, 1]], device=x.device, dtype=x.dtype).div(13).view(1, 1, 3, 3)
    frames = F.pad(x.reshape(n * c * t, 1, h, w), (1, 1, 1, 1), mode="replicate")
    return F.conv2d(frames, kernel).view(n, c, t, h, w)


def _posterize(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    step = (2.0 ** torch.round(MAX_POSTERIZE_BITS * amount.abs())).view(-1, 1, 1, 1, 1)
    return torch.floor(torch.round(x * 255) / step) * step / 255


def _solarize(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    threshold = (1 - amount.abs()).view(-1, 1, 1, 1, 1)
    return torch.where(x >= threshold, 1 - x, x)


def _autocontrast(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Stretch each channel of the clip (not of each frame) to [0, 1]."""
    low, high = x.amin(dim=(2, 3, 4), keepdim=True), x.amax(dim=(2, 3, 4), keepdim=True)
    spread = high - low
    return torch.where(spread > 0, (x - low) / spread.clamp(min=1e-6), x)


COLOUR_FUNCTIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "brightness": lambda x, a: _blend(x, torch.zeros_like(x[:, :1]), a),
    "contrast": lambda x, a: _blend(x, _grey(x).mean(dim=(2, 3, 4), keepdim=True), a),
    "saturation": lambda x, a: _blend(x, _grey(x), a),
    "sharpness": lambda x, a: _blend(x, _smooth(x), a),
    "posterize": _posterize,
    "solarize": _solarize,
    "autocontrast": _autocontrast,
}
