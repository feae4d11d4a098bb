"""The result JSON (schema_version 1): build, validate, atomic write, read; compact pair scores.

One JSON per evaluated model (docs/ARCHITECTURE.md "result JSON"). Per-pair distances are stored
as base64 of little-endian float32 and the labels as base64 of np.packbits, so a 7000-pair set
costs ~40 KB and every metric can be recomputed from the file. NaN metrics are stored as null."""

from __future__ import annotations

import base64
import datetime
import json
import math
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

import bench
from bench.core import io, paths
from bench.core.errors import ResultError

SCHEMA_VERSION = 1
KIND = "facebench-result"
MODEL_FORMATS = ("checkpoint", "state_dict", "onnx", "torchscript")  # state_dict: model-zoo weights
# key -> allowed types of each per-target entry (None = null allowed, for NaN-valued rates).
TARGET_FIELDS: dict[str, tuple] = {
    "pairs": (int,),
    "file_sha256": (str,),
    "acc": (float, int),
    "acc_std": (float, int),
    "threshold": (float, int),
    "xnorm": (float, int),
    "val": (float, int, type(None)),
    "val_std": (float, int, type(None)),
    "far": (float, int, type(None)),
    "auc": (float, int),
    "eer": (float, int),
    "tar_at_far": (dict,),
    "roc": (dict,),
    "fold_thresholds": (list,),
    "scores_b64": (str,),
    "issame_b64": (str,),
}
# Metrics that are fractions: finite and within [0, 1] (None allowed where TARGET_FIELDS says so).
UNIT_FIELDS = ("acc", "acc_std", "val", "val_std", "far", "auc", "eer")
# Metrics that only have to be finite and not negative (distances, norms).
NON_NEGATIVE_FIELDS = ("threshold", "xnorm")
MEAN_TOLERANCE = 1e-6  # mean_acc against the mean of the target accuracies


def encode_scores(scores: np.ndarray) -> str:
    """Per-pair distances -> base64 of little-endian float32."""
    return base64.b64encode(np.asarray(scores, dtype="<f4").tobytes()).decode("ascii")


def decode_scores(text: str) -> np.ndarray:
    """base64 little-endian float32 -> float32 array."""
    return np.frombuffer(base64.b64decode(text, validate=True), dtype="<f4").astype(np.float32)


def encode_issame(issame: np.ndarray) -> str:
    """Boolean labels -> base64 of np.packbits (big bit order, zero-padded to a byte)."""
    return base64.b64encode(np.packbits(np.asarray(issame, dtype=bool)).tobytes()).decode("ascii")


def decode_issame(text: str, pairs: int) -> np.ndarray:
    """base64 packed bits -> bool array of length `pairs`."""
    packed = np.frombuffer(base64.b64decode(text, validate=True), dtype=np.uint8)
    if packed.size != (pairs + 7) // 8:
        raise ValueError(f"{packed.size} packed bytes cannot hold exactly {pairs} labels")
    return np.unpackbits(packed, count=pairs).astype(bool)


def target_entry(metrics: dict, issame: np.ndarray, xnorm: float, file_sha256: str) -> dict:
    """One `targets.<name>` entry from bench.eval.protocol.verify's dict (scores become base64)."""
    entry = {key: value for key, value in metrics.items() if key != "scores"}
    entry.update(
        xnorm=float(xnorm),
        file_sha256=file_sha256,
        scores_b64=encode_scores(metrics["scores"]),
        issame_b64=encode_issame(issame),
    )
    return _nan_to_none(entry)


def _nan_to_none(value: Any) -> Any:
    """Strict JSON has no NaN: store undefined rates as null."""
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def build_result(
    model: dict,
    targets: dict[str, dict],
    run: dict | None = None,
    device: str | None = None,
    warnings: list[str] | None = None,
    ijb: dict[str, dict] | None = None,
) -> dict:
    """A complete, validated result dict (model info, per-target entries, mean, provenance,
    `warnings`: what makes the numbers suspect, e.g. degenerate embeddings; `ijb`: IJB-B/IJB-C
    1:1 and 1:N metrics per package, bench.eval.ijb, kept apart from the .bin targets' mean)."""
    result = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "model": dict(model),
        "run": run,
        "targets": targets,
        "mean_acc": float(np.mean([entry["acc"] for entry in targets.values()]))
        if targets
        else 0.0,
        "provenance": provenance(device, data=(run or {}).get("data")),
        "warnings": list(warnings or []),
    }
    if ijb:
        result["ijb"] = ijb
    validate_result(result)
    return result


