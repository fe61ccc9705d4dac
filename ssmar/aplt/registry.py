"""The one factory of APLT's pluggable pieces: labellers (``labellers.LABELLERS``), screens
(``screens.SCREENS``) and threshold policies (``thresholds.POLICIES``) are each a registry of
classes by name, built through :func:`construct`, so a bad name or option reads the same for all."""

from __future__ import annotations

import inspect
from typing import Any

from ssmar.errors import SsmarError


def construct(registry: dict[str, type], kind: str, name: str, params: dict[str, Any]) -> Any:
    """``registry[name](**params)``; an unknown name or option is a one-line SsmarError listing the valid ones."""
    if name not in registry:
        raise SsmarError(f"unknown {kind} {name!r}; choose one of {sorted(registry)}")
    cls = registry[name]
    try:
        return cls(**params)
    except TypeError as exc:
        valid = sorted({name for klass in cls.__mro__ if "__init__" in vars(klass)
                        for name, p in inspect.signature(klass.__init__).parameters.items()
                        if name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD})
        raise SsmarError(f"{kind} {cls.name!r}: bad options {sorted(params)} ({exc}); "
                         f"valid options are {valid}") from exc
