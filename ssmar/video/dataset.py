"""RGB clips over MMAction2 video lists, decoded lazily with TSN segment sampling.

A clip is ``segments`` frames, one from each equal segment of the video (TSN): a random
frame of each segment for training, the centre frame for evaluation. Frames are decoded
with :class:`ssmar.video.decode.VideoReader` (PyAV, else OpenCV), resized in the decoder
so the short side is ``short_side`` and centre-cropped square. Training clips keep the
whole square, for the weak augmentation's random resized crop to ``resolution``;
evaluation clips are the central ``resolution`` crop (the 256 -> 224 convention).
Values are float in [0, 1]; the backbone normalises, so augmentations work on pixels.

Clips are never all held as float tensors: :class:`VideoClips` decodes on indexing, so
the engine's ``clips[positions]`` reads only a batch. Decoding dominates; a frame cache
(in memory, or one ``.npz`` per video in a folder) pays it once per video.
"""

from __future__ import annotations

import hashlib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ssmar.data.ma52 import MA52_NUM_CLASSES, ma52_body_map, read_label_names, read_list_file
from ssmar.data.splits import load_or_make_split
from ssmar.data.types import ClipSet, PreparedData
from ssmar.errors import SsmarError
from ssmar.runtime.io import atomic_open
from ssmar.video.decode import VideoError, VideoReader


def default_short_side(resolution: int) -> int:
    """Short side frames are resized to before cropping ``resolution`` (256 for 224)."""
    return round(resolution * 8 / 7)


