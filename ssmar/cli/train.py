"""``ssmar train``, ``ssmar eval`` and ``ssmar convert-checkpoint``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ssmar.config import load_config, set_key, validate_config
from ssmar.errors import SsmarError


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options every training-like command shares, named as in MMAction2/PYSKL."""
    parser.add_argument("--work-dir", help="output directory (default: work_dirs/<config name>)")
    parser.add_argument("--seed", type=int, help="random seed (data split, init, augmentation)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N")
    parser.add_argument("--resume", nargs="?", const="auto",
                        help="resume from a checkpoint; 'auto' (or no value) takes WORK_DIR/latest.pt if present")


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train a recognizer (supervised, SSL baselines or APLT)",
                                  description="Train from a YAML config; trailing key=value pairs override it, "
                                              "e.g. algorithm.name=fixmatch data.labelled_ratio=0.2")
    train.add_argument("--config", "-c", help="YAML config (see configs/)")
    add_run_options(train)
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    train.set_defaults(func=cmd_train)

    evaluate = subparsers.add_parser("eval", help="evaluate a checkpoint (or fuse several); write metrics, confusion "
                                                  "matrix, submission")
    which = evaluate.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="a latest.pt / best.pt written by ssmar train")
    which.add_argument("--fuse", nargs="+", metavar="CKPT",
                       help="late fusion of two or more checkpoints (e.g. pose and RGB, or one model per skeleton "
                            "stream): score each on its own data, match clips by name, average softmax probabilities")
    evaluate.add_argument("--data", help="skeleton pickle or video list (default: what the checkpoint was trained on)")
    evaluate.add_argument("--data-a", help="with --fuse: data of the first checkpoint (default: its own)")
    evaluate.add_argument("--data-b", help="with --fuse: data of the second checkpoint (default: its own)")
    evaluate.add_argument("--weights", help="with --fuse: one weight per checkpoint, e.g. 1,2 (default: equal)")
    evaluate.add_argument("--split", help="split to evaluate (default: the split the run was scored on: its test "
                          "split, or its validation carve-out for data.eval_on=val; video: train|test)")
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--out", help="directory for metrics.json and confusion.png "
                          "(default: eval_SPLIT/ beside the checkpoint)")
    evaluate.add_argument("--submission", help="also write MA-52 challenge predictions (CSV) to this file")
    evaluate.set_defaults(func=cmd_eval)

    convert = subparsers.add_parser(
        "convert-checkpoint", help="rewrite a trusted older checkpoint so that it loads without running code",
        description="Checkpoints are read with PyTorch's weights_only loader (tensors and plain containers). "
                    "A checkpoint holding other Python objects (e.g. written by an older ssmar) is refused; "
                    "if you trust where it came from, this rewrites it as plain state. Reading SOURCE runs "
                    "any code it holds: hence --trust.")
    convert.add_argument("source", metavar="SOURCE.pt")
    convert.add_argument("target", metavar="TARGET.pt")
    convert.add_argument("--trust", action="store_true", help="confirm that SOURCE comes from a trusted source")
    convert.set_defaults(func=cmd_convert_checkpoint)


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config(args.config, args.overrides)
    for option, key in (("seed", "seed"), ("device", "device"), ("work_dir", "work_dir")):
        value = getattr(args, option, None)
        if value is not None:
            set_key(cfg, key, value)
    if not cfg["work_dir"]:
        stem = Path(args.config).stem if args.config else cfg["algorithm"]["name"]
        cfg["work_dir"] = str(Path("work_dirs") / stem)
    validate_config(cfg)
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    from ssmar.engine.runs import run_training

    cfg = config_from_args(args)
    final = run_training(cfg, args.resume)
    if final and os.environ.get("RANK", "0") == "0":  # under torchrun: one summary line, rank 0's
        print(f"top1 {final['top1']:.2f}  top5 {final['top5']:.2f}  mean-class {final['mean_class_acc']:.2f}  "
              f"F1-macro {final['f1_macro']:.2f}  -> {cfg['work_dir']}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ssmar.engine.fusion import metric_summary
    from ssmar.engine.inference import evaluate_checkpoint

    if args.fuse:
        return cmd_fuse(args)
    if args.data_a or args.data_b:
        raise SsmarError("--data-a / --data-b go with --fuse; with --checkpoint use --data")
    metrics, out = evaluate_checkpoint(args.checkpoint, args.data, args.split, args.device, args.out, args.submission)
    print(json.dumps(metric_summary(metrics)))
    print(f"metrics and confusion matrix in {out}")
    return 0


def cmd_fuse(args: argparse.Namespace) -> int:
    """``ssmar eval --fuse A B ...``: metrics of each model and of their late fusion on the clips all scored."""
    from ssmar.engine.fusion import evaluate_fusion, metric_summary, parse_weights
    from ssmar.engine.metrics import save_confusion
    from ssmar.runtime.io import save_json

    if args.data or args.submission:
        raise SsmarError("with --fuse use --data-a / --data-b instead of --data; --submission needs --checkpoint")
    if len(args.fuse) < 2:
        raise SsmarError(f"--fuse needs two or more checkpoints, got {len(args.fuse)}; use --checkpoint for one")
    weights = parse_weights(args.weights or ",".join(["1"] * len(args.fuse)), len(args.fuse))
    data = [args.data_a, args.data_b] + [None] * (len(args.fuse) - 2)
    result, fused = evaluate_fusion(args.fuse, data, weights, args.split, args.device)
    out = Path(args.out) if args.out else Path(args.fuse[0]).parent / "fusion"
    confusion = result.pop("confusion")
    save_json({"checkpoints": [str(c) for c in args.fuse], **result}, out / "metrics.json")
    save_confusion(confusion, fused.class_names, out,
                   title=f"late fusion ({','.join(f'{w:g}' for w in weights)}): top-1 {result['fused']['top1']:.1f}%")
    for model in result["models"]:
        print(json.dumps(model))
    print(json.dumps({"fused": metric_summary(result["fused"]), "matched": result["matched"],
                      "unmatched": result["unmatched"]}))
    print(f"metrics and confusion matrix in {out}")
    return 0


def cmd_convert_checkpoint(args: argparse.Namespace) -> int:
    from ssmar.engine.checkpoint import convert_trusted_checkpoint

    if not args.trust:
        raise SsmarError(f"convert-checkpoint reads {args.source} with full unpickling, which runs any code it "
                         "holds; add --trust if you know where it came from")
    convert_trusted_checkpoint(args.source, args.target)
    print(f"wrote {args.target}: loads with weights_only")
    return 0
