"""Skeleton layouts: registry, ST-GCN adjacency partitions, layout resolution for data files."""

import numpy as np
import pytest

import dataclasses

from ssmar.data.layouts import (LAYOUTS, MEDIAPIPE_POSE_CONNECTIONS, OPENPOSE_18, Layout, custom_layout, get_layout,
                                layout_for_data)
from ssmar.errors import SsmarError


def _mirror(joint: str) -> str:
    return joint.replace("left", "@").replace("right", "left").replace("@", "right")


def _data(joints: int, **top) -> dict:
    clip = {"frame_dir": "clip_a", "label": 0, "keypoint": np.zeros((1, 4, joints, 2), np.float32)}
    return {"annotations": [clip], **top}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_adjacency_shapes_and_column_normalisation(name):
    layout = get_layout(name)
    num = layout.num_joints
    spatial, uniform = layout.adjacency("spatial"), layout.adjacency("uniform")
    assert spatial.shape == (3, num, num) and uniform.shape == (1, num, num)
    assert spatial.dtype == uniform.dtype == np.float32
    assert (spatial >= 0).all()
    np.testing.assert_allclose(spatial.sum(axis=(0, 1)), 1.0, rtol=1e-6)  # A D^-1: columns sum to one
    np.testing.assert_allclose(spatial.sum(axis=0), uniform[0], rtol=1e-6)  # the subsets partition A + I
    links = uniform[0] > 0
    assert np.array_equal(links, links.T) and links.diagonal().all()
    np.testing.assert_allclose(uniform[0], links / links.sum(axis=0, keepdims=True), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_spatial_partition_splits_each_bone_by_direction(name):
    layout = get_layout(name)
    self_links, centripetal, centrifugal = layout.adjacency("spatial") > 0
    hops = layout.hop_distance()
    assert np.isfinite(hops).all(), "registry skeletons are connected"
    assert np.array_equal(np.diag(self_links), np.ones(layout.num_joints, bool))
    assert not np.diag(centripetal).any() and not np.diag(centrifugal).any()
    bones = {frozenset(edge) for edge in layout.edges}
    for a in range(layout.num_joints):
        for b in range(layout.num_joints):
            linked = a != b and frozenset((a, b)) in bones
            if not linked:
                assert not (centripetal[a, b] or centrifugal[a, b] or (a != b and self_links[a, b]))
            elif hops[a] == hops[b]:
                assert self_links[a, b] and not centripetal[a, b] and not centrifugal[a, b]
            else:  # exactly one non-self subset, the reverse direction in the other
                assert not self_links[a, b] and centripetal[a, b] != centrifugal[a, b]
                assert centripetal[a, b] == centrifugal[b, a]
                assert centripetal[a, b] == (hops[a] > hops[b])


def test_centripetal_flows_toward_the_centre():
    kinect = get_layout("kinect_v1_20")
    _, centripetal, centrifugal = kinect.adjacency("spatial")
    assert kinect.joint_names[kinect.center] == "spine"
    assert centripetal[5, 4] > 0 and centrifugal[4, 5] > 0  # left elbow -> left shoulder is inward
    assert centripetal[4, 5] == 0


def test_adjacency_rejects_unknown_strategy():
    with pytest.raises(SsmarError, match="spatial, uniform"):
        get_layout("coco_17").adjacency("distance")


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_flip_pairs_mirror_left_and_right(name):
    layout = get_layout(name)
    paired = {j for pair in layout.flip_pairs for j in pair}
    for a, b in layout.flip_pairs:
        assert _mirror(layout.joint_names[a]) == layout.joint_names[b] != layout.joint_names[a]
    sided = {j for j, joint in enumerate(layout.joint_names) if "left" in joint or "right" in joint}
    assert paired == sided
    a, b = layout.scale_pair  # a left/right pair, or one side's pair that normalise averages with its mirror
    name_a, name_b = layout.joint_names[a], layout.joint_names[b]
    assert _mirror(name_a) == name_b != name_a or (name_a.split("_")[0] == name_b.split("_")[0] and a in paired
                                                    and b in paired)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_parts_partition_the_joints_and_mirror_under_flip(name):
    layout = get_layout(name)
    joints = [j for _, group in layout.parts for j in group]
    assert sorted(joints) == list(range(layout.num_joints)), "every joint in exactly one body part"
    swap = dict(layout.flip_pairs) | {b: a for a, b in layout.flip_pairs}
    parts = dict(layout.parts)
    for part, group in parts.items():
        mirrored = _mirror(part)
        assert mirrored in parts, f"part {part} has no mirror"
        assert sorted(swap.get(j, j) for j in group) == sorted(parts[mirrored])
    assert layout.part_groups() == [list(group) for group in parts.values()]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_survives_a_checkpoint_round_trip(name):
    layout = get_layout(name)
    as_lists = {key: [list(v) if isinstance(v, tuple) else v for v in value] if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(layout).items()}
    assert Layout.from_dict(as_lists) == layout


def test_new_layouts_match_their_sources():
    ntu = get_layout("ntu_rgbd_25")
    assert ntu.num_joints == 25 and len(ntu.edges) == 24  # a tree over 25 joints
    assert ntu.joint_names[ntu.center] == "spine_shoulder"
    assert {frozenset(e) for e in [(21, 22), (22, 7), (23, 24), (24, 11)]} <= {frozenset(e) for e in ntu.edges}
    ma52 = get_layout("ma52_openpose_28")
    assert ma52.joint_names[:18] == OPENPOSE_18.joint_names and set(OPENPOSE_18.edges) <= set(ma52.edges)
    assert {e for e in ma52.edges if max(e) >= 18} == {(7, j) for j in range(18, 23)} | {(4, j) for j in range(23, 28)}
    assert ma52.joint_names[7] == "left_wrist" and ma52.joint_names[18] == "left_hand_1"
    assert ma52.joint_names[4] == "right_wrist" and ma52.joint_names[27] == "right_hand_5"
    assert (18, 23) in ma52.flip_pairs and (22, 27) in ma52.flip_pairs


def test_registry_contents():
    kinect = get_layout("kinect_v1_20")
    assert kinect.joint_names[:4] == ("head", "shoulder_center", "spine", "hip_center")
    assert kinect.joint_names[11] == "right_hand" and kinect.joint_names[19] == "right_foot"
    assert len(kinect.edges) == 19  # a tree over 20 joints
    mediapipe = get_layout("mediapipe_pose_33")
    assert mediapipe.num_joints == 33 and mediapipe.joint_names[23:25] == ("left_hip", "right_hip")
    assert set(MEDIAPIPE_POSE_CONNECTIONS) <= set(mediapipe.edges)
    assert mediapipe.center_joints == (23, 24)
    assert get_layout("coco_17").num_joints == 17 and get_layout("openpose_18").num_joints == 18
    assert get_layout("openpose_18").center_joints == (1,)  # defaults to the centre joint


def test_unknown_layout_lists_known_names():
    with pytest.raises(SsmarError, match="unknown skeleton layout 'ntu_25'.*kinect_v1_20.*mediapipe_pose_33"):
        get_layout("ntu_25")


def test_custom_layout_allows_disconnected_graph():
    layout = custom_layout(5, [(0, 1), (2, 1), (1, 0), (3, 4)], center=0)
    assert layout.edges == ((0, 1), (2, 1), (3, 4))  # duplicate bone dropped
    assert layout.scale_pair == (0, 1) and layout.joint_names[4] == "joint_4"
    np.testing.assert_array_equal(layout.hop_distance(), [0, 1, 2, np.inf, np.inf])
    spatial = layout.adjacency()
    np.testing.assert_allclose(spatial.sum(axis=(0, 1)), 1.0, rtol=1e-6)
    assert spatial[0, 3, 4] > 0 and spatial[1:, 3, 4].sum() == 0  # unreachable: equally far
    assert spatial[1, 2, 1] > 0 and spatial[2, 1, 2] > 0


@pytest.mark.parametrize("edges, match", [
    ([(0, 5)], "outside 0..4"),
    ([(2, 2)], "links a joint to itself"),
    ([(0, 1, 2)], "not a pair"),
    ([(0, 1.5)], "not a pair"),
])
def test_custom_layout_rejects_bad_edges(edges, match):
    with pytest.raises(SsmarError, match=match):
        custom_layout(5, edges)


def test_custom_layout_rejects_bad_counts_and_centre():
    with pytest.raises(SsmarError, match="positive integer"):
        custom_layout(0, [])
    with pytest.raises(SsmarError, match="center"):
        custom_layout(3, [(0, 1)], center=3)


@pytest.mark.parametrize("joints, name", [(20, "kinect_v1_20"), (33, "mediapipe_pose_33"),
                                          (17, "coco_17"), (18, "openpose_18"), (25, "ntu_rgbd_25"),
                                          (28, "ma52_openpose_28")])
def test_layout_inferred_from_joint_count(joints, name):
    assert layout_for_data(_data(joints)).name == name


def test_layout_from_file_keys():
    assert layout_for_data(_data(17, layout="coco_17")).name == "coco_17"
    custom = layout_for_data(_data(4, layout="custom", edges=[[0, 1], [1, 2], [2, 3]]))
    assert custom.num_joints == 4 and custom.edges == ((0, 1), (1, 2), (2, 3))
    assert layout_for_data(_data(3, edges=[[0, 1]])).name == "custom"  # edges alone imply a custom layout


def test_layout_errors_name_the_problem():
    mismatch = "mismatched joint count: layout kinect_v1_20 has 20 joints, clip clip_a has 33"
    with pytest.raises(SsmarError, match=mismatch):
        layout_for_data(_data(33, layout="kinect_v1_20"))
    with pytest.raises(SsmarError, match="cannot infer the skeleton layout of 26-joint clips.*set 'layout'"):
        layout_for_data(_data(26))
    with pytest.raises(SsmarError, match="needs the bones: add 'edges'"):
        layout_for_data(_data(5, layout="custom"))
    with pytest.raises(SsmarError, match="outside 0..2"):
        layout_for_data(_data(3, layout="custom", edges=[[0, 3]]))
    with pytest.raises(SsmarError, match="unknown skeleton layout"):
        layout_for_data(_data(5, layout="ntu_25"))
    with pytest.raises(SsmarError, match="no clips"):
        layout_for_data({"annotations": []})
