"""Recipe files -> TrainConfig: configs/<name>.yaml (or a path), `base:` inheritance, typed
`key=value` overrides; every mandatory key stated or inherited, every error naming file and key."""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any

import yaml

from bench.core import paths
from bench.core.errors import ConfigError
from bench.core.registry import close_matches
from bench.core.yaml_keys import read_yaml_file
from bench.train.config import HASH_OMITTED_AT_DEFAULT, OPERATIONAL_KEYS, TrainConfig

# fp64 exists for equivalence tests (N processes vs 1 without float32 rounding noise).
BASE_KEY = "base"  # `base: ir50_arcface`: the recipe this one inherits its keys from


def recipe_path(recipe: str) -> Path:
    """A recipe given as a YAML path, or as the name of a file in configs/ (`sources/NAME` for
    the published sources' recipes in configs/sources/)."""
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml"):
        return path
    recipes = paths.recipes_dir()
    path = recipes / f"{recipe}.yaml"
    if not path.exists():
        known = sorted(
            p.relative_to(recipes).with_suffix("").as_posix() for p in recipes.rglob("*.yaml")
        )
        raise ConfigError(
            f"recipe {recipe!r} not found as {path}{close_matches(recipe, known)}; "
            f"known: {', '.join(known)}"
        )
    return path


def load_config(
    path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()
) -> TrainConfig:
    """Read a YAML recipe, apply typed `key=value` overrides, return the frozen config.

    A recipe states every key of `mandatory_keys()`, or inherits them explicitly with
    `base: NAME` (another recipe, read first; the file then states its differences): a key that
    is simply left out never falls back on a default silently."""
    path = Path(path)
    values = _recipe_values(path, ())
    missing = sorted(mandatory_keys() - set(values))
    if missing:
        raise ConfigError(
            f"{path}: key(s) {', '.join(missing)} not stated; a recipe states every recipe key, "
            "or inherits them explicitly with `base: ir50_arcface` and states only what differs"
        )
    for override in overrides:
        key, value = _parse_override(override)
        _apply_override(values, key, value, override)
    try:
        return TrainConfig(**values)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def mandatory_keys() -> set[str]:
    """Keys a recipe must state (or inherit from its base): every field of TrainConfig but the
    operational ones and those that are off at their default (HASH_OMITTED_AT_DEFAULT)."""
    return set(_field_types()) - OPERATIONAL_KEYS - HASH_OMITTED_AT_DEFAULT


def _recipe_values(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """The typed keys of one recipe file over those of its `base` (recursively)."""
    raw = _read_recipe(path)
    base = raw.pop(BASE_KEY, None)
    values: dict[str, Any] = {}
    if base is not None:
        if not isinstance(base, str) or not base:
            raise ConfigError(f"{path}: key {BASE_KEY!r} must name a recipe, got {base!r}")
        base_path = path.parent / base if Path(base).suffix in (".yaml", ".yml") else None
        base_path = base_path or recipe_path(base)
        if base_path.resolve() in {p.resolve() for p in (*chain, path)}:
            raise ConfigError(f"{path}: key {BASE_KEY!r}: {base!r} inherits from itself")
        values = _recipe_values(base_path, (*chain, path))
    values.update({key: _coerce(key, value, str(path)) for key, value in raw.items()})
    return values


def _read_recipe(path: Path) -> dict[str, Any]:
    """The mapping of one recipe file; every way of failing is a ConfigError naming `path`."""
    raw = read_yaml_file(path, ConfigError, "the recipe", "see configs/ for the recipes")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(raw).__name__}")
    return raw


def config_from_dict(values: dict[str, Any], source: str = "checkpoint") -> TrainConfig:
    """Rebuild a TrainConfig from `to_dict()` output (e.g. the one stored in a checkpoint)."""
    return TrainConfig(**{key: _coerce(key, value, source) for key, value in values.items()})


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _parse_override(override: str) -> tuple[str, Any]:
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {override!r}: expected key=value (e.g. epochs=2)")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {override!r}: value is not valid YAML: {error}") from None
    return key.strip(), value


def _apply_override(values: dict[str, Any], key: str, value: Any, source: str) -> None:
    top, dot, sub = key.partition(".")
    if dot:
        _check_known(top, f"override {source!r}")
        if _field_types()[top] is not dict:
            raise ConfigError(f"override {source!r}: {top!r} is not a mapping; use {top}=VALUE")
        current = dict(values.get(top, {}))
        current[sub] = value
        values[top] = current
        return
    values[key] = _coerce(key, value, f"override {source!r}")


def _check_known(key: str, where: str) -> None:
    known = sorted(_field_types())
    if key not in known:
        raise ConfigError(f"{where}: unknown key {key!r}{close_matches(key, known)}")


def _coerce(key: str, value: Any, where: str) -> Any:
    """Check `value` against the type of field `key`; ints are accepted for floats."""
    _check_known(key, where)
    expected = _field_types()[key]
    converted = _convert(value, expected)
    if converted is _INVALID:
        raise ConfigError(
            f"{where}: key {key!r} expects {_type_name(expected)}, got {value!r} "
            f"({type(value).__name__})"
        )
    return converted


_INVALID = object()


def _convert(value: Any, expected: Any) -> Any:
    origin = typing.get_origin(expected)
    if expected is bool:
        return value if isinstance(value, bool) else _INVALID
    if expected is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _INVALID
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else _INVALID
    if expected is str:
        return value if isinstance(value, str) else _INVALID
    if expected is dict:
        return dict(value) if isinstance(value, dict) else _INVALID
    if origin is tuple:
        return _convert_tuple(value, typing.get_args(expected))
    return _INVALID


def _convert_tuple(value: Any, args: tuple) -> Any:
    if isinstance(value, str) and args[-1] is Ellipsis:
        value = [part for part in value.split(",") if part]  # verify_targets=lfw,cfp_fp
    if not isinstance(value, (list, tuple)):
        return _INVALID
    item_types = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
    if len(item_types) != len(value):
        return _INVALID
    items = [_convert(item, kind) for item, kind in zip(value, item_types, strict=True)]
    return _INVALID if any(item is _INVALID for item in items) else tuple(items)


def _type_name(expected: Any) -> str:
    if typing.get_origin(expected) is tuple:
        args = typing.get_args(expected)
        if args[-1] is Ellipsis:
            return f"a list of {args[0].__name__}"
        return f"a list of {len(args)} {args[0].__name__}s"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        expected, getattr(expected, "__name__", str(expected))
    )
