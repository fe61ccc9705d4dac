"""Keep native libraries' log lines off the terminal.

MediaPipe's C++ graph (absl/glog, TensorFlow Lite) writes straight to file descriptor 2, so
Python's ``sys.stderr`` cannot catch it. :func:`quiet_native_stderr` points descriptor 2 at
``/dev/null`` for the span of one native call (graph creation, one frame) and back, so the
lines never reach the terminal while everything ssmar itself prints between calls (progress
bars, segments, errors) still does. :func:`show_native_logs` turns that off (``--verbose``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

_show = False


def show_native_logs(show: bool) -> None:
    """Let native log lines through (True, ``--verbose``) or silence them (False, the default)."""
    global _show
    _show = bool(show)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Descriptor 2 goes to ``/dev/null`` inside the block, unless :func:`show_native_logs` is on."""
    if _show:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
