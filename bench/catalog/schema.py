"""One registry entry at a time: a YAML mapping -> its dataclass, every key checked (type, name,
range) with errors that name the file, the entry and the key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.catalog.entries import (
    DEFAULT_RECIPE,
    EVAL_KINDS,
    SCORE_KEYS,
    STANDARD_TARGETS,
    DemoEvalSpec,
    DemoSpec,
    EvalSet,
    PublishedResult,
    Release,
    Source,
    TrainingSet,
    known_formats,
)
from bench.core.errors import CatalogError
from bench.core.registry import NAME_PATTERN, close_matches


@dataclass(frozen=True)
class Where:
    """Where a value sits, for error messages: file + dotted key path."""

    path: Path
    keys: tuple[str, ...] = ()

    def entry(self, *keys: str) -> Where:
        return Where(self.path, self.keys + tuple(keys))

    def __str__(self) -> str:
        return f"{self.path}: {'.'.join(self.keys) or '<top level>'}"


def named_entries(mapping: dict, where: Where, section: str):
    for name, body in mapping.items():
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise CatalogError(
                f"{where.entry(section)}: entry name {name!r} must match {NAME_PATTERN.pattern}"
            )
        yield name, body


def checked_fields(
    body: Any, schema: dict[str, Any], where: Where, optional: dict | None = None
) -> dict:
    """Check `body` has exactly the keys of `schema` (+ `optional`) with the right types."""
    optional = optional or {}
    if not isinstance(body, dict):
        raise CatalogError(f"{where}: expected a mapping, got {type(body).__name__}")
    allowed = {**schema, **optional}
    for key in body:
        if key not in allowed:
            raise CatalogError(
                f"{where}: unknown key {key!r}{close_matches(str(key), sorted(allowed))}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
    for key in schema:
        if key not in body:
            raise CatalogError(f"{where}: missing key {key!r}")
    for key, value in body.items():
        expected = allowed[key]
        if not _is_type(value, expected):
            names = getattr(expected, "__name__", str(expected))
            raise CatalogError(
                f"{where.entry(key)}: expected {names}, got {type(value).__name__} ({value!r})"
            )
    return body


def _is_type(value: Any, expected: Any) -> bool:
    if expected is float:  # YAML writes 99 for 99.0
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(expected, tuple):
        return any(_is_type(value, option) for option in expected)
    return isinstance(value, expected)


def training_set_entry(name: str, body: Any, where: Where) -> TrainingSet:
    required = {
        "display_name": str,
        "identities": int,
        "images": int,
        "format": str,
        "obtain": str,
        "license": str,
        "paper": str,
    }
    optional = {
        "published": list,
        "eval_targets": list,
        "recipe": str,
        "demo": dict,
        "note": str,
        "aliases": list,
        "release": dict,
    }
    body = checked_fields(body, required, where, optional)
    _positive(body, ("identities", "images"), where)
    formats = known_formats()
    if body["format"] not in formats:
        raise CatalogError(
            f"{where.entry('format')}: unknown format {body['format']!r}"
            f"{close_matches(body['format'], list(formats))}; known: {', '.join(formats)}"
        )
    if (body["format"] == "demo") != ("demo" in body):
        raise CatalogError(f"{where}: a `demo` block goes with format: demo (and only with it)")
    published = tuple(
        _published(item, where.entry("published", str(index)))
        for index, item in enumerate(body.get("published", []))
    )
    targets = tuple(_strings(body.get("eval_targets", list(STANDARD_TARGETS)), where))
    demo = _demo(body["demo"], where.entry("demo")) if "demo" in body else None
    fields = {key: body[key] for key in required}
    return TrainingSet(
        name=name,
        published=published,
        eval_targets=targets,
        recipe=body.get("recipe", DEFAULT_RECIPE),
        demo=demo,
        note=body.get("note", ""),
        aliases=tuple(_strings(body.get("aliases", []), where.entry("aliases"))),
        release=_release(body["release"], body, where.entry("release"))
        if "release" in body
        else None,
        **fields,
    )


def _release(body: Any, entry: dict, where: Where) -> Release:
    """A `release` block; counts left out are the entry's own (paper) counts."""
    optional = {"identities": int, "images": int, "version": str, "available": bool, "note": str}
    body = checked_fields(body, {"verified": bool}, where, optional)
    _positive(body, ("identities", "images"), where)
    return Release(
        identities=body.get("identities", entry["identities"]),
        images=body.get("images", entry["images"]),
        verified=body["verified"],
        version=body.get("version", ""),
        available=body.get("available", True),
        note=body.get("note", ""),
    )


