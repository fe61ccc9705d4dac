"""Input streams on a toy skeleton and every shipped layout."""

import pytest
import torch

from ssmar.data.layouts import LAYOUTS, custom_layout, get_layout
from ssmar.data.streams import STREAMS, bone, bone_parents, compose_streams, motion
from ssmar.errors import SsmarError
from ssmar.config import DEFAULTS
from ssmar.models import build_model, upgrade_model_cfg

# a toy chain 0 - 1 - 2 with a branch 1 - 3, rooted at joint 1
TOY = custom_layout(4, [[0, 1], [1, 2], [1, 3]], center=1)


def toy_clip(frames: int = 5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, frames, 4, 1, generator=generator) + 5.0  # away from 0: every joint present


def test_parents_form_a_tree_rooted_at_the_centre() -> None:
    assert bone_parents(TOY).tolist() == [1, 1, 1, 1]
    for name in LAYOUTS:
        layout = get_layout(name)
        parents = bone_parents(layout)
        root = layout.center
        assert parents[root] == root
        for joint in range(layout.num_joints):  # following parents always reaches a fixed point within V hops
            hops, current = 0, joint
            while parents[current] != current:
                current, hops = parents[current], hops + 1
                assert hops <= layout.num_joints
            assert current == root or not any(joint in edge for edge in layout.edges)


def test_root_bone_is_zero_and_bone_plus_parent_joint_gives_the_joint() -> None:
    x = toy_clip()
    parents = torch.as_tensor(bone_parents(TOY))
    bones = bone(x, parents)
    assert bones[:, :, :, TOY.center].abs().sum() == 0
    torch.testing.assert_close(bones + x[:, :, :, parents], x)


def test_missing_joint_gives_zero_bones_around_it() -> None:
    x = toy_clip()
    x[0, :, 2, 0] = 0.0  # joint 0 undetected in frame 2
    bones = bone(x, torch.as_tensor(bone_parents(TOY)))
    assert bones[0, :, 2, 0].abs().sum() == 0
    assert bones[0, :, 1, 0].abs().sum() > 0


def test_motion_of_a_still_pose_is_zero_and_tracks_a_moving_joint() -> None:
    still = toy_clip(1).repeat(1, 1, 6, 1, 1)
    assert motion(still).abs().sum() == 0
    moving = still.clone()
    moving[0, 0, :, 2, 0] += torch.tensor([0.0, 1.0, 3.0, 6.0, 6.0, 7.0])
    assert motion(moving)[0, 0, :, 2, 0].tolist() == pytest.approx([1.0, 2.0, 3.0, 0.0, 1.0, 1.0])
    x = toy_clip()
    x[0, :, 2, 0] = 0.0  # next to a missing frame the step is zero, not a jump to the origin
    assert motion(x)[0, :, 1:3, 0].abs().sum() == 0


def test_composed_streams_stack_in_the_given_order() -> None:
    x = toy_clip()
    parents = torch.as_tensor(bone_parents(TOY))
    out = compose_streams(x, STREAMS, parents)
    assert out.shape == (2, 12, 5, 4, 1)
    torch.testing.assert_close(out[:, 0:3], x)
    torch.testing.assert_close(out[:, 3:6], bone(x, parents))
    torch.testing.assert_close(out[:, 6:9], motion(x))
    torch.testing.assert_close(out[:, 9:12], motion(bone(x, parents)))


def test_backbone_normalises_every_stream_channel_and_rejects_unknown_streams() -> None:
    layout = get_layout("kinect_v1_20")
    cfg = {**DEFAULTS["model"], "channels": [8, 16], "strides": [1, 2]}
    plain = build_model(cfg, 5, layout, 3)
    four = build_model({**cfg, "streams": list(STREAMS)}, 5, layout, 3)
    assert four.data_bn.num_features == 4 * plain.data_bn.num_features == 4 * 3 * 20
    out = four.eval()(torch.ones(2, 3, 8, 20, 1))
    assert out["logits"].shape == (2, 5) and torch.isfinite(out["feat"]).all()
    with pytest.raises(SsmarError, match="model.streams"):
        build_model({**cfg, "streams": ["joint", "velocity"]}, 5, layout, 3)
    with pytest.raises(SsmarError, match="model.streams"):
        build_model({**cfg, "streams": ["bone", "bone"]}, 5, layout, 3)


def test_a_model_section_from_before_streams_means_joints_and_their_motion() -> None:
    old = {**DEFAULTS["model"], "motion": True}
    old.pop("streams")
    assert upgrade_model_cfg(old)["streams"] == ["joint", "joint_motion"]
    assert "motion" not in upgrade_model_cfg(old)
    assert upgrade_model_cfg({**old, "motion": False})["streams"] == ["joint"]
