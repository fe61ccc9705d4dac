"""Every option has a type and a range or set: the schema covers the defaults key for key, the
defaults pass it, and values are checked (and YAML-1.1 number strings read as numbers)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ssmar.algorithms import ALGORITHMS, algorithm_class
from ssmar.config import DEFAULTS, SCHEMA, Spec, load_config
from ssmar.data.augment import STRONG_DEFAULTS, STRONG_SPECS, WEAK_DEFAULTS, WEAK_SPECS
from ssmar.errors import SsmarError
from ssmar.video.augment import (VIDEO_STRONG_DEFAULTS, VIDEO_STRONG_SPECS, VIDEO_WEAK_DEFAULTS,
                                 VIDEO_WEAK_SPECS)


def key_paths(tree: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, value in tree.items():
        if isinstance(value, dict) and not (isinstance(SCHEMA_AT.get(prefix + key), Spec)):
            paths |= key_paths(value, f"{prefix}{key}.")
        else:
            paths.add(prefix + key)
    return paths


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


SCHEMA_AT = flatten(SCHEMA)


def test_schema_covers_every_default() -> None:
    assert key_paths(DEFAULTS) == set(SCHEMA_AT)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_algorithm_param_has_a_spec_and_its_defaults_pass(name: str) -> None:
    cls = algorithm_class(name)
    assert set(cls.specs) == set(cls.defaults)
    assert cls.resolve_params({}) == cls.defaults


@pytest.mark.parametrize("defaults,specs", [(WEAK_DEFAULTS, WEAK_SPECS), (STRONG_DEFAULTS, STRONG_SPECS),
                                            (VIDEO_WEAK_DEFAULTS, VIDEO_WEAK_SPECS),
                                            (VIDEO_STRONG_DEFAULTS, VIDEO_STRONG_SPECS)])
def test_every_augmentation_option_has_a_spec(defaults: dict, specs: dict) -> None:
    assert set(specs) == set(defaults)
    assert all(specs[key].accepts(value) for key, value in defaults.items())


def test_number_strings_are_read_as_numbers_and_words_are_refused() -> None:
    assert load_config(None, ["train.lr=1e-3"])["train"]["lr"] == pytest.approx(0.001)
    with pytest.raises(SsmarError, match=r"^config: train.lr='fast' is not allowed; train.lr takes a number > 0$"):
        load_config(None, ["train.lr=fast"])


@pytest.mark.parametrize("override,allowed", [
    ("train.epochs=true", "an integer >= 1"),  # a bool is not an integer
    ("train.ema=1.5", "a number >= 0 and <= 1"),
    ("data.val_fraction=1", "a number >= 0 and < 1"),
    ("model.depth=19", "one of 18, 34, 50, 101"),
    ("data.labels_per_class=0", "an integer >= 1 (or null)"),
    ("train.lr=.inf", "a number > 0"),
])
def test_out_of_range_values_name_key_value_and_what_is_allowed(override: str, allowed: str) -> None:
    key = override.partition("=")[0]
    pattern = rf"^config: {re.escape(key)}=.* is not allowed; {re.escape(key)} takes {re.escape(allowed)}$"
    with pytest.raises(SsmarError, match=pattern):
        load_config(None, [override])
