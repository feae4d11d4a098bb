"""Training data: the prepared RecordIO as a Dataset, a seeded world-size-independent sampler and
the DataLoader (the on-device preprocessing is bench.train.step.to_model_input).

Why this shape: every global step's samples and flips are a pure function of (seed, epoch,
position), so a 1-process and an N-process run see the same global batches, and a resume (with
any process count) continues at the exact sample where the checkpoint was taken. Decoding runs
in DataLoader workers; the batch travels to the device as uint8 NHWC (4x less than float32) and
all float work happens there.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bench.core.errors import FormatError
from bench.formats import decode_image, open_dataset
from bench.formats.base import TrainingRecords

log = logging.getLogger(__name__)
TRAINING_IMAGE_SHAPE = (112, 112, 3)  # height, width, RGB: what the backbones take


class FaceRecords(Dataset):
    """Items (index, flip) -> (uint8 HWC tensor, or the stored encoded bytes, label, flip)."""

    def __init__(self, records: TrainingRecords, encoded: bool = False) -> None:
        self.records = records
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: tuple[int, bool]) -> tuple[torch.Tensor | bytes, int, bool]:
        index, flip = item
        buf, label = self.records.encoded(index)
        if self.encoded:
            return buf, label, flip  # decoded on the device by bench.data.gpu_decode
        image = decode_image(buf, source=self.records.describe(index))
        check_training_image(image, self.records.describe(index))
        if not image.flags.writeable:  # torch tensors must own writable memory
            image = image.copy()
        return torch.from_numpy(image), label, flip


def check_training_image(image: np.ndarray, source: str) -> None:
    """FormatError unless `image` is a 112x112 RGB crop (a batch of mixed sizes cannot stack)."""
    if image.shape != TRAINING_IMAGE_SHAPE:
        raise FormatError(
            f"{source}: image is {'x'.join(map(str, image.shape))}, training takes aligned "
            f"{'x'.join(map(str, TRAINING_IMAGE_SHAPE))} crops; `bench check` lists every such "
            "image: re-align the source and prepare it again"
        )


def open_training_set(data_dir: Path) -> TrainingRecords:
    """The prepared (canonical RecordIO) training set in `data_dir`."""
    return open_dataset(data_dir)


def flip_decisions(seed: int, epoch: int, size: int) -> np.ndarray:
    """bool (size,): whether sample i is mirrored in `epoch` — a pure function of (seed, epoch, i)."""
    rng = np.random.default_rng([seed, epoch, 1])
    return rng.integers(0, 2, size=size, dtype=np.uint8).astype(bool)


def epoch_permutation(seed: int, epoch: int, size: int) -> np.ndarray:
    """The order in which `epoch` visits the data set (same on every rank and world size)."""
    return np.random.default_rng([seed, epoch, 0]).permutation(size)


class GlobalBatchSampler:
    """Yields this rank's slice of every global batch, as lists of (index, flip).

    Global batch g of an epoch is perm[g*G:(g+1)*G] (the last incomplete one dropped); rank r
    takes positions [r*B, (r+1)*B) of it with B = G / world. Iteration starts at `start_step`
    (a global step count), so a resume never replays data.
    """

    def __init__(
        self,
        size: int,
        global_batch: int,
        rank: int,
        world_size: int,
        seed: int,
        flip: bool = True,
        start_step: int = 0,
        total_steps: int | None = None,
    ) -> None:
        if global_batch % world_size or not 0 <= rank < world_size:
            raise ValueError(f"bad split: global batch {global_batch}, rank {rank}/{world_size}")
        self.size, self.global_batch = size, global_batch
        self.rank, self.world_size = rank, world_size
        self.local_batch = global_batch // world_size
        self.seed, self.flip = seed, flip
        self.steps_per_epoch = size // global_batch
        self.start_step = start_step
        self.total_steps = total_steps

    def __len__(self) -> int:
        end = self.total_steps if self.total_steps is not None else self.start_step
        return max(0, end - self.start_step)

    def __iter__(self) -> Iterator[list[tuple[int, bool]]]:
        if self.steps_per_epoch < 1:
            return
        step, epoch = self.start_step, self.start_step // self.steps_per_epoch
        while self.total_steps is None or step < self.total_steps:
            order = epoch_permutation(self.seed, epoch, self.size)
            flips = flip_decisions(self.seed, epoch, self.size) if self.flip else None
            for batch in range(step - epoch * self.steps_per_epoch, self.steps_per_epoch):
                if self.total_steps is not None and step >= self.total_steps:
                    return
                start = batch * self.global_batch + self.rank * self.local_batch
                indices = order[start : start + self.local_batch]
                mirror = flips[indices] if flips is not None else np.zeros(len(indices), bool)
                yield [(int(i), bool(m)) for i, m in zip(indices, mirror, strict=True)]
                step += 1
            epoch += 1


def collate(items: list[tuple[torch.Tensor | bytes, int, bool]]) -> dict:
    """Stack decoded images to uint8 NHWC (encoded mode: a list of the stored bytes)."""
    images, labels, flips = zip(*items, strict=True)
    stacked = list(images) if isinstance(images[0], bytes) else torch.stack(images)
    return {
        "images": stacked,
        "labels": torch.tensor(labels, dtype=torch.int64),
        "flips": torch.tensor(flips, dtype=torch.bool),
    }


def seed_worker(worker_id: int) -> None:
    """Seed numpy/python/torch in a worker from the loader's per-worker torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    records: TrainingRecords,
    sampler: GlobalBatchSampler,
    num_workers: int,
    seed: int,
    pin_memory: bool,
    encoded: bool = False,
) -> DataLoader:
    """A DataLoader over this rank's slices; workers seeded from (seed, rank)."""
    generator = torch.Generator()
    generator.manual_seed(seed * 1000 + sampler.rank)
    return DataLoader(
        FaceRecords(records, encoded=encoded),
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        worker_init_fn=seed_worker if num_workers else None,
        generator=generator,
        persistent_workers=False,
        prefetch_factor=4 if num_workers else None,
    )
