"""datasets.yaml -> validated, frozen dataclasses (the training-set and evaluation-set registry).

Validation is strict: an unknown or missing key, a wrong type or a bad name is a CatalogError that
names the file, the entry and the key, with close matches. The registry holds data only."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.errors import CatalogError
from bench.registry import NAME_PATTERN, close_matches

CATALOG_ENV = "BENCH_CATALOG"
STANDARD_TARGETS: tuple[str, ...] = ("lfw", "cfp_fp", "agedb_30", "calfw", "cplfw")
SCORE_KEYS = STANDARD_TARGETS
FORMATS = ("insightface_recordio", "dcface_record", "vec2face_lmdb", "image_folder", "demo")
DEFAULT_RECIPE = "ir50_arcface"


@dataclass(frozen=True)
class PublishedResult:
    """One published row: accuracies in percent, the recipe that produced them, the source."""

    source: str
    url: str
    recipe: str
    scores: dict[str, float]
    printed_mean: float | None = None
    note: str = ""


@dataclass(frozen=True)
class DemoSpec:
    """Parameters of a procedurally generated demo training set (bench.demo)."""

    seed: int
    identities: int
    images_per_identity: int
    params: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoEvalSpec:
    """Parameters of a procedurally generated demo verification set (bench.demo)."""

    seed: int
    protocol: str
    identities: int
    params: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingSet:
    name: str
    display_name: str
    identities: int
    images: int
    format: str
    obtain: str
    license: str
    paper: str
    published: tuple[PublishedResult, ...] = ()
    eval_targets: tuple[str, ...] = STANDARD_TARGETS
    recipe: str = DEFAULT_RECIPE
    demo: DemoSpec | None = None
    note: str = ""
    aliases: tuple[str, ...] = ()  # short names that resolve to this entry (`uiface`)


@dataclass(frozen=True)
class EvalSet:
    name: str
    display_name: str
    pairs: int
    file: str
    obtain: str
    demo: DemoEvalSpec | None = None


@dataclass(frozen=True)
class Catalog:
    path: Path
    training: dict[str, TrainingSet]
    evaluation: dict[str, EvalSet]

    def training_set(self, name: str) -> TrainingSet:
        """The entry registered as `name` or under the alias `name`."""
        aliases = {alias: entry for entry in self.training.values() for alias in entry.aliases}
        if name not in self.training and name in aliases:
            return aliases[name]
        return _lookup({**self.training, **aliases}, name, "training set", self.path)

    def eval_set(self, name: str) -> EvalSet:
        return _lookup(self.evaluation, name, "evaluation set", self.path)


def _lookup(entries: dict, name: str, kind: str, path: Path):
    if name not in entries:
        known = sorted(entries)
        raise CatalogError(
            f"{path}: unknown {kind} {name!r}{close_matches(name, known)}; "
            f"registered: {', '.join(known)}"
        )
    return entries[name]


def default_catalog_path() -> Path:
    """$BENCH_CATALOG, else datasets.yaml at the repository root (next to the bench package)."""
    env = os.environ.get(CATALOG_ENV)
    return Path(env) if env else Path(__file__).resolve().parent.parent / "datasets.yaml"


class _DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(f"key {key!r} on line {line} repeats the key on line {first_line}")
        self.key, self.line, self.first_line = key, line, first_line


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (plain PyYAML keeps the last)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep=False):
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
            raise _DuplicateKeyError(key, line, first_lines[key])
        first_lines[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _read_yaml(path: Path) -> Any:
    """The parsed registry file; every way of failing is a CatalogError naming `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"registry file {path} not found (set ${CATALOG_ENV})") from None
    except UnicodeDecodeError as error:
        raise CatalogError(
            f"{path}: not UTF-8 text (byte {error.start}: {error.reason}); save it as UTF-8"
        ) from None
    except OSError as error:  # a directory, no permission ...
        raise CatalogError(
            f"{path}: cannot read the registry file ({error.strerror or error}); "
            f"pass a datasets.yaml file (or set ${CATALOG_ENV})"
        ) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except _DuplicateKeyError as error:
        raise CatalogError(
            f"{path}: line {error.line}: key {error.key!r} appears twice in the same mapping "
            f"(first on line {error.first_line}); remove or rename one of them"
        ) from None
    except yaml.YAMLError as error:
        raise CatalogError(f"{path}: not valid YAML: {error}") from None


def load_catalog(path: str | os.PathLike | None = None) -> Catalog:
    """Load and validate datasets.yaml."""
    path = Path(path) if path else default_catalog_path()
    document = _read_yaml(path)
    where = _Where(path)
    top = _fields(document, {"schema_version": int, "training": dict, "evaluation": dict}, where)
    if top["schema_version"] != 1:
        raise CatalogError(f"{path}: schema_version {top['schema_version']} unsupported (want 1)")
    evaluation = {
        name: _eval_set(name, body, where.entry("evaluation", name))
        for name, body in _named(top["evaluation"], where, "evaluation")
    }
    training = {
        name: _training_set(name, body, where.entry("training", name))
        for name, body in _named(top["training"], where, "training")
    }
    _check_aliases(training, path)
    for entry in training.values():
        for target in entry.eval_targets:
            if target not in evaluation:
                raise CatalogError(
                    f"{path}: training.{entry.name}.eval_targets: unknown evaluation set "
                    f"{target!r}{close_matches(target, sorted(evaluation))}"
                )
    return Catalog(path=path, training=training, evaluation=evaluation)


@dataclass(frozen=True)
class _Where:
    """Where a value sits, for error messages: file + dotted key path."""

    path: Path
    keys: tuple[str, ...] = ()

    def entry(self, *keys: str) -> _Where:
        return _Where(self.path, self.keys + tuple(keys))

    def __str__(self) -> str:
        return f"{self.path}: {'.'.join(self.keys) or '<top level>'}"


def _named(mapping: dict, where: _Where, section: str):
    for name, body in mapping.items():
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise CatalogError(
                f"{where.entry(section)}: entry name {name!r} must match {NAME_PATTERN.pattern}"
            )
        yield name, body


def _fields(body: Any, schema: dict[str, Any], where: _Where, optional: dict | None = None) -> dict:
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


def _training_set(name: str, body: Any, where: _Where) -> TrainingSet:
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
    }
    body = _fields(body, required, where, optional)
    if body["format"] not in FORMATS:
        raise CatalogError(
            f"{where.entry('format')}: unknown format {body['format']!r}"
            f"{close_matches(body['format'], list(FORMATS))}; known: {', '.join(FORMATS)}"
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
        **fields,
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


def _strings(values: list, where: _Where) -> list[str]:
    for value in values:
        if not isinstance(value, str):
            raise CatalogError(f"{where}: expected a list of names, found {value!r}")
    return values


def _published(body: Any, where: _Where) -> PublishedResult:
    required = {"source": str, "url": str, "recipe": str, "scores": dict}
    body = _fields(body, required, where, {"printed_mean": float, "note": str})
    scores = _fields(body["scores"], {}, where.entry("scores"), dict.fromkeys(SCORE_KEYS, float))
    if not scores and "printed_mean" not in body:
        raise CatalogError(f"{where}: a published result needs scores or a printed_mean")
    for key, value in scores.items():
        if not 0.0 <= value <= 100.0:
            raise CatalogError(f"{where.entry('scores', key)}: {value} is not a percentage")
    return PublishedResult(
        source=body["source"],
        url=body["url"],
        recipe=body["recipe"],
        scores={key: float(value) for key, value in scores.items()},
        printed_mean=float(body["printed_mean"]) if "printed_mean" in body else None,
        note=body.get("note", ""),
    )


def _demo(body: Any, where: _Where) -> DemoSpec:
    schema = {"seed": int, "identities": int, "images_per_identity": int}
    body = _fields(body, schema, where, {"params": dict})
    return DemoSpec(**{key: body[key] for key in schema}, params=dict(body.get("params", {})))


def _eval_set(name: str, body: Any, where: _Where) -> EvalSet:
    required = {"display_name": str, "pairs": int, "file": str, "obtain": str}
    body = _fields(body, required, where, {"demo": dict})
    demo = None
    if "demo" in body:
        schema = {"seed": int, "protocol": str, "identities": int}
        spec = _fields(body["demo"], schema, where.entry("demo"), {"params": dict})
        demo = DemoEvalSpec(
            **{key: spec[key] for key in schema}, params=dict(spec.get("params", {}))
        )
    return EvalSet(name=name, demo=demo, **{key: body[key] for key in required})
