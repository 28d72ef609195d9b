"""Reading YAML text: the safe loader, in C when libyaml is there (the catalogue, rules and
forecast files are read on every start; the pure-Python parser is ten times slower)."""

from __future__ import annotations

from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
