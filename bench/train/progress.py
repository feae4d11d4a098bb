"""Rank-0 output of a run: log.jsonl, the tqdm bar, TensorBoard when installed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from bench.core import io
from bench.train.dist import DistContext

log = logging.getLogger(__name__)


class Progress:
    """Rank-0 output: log.jsonl, a tqdm bar (img/s, loss, lr, ETA) and TensorBoard if present."""

    def __init__(self, run_dir: Path, context: DistContext, total: int, start: int, bar: bool):
        self.enabled = context.is_main
        self.jsonl = self.bar = self.board = None
        if not self.enabled:
            return
        self.jsonl = open(run_dir / "log.jsonl", "a", encoding="utf-8")
        if bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)
        self.board = _tensorboard(run_dir / "tensorboard")

    def write(self, record: dict) -> None:
        """Append one JSON record to log.jsonl (and TensorBoard scalars)."""
        if not self.enabled:
            return
        try:
            self.jsonl.write(json.dumps(record) + "\n")
            self.jsonl.flush()
        except OSError as error:  # a full disk: one message, the checkpoints so far are intact
            raise io.storage_error(Path(self.jsonl.name), error) from None
        if self.board is not None and record.get("type") in ("train", "eval"):
            prefix = record["type"] if record["type"] == "train" else f"eval/{record['target']}"
            for key in ("loss", "lr", "images_per_s", "acc"):
                if key in record:
                    self.board.add_scalar(f"{prefix}/{key}", record[key], record["step"])

    def advance(self, steps: int, loss: float, lr: float, images_per_s: float) -> None:
        """Move the bar and show the latest metrics."""
        if self.bar is not None:
            self.bar.update(steps)
            self.bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.4g}", img_s=f"{images_per_s:.0f}")

    def close(self) -> None:
        """Flush and close every output."""
        for thing in (self.bar, self.board, self.jsonl):
            if thing is not None:
                thing.close()


def _tensorboard(directory: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("TensorBoard is not installed: metrics go to log.jsonl only")
        return None
    return SummaryWriter(str(directory))
