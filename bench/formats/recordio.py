"""MXNet/dmlc RecordIO: frames, split records, IRHeader, and an mmap'd random-access reader/writer.

On disk a record is one or more frames `magic, lrec, payload, zero padding to 4 bytes`, with
`cflag = lrec >> 29` (0 whole, 1 first, 2 middle, 3 last part) and `length = lrec & (2**29-1)`.
The writer splits a payload at every 4-byte-aligned occurrence of the magic word and drops that
word; the reader joins the parts and re-inserts it (dmlc-core recordio.cc does the same).
No MXNet needed. The `.idx` file (`key<TAB>offset` lines, any order) gives random access.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from bench.core.errors import FormatError

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
LENGTH_MASK = (1 << 29) - 1
FRAME_HEADER = struct.Struct("<II")
IR_HEADER = struct.Struct("<IfQQ")  # flag, label, id, id2
IR_SIZE = IR_HEADER.size  # 24


class IRHeader(NamedTuple):
    """MXNet's image-record header; `label` is a float, or a float32 array when flag > 0."""

    flag: int
    label: float | np.ndarray
    id: int
    id2: int


def pack(header: IRHeader, body: bytes) -> bytes:
    """Payload bytes for `header` + `body`, as `mx.recordio.pack` writes them (flag set from label)."""
    label = header.label
    if isinstance(label, int | float | np.floating | np.integer):
        return IR_HEADER.pack(0, float(label), header.id, header.id2) + bytes(body)
    values = np.asarray(label, dtype="<f4").ravel()
    fixed = IR_HEADER.pack(len(values), 0.0, header.id, header.id2)
    return fixed + values.tobytes() + bytes(body)


def unpack(payload: bytes, source: str = "") -> tuple[IRHeader, bytes]:
    """Split a payload into (IRHeader, body); flag > 0 means `flag` float32 labels follow."""
    where = source or "record"
    if len(payload) < IR_SIZE:
        raise FormatError(
            f"{where}: payload of {len(payload)} bytes is shorter than the 24-byte IRHeader; "
            "this is not an MXNet image record"
        )
    flag, label, record_id, record_id2 = IR_HEADER.unpack_from(payload, 0)
    if flag == 0:
        return IRHeader(0, label, record_id, record_id2), bytes(payload[IR_SIZE:])
    end = IR_SIZE + 4 * flag
    if end > len(payload):
        raise FormatError(
            f"{where}: IRHeader flag {flag} announces {flag} float32 labels but the payload has "
            f"only {len(payload)} bytes"
        )
    labels = np.frombuffer(payload, dtype="<f4", count=flag, offset=IR_SIZE).astype(np.float32)
    return IRHeader(flag, labels, record_id, record_id2), bytes(payload[end:])


