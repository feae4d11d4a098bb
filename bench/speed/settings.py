"""What one `bench speed` run measures with (recorded in its JSON), and the values it accepts."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.catalog import STANDARD_TARGETS
from bench.core.errors import ConfigError

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
PARITY_TOLERANCE = {"none": 1e-3, "bf16": 0.05, "fp16": 0.05}  # max relative loss gap


@dataclass(frozen=True)
class SpeedSettings:
    """Everything one `bench speed` run measures with; recorded in the JSON."""

    device: str = "cpu"
    backbone: str = "ir50"
    width: int = 64
    embedding_size: int = 512
    num_classes: int = 10_000
    batch_size: int = 256
    steps: int = 50
    warmup: int = 10
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "default"
    fused_sgd: bool = False
    sample_rate: float = 1.0
    workers: int = 8
    decoder: str = "auto"
    records: int = 8192
    eval_sets: tuple[str, ...] = STANDARD_TARGETS
    eval_pairs: int | None = None
    eval_batch: int = 512
    parity_steps: int = 20
    data_root: str | None = None
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 = torch's default

    def validate(self) -> None:
        """ConfigError on values that cannot be measured."""
        if self.amp not in AMP_DTYPES:
            raise ConfigError(f"--amp {self.amp!r}: choose one of {', '.join(AMP_DTYPES)}")
        if min(self.steps, self.batch_size, self.records, self.eval_batch) < 1:
            raise ConfigError("--steps, --batch-size, --records and --eval-batch must be >= 1")
        if self.records < self.batch_size:
            raise ConfigError(f"--records {self.records} must be >= --batch-size {self.batch_size}")
        if self.eval_pairs is not None and self.eval_pairs < 10:
            raise ConfigError("--eval-pairs must be >= 10 (the protocol has 10 folds)")
        if self.channels_last and not self.device.startswith("cuda"):
            # torch's CPU (oneDNN) backward of a channels_last 1x1 stride-2 conv segfaults for
            # some narrow channel counts (seen with torch 2.13, e.g. 8 -> 16 at 56x56).
            raise ConfigError("--channels-last is for cuda only: on CPU its backward can crash")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(
                f"--device {self.device}: torch sees no CUDA device; use --device cpu"
            )
