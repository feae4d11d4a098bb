"""On-disk formats: training sets (RecordIO, DCFace record, Vec2Face LMDB, image folders) and
verification `.bin` pair files. `open_dataset(path)` detects the format."""

from bench.formats.base import FORMATS, Records, TrainingRecords
from bench.formats.dcface_record import DCFaceRecords
from bench.formats.detect import detect_format, open_dataset
from bench.formats.folder import ImageFolderRecords
from bench.formats.image import decode_image, encode_jpeg, encode_png, image_extension
from bench.formats.insightface import RecordIODataset, write_canonical
from bench.formats.lmdb_format import LMDBRecords
from bench.formats.memory import MemoryRecords
from bench.formats.recordio import IRHeader, RecordIOReader, RecordIOWriter, pack, unpack
from bench.formats.verification_bin import (
    check_pair_count,
    load_bin,
    load_bin_encoded,
    write_bin,
)

__all__ = [
    "MemoryRecords",
    "FORMATS",
    "Records",
    "DCFaceRecords",
    "ImageFolderRecords",
    "IRHeader",
    "LMDBRecords",
    "RecordIODataset",
    "RecordIOReader",
    "RecordIOWriter",
    "TrainingRecords",
    "check_pair_count",
    "decode_image",
    "detect_format",
    "encode_jpeg",
    "encode_png",
    "image_extension",
    "load_bin",
    "load_bin_encoded",
    "open_dataset",
    "pack",
    "unpack",
    "write_bin",
    "write_canonical",
]