def provenance(device: str | None = None, data: dict | None = None) -> dict:
    """Where and with what a result was produced; `data`: the prepared training set's identity
    (its content_sha256 tells two users whether they trained on the same bytes)."""
    return {
        **({"data": dict(data)} if data else {}),
        "git_sha": git_sha(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "hardware": hardware_description(device),
        "software": {
            "python": platform.python_version(),
            "torch": _version("torch"),
            "numpy": np.__version__,
            "onnxruntime": _version("onnxruntime"),
            "bench": bench.__version__,
        },
    }


def git_sha() -> str:
    """HEAD of the repository this package lives in, or "unknown" (an installed package)."""
    root = paths.repository_root()
    if root is None:
        return "unknown"
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def hardware_description(device: str | None = None) -> str:
    """CPU model and core count, plus the GPU name when evaluating on CUDA."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    text = f"{cpu} ({os.cpu_count()} cores)"
    if device and device.startswith("cuda"):
        import torch  # only here: results.py stays importable without loading torch

        text += f"; GPU {torch.cuda.get_device_name(torch.device(device))}"
    return text


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def validate_result(result: Any, source: str = "<result>") -> dict:
    """Check a result dict against schema_version 1; ResultError naming `source` and the key."""
    if not isinstance(result, dict):
        raise ResultError(f"{source}: a result must be a JSON object, got {type(result).__name__}")
    if result.get("kind") != KIND:
        raise ResultError(f"{source}: 'kind' is {result.get('kind')!r}, expected {KIND!r}")
    if result.get("schema_version") != SCHEMA_VERSION:
        raise ResultError(
            f"{source}: schema_version {result.get('schema_version')!r} is not supported "
            f"(this facebench reads {SCHEMA_VERSION}); re-run `bench eval` to regenerate it"
        )
    for key, kind in (("model", dict), ("targets", dict), ("provenance", dict)):
        _require(result, key, (kind,), source)
    _require(result, "mean_acc", (float, int), source)
    _require(result, "run", (dict, type(None)), source)
    for key in ("path", "sha256", "format"):
        _require(result["model"], key, (str,), f"{source}: model")
    if result["model"]["format"] not in MODEL_FORMATS:
        raise ResultError(f"{source}: model.format must be one of {MODEL_FORMATS}")
    if not result["targets"]:
        raise ResultError(f"{source}: 'targets' is empty; a result needs at least one target")
    for name, entry in result["targets"].items():
        _validate_target(entry, f"{source}: targets.{name}")
    for key in ("git_sha", "created", "hostname", "hardware"):
        _require(result["provenance"], key, (str,), f"{source}: provenance")
    _require(result["provenance"], "software", (dict,), f"{source}: provenance")
    _check_mean(result, source)
    warnings = result.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(item, str) for item in warnings):
        raise ResultError(f"{source}: 'warnings' must be a list of strings")
    if result["run"] is not None:
        _validate_run(result["run"], f"{source}: run")
    for name, entry in result.get("ijb", {}).items():
        _validate_ijb(entry, f"{source}: ijb.{name}")
    return result


def _validate_ijb(entry: Any, where: str) -> None:
    """An IJB entry: TAR@FAR and AUC (1:1), top-k per gallery and mean (1:N), as fractions."""
    if not isinstance(entry, dict):
        raise ResultError(f"{where}: must be an object")
    for key in ("verification", "identification", "flags"):
        _require(entry, key, (dict,), where)
    values = dict(entry["verification"].get("tar_at_far", {}))
    values["auc"] = entry["verification"].get("auc")
    mean = entry["identification"].get("mean", {})
    values.update({key: mean.get(key) for key in ("top1", "top5", "top10")})
    for key, value in values.items():
        _fraction(value, f"{where}: {key}")


def _check_mean(result: dict, source: str) -> None:
    """mean_acc is a fraction and the mean of the target accuracies (a ranked number)."""
    mean = _fraction(result["mean_acc"], f"{source}: mean_acc")
    expected = float(np.mean([entry["acc"] for entry in result["targets"].values()]))
    if abs(mean - expected) > MEAN_TOLERANCE:
        raise ResultError(
            f"{source}: mean_acc {mean!r} is not the mean of the target accuracies "
            f"({expected!r}); the file was edited or is corrupt: re-run `bench eval`"
        )


def _validate_run(run: Any, where: str) -> None:
    """The training-run block the report groups by: names are strings, the seed an integer."""
    if not isinstance(run, dict):
        raise ResultError(f"{where}: must be an object or null")
    for key in ("dataset", "recipe", "recipe_hash"):
        if run.get(key) is not None and not isinstance(run[key], str):
            raise ResultError(f"{where}: key {key!r} must be a string, got {run[key]!r}")
    seed = run.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ResultError(f"{where}: 'seed' must be a non-negative integer or null, got {seed!r}")


def _fraction(value: Any, where: str) -> float:
    """A finite number within [0, 1], or ResultError naming `where`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultError(f"{where}: must be a number, got {value!r}")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ResultError(f"{where}: {value!r} is impossible (a fraction must be within [0, 1])")
    return float(value)


def _check_ranges(entry: dict, where: str) -> None:
    """Every number of a target entry is finite and within its range; counts are positive."""
    if entry["pairs"] < 1:
        raise ResultError(f"{where}: 'pairs' must be a positive count, got {entry['pairs']!r}")
    for key in UNIT_FIELDS:
        if entry[key] is not None:
            _fraction(entry[key], f"{where}.{key}")
    for key in NON_NEGATIVE_FIELDS:
        if not math.isfinite(entry[key]) or entry[key] < 0:
            raise ResultError(f"{where}.{key}: {entry[key]!r} must be finite and >= 0")
    for name, value in entry["tar_at_far"].items():
        if value is not None:
            _fraction(value, f"{where}.tar_at_far.{name}")
    folds = entry.get("fold_accuracies", [])
    if not isinstance(folds, list):
        raise ResultError(f"{where}.fold_accuracies: must be a list")
    for index, value in enumerate(folds):
        _fraction(value, f"{where}.fold_accuracies[{index}]")
    for index, value in enumerate(entry["fold_thresholds"]):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResultError(f"{where}.fold_thresholds[{index}]: must be a number")
        if not math.isfinite(value):
            raise ResultError(f"{where}.fold_thresholds[{index}]: {value!r} is not finite")
    for key in ("fpr", "tpr"):
        for index, value in enumerate(entry["roc"][key]):
            if value is not None:
                _fraction(value, f"{where}.roc.{key}[{index}]")


def _validate_target(entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise ResultError(f"{where}: must be an object")
    for key, kinds in TARGET_FIELDS.items():
        _require(entry, key, kinds, where)
    for key in ("fpr", "tpr"):
        _require(entry["roc"], key, (list,), f"{where}.roc")
    _check_ranges(entry, where)
    try:
        scores = decode_scores(entry["scores_b64"])
        decode_issame(entry["issame_b64"], entry["pairs"])
    except (ValueError, TypeError) as error:
        raise ResultError(f"{where}: scores_b64/issame_b64 do not decode ({error})") from error
    if scores.size != entry["pairs"]:
        raise ResultError(
            f"{where}: scores_b64 holds {scores.size} scores for {entry['pairs']} pairs"
        )
    if not np.isfinite(scores).all():
        raise ResultError(f"{where}: scores_b64 holds non-finite distances")


def _require(mapping: dict, key: str, kinds: tuple, where: str) -> None:
    if key not in mapping:
        raise ResultError(f"{where}: missing key {key!r}")
    value = mapping[key]
    # bool is an int subclass; a bool where a number belongs is a bug in the writer.
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = "/".join("null" if kind is type(None) else kind.__name__ for kind in kinds)
        raise ResultError(f"{where}: key {key!r} must be {names}, got {type(value).__name__}")


def write_result(path: str | os.PathLike, result: dict) -> Path:
    """Validate and write `result` atomically (temporary file + os.replace)."""
    path = Path(path)
    validate_result(result, str(path))
    return io.atomic_write_text(path, json.dumps(result, indent=1, allow_nan=False) + "\n")


def read_result(path: str | os.PathLike) -> dict:
    """Load and validate a result JSON."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ResultError(f"result file {path} not found") from None
    except OSError as error:
        raise ResultError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        result = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as error:
        raise ResultError(
            f"{path}: not UTF-8 text (byte {error.start}); re-run `bench eval`"
        ) from None
    except json.JSONDecodeError as error:
        raise ResultError(f"{path}: not valid JSON ({error})") from None
    except RecursionError:
        raise ResultError(f"{path}: nested too deeply to be a result JSON") from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        raise ResultError(f"{path}: not a valid result JSON ({error})") from None
    return validate_result(result, str(path))


def _refuse_constant(name: str) -> None:
    """Strict JSON: NaN/Infinity are not numbers a result may hold (NaN is stored as null)."""
    raise ValueError(f"{name} is not allowed (a metric must be finite; NaN is stored as null)")
