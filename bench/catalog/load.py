"""datasets.yaml -> Catalog: read the file (duplicate keys, aliases and encoding refused), build
each entry (bench.catalog.schema), then check what spans entries (aliases, files, sources)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.catalog.entries import Catalog, EvalSet, TrainingSet
from bench.catalog.schema import (
    Where,
    checked_fields,
    eval_set_entry,
    named_entries,
    source_entry,
    training_set_entry,
)
from bench.core import paths
from bench.core.errors import CatalogError
from bench.core.registry import close_matches
from bench.core.yaml_keys import read_yaml_file


def _read_yaml(path: Path) -> Any:
    """The parsed registry file; every way of failing is a CatalogError naming `path`."""
    hint = f"pass a datasets.yaml file (or set ${paths.CATALOG_ENV})"
    return read_yaml_file(path, CatalogError, "the registry file", hint)


def load_catalog(path: str | os.PathLike | None = None) -> Catalog:
    """Load and validate datasets.yaml."""
    path = Path(path) if path else paths.default_catalog_path()
    document = _read_yaml(path)
    where = Where(path)
    top = checked_fields(
        document,
        {"schema_version": int, "training": dict, "evaluation": dict},
        where,
        {"sources": dict},
    )
    if top["schema_version"] != 1:
        raise CatalogError(f"{path}: schema_version {top['schema_version']} unsupported (want 1)")
    evaluation = {
        name: eval_set_entry(name, body, where.entry("evaluation", name))
        for name, body in named_entries(top["evaluation"], where, "evaluation")
    }
    training = {
        name: training_set_entry(name, body, where.entry("training", name))
        for name, body in named_entries(top["training"], where, "training")
    }
    _check_aliases(training, path)
    _check_distinct_files(evaluation, path)
    sources = {
        name: source_entry(name, body, where.entry("sources", name))
        for name, body in named_entries(top.get("sources", {}), where, "sources")
    }
    _check_source_ids(training, sources, path)
    for entry in training.values():
        for target in entry.eval_targets:
            if target not in evaluation:
                raise CatalogError(
                    f"{path}: training.{entry.name}.eval_targets: unknown evaluation set "
                    f"{target!r}{close_matches(target, sorted(evaluation))}"
                )
    return Catalog(path=path, training=training, evaluation=evaluation, sources=sources)


def _check_distinct_files(evaluation: dict[str, EvalSet], path: Path) -> None:
    """Two evaluation sets on one file would report one set's accuracy under two names."""
    owners: dict[str, str] = {}
    for name, entry in evaluation.items():
        if entry.file in owners:
            raise CatalogError(
                f"{path}: evaluation.{name}.file: {entry.file!r} is also the file of "
                f"evaluation.{owners[entry.file]}; each evaluation set needs its own file"
            )
        owners[entry.file] = name


def _check_source_ids(training: dict[str, TrainingSet], sources: dict, path: Path) -> None:
    """Every published row's `source_id` names an entry of `sources`."""
    for entry in training.values():
        for index, item in enumerate(entry.published):
            if item.source_id and item.source_id not in sources:
                raise CatalogError(
                    f"{path}: training.{entry.name}.published.{index}.source_id: unknown source "
                    f"{item.source_id!r}{close_matches(item.source_id, sorted(sources))}; "
                    "add it under `sources` or fix the name"
                )


def _check_aliases(training: dict[str, TrainingSet], path: Path) -> None:
    """An alias may name one entry only, and never another entry's key."""
    owners: dict[str, str] = {}
    for entry in training.values():
        for alias in entry.aliases:
            if alias in training:
                raise CatalogError(
                    f"{path}: training.{entry.name}.aliases: {alias!r} is the key of another entry"
                )
            if alias in owners:
                raise CatalogError(
                    f"{path}: training.{entry.name}.aliases: {alias!r} is also an alias of "
                    f"training.{owners[alias]}"
                )
            owners[alias] = entry.name
