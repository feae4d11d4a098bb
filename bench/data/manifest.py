"""manifest.json of a prepared set: what `prepare` wrote (counts and checksums), schema 1.

`content_sha256` identifies the set's content independently of how it was packed: the sha256 of
the concatenated (label as int64 little-endian, sha256 of the stored image bytes) of every record
in written order. Two users whose prepared sets share it trained on the same images and labels.
Manifests written before it existed read as "" (re-run `bench prepare --force` to add it)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.core import io
from bench.core.errors import DatasetError

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
OPTIONAL_KEYS = {"content_sha256"}  # added after schema 1 was first written


class ContentHasher:
    """Accumulates content_sha256 over (stored bytes, label) records as they are written."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def add(self, record: tuple) -> tuple:
        """Hash one (stored bytes, label) record and pass it on unchanged."""
        buf, label = record
        self._digest.update(int(label).to_bytes(8, "little", signed=True))
        self._digest.update(hashlib.sha256(buf).digest())
        return record

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What `prepare` wrote: counts and checksums (manifest.json, schema_version 1)."""

    name: str
    source_format: str
    images: int
    identities: int
    per_identity_counts: list[int]
    rec_sha256: str
    idx_sha256: str
    created: str
    content_sha256: str = ""  # "" in manifests written before content hashes existed
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return {"schema_version": data.pop("schema_version"), **data}


def read_manifest(prepared: str | os.PathLike) -> Manifest:
    """Load and validate `<prepared>/manifest.json`."""
    path = Path(prepared) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise DatasetError(f"{path}: missing; (re)run `bench prepare` for this set") from error
    except (OSError, json.JSONDecodeError) as error:
        raise DatasetError(
            f"{path}: unreadable ({error}); re-run `bench prepare --force`"
        ) from error
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise DatasetError(
            f"{path}: schema_version {data.get('schema_version') if isinstance(data, dict) else None}"
            f" is not {SCHEMA_VERSION}; re-run `bench prepare --force`"
        )
    known = set(Manifest.__dataclass_fields__) - {"extra"}
    missing = sorted(known - set(data) - OPTIONAL_KEYS)
    if missing:
        raise DatasetError(
            f"{path}: key(s) {', '.join(missing)} missing; re-run `bench prepare --force`"
        )
    extra = {key: value for key, value in data.items() if key not in known}
    return Manifest(**{key: data[key] for key in known if key in data}, extra=extra)


def write_manifest(prepared: Path, manifest: Manifest) -> Path:
    """Write `<prepared>/manifest.json` atomically."""
    text = json.dumps(manifest.to_dict(), indent=1) + "\n"
    return io.atomic_write_text(Path(prepared) / MANIFEST_NAME, text)
