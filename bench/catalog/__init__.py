"""datasets.yaml -> validated, frozen dataclasses (the training-set and evaluation-set registry).

Validation is strict: an unknown or missing key, a wrong type or a bad name is a CatalogError that
names the file, the entry and the key, with close matches. The registry holds data only.

The package: `entries` (the dataclasses and the Catalog), `schema` (one entry: YAML -> dataclass,
checked), `load` (the file -> Catalog, and the checks that span entries).
"""

from bench.catalog.entries import (
    DEFAULT_RECIPE,
    EVAL_KINDS,
    GENERATED_FORMATS,
    SCORE_KEYS,
    STANDARD_TARGETS,
    Catalog,
    DemoEvalSpec,
    DemoSpec,
    EvalSet,
    PublishedResult,
    Release,
    Source,
    TrainingSet,
    known_formats,
)
from bench.catalog.load import load_catalog

__all__ = [
    "DEFAULT_RECIPE",
    "EVAL_KINDS",
    "GENERATED_FORMATS",
    "SCORE_KEYS",
    "STANDARD_TARGETS",
    "Catalog",
    "DemoEvalSpec",
    "DemoSpec",
    "EvalSet",
    "PublishedResult",
    "Release",
    "Source",
    "TrainingSet",
    "known_formats",
    "load_catalog",
]