def decode_video(path: Path, short_side: int) -> np.ndarray:
    """Every frame of ``path`` as uint8 ``[F, S, S, 3]``: short side resized to S, centre square."""
    try:
        with VideoReader(path) as reader:
            width, height = reader.info.width, reader.info.height
            scale = short_side / min(width, height)
            # Resize inside the decoder (swscale) rather than after: 1080p frames never reach numpy.
            reader.output_size = (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
            frames = np.stack(list(reader))
    except VideoError as exc:
        raise VideoError(f"{path}: {exc}") from None
    top, left = (frames.shape[1] - short_side) // 2, (frames.shape[2] - short_side) // 2
    return np.ascontiguousarray(frames[:, top:top + short_side, left:left + short_side])


class FrameCache:
    """Decoded frames per video: ``mode`` None (decode every time), "memory", or a folder of .npz files.

    A folder entry is keyed by the video's path, size and mtime and the short side, so an
    edited video or another resolution decodes afresh; an unreadable entry is rewritten.
    """

    def __init__(self, short_side: int, mode: str | None = None):
        self.short_side = short_side
        self.memory: dict[Path, np.ndarray] | None = {} if mode == "memory" else None
        self.directory = Path(mode) if mode and mode != "memory" else None

    def frames(self, path: Path) -> np.ndarray:
        if self.memory is not None and path in self.memory:
            return self.memory[path]
        entry = self._entry(path) if self.directory is not None else None
        frames = _read_entry(entry) if entry is not None and entry.is_file() else None
        if frames is None:
            frames = decode_video(path, self.short_side)
            if entry is not None:
                with atomic_open(entry, "wb") as handle:
                    np.savez(handle, frames=frames)
        if self.memory is not None:
            self.memory[path] = frames
        return frames

    def _entry(self, path: Path) -> Path:
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.short_side}"
        return self.directory / f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def _read_entry(entry: Path) -> np.ndarray | None:
    try:
        with np.load(entry) as archive:
            return archive["frames"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # truncated or foreign file: decode again and overwrite it


def segment_indices(num_frames: int, segments: int, offsets: np.ndarray | None) -> np.ndarray:
    """TSN sampling: one frame per equal segment, at ``offsets`` in [0, 1) within it (None: the centre)."""
    position = (np.arange(segments) + (0.5 if offsets is None else offsets)) * (num_frames / segments)
    return np.minimum(position.astype(np.int64), num_frames - 1)


class VideoClips:
    """A lazy clip tensor: ``clips[positions]`` -> float ``[B, 3, T, size, size]`` in [0, 1].

    It offers what the engine uses of a clip tensor: ``len``, ``shape`` and indexing by an
    integer tensor, array, list or slice. With ``random_offsets`` (training) each indexing
    draws new frames from the global torch RNG, which the trainer seeds and checkpoints, so
    a resumed run draws the same frames. Videos of a batch decode in ``threads`` threads
    (PyAV releases the GIL).
    """

    def __init__(self, paths: Sequence[Path], segments: int, size: int, cache: FrameCache,
                 random_offsets: bool, threads: int = 4):
        if size > cache.short_side:
            raise SsmarError(f"clip size {size} exceeds the decoded short side {cache.short_side}; "
                             "raise data.short_side or lower data.resolution")
        self.paths = list(paths)
        self.segments, self.size, self.cache = segments, size, cache
        self.random_offsets, self.threads = random_offsets, max(1, threads)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.paths), 3, self.segments, self.size, self.size))

    def __getitem__(self, index: Any) -> torch.Tensor:
        if isinstance(index, slice):
            positions = list(range(len(self)))[index]
        else:
            positions = torch.as_tensor(index, dtype=torch.long).reshape(-1).tolist()
        if any(not -len(self) <= p < len(self) for p in positions):
            raise IndexError(f"clip index out of range for {len(self)} clips")
        offsets: list[np.ndarray | None] = [None] * len(positions)
        if self.random_offsets:  # drawn here, in order, so threads cannot reorder the RNG stream
            offsets = list(torch.rand(len(positions), self.segments).double().numpy())
        if self.threads > 1 and len(positions) > 1:
            with ThreadPoolExecutor(min(self.threads, len(positions))) as pool:
                clips = list(pool.map(self._clip, positions, offsets))
        else:
            clips = [self._clip(p, o) for p, o in zip(positions, offsets)]
        if not clips:
            return torch.empty((0, *self.shape[1:]))
        batch = torch.from_numpy(np.stack(clips))  # [B, T, H, W, 3] uint8 -> [B, 3, T, H, W] float
        return batch.permute(0, 4, 1, 2, 3).to(torch.float32, memory_format=torch.contiguous_format).div_(255)

    def _clip(self, position: int, offsets: np.ndarray | None) -> np.ndarray:
        frames = self.cache.frames(self.paths[position])
        picked = frames[segment_indices(len(frames), self.segments, offsets)]
        start = (frames.shape[1] - self.size) // 2
        return picked[:, start:start + self.size, start:start + self.size]


def load_video_list(list_file: str | Path, data_cfg: dict[str, Any], train: bool,
                    cache: FrameCache | None = None, num_classes: int | None = None) -> ClipSet:
    """The clips of an MMAction2 list as a :class:`ClipSet` with lazy :class:`VideoClips`.

    Clip paths are relative to ``data.video_root`` (default: the list file's folder); all
    must exist, so a typo fails here rather than mid-training. ``train`` picks random
    frames per segment and full squares, otherwise centre frames and centre crops.
    """
    list_file = Path(list_file)
    entries = read_list_file(list_file)
    root = Path(data_cfg["video_root"]) if data_cfg.get("video_root") else list_file.parent
    paths = [root / clip for clip, _ in entries]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SsmarError(f"{list_file}: {len(missing)} of {len(paths)} listed videos not found, e.g. {missing[0]}; "
                         "set data.video_root to the folder the list's paths are relative to")
    labels = torch.tensor([label for _, label in entries], dtype=torch.long)
    if num_classes is not None and int(labels.max()) >= num_classes:
        raise SsmarError(f"{list_file}: label {int(labels.max())} is outside the {num_classes} classes; "
                         "use the label names (data.label_names) the list was made with")
    resolution = int(data_cfg["resolution"])
    short_side = int(data_cfg.get("short_side") or default_short_side(resolution))
    cache = cache or FrameCache(short_side, data_cfg.get("frame_cache"))
    clips = VideoClips(paths, int(data_cfg["segments"]), short_side if train else resolution, cache,
                       random_offsets=train, threads=int(data_cfg.get("decode_threads") or 1))
    return ClipSet(clips, labels, [clip for clip, _ in entries])  # type: ignore[arg-type]


