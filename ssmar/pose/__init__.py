"""Pose extraction from video: MediaPipe (``mediapipe_pose``), the resumable parallel batch
driver (``extract``) and skeleton overlays (``render``); frames come from :mod:`ssmar.video.decode`.

MediaPipe, PyAV and OpenCV are optional dependencies (``pip install 'ssmar[pose]'``);
they are imported only when a video is actually processed.
"""

from ssmar.pose.extract import ExtractOptions, extract_clip_pose

__all__ = ["ExtractOptions", "extract_clip_pose"]
