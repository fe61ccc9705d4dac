"""Deterministic crash points: a testing aid for kill-and-resume, inert unless ``SSMAR_FAULT`` is set.

``SSMAR_FAULT=<point>:<count>`` makes the process SIGKILL itself (no cleanup, no
``finally``, like the OOM killer or a pulled plug) the ``count``-th time it reaches
``point``. The named points:

* ``step`` — after each optimiser step (so ``step:5`` dies mid-epoch when an epoch is shorter);
* ``offline`` — inside APLT's offline phase, after the feature bank, before clustering;
* ``checkpoint_write`` — inside every ``save_torch`` (latest.pt, best.pt), after the
  checkpoint has gone into the temporary file and before the rename, so the previous
  file must survive intact.

Counts are per process (each DDP rank counts its own). A resumed run without the
variable never stops. Reaching a point costs one comparison when the variable is unset (it is read at import).
"""

from __future__ import annotations

import os
import signal

from ssmar.errors import SsmarError

POINTS = ("step", "offline", "checkpoint_write")
_SPEC = os.environ.get("SSMAR_FAULT") or None
_hits = 0


def point(name: str) -> None:
    """Count a pass through crash point ``name``; SIGKILL this process on the configured pass."""
    global _hits
    if _SPEC is None:
        return
    target, _, count = _SPEC.partition(":")
    if target not in POINTS or not count.isdigit() or int(count) < 1:
        raise SsmarError(f"SSMAR_FAULT={_SPEC!r} is not <point>:<count> with point one of {', '.join(POINTS)} "
                         "and count >= 1; unset it outside kill-and-resume tests")
    if name != target:
        return
    _hits += 1
    if _hits == int(count):
        os.kill(os.getpid(), signal.SIGKILL)
