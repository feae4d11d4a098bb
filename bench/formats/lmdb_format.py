"""Vec2Face's LMDB training sets (hsface10k.lmdb, ...).

Layout (HaiyuWu/Vec2Face): key `b"0" .. b"N-1"` -> msgpack((image_bytes, int_label)), plus
`__keys__` (msgpack list of the keys, in order), `__len__` and `__classnum__`. Vec2Face's own
generator-training LMDBs store (image, feature, label); we take the first element as the image and
the last as the label, so both read. Opened read-only with `lock=False` (safe on shared
filesystems), once per process and file.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np

from bench.core.errors import FormatError
from bench.formats.base import FORMATS, TrainingRecords

if TYPE_CHECKING:
    import lmdb


def _lmdb() -> ModuleType:
    """The lmdb module, imported on first use: only Vec2Face sets need it, so a machine without
    it (e.g. a bare GPU box running the speed proof) can still use every other format."""
    try:
        import lmdb
    except ImportError:
        raise FormatError(
            "reading a Vec2Face LMDB needs the lmdb package: pip install lmdb"
        ) from None
    return lmdb


def _unpack(raw: bytes, where: str) -> Any:
    try:
        # raw=True: old writers stored images as msgpack str; we want bytes either way
        return msgpack.unpackb(raw, raw=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as error:
        raise FormatError(f"{where}: not a msgpack value ({error})") from error


# resolved path -> environment. py-lmdb refuses to open one file twice in a process (a forked
# child inherits that record too), so every LMDBRecords on a file shares one environment, and a
# forked DataLoader worker reuses the one it inherited: read-only with lock=False this is safe,
# and it is what Vec2Face's own loader does. Spawned workers open their own. Because the
# environment is shared, it is closed only when the last instance using it closes (_USERS counts
# them): one instance's close() must not pull it from under the others.
_ENVIRONMENTS: dict[str, lmdb.Environment] = {}
_USERS: dict[str, int] = {}


def _acquire(path: Path) -> tuple[str, lmdb.Environment]:
    """(key, this process's environment of `path`), counting one more user of it."""
    key = str(path.resolve())
    if key not in _ENVIRONMENTS:
        module = _lmdb()
        try:
            _ENVIRONMENTS[key] = module.open(
                str(path),
                subdir=path.is_dir(),
                readonly=True,
                lock=False,
                readahead=False,
                meminit=False,
                max_readers=1024,
            )
        except module.Error as error:
            raise FormatError(f"{path}: cannot open as LMDB ({error})") from error
        _USERS[key] = 0
    _USERS[key] += 1
    return key, _ENVIRONMENTS[key]


def _release(key: str) -> None:
    """One user fewer of the environment `key`; the last one closes it."""
    _USERS[key] -= 1
    if _USERS[key] == 0:
        del _USERS[key]
        _ENVIRONMENTS.pop(key).close()


@FORMATS.register("vec2face_lmdb")
class LMDBRecords(TrainingRecords):
    """A Vec2Face LMDB (a `.lmdb` file, or a folder holding data.mdb)."""

    format_name = "vec2face_lmdb"
    priority = 30
    _handles = ("_env", "_env_key")  # a pickled copy acquires (and counts) its own use

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        if not self.path.exists():
            raise FormatError(f"{self.path}: LMDB not found")
        self._env: lmdb.Environment | None = None
        self._env_key: str | None = None
        with self.env().begin(write=False) as txn:
            raw_keys = txn.get(b"__keys__")
            raw_len = txn.get(b"__len__")
            raw_classes = txn.get(b"__classnum__")
        if raw_len is None and raw_keys is None:
            raise FormatError(
                f"{self.path}: neither __len__ nor __keys__ found; not a Vec2Face LMDB"
            )
        declared = int(_unpack(raw_len, f"{self.path} __len__")) if raw_len is not None else None
        self._keys: list[bytes] | None = None
        count = declared
        if raw_keys is not None:
            keys = [bytes(key) for key in _unpack(raw_keys, f"{self.path} __keys__")]
            count = len(keys)
            # b"0".."N-1" (what Vec2Face writes) is not worth keeping N objects in memory for
            if any(key != str(index).encode("ascii") for index, key in enumerate(keys)):
                self._keys = keys
        if declared is not None and declared != count:
            raise FormatError(
                f"{self.path}: __len__ says {declared} records but __keys__ lists {count}; "
                "the database is inconsistent"
            )
        self._count = int(count or 0)
        self.declared_classes = (
            int(_unpack(raw_classes, f"{self.path} __classnum__")) if raw_classes else None
        )

    def key(self, index: int) -> bytes:
        """The LMDB key of record `index`."""
        return self._keys[index] if self._keys is not None else str(index).encode("ascii")

    @classmethod
    def detect(cls, path: Path) -> Path | None:
        if path.suffix == ".lmdb" and path.exists():
            return path
        if path.is_dir():
            if (path / "data.mdb").is_file():
                return path
            found = sorted(path.glob("*.lmdb"))
            if len(found) == 1:
                return found[0]
        return None

    def env(self) -> lmdb.Environment:
        """The LMDB environment of this file in this process."""
        if self._env is None:
            self._env_key, self._env = _acquire(self.path)
        return self._env

    def __len__(self) -> int:
        return self._count

    def describe(self, index: int) -> str:
        if 0 <= index < len(self):
            return f"{self.path} key {self.key(index).decode('ascii', 'replace')}"
        return super().describe(index)

    def _record(self, txn: lmdb.Transaction, index: int) -> tuple[bytes, int]:
        where = self.describe(index)
        raw = txn.get(self.key(index))
        if raw is None:
            raise FormatError(f"{where}: listed in __keys__ but missing from the database")
        value = _unpack(raw, where)
        if not isinstance(value, list | tuple) or len(value) < 2:
            raise FormatError(f"{where}: expected msgpack (image_bytes, label), got {type(value)}")
        image, label = value[0], value[-1]
        if not isinstance(image, bytes) or not isinstance(label, int) or isinstance(label, bool):
            raise FormatError(
                f"{where}: expected (bytes, int), got ({type(image).__name__}, "
                f"{type(label).__name__})"
            )
        return image, label

    def _encoded(self, index: int) -> tuple[bytes, int]:
        with self.env().begin(write=False, buffers=False) as txn:
            return self._record(txn, index)

    def _load_labels(self) -> np.ndarray:
        labels = np.empty(len(self), dtype=np.int64)
        with self.env().begin(write=False, buffers=False) as txn:
            for index in range(len(self)):
                labels[index] = self._record(txn, index)[1]
        return labels

    def close(self) -> None:
        """Drop this instance's use of the file's environment (it re-opens on the next read).

        The environment itself closes once no other open instance in this process uses it.
        """
        if self._env is not None and self._env_key is not None:
            _release(self._env_key)
        self._env, self._env_key = None, None
