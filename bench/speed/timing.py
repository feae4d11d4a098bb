"""Device timing helpers of `bench speed`: synchronise, reset and read peak memory."""

from __future__ import annotations

import resource

import torch


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_memory(device: str) -> dict:
    """Peak GPU memory since the last reset, or the process's peak host RSS on CPU."""
    if device.startswith("cuda"):
        return {"kind": "gpu_max_allocated", "mb": torch.cuda.max_memory_allocated() / 2**20}
    # ru_maxrss is in KiB on Linux; process-wide and never reset, so an upper bound.
    return {"kind": "host_max_rss", "mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
