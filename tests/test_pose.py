"""Pose extraction, MA-52 formats and rendering, on real clips and real photographs."""

from __future__ import annotations

import csv
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from ssmar.cli.main import main
from ssmar.data.ma52 import (MA52_BODY_RANGES, SUBMISSION_HEADER, load_ma52_pose_pickle, ma52_body_map,
                             read_label_names, read_list_file, write_submission)
from ssmar.data.skeleton_format import load_skeleton_pickle, save_skeleton_pickle, validate_skeleton_data
from ssmar.errors import SsmarError

cv2 = pytest.importorskip("cv2")
pytest.importorskip("mediapipe")
pytest.importorskip("av")
skimage_data = pytest.importorskip("skimage.data")

from ssmar.data.layouts import MEDIAPIPE_POSE_33, layout_for_data  # noqa: E402
from ssmar.pose.extract import (ExtractOptions, _cache_path, _read_cache, _source_stamp,  # noqa: E402
                                collect_jobs, extract_clip_pose, run_extraction, skeleton_data)
from ssmar.pose.mediapipe_pose import HAND_EDGES, NUM_HOLISTIC_JOINTS, PoseEstimator  # noqa: E402
from ssmar.video.decode import VideoReader  # noqa: E402

DEMO_CLIPS = ("B1_nodding__0019_02_0078.mp4", "B2_shaking_head__0035_02_0007.mp4")


