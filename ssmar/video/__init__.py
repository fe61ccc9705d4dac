"""RGB video path: decoding (``decode``, also what pose extraction reads), clip datasets over
MMAction2 list files and clip-consistent augmentations.

The backbone lives in :mod:`ssmar.models.tsm`; ``docs/video.md`` describes the whole path.
"""
