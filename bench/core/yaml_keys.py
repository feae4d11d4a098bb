"""A YAML loader for our own files that refuses a key given twice in one mapping (plain PyYAML
keeps the last one silently), and `read_yaml_file`: the one way datasets.yaml (bench.catalog) and
recipes (bench.train.recipe) are read, with one set of error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.core.errors import BenchError
from bench.core.yaml_safe import SAFE_LOADER, AliasError, load_yaml


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


def read_yaml_file(path: Path, error: type[BenchError], what: str, missing_hint: str) -> Any:
    """Parse one of our YAML files (the registry, a recipe) with every rule: UTF-8 text, no key
    twice in a mapping, capped alias expansion, safe types only. Every way of failing is an
    `error` naming `path` (`what` says which kind of file; `missing_hint` what to do if absent)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} not found ({missing_hint})") from None
    except UnicodeDecodeError as problem:
        raise error(
            f"{path}: not UTF-8 text (byte {problem.start}: {problem.reason}); save it as UTF-8"
        ) from None
    except OSError as problem:  # a directory, no permission ...
        raise error(f"{path}: cannot read {what} ({problem.strerror or problem})") from None
    try:
        return load_yaml(text, UniqueKeyLoader)
    except AliasError as problem:
        raise error(f"{path}: {problem}") from None
    except DuplicateKeyError as problem:
        raise error(
            f"{path}: line {problem.line}: key {problem.key!r} appears twice in the same mapping "
            f"(first on line {problem.first_line}); remove or rename one of them"
        ) from None
    except yaml.YAMLError as problem:
        raise error(f"{path}: not valid YAML: {problem}") from None