def _write_video(path: Path, image: np.ndarray, frames: int = 10, size: int = 448) -> Path:
    """A short mp4 of a real photograph panning a few pixels per frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (size, size))
    for t in range(frames):
        crop = image[8 + t * 2: 8 + t * 2 + size, 16 + t * 3: 16 + t * 3 + size]
        writer.write(cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _write_faststart_mp4(path: Path, image: np.ndarray, frames: int = 30) -> bytes:
    """An mp4 with its index first, so a cut-off copy still opens (and must be caught as truncated)."""
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
        for t in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[t * 4: t * 4 + 256, :256]), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path.read_bytes()


@pytest.fixture(scope="module")
def astronaut_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_video(tmp_path_factory.mktemp("videos") / "astronaut.mp4", skimage_data.astronaut())


@pytest.fixture(scope="module")
def astronaut_pose(astronaut_video: Path) -> dict:
    return extract_clip_pose(astronaut_video, label=0)


# --- MA-52 formats ------------------------------------------------------------------


def test_read_ma52_lists_and_label_names(shared_data: Path) -> None:
    demo = shared_data / "ma52_demo"
    assert read_list_file(demo / "demo_list.txt")[:2] == [("A1_shaking_body__0030_01_0002.mp4", 0),
                                                         ("A2_turning_around__0078_01_0005.mp4", 3)]
    train = read_list_file(demo / "train_list_videos.txt")
    assert len(train) == 11250 and all(0 <= label < 52 for _, label in train)
    names = read_label_names(demo / "label_name.txt")  # CRLF line ends, no final newline
    assert len(names) == 52 and names[0] == "shaking body" and names[51] == "scratching feet"


def test_list_and_label_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad_list.txt"
    bad.write_text("a.mp4 1\n\nb.mp4 x\n")
    with pytest.raises(SsmarError, match=r"bad_list.txt:3: label 'x' is not an integer"):
        read_list_file(bad)
    bad.write_text("a.mp4 1\na.mp4 2\n")
    with pytest.raises(SsmarError, match=r":2: clip 'a.mp4' already listed on line 1"):
        read_list_file(bad)
    bad.write_text("justaname\n")
    with pytest.raises(SsmarError, match=r":1: expected '<clip> <label>'"):
        read_list_file(bad)
    labels = tmp_path / "labels.txt"
    labels.write_text("0\tzero\n2\ttwo\n")
    with pytest.raises(SsmarError, match="without gaps"):
        read_label_names(labels)
    with pytest.raises(SsmarError, match="not found"):
        read_list_file(tmp_path / "missing.txt")


def test_ma52_body_map_follows_the_ranges() -> None:
    body_map, body_names = ma52_body_map()
    assert len(body_map) == 52 and body_names[0] == "body" and body_names[-1] == "leg-hand"
    assert [body_map.count(b) for b in range(7)] == [5, 6, 13, 8, 6, 10, 4]
    for body, (_, first, last) in enumerate(MA52_BODY_RANGES):
        assert body_map[first] == body_map[last] == body
    assert body_map[4] == 0 and body_map[5] == 1 and body_map[47] == 5 and body_map[48] == 6


def test_write_submission_csv(tmp_path: Path) -> None:
    path = tmp_path / "prediction.csv"
    actions = np.array([[3, 0, 1, 2, 4], [51, 50, 49, 48, 0]])
    bodies = np.array([[0, 1, 2, 3, 4], [6, 0, 1, 2, 3]])
    write_submission(path, ["test0000.mp4", "test0001.mp4"], actions, bodies)
    rows = list(csv.reader(path.open()))
    assert rows[0] == SUBMISSION_HEADER
    assert rows[0][:2] == ["vid", "action_pred_1"] and rows[0][-1] == "body_pred_5"
    assert rows[1] == ["test0000.mp4", "3", "0", "1", "2", "4", "0", "1", "2", "3", "4"]
    assert len(rows) == 3
    with pytest.raises(SsmarError, match="outside 0..6"):
        write_submission(path, ["a", "b"], actions, actions)
    with pytest.raises(SsmarError, match=r"shape \(2, 5\)"):
        write_submission(path, ["a", "b"], actions[:, :3], bodies)


def test_load_ma52_pose_pickle_adds_body_levels(tmp_path: Path, shared_data: Path) -> None:
    clip = {"frame_dir": "0003_01_0001", "label": 9, "total_frames": 4,
            "keypoint": np.zeros((1, 4, 28, 2), np.float32), "keypoint_score": np.ones((1, 4, 28), np.float32)}
    path = tmp_path / "ma52_train.pkl"
    with path.open("wb") as handle:  # a plain MMAction2 pickle as published, no ssmar keys
        pickle.dump({"split": {"train": ["0003_01_0001"]}, "annotations": [clip]}, handle)
    data = load_ma52_pose_pickle(path, shared_data / "ma52_demo" / "label_name.txt")
    assert len(data["class_names"]) == 52 and len(data["body_map"]) == 52 and data["body_map"][9] == 1
    validate_skeleton_data(data)
    assert layout_for_data(data).name == "ma52_openpose_28"  # the 28-keypoint release, from its joint count


# --- decoding -----------------------------------------------------------------------


def test_video_reader_backends_agree(astronaut_video: Path) -> None:
    shapes = {}
    for backend in ("pyav", "opencv"):
        with VideoReader(astronaut_video, max_side=224, backend=backend) as reader:
            frames = list(reader)
            assert (reader.info.width, reader.info.height, reader.info.fps) == (448, 448, 30.0)
        shapes[backend] = [frame.shape for frame in frames]
    assert shapes["pyav"] == shapes["opencv"] == [(224, 224, 3)] * 10
    with VideoReader(astronaut_video, stride=3, max_frames=3) as reader:
        assert len(list(reader)) == 3 and reader.decoded_frames == 7


# --- extraction ---------------------------------------------------------------------


def test_extract_real_ma52_clips(shared_data: Path, tmp_path: Path) -> None:
    demo = shared_data / "ma52_demo"
    labels = dict(read_list_file(demo / "demo_list.txt"))
    list_file = tmp_path / "two_clips.txt"
    list_file.write_text("".join(f"{clip} {labels[clip]}\n" for clip in DEMO_CLIPS))
    out = tmp_path / "poses.pkl"
    code = main(["extract-pose", "--videos", str(demo), "--list", str(list_file), "--label-names",
                 str(demo / "label_name.txt"), "-o", str(out), "--workers", "2", "--max-frames", "15"])
    assert code == 0
    data = load_skeleton_pickle(out)
    assert data["layout"] == "mediapipe_pose_33" and data["split"] == {"two_clips": [c[:-4] for c in DEMO_CLIPS]}
    assert len(data["class_names"]) == 52 and data["body_map"][labels[DEMO_CLIPS[0]]] == 1  # nodding: head
    for ann, clip in zip(data["annotations"], DEMO_CLIPS):
        assert ann["label"] == labels[clip] and ann["img_shape"] == (1296, 1080) and ann["fps"] == 30.0
        assert ann["keypoint"].shape == (1, 15, 33, 3) and ann["keypoint_score"].shape == (1, 15, 33)
        xy = ann["keypoint"][0, :, :, :2]
        assert 0.2 < xy[:, 0].mean() < 0.8 and 0.0 < xy[:, 0, 1].mean() < 0.5  # centred person, nose up
    stats = json.loads(out.with_suffix(".stats.json").read_text())
    assert [clip["detection_rate"] for clip in stats["per_clip"]] == [1.0, 1.0]
    assert stats["frames_extracted"] == 30 and len(stats["per_worker"]) >= 1
    assert 0 < stats["decode_share"] < 1 and stats["decode_share"] + stats["pose_share"] == pytest.approx(1, abs=1e-3)
    assert json.loads(out.with_suffix(".failures.json").read_text()) == []


def test_person_detected_in_photograph_video(astronaut_pose: dict) -> None:
    score = astronaut_pose["keypoint_score"][0]
    assert astronaut_pose["keypoint"].shape == (1, 10, 33, 3)
    assert (score.max(axis=1) > 0).sum() >= 8  # a person in most frames
    assert score[:, :13].mean() > 0.8  # face and shoulders clearly visible
    xy = astronaut_pose["keypoint"][0, :, :13, :2]  # normalised image coordinates, inside the frame
    assert ((xy >= 0) & (xy <= 1)).all()


def test_mediapipe_native_logs_are_silent_unless_verbose(astronaut_video: Path,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    """MediaPipe writes its log lines to descriptor 2 from its own threads; by default none reach it,
    with --verbose (``show_native_logs``) they do, and Python's own stderr is never swallowed."""
    import sys

    from ssmar.runtime.native_logs import show_native_logs

    extract_clip_pose(astronaut_video)
    print("ssmar line", file=sys.stderr)
    quiet = capfd.readouterr().err
    assert quiet.strip() == "ssmar line", quiet
    show_native_logs(True)
    try:
        extract_clip_pose(astronaut_video)
    finally:
        show_native_logs(False)
    assert "inference_feedback_manager" in capfd.readouterr().err


