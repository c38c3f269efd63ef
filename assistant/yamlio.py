"""YAML reading for the corpus and configuration: PyYAML's safe loader, in C when libyaml is there.

The corpus is some megabytes of YAML read at every start; the C loader reads it several times faster
and builds the same objects (same safe schema, same errors as `yaml.YAMLError`).
"""

from __future__ import annotations

from typing import Any

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=SafeLoader)  # noqa: S506 - a safe loader
