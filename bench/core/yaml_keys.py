"""A YAML loader for our own files that refuses a key given twice in one mapping (plain PyYAML
keeps the last one silently). Used by datasets.yaml (bench.catalog) and recipes (bench.train)."""

from __future__ import annotations

from typing import Any

import yaml

from bench.core.yaml_safe import SAFE_LOADER


class DuplicateKeyError(yaml.YAMLError):
    """A mapping states `key` twice: on `line` and first on `first_line` (1-based)."""

    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(f"key {key!r} on line {line} repeats the key on line {first_line}")
        self.key, self.line, self.first_line = key, line, first_line


class UniqueKeyLoader(SAFE_LOADER):
    """SafeLoader that refuses a key given twice in one mapping."""


def _construct_unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep=False):
    first_lines: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            repeated = key in first_lines
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        line = key_node.start_mark.line + 1
        if repeated:
            raise DuplicateKeyError(key, line, first_lines[key])
        first_lines[key] = line
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)
