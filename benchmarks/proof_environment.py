"""The environment section of gpu_proof.sh: GPU, driver, Python and package versions.

A missing package is recorded, not fatal: the proof says what the machine lacked."""

from __future__ import annotations

import importlib
import platform
import shutil
import subprocess
import sys
from datetime import datetime, timezone

PACKAGES = ("torch", "torchvision", "numpy", "PIL", "onnxruntime", "yaml", "tqdm", "jinja2",
            "pytest", "simplejpeg", "lmdb", "msgpack")  # fmt: skip


def main() -> int:
    print(datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if shutil.which("nvidia-smi"):
        done = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30)
        print(done.stdout or done.stderr)
    else:
        print("nvidia-smi: not available")
    print("python", sys.version.split()[0], platform.platform())
    for name in PACKAGES:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            print(name, "MISSING", error)
            continue
        print(name, getattr(module, "__version__", "?"))
    import torch

    print("cuda", torch.version.cuda, "available", torch.cuda.is_available(),
          "devices", torch.cuda.device_count())  # fmt: skip
    if torch.cuda.is_available():
        print("device", torch.cuda.get_device_name(0), "capability",
              torch.cuda.get_device_capability(0))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
