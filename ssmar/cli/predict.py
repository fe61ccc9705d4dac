"""``ssmar predict``: top-5 micro-actions of new video clips (pose extracted on the fly)."""

from __future__ import annotations

import argparse
import json

from ssmar.cli.pose import add_verbose_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="recognise micro-actions in video clips with a trained checkpoint",
                                   description="Extract each clip's pose with MediaPipe, then print the top-5 "
                                               "micro-actions with probabilities. The checkpoint must come from "
                                               "training on MediaPipe-layout skeletons (synthetic or extracted).")
    parser.add_argument("videos", nargs="+", metavar="VIDEO")
    parser.add_argument("--checkpoint", required=True, help="latest.pt / best.pt from ssmar train")
    parser.add_argument("--pose", help="use poses from this skeleton pickle (clips matched by video stem) "
                                       "instead of extracting them")
    parser.add_argument("--top", type=int, default=5, help="how many classes to list (default 5)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    add_verbose_option(parser)
    parser.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from ssmar.engine.inference import load_recognizer, video_poses

    recognizer = load_recognizer(args.checkpoint, args.device)
    results = recognizer.top_classes(video_poses(args.videos, args.pose), args.top)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for video, result in zip(args.videos, results):
            print(video)
            for rank, entry in enumerate(result["top"], 1):
                print(f"  {rank}. {entry['class']:<40} {entry['probability']:6.1%}")
    return 0
