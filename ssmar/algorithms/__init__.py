"""Semi-supervised algorithms, one short module each, behind one interface (see ``base``)."""

from __future__ import annotations

import importlib

from ssmar.errors import SsmarError

ALGORITHMS = {
    "supervised": "ssmar.algorithms.supervised:Supervised",
    "fullysupervised": "ssmar.algorithms.supervised:FullySupervised",
    "pseudolabel": "ssmar.algorithms.pseudolabel:PseudoLabel",
    "fixmatch": "ssmar.algorithms.fixmatch:FixMatch",
    "flexmatch": "ssmar.algorithms.flexmatch:FlexMatch",
    "freematch": "ssmar.algorithms.freematch:FreeMatch",
    "softmatch": "ssmar.algorithms.softmatch:SoftMatch",
    "aplt": "ssmar.algorithms.aplt:APLT",
}


def algorithm_class(name: str) -> type:
    if name not in ALGORITHMS:
        raise SsmarError(f"unknown algorithm '{name}'; choose one of: {', '.join(ALGORITHMS)}")
    module_name, _, class_name = ALGORITHMS[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
