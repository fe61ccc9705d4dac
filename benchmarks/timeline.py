"""Timelines with ground truth: segment F1 / AP, frame accuracy, throughput, latency and memory.

``skeleton``: long sequences composed from a checkpoint's *test-split* clips (every clip drawn at
random, right or wrong for the model) with rests of varied length between them
(:func:`ssmar.engine.timeline.compose_sequence`; a rest holds the neighbouring clip's boundary pose
with that clip's own sensor noise). Each extraction rule runs on the same sequences; beside them the checkpoint's
clip-level top-1 on the same test split (what is lost by not knowing the boundaries). Throughput is
skeleton-only (windows preprocessed and scored, segments extracted), batch 16; latency (last frame
of a segment in -> segment out) is measured in a live pass (batch 1).

``video``: a long video composed from the MA-52 demo clips (looped) with still stretches (the
boundary frame repeated), through MediaPipe and the timeline; throughput includes decoding and pose
extraction. The demo clips' classes the checkpoint knows give the ground truth; the others count as
rest-with-motion (a segment there is a false positive).

``memory``: RSS sampled while a stream of ``--minutes`` of frames (skeleton: composed sequences
looped; video: the composed video looped, live mode, no curve kept) goes through the timeline.

    python benchmarks/timeline.py skeleton --checkpoint work_dirs/utd_full/latest.pt --sequences 10
    python benchmarks/timeline.py video --checkpoint work_dirs/synth_full/latest.pt --demo ../shared/data/ma52_demo
    python benchmarks/timeline.py memory --checkpoint work_dirs/utd_full/latest.pt --minutes 30
    python benchmarks/timeline.py memory --checkpoint work_dirs/synth_full/latest.pt --video work_dirs/tl_bench/demo.mp4 --minutes 5
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ssmar.data.skeleton_format import load_skeleton_pickle, split_members
from ssmar.engine.inference import load_recognizer
from ssmar.engine.segment_metrics import average_precision, frame_accuracy, segment_f1
from ssmar.engine.timeline import (Segment, TimelineSettings, compose_sequence, frame_labels,
                                   run_timeline, skeleton_frames, training_statistics)
from ssmar.runtime.io import save_json

IOUS = (0.3, 0.5)


def variants(lengths: tuple[int, ...], min_motion: float) -> dict[str, TimelineSettings]:
    """The rules compared, with the CLI's defaults (three scales, stride = middle length / 8, threshold 0.5),
    and each rule with one window length (the median training clip) beside them."""
    stride = max(1, lengths[1] // 8)
    multi = dict(window=max(lengths), scales=tuple(lengths), stride=stride)
    single = dict(window=lengths[1], stride=stride)
    return {"runs + still gate": TimelineSettings(**multi, rule="runs", min_motion=min_motion),
            "runs, no still gate": TimelineSettings(**multi, rule="runs", min_motion=0.0),
            "peaks": TimelineSettings(**multi, rule="peaks"),
            "runs + still gate, 1 scale": TimelineSettings(**single, rule="runs", min_motion=min_motion),
            "peaks, 1 scale": TimelineSettings(**single, rule="peaks")}


def score(segments: list[Segment], truth: list[tuple[int, int, int]], frames: int) -> dict[str, float]:
    found = [(s.start, s.end, s.class_id, s.score) for s in segments]
    true_frames = frame_labels([Segment(a, b, c, 1.0, 0) for a, b, c in truth], frames)
    out = {"frame_acc": frame_accuracy(frame_labels(segments, frames), true_frames), "predicted": len(found)}
    for iou in IOUS:
        out[f"f1@{iou}"] = segment_f1(found, truth, iou)["f1"]
        out[f"ap@{iou}"] = average_precision(found, truth, iou)
    return out


def clip_top1(recognizer: Any) -> float:
    encoded = recognizer.encode_source()
    return float((recognizer.scores(encoded.clips).argmax(1) == encoded.labels).mean() * 100)


def skeleton_sequences(recognizer: Any, count: int, clips_per_sequence: int, idle: tuple[int, int],
                       seed: int) -> list[tuple[dict, list[tuple[int, int, int]]]]:
    data_file = recognizer.config["data"]["file"]
    data = load_skeleton_pickle(data_file)
    split = recognizer.config["data"]["test_split"]
    test = [data["annotations"][i] for i in split_members(data, split, data_file)]
    rng = np.random.default_rng(seed)
    by_subject: dict[Any, list[dict]] = {}
    for clip in test:  # one person per sequence, as in a recording
        by_subject.setdefault(clip.get("subject"), []).append(clip)
    subjects = sorted(by_subject, key=str)
    out = []
    for index in range(count):
        mine = by_subject[subjects[index % len(subjects)]]
        clips = [mine[i] for i in rng.choice(len(mine), min(clips_per_sequence, len(mine)), replace=False)]
        out.append(compose_sequence(clips, list(rng.integers(idle[0], idle[1] + 1, len(clips) + 1)), rng))
    return out


def run_skeleton(args: argparse.Namespace) -> dict[str, Any]:
    recognizer = load_recognizer(args.checkpoint)
    lengths, min_motion = training_statistics(recognizer)
    sequences = skeleton_sequences(recognizer, args.sequences, args.clips, (args.idle_min, args.idle_max), args.seed)
    frames_total = sum(seq["keypoint"].shape[1] for seq, _ in sequences)
    results: dict[str, Any] = {}
    for name, settings in variants(lengths, min_motion).items():
        per_sequence, wall = [], 0.0
        for sequence, truth in sequences:
            result = run_timeline(skeleton_frames(sequence), recognizer, settings)
            wall += result.wall_seconds
            per_sequence.append(score(result.segments, truth, result.frames))
        live_latency: list[float] = []
        for sequence, _ in sequences[:2]:
            live = run_timeline(skeleton_frames(sequence), recognizer,
                                TimelineSettings(**{**settings.__dict__, "batch": 1}), keep_curve=False)
            live_latency += live.segment_latency
        results[name] = {key: float(np.mean([s[key] for s in per_sequence])) for key in per_sequence[0]}
        results[name].update(frames_per_second=frames_total / wall,
                             live_latency_ms_mean=1000 * float(np.mean(live_latency)) if live_latency else None,
                             live_latency_ms_p95=1000 * float(np.percentile(live_latency, 95)) if live_latency else None)
        print(f"{name:<22} " + " ".join(f"{k}={v:.3f}" for k, v in results[name].items() if v is not None), flush=True)
    return {"mode": "skeleton", "checkpoint": args.checkpoint, "data": recognizer.config["data"]["file"],
            "clip_top1": clip_top1(recognizer), "lengths": lengths, "stride": max(1, lengths[1] // 8),
            "min_motion_auto": min_motion, "sequences": args.sequences, "clips_per_sequence": args.clips,
            "idle_frames": [args.idle_min, args.idle_max], "frames": frames_total,
            "true_segments": sum(len(t) for _, t in sequences), "rules": results}


# --- video ---------------------------------------------------------------------------------------


def compose_video(demo: Path, class_names: list[str], output: Path, loops: int, seed: int,
                  idle: tuple[int, int], max_side: int) -> list[tuple[int, int, int]]:
    """The demo clips (looped ``loops`` times, shuffled) with still stretches between them, written as one
    MP4; the truth holds the clips whose class the checkpoint knows (by name)."""
    import av

    from ssmar.video.decode import VideoReader

    clips = sorted(demo.glob("*.mp4"))
    rng = np.random.default_rng(seed)
    order = [clips[i] for _ in range(loops) for i in rng.permutation(len(clips))]
    truth, position = [], 0
    with av.open(str(output), "w") as container:
        stream = None
        for path in order:
            frames = list(VideoReader(path, max_side=max_side))
            if stream is None:
                stream = container.add_stream("libx264", rate=30, options={"preset": "veryfast", "crf": "23"})
                stream.height, stream.width = frames[0].shape[:2]
                stream.pix_fmt = "yuv420p"
            rest = int(rng.integers(idle[0], idle[1] + 1))
            for frame in [frames[0]] * rest + frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
            position += rest
            name = path.stem.split("__")[0].split("_", 1)[1].replace("_", " ")
            if name in class_names:
                truth.append((position, position + len(frames), class_names.index(name)))
            position += len(frames)
        container.mux(stream.encode())
    return truth


def run_video(args: argparse.Namespace) -> dict[str, Any]:
    from ssmar.engine.timeline import open_timeline_input

    recognizer = load_recognizer(args.checkpoint)
    lengths, min_motion = training_statistics(recognizer)
    class_names = list(recognizer.meta["class_names"])
    out = Path(args.work_dir)
    out.mkdir(parents=True, exist_ok=True)
    video = out / "demo.mp4"
    truth_file = out / "demo.truth.json"
    if video.is_file() and truth_file.is_file():  # the same composition (same seed and options) as last time
        truth = [tuple(t) for t in json.loads(truth_file.read_text())]
    else:
        truth = compose_video(Path(args.demo), class_names, video, args.loops, args.seed,
                              (args.idle_min, args.idle_max), args.max_side)
        save_json(truth, truth_file)
    results = {}
    every = variants(lengths, min_motion)
    for name in (every if args.all_rules else ("peaks, 1 scale", "runs + still gate, 1 scale")):
        settings = every[name]
        with open_timeline_input(str(video), thumbnail_every=settings.stride, workers=args.workers) as source:
            result = run_timeline(source.frames, recognizer, settings)
        results[name] = {**score(result.segments, truth, result.frames), **result.summary()}
        print(name, json.dumps(results[name]), flush=True)
    return {"mode": "video", "checkpoint": args.checkpoint, "video": str(video), "max_side": args.max_side,
            "workers": args.workers,
            "true_segments": len(truth), "truth": truth, "lengths": lengths, "rules": results}


# --- memory --------------------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_memory(args: argparse.Namespace) -> dict[str, Any]:
    recognizer = load_recognizer(args.checkpoint)
    lengths, min_motion = training_statistics(recognizer)
    settings = TimelineSettings(window=max(lengths), scales=lengths, stride=max(1, lengths[1] // 8), rule="runs",
                                min_motion=min_motion, batch=1)
    total = int(args.minutes * 60 * args.fps)
    samples: list[tuple[int, float, float]] = []
    started = time.perf_counter()

    def sample(count: int) -> None:
        if count % args.every == 0:
            samples.append((count, time.perf_counter() - started, rss_mb()))

    if args.video:
        from ssmar.pose.mediapipe_pose import PoseEstimator
        from ssmar.pose.stream import pose_frames
        from ssmar.video.decode import VideoReader

        def looped() -> Iterator[np.ndarray]:
            while True:  # each pass closes its reader: an unclosed PyAV container keeps its decoder's buffers
                with VideoReader(args.video, max_side=args.max_side) as reader:
                    yield from reader

        with PoseEstimator() as estimator:
            frames = itertools.islice(pose_frames(looped(), estimator), total)
            result = run_timeline(frames, recognizer, settings, keep_curve=False, on_frame=sample)
    else:
        sequences = skeleton_sequences(recognizer, 4, 15, (10, 120), args.seed)
        stream = itertools.islice(itertools.cycle(itertools.chain.from_iterable(
            list(skeleton_frames(seq)) for seq, _ in sequences)), total)
        result = run_timeline(stream, recognizer, settings, keep_curve=False, on_frame=sample)
    rss = np.array([s[2] for s in samples])
    tail = rss[len(rss) // 10:]  # after warm-up
    return {"mode": "memory", "checkpoint": args.checkpoint, "video": args.video, "frames": result.frames,
            "stream_minutes_at_fps": result.frames / args.fps / 60, "fps": args.fps,
            "wall_seconds": result.wall_seconds, "rss_mb_first": float(rss[0]), "rss_mb_after_warmup_min": float(tail.min()),
            "rss_mb_after_warmup_max": float(tail.max()), "rss_mb_last": float(rss[-1]), "segments": len(result.segments),
            "summary": result.summary(), "samples": samples}


def plot_memory(report: dict[str, Any], path: Path) -> None:
    from ssmar.runtime.io import pyplot, save_figure

    plt = pyplot()

    samples = np.array(report["samples"])
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(samples[:, 0] / report["fps"] / 60, samples[:, 2])
    ax.set_xlabel(f"stream time (minutes at {report['fps']:g} fps)")
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(0, samples[:, 2].max() * 1.15)
    ax.set_title(f"ssmar timeline memory, {'video + MediaPipe' if report['video'] else 'skeleton stream'}")
    ax.grid(alpha=0.3)
    save_figure(fig, path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("skeleton", "video", "memory"))
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--sequences", type=int, default=10)
    parser.add_argument("--clips", type=int, default=15, help="clips per composed sequence")
    parser.add_argument("--idle-min", type=int, default=10)
    parser.add_argument("--idle-max", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demo", default="../shared/data/ma52_demo")
    parser.add_argument("--loops", type=int, default=2)
    parser.add_argument("--max-side", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1, help="video: MediaPipe processes")
    parser.add_argument("--all-rules", action="store_true",
                        help="video: every rule (each runs MediaPipe again; default: the two single-scale rules)")
    parser.add_argument("--video", help="memory: loop this video through MediaPipe (default: skeleton stream)")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--every", type=int, default=300, help="memory: sample RSS every N frames")
    parser.add_argument("--work-dir", default="work_dirs/tl_bench")
    parser.add_argument("-o", "--output", required=True, help="results JSON")
    args = parser.parse_args()
    report = {"run": {"mode": args.mode, "argv": sys.argv, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), no GPU",
                      "threads": os.environ.get("OMP_NUM_THREADS")}}
    report.update({"skeleton": run_skeleton, "video": run_video, "memory": run_memory}[args.mode](args))
    save_json(report, args.output)
    if args.mode == "memory":
        plot_memory(report, Path(args.output).with_suffix(".png"))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
