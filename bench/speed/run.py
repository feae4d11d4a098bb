"""`bench speed`: training step, data pipeline, end-to-end training, peak memory, eval time.

Everything runs on synthetic inputs so it needs no data set: the training step on in-memory
uint8 batches, the data pipeline and end-to-end training on a RecordIO of generated JPEGs
written with `bench.formats.write_canonical`, evaluation on random images with each set's real
pair count (or the real `.bin` when the data root has it). A short parity run trains the plain
path (fp32, NCHW, eager, foreach SGD) and the optimised one from the same weights on the same
batches and compares their loss curves. Tiny settings run on CPU, so CI exercises all of it.
"""

from __future__ import annotations

import logging
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from backbones import build_backbone
from bench.core.io import chunked
from bench.data.gpu_decode import BatchDecoder, decode_batch_gpu, select_decoder
from bench.data.loader import GlobalBatchSampler, make_loader, open_training_set
from bench.formats import RecordIODataset, encode_jpeg, write_canonical
from bench.speed.evaluation import measure_evaluation
from bench.speed.settings import AMP_DTYPES, PARITY_TOLERANCE, SpeedSettings
from bench.speed.timing import peak_memory, reset_peak, sync
from bench.train.model import TrainModule
from bench.train.step import optimizer_step, to_model_input
from losses import build_head

log = logging.getLogger(__name__)


