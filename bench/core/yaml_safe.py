"""Safe YAML for our own files (datasets.yaml, recipes): no objects, bounded aliases, C speed.

Anchors and aliases (`&name` / `*name`, and `<<: *name` merges) are allowed, but the document
they describe may not be much larger than its text: a few lines of nested aliases (the "billion
laughs" document) describe billions of values, which explode as soon as anything walks, prints
or hashes them (validation messages, json.dumps). The document is composed into nodes first (by
libyaml when PyYAML has it, several times faster on large registries), its expanded size is
counted without expanding it, and only then are the Python values constructed."""

from __future__ import annotations

from typing import Any

import yaml

# libyaml's parser when PyYAML was built with it; the constructors stay PyYAML's Python ones.
SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The expanded document may hold at most this many times the characters of its text (+ slack).
EXPANSION_FACTOR = 10
EXPANSION_SLACK = 100_000


class AliasError(yaml.YAMLError):
    """Aliases make the document recursive, or expand it far beyond the size of its text."""


def load_yaml(text: str, loader: type = SAFE_LOADER) -> Any:
    """Parse one YAML document with `loader` (a SafeLoader or a subclass); AliasError on bombs."""
    instance = loader(text)
    try:
        node = instance.get_single_node()
        if node is None:
            return None
        limit = EXPANSION_FACTOR * len(text) + EXPANSION_SLACK
        # No '&' means no anchor, hence no alias: skip the walk (~15% of a large registry's load).
        size = expanded_size(node) if "&" in text else 0
        if size > limit:
            raise AliasError(
                f"anchors and aliases (&name / *name) expand this {len(text)}-character document "
                f"to about {size:,} characters (at most {limit:,} allowed); write the values "
                "out instead of nesting aliases"
            )
        return instance.construct_document(node)
    finally:
        instance.dispose()


def expanded_size(root: yaml.Node) -> int:
    """Characters (scalars + 1 per node) of the document with every alias expanded, computed
    once per distinct node; AliasError if an alias refers to a node that contains it."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # visited, children not finished: an ancestor of what follows
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if isinstance(node, yaml.ScalarNode):
                sizes[key] += len(node.value)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise AliasError(
                f"line {node.start_mark.line + 1}: an alias refers to the value that contains "
                "it (a recursive document); write the values out"
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []
