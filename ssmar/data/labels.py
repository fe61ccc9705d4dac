"""Human labels into a skeleton file: the ``ssmar label`` half of the annotation loop.

A labels CSV has a header with (at least) ``clip`` and ``label`` columns; ``label`` is a class
name of the file or a class id, and a blank label means "not labelled yet" (so the CSV that
``ssmar suggest`` writes can be filled in and passed back as is). Every row is checked before
anything is written: an unknown clip or class, a clip listed twice, or a label that contradicts
the file is one error line and the file stays as it was.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssmar.data.skeleton_format import UNKNOWN_LABEL, load_skeleton_pickle, save_skeleton_pickle
from ssmar.errors import SsmarError


@dataclass
class LabelChange:
    labelled: int  # clips that had no label
    relabelled: int  # clips whose label changed (with ``relabel``)
    unchanged: int  # rows that repeat the label the file already has
    still_unlabelled: int  # clips of the file still without a label


def read_labels_csv(path: str | os.PathLike, class_names: list[str] | None) -> dict[str, tuple[int, int]]:
    """``clip -> (class id, line number)`` of every row with a label."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = [name.strip() for name in reader.fieldnames or []]
            if "clip" not in fields or "label" not in fields:
                raise SsmarError(f"{path}: expected a header with columns 'clip' and 'label' (got "
                                 f"{', '.join(fields) or 'an empty file'}); write e.g. 'clip,label' on the first line")
            rows = [(line, {key.strip(): (value or "").strip() for key, value in row.items() if key})
                    for line, row in enumerate(reader, 2)]
    except FileNotFoundError:
        raise SsmarError(f"labels file not found: {path}; check the path") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SsmarError(f"cannot read labels file {path}: {exc}; it must be a UTF-8 CSV") from exc
    ids = {name: i for i, name in enumerate(class_names or [])}
    labels: dict[str, tuple[int, int]] = {}
    for line, row in rows:
        clip, text = row.get("clip", ""), row.get("label", "")
        if not text:
            continue
        if not clip:
            raise SsmarError(f"{path} line {line}: label '{text}' without a clip name; fill in the clip column")
        class_id = _class_id(text, ids, class_names, f"{path} line {line}")
        if clip in labels:
            first_id, first_line = labels[clip]
            if first_id != class_id:
                raise SsmarError(f"{path} line {line}: clip '{clip}' is labelled {_name(class_id, class_names)} here "
                                 f"but {_name(first_id, class_names)} on line {first_line}; keep the right one")
            raise SsmarError(f"{path} line {line}: clip '{clip}' is listed again (first on line {first_line}); "
                             "keep one line per clip")
        labels[clip] = (class_id, line)
    if not labels:
        raise SsmarError(f"{path} has no row with a label (the 'label' column is empty); fill in class names or ids")
    return labels


def apply_labels(data: dict[str, Any], labels: dict[str, tuple[int, int]], source: str, labels_source: str,
                 relabel: bool = False) -> LabelChange:
    """Set the labels in ``data`` (in place) once every row has been checked against it."""
    by_name = {ann["frame_dir"]: ann for ann in data["annotations"]}
    class_names = data.get("class_names")
    for clip, (class_id, line) in labels.items():
        if clip not in by_name:
            example = next(iter(by_name))
            raise SsmarError(f"{labels_source} line {line}: clip '{clip}' is not in {source}; use the clip names "
                             f"of the file (its frame_dir, e.g. '{example}')")
        old = int(by_name[clip]["label"])
        if old not in (UNKNOWN_LABEL, class_id) and not relabel:
            raise SsmarError(f"{labels_source} line {line}: clip '{clip}' already has label "
                             f"{_name(old, class_names)} in {source} and the CSV says {_name(class_id, class_names)}; "
                             "fix the CSV, or pass --relabel to replace labels")
    change = LabelChange(0, 0, 0, 0)
    for clip, (class_id, _) in labels.items():
        old = int(by_name[clip]["label"])
        if old == class_id:
            change.unchanged += 1
        elif old == UNKNOWN_LABEL:
            change.labelled += 1
        else:
            change.relabelled += 1
        by_name[clip]["label"] = class_id
    change.still_unlabelled = sum(int(ann["label"]) == UNKNOWN_LABEL for ann in data["annotations"])
    return change


def label_file(data_file: str | os.PathLike, labels_csv: str | os.PathLike, output: str | os.PathLike | None = None,
               relabel: bool = False) -> LabelChange:
    """Merge ``labels_csv`` into ``data_file`` and write the result (atomically) to ``output``
    (default: ``data_file`` itself)."""
    data = load_skeleton_pickle(data_file)
    labels = read_labels_csv(labels_csv, data.get("class_names"))
    change = apply_labels(data, labels, str(data_file), str(labels_csv), relabel=relabel)
    save_skeleton_pickle(data, output if output is not None else data_file)
    return change


def _class_id(text: str, ids: dict[str, int], class_names: list[str] | None, where: str) -> int:
    if text in ids:
        return ids[text]
    if text.lstrip("+").isdigit():
        class_id = int(text)
        if class_names is None or class_id < len(class_names):
            return class_id
    if class_names is None:
        raise SsmarError(f"{where}: label '{text}' is not a class id; this file has no class_names, so use "
                         "integer ids from 0")
    examples = ", ".join(f"'{name}'" for name in class_names[:3])
    raise SsmarError(f"{where}: unknown class '{text}'; use a class name of the file (e.g. {examples}) or an id "
                     f"0..{len(class_names) - 1}")


def _name(class_id: int, class_names: list[str] | None) -> str:
    return f"'{class_names[class_id]}'" if class_names and 0 <= class_id < len(class_names) else str(class_id)
