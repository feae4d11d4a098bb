"""The arguments each backbone accepts and their allowed ranges, declared beside its factory.

`build_backbone` checks kwargs against these before anything is allocated: backbone kwargs come
from recipes and from checkpoint files (untrusted input), and `width: 4096` would otherwise try
to allocate tens of gigabytes before failing. Declare them on a factory with

    @BACKBONES.register("name")
    @declare(**STANDARD)
    def build_name(width: int = 64, ...): ...
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.core.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """An int or float argument within [low, high]."""

    kind: type
    low: float
    high: float

    def check(self, value: Any) -> str | None:
        """Why `value` is not allowed, or None."""
        kinds = (int, float) if self.kind is float else (int,)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return f"must be {self.kind.__name__}, got {type(value).__name__} {value!r}"
        if not math.isfinite(value) or not self.low <= value <= self.high:
            return f"must lie within {self.low}..{self.high}, got {value!r}"
        return None


# The arguments every family of this package takes (published models: width 64, D 512).
STANDARD: dict[str, Range] = {
    "width": Range(int, 1, 512),
    "embedding_size": Range(int, 1, 4096),
    "dropout": Range(float, 0.0, 1.0),
}


def declare(**ranges: Range) -> Callable:
    """Record the allowed arguments of a backbone factory (read by `check_arguments`)."""

    def decorator(factory: Callable) -> Callable:
        factory.argument_ranges = dict(ranges)
        return factory

    return decorator


def check_arguments(name: str, factory: Callable, kwargs: dict[str, Any]) -> None:
    """ConfigError naming the key when `kwargs` holds an unknown, wrong-typed or absurd value."""
    ranges: dict[str, Range] | None = getattr(factory, "argument_ranges", None)
    known = sorted(ranges) if ranges is not None else _parameter_names(factory)
    for key, value in kwargs.items():
        if key not in known:
            raise ConfigError(
                f"backbone {name!r}: unknown argument {key!r} (it takes {', '.join(known)})"
            )
        problem = ranges[key].check(value) if ranges is not None else None
        if problem:
            raise ConfigError(f"backbone {name!r}: argument {key!r} {problem}")


def _parameter_names(factory: Callable) -> list[str]:
    return sorted(inspect.signature(factory).parameters)