def source_entry(name: str, body: Any, where: Where) -> Source:
    optional = {"recipe": str, "caveats": list}
    body = checked_fields(body, {"title": str, "url": str}, where, optional)
    return Source(
        name=name,
        title=body["title"],
        url=body["url"],
        recipe=body.get("recipe", ""),
        caveats=tuple(_strings(body.get("caveats", []), where.entry("caveats"))),
    )


def _positive(body: dict, keys: tuple[str, ...], where: Where) -> None:
    """Counts are positive: a registry entry with -5 identities is a typo, not a data set."""
    for key in keys:
        if key in body and body[key] < 1:
            raise CatalogError(f"{where.entry(key)}: must be a positive count, got {body[key]}")


def _strings(values: list, where: Where) -> list[str]:
    for value in values:
        if not isinstance(value, str):
            raise CatalogError(f"{where}: expected a list of names, found {value!r}")
    return values


def _published(body: Any, where: Where) -> PublishedResult:
    required = {"source": str, "url": str, "recipe": str, "scores": dict}
    optional = {"printed_mean": float, "note": str, "source_id": str}
    body = checked_fields(body, required, where, optional)
    scores = checked_fields(
        body["scores"], {}, where.entry("scores"), dict.fromkeys(SCORE_KEYS, float)
    )
    if not scores and "printed_mean" not in body:
        raise CatalogError(f"{where}: a published result needs scores or a printed_mean")
    for key, value in [*scores.items(), ("printed_mean", body.get("printed_mean", 100.0))]:
        at = where.entry("scores", key) if key in scores else where.entry(key)
        if not 0.0 <= value <= 100.0:
            raise CatalogError(f"{at}: {value} is not a percentage")
        if value <= 1.0:  # verification accuracies are >= 50%: this is a fraction
            raise CatalogError(
                f"{at}: {value} looks like a fraction; scores are percentages (write "
                f"{100 * value:g}, not {value})"
            )
    return PublishedResult(
        source=body["source"],
        url=body["url"],
        recipe=body["recipe"],
        scores={key: float(value) for key, value in scores.items()},
        printed_mean=float(body["printed_mean"]) if "printed_mean" in body else None,
        note=body.get("note", ""),
        source_id=body.get("source_id", ""),
    )


def _demo(body: Any, where: Where) -> DemoSpec:
    schema = {"seed": int, "identities": int, "images_per_identity": int}
    body = checked_fields(body, schema, where, {"params": dict})
    _positive(body, ("identities", "images_per_identity"), where)
    return DemoSpec(**{key: body[key] for key in schema}, params=dict(body.get("params", {})))


def eval_set_entry(name: str, body: Any, where: Where) -> EvalSet:
    required = {"display_name": str, "pairs": int, "file": str, "obtain": str}
    body = checked_fields(body, required, where, {"demo": dict, "kind": str})
    _positive(body, ("pairs",), where)
    kind = body.get("kind", "bin")
    if kind not in EVAL_KINDS:
        raise CatalogError(f"{where.entry('kind')}: {kind!r} is not one of {', '.join(EVAL_KINDS)}")
    if kind == "ijb" and "demo" in body:
        raise CatalogError(f"{where}: an IJB package has no `demo` spec (bench.demo.ijb makes one)")
    demo = None
    if "demo" in body:
        schema = {"seed": int, "protocol": str, "identities": int}
        spec = checked_fields(body["demo"], schema, where.entry("demo"), {"params": dict})
        demo = DemoEvalSpec(
            **{key: spec[key] for key in schema}, params=dict(spec.get("params", {}))
        )
    return EvalSet(name=name, demo=demo, kind=kind, **{key: body[key] for key in required})
