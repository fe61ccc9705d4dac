"""Embedded default data: procedural seated micro-actions in the MediaPipe Pose layout.

Real micro-action data (MA-52) cannot ship with the package, so every pipeline stage can
run on this generator instead. A seated body is posed by forward kinematics (torso and
head rotations) and two-bone inverse kinematics (arms and legs reach hand and ankle
targets), driven per clip by class-specific control curves on top of idle motion, then
seen through a camera with MediaPipe-like noise and visibility scores.

Each class's movement is small but clearly above idle motion and sensor noise
(:func:`signal_table` measures it), so enough labels separate the classes. What makes
few labels hard is structured nuisance that a handful of clips per class cannot cover
but unlabelled clips fill in: many subjects with their own proportions, rest posture,
camera viewpoint, speed, amplitude, handedness and preferred style (two or three per
class). ``docs/synthetic_data.md`` describes the classes and factors.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import numpy as np

from ssmar.data.ma52 import MA52_BODY_RANGES
from ssmar.errors import SsmarError

IMG_SHAPE = (720, 1280)  # (height, width) of the virtual camera; coordinates are normalised by it
MIN_SECONDS, MAX_SECONDS = 40 / 30, 80 / 30
SIDE = np.array([1.0, -1.0])  # +x is the subject's left (image right for a person facing the camera)
MIN_PERIOD = 0.5  # seconds: oscillations stay <= 2 Hz, so 80 frames resampled to 32 do not alias

# Face points in the head frame (pivot at the top of the neck; y up, z forward), metres, MediaPipe order 0-10.
_FACE = np.array([
    [0.0, 0.13, 0.10],                                                     # nose
    [0.015, 0.165, 0.085], [0.032, 0.167, 0.08], [0.048, 0.165, 0.07],   # left eye inner, eye, outer
    [-0.015, 0.165, 0.085], [-0.032, 0.167, 0.08], [-0.048, 0.165, 0.07],  # right eye inner, eye, outer
    [0.075, 0.145, 0.0], [-0.075, 0.145, 0.0],                           # left, right ear
    [0.025, 0.09, 0.09], [-0.025, 0.09, 0.09],                           # mouth left, right
])

# Visibility ranges per joint (seated: legs are often half hidden by a desk) and sensor jitter multipliers.
_SCORE_RANGE = np.array([(0.95, 1.0)] * 11 + [(0.97, 1.0)] * 2 + [(0.85, 1.0)] * 2 + [(0.7, 0.98)] * 8
                        + [(0.6, 0.95)] * 2 + [(0.45, 0.9)] * 2 + [(0.3, 0.8)] * 6)
_JITTER = np.array([0.6] * 11 + [0.8] * 2 + [1.0] * 2 + [1.2] * 2 + [1.4] * 6 + [1.0] * 2 + [1.2] * 2 + [1.4] * 6)
_GLITCH_JOINTS = np.arange(13, 33)  # joints that tracking loses now and then (arms, hands, legs)
# Joints that carry each MA-52 body level's movement (what signal_table measures).
_LEVEL_JOINTS = {"body": np.arange(11, 13), "head": np.arange(0, 11), "upper limb": np.arange(15, 23),
                 "lower limb": np.arange(25, 33), "body-hand": np.arange(15, 23), "head-hand": np.arange(15, 23)}


@dataclass
class _Scene:
    """Per-clip parameters and the control curves that :func:`_pose` turns into joints.

    Shapes: N clips, T frames (the longest clip; shorter clips use a prefix). Hand and
    leg arrays have a trailing axis of 2 (left, right) before xyz.
    """

    t: np.ndarray            # [T] seconds
    body: dict[str, np.ndarray]  # per-clip copies of the subject's proportions and habits, [N]
    dominant: np.ndarray     # [N] hand used by one-hand actions
    style: np.ndarray        # [N] in [0, 1): which of a class's styles (the subject's habit, mostly)
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

    def styles(self, idx: np.ndarray, count: int) -> np.ndarray:
        """[n] style index in ``range(count)`` of clips ``idx``."""
        return (self.style[idx] * count).astype(int)

    def amplitude(self, rng: np.random.Generator, idx: np.ndarray, low: float, high: float) -> np.ndarray:
        """[n] amplitude drawn in [low, high] and scaled by the subject's habit (how big they move)."""
        return rng.uniform(low, high, len(idx)) * self.body["amp"][idx]

    def phase(self, rng: np.random.Generator, idx: np.ndarray, low: float, high: float) -> np.ndarray:
        """[n, T] phase (radians) from the onset of an oscillation with a period in [low, high] seconds,
        scaled by the subject's speed habit and never shorter than ``MIN_PERIOD``."""
        period = np.maximum(rng.uniform(low, high, len(idx)) / self.body["speed"][idx], MIN_PERIOD)
        return 2 * np.pi * (self.t[None] - self.onset[idx, None]) / period[:, None]