def prepare_video_data(cfg: dict[str, Any], work_dir: Path, seed: int, write_split: bool = True) -> PreparedData:
    """Train/test lists -> :class:`PreparedData` with the saved SSL split, as
    :func:`ssmar.data.dataset.prepare_skeleton_data` for skeletons.

    ``write_split=False`` (DDP ranks but 0) neither reads nor writes WORK_DIR/split.json.
    """
    data_cfg = cfg["data"]
    for key in ("train_list", "test_list"):
        if not data_cfg.get(key):
            raise SsmarError(f"data.type=video needs data.{key}=FILE (an MMAction2 list of '<clip> <label>' lines)")
    if data_cfg["eval_on"] != "test" or float(data_cfg.get("val_fraction") or 0) > 0:
        raise SsmarError("video data evaluates on data.test_list; to tune on a validation set point data.test_list "
                         "at it (e.g. MA-52 val_list_videos.txt) and leave data.eval_on=test, data.val_fraction=0")
    if int(data_cfg["segments"]) < 1 or int(data_cfg["resolution"]) < 8:
        raise SsmarError(f"need data.segments >= 1 and data.resolution >= 8, got {data_cfg['segments']} "
                         f"and {data_cfg['resolution']}")
    class_names = read_label_names(data_cfg["label_names"]) if data_cfg.get("label_names") else None
    resolution = int(data_cfg["resolution"])
    cache = FrameCache(int(data_cfg.get("short_side") or default_short_side(resolution)), data_cfg.get("frame_cache"))
    num_classes = len(class_names) if class_names else None
    train = load_video_list(data_cfg["train_list"], data_cfg, train=True, cache=cache, num_classes=num_classes)
    evaluation = load_video_list(data_cfg["test_list"], data_cfg, train=False, cache=cache, num_classes=num_classes)
    if class_names is None:
        count = int(max(train.labels.max(), evaluation.labels.max())) + 1
        class_names = [f"class_{i}" for i in range(count)]
    absent = sorted(set(range(len(class_names))) - set(train.labels.tolist()))
    if absent and not data_cfg.get("allow_missing_classes"):
        raise SsmarError(f"{data_cfg['train_list']}: {len(absent)} class(es), e.g. {absent[:5]}, have no training "
                         "clip; fix the list or data.label_names, or set data.allow_missing_classes=true "
                         "for a subset such as the MA-52 demo")
    params = {"data": Path(data_cfg["train_list"]).name, "labelled_ratio": data_cfg["labelled_ratio"],
              "labels_per_class": data_cfg["labels_per_class"], "seed": seed}
    # num_classes=0: class coverage was checked above, where absent classes may be allowed.
    labelled, unlabelled = load_or_make_split(work_dir / "split.json" if write_split else None, train.names,
                                              train.labels.numpy(), params, num_classes=0)
    body_map, body_names = ma52_body_map() if len(class_names) == MA52_NUM_CLASSES else (None, None)
    return PreparedData(train=train, labelled=torch.from_numpy(labelled), unlabelled=torch.from_numpy(unlabelled),
                        evaluation=evaluation, class_names=class_names, layout=None, body_map=body_map,
                        body_names=body_names,
                        info={"source": str(data_cfg["train_list"]), "type": "video", "train_clips": len(train),
                              "eval_clips": len(evaluation), "labelled": int(len(labelled)),
                              "unlabelled": int(len(unlabelled)), "absent_classes": len(absent)})
