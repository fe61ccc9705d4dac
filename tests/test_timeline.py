"""``ssmar timeline``: segments recovered from a composed sequence with known truth, skeleton and video
input, live frames on stdin, the bad inputs, and the HTML page in headless Chromium."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config
from ssmar.cli.main import main
from ssmar.data.skeleton_format import save_skeleton_pickle
from ssmar.data.synth import generate_synthetic
from ssmar.engine.inference import Recognizer, load_recognizer
from ssmar.engine.runs import run_training
from ssmar.engine.segment_metrics import average_precision, frame_accuracy, segment_f1
from ssmar.engine.timeline import (Segment, TimelineSettings, compose_sequence, frame_labels,
                                   run_timeline, skeleton_frames, training_statistics)
from test_report_browser import browser, load_in_browser  # noqa: F401 - the fixture is used by name

REPO = Path(__file__).resolve().parents[1]
CLASSES = (0, 5, 10)  # shrugging, shaking head, crossing legs: three body levels


@pytest.fixture(scope="module")
def tiny_timeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Recognizer, list[dict]]:
    """A tiny ST-GCN on three synthetic classes (4 training subjects), and the test clips it gets right
    with probability >= 0.7: the composed sequences below are made of those, so that what is tested is
    the timeline, not the classifier."""
    root = tmp_path_factory.mktemp("timeline")
    data = generate_synthetic(num_subjects=5, clips_per_class=2, test_subjects=1)
    clips = [dict(a, label=CLASSES.index(a["label"])) for a in data["annotations"] if a["label"] in CLASSES]
    names = {a["frame_dir"] for a in clips}
    save_skeleton_pickle({"annotations": clips, "layout": data["layout"],
                          "split": {k: [n for n in v if n in names] for k, v in data["split"].items()},
                          "class_names": [data["class_names"][c] for c in CLASSES]}, root / "three.pkl")
    run_training(tiny_config(root / "three.pkl", root / "run", "algorithm.name=fullysupervised", "model.streams=[joint,joint_motion]",
                             "train.epochs=10", "train.steps_per_epoch=20", "train.batch_size=8",
                             "train.eval_every=10"))
    recognizer = load_recognizer(root / "run" / "latest.pt")
    test = [a for a in clips if a["frame_dir"] in set(data["split"]["test"])]
    encoded, labels, _ = recognizer.encode(test)
    probs = recognizer.probabilities(encoded)
    right = [a for a, p, label in zip(test, probs, labels) if p.argmax() == label and p.max() >= 0.7]
    assert len(right) >= 4, "the tiny model should get most of its test clips right"
    return root / "run" / "latest.pt", recognizer, right


def composed(recognizer: Recognizer, clips: list[dict], seed: int = 0) -> tuple[dict, list[tuple[int, int, int]]]:
    """The clips (one test subject's) with rests of 20-60 frames around them."""
    rng = np.random.default_rng(seed)
    return compose_sequence(clips, list(rng.integers(20, 60, len(clips) + 1)), rng)


def predicted(segments: list[Segment]) -> list[tuple[int, int, int, float]]:
    return [(s.start, s.end, s.class_id, s.score) for s in segments]


def test_composed_sequence_is_recovered(tiny_timeline: tuple[Path, Recognizer, list[dict]]) -> None:
    """Tolerance, default rule (peaks): at temporal IoU >= 0.5 with the right class, at least 3 of the 5 true
    segments are found and at least 3 of 4 found segments are true. (The model has no "nothing" class: the
    rests between actions, where the body shifts from one clip's posture to the next, can look like an
    action to it; BENCHMARKS.md measures how often.)"""
    _, recognizer, clips = tiny_timeline
    sequence, truth = composed(recognizer, clips)
    lengths, min_motion = training_statistics(recognizer)
    window = lengths[1]
    result = run_timeline(skeleton_frames(sequence), recognizer,
                          TimelineSettings(window=window, stride=window // 8, rule="peaks"))
    found = predicted(result.segments)
    scores = segment_f1(found, truth, 0.5)
    assert len(truth) == 5 and scores["recall"] >= 0.6 and scores["precision"] >= 0.75, (truth, found)
    assert average_precision(found, truth, 0.5) >= 0.4  # mean over the 3 classes present
    frames = sequence["keypoint"].shape[1]
    assert result.frames == frames and result.windows == (frames - window) // (window // 8) + 1
    assert all(s.end - s.start == window for s in result.segments), "peaks: each segment is one window"
    assert all(b.start >= a.end for a, b in zip(result.segments, result.segments[1:])), "and none overlap"

    # a rule can be checked against the truth frame by frame too; the runs rule tiles the frames
    runs = run_timeline(skeleton_frames(sequence), recognizer,
                        TimelineSettings(window=window, stride=window // 8, rule="runs", min_motion=min_motion))
    assert runs.segments and all(b.start >= a.end for a, b in zip(runs.segments, runs.segments[1:]))
    assert all(s.end - s.start >= window // 4 for s in runs.segments), "shorter runs are dropped"
    true_frames = frame_labels([Segment(a, b, c, 1.0, 0) for a, b, c in truth], frames)
    assert frame_accuracy(frame_labels(result.segments, frames), true_frames) > (true_frames == -1).mean()

    # three window lengths at once: segments of the scales' lengths
    scaled = run_timeline(skeleton_frames(sequence), recognizer,
                          TimelineSettings(window=max(lengths), scales=lengths, stride=window // 8, rule="peaks"))
    assert {s.end - s.start for s in scaled.segments} <= set(lengths) and scaled.segments


@pytest.mark.parametrize("rule, delay", [("runs", 40 + 5 + 5), ("peaks", 40 + 10 + 5)])
def test_live_and_offline_decide_the_same_segments(tiny_timeline: tuple[Path, Recognizer, list[dict]], rule: str,
                                                   delay: int) -> None:
    """Batching windows (offline) or scoring each at once (live) changes latency, not the segments; the
    segments come out while the stream runs, not only at its end: runs within a window plus the smoothing
    span of a segment's end, peaks within a window and a quarter (plus a stride)."""
    _, recognizer, clips = tiny_timeline
    sequence, _ = composed(recognizer, clips, seed=1)
    settings = dict(window=40, stride=5, rule=rule, min_motion=0.02)
    seen: list[tuple[int, int]] = []
    live = run_timeline(skeleton_frames(sequence), recognizer, TimelineSettings(batch=1, **settings),
                        on_segment=lambda s: seen.append((s.end, s.closed_at)), keep_curve=False)
    offline = run_timeline(skeleton_frames(sequence), recognizer, TimelineSettings(batch=16, **settings))
    assert live.segments and [s[:3] for s in predicted(live.segments)] == [s[:3] for s in predicted(offline.segments)]
    assert [s.score for s in live.segments] == pytest.approx([s.score for s in offline.segments], abs=1e-5)
    frames = sequence["keypoint"].shape[1]
    assert any(closed < frames for _, closed in seen[:-1]), "segments are decided while frames still arrive"
    assert all(closed - end <= delay for end, closed in seen if closed < frames), "decided within the stated delay"
    assert live.curve is None and offline.curve.shape == (offline.windows, 3)


def test_stretch_without_a_person_has_no_segment(tiny_timeline: tuple[Path, Recognizer, list[dict]]) -> None:
    """Stated behaviour: windows with a person in fewer than half their frames are no micro-action (and a
    missing body does not move), so no segment reaches more than half a window into a stretch without
    a person, even with the score threshold off."""
    _, recognizer, clips = tiny_timeline
    sequence, truth = composed(recognizer, clips)
    start, end = truth[1][0] - 10, truth[2][1] + 10
    sequence["keypoint"][:, start:end] = 0.0
    sequence["keypoint_score"][:, start:end] = 0.0
    window = 40
    result = run_timeline(skeleton_frames(sequence), recognizer,
                          TimelineSettings(window=window, stride=5, rule="runs", threshold=0.0))
    labels = frame_labels(result.segments, sequence["keypoint"].shape[1])
    assert (labels[start + window // 2:end - window // 2] == -1).all()
    assert result.detected_frames == sequence["keypoint"].shape[1] - (end - start)
    assert (labels[:start] >= 0).any(), "the threshold is off: where the person is, frames get classes"


def test_skeleton_cli_writes_csv_json_and_html(tiny_timeline: tuple[Path, Recognizer, list[dict]], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint, recognizer, clips = tiny_timeline
    sequence, truth = composed(recognizer, clips)
    np.save(tmp_path / "poses.npy", sequence["keypoint"][0])  # arrays made elsewhere: [T, V, C]
    out = tmp_path / "tl"
    assert main(["timeline", str(tmp_path / "poses.npy"), "--checkpoint", str(checkpoint), "-o", str(out),
                 "--fps", "30", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    document = json.loads((out / "segments.json").read_text())
    with open(out / "segments.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(document["segments"]) == document["summary"]["segments"] >= len(truth) - 1
    assert [int(r["start_frame"]) for r in rows] == [s["start_frame"] for s in document["segments"]]
    assert float(rows[0]["start_s"]) == pytest.approx(int(rows[0]["start_frame"]) / 30, abs=1e-3)
    assert document["settings"]["lengths"] == [training_statistics(recognizer)[0][1]]  # the median training clip
    assert document["settings"]["rule"] == "peaks"
    assert "latency frame in -> segment out" in printed and "segments in" in printed
    page = (out / "timeline.html").read_text()
    assert page.count("class=\"seg\"") == len(rows) and "<script" not in page


def write_frames(size: int = 448, frames: int = 24) -> np.ndarray:
    """A real photograph of a person, panning a few pixels per frame: ``[T, H, W, 3]`` RGB."""
    astronaut = pytest.importorskip("skimage.data").astronaut()
    return np.stack([astronaut[8 + t * 2: 8 + t * 2 + size, 16 + t: 16 + t + size] for t in range(frames)])


def test_live_frames_on_stdin(tiny_timeline: tuple[Path, Recognizer, list[dict]], tmp_path: Path) -> None:
    """Raw rgb24 frames piped into ``ssmar timeline -``: segments printed and appended to the CSV as they
    close, the latency and throughput printed at the end, no MediaPipe log line on the terminal."""
    pytest.importorskip("mediapipe")
    checkpoint, _, _ = tiny_timeline
    frames = write_frames()
    out = tmp_path / "live"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "ssmar.cli.main", "timeline", "-", "--stdin-frames", "448x448",
                             "--checkpoint", str(checkpoint), "-o", str(out), "--window", "8", "--stride", "2",
                             "--threshold", "0", "--min-motion", "0", "--fps", "30", "--no-progress"],
                            input=frames.tobytes(), capture_output=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stderr.decode() == "", "MediaPipe's native log lines stay off the terminal"
    lines = result.stdout.decode().splitlines()
    document = json.loads((out / "segments.json").read_text())
    with open(out / "segments.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert document["summary"]["frames"] == 24 and document["summary"]["person_found"] == 1.0
    assert 1 <= len(rows) == len(document["segments"]) == len(lines) - 1
    assert "latency frame in -> segment out" in lines[-1] and "frames/s (live)" in lines[-1]
    assert document["summary"]["segment_latency"]["mean_ms"] is not None
    assert not (out / "timeline.html").exists(), "live mode keeps no curve and writes no page"


def test_bad_sources_give_one_error_line(tiny_timeline: tuple[Path, Recognizer, list[dict]], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint, _, clips = tiny_timeline
    np.save(tmp_path / "short.npy", np.asarray(clips[0]["keypoint"])[0, :20])
    cases = {
        (str(tmp_path / "short.npy"), "--window", "30"):
            "the sequence has 20 frames, fewer than one window (30 frames); pass --window 20 or less",
        (str(tmp_path / "missing.mp4"),): f"{tmp_path / 'missing.mp4'}: file not found",
        ("99",): "99: cannot open as a camera (OpenCV)",
        ("-",): "reading frames from stdin needs their size: pass --stdin-frames WIDTHxHEIGHT",
    }
    for source, expected in cases.items():
        code = main(["timeline", *source, "--checkpoint", str(checkpoint), "-o", str(tmp_path / "out"),
                     "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {expected}"), (source, err)
    assert not (tmp_path / "out").exists(), "nothing written"


def test_two_pose_workers_keep_the_frames_in_order(tmp_path: Path) -> None:
    """``--workers 2``: chunks of frames alternate between two MediaPipe processes and come back in order;
    only the first frames of a chunk differ (tracking restarts there)."""
    pytest.importorskip("mediapipe")
    cv2 = pytest.importorskip("cv2")
    from ssmar.pose.mediapipe_pose import PoseEstimator
    from ssmar.pose.stream import parallel_pose_frames, pose_frames
    from ssmar.video.decode import VideoReader

    video = tmp_path / "person.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30, (448, 448))
    for frame in write_frames():
        writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
    writer.release()
    parallel = list(parallel_pose_frames(str(video), 2, thumbnail_every=4, chunk=8))
    with PoseEstimator() as estimator:
        single = list(pose_frames(iter(VideoReader(video)), estimator, thumbnail_every=4))
    assert len(parallel) == len(single) == 24 and all(f.detected for f in parallel)
    assert [f.image is not None for f in parallel] == [f.image is not None for f in single]
    difference = [float(np.abs(a.keypoint - b.keypoint)[..., :2].mean()) for a, b in zip(parallel, single)]
    assert max(difference[:8]) == 0.0, "the first chunk is the same computation"
    # later chunks: the same person, re-detected (a chunk's first frames land a few % of the image apart)
    assert max(difference) < 0.15 and float(np.mean(difference[8:])) < 0.05


def test_timeline_page_loads_in_chromium(browser: str, tiny_timeline: tuple[Path, Recognizer, list[dict]],  # noqa: F811
                                         tmp_path: Path) -> None:
    """A video through MediaPipe (two worker processes): the page, with its preview frames, loads without a
    console message."""
    pytest.importorskip("mediapipe")
    cv2 = pytest.importorskip("cv2")
    from PIL import Image

    checkpoint, _, _ = tiny_timeline
    video = tmp_path / "person.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30, (448, 448))
    for frame in write_frames():
        writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
    writer.release()
    assert main(["timeline", str(video), "--checkpoint", str(checkpoint), "-o", str(tmp_path / "tl"), "--workers", "2",
                 "--window", "8", "--stride", "2", "--threshold", "0", "--min-motion", "0", "--no-progress"]) == 0
    page = tmp_path / "tl" / "timeline.html"
    assert "data:image/jpeg;base64," in page.read_text(), "segments carry a preview frame"
    console = load_in_browser(browser, page, tmp_path / "timeline.png")
    assert console == [], f"console messages while loading the timeline: {console}"
    shot = np.asarray(Image.open(tmp_path / "timeline.png").convert("L"), dtype=float)
    assert shot.std() > 10, "the screenshot shows a drawn page"