def read_index(idx_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(keys, offsets) as int64 arrays in the order of the `.idx` file's lines."""
    try:
        data = Path(idx_path).read_bytes()
    except OSError as error:
        raise FormatError(f"{idx_path}: cannot read the RecordIO index ({error})") from error
    if data.translate(None, b"0123456789\t\r\n "):
        raise FormatError(f"{idx_path}: non-integer key or offset; expected `key<TAB>offset` lines")
    # np.fromstring parses millions of lines without a Python object per field
    values = np.fromstring(data, dtype=np.int64, sep=" ") if data.strip() else np.zeros(0, np.int64)
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    if len(values) != 2 * lines:
        raise FormatError(
            f"{idx_path}: {len(values)} numbers on {lines} lines; expected one `key<TAB>offset` "
            "pair per line"
        )
    keys, offsets = values[0::2].copy(), values[1::2].copy()
    unique, counts = np.unique(keys, return_counts=True)
    if len(unique) != len(keys):
        raise FormatError(f"{idx_path}: key {int(unique[counts > 1][0])} is listed more than once")
    return keys, offsets


class RecordIOReader:
    """Random access to an indexed RecordIO file; the mmap opens lazily (safe to pickle/fork)."""

    def __init__(self, rec_path: str | os.PathLike, idx_path: str | os.PathLike | None = None):
        self.rec_path = Path(rec_path)
        self.idx_path = Path(idx_path) if idx_path else self.rec_path.with_suffix(".idx")
        for path in (self.rec_path, self.idx_path):
            if not path.is_file():
                raise FormatError(f"{path}: file not found (a RecordIO set needs .rec and .idx)")
        self._keys, self._offsets = read_index(self.idx_path)
        self._order = np.argsort(self._keys, kind="stable")
        self._sorted_keys = self._keys[self._order]
        self._map: mmap.mmap | bytes | None = None
        self._pid = -1

    @property
    def keys(self) -> np.ndarray:
        """All keys in `.idx` file order."""
        return self._keys

    def __contains__(self, key: object) -> bool:
        return self._position(int(key)) is not None  # type: ignore[call-overload]

    def __len__(self) -> int:
        return len(self._keys)

    def _position(self, key: int) -> int | None:
        at = int(np.searchsorted(self._sorted_keys, key))
        if at < len(self._sorted_keys) and self._sorted_keys[at] == key:
            return int(self._order[at])
        return None

    def offset(self, key: int) -> int:
        """Byte offset of `key` in the .rec file, from the index."""
        position = self._position(key)
        if position is None:
            raise FormatError(f"{self.idx_path}: key {key} is not in the index")
        return int(self._offsets[position])

    def offsets(self, keys: np.ndarray) -> np.ndarray:
        """Offsets of many keys at once (all must be present)."""
        at = np.searchsorted(self._sorted_keys, keys)
        at = np.minimum(at, len(self._sorted_keys) - 1)
        missing = self._sorted_keys[at] != keys
        if missing.any():
            raise FormatError(f"{self.idx_path}: key {int(keys[missing][0])} is not in the index")
        return self._offsets[self._order[at]]

    def buffer(self) -> mmap.mmap | bytes:
        """The whole .rec file, memory-mapped (re-opened after fork or unpickling)."""
        if self._map is None or self._pid != os.getpid():
            with open(self.rec_path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                # mmap cannot map an empty file; an empty .rec simply has no readable record.
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            self._pid = os.getpid()
        return self._map

    def read(self, key: int) -> bytes:
        """The payload of record `key` (split parts joined, magic words re-inserted)."""
        payload, _ = self.read_at(self.offset(key), key)
        return payload

    def read_at(self, offset: int, key: int | None = None) -> tuple[bytes, int]:
        """(payload, offset of the next record) for the record starting at `offset`."""
        buf = self.buffer()
        parts: list[bytes] = []
        position = offset
        while True:
            cflag, start, length = self._frame(buf, position, offset, key)
            parts.append(bytes(buf[start : start + length]))
            position = start + length + (-length % 4)
            expected = (0, 1) if len(parts) == 1 else (2, 3)
            if cflag not in expected:
                raise FormatError(
                    f"{self.rec_path}: unexpected continuation flag {cflag} in frame at offset "
                    f"{start - 8} of record {self._what(offset, key)}; the file is corrupt"
                )
            if cflag in (0, 3):
                return MAGIC_BYTES.join(parts), position

    def _frame(self, buf, position: int, offset: int, key: int | None) -> tuple[int, int, int]:
        """(cflag, payload start, length) of the frame at `position`, validating bounds and magic."""
        size = len(buf)
        what = self._what(offset, key)
        if position >= size:
            raise FormatError(
                f"{self.rec_path}: offset {position} is at or beyond the end of the file "
                f"({size} bytes) reading record {what}; the .rec is truncated or the .idx is stale"
            )
        if position + 8 > size:
            raise FormatError(f"{self.rec_path}: truncated record at offset {offset} ({what})")
        magic, lrec = FRAME_HEADER.unpack_from(buf, position)
        if magic != MAGIC:
            raise FormatError(
                f"{self.rec_path}: invalid magic 0x{magic:08x} at offset {position} "
                f"({what}); expected 0x{MAGIC:08x}: the file is corrupt"
            )
        length = lrec & LENGTH_MASK
        if position + 8 + length > size:
            raise FormatError(
                f"{self.rec_path}: truncated record at offset {offset} ({what}): the frame "
                f"at {position} needs {length} payload bytes, only {size - position - 8} remain"
            )
        return lrec >> 29, position + 8, length

    @staticmethod
    def _what(offset: int, key: int | None) -> str:
        return f"key {key}" if key is not None else f"record at offset {offset}"

    def scan(self) -> Iterator[tuple[int, bytes]]:
        """Sequential (offset, payload) over the file from byte 0, ignoring the index."""
        position, size = 0, len(self.buffer())
        while position < size:
            payload, following = self.read_at(position)
            yield position, payload
            position = following

    @staticmethod
    def unpack(payload: bytes, source: str = "") -> tuple[IRHeader, bytes]:
        """Split a payload into (IRHeader, body)."""
        return unpack(payload, source)

    def close(self) -> None:
        """Release the memory map (it is re-opened on the next read)."""
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        self._map = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_map"] = None  # an mmap cannot be pickled: each process maps the file itself
        return state


def frames(payload: bytes) -> bytes:
    """The on-disk bytes of one record: split at aligned magic words, padded to 4 bytes."""
    payload = bytes(payload)
    aligned = len(payload) - len(payload) % 4
    words = np.frombuffer(payload, dtype="<u4", count=aligned // 4)
    cuts = (np.flatnonzero(words == MAGIC) * 4).tolist()
    out = bytearray()
    start = 0
    for cut in cuts:
        out += FRAME_HEADER.pack(MAGIC, ((1 if start == 0 else 2) << 29) | (cut - start))
        out += payload[start:cut]
        start = cut + 4
    out += FRAME_HEADER.pack(MAGIC, ((3 if cuts else 0) << 29) | (len(payload) - start))
    out += payload[start:]
    out += b"\0" * (-len(payload) % 4)
    return bytes(out)


class RecordIOWriter:
    """Writes an indexed RecordIO file pair (`.rec` frames, `.idx` `key<TAB>offset` lines)."""

    def __init__(self, rec_path: str | os.PathLike, idx_path: str | os.PathLike | None = None):
        self.rec_path = Path(rec_path)
        self.idx_path = Path(idx_path) if idx_path else self.rec_path.with_suffix(".idx")
        self._rec = open(self.rec_path, "wb")  # closed by close()/__exit__
        self._idx = open(self.idx_path, "w", encoding="ascii", newline="\n")

    def write(self, key: int, payload: bytes) -> int:
        """Append one record under `key`; returns its offset."""
        if len(payload) > LENGTH_MASK:
            raise FormatError(f"{self.rec_path}: record {key} of {len(payload)} bytes is too large")
        offset = self._rec.tell()
        self._rec.write(frames(payload))
        self._idx.write(f"{key}\t{offset}\n")
        return offset

    def close(self) -> None:
        """Flush and close both files."""
        self._rec.close()
        self._idx.close()

    def __enter__(self) -> RecordIOWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
