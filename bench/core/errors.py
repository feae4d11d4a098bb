"""One exception type per kind of user mistake; every message names the file/key/record."""


class BenchError(Exception):
    """Base class: the CLI prints these as one clear line and exits non-zero."""


class ConfigError(BenchError):
    """A recipe/config file or a `key=value` override is wrong."""


class CatalogError(BenchError):
    """datasets.yaml is malformed, or a registry name is unknown."""


class DatasetError(BenchError):
    """A training or evaluation set is missing, incomplete or does not match the registry."""


class FormatError(BenchError):
    """A file on disk is not in the format it claims to be (corrupt record, bad pickle ...)."""


class TrainingError(BenchError):
    """Training cannot go on (non-finite loss, incompatible checkpoint ...)."""


class EvalError(BenchError):
    """An evaluation could not be carried out as requested."""


class ResultError(BenchError):
    """A result JSON is malformed or of an unsupported schema version."""


class StorageError(BenchError):
    """A file could not be written (full disk, no permission); the previous copy is intact."""


class BusyError(BenchError):
    """Another live process holds the run directory or prepared set (see bench.core.lock)."""
