"""Batched skeleton augmentations: shapes, determinism, invariants, WA vs SA strength."""

import pytest
import torch

from ssmar.data.augment import (
    Compose, RandomAxisMask, RandomFlip, RandomJitter, RandomJointMask, RandomPartMask, RandomRotation,
    RandomScale, RandomShear, RandomTemporalCrop, RandomTemporalMask, strong_augment, weak_augment,
)
from ssmar.errors import SsmarError

N, T, V = 4, 16, 6
BONES = [(0, 1), (1, 2), (2, 3), (1, 4), (4, 5)]
TRANSFORMS = {
    "rotation": lambda: RandomRotation(30),
    "scale": lambda: RandomScale(0.2),
    "shear": lambda: RandomShear(0.3),
    "crop": lambda: RandomTemporalCrop(0.5),
    "flip": lambda: RandomFlip([(1, 4), (2, 5)]),  # p=0.5: randomness is which samples flip
    "jitter": lambda: RandomJitter(0.05),
    "joint_mask": lambda: RandomJointMask(0.34),
    "part_mask": lambda: RandomPartMask([[0, 1], [2, 3], [4, 5]], num_parts=1),
    "temporal_mask": lambda: RandomTemporalMask(0.3),
    "axis_mask": lambda: RandomAxisMask(),
    "weak": lambda: weak_augment(),
    "strong": lambda: strong_augment(joint_groups=[[0, 1], [2, 3], [4, 5]]),
}


