"""Sampler, flips, dataset and on-device preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.data.loader import (
    FaceRecords,
    GlobalBatchSampler,
    flip_decisions,
    make_loader,
    open_training_set,
)
from bench.formats import encode_png, write_canonical
from bench.train.step import to_model_input

SIZE, GLOBAL = 53, 8


def _global_batches(world: int, seed: int = 3, start: int = 0, total: int = 20) -> list[list]:
    """Concatenate the ranks' slices of every step into the global batch."""
    per_rank = [
        list(GlobalBatchSampler(SIZE, GLOBAL, rank, world, seed, True, start, total))
        for rank in range(world)
    ]
    return [sum(slices, []) for slices in zip(*per_rank, strict=True)]


def test_rank_slices_are_disjoint_and_world_size_independent() -> None:
    one, two, four = _global_batches(1), _global_batches(2), _global_batches(4)
    assert one == two == four
    assert len(one) == 20 and all(len(batch) == GLOBAL for batch in one)
    ranks = [list(GlobalBatchSampler(SIZE, GLOBAL, r, 2, 3, True, 0, 20)) for r in range(2)]
    for a, b in zip(*ranks, strict=True):
        assert len(a) == len(b) == GLOBAL // 2
        assert not {i for i, _ in a} & {i for i, _ in b}


def test_epoch_is_a_permutation_without_the_incomplete_batch() -> None:
    steps_per_epoch = SIZE // GLOBAL
    epoch0 = [i for batch in _global_batches(1)[:steps_per_epoch] for i, _ in batch]
    assert len(set(epoch0)) == len(epoch0) == steps_per_epoch * GLOBAL
    epoch1 = [
        i for batch in _global_batches(1)[steps_per_epoch : 2 * steps_per_epoch] for i, _ in batch
    ]
    assert epoch0 != epoch1  # a fresh order each epoch


def test_resume_position_skips_exactly() -> None:
    full = _global_batches(2, total=20)
    assert _global_batches(2, start=9, total=20) == full[9:]
    assert _global_batches(1, start=9, total=20) == full[9:]
    assert len(GlobalBatchSampler(SIZE, GLOBAL, 0, 2, 3, True, 9, 20)) == 11


def test_flips_are_a_function_of_seed_epoch_index() -> None:
    flips = flip_decisions(3, 1, SIZE)
    assert np.array_equal(flips, flip_decisions(3, 1, SIZE))
    assert not np.array_equal(flips, flip_decisions(3, 2, SIZE))
    assert 0.2 < flips.mean() < 0.8
    steps_per_epoch = SIZE // GLOBAL
    for index, flip in _global_batches(2)[steps_per_epoch]:  # first step of epoch 1
        assert flip == flips[index]
    no_flip = GlobalBatchSampler(SIZE, GLOBAL, 0, 1, 3, False, 0, 3)
    assert not any(f for batch in no_flip for _, f in batch)


def test_to_model_input_normalises_flips_and_lays_out() -> None:
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (3, 112, 112, 3), dtype=np.uint8))
    flips = torch.tensor([False, True, False])
    x = to_model_input(images, flips, torch.device("cpu"), channels_last=True)
    reference = images.numpy().astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0
    reference[1] = reference[1][:, :, ::-1]
    np.testing.assert_allclose(x.numpy(), reference, atol=1e-6)
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_dataset_and_loader_over_a_canonical_set(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pictures = [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(6)]
    labels = [0, 0, 1, 1, 2, 2]
    write_canonical(
        tmp_path, [(encode_png(p), lab) for p, lab in zip(pictures, labels, strict=True)], 3
    )
    records = open_training_set(tmp_path)
    image, label, flip = FaceRecords(records)[(3, True)]
    assert np.array_equal(image.numpy(), pictures[3]) and label == 1 and flip is True
    raw, _, _ = FaceRecords(records, encoded=True)[(3, False)]
    assert raw == records.encoded(3)[0]
    sampler = GlobalBatchSampler(len(records), 4, 0, 1, 0, True, 0, 1)
    batch = next(iter(make_loader(records, sampler, 0, 0, pin_memory=False)))
    assert batch["images"].shape == (4, 112, 112, 3) and batch["images"].dtype == torch.uint8
    (expected,) = list(GlobalBatchSampler(len(records), 4, 0, 1, 0, True, 0, 1))
    assert batch["labels"].tolist() == [labels[i] for i, _ in expected]
    assert batch["flips"].tolist() == [f for _, f in expected]
    for row, (index, _) in enumerate(expected):
        assert np.array_equal(batch["images"][row].numpy(), pictures[index])


def test_bad_split_is_rejected() -> None:
    with pytest.raises(ValueError):
        GlobalBatchSampler(SIZE, 6, 0, 4, 0)
