"""MediaPipe pose estimation: one frame in, one skeleton out.

Only models bundled with ``mediapipe==0.10.21`` are used (``model_complexity=1``);
complexity 0 and 2 would download weights at run time. Two layouts:

* ``mediapipe_pose_33`` — MediaPipe Pose landmarks; x, y normalised to the image
  (0..1), z relative depth at the scale of x; score = landmark visibility.
* ``--holistic`` — a custom 75-joint layout: pose 33, then the subject's left hand
  (joints 33..53) and right hand (54..74), 21 MediaPipe hand landmarks each, with the
  hand roots linked to the pose wrists. Hand z is relative to the hand's wrist. Hand
  landmarks carry no visibility, so a detected hand scores 1 and a missing one 0.
  Face landmarks are not included: on MA-52 the faces wear a privacy box and the
  face model finds nothing.

A frame without a detected person yields zero keypoints with score 0.
"""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

import numpy as np

from ssmar.data.layouts import MEDIAPIPE_POSE_33
from ssmar.errors import SsmarError
from ssmar.runtime.native_logs import quiet_native_stderr

POSE_LAYOUT = MEDIAPIPE_POSE_33.name  # joint order and bones: ssmar.data.layouts
NUM_POSE_JOINTS = MEDIAPIPE_POSE_33.num_joints
NUM_HAND_JOINTS = 21
LEFT_HAND_OFFSET = NUM_POSE_JOINTS
RIGHT_HAND_OFFSET = NUM_POSE_JOINTS + NUM_HAND_JOINTS
NUM_HOLISTIC_JOINTS = NUM_POSE_JOINTS + 2 * NUM_HAND_JOINTS
POSE_LEFT_WRIST, POSE_RIGHT_WRIST = 15, 16
SHOULDERS = (11, 12)

#: ``mediapipe.solutions.hands.HAND_CONNECTIONS`` (21 landmarks, 0 = wrist).
HAND_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 5), (0, 17), (1, 2), (2, 3), (3, 4), (5, 6), (5, 9), (6, 7), (7, 8), (9, 10),
    (9, 13), (10, 11), (11, 12), (13, 14), (13, 17), (14, 15), (15, 16), (17, 18), (18, 19), (19, 20),
)


def holistic_edges() -> list[tuple[int, int]]:
    """Bones of the 75-joint holistic layout: the pose layout's, both hands, wrist-to-hand links.

    The shoulders come first because a ``custom`` layout normalises scale by its first bone.
    """
    edges = [SHOULDERS] + [edge for edge in MEDIAPIPE_POSE_33.edges if set(edge) != set(SHOULDERS)]
    for offset, wrist in ((LEFT_HAND_OFFSET, POSE_LEFT_WRIST), (RIGHT_HAND_OFFSET, POSE_RIGHT_WRIST)):
        edges.extend((a + offset, b + offset) for a, b in HAND_EDGES)
        edges.append((wrist, offset))
    return edges


class FramePose(NamedTuple):
    keypoint: np.ndarray  # float32 [V, 3]: x, y (normalised image coords), z
    score: np.ndarray  # float32 [V]
    detected: bool  # a person (pose) was found in this frame


class PoseEstimator:
    """A MediaPipe Pose (or Holistic) graph in video mode; call :meth:`reset` between videos.

    Video mode tracks the person from frame to frame; without a reset the track of one
    video's last frame leaks into the next video and can invent a person there.

    MediaPipe's native log lines are silenced (:mod:`ssmar.runtime.native_logs`) around each
    frame and from graph start (creation, reset) until the first frame is through: the graph
    loads its models in its own threads after the start call returns.
    """

    def __init__(self, holistic: bool = False):
        self.holistic = holistic
        self.num_joints = NUM_HOLISTIC_JOINTS if holistic else NUM_POSE_JOINTS
        try:
            import mediapipe as mp
        except ImportError as exc:
            raise SsmarError(f"MediaPipe is not installed ({exc}); pip install 'ssmar[pose]'") from exc
        solution = mp.solutions.holistic.Holistic if holistic else mp.solutions.pose.Pose
        self._starting = contextlib.ExitStack()
        self._starting.enter_context(quiet_native_stderr())
        try:
            self._graph = solution(static_image_mode=False, model_complexity=1)
        except Exception as exc:  # mediapipe raises bare RuntimeError/ValueError on missing models
            what = "Holistic (--holistic)" if holistic else "Pose"
            self._starting.close()
            raise SsmarError(f"MediaPipe {what} cannot start offline with the models bundled in mediapipe "
                             f"{mp.__version__} ({type(exc).__name__}: {exc}); install mediapipe==0.10.21"
                             + ("; or run without --holistic" if holistic else "")) from exc

    def process(self, rgb: np.ndarray) -> FramePose:
        """Estimate the pose in one RGB ``uint8`` frame."""
        with quiet_native_stderr():
            result = self._graph.process(rgb)
        self._starting.close()
        keypoint = np.zeros((self.num_joints, 3), np.float32)
        score = np.zeros(self.num_joints, np.float32)
        if result.pose_landmarks is None:
            return FramePose(keypoint, score, False)
        landmarks = result.pose_landmarks.landmark
        keypoint[:NUM_POSE_JOINTS] = [(p.x, p.y, p.z) for p in landmarks]
        score[:NUM_POSE_JOINTS] = [p.visibility for p in landmarks]
        if self.holistic:
            for offset, hand in ((LEFT_HAND_OFFSET, result.left_hand_landmarks),
                                 (RIGHT_HAND_OFFSET, result.right_hand_landmarks)):
                if hand is not None:
                    keypoint[offset:offset + NUM_HAND_JOINTS] = [(p.x, p.y, p.z) for p in hand.landmark]
                    score[offset:offset + NUM_HAND_JOINTS] = 1.0
        return FramePose(keypoint, score, True)

    def reset(self) -> None:
        """Forget the tracked person (start of a new video)."""
        self._starting.close()
        self._starting.enter_context(quiet_native_stderr())
        self._graph.reset()

    def close(self) -> None:
        with quiet_native_stderr():
            self._graph.close()
        self._starting.close()

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
