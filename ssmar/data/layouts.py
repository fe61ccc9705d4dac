"""Skeleton layouts: joint order, bones and the graph a GCN convolves over.

A :class:`Layout` names the joints of one pose format and carries what preprocessing
and augmentation need besides the bones: the body centre for centring, a joint pair
for scale normalisation the left/right pairs for horizontal flips and the body parts (joint groups per region:
head, torso, arms, hands, legs; the regions MA-52's body-level classes name). Files state
their layout in the optional top-level ``layout`` key (``"custom"`` plus ``edges`` for
anything else); :func:`layout_for_data` resolves it, falling back to the joint count.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from ssmar.errors import SsmarError

STRATEGIES = ("spatial", "uniform")


@dataclass(frozen=True)
class Layout:
    """One skeleton format. Joint indices are 0-based; ``edges`` are undirected bones.

    ``center_joints`` (default ``(center,)``) is the body centre: preprocessing centres
    on their mean and the spatial partition measures hop distance to the nearest of them,
    so a centre between two joints (the hip midpoint of MediaPipe) stays symmetric.
    """

    name: str
    joint_names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    center: int
    scale_pair: tuple[int, int]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    center_joints: tuple[int, ...] = ()
    parts: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> "Layout":
        """Rebuild a layout from :func:`dataclasses.asdict` output (lists instead of tuples, as checkpoints store it)."""
        fields = dict(fields)
        for key in ("joint_names", "scale_pair", "center_joints"):
            fields[key] = tuple(fields[key])
        for key in ("edges", "flip_pairs"):
            fields[key] = tuple(tuple(pair) for pair in fields[key])
        fields["parts"] = tuple((name, tuple(joints)) for name, joints in fields.get("parts", ()))
        return cls(**fields)

    def __post_init__(self) -> None:
        if not self.center_joints:
            object.__setattr__(self, "center_joints", (self.center,))
        where = f"layout '{self.name}'"
        num = len(self.joint_names)
        if num < 1:
            raise SsmarError(f"{where}: needs at least one joint")
        used = [(f"edge {e}", e) for e in self.edges] + [(f"flip pair {p}", p) for p in self.flip_pairs]
        used += [("scale_pair", self.scale_pair), ("center", (self.center, *self.center_joints))]
        used += [(f"part '{name}'", joints) for name, joints in self.parts]
        for what, joints in used:
            if any(not isinstance(j, (int, np.integer)) or not 0 <= j < num for j in joints):
                raise SsmarError(f"{where}: {what} refers to a joint outside 0..{num - 1}; "
                                 "joint indices are 0-based and must be below the joint count")
        loops = [e for e in self.edges if e[0] == e[1]]
        if loops:
            raise SsmarError(f"{where}: edge {loops[0]} links a joint to itself; remove it "
                             "(self-links are added by the adjacency)")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def part_groups(self) -> list[list[int]]:
        """The body parts as joint-index lists, e.g. for ``strong_augment(joint_groups=...)``."""
        return [list(joints) for _, joints in self.parts]

    def hop_distance(self) -> np.ndarray:
        """Hops from each joint to the nearest centre joint; ``inf`` where unreachable."""
        neighbours: list[list[int]] = [[] for _ in range(self.num_joints)]
        for a, b in self.edges:
            neighbours[a].append(b)
            neighbours[b].append(a)
        dist = np.full(self.num_joints, np.inf)
        queue = deque(self.center_joints)
        dist[list(self.center_joints)] = 0
        while queue:
            joint = queue.popleft()
            for other in neighbours[joint]:
                if dist[other] == np.inf:
                    dist[other] = dist[joint] + 1
                    queue.append(other)
        return dist

    def adjacency(self, strategy: str = "spatial") -> np.ndarray:
        """Normalised adjacency ``A`` of shape ``[K, V, V]`` (float32), as in ST-GCN.

        ``A[k, i, j]`` weights the flow from joint ``i`` into joint ``j`` (``x @ A[k]``
        over the joint axis). ``A + I`` is normalised as ``A D^-1`` (each column divided
        by the degree of its joint, self-link included), so ``A.sum((0, 1))`` is all ones.
        ``"uniform"``: K=1, the whole normalised ``A + I``. ``"spatial"`` (Yan et al. 2018):
        K=3 — self-links plus bones between joints equally far from the centre, then
        centripetal (from a joint farther from the centre into a closer one) and
        centrifugal (the reverse). Joints unreachable from the centre are equally far,
        so their bones stay in the first subset.
        """
        if strategy not in STRATEGIES:
            raise SsmarError(f"unknown adjacency strategy '{strategy}'; use one of: {', '.join(STRATEGIES)}")
        num = self.num_joints
        links = np.eye(num)
        for a, b in self.edges:
            links[a, b] = links[b, a] = 1.0
        normalised = links / links.sum(axis=0, keepdims=True)
        if strategy == "uniform":
            return normalised[None].astype(np.float32)
        dist = self.hop_distance()
        src, dst = dist[:, None], dist[None, :]
        subsets = (src == dst, src > dst, src < dst)  # inf == inf: unreachable pairs count as equal
        return np.stack([normalised * mask for mask in subsets]).astype(np.float32)


def _layout(name: str, joint_names: Sequence[str], edges: Iterable[tuple[int, int]], center: int,
            scale_pair: tuple[int, int], flip_pairs: Iterable[tuple[int, int]] = (),
            center_joints: tuple[int, ...] = (), parts: dict[str, Iterable[int]] | None = None) -> Layout:
    return Layout(name, tuple(joint_names), tuple(tuple(e) for e in edges), center, scale_pair,
                  tuple(tuple(p) for p in flip_pairs), center_joints,
                  tuple((part, tuple(joints)) for part, joints in (parts or {}).items()))


KINECT_V1_20 = _layout(
    "kinect_v1_20",
    ("head", "shoulder_center", "spine", "hip_center",
     "left_shoulder", "left_elbow", "left_wrist", "left_hand",
     "right_shoulder", "right_elbow", "right_wrist", "right_hand",
     "left_hip", "left_knee", "left_ankle", "left_foot",
     "right_hip", "right_knee", "right_ankle", "right_foot"),
    [(0, 1), (1, 2), (2, 3), (1, 4), (4, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (10, 11),
     (3, 12), (12, 13), (13, 14), (14, 15), (3, 16), (16, 17), (17, 18), (18, 19)],
    center=2, scale_pair=(4, 8),
    flip_pairs=[(4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19)],
    parts={"head": [0], "torso": [1, 2, 3], "left_arm": [4, 5, 6], "right_arm": [8, 9, 10],
           "left_hand": [7], "right_hand": [11], "left_leg": [12, 13, 14, 15], "right_leg": [16, 17, 18, 19]},
)

# MediaPipe's POSE_CONNECTIONS leave the face (0-10) unconnected to the body and the
# mouth unconnected to the face; a GCN could then never relate head motion to the
# shoulders. BRIDGES add a nose-shoulder "neck" and mouth-nose links.
MEDIAPIPE_POSE_CONNECTIONS = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)
MEDIAPIPE_BRIDGES = ((0, 11), (0, 12), (0, 9), (0, 10))

MEDIAPIPE_POSE_33 = _layout(
    "mediapipe_pose_33",
    ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
     "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
     "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
     "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
     "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
     "left_heel", "right_heel", "left_foot_index", "right_foot_index"),
    MEDIAPIPE_POSE_CONNECTIONS + MEDIAPIPE_BRIDGES,
    center=23, center_joints=(23, 24), scale_pair=(11, 12),
    flip_pairs=[(1, 4), (2, 5), (3, 6), (7, 8), (9, 10)] + [(j, j + 1) for j in range(11, 33, 2)],
    parts={"head": list(range(11)), "torso": [11, 12, 23, 24], "left_arm": [13, 15], "right_arm": [14, 16],
           "left_hand": [17, 19, 21], "right_hand": [18, 20, 22], "left_leg": [25, 27, 29, 31],
           "right_leg": [26, 28, 30, 32]},
)

COCO_17 = _layout(  # bones as in PYSKL's 'coco' layout
    "coco_17",
    ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
     "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
     "left_knee", "right_knee", "left_ankle", "right_ankle"),
    [(15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6),
     (5, 0), (6, 0), (1, 0), (3, 1), (2, 0), (4, 2)],
    center=11, center_joints=(11, 12), scale_pair=(5, 6),
    flip_pairs=[(j, j + 1) for j in range(1, 17, 2)],
    parts={"head": [0, 1, 2, 3, 4], "torso": [5, 6, 11, 12], "left_arm": [7, 9], "right_arm": [8, 10],
           "left_leg": [13, 15], "right_leg": [14, 16]},
)

OPENPOSE_JOINTS = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
                   "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                   "right_eye", "left_eye", "right_ear", "left_ear")
OPENPOSE_EDGES = ((4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2),
                  (5, 1), (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14))
OPENPOSE_FLIP_PAIRS = ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17))
OPENPOSE_PARTS = {"head": [0, 14, 15, 16, 17], "torso": [1, 2, 5, 8, 11], "left_arm": [6, 7], "right_arm": [3, 4],
                  "left_leg": [12, 13], "right_leg": [9, 10]}

OPENPOSE_18 = _layout(  # bones and centre (neck) as in ST-GCN's 'openpose' layout
    "openpose_18", OPENPOSE_JOINTS, OPENPOSE_EDGES, center=1, scale_pair=(2, 5), flip_pairs=OPENPOSE_FLIP_PAIRS,
    parts=OPENPOSE_PARTS,
)

# MA-52's 28-keypoint pose release (docs/layouts.md): OpenPose-18, then five points of the left
# hand (18-22, each linked to the left wrist, joint 7) and five of the right hand (23-27, linked
# to the right wrist, joint 4). Which five hand points they are is not confirmed: generic names.
MA52_HAND_POINTS = 5
MA52_OPENPOSE_28 = _layout(
    "ma52_openpose_28",
    OPENPOSE_JOINTS + tuple(f"{side}_hand_{k}" for side in ("left", "right") for k in range(1, MA52_HAND_POINTS + 1)),
    OPENPOSE_EDGES + tuple((7, 18 + k) for k in range(MA52_HAND_POINTS))
    + tuple((4, 23 + k) for k in range(MA52_HAND_POINTS)),
    center=1, scale_pair=(2, 5),
    flip_pairs=OPENPOSE_FLIP_PAIRS + tuple((18 + k, 23 + k) for k in range(MA52_HAND_POINTS)),
    parts={**OPENPOSE_PARTS, "left_hand": range(18, 23), "right_hand": range(23, 28)},
)

NTU_RGBD_25 = _layout(  # Kinect v2 joint order of NTU RGB+D; bones and centre (spine at the shoulders) as in ST-GCN
    "ntu_rgbd_25",
    ("spine_base", "spine_mid", "neck", "head",
     "left_shoulder", "left_elbow", "left_wrist", "left_hand",
     "right_shoulder", "right_elbow", "right_wrist", "right_hand",
     "left_hip", "left_knee", "left_ankle", "left_foot",
     "right_hip", "right_knee", "right_ankle", "right_foot",
     "spine_shoulder", "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb"),
    [(0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8), (10, 9), (11, 10),
     (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18), (21, 22), (22, 7),
     (23, 24), (24, 11)],
    center=20, scale_pair=(4, 8),
    flip_pairs=[(4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19), (21, 23), (22, 24)],
    parts={"head": [2, 3], "torso": [0, 1, 20], "left_arm": [4, 5, 6], "right_arm": [8, 9, 10],
           "left_hand": [7, 21, 22], "right_hand": [11, 23, 24], "left_leg": [12, 13, 14, 15],
           "right_leg": [16, 17, 18, 19]},
)

# Penn Action's 13 hand-annotated joints. The dataset's README calls joint 1 "left_shoulder", but
# measured over the 2,326 label files the joints it calls "left" lie on the person's right side
# (docs/layouts.md: image-left in 95 % of front-view clips, image-right in 77 % of back-view ones),
# so the names here are the person's sides. The hips' midpoint is the centre (no pelvis joint); the
# scale pair is shoulder-to-hip, which side views do not shrink the way they shrink shoulder width.
PENN_ACTION_13 = _layout(
    "penn_action_13",
    ("head", "right_shoulder", "left_shoulder", "right_elbow", "left_elbow", "right_wrist", "left_wrist",
     "right_hip", "left_hip", "right_knee", "left_knee", "right_ankle", "left_ankle"),
    [(0, 1), (0, 2), (1, 2), (1, 3), (3, 5), (2, 4), (4, 6), (1, 7), (2, 8), (7, 8), (7, 9), (9, 11),
     (8, 10), (10, 12)],
    center=7, center_joints=(7, 8), scale_pair=(1, 7),
    flip_pairs=[(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12)],
    parts={"head": [0], "torso": [1, 2, 7, 8], "right_arm": [3, 5], "left_arm": [4, 6], "right_leg": [9, 11],
           "left_leg": [10, 12]},
)

LAYOUTS: dict[str, Layout] = {lay.name: lay for lay in (KINECT_V1_20, MEDIAPIPE_POSE_33, COCO_17, OPENPOSE_18,
                                                        NTU_RGBD_25, MA52_OPENPOSE_28, PENN_ACTION_13)}
_BY_JOINT_COUNT = {lay.num_joints: lay for lay in LAYOUTS.values()}


def get_layout(name: str) -> Layout:
    """Registered layout by name."""
    if name not in LAYOUTS:
        raise SsmarError(f"unknown skeleton layout '{name}'; known layouts: {', '.join(LAYOUTS)} "
                         "(or 'custom' with 'edges' in the data file)")
    return LAYOUTS[name]


def layout_for_joint_count(joints: int) -> Layout | None:
    """The registered layout with this many joints; ``None`` when no layout has that count."""
    return _BY_JOINT_COUNT.get(joints)


def custom_layout(num_joints: int, edges: Iterable[Sequence[int]], center: int = 0, name: str = "custom",
                  scale_pair: tuple[int, int] | None = None,
                  flip_pairs: Iterable[tuple[int, int]] = ()) -> Layout:
    """Layout for a skeleton outside the registry; the graph may be disconnected.

    Duplicate bones (in either direction) are dropped. Without ``scale_pair`` the first
    bone's length normalises scale.
    """
    if not isinstance(num_joints, (int, np.integer)) or num_joints < 1:
        raise SsmarError(f"custom layout '{name}': joint count must be a positive integer, got {num_joints!r}")
    unique: dict[frozenset[int], tuple[int, int]] = {}
    for edge in edges:
        pair = tuple(edge)
        if len(pair) != 2 or not all(isinstance(j, (int, np.integer)) for j in pair):
            raise SsmarError(f"custom layout '{name}': edge {edge!r} is not a pair of joint indices; "
                             "write edges as [[i, j], ...] with 0-based integers")
        unique.setdefault(frozenset(pair), (int(pair[0]), int(pair[1])))
    bones = tuple(unique.values())
    if scale_pair is None:
        scale_pair = bones[0] if bones else (0, num_joints - 1)
    return Layout(name, tuple(f"joint_{j}" for j in range(num_joints)), bones, center, scale_pair,
                  tuple(flip_pairs))


def layout_for_data(data: dict[str, Any]) -> Layout:
    """The layout of a skeleton file: its ``layout`` key, else inferred from the joint count."""
    annotations = data.get("annotations") or []
    if not annotations:
        raise SsmarError("cannot determine the skeleton layout: the data has no clips in 'annotations'")
    first = annotations[0]
    shape = np.shape(first.get("keypoint"))
    if len(shape) != 4:
        raise SsmarError(f"clip '{first.get('frame_dir')}': keypoint must have shape [M, T, V, C], got {shape}")
    joints = shape[2]
    name = data.get("layout") or ("custom" if data.get("edges") is not None else None)
    if name == "custom":
        if data.get("edges") is None:
            raise SsmarError("layout 'custom' needs the bones: add 'edges' ([[i, j], ...], 0-based) to the data file")
        layout = custom_layout(joints, data["edges"])
    elif name is not None:
        layout = get_layout(name)
    elif joints in _BY_JOINT_COUNT:
        layout = _BY_JOINT_COUNT[joints]
    else:
        raise SsmarError(f"cannot infer the skeleton layout of {joints}-joint clips (known counts: "
                         f"{', '.join(f'{n} ({lay.name})' for n, lay in _BY_JOINT_COUNT.items())}); "
                         "set 'layout' (and 'edges' for 'custom') in the data file")
    for ann in annotations:  # every clip: preprocessing indexes joints by the layout
        shape = np.shape(ann.get("keypoint"))
        if len(shape) == 4 and shape[2] != layout.num_joints:
            raise SsmarError(f"mismatched joint count: layout {layout.name} has {layout.num_joints} joints, "
                             f"clip {ann.get('frame_dir')} has {shape[2]}; fix the file's 'layout' or its keypoints")
    return layout
