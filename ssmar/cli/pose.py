"""``ssmar extract-pose`` (videos → skeleton pickle) and ``ssmar render`` (skeleton overlay).

Pose modules are imported inside the handlers so that other commands never pay for
(or require) MediaPipe, PyAV or OpenCV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``extract-pose`` and ``render`` commands."""
    extract = subparsers.add_parser(
        "extract-pose", help="extract MediaPipe skeletons from videos into a skeleton pickle",
        description="Decode videos, run MediaPipe Pose (or Holistic) and write the canonical skeleton pickle. "
                    "Resumable: rerun the same command after an interruption. Next to OUT.pkl it writes "
                    "OUT.cache/ (per-video cache), OUT.failures.json (bad videos and why) and OUT.stats.json "
                    "(timings). Exit status: 0 all videos done, 3 some failed, 2 none succeeded.")
    extract.add_argument("--videos", required=True, metavar="DIR", help="folder holding the videos")
    extract.add_argument("--list", dest="list_file", metavar="LIST.txt",
                         help="MMAction2 list '<clip> <label>' (paths relative to DIR; a bare '<clip>' or "
                              "label -1: not labelled yet); default: every video in DIR, none labelled")
    extract.add_argument("--label-names", metavar="FILE", help="class names, 'id<TAB>name' per line "
                                                               "(52 classes also add MA-52 body levels)")
    extract.add_argument("-o", "--output", required=True, metavar="OUT.pkl", help="skeleton pickle to write")
    extract.add_argument("--workers", type=int, default=1, metavar="N", help="parallel worker processes (default 1)")
    extract.add_argument("--cache-dir", metavar="DIR", help="per-video cache (default OUT.cache/ next to OUT.pkl)")
    extract.add_argument("--holistic", action="store_true",
                         help="add both hands (75 joints, custom layout) via MediaPipe Holistic")
    extract.add_argument("--max-frames", type=int, metavar="N", help="keep at most N frames per video")
    extract.add_argument("--stride", type=int, default=1, metavar="K", help="keep every K-th frame (default 1)")
    extract.add_argument("--max-side", type=int, default=0, metavar="PX",
                         help="downscale frames whose long side exceeds PX before MediaPipe, e.g. 1280 for 4K "
                              "input (default 0 = as decoded)")
    add_verbose_option(extract)
    extract.set_defaults(func=_run_extract)

    render = subparsers.add_parser(
        "render", help="draw a skeleton over its video (MP4 or GIF) plus a PNG contact sheet",
        description="Draw the skeleton of VIDEO over its frames. Uses --pose if given, else extracts the pose "
                    "now. Writes OUT (.mp4 or .gif) and OUT-stem.sheet.png.")
    render.add_argument("video", metavar="VIDEO", help="the video file")
    render.add_argument("-o", "--output", metavar="OUT", help="animation to write (default <VIDEO stem>.pose.mp4)")
    render.add_argument("--pose", metavar="POSE.pkl", help="skeleton pickle holding this clip")
    render.add_argument("--clip-name", metavar="NAME", help="frame_dir of the clip in --pose (default VIDEO stem)")
    render.add_argument("--holistic", action="store_true", help="when extracting now: include hands")
    render.add_argument("--max-frames", type=int, metavar="N", help="when extracting now: at most N frames")
    render.add_argument("--max-side", type=int, default=540, metavar="PX",
                        help="long side of the rendered frames (default 540; 0 = full size)")
    add_verbose_option(render)
    render.set_defaults(func=_run_render)


def add_verbose_option(parser: argparse.ArgumentParser) -> None:
    """``--verbose``: show MediaPipe's native log lines, silenced by default (``ssmar.cli.main`` reads it)."""
    parser.add_argument("--verbose", action="store_true",
                        help="show MediaPipe's native log lines (silenced by default; workers write them to "
                             "their cache's worker.log either way)")


def _run_extract(args: argparse.Namespace) -> int:
    from ssmar.data.ma52 import read_label_names
    from ssmar.errors import SsmarError
    from ssmar.pose.extract import ExtractOptions, collect_jobs, run_extraction

    options = ExtractOptions(holistic=args.holistic, max_frames=args.max_frames, stride=args.stride,
                             max_side=args.max_side or None)
    jobs = collect_jobs(args.videos, args.list_file)
    class_names = read_label_names(args.label_names) if args.label_names else None
    split_name = Path(args.list_file).stem if args.list_file else "all"
    report = run_extraction(jobs, args.output, options=options, workers=args.workers, cache_dir=args.cache_dir,
                            class_names=class_names, split_name=split_name)
    for failure in report.failures:
        print(f"FAILED {failure['file']}: {failure['reason']}", file=sys.stderr)
    stats = report.stats
    print(f"{stats['succeeded']}/{stats['videos']} videos ok ({stats['extracted']} extracted, "
          f"{stats['from_cache']} from cache, {stats['failed']} failed); "
          f"{stats['frames_extracted']} frames at {stats['frames_per_second'] or 0:.1f} frames/s; "
          f"stats: {report.stats_path}; failures: {report.failures_path}")
    if report.output is None:
        raise SsmarError(f"no video could be processed ({stats['failed']} failed; reasons above and in "
                         f"{report.failures_path}); no pickle written", exit_code=2)
    print(f"wrote {report.output}")
    return report.exit_code


def _run_render(args: argparse.Namespace) -> int:
    from ssmar.pose.extract import ExtractOptions
    from ssmar.pose.render import render_video

    output = Path(args.output) if args.output else Path(f"{Path(args.video).stem}.pose.mp4")
    options = ExtractOptions(holistic=args.holistic, max_frames=args.max_frames)
    animation, sheet = render_video(args.video, output, pose_file=args.pose, clip_name=args.clip_name,
                                    options=options, max_side=args.max_side or None)
    print(f"wrote {animation} and {sheet}")
    return 0
