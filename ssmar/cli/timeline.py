"""``ssmar timeline``: when each micro-action happens in a long recording, a skeleton sequence or a live camera."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ssmar.cli.pose import add_verbose_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "timeline", help="micro-action segments over time in a long video, skeleton sequence or live stream",
        description="Slide a window (by default as long as the checkpoint's training clips) over the poses of "
                    "SOURCE, score each window with the checkpoint and turn the scores into segments (start, end, "
                    "class, score). Writes OUT/segments.csv, OUT/segments.json and (not live) OUT/timeline.html. "
                    "SOURCE: a video file; a skeleton pickle (.pkl, one long clip or --clip) or array (.npy, "
                    "[T, V, C] or [M, T, V, C]); live: a camera index, a stream URL, or - with --stdin-frames "
                    "for raw rgb24 frames on stdin. Live segments are printed and appended to the CSV as they close.")
    parser.add_argument("source", metavar="SOURCE")
    parser.add_argument("--checkpoint", required=True, help="latest.pt / best.pt of a skeleton run")
    parser.add_argument("-o", "--output", metavar="DIR", help="output folder (default SOURCE-stem.timeline)")
    parser.add_argument("--rule", default="peaks", choices=("peaks", "runs"),
                        help="segment extraction: peaks (window non-maximum suppression; default) or runs (per-frame "
                             "votes, smoothed, thresholded, a still body counting as no micro-action)")
    parser.add_argument("--window", type=int, default=0, metavar="FRAMES",
                        help="frames per window (default: the median length of the training clips)")
    parser.add_argument("--scales", action="store_true",
                        help="score three window lengths at each position (the 20th/50th/80th percentiles of the "
                             "training clips' lengths) instead of one")
    parser.add_argument("--stride", type=int, default=0, metavar="FRAMES", help="frames between windows (default window/8)")
    parser.add_argument("--threshold", type=float, default=0.5, help="below this class probability: no micro-action")
    parser.add_argument("--smooth", type=int, default=0, metavar="FRAMES", help="runs: moving average span (default stride)")
    parser.add_argument("--min-frames", type=int, default=0, help="runs: drop shorter segments (default window/4)")
    parser.add_argument("--min-motion", default="auto",
                        help="runs: a body moving less (body sizes per frame, smoothed) is no micro-action; default auto: "
                             "the 25th percentile of the training clips' per-frame speed; 0: off")
    parser.add_argument("--min-detected", type=float, default=0.5,
                        help="windows with a person in fewer of their frames are no micro-action (default 0.5)")
    parser.add_argument("--batch", type=int, default=0, help="windows scored together (default 16; live 1)")
    parser.add_argument("--clip", help="the clip of a skeleton pickle that holds several")
    parser.add_argument("--stdin-frames", metavar="WxH", help="SOURCE - : raw rgb24 frames of this size on stdin")
    parser.add_argument("--fps", type=float, default=0.0, help="frame rate when the source does not say it")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="video files: run MediaPipe in N processes, each on every N-th chunk of frames (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_verbose_option(parser)
    parser.set_defaults(func=cmd_timeline)


def cmd_timeline(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ssmar.bench.timeline_page import write_timeline_page
    from ssmar.engine.inference import load_recognizer
    from ssmar.engine.timeline import (SEGMENT_COLUMNS, SegmentLog, TimelineSettings,
                                       open_timeline_input, run_timeline, segment_line, timeline_document,
                                       training_statistics)
    from ssmar.runtime.io import save_csv, save_json
    from ssmar.video.stream import STDIN, is_live_source, parse_frame_size

    recognizer = load_recognizer(args.checkpoint, args.device, skeleton_only="the timeline")
    lengths = (args.window,) if args.window and not args.scales else None
    min_motion = _number(args.min_motion, "--min-motion") if args.min_motion != "auto" else None
    if lengths is None or min_motion is None:
        trained_lengths, trained_motion = training_statistics(recognizer)
        lengths = lengths or (trained_lengths if args.scales else (trained_lengths[1],))
        min_motion = trained_motion if min_motion is None else min_motion
    middle = sorted(lengths)[len(lengths) // 2]
    live = is_live_source(args.source)
    settings = TimelineSettings(window=max(lengths), scales=tuple(lengths), stride=args.stride or max(1, middle // 8),
                                rule=args.rule,
                                threshold=args.threshold, smooth=args.smooth, min_frames=args.min_frames,
                                min_motion=min_motion, min_detected=args.min_detected,
                                batch=args.batch or (1 if live else 16))
    frame_size = parse_frame_size(args.stdin_frames) if args.stdin_frames else None
    name = "stdin" if args.source == STDIN else f"camera{args.source}" if args.source.isdigit() else Path(args.source).stem
    out = Path(args.output or f"{name}.timeline")
    class_names = list(recognizer.meta["class_names"])
    with open_timeline_input(args.source, clip=args.clip, frame_size=frame_size, fps=args.fps,
                             thumbnail_every=0 if live else settings.stride, workers=args.workers) as source:
        log = SegmentLog(out / "segments.csv", source.fps, class_names) if source.live else None

        def on_segment(segment) -> None:  # noqa: ANN001 - a Segment
            if log is not None:
                tqdm.write(segment_line(segment, source.fps, class_names), file=sys.stdout)
                log.append(segment)

        with tqdm(total=source.total, unit="frame", desc="timeline", file=sys.stderr, dynamic_ncols=True,
                  disable=args.no_progress, mininterval=0.5) as bar:
            try:
                result = run_timeline(source.frames, recognizer, settings, on_segment=on_segment,
                                      keep_curve=not source.live, on_frame=lambda _: bar.update(1))
            finally:
                if log is not None:
                    log.close()
    document = timeline_document(result, settings, source.fps, class_names, args.source, args.checkpoint)
    if not source.live:
        save_csv(document["segments"], SEGMENT_COLUMNS, out / "segments.csv")
        write_timeline_page(result, settings, source.fps, class_names, args.source, out / "timeline.html")
        for segment in result.segments:
            print(segment_line(segment, source.fps, class_names))
    save_json(document, out / "segments.json")
    summary = document["summary"]
    latency = summary["segment_latency"]
    print(f"{summary['segments']} segments in {summary['frames']} frames; {summary['frames_per_second']} frames/s "
          f"({source.kind}); latency frame in -> segment out: mean {latency['mean_ms']} ms, p95 {latency['p95_ms']} ms "
          f"(window scores: mean {summary['window_latency']['mean_ms']} ms); person found in "
          f"{100 * (summary['person_found'] or 0):.0f}% of frames; wrote {out}/")
    return 0


def _number(text: str, option: str) -> float:
    from ssmar.errors import SsmarError

    try:
        return float(text)
    except ValueError:
        raise SsmarError(f"{option} takes a number or 'auto', got '{text}'") from None
