"""Backbone options that change what the network sees."""

import torch

from ssmar.data.layouts import get_layout
from ssmar.models.stgcn import STGCN, motion_of


def test_motion_is_the_frame_to_frame_step_and_zero_at_missing_joints() -> None:
    x = torch.zeros(1, 3, 4, 2, 1)
    x[0, 0, :, 0, 0] = torch.tensor([1.0, 2.0, 4.0, 7.0])  # joint 0 moves along x
    x[0, :, :, 1, 0] = 5.0
    x[0, :, 2, 1, 0] = 0.0  # joint 1 is missing in frame 2
    step = motion_of(x)
    assert step[0, 0, :, 0, 0].tolist() == [1.0, 2.0, 3.0, 3.0]  # the last frame repeats the step before it
    assert step[0, :, :, 1, 0].abs().sum() == 0  # still, or next to a missing frame
    assert step.shape == x.shape


def test_motion_input_doubles_the_channels_the_network_normalises() -> None:
    adjacency = get_layout("kinect_v1_20").adjacency("spatial")
    plain, moving = (STGCN(5, adjacency, 3, channels=(8, 16), strides=(1, 2), motion=motion) for motion in (False, True))
    assert moving.data_bn.num_features == 2 * plain.data_bn.num_features == 2 * 3 * 20
    still = torch.ones(2, 3, 8, 20, 1)
    out = moving.eval()(still)
    assert out["logits"].shape == (2, 5) and torch.isfinite(out["feat"]).all()