@dataclass
class _Simulation:
    """Everything :func:`generate_synthetic` and :func:`signal_table` need from one draw."""

    label: np.ndarray        # [N]
    subject: np.ndarray      # [N]
    repeat: np.ndarray       # [N]
    lengths: np.ndarray      # [N] frames
    joints: np.ndarray       # [N, T, 33, 3] metres, body frame
    idle: np.ndarray | None  # the same clips without their action (only when asked for)
    keypoint: np.ndarray     # [N, T, 33, 3] float32, observed
    score: np.ndarray        # [N, T, 33] float32
    noise_m: np.ndarray      # [N, T, 33] per-coordinate sensor noise std, metres at the subject


def generate_synthetic(num_subjects: int = 42, clips_per_class: int = 2, seed: int = 0,
                       test_subjects: int = 14, fps: int = 30) -> dict[str, Any]:
    """Generate a cross-subject skeleton data set (canonical dict, see ``skeleton_format``).

    Every subject performs every class ``clips_per_class`` times; the last
    ``test_subjects`` subjects form the test split. Many subjects with few clips each is
    what makes a few labels per class miss most subjects' viewpoints and styles.
    Deterministic in ``seed``.
    """
    for name, value, low in (("num_subjects", num_subjects, 1), ("clips_per_class", clips_per_class, 1),
                             ("fps", fps, 1), ("test_subjects", test_subjects, 0)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise SsmarError(f"synthetic data: {name} must be an integer >= {low}, got {value!r}")
    if test_subjects >= num_subjects:
        raise SsmarError(f"synthetic data: test_subjects ({test_subjects}) must be below num_subjects "
                         f"({num_subjects}) so that some subjects remain for training")
    sim = _simulate(seed, num_subjects, clips_per_class, fps)
    test_from = num_subjects - test_subjects
    annotations, split = [], {"train": [], "test": []}
    for i in range(sim.label.size):
        label, subject, frames = int(sim.label[i]), int(sim.subject[i]), int(sim.lengths[i])
        frame_dir = f"c{label:02d}_s{subject:02d}_r{sim.repeat[i]:02d}"
        split["test" if subject >= test_from else "train"].append(frame_dir)
        annotations.append({
            "frame_dir": frame_dir, "label": label, "subject": subject,
            "keypoint": sim.keypoint[i, None, :frames].copy(), "keypoint_score": sim.score[i, None, :frames].copy(),
            "total_frames": frames, "fps": int(fps), "img_shape": IMG_SHAPE,
        })
    return {"split": split, "annotations": annotations, "class_names": list(MA52_SYNTH_CLASSES),
            "layout": "mediapipe_pose_33", "body_names": list(BODY_NAMES), "body_map": list(BODY_MAP)}


def signal_table(seed: int = 0, num_subjects: int = 12, clips_per_class: int = 2) -> list[dict[str, Any]]:
    """Per class: how far its moving joints go because of the action, against the nuisance floor there.

    ``signal_cm``: peak displacement of the class's joints (``_LEVEL_JOINTS`` of its body level)
    from where idle motion alone would put them (median and 10th percentile over clips);
    ``signal_deg``: for head classes, the peak rotation of the face against idle (median).
    ``idle_cm``: peak deviation of the same joints from their clip mean under idle motion and
    fidgets alone (median and 90th percentile over all clips). ``noise_cm``: median per-frame
    sensor noise std on those joints, per image coordinate, in metres at the subject.
    """
    sim = _simulate(seed, num_subjects, clips_per_class, 30, with_idle=True)
    valid = np.arange(sim.joints.shape[1])[None] < sim.lengths[:, None]  # [N, T]
    face_turn = np.where(valid, _rotation_angle(sim.idle[:, :, :11], sim.joints[:, :, :11]), 0).max(1)
    rows = []
    for cls, (name, level, _) in enumerate(_CLASSES):
        joints, mine = _LEVEL_JOINTS[level], sim.label == cls
        moved = np.linalg.norm(sim.joints[:, :, joints] - sim.idle[:, :, joints], axis=-1).max(-1)
        idle = sim.idle[:, :, joints]
        mean = (idle * valid[..., None, None]).sum(1, keepdims=True) / sim.lengths[:, None, None, None]
        wander = np.linalg.norm(idle - mean, axis=-1).max(-1)
        signal = np.where(valid, moved, 0).max(1)[mine]
        floor = np.where(valid, wander, 0).max(1)
        rows.append({"class": name, "level": level, "signal_cm": 100 * np.median(signal),
                     "signal_p10_cm": 100 * np.percentile(signal, 10),
                     "signal_deg": float(np.degrees(np.median(face_turn[mine]))) if level == "head" else None,
                     "idle_cm": 100 * np.median(floor), "idle_p90_cm": 100 * np.percentile(floor, 90),
                     "noise_cm": 100 * np.median(sim.noise_m[:, :, joints][valid])})
    return rows


def _rotation_angle(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """[...] angle (radians) of the best-fit rotation taking point sets ``[..., K, 3]`` onto each other (Kabsch)."""
    a = before - before.mean(-2, keepdims=True)
    b = after - after.mean(-2, keepdims=True)
    u, _, vt = np.linalg.svd(np.swapaxes(a, -1, -2) @ b)
    turn = np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)
    proper = np.ones(turn.shape[:-1])
    proper[..., -1] = np.sign(np.linalg.det(turn))  # a reflection is not a rotation: flip the weakest axis
    trace = np.einsum("...ji,...j,...ij->...", vt, proper, u)
    return np.arccos(np.clip((trace - 1) / 2, -1.0, 1.0))


def _simulate(seed: int, num_subjects: int, clips_per_class: int, fps: int, with_idle: bool = False) -> _Simulation:
    """Draw subjects, clips, idle motion, actions, camera and sensor, in a fixed order of random draws."""
    rng = np.random.default_rng(seed)
    num_classes = len(_CLASSES)
    label, subject, repeat = (a.ravel() for a in np.meshgrid(np.arange(num_classes), np.arange(num_subjects),
                                                            np.arange(clips_per_class), indexing="ij"))
    lengths = np.maximum(2, np.round(rng.uniform(MIN_SECONDS, MAX_SECONDS, label.size) * fps)).astype(int)
    subjects = _sample_subjects(rng, num_subjects, num_classes)
    preferred = subjects.pop("style")[subject, label]
    style = np.where(rng.random(label.size) < 0.75, preferred, rng.random(label.size))
    per_clip = {k: v[subject] for k, v in subjects.items()}
    scene = _idle_scene(rng, np.arange(lengths.max()) / fps, lengths / fps, style, per_clip)
    idle = _pose(copy.deepcopy(scene)) if with_idle else None
    for cls, (_, _, action) in enumerate(_CLASSES):
        action(scene, rng, np.flatnonzero(label == cls))
    joints = _pose(scene)
    keypoint, score, noise_m = _observe(rng, joints, scene.t, per_clip)
    return _Simulation(label, subject, repeat, lengths, joints, idle, keypoint, score, noise_m)


def _sample_subjects(rng: np.random.Generator, count: int, num_classes: int) -> dict[str, np.ndarray]:
    """Per-subject proportions (metres, radians), habits (rest posture, handedness, how big, fast and
    fidgety they move, preferred style per class) and camera viewpoint (one recording session each)."""
    scale = rng.uniform(0.85, 1.15, count)

    def vary(base: float, spread: float) -> np.ndarray:
        return base * scale * rng.uniform(1 - spread, 1 + spread, count)

    rest = rng.integers(0, 3, count)  # hands on the thighs, on armrests, or on a desk
    return {
        "torso": vary(0.50, 0.06), "neck": vary(0.07, 0.1), "shoulder": vary(0.185, 0.1), "hip": vary(0.09, 0.12),
        "head": (0.5 + 0.5 * scale) * rng.uniform(0.93, 1.07, count),
        "upper_arm": vary(0.29, 0.06), "forearm": vary(0.26, 0.06), "hand": vary(1.0, 0.05),
        "thigh": vary(0.43, 0.06), "shin": vary(0.42, 0.06),
        "lean": rng.uniform(-0.08, 0.2, count), "head_pitch": rng.uniform(-0.1, 0.25, count),
        "rest_side": np.choose(rest, [vary(0.14, 0.12), vary(0.27, 0.06), vary(0.17, 0.12)]),
        "rest_height": np.choose(rest, [vary(0.08, 0.2), vary(0.2, 0.1), vary(0.26, 0.1)]),
        "rest_forward": np.choose(rest, [vary(0.28, 0.1), vary(0.12, 0.2), vary(0.42, 0.08)]),
        "ankle_forward": rng.uniform(0.85, 1.15, count), "ankle_side": vary(0.04, 0.8),
        "left_handed": (rng.random(count) < 0.25).astype(float),
        "fidget": rng.uniform(0.5, 1.5, count), "amp": rng.uniform(0.85, 1.2, count),
        "speed": rng.uniform(0.8, 1.25, count), "style": rng.random((count, num_classes)),
        # camera: yaw and pitch of the view, roll, distance (m), scale (px per m at the subject), image centre
        "cam_yaw": rng.uniform(-0.7, 0.7, count), "cam_pitch": rng.uniform(-0.1, 0.45, count),
        "cam_roll": rng.uniform(-0.07, 0.07, count), "cam_distance": rng.uniform(2.2, 4.0, count),
        "cam_scale": rng.uniform(200, 340, count), "cam_x": rng.uniform(0.38, 0.62, count),
        "cam_y": rng.uniform(-0.02, 0.02, count), "noise_px": rng.uniform(0.6, 1.6, count),
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


def _random_direction(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Unit vectors ``shape + (3,)`` in random directions."""
    v = rng.normal(size=shape + (3,))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _mirrored(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Left/right pair ``[n, 2, 3]`` from per-clip ``[n]`` coordinates of the left one (x mirrored)."""
    return np.stack([SIDE * x[:, None], np.repeat(y[:, None], 2, 1), np.repeat(z[:, None], 2, 1)], axis=-1)


def _idle_scene(rng: np.random.Generator, t: np.ndarray, seconds: np.ndarray, style: np.ndarray,
                body: dict[str, np.ndarray]) -> _Scene:
    """Rest posture plus idle motion (breathing, sway, drifting head and hands, a fidget) and action timing."""
    n, frames = seconds.size, t.size
    onset = seconds * rng.uniform(0.0, 0.25, n)
    duration = np.minimum(seconds * rng.uniform(0.6, 0.95, n), seconds * 1.05 - onset)
    env = _envelope(t, onset, duration, rng.uniform(0.15, 0.3, n))
    dominant = np.where(rng.random(n) < 0.85, 1 - body["left_handed"], body["left_handed"]).astype(int)
    fidget = body["fidget"][:, None]

    breath = rng.uniform(0.002, 0.005, n)[:, None] * np.sin(
        2 * np.pi * rng.uniform(0.2, 0.4, n)[:, None] * t + rng.uniform(0, 2 * np.pi, n)[:, None])
    torso = _smooth_noise(rng, (n, 3), t) * (np.array([0.006, 0.008, 0.005]) * fidget[..., None])
    torso[..., 0] += body["lean"][:, None] + 1.5 * breath
    head = _smooth_noise(rng, (n, 3), t, 0.1, 1.0) * (rng.uniform(0.006, 0.015, n)[:, None, None] * fidget[..., None])
    head += (np.array([1.0, 0.0, 0.0]) * body["head_pitch"][:, None] + rng.normal(0, 0.04, (n, 3)))[:, None]

    rest = _mirrored(body["rest_side"], body["rest_height"], body["rest_forward"]) + rng.normal(0, 0.01, (n, 2, 3))
    wrist_rest = rest[:, None] + 0.004 * fidget[..., None, None] * _smooth_noise(rng, (n, 2, 3), t, 0.1, 0.8)
    ankle_shift = 0.003 * _smooth_noise(rng, (n, 2, 3), t, 0.05, 0.5)

    # A fidget in half the clips: a brief small head turn, hand shift or foot shift unrelated to the label.
    kind = rng.integers(0, 6, n)  # 1 head, 2 hand, 3 foot, otherwise none
    bump = _envelope(t, rng.uniform(0, 1, n) * seconds, rng.uniform(0.3, 0.8, n), rng.uniform(0.15, 0.3, n))
    head += ((kind == 1)[:, None] * bump)[..., None] * (rng.uniform(0.02, 0.05, n)[:, None]
                                                          * _random_direction(rng, (n,)))[:, None]
    wrist_rest += ((kind == 2)[:, None] * bump)[..., None, None] * (
        rng.uniform(0.01, 0.025, (n, 1))[..., None] * _random_direction(rng, (n, 2)))[:, None]
    ankle_shift += ((kind == 3)[:, None] * bump)[..., None, None] * (
        rng.uniform(0.01, 0.025, (n, 1))[..., None] * _random_direction(rng, (n, 2)))[:, None]

    return _Scene(
        t=t, body=body, dominant=dominant, style=style, env=env, onset=onset, torso=torso, head=head,
        shoulder_lift=np.repeat(breath[..., None], 2, axis=-1), wrist_rest=wrist_rest,
        wrist_act=np.zeros((n, frames, 2, 3)), act_in_head=np.zeros(n, bool), act_weight=np.zeros((n, frames, 2)),
        elbow_act=np.zeros((n, 2, 3)), ankle_shift=ankle_shift, heel_raise=np.zeros((n, frames, 2)),
    )


# ----------------------------------------------------------------------------- actions
# Each action writes control curves for the clips ``idx`` of its class. Sizes are in metres and
# radians before the subject's amplitude habit (x0.85-1.2); periods before the speed habit.

def _head_curve(scene: _Scene, rng: np.random.Generator, idx: np.ndarray, axis: int, curve: np.ndarray) -> None:
    """Rotate the head by ``curve`` [n, T] about one axis (0 pitch, 1 yaw, 2 roll), leaking ~10% into the
    others: real head motion is never about one axis only."""
    leak = rng.normal(0, 0.1, (len(idx), 3))
    leak[:, axis] = 1.0
    scene.head[idx] += curve[..., None] * leak[:, None]


def _bowing_head(scene: _Scene, rng: np.random.Generator, idx: np.ndarray) -> None:
    """Head pitches down 30-45° and holds; style 1 bends the upper body forward 8-14° with it."""
    n, style = len(idx), scene.styles(idx, 2)
    amp = scene.amplitude(rng, idx, 0.52, 0.79) * np.where(style == 1, 0.75, 1.0)
    _head_curve(scene, rng, idx, 0, scene.env[idx] * amp[:, None])
    scene.torso[idx, :, 0] += scene.env[idx] * np.where(style == 1, rng.uniform(0.14, 0.24, n), 0.0)[:, None]


def _tilting_head(scene: _Scene, rng: np.random.Generator, idx: np.ndarray) -> None:
    """Head rolls 25-35° to one side and holds; style 1 lifts the chin and turns a little towards it."""
    n, style = len(idx), scene.styles(idx, 2)
    amp = scene.amplitude(rng, idx, 0.44, 0.61) * rng.choice([-1.0, 1.0], n)
    _head_curve(scene, rng, idx, 2, scene.env[idx] * amp[:, None])
    extra = np.where(style[:, None] == 1, amp[:, None] * np.array([-0.35, 0.35, 0.0]), 0.0)
    scene.head[idx] += scene.env[idx, :, None] * extra[:, None]


def _turning_head(scene: _Scene, rng: np.random.Generator, idx: np.ndarray) -> None:
    """Head yaws 40-60° to one side and holds; style 1 turns the shoulders 9-14° along."""
    n, style = len(idx), scene.styles(idx, 2)
    side = rng.choice([-1.0, 1.0], n)
    _head_curve(scene, rng, idx, 1, scene.env[idx] * (scene.amplitude(rng, idx, 0.7, 1.05) * side)[:, None])
    scene.torso[idx, :, 1] += scene.env[idx] * np.where(style == 1, rng.uniform(0.15, 0.25, n) * side, 0.0)[:, None]


def _oscillating_head(scene: _Scene, rng: np.random.Generator, idx: np.ndarray, axis: int) -> None:
    """Nodding (pitch down and up, ``axis`` 0) or shaking (yaw left and right, ``axis`` 1), repeatedly:
    quick and small (15-26°, period 0.5-0.7 s, style 0) or slow and deeper (20-33°, 0.8-1.1 s, style 1)."""
    n, style = len(idx), scene.styles(idx, 2)
    slow = style == 1
    phase = np.where(slow[:, None], scene.phase(rng, idx, 0.8, 1.1), scene.phase(rng, idx, 0.5, 0.7))
    wave = (1 - np.cos(phase)) / 2 if axis == 0 else np.sin(phase) * rng.choice([-1.0, 1.0], n)[:, None]
    amp = scene.amplitude(rng, idx, 0.3, 0.5) * np.where(slow, 1.15, 0.9)
    _head_curve(scene, rng, idx, axis, scene.env[idx] * wave * amp[:, None])


def _shrugging(scene: _Scene, rng: np.random.Generator, idx: np.ndarray) -> None:
    """Both shoulders rise 6-10 cm: once and hold (style 0), twice (style 1), or once with the hands
    turning up and out by ~8 cm (style 2, "I don't know")."""
    n, style = len(idx), scene.styles(idx, 3)
    twice = scene.env[idx] * (1 - np.cos(scene.phase(rng, idx, 0.7, 1.0))) / 2
    motion = np.where(style[:, None] == 1, twice, scene.env[idx]) * scene.amplitude(rng, idx, 0.06, 0.1)[:, None]
    scene.shoulder_lift[idx] += motion[..., None] * rng.uniform(0.8, 1.0, (n, 1, 2))
    hands = np.where(style[:, None, None] == 2, _mirrored(*np.array([[1.4], [1.0], [0.6]])),
                     _mirrored(*np.array([[0.2], [0.6], [0.2]])))
    scene.wrist_rest[idx] += motion[..., None, None] * hands[:, None]


def _one_hand(scene: _Scene, rng: np.random.Generator, idx: np.ndarray, target: np.ndarray, in_head: bool,
              elbow: np.ndarray) -> None:
    """Send the dominant hand to ``target`` ([n, T, 3], x toward the hand's side, jittered ~1 cm) in the
    head or torso frame, the elbow bending towards ``elbow`` ([n, 3])."""
    rows, hand = np.arange(len(idx)), scene.dominant[idx]
    mirror = np.stack([SIDE[hand], np.ones(len(idx)), np.ones(len(idx))], axis=-1)
    act, weight = scene.wrist_act[idx], scene.act_weight[idx]
    act[rows, :, hand] = (target + rng.normal(0, 0.01, (len(idx), 1, 3))) * mirror[:, None]
    weight[rows, :, hand] = scene.env[idx]
    scene.wrist_act[idx], scene.act_weight[idx] = act, weight
    scene.elbow_act[idx, hand] = elbow * mirror
    scene.act_in_head[idx] = in_head


def _hand_to_head(scene: _Scene, rng: np.random.Generator, idx: np.ndarray, wrist: np.ndarray,
                  elbow: np.ndarray, rubs: tuple[bool, ...], rub: tuple[float, float] = (0.02, 0.04)) -> None:
    """Touch the head with the dominant hand: the wrist goes to ``wrist[style]`` (head frame) with the
    elbow towards ``elbow[style]``; styles flagged in ``rubs`` rub ``rub`` metres up and down."""
    style = scene.styles(idx, len(wrist))
    amp = np.where(np.array(rubs)[style], scene.amplitude(rng, idx, *rub), 0.0)
    wave = amp[:, None] * np.sin(scene.phase(rng, idx, 0.5, 0.8))
    target = wrist[style][:, None] + wave[..., None] * np.array([0.2, 1.0, 0.2])
    _one_hand(scene, rng, idx, target, True, elbow[style])


def _waving(scene: _Scene, rng: np.random.Generator, idx: np.ndarray) -> None:
    """One hand swings sideways 8-13 cm (period 0.5-0.8 s), raised beside the head (style 0) or low in
    front of the chest (style 1)."""
    n, style = len(idx), scene.styles(idx, 2)
    high = np.stack([rng.uniform(0.2, 0.28, n), rng.uniform(0.05, 0.2, n), rng.uniform(0.1, 0.2, n)], -1)
    low = np.stack([rng.uniform(0.1, 0.18, n), rng.uniform(-0.2, -0.1, n), rng.uniform(0.25, 0.35, n)], -1)
    base = np.where(style[:, None] == 1, low, high)
    swing = scene.amplitude(rng, idx, 0.08, 0.13)[:, None] * np.sin(scene.phase(rng, idx, 0.5, 0.8))
    elbow = np.where(style[:, None] == 1, np.array([1.0, -1.0, -0.3]), np.array([1.0, -1.0, 0.0]))
    _one_hand(scene, rng, idx, base[:, None] + swing[..., None] * np.array([1.0, 0.15, 0.0]), False, elbow)


def _two_hands(scene: _Scene, rng: np.random.Generator, idx: np.ndarray, target: np.ndarray, elbow: np.ndarray,
               rub: tuple[float, float] = (0.0, 0.0)) -> None:
    """Both hands to a torso-frame pose (``target[style]``, ``[styles, 2, 3]``) and hold it; with ``rub``
    (metres) the palms slide against each other in anti-phase (period 0.5-0.8 s)."""
    n, style = len(idx), scene.styles(idx, len(target))
    goal = target[style] + rng.normal(0, 0.01, (n, 2, 3))
    slide = scene.amplitude(rng, idx, *rub)[:, None] * np.sin(scene.phase(rng, idx, 0.5, 0.8))
    scene.wrist_act[idx] = goal[:, None] + slide[..., None, None] * np.array([[0.0, 0.3, 1.0], [0.0, -0.3, -1.0]])
    scene.act_weight[idx] = scene.env[idx, :, None]
    scene.elbow_act[idx] = elbow[style]
    scene.act_in_head[idx] = False


def _crossing_arms(scene: _Scene, rng: np.random.Generator, idx: np.ndarray) -> None:
    """Each wrist to the other arm (tucked under it, style 0, or gripping the upper arm, style 1), one
    forearm on top."""
    elbow = _pairs((1.0, -0.8, 0.4), (1.0, -0.8, 0.4))
    _two_hands(scene, rng, idx, _pairs((-0.12, -0.24, 0.13), (-0.17, -0.17, 0.1)), elbow)
    top = rng.integers(0, 2, len(idx))
    scene.wrist_act[idx, :, :, 2] += np.where(top[:, None] == np.arange(2), 0.04, 0.0)[:, None]


def _shaking_legs(scene: _Scene, rng: np.random.Generator, idx: np.ndarray) -> None:
    """Heels bounce 6-10 cm (period 0.5-0.8 s): both together (style 0), one leg (style 1), or alternating
    (style 2)."""
    n, style = len(idx), scene.styles(idx, 3)
    phase = scene.phase(rng, idx, 0.5, 0.8)
    leg = rng.integers(0, 2, n)
    shift = np.where(style == 2, np.pi, 0.0)[:, None] * np.array([0.0, 1.0])  # [n, 2] phase of each leg
    gain = np.where(style[:, None] == 1, leg[:, None] == np.arange(2), 1.0)
    wave = (1 - np.cos(phase[..., None] + shift[:, None])) / 2
    amp = scene.amplitude(rng, idx, 0.06, 0.1)
    scene.heel_raise[idx] += (scene.env[idx] * amp[:, None])[..., None] * wave * gain[:, None]


def _crossing_legs(scene: _Scene, rng: np.random.Generator, idx: np.ndarray) -> None:
    """Cross one leg over the other at the knee (style 0), or slide both feet forward and cross the ankles
    (style 1)."""
    n = len(idx)
    rows, leg = np.arange(n), rng.integers(0, 2, n)
    at_knee = scene.styles(idx, 2) == 0
    amount = rng.uniform(0.7, 1.0, n)
    width = scene.body["hip"][idx] + scene.body["ankle_side"][idx]
    shift = np.zeros((n, 2, 3))
    shift[rows, leg] = np.stack([-SIDE[leg] * width * np.where(at_knee, 1.9, 1.6),
                                 np.where(at_knee, 0.45 * scene.body["shin"][idx], 0.03),
                                 np.where(at_knee, -0.05, 0.15)], -1)
    shift[rows, 1 - leg, 2] = np.where(at_knee, 0.0, 0.15)
    scene.ankle_shift[idx] += (scene.env[idx] * amount[:, None])[..., None, None] * shift[:, None]


def _pairs(*rows: tuple[float, ...]) -> np.ndarray:
    """Left/right pairs ``[styles, 2, 3]`` from each style's left-hand xyz."""
    return np.stack([_mirrored(*np.array(row)[:, None])[0] for row in rows])


_ELBOW_OUT, _ELBOW_DOWN = np.array([1.0, -0.5, 0.2]), np.array([0.3, -1.0, 0.4])

# (MA-52 class name, MA-52 body level, action), in MA-52 label order.
_CLASSES: tuple[tuple[str, str, Callable[[_Scene, np.random.Generator, np.ndarray], None]], ...] = (
    ("shrugging", "body", _shrugging),
    ("bowing head", "head", _bowing_head),
    ("tilting head", "head", _tilting_head),
    ("turning head", "head", _turning_head),
    ("nodding", "head", partial(_oscillating_head, axis=0)),
    ("shaking head", "head", partial(_oscillating_head, axis=1)),
    # hands meet in the lap, at the chest (fingertips together) or forward on a desk
    ("putting hands together", "upper limb",
     partial(_two_hands, target=_pairs((0.035, -0.42, 0.25), (0.035, -0.2, 0.22), (0.035, -0.25, 0.42)),
             elbow=_pairs((0.8, -1.0, -0.2), (1.0, -0.6, 0.0), (0.8, -1.0, 0.0)))),
    ("rubbing hands", "upper limb",
     partial(_two_hands, target=_pairs((0.035, -0.4, 0.25), (0.035, -0.22, 0.24)),
             elbow=_pairs((0.8, -1.0, -0.2), (1.0, -0.6, 0.0)), rub=(0.03, 0.05))),
    ("waving", "upper limb", _waving),
    ("shaking legs", "lower limb", _shaking_legs),
    ("crossing legs", "lower limb", _crossing_legs),
    ("crossing arms", "body-hand", _crossing_arms),
    # scratching (style 0) or resting the hand (style 1) behind the head, elbow high
    ("scratching or touching hindbrain", "head-hand",
     partial(_hand_to_head, wrist=np.array([[0.06, 0.08, -0.15], [0.07, 0.06, -0.14]]),
             elbow=np.array([[1.0, 0.6, -0.2], [1.0, 0.8, 0.0]]), rubs=(True, False))),
    # fingertip to the nose from below (style 0) or from the side (style 1)
    ("touching nose", "head-hand",
     partial(_hand_to_head, wrist=np.array([[0.02, -0.02, 0.17], [0.09, 0.07, 0.13]]),
             elbow=np.stack([_ELBOW_DOWN, _ELBOW_OUT]), rubs=(False, False))),
    # holding the ear (style 0) or tugging it up and down (style 1)
    ("touching ears", "head-hand",
     partial(_hand_to_head, wrist=np.array([[0.13, 0.07, -0.01], [0.13, 0.05, -0.01]]),
             elbow=np.stack([_ELBOW_OUT, _ELBOW_OUT]), rubs=(False, True), rub=(0.015, 0.03))),
)
MA52_SYNTH_CLASSES: tuple[str, ...] = tuple(name for name, _, _ in _CLASSES)
BODY_NAMES: tuple[str, ...] = tuple(name for name, _, _ in MA52_BODY_RANGES)
BODY_MAP: tuple[int, ...] = tuple(BODY_NAMES.index(body) for _, body, _ in _CLASSES)


# ----------------------------------------------------------------------------- kinematics

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

def _observe(rng: np.random.Generator, joints: np.ndarray, t: np.ndarray,
             cam: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project through each subject's camera (per-clip jitter around it) and add MediaPipe-like noise,
    scores and tracking glitches. Returns keypoints, scores and the sensor noise std in metres."""
    n, frames, num_joints, _ = joints.shape
    height, width = IMG_SHAPE
    view = np.stack([cam["cam_pitch"] + rng.uniform(-0.05, 0.05, n), cam["cam_yaw"] + rng.uniform(-0.08, 0.08, n),
                     cam["cam_roll"] + rng.uniform(-0.02, 0.02, n)], -1)
    seen = _apply(_rotation(view)[:, None], joints)
    distance = cam["cam_distance"][:, None, None]
    scale = (cam["cam_scale"] * rng.uniform(0.95, 1.05, n))[:, None, None]
    focal = scale * distance / (distance - seen[..., 2])
    # hips 5 cm below the image centre: the head is higher above them than the feet below, but the feet
    # are nearer the camera, so head and feet fit for every view
    fit_y = 0.5 + cam["cam_y"] + 0.05 * scale[:, 0, 0] / height
    centre = np.stack([cam["cam_x"], fit_y], -1) + rng.uniform(-0.01, 0.01, (n, 2))
    shake = 0.001 * _smooth_noise(rng, (n, 2), t, 0.2, 1.5)[:, :, None]
    xy = centre[:, None, None] + shake + focal[..., None] * seen[..., :2] * np.array([1 / width, -1 / height])
    keypoint = np.concatenate([xy, (-focal * seen[..., 2] / width)[..., None]], axis=-1).astype(np.float32)

    low, high = _SCORE_RANGE.T
    score = low + (high - low) * rng.random((n, 1, num_joints)) + rng.normal(0, 0.02, (n, frames, num_joints))
    for clip in np.flatnonzero(rng.random(n) < 0.3):  # occlusion: a joint drifts off with a low score
        joint, start = rng.choice(_GLITCH_JOINTS), rng.integers(0, frames)
        span = slice(start, start + rng.integers(3, 10))
        keypoint[clip, span, joint] += rng.normal(0, 0.01, 3)
        score[clip, span, joint] *= rng.uniform(0.05, 0.4)
    score = np.clip(score, 0.0, 1.0)

    sigma_px = cam["noise_px"][:, None, None] * _JITTER * (1 + (1 - score))  # [n, T, V] per image coordinate
    noise = rng.standard_normal(keypoint.shape, dtype=np.float32) * sigma_px[..., None].astype(np.float32)
    noise *= np.array([1 / width, 1 / height, 2 / width], dtype=np.float32)  # depth is the least reliable
    return keypoint + noise, score.astype(np.float32), sigma_px / scale
