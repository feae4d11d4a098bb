"""How many planted people does the leakage audit detect? (the figures in README's Diagnostics)

Builds demo_diverse in memory (500 identities x 4 images, as `make demo` diagnoses it), plants new
photos of the K most frequent demo_random people as extra identities, and audits demo_random for
K = 0, 15, 50 with a trained model. After `make demo`:

    .venv/bin/python benchmarks/leak_power.py runs/demo_diverse/demo_cpu-seed0/final.pt \
        data/eval/demo_random.bin

About 2 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = 4
NEW_PHOTOS = 10_000  # image indices far above any evaluation slot: new photos, not copies


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a demo_diverse model (checkpoint, ONNX or TorchScript)")
    parser.add_argument("eval_bin", help="demo_random.bin")
    parser.add_argument("--planted", default="0,15,50", help="numbers of planted people")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # runnable from a checkout
    import numpy as np

    from bench.catalog import load_catalog
    from bench.demo.data import plan_pairs
    from bench.demo.render import render_image
    from bench.diagnostics.run import Options, diagnose
    from bench.eval.embed import load_model
    from bench.formats import MemoryRecords, decode_image, encode_jpeg, load_bin

    catalog = load_catalog()
    train, target = catalog.training_set("demo_diverse"), catalog.eval_set("demo_random")
    images, issame = load_bin(args.eval_bin)
    pairs, _ = plan_pairs(target)
    person = np.array([slot[0] for pair in pairs for slot in pair])  # random protocol: variant 0
    present, counts = np.unique(person, return_counts=True)
    most_frequent = present[np.argsort(-counts, kind="stable")]

    def photos(spec, identities, first: int) -> list:
        knobs = (spec.params["diversity"], spec.params["similarity"])
        return [
            decode_image(encode_jpeg(render_image(spec.seed, int(i), first + j, *knobs), 95))
            for i in identities
            for j in range(IMAGES)
        ]  # stored as the demo stores them: JPEG quality 95

    clean = photos(train.demo, range(train.identities), 0)
    embed = load_model(args.model)
    evaluation = {"demo_random": (np.stack(images), np.asarray(issame, bool))}
    print("planted  images of planted  flagged  expected  p_value  detected")
    for count in (int(text) for text in args.planted.split(",")):
        planted = most_frequent[:count]
        leak = photos(target.demo, planted, NEW_PHOTOS)
        labels = np.repeat(np.arange(train.identities + count), IMAGES).tolist()
        audit = diagnose(
            "planted",
            MemoryRecords(clean + leak, labels),
            embed,
            None,
            evaluation,
            options=Options(per_identity=None, workers=0),
        )["leakage"]["demo_random"]
        print(
            f"{count:7d}  {int(np.isin(person, planted).sum()):17d}  {audit['flagged']:7d}  "
            f"{audit['expected_if_clean']:8.1f}  {audit['p_value']:7.2g}  {audit['leak_detected']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(run())