def batch(c: int = 3, m: int = 1, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, c, T, V, m, generator=g, dtype=dtype)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", TRANSFORMS)
@pytest.mark.parametrize(("c", "m"), [(3, 1), (2, 2)])
def test_shape_dtype_determinism_and_change(name: str, c: int, m: int) -> None:
    x = batch(c, m)
    original = x.clone()
    aug = TRANSFORMS[name]()
    out = aug(x, gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(x, original), "input modified in place"
    assert torch.equal(out, aug(x, gen(1)))
    assert not torch.equal(out, aug(x, gen(2)))
    assert not torch.allclose(out, x)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_padding_persons_stay_zero(name: str) -> None:
    x = batch(3, 2)
    x[..., 1] = 0
    x[0, :, T // 2:] = 0  # a clip padded with zero frames
    out = TRANSFORMS[name]()(x, gen(3))
    assert torch.all(out[..., 1] == 0)
    assert torch.all(out[0, :, T // 2:] == 0)


def test_float64_kept() -> None:
    x = batch(dtype=torch.float64)
    assert strong_augment()(x, gen(0)).dtype == torch.float64


def bone_lengths(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([(x[:, :, :, a] - x[:, :, :, b]).norm(dim=1) for a, b in BONES])


@pytest.mark.parametrize("c", [2, 3])
def test_rotation_preserves_bone_lengths(c: int) -> None:
    x = batch(c)
    out = RandomRotation(45)(x, gen(0))
    torch.testing.assert_close(bone_lengths(out), bone_lengths(x))


def test_rotation_2d_is_in_plane_and_3d_turns_all_axes() -> None:
    x = batch(3)
    only_z = RandomRotation((0, 0, 30))(x, gen(0))
    torch.testing.assert_close(only_z[:, 2], x[:, 2])
    assert not torch.allclose(RandomRotation(30)(x, gen(0))[:, 2], x[:, 2])


@pytest.mark.parametrize(("transform", "c"), [(RandomScale(0.0), 3), (RandomScale(0.0), 2),
                                              (RandomTemporalCrop(1.0), 3), (RandomShear(0.0), 2),
                                              (RandomRotation(0), 3), (RandomJointMask(0.0), 3)])
def test_zero_strength_is_identity(transform, c: int) -> None:
    x = batch(c, 2)
    torch.testing.assert_close(transform(x, gen(0)), x, rtol=0, atol=0)


def test_scale_within_bounds() -> None:
    x = torch.ones(N, 3, T, V, 1)
    out = RandomScale(0.1)(x, gen(0))
    assert out.min() >= 0.9 and out.max() <= 1.1
    assert torch.equal(out, out[:, :, :1, :1].expand_as(out))  # one factor per sample and axis


def test_temporal_crop_resamples_a_window() -> None:
    ramp = torch.arange(T, dtype=torch.float32).add(1).view(1, 1, T, 1, 1).expand(N, 3, T, V, 1)
    out = RandomTemporalCrop(0.5)(ramp, gen(0))
    frames = out[:, 0, :, 0, 0]
    steps = frames.diff(dim=1)
    assert torch.all(steps >= 0) and torch.all(frames >= 1) and torch.all(frames <= T)
    assert torch.allclose(steps, steps[:, :1].expand_as(steps), atol=1e-4)  # linear: constant step
    assert torch.all(steps <= 1 + 1e-5) and torch.all(steps >= 0.5 - 1e-5)


def test_flip_swaps_and_mirrors() -> None:
    x = batch()
    out = RandomFlip([(1, 4)], p=1.0)(x, gen(0))
    torch.testing.assert_close(out[:, 0, :, 4], -x[:, 0, :, 1])
    torch.testing.assert_close(out[:, 1:, :, 1], x[:, 1:, :, 4])
    torch.testing.assert_close(out[:, :, :, 0], x[:, :, :, 0] * torch.tensor([-1, 1, 1.]).view(1, 3, 1, 1))
    with pytest.raises(SsmarError, match="outside the 6 joints"):
        RandomFlip([(0, 9)], p=1.0)(x, gen(0))


def test_jitter_is_relative_to_sample_size() -> None:
    x = batch()
    small = RandomJitter(0.01)(x, gen(0)) - x
    big = RandomJitter(0.01)(x * 100, gen(0)) - x * 100
    torch.testing.assert_close(big, small * 100, rtol=1e-3, atol=1e-4)


def zeroed_joints(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """[N, V] bool: joints zeroed everywhere; asserts every other joint is untouched."""
    zero = (out == 0).all(dim=1).all(dim=1).all(dim=-1)
    untouched = (out == x).all(dim=1).all(dim=1).all(dim=-1)
    assert torch.all(zero ^ untouched)
    return zero


def test_joint_mask_zeroes_exact_count() -> None:
    x = batch(3, 2)
    zero = zeroed_joints(x, RandomJointMask(0.5)(x, gen(0)))
    assert torch.all(zero.sum(dim=1) == 3)
    assert len({tuple(row.tolist()) for row in zero}) > 1  # each sample its own joints


def test_part_mask_zeroes_whole_groups() -> None:
    x = batch()
    groups = [[0, 1], [2, 3, 4], [5]]
    zero = zeroed_joints(x, RandomPartMask(groups, num_parts=2)(x, gen(0)))
    for row in zero:
        masked = set(torch.nonzero(row).flatten().tolist())
        assert sum(set(g) <= masked for g in groups) == 2
        assert masked == set().union(*(g for g in groups if set(g) <= masked))
    with pytest.raises(SsmarError, match="num_parts=4"):
        RandomPartMask(groups, num_parts=4)


def test_temporal_mask_zeroes_one_contiguous_span() -> None:
    x = batch(2, 2)
    out = RandomTemporalMask(0.25)(x, gen(0))
    zero = (out == 0).flatten(3).all(dim=-1).all(dim=1)  # [N, T]
    untouched = (out == x).flatten(3).all(dim=-1).all(dim=1)
    assert torch.all(zero ^ untouched)
    for row in zero:
        frames = torch.nonzero(row).flatten()
        assert 1 <= len(frames) <= 4 and torch.all(frames.diff() == 1)


def test_axis_mask_zeroes_one_axis() -> None:
    x = batch()
    out = RandomAxisMask()(x, gen(0))
    zero_axes = (out == 0).flatten(2).all(dim=-1)  # [N, C]
    assert torch.all(zero_axes.sum(dim=1) == 1)
    torch.testing.assert_close(out[~zero_axes], x[~zero_axes])


def test_probability_applies_per_sample() -> None:
    x = batch()
    out = RandomAxisMask(p=0.5)(torch.cat([x] * 8), gen(0))
    changed = (out != torch.cat([x] * 8)).flatten(1).any(dim=1)
    assert 0 < changed.sum() < len(changed)
    assert torch.equal(RandomAxisMask(p=0.0)(x, gen(0)), x)


def test_weak_is_closer_than_strong() -> None:
    x = batch(3, 1, seed=5)
    x = torch.cat([x] * 16)
    weak = (weak_augment()(x, gen(0)) - x).norm()
    strong = (strong_augment()(x, gen(0)) - x).norm()
    assert weak < strong


def test_factories_accept_overrides_and_reject_unknown_keys() -> None:
    x = batch()
    flip = weak_augment({"flip_pairs": [(1, 4)], "flip_p": 1.0, "rotate_degrees": 0, "scale": 0,
                         "crop_min_ratio": 1.0})
    torch.testing.assert_close(flip(x, gen(0)), RandomFlip([(1, 4)], p=1.0)(x, gen(0)))
    only_geometry = strong_augment({"shear": 0, "jitter_sigma": 0, "joint_mask_ratio": 0,
                                    "temporal_mask_ratio": 0, "axis_mask": False})
    assert len(only_geometry.transforms) == len(weak_augment().transforms)
    with pytest.raises(SsmarError, match="unknown weak augmentation option"):
        weak_augment({"rotation": 5})


def test_bad_input_rejected() -> None:
    with pytest.raises(SsmarError, match=r"\[N, C, T, V, M\]"):
        RandomScale()(torch.zeros(2, 3, 4, 5), gen(0))
    with pytest.raises(SsmarError, match="C = 2 or 3"):
        RandomScale()(torch.zeros(2, 4, 4, 5, 1), gen(0))


def test_compose_runs_in_order() -> None:
    x = batch()
    both = Compose([RandomScale(0.2), RandomAxisMask()])
    g = gen(0)
    expected = RandomAxisMask()(RandomScale(0.2)(x, g), g)
    torch.testing.assert_close(both(x, gen(0)), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", TRANSFORMS)
def test_gpu_matches_cpu_for_the_same_seed(name: str) -> None:
    x = batch(3, 2)
    aug = TRANSFORMS[name]()
    out = aug(x.cuda(), gen(7))
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), aug(x, gen(7)), rtol=1e-4, atol=1e-5)
