"""Reproducible, class-stratified labelled/unlabelled partitions.

Every class keeps at least one label (MA-52 is long-tailed: its rarest class has six
training clips). Clips not labelled yet (label -1) are always unlabelled: the labelled part is
drawn from the clips whose labels are known, and ``labelled_ratio=1`` labels every one of them (the
user's own split; hiding known labels is the benchmark protocol). The partition is saved in the
work dir by clip name and reused, so a resumed or re-evaluated run sees exactly the same labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ssmar.errors import SsmarError
from ssmar.runtime.io import save_json


def stratified_pick(labels: np.ndarray, seed: int, ratio: float | None = None,
                    per_class: int | None = None, min_per_class: int = 1) -> np.ndarray:
    """Positions (into ``labels``) chosen per class, by ratio or a count; sorted."""
    if per_class is None and (ratio is None or not 0.0 < ratio <= 1.0):
        raise SsmarError(f"labelled ratio {ratio} is out of range; use 0 < data.labelled_ratio <= 1 "
                         "or set data.labels_per_class")
    if per_class is not None and per_class < 1:
        raise SsmarError(f"data.labels_per_class must be >= 1, got {per_class}")
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        count = per_class if per_class is not None else int(round(ratio * len(members)))
        count = min(len(members), max(min_per_class, count))
        chosen.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(chosen))


def make_ssl_split(labels: np.ndarray, seed: int, ratio: float | None = None,
                   per_class: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (labelled positions, unlabelled positions), disjoint and covering ``labels``; the
    labelled ones are picked among the known labels only (label >= 0)."""
    known = np.flatnonzero(labels >= 0)
    if (per_class is None and ratio == 1.0) or not len(known):
        labelled = known
    else:
        labelled = known[stratified_pick(labels[known], seed, ratio=ratio, per_class=per_class)]
    unlabelled = np.setdiff1d(np.arange(len(labels)), labelled)
    return labelled, unlabelled


def short_classes(labels: np.ndarray, labelled: np.ndarray, per_class: int) -> list[int]:
    """Classes with fewer known clips than ``per_class``: all of them went to the labelled part
    (``labelled`` positions into ``labels``), so the request was not met and none is left unlabelled."""
    counts = np.bincount(labels[labels >= 0])
    taken = np.bincount(labels[labelled], minlength=len(counts))
    return [int(c) for c in np.flatnonzero((counts > 0) & (counts < per_class) & (taken == counts))]


def load_or_make_split(path: Path | None, names: Sequence[str], labels: np.ndarray, params: dict[str, Any],
                       num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Reuse ``path`` when it was made with the same ``params``; otherwise create and save it.

    ``path=None`` makes the split in memory only (DDP ranks other than 0, which take rank 0's).
    """
    if path is not None and path.exists():
        saved = json.loads(path.read_text())
        old = saved.get("params") or {}
        if old != params:
            changed = ", ".join(f"{key}={old.get(key)!r} (this run: {params.get(key)!r})"
                                for key in sorted(old.keys() | params.keys()) if old.get(key) != params.get(key))
            raise SsmarError(f"{path} was made with {changed}; use a new --work-dir (or delete the split file "
                             "to re-split this one)")
        index_of = {name: i for i, name in enumerate(names)}
        try:
            labelled = np.array(sorted(index_of[n] for n in saved["labelled"]), dtype=np.int64)
            unlabelled = np.array(sorted(index_of[n] for n in saved["unlabelled"]), dtype=np.int64)
        except KeyError as exc:
            raise SsmarError(f"{path} names clip {exc} that is not in the training data; "
                             "the data file changed: use a new --work-dir") from exc
        return labelled, unlabelled
    labelled, unlabelled = make_ssl_split(labels, params["seed"], ratio=params.get("labelled_ratio"),
                                          per_class=params.get("labels_per_class"))
    missing = sorted(set(range(num_classes)) - set(labels[labelled].tolist()))
    unknown = int((labels < 0).sum())
    if missing and unknown:
        raise SsmarError(f"{params.get('data', 'the data')}: class(es) {missing[:5]} have no labelled clip in split "
                         f"'{params.get('train_split', 'train')}' ({unknown} of its clips are not labelled yet); "
                         "label at least one clip of each class with `ssmar label` (`ssmar suggest` picks "
                         "candidates), or drop the class from class_names")
    if missing:
        raise SsmarError(f"{params.get('data', 'the data')}: class(es) {missing[:5]} have no clip in split "
                         f"'{params.get('train_split', 'train')}', so they cannot be labelled; check the file's "
                         "labels, split and class_names")
    if path is not None:
        save_json({"params": params,
                   "labelled": [names[i] for i in labelled],
                   "unlabelled": [names[i] for i in unlabelled],
                   "counts": {"labelled": int(len(labelled)), "unlabelled": int(len(unlabelled))}}, path)
    return labelled, unlabelled