# --- model, step ------------------------------------------------------------------------------
def build_model(settings: SpeedSettings) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Backbone + margin head on the device, seeded (so two calls give identical weights)."""
    torch.manual_seed(settings.seed)
    model = build_backbone(
        settings.backbone, width=settings.width, embedding_size=settings.embedding_size
    )
    head = build_head(
        "arcface", settings.embedding_size, settings.num_classes, sample_rate=settings.sample_rate
    )
    model, head = model.to(settings.device).train(), head.to(settings.device).train()
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, head


def make_step(
    model: torch.nn.Module, head: torch.nn.Module, settings: SpeedSettings
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """One recipe step (SGD 0.9 / wd 5e-4, grad clip 5) -> detached loss; no host sync."""
    params = [p for p in [*model.parameters(), *head.parameters()] if p.requires_grad]
    kind = "fused" if settings.fused_sgd else "foreach"
    optimizer = torch.optim.SGD(params, lr=0.02, momentum=0.9, weight_decay=5e-4, **{kind: True})
    amp_dtype = AMP_DTYPES[settings.amp]
    device = torch.device(settings.device)
    device_type = device.type
    scaler = torch.amp.GradScaler(device_type, enabled=settings.amp == "fp16")
    forward = model
    if settings.compile:
        forward = torch.compile(model, mode=settings.compile_mode)
    train_module = TrainModule(forward, head)
    clipped = [p for p in model.parameters() if p.requires_grad]  # the recipe clips the backbone

    def step(images: torch.Tensor, labels: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        # The trainer's own on-device preprocessing and optimiser step: timed code = trained code.
        x = to_model_input(images, flip, device, settings.channels_last)
        return optimizer_step(train_module, x, labels, optimizer, scaler, clipped, 5.0, amp_dtype)

    return step


def random_batches(settings: SpeedSettings, count: int) -> list[tuple[torch.Tensor, ...]]:
    """`count` seeded in-memory (uint8 NHWC images, labels, flip mask) batches on the device."""
    generator = torch.Generator().manual_seed(settings.seed + 1)
    shape = (settings.batch_size, 112, 112, 3)
    batches = []
    for _ in range(count):
        images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
        labels = torch.randint(0, settings.num_classes, (settings.batch_size,), generator=generator)
        flip = torch.rand(settings.batch_size, generator=generator) < 0.5
        batches.append(tuple(t.to(settings.device) for t in (images, labels, flip)))
    return batches


def measure_train_step(settings: SpeedSettings) -> tuple[dict, torch.nn.Module]:
    """Training step alone on in-memory tensors: img/s, ms/step, peak memory."""
    model, head = build_model(settings)
    step = make_step(model, head, settings)
    batches = random_batches(settings, min(4, settings.steps))
    for index in range(settings.warmup):  # includes torch.compile's first-call compilation
        step(*batches[index % len(batches)])
    sync(settings.device)
    reset_peak(settings.device)
    start = time.perf_counter()
    losses = [step(*batches[index % len(batches)]) for index in range(settings.steps)]
    sync(settings.device)
    elapsed = time.perf_counter() - start
    images = settings.steps * settings.batch_size
    section = {
        "images_per_s": images / elapsed,
        "ms_per_step": 1000 * elapsed / settings.steps,
        "steps": settings.steps,
        "batch_size": settings.batch_size,
        "seconds": elapsed,
        "loss_first": float(losses[0]),
        "loss_last": float(losses[-1]),
        "peak_memory": peak_memory(settings.device),
    }
    return section, model


# --- data -------------------------------------------------------------------------------------
def write_synthetic_recordio(out_dir: Path, settings: SpeedSettings, unique: int = 256) -> Path:
    """A canonical RecordIO of `records` face-sized JPEGs (smooth noise, ~face-like byte sizes)."""
    rng = np.random.default_rng(settings.seed)
    encoded = []
    for _ in range(min(unique, settings.records)):
        # Low-frequency noise upsampled to 112x112 compresses like a face crop, not like noise.
        coarse = rng.integers(0, 256, (14, 14, 3), dtype=np.uint8)
        image = np.kron(coarse, np.ones((8, 8, 1), dtype=np.uint8))
        image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
        encoded.append(encode_jpeg(image, quality=90))
    classes = min(settings.num_classes, settings.records)
    items = (
        (encoded[i % len(encoded)], i * classes // settings.records)
        for i in range(settings.records)
    )
    write_canonical(out_dir, items, classes)
    return out_dir


def training_loader(data_dir: Path, settings: SpeedSettings, encoded: bool = False) -> Iterator:
    """Endless batches {images, labels, flips} from bench.data.loader's loader, as training reads them.

    `encoded`: the workers only read records and the batch holds JPEG bytes (GPU decoding).
    """
    records = open_training_set(data_dir)
    sampler = GlobalBatchSampler(len(records), settings.batch_size, 0, 1, settings.seed)
    pin = settings.device.startswith("cuda")
    loader = make_loader(records, sampler, settings.workers, settings.seed, pin, encoded)
    return iter(loader)


def cpu_decoder(settings: SpeedSettings) -> str:
    """The decoder a DataLoader worker uses (workers decode on the CPU even with --decoder gpu)."""
    return select_decoder("auto" if settings.decoder == "gpu" else settings.decoder, "cpu")


def measure_data_pipeline(data_dir: Path, settings: SpeedSettings) -> dict:
    """Raw record reads/s, decodes/s in one process (= per worker), loader images/s, GPU decode."""
    records = RecordIODataset(data_dir)
    count = min(len(records), max(settings.batch_size * 4, 256))
    start = time.perf_counter()
    buffers = [records.encoded(index)[0] for index in range(count)]
    read_s = time.perf_counter() - start
    backend = cpu_decoder(settings)
    decoder = BatchDecoder(backend, "cpu")
    start = time.perf_counter()
    for batch in chunked(buffers, settings.batch_size):
        decoder(batch)
    decode_s = time.perf_counter() - start
    loader_section = _measure_loader(data_dir, settings)
    section = {
        "records_per_s": count / read_s,
        "decoded_images_per_s_per_worker": count / decode_s,
        "cpu_decoder": backend,
        "mean_record_bytes": sum(map(len, buffers)) / count,
        **loader_section,
        "gpu_decode_images_per_s": None,
    }
    if select_decoder(settings.decoder, settings.device) == "gpu":
        gpu = BatchDecoder("gpu", settings.device)
        gpu(buffers[: settings.batch_size])  # warm-up: nvJPEG handle creation
        sync(settings.device)
        start = time.perf_counter()
        for batch in chunked(buffers, settings.batch_size):
            gpu(batch)
        sync(settings.device)
        section["gpu_decode_images_per_s"] = count / (time.perf_counter() - start)
    return section


def _measure_loader(data_dir: Path, settings: SpeedSettings) -> dict:
    """DataLoader throughput alone: decoded uint8 batches moved to the device, no model."""
    batches = training_loader(data_dir, settings)
    next(batches)  # worker start-up is not throughput
    start = time.perf_counter()
    for _ in range(settings.steps):
        next(batches)["images"].to(settings.device, non_blocking=True)
    sync(settings.device)
    total = settings.steps * settings.batch_size / (time.perf_counter() - start)
    return {
        "workers": settings.workers,
        "loader_images_per_s": total,
        "loader_images_per_s_per_worker": total / max(settings.workers, 1),
    }


def measure_end_to_end(data_dir: Path, settings: SpeedSettings) -> dict:
    """Loader -> device (decode there with --decoder gpu) -> step: training img/s."""
    model, head = build_model(settings)
    step = make_step(model, head, settings)
    gpu = select_decoder(settings.decoder, settings.device) == "gpu"
    batches = training_loader(data_dir, settings, encoded=gpu)

    def run_one() -> torch.Tensor:
        batch = next(batches)
        images = batch["images"]
        if gpu:  # workers shipped JPEG bytes: nvJPEG decodes the batch on the device
            images = decode_batch_gpu(images, settings.device)
        return step(images, batch["labels"].to(settings.device, non_blocking=True), batch["flips"])

    for _ in range(settings.warmup):
        run_one()
    sync(settings.device)
    reset_peak(settings.device)
    start = time.perf_counter()
    losses = [run_one() for _ in range(settings.steps)]
    sync(settings.device)
    elapsed = time.perf_counter() - start
    return {
        "images_per_s": settings.steps * settings.batch_size / elapsed,
        "ms_per_step": 1000 * elapsed / settings.steps,
        "steps": settings.steps,
        "seconds": elapsed,
        "decoder": "gpu" if gpu else cpu_decoder(settings),
        "loss_last": float(losses[-1]),
        "peak_memory": peak_memory(settings.device),
    }


# --- parity -----------------------------------------------------------------------------------
def plain_settings(settings: SpeedSettings) -> SpeedSettings:
    """The reference path: fp32, NCHW, eager, foreach SGD."""
    return replace(settings, amp="none", channels_last=False, compile=False, fused_sgd=False)


def measure_parity(settings: SpeedSettings) -> dict:
    """Loss curves of the plain and the optimised path from the same weights and batches."""
    steps = max(settings.parity_steps, 1)
    parity = replace(settings, batch_size=min(settings.batch_size, 64))
    batches = random_batches(parity, 4)  # a few batches revisited: the loss must go down
    curves = {}
    for label, variant in (("plain", plain_settings(parity)), ("optimised", parity)):
        model, head = build_model(variant)  # seeded: identical initial weights
        step = make_step(model, head, variant)
        curves[label] = [float(step(*batches[i % len(batches)])) for i in range(steps)]
    plain, fast = np.array(curves["plain"]), np.array(curves["optimised"])
    gap = float(np.max(np.abs(plain - fast) / np.maximum(np.abs(plain), 1e-6)))
    tolerance = PARITY_TOLERANCE[settings.amp]
    return {
        "steps": steps,
        "batch_size": parity.batch_size,
        "plain": curves["plain"],
        "optimised": curves["optimised"],
        "max_relative_gap": gap,
        "tolerance": tolerance,
        "ok": bool(np.all(np.isfinite(fast)) and gap <= tolerance),
    }


# --- the whole run ----------------------------------------------------------------------------
def environment(settings: SpeedSettings) -> dict:
    """Hardware and software the figures were measured on."""
    device_name = platform.processor() or platform.machine()
    if settings.device.startswith("cuda"):
        device_name = torch.cuda.get_device_name(torch.device(settings.device))
    return {
        "device": settings.device,
        "device_name": device_name,
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "hostname": platform.node(),
    }


def run_speed(settings: SpeedSettings, work_dir: Path | None = None) -> dict:
    """Measure every section and return the JSON-ready report."""
    settings.validate()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    report: dict = {"schema_version": 1, "kind": "facebench-speed"}
    report["settings"] = {**asdict(settings), "eval_sets": list(settings.eval_sets)}
    report["environment"] = environment(settings)
    with tempfile.TemporaryDirectory(dir=work_dir) as scratch:
        log.info("writing a synthetic RecordIO of %d images", settings.records)
        data_dir = write_synthetic_recordio(Path(scratch), settings)
        log.info("measuring the training step alone")
        report["train_step"], model = measure_train_step(settings)
        log.info("measuring the data pipeline")
        report["data_pipeline"] = measure_data_pipeline(data_dir, settings)
        log.info("measuring end-to-end training")
        report["end_to_end"] = measure_end_to_end(data_dir, settings)
    report["peak_memory"] = {
        "train_step": report["train_step"]["peak_memory"],
        "end_to_end": report["end_to_end"]["peak_memory"],
    }
    log.info("measuring evaluation")
    report["evaluation"] = measure_evaluation(model, settings)
    log.info("checking loss parity of the optimised path")
    report["parity"] = measure_parity(settings)
    return report
