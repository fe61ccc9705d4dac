"""``ssmar predict``: top-5 micro-actions of new video clips (pose extracted on the fly)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


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
    parser.set_defaults(func=cmd_predict)


def predict_clips(recognizer: Any, annotations: list[dict], top: int) -> list[dict[str, Any]]:
    """Top-``top`` classes with probabilities for each annotation."""
    clips, _, names = recognizer.encode(annotations)
    probabilities = recognizer.probabilities(clips)
    class_names = recognizer.meta["class_names"]
    results = []
    for name, probs in zip(names, probabilities):
        order = np.argsort(-probs)[:top]
        results.append({"clip": name, "top": [{"class_id": int(i), "class": class_names[i],
                                               "probability": float(probs[i])} for i in order]})
    return results


def cmd_predict(args: argparse.Namespace) -> int:
    from ssmar.engine.inference import load_recognizer
    from ssmar.errors import SsmarError

    recognizer = load_recognizer(args.checkpoint, args.device)
    if args.pose:
        from ssmar.data.skeleton_format import load_skeleton_pickle

        by_name = {ann["frame_dir"]: ann for ann in load_skeleton_pickle(args.pose)["annotations"]}
        missing = [v for v in args.videos if Path(v).stem not in by_name]
        if missing:
            raise SsmarError(f"{args.pose} has no pose for {missing[0]} (clips are matched by file stem); "
                             "drop --pose to extract it now")
        annotations = [by_name[Path(v).stem] for v in args.videos]
    else:
        from ssmar.pose import extract_clip_pose

        annotations = [extract_clip_pose(video) for video in args.videos]
    results = predict_clips(recognizer, annotations, args.top)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for video, result in zip(args.videos, results):
            print(video)
            for rank, entry in enumerate(result["top"], 1):
                print(f"  {rank}. {entry['class']:<40} {entry['probability']:6.1%}")
    return 0