def test_single_clip_errors_name_the_file(tmp_path: Path, astronaut_pose: dict) -> None:
    from ssmar.pose.render import select_clip

    with pytest.raises(SsmarError, match=r"nothere.mp4: file not found"):
        extract_clip_pose(tmp_path / "nothere.mp4")
    data = {"annotations": [astronaut_pose]}
    assert select_clip(data, None, default="other") is astronaut_pose  # the only clip
    with pytest.raises(SsmarError, match="no clip 'wrong'.*pass --clip-name"):
        select_clip(data, "wrong", default="astronaut")


def test_bad_videos_are_reported_and_the_rest_processed(astronaut_video: Path, shared_data: Path,
                                                        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    os.symlink(astronaut_video, videos / "good.mp4")
    (videos / "empty.mp4").write_bytes(b"")
    real = (shared_data / "ma52_demo" / DEMO_CLIPS[0]).read_bytes()
    (videos / "cut.mp4").write_bytes(real[:200_000])  # index at the end: cannot even be opened
    full = _write_faststart_mp4(tmp_path / "faststart.mp4", skimage_data.astronaut())
    (videos / "cut_faststart.mp4").write_bytes(full[: len(full) // 2])  # opens, ends early
    (videos / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, np.uint8).tobytes())
    _write_video(videos / "coffee.mp4", skimage_data.coffee(), size=360)
    names = ["good", "missing", "empty", "cut", "cut_faststart", "noise", "coffee"]
    list_file = tmp_path / "bad.txt"
    list_file.write_text("".join(f"{name}.mp4 0\n" for name in names))
    out = tmp_path / "poses.pkl"

    code = main(["extract-pose", "--videos", str(videos), "--list", str(list_file), "-o", str(out),
                 "--workers", "2"])

    assert code == 3
    failures = {Path(f["file"]).stem: f["reason"] for f in json.loads(out.with_suffix(".failures.json").read_text())}
    assert set(failures) == set(names) - {"good"}
    assert failures["missing"] == "file not found"
    assert failures["empty"] == "empty file (0 bytes)"
    assert "cannot open as a video" in failures["cut"] and "cannot open as a video" in failures["noise"]
    assert failures["cut_faststart"].startswith("truncated: decoded") and "of 30 frames" in failures["cut_faststart"]
    assert failures["coffee"] == "no person detected in any of 10 frames"
    printed = capsys.readouterr().err
    assert all(f"FAILED {videos / name}.mp4: " in printed for name in failures)
    data = load_skeleton_pickle(out)
    assert [ann["frame_dir"] for ann in data["annotations"]] == ["good"]

    only_missing = tmp_path / "missing.txt"
    only_missing.write_text("missing.mp4 0\n")
    assert main(["extract-pose", "--videos", str(videos), "--list", str(only_missing),
                 "-o", str(tmp_path / "none.pkl")]) == 2
    assert not (tmp_path / "none.pkl").exists()


def test_resume_extracts_only_what_is_missing(astronaut_video: Path, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b"):
        os.symlink(astronaut_video, videos / f"{name}.mp4")
    jobs = collect_jobs(videos)
    options = ExtractOptions(max_frames=4)
    out = tmp_path / "poses.pkl"
    first = run_extraction(jobs, out, options=options, progress=False)
    assert first.extracted == ["a", "b"] and first.cached == []
    cache = out.with_suffix(".cache")
    kept = _cache_path(cache, "b")
    kept_mtime = kept.stat().st_mtime_ns
    _cache_path(cache, "a").unlink()  # as if interrupted before "a" finished

    second = run_extraction(jobs, out, options=options, progress=False)

    assert second.extracted == ["a"] and second.cached == ["b"] and second.exit_code == 0
    assert kept.stat().st_mtime_ns == kept_mtime
    assert [ann["frame_dir"] for ann in load_skeleton_pickle(out)["annotations"]] == ["a", "b"]
    assert second.stats["from_cache"] == 1 and second.stats["frames_extracted"] == 4
    # other options or a changed video invalidate the entry instead of reusing it
    stamp = _source_stamp(videos / "b.mp4")
    assert _read_cache(kept, stamp, options) is not None
    assert _read_cache(kept, stamp, ExtractOptions(max_frames=5)) is None
    assert _read_cache(kept, (stamp[0] + 1, stamp[1]), options) is None


def test_holistic_layout_is_a_valid_custom_layout(astronaut_video: Path) -> None:
    ann = extract_clip_pose(astronaut_video, options=ExtractOptions(holistic=True, max_frames=3))
    assert ann["keypoint"].shape == (1, 3, NUM_HOLISTIC_JOINTS, 3)
    data = skeleton_data([ann], ExtractOptions(holistic=True))
    assert data["layout"] == "custom"
    edges = np.asarray(data["edges"])
    assert edges.max() == NUM_HOLISTIC_JOINTS - 1
    assert len(edges) == len(MEDIAPIPE_POSE_33.edges) + 2 * (len(HAND_EDGES) + 1)
    validate_skeleton_data(data)
    layout = layout_for_data(data)  # scale from the shoulders, all 75 joints in one graph
    assert layout.num_joints == 75 and layout.scale_pair == (11, 12)
    assert np.isfinite(layout.hop_distance()).all()


def test_holistic_that_cannot_load_offline_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import mediapipe as mp

    def needs_download(**kwargs: object) -> None:
        raise RuntimeError("ValidatedGraphConfig Initialization failed.\nmodel download failed")

    monkeypatch.setattr(mp.solutions.holistic, "Holistic", needs_download)
    with pytest.raises(SsmarError, match=r"Holistic \(--holistic\) cannot start offline.*without --holistic") as exc:
        PoseEstimator(holistic=True)
    assert "\n" not in str(exc.value)


def test_bones_match_mediapipe() -> None:
    import mediapipe as mp

    assert set(HAND_EDGES) == {tuple(sorted(e)) for e in mp.solutions.hands.HAND_CONNECTIONS}
    pose_bones = {tuple(sorted(e)) for e in MEDIAPIPE_POSE_33.edges}
    assert {tuple(sorted(e)) for e in mp.solutions.pose.POSE_CONNECTIONS} <= pose_bones


# --- rendering ----------------------------------------------------------------------


def test_render_gif_mp4_and_sheet(astronaut_video: Path, astronaut_pose: dict, tmp_path: Path) -> None:
    from PIL import Image

    pose_file = tmp_path / "pose.pkl"
    save_skeleton_pickle({"layout": "mediapipe_pose_33", "split": {"all": ["astronaut"]},
                          "annotations": [astronaut_pose]}, pose_file)
    gif = tmp_path / "out.gif"
    assert main(["render", str(astronaut_video), "--pose", str(pose_file), "-o", str(gif)]) == 0
    with Image.open(gif) as image:
        assert image.n_frames == 10 and image.size == (448, 448)
    with Image.open(tmp_path / "out.sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.size[0] > 400

    mp4 = tmp_path / "out.mp4"
    assert main(["render", str(astronaut_video), "--pose", str(pose_file), "-o", str(mp4), "--max-side", "224"]) == 0
    with VideoReader(mp4) as reader:
        frames = list(reader)
    assert len(frames) == 10 and frames[0].shape == (224, 224, 3)
    # the skeleton is drawn: rendered frames differ from the plain video
    with VideoReader(astronaut_video, max_side=224) as reader:
        plain = next(iter(reader))
    assert np.abs(frames[0].astype(int) - plain.astype(int)).mean() > 1.0
