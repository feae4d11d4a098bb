"""A small generic name -> object registry with "did you mean" errors."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from bench.core.errors import CatalogError

T = TypeVar("T")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.]*$")


def close_matches(name: str, candidates: list[str]) -> str:
    """Return ' (did you mean: a, b?)' or '' for an unknown `name`."""
    matches = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    return f" (did you mean: {', '.join(matches)}?)" if matches else ""


class Registry(Generic[T]):
    """Maps registry keys to objects; filled by the `register` decorator at import of a module."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        if not NAME_PATTERN.match(name):
            raise ValueError(f"{self.kind} name {name!r} must match {NAME_PATTERN.pattern}")

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = sorted(self._entries)
            raise CatalogError(
                f"unknown {self.kind} {name!r}{close_matches(name, known)}; known: {', '.join(known)}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
