"""Embedded default data: procedural seated micro-actions in the MediaPipe Pose layout.

Real micro-action data (MA-52) cannot ship with the package, so every pipeline stage can
run on this generator instead. A seated body is posed by forward kinematics (torso and
head rotations) and two-bone inverse kinematics (arms and legs reach hand and ankle
targets), driven per clip by class-specific control curves on top of idle motion, then
seen through a jittered camera with MediaPipe-like noise and visibility scores.

Classes are named after MA-52 classes and are deliberately confusable: head actions
differ only in rotation axis or in oscillating versus holding, hand-to-head actions
only in where the hand goes, and amplitudes are small next to idle motion, fidgets and
sensor noise. ``docs/synthetic_data.md`` describes the factors of variation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import numpy as np

from ssmar.data.ma52 import MA52_BODY_RANGES
from ssmar.errors import SsmarError

IMG_SHAPE = (720, 1280)  # (height, width) of the virtual camera; coordinates are normalised by it
MIN_SECONDS, MAX_SECONDS = 40 / 30, 80 / 30
SIDE = np.array([1.0, -1.0])  # +x is the subject's left (image right for a person facing the camera)

# Face points in the head frame (pivot at the top of the neck; y up, z forward), metres, MediaPipe order 0-10.
_FACE = np.array([
    [0.0, 0.13, 0.10],                                                     # nose
    [0.015, 0.165, 0.085], [0.032, 0.167, 0.08], [0.048, 0.165, 0.07],   # left eye inner, eye, outer
    [-0.015, 0.165, 0.085], [-0.032, 0.167, 0.08], [-0.048, 0.165, 0.07],  # right eye inner, eye, outer
    [0.075, 0.145, 0.0], [-0.075, 0.145, 0.0],                           # left, right ear
    [0.025, 0.09, 0.09], [-0.025, 0.09, 0.09],                           # mouth left, right
])
_NOSE, _EAR, _HINDBRAIN = _FACE[0], _FACE[7], np.array([0.045, 0.19, -0.07])

# Visibility ranges per joint (seated: hips and legs are often hidden by a desk) and jitter multipliers.
_SCORE_RANGE = np.array([(0.95, 1.0)] * 11 + [(0.97, 1.0)] * 2 + [(0.85, 1.0)] * 2 + [(0.6, 0.98)] * 8
                        + [(0.5, 0.9)] * 2 + [(0.3, 0.85)] * 2 + [(0.1, 0.7)] * 6)
_JITTER = np.array([0.6] * 11 + [0.8] * 2 + [1.0] * 2 + [1.2] * 2 + [1.6] * 6 + [1.2] * 2 + [1.4] * 2 + [1.6] * 6)
_GLITCH_JOINTS = np.arange(13, 33)  # joints that tracking loses now and then (arms, hands, legs)


@dataclass
class _Scene:
    """Per-clip parameters and the control curves that :func:`_pose` turns into joints.

    Shapes: N clips, T frames (the longest clip; shorter clips use a prefix). Hand and
    leg arrays have a trailing axis of 2 (left, right) before xyz.
    """

    t: np.ndarray            # [T] seconds
    body: dict[str, np.ndarray]  # per-clip copies of the subject's proportions, [N]
    dominant: np.ndarray     # [N] hand used by one-hand actions
    env: np.ndarray          # [N, T] 0..1 envelope of the action
    onset: np.ndarray        # [N] seconds
    torso: np.ndarray        # [N, T, 3] pitch (forward), yaw, roll in radians
    head: np.ndarray         # [N, T, 3] relative to the torso; pitch > 0 looks down
    shoulder_lift: np.ndarray  # [N, T, 2] metres
    wrist_rest: np.ndarray   # [N, T, 2, 3] body frame
    wrist_act: np.ndarray    # [N, T, 2, 3] in the torso or head frame (act_in_head)
    act_in_head: np.ndarray  # [N] bool
    act_weight: np.ndarray   # [N, T, 2] blend from rest to action target
    elbow_act: np.ndarray    # [N, 2, 3] elbow pole direction during the action, torso frame
    ankle_shift: np.ndarray  # [N, T, 2, 3] body frame
    heel_raise: np.ndarray   # [N, T, 2] metres

    def phase(self, idx: np.ndarray, period: np.ndarray) -> np.ndarray:
        """[n, T] phase (radians) of an oscillation starting at the action onset."""
        return 2 * np.pi * (self.t[None] - self.onset[idx, None]) / period[:, None]


def generate_synthetic(num_subjects: int = 12, clips_per_class: int = 8, seed: int = 0,
                       test_subjects: int = 4, fps: int = 30) -> dict[str, Any]:
    """Generate a cross-subject skeleton data set (canonical dict, see ``skeleton_format``).

    Every subject performs every class ``clips_per_class`` times; the last
    ``test_subjects`` subjects form the test split. Deterministic in ``seed``.
    """
    for name, value, low in (("num_subjects", num_subjects, 1), ("clips_per_class", clips_per_class, 1),
                             ("fps", fps, 1), ("test_subjects", test_subjects, 0)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise SsmarError(f"synthetic data: {name} must be an integer >= {low}, got {value!r}")
    if test_subjects >= num_subjects:
        raise SsmarError(f"synthetic data: test_subjects ({test_subjects}) must be below num_subjects "
                         f"({num_subjects}) so that some subjects remain for training")
    rng = np.random.default_rng(seed)
    num_classes = len(_CLASSES)
    label, subject, repeat = (a.ravel() for a in np.meshgrid(np.arange(num_classes), np.arange(num_subjects),
                                                            np.arange(clips_per_class), indexing="ij"))
    lengths = np.maximum(2, np.round(rng.uniform(MIN_SECONDS, MAX_SECONDS, label.size) * fps)).astype(int)
    bodies = _sample_bodies(rng, num_subjects)
    scene = _idle_scene(rng, np.arange(lengths.max()) / fps, lengths / fps,
                        {k: v[subject] for k, v in bodies.items()})
    for cls, (_, _, action) in enumerate(_CLASSES):
        action(scene, rng, np.flatnonzero(label == cls))
    keypoint, score = _observe(rng, _pose(scene), scene.t)

    test_from = num_subjects - test_subjects
    annotations, split = [], {"train": [], "test": []}
    for i in range(label.size):
        frame_dir = f"c{label[i]:02d}_s{subject[i]:02d}_r{repeat[i]:02d}"
        split["test" if subject[i] >= test_from else "train"].append(frame_dir)
        annotations.append({
            "frame_dir": frame_dir, "label": int(label[i]), "subject": int(subject[i]),
            "keypoint": keypoint[i, None, :lengths[i]].copy(), "keypoint_score": score[i, None, :lengths[i]].copy(),
            "total_frames": int(lengths[i]), "fps": int(fps), "img_shape": IMG_SHAPE,
        })
    return {"split": split, "annotations": annotations, "class_names": list(MA52_SYNTH_CLASSES),
            "layout": "mediapipe_pose_33", "body_names": list(BODY_NAMES), "body_map": list(BODY_MAP)}


def _sample_bodies(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """Per-subject proportions (metres, radians) and habits: rest posture, handedness, fidgeting."""
    scale = rng.uniform(0.88, 1.12, count)

    def vary(base: float, spread: float) -> np.ndarray:
        return base * scale * rng.uniform(1 - spread, 1 + spread, count)

    return {
        "torso": vary(0.50, 0.06), "neck": vary(0.07, 0.1), "shoulder": vary(0.185, 0.1), "hip": vary(0.09, 0.12),
        "head": (0.5 + 0.5 * scale) * rng.uniform(0.93, 1.07, count),
        "upper_arm": vary(0.29, 0.06), "forearm": vary(0.26, 0.06), "hand": vary(1.0, 0.05),
        "thigh": vary(0.43, 0.06), "shin": vary(0.42, 0.06),
        "lean": rng.uniform(-0.06, 0.18, count), "head_pitch": rng.uniform(-0.05, 0.2, count),
        "rest_side": vary(0.09, 0.45), "rest_forward": vary(0.26, 0.2), "ankle_forward": rng.uniform(0.85, 1.15, count),
        "ankle_side": vary(0.03, 1.0), "left_handed": (rng.random(count) < 0.15).astype(float),
        "fidget": rng.uniform(0.5, 1.5, count),
    }


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], t: np.ndarray,
                  low_hz: float = 0.1, high_hz: float = 1.0, waves: int = 3) -> np.ndarray:
    """Smooth random curves of unit RMS, ``shape + (T,)`` moved to ``(N, T, ...)``: sums of sinusoids."""
    freq = rng.uniform(low_hz, high_hz, shape + (waves,))
    phase = rng.uniform(0, 2 * np.pi, shape + (waves,))
    curves = np.sin(2 * np.pi * freq[..., None] * t + phase[..., None]).sum(axis=-2) / np.sqrt(waves / 2)
    return np.moveaxis(curves, -1, 1)


def _envelope(t: np.ndarray, start: np.ndarray, duration: np.ndarray, ramp: np.ndarray) -> np.ndarray:
    """[n, T] smooth 0→1→0 window: smoothstep ramps of ``ramp`` seconds at both ends."""
    def smoothstep(x: np.ndarray) -> np.ndarray:
        x = np.clip(x, 0.0, 1.0)
        return x * x * (3 - 2 * x)

    rise = smoothstep((t[None] - start[:, None]) / ramp[:, None])
    fall = smoothstep((start[:, None] + duration[:, None] - t[None]) / ramp[:, None])
    return rise * fall


def _idle_scene(rng: np.random.Generator, t: np.ndarray, seconds: np.ndarray, body: dict[str, np.ndarray]) -> _Scene:
    """Rest posture plus idle motion (breathing, sway, drifting head and hands, one fidget) and action timing."""
    n, frames = seconds.size, t.size
    onset = seconds * rng.uniform(0.0, 0.35, n)
    duration = np.minimum(seconds * rng.uniform(0.45, 0.9, n), seconds * 1.05 - onset)
    env = _envelope(t, onset, duration, rng.uniform(0.15, 0.35, n))
    dominant = np.where(rng.random(n) < 0.85, 1 - body["left_handed"], body["left_handed"]).astype(int)
    fidget = body["fidget"][:, None]

    breath = rng.uniform(0.002, 0.006, n)[:, None] * np.sin(
        2 * np.pi * rng.uniform(0.2, 0.4, n)[:, None] * t + rng.uniform(0, 2 * np.pi, n)[:, None])
    torso = _smooth_noise(rng, (n, 3), t) * (np.array([0.012, 0.015, 0.01]) * fidget[..., None])
    torso[..., 0] += body["lean"][:, None] + 2.0 * breath
    head = _smooth_noise(rng, (n, 3), t, 0.1, 1.5) * (rng.uniform(0.01, 0.025, n)[:, None, None] * fidget[..., None])
    head += (np.array([1.0, 0.0, 0.0]) * body["head_pitch"][:, None] + rng.normal(0, 0.05, (n, 3)))[:, None]

    rest = _mirrored(body["rest_side"], 0.09 * body["hand"], body["rest_forward"]) + rng.normal(0, 0.015, (n, 2, 3))
    wrist_rest = rest[:, None] + 0.008 * fidget[..., None, None] * _smooth_noise(rng, (n, 2, 3), t, 0.1, 0.8)
    ankle_shift = 0.006 * _smooth_noise(rng, (n, 2, 3), t, 0.05, 0.5)

    # One fidget per clip (often): a brief head turn, hand shift or foot shift unrelated to the label.
    kind = rng.integers(0, 4, n)  # 0 none, 1 head, 2 hand, 3 foot
    bump = _envelope(t, rng.uniform(0, 1, n) * seconds, rng.uniform(0.3, 1.0, n), rng.uniform(0.1, 0.3, n))
    head += ((kind == 1)[:, None] * bump)[..., None] * rng.normal(0, 0.05, (n, 1, 3))
    wrist_rest += ((kind == 2)[:, None] * bump)[..., None, None] * rng.normal(0, 0.03, (n, 1, 2, 3))
    ankle_shift += ((kind == 3)[:, None] * bump)[..., None, None] * rng.normal(0, 0.03, (n, 1, 2, 3))

    return _Scene(
        t=t, body=body, dominant=dominant, env=env, onset=onset, torso=torso, head=head,
        shoulder_lift=np.repeat(breath[..., None], 2, axis=-1), wrist_rest=wrist_rest,
        wrist_act=np.zeros((n, frames, 2, 3)), act_in_head=np.zeros(n, bool), act_weight=np.zeros((n, frames, 2)),
        elbow_act=np.zeros((n, 2, 3)), ankle_shift=ankle_shift, heel_raise=np.zeros((n, frames, 2)),
    )


# ----------------------------------------------------------------------------- actions
# Each action writes control curves for the clips ``idx`` of its class, scaled by the envelope.

def _head_move(scene: _Scene, rng: np.random.Generator, idx: np.ndarray, axis: int, low: float, high: float,
               oscillate: bool) -> None:
    """Rotate the head about one axis (0 pitch, 1 yaw, 2 roll): oscillating, or turning and holding."""
    n = len(idx)
    amp = rng.uniform(low, high, n)
    phase = scene.phase(idx, rng.uniform(0.35, 0.75, n))
    if axis == 0:  # nods and bows go down
        wave = (1 - np.cos(phase)) / 2 if oscillate else 1.0
    else:
        amp *= rng.choice([-1.0, 1.0], n)
        wave = np.sin(phase) if oscillate else 1.0
    leak = rng.normal(0, 0.15, (n, 3))  # real head motion is never about one axis only
    leak[:, axis] = 1.0
    scene.head[idx] += (amp[:, None] * scene.env[idx] * wave)[..., None] * leak[:, None]


def _shrug(scene: _Scene, rng: np.random.Generator, idx: np.ndarray) -> None:
    """Both shoulders up and down once or twice; the hands lift and open slightly."""
    n = len(idx)
    wave = (1 - np.cos(scene.phase(idx, rng.uniform(0.6, 1.2, n)))) / 2
    motion = scene.env[idx] * wave * rng.uniform(0.02, 0.05, n)[:, None]
    scene.shoulder_lift[idx] += motion[..., None] * rng.uniform(0.7, 1.0, (n, 1, 2))
    scene.wrist_rest[idx] += motion[..., None, None] * _mirrored(*np.array([[0.6], [0.8], [0.3]]))


def _one_hand(scene: _Scene, idx: np.ndarray, target: np.ndarray, in_head: bool, elbow: tuple[float, ...]) -> None:
    """Send the dominant hand to ``target`` ([n, T, 3], x toward the hand's side) in the head or torso frame."""
    rows, hand = np.arange(len(idx)), scene.dominant[idx]
    mirror = np.stack([SIDE[hand], np.ones(len(idx)), np.ones(len(idx))], axis=-1)
    act, weight = scene.wrist_act[idx], scene.act_weight[idx]
    act[rows, :, hand] = target * mirror[:, None]
    weight[rows, :, hand] = scene.env[idx]
    scene.wrist_act[idx], scene.act_weight[idx] = act, weight
    scene.elbow_act[idx, hand] = np.array(elbow) * mirror
    scene.act_in_head[idx] = in_head


def _hand_to_head(scene: _Scene, rng: np.random.Generator, idx: np.ndarray, point: np.ndarray,
                  offset: tuple[float, ...], rub_hz: tuple[float, float], rub_m: tuple[float, float]) -> None:
    """Touch or scratch a point on the head: the wrist sits at ``point + offset`` and rubs up and down."""
    n = len(idx)
    base = point + np.array(offset) + rng.normal(0, 0.015, (n, 3))
    rub = rng.uniform(*rub_m, n)[:, None] * np.sin(scene.phase(idx, 1 / rng.uniform(*rub_hz, n)))
    _one_hand(scene, idx, base[:, None] + rub[..., None] * np.array([0.3, 1.0, 0.2]), in_head=True,
              elbow=(1.0, -0.6, 0.3))


def _waving(scene: _Scene, rng: np.random.Generator, idx: np.ndarray) -> None:
    """Raise the hand beside the shoulder and swing it sideways (often only a small wave)."""
    n = len(idx)
    base = np.stack([rng.uniform(0.18, 0.3, n), rng.uniform(-0.1, 0.25, n), rng.uniform(0.12, 0.25, n)], -1)
    swing = rng.uniform(0.03, 0.08, n)[:, None] * np.sin(scene.phase(idx, 1 / rng.uniform(1.5, 3.5, n)))
    _one_hand(scene, idx, base[:, None] + swing[..., None] * np.array([1.0, 0.15, 0.0]), in_head=False,
              elbow=(1.0, -1.0, 0.0))


def _two_hands(scene: _Scene, rng: np.random.Generator, idx: np.ndarray, pose: str) -> None:
    """Both hands to a torso-frame pose: arms crossed on the chest, hands together or rubbing in the lap."""
    n = len(idx)
    if pose == "crossing arms":  # each wrist near the other elbow, one forearm on top
        top = rng.integers(0, 2, n)
        target = _mirrored(np.full(n, -0.11), np.full(n, -0.23), np.full(n, 0.13))
        target[:, :, 2] += np.where(top[:, None] == np.arange(2), 0.04, 0.0)
        elbow = _mirrored(*np.array([[1.0], [-0.8], [0.4]]))
    else:
        target = _mirrored(np.full(n, 0.035), rng.uniform(-0.42, -0.28, n), rng.uniform(0.22, 0.3, n))
        elbow = _mirrored(*np.array([[0.8], [-1.0], [-0.2]]))
    target = np.repeat((target + rng.normal(0, 0.015, (n, 2, 3)))[:, None], scene.t.size, axis=1)
    if pose == "rubbing hands":  # the palms slide against each other in anti-phase
        rub = rng.uniform(0.01, 0.03, n)[:, None] * np.sin(scene.phase(idx, 1 / rng.uniform(2.0, 4.0, n)))
        target += rub[..., None, None] * np.array([[0.0, 0.3, 1.0], [0.0, -0.3, -1.0]])
    scene.wrist_act[idx] = target
    scene.act_weight[idx] = scene.env[idx, :, None]
    scene.elbow_act[idx] = elbow
    scene.act_in_head[idx] = False


def _shaking_legs(scene: _Scene, rng: np.random.Generator, idx: np.ndarray) -> None:
    """Bounce one or both heels quickly, the toes staying on the floor."""
    n = len(idx)
    legs = np.where(rng.random(n) < 0.5, 2, rng.integers(0, 2, n))  # 2: both legs
    mask = (legs[:, None] == 2) | (legs[:, None] == np.arange(2))
    wave = (1 - np.cos(scene.phase(idx, 1 / rng.uniform(3.0, 6.0, n)))) / 2
    bounce = scene.env[idx] * wave * rng.uniform(0.02, 0.05, n)[:, None]
    scene.heel_raise[idx] += bounce[..., None] * mask[:, None]


def _crossing_legs(scene: _Scene, rng: np.random.Generator, idx: np.ndarray) -> None:
    """Cross one leg over the other at the knee, or slide both feet forward and cross the ankles."""
    n = len(idx)
    rows, leg = np.arange(n), rng.integers(0, 2, n)
    at_knee = rng.random(n) < 0.5
    amount = rng.uniform(0.5, 1.0, n)
    width = scene.body["hip"][idx] + scene.body["ankle_side"][idx]
    shift = np.zeros((n, 2, 3))
    shift[rows, leg] = np.stack([-SIDE[leg] * width * np.where(at_knee, 1.9, 1.6),
                                 np.where(at_knee, 0.45 * scene.body["shin"][idx], 0.03),
                                 np.where(at_knee, -0.05, 0.12)], -1)
    shift[rows, 1 - leg, 2] = np.where(at_knee, 0.0, 0.12)
    scene.ankle_shift[idx] += (scene.env[idx] * amount[:, None])[..., None, None] * shift[:, None]


# (MA-52 class name, MA-52 body level, action), in MA-52 label order.
_CLASSES: tuple[tuple[str, str, Callable[[_Scene, np.random.Generator, np.ndarray], None]], ...] = (
    ("shrugging", "body", _shrug),
    ("bowing head", "head", partial(_head_move, axis=0, low=0.15, high=0.4, oscillate=False)),
    ("tilting head", "head", partial(_head_move, axis=2, low=0.14, high=0.32, oscillate=False)),
    ("turning head", "head", partial(_head_move, axis=1, low=0.25, high=0.6, oscillate=False)),
    ("nodding", "head", partial(_head_move, axis=0, low=0.14, high=0.32, oscillate=True)),
    ("shaking head", "head", partial(_head_move, axis=1, low=0.14, high=0.35, oscillate=True)),
    ("putting hands together", "upper limb", partial(_two_hands, pose="putting hands together")),
    ("rubbing hands", "upper limb", partial(_two_hands, pose="rubbing hands")),
    ("waving", "upper limb", _waving),
    ("shaking legs", "lower limb", _shaking_legs),
    ("crossing legs", "lower limb", _crossing_legs),
    ("crossing arms", "body-hand", partial(_two_hands, pose="crossing arms")),
    ("scratching or touching hindbrain", "head-hand",
     partial(_hand_to_head, point=_HINDBRAIN, offset=(0.05, -0.06, -0.02), rub_hz=(3.0, 5.0), rub_m=(0.008, 0.02))),
    ("touching nose", "head-hand",
     partial(_hand_to_head, point=_NOSE * [0, 1, 1], offset=(0.03, -0.1, 0.05), rub_hz=(2.0, 4.0), rub_m=(0.0, 0.012))),
    ("touching ears", "head-hand",
     partial(_hand_to_head, point=_EAR, offset=(0.02, -0.09, 0.03), rub_hz=(2.0, 4.0), rub_m=(0.0, 0.012))),
)
MA52_SYNTH_CLASSES: tuple[str, ...] = tuple(name for name, _, _ in _CLASSES)
BODY_NAMES: tuple[str, ...] = tuple(name for name, _, _ in MA52_BODY_RANGES)
BODY_MAP: tuple[int, ...] = tuple(BODY_NAMES.index(body) for _, body, _ in _CLASSES)


# ----------------------------------------------------------------------------- kinematics

def _mirrored(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Left/right pair ``[n, 2, 3]`` from per-clip ``[n]`` coordinates of the left one (x mirrored)."""
    return np.stack([SIDE * x[:, None], np.repeat(y[:, None], 2, 1), np.repeat(z[:, None], 2, 1)], axis=-1)


def _rotation(angles: np.ndarray) -> np.ndarray:
    """``[..., 3]`` (pitch about x, yaw about y, roll about z) → ``[..., 3, 3]`` = Ry · Rx · Rz."""
    pitch, yaw, roll = np.moveaxis(angles, -1, 0)
    one, zero = np.ones_like(pitch), np.zeros_like(pitch)

    def matrix(*entries: np.ndarray) -> np.ndarray:
        return np.stack(entries, axis=-1).reshape(pitch.shape + (3, 3))

    cp, sp, cy, sy, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    rx = matrix(one, zero, zero, zero, cp, -sp, zero, sp, cp)
    ry = matrix(cy, zero, sy, zero, one, zero, -sy, zero, cy)
    rz = matrix(cr, -sr, zero, sr, cr, zero, zero, zero, one)
    return ry @ rx @ rz


def _apply(rotation: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Rotate points ``[N, T, 3]`` or ``[N, T, K, 3]`` by matrices ``[N, T, 3, 3]`` (size-1 N or T broadcast)."""
    transposed = np.swapaxes(rotation, -1, -2)
    if points.ndim < rotation.ndim:
        return (points[..., None, :] @ transposed)[..., 0, :]
    return points @ transposed


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-9)


def _two_bone(root: np.ndarray, goal: np.ndarray, pole: np.ndarray, first: np.ndarray,
              second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone inverse kinematics ``[n, T, 2, 3]``: (middle joint, reached end), bending toward ``pole``."""
    first, second = first[:, None, None, None], second[:, None, None, None]
    reach = goal - root
    dist = np.clip(np.linalg.norm(reach, axis=-1, keepdims=True), np.abs(first - second) + 1e-3,
                   0.999 * (first + second))
    along = _unit(reach)
    bend = _unit(pole - (pole * along).sum(-1, keepdims=True) * along)
    cos = np.clip((first ** 2 + dist ** 2 - second ** 2) / (2 * first * dist), -1.0, 1.0)
    return root + first * (cos * along + np.sqrt(1 - cos ** 2) * bend), root + along * dist


def _pose(scene: _Scene) -> np.ndarray:
    """Joint positions ``[N, T, 33, 3]`` in metres, body frame: hip midpoint at 0, y up, z forward."""
    b = scene.body
    n, frames = scene.env.shape
    zero = np.zeros(n)
    torso_rot = _rotation(scene.torso)
    neck = _apply(torso_rot, np.stack([zero, b["torso"], zero], -1)[:, None])
    shoulder_local = np.stack([np.broadcast_to(SIDE * b["shoulder"][:, None, None], (n, frames, 2)),
                               scene.shoulder_lift, np.full((n, frames, 2), -0.01)], -1)
    shoulders = neck[:, :, None] + _apply(torso_rot, shoulder_local)
    head_rot = torso_rot @ _rotation(scene.head)
    pivot = neck + _apply(torso_rot, np.stack([zero, b["neck"], zero], -1)[:, None])
    head_size = b["head"][:, None, None, None]
    face = pivot[:, :, None] + _apply(head_rot, _FACE * head_size)

    act = np.where(scene.act_in_head[:, None, None, None],
                   pivot[:, :, None] + _apply(head_rot, scene.wrist_act * head_size),
                   neck[:, :, None] + _apply(torso_rot, scene.wrist_act))
    weight = scene.act_weight[..., None]
    goal = (1 - weight) * scene.wrist_rest + weight * act
    rest_elbow = _mirrored(*np.array([[0.35], [-0.6], [-0.7]]))
    pole = _apply(torso_rot, (1 - weight) * rest_elbow + weight * scene.elbow_act[:, None])
    elbows, wrists = _two_bone(shoulders, goal, pole, b["upper_arm"], b["forearm"])
    fingers = _unit(wrists - elbows)
    thumb_side = _unit(np.cross(pole, fingers)) * SIDE[:, None]
    hand = b["hand"][:, None, None, None]
    pinky = wrists + hand * (0.075 * fingers - 0.028 * thumb_side)
    index = wrists + hand * (0.085 * fingers + 0.012 * thumb_side)
    thumb = wrists + hand * (0.04 * fingers + 0.035 * thumb_side)

    hips = np.broadcast_to(_mirrored(b["hip"], zero, zero)[:, None], (n, frames, 2, 3))
    rest_ankle = _mirrored(b["hip"] + b["ankle_side"], -0.97 * b["shin"], b["thigh"] * b["ankle_forward"])
    lift = scene.heel_raise[..., None] * np.array([0.0, 1.0, 0.0])
    knees, ankles = _two_bone(hips, rest_ankle[:, None] + scene.ankle_shift + lift,
                              np.array([0.0, 0.5, 1.0]), b["thigh"], b["shin"])
    foot = (b["shin"] / 0.42)[:, None, None, None]
    heels = ankles + foot * np.array([0.0, -0.05, -0.05])
    toes = ankles - lift + foot * _mirrored(*np.array([[0.02], [-0.06], [0.15]]))

    pairs = (shoulders, elbows, wrists, pinky, index, thumb, hips, knees, ankles, heels, toes)
    limbs = np.stack(pairs, axis=2).reshape(n, frames, 2 * len(pairs), 3)  # MediaPipe 11-32: left, right, ...
    return np.concatenate([face, limbs], axis=2)


# ----------------------------------------------------------------------------- camera and sensor

def _observe(rng: np.random.Generator, joints: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project through a jittered weak-perspective camera and add MediaPipe-like noise and scores."""
    n, frames, num_joints, _ = joints.shape
    height, width = IMG_SHAPE
    view = np.stack([rng.uniform(-0.17, 0.26, n), rng.uniform(-0.4, 0.4, n), rng.uniform(-0.05, 0.05, n)], -1)
    cam = _apply(_rotation(view)[:, None], joints)
    distance = rng.uniform(2.0, 3.5, n)[:, None, None]
    focal = rng.uniform(230, 380, n)[:, None, None] * distance / (distance - cam[..., 2])
    centre = np.stack([rng.uniform(0.35, 0.65, n), rng.uniform(0.5, 0.62, n)], -1)[:, None, None]
    shake = 0.002 * _smooth_noise(rng, (n, 2), t, 0.2, 2.0)[:, :, None]
    xy = centre + shake + focal[..., None] * cam[..., :2] * np.array([1 / width, -1 / height])
    keypoint = np.concatenate([xy, (-focal * cam[..., 2] / width)[..., None]], axis=-1).astype(np.float32)

    low, high = _SCORE_RANGE.T
    score = low + (high - low) * rng.random((n, 1, num_joints)) + rng.normal(0, 0.02, (n, frames, num_joints))
    for clip in np.flatnonzero(rng.random(n) < 0.5):  # tracking glitch: a joint drifts off with a low score
        joint, start = rng.choice(_GLITCH_JOINTS), rng.integers(0, frames)
        span = slice(start, start + rng.integers(3, 13))
        keypoint[clip, span, joint] += rng.normal(0, 0.015, 3)
        score[clip, span, joint] *= rng.uniform(0.05, 0.4)
    score = np.clip(score, 0.0, 1.0)

    sigma = (rng.uniform(0.001, 0.003, n)[:, None, None] * _JITTER * (1 + 2 * (1 - score))).astype(np.float32)
    noise = rng.standard_normal(keypoint.shape, dtype=np.float32) * sigma[..., None]
    noise[..., 2] *= 3  # depth is the least reliable coordinate
    return keypoint + noise, score.astype(np.float32)
