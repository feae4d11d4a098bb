"""A procedural mini IJB package in insightface's exact layout (for tests and `make demo`).

Subjects are demo identities (bench.demo.render). Each subject has one gallery template (in G1
for the first half of the subjects, G2 for the rest; S1/S2 for IJB-B) and probe templates; a
template holds several media, a media one still or several video frames. Every rendered face is
pasted into a larger "loose crop" by a random similarity transform, and its five landmarks are
the ArcFace template points moved by the same transform (plus a little noise), so aligning the
crop with its landmarks recovers the rendered face: the whole path, alignment included, runs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.core import io
from bench.demo.render import render_image
from bench.formats.image import encode_jpeg

# The ArcFace 112x112 destination points (bench.eval.ijb.align.TEMPLATE; a test keeps the two
# equal): the demo renderer's faces are drawn in that frame.
FACE_POINTS = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
VARIANTS = {"ijbb": ("IJBB", ("S1", "S2")), "ijbc": ("IJBC", ("G1", "G2"))}


@dataclass(frozen=True)
class MiniIJB:
    """Size of a mini package: subjects, probe templates per subject, media per template."""

    subjects: int = 8
    probes_per_subject: int = 2
    media_per_template: tuple[int, int] = (1, 3)  # inclusive range
    frames_per_video: tuple[int, int] = (2, 3)
    crop: int = 150  # side of the loose crops
    seed: int = 131
    diversity: float = 0.3
    similarity: float = 0.3


def _loose_crop(
    face: np.ndarray, rng: np.random.Generator, crop: int
) -> tuple[np.ndarray, np.ndarray]:
    """The face pasted into a crop x crop canvas by a random similarity; its 5 landmarks."""
    scale = rng.uniform(0.9, 1.25)
    angle = math.radians(rng.uniform(-12.0, 12.0))
    centre = (crop - 1) / 2.0 + rng.uniform(-8.0, 8.0, size=2)
    rotation = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    offset = centre - rotation @ np.array([55.5, 55.5])  # face centre -> crop point `centre`
    inverse = np.linalg.inv(rotation)
    inverse_offset = -inverse @ offset

    # Pillow samples pixel centres at +0.5: shift so pixel (x, y) maps like x' = A x + b.
    half = np.array([0.5, 0.5])
    shift = half - inverse @ half
    coefficients = (
        *inverse[0],
        inverse_offset[0] + shift[0],
        *inverse[1],
        inverse_offset[1] + shift[1],
    )
    canvas = Image.fromarray(face).transform(
        (crop, crop), Image.AFFINE, coefficients, resample=Image.BILINEAR, fillcolor=(0, 0, 0)
    )
    landmarks = FACE_POINTS @ rotation.T + offset + rng.normal(0.0, 0.4, size=(5, 2))
    return np.asarray(canvas), landmarks


def _plan(spec: MiniIJB, rng: np.random.Generator) -> list[dict]:
    """Templates: id, subject, role (gallery | probe) and its media as lists of frame counts."""
    templates, next_media = [], 1
    for subject in range(spec.subjects):
        for role in ["gallery"] + ["probe"] * spec.probes_per_subject:
            media = []
            for _ in range(
                rng.integers(spec.media_per_template[0], spec.media_per_template[1] + 1)
            ):
                video = rng.random() < 0.5
                frames = (
                    rng.integers(spec.frames_per_video[0], spec.frames_per_video[1] + 1)
                    if video
                    else 1
                )
                media.append((next_media, int(frames)))
                next_media += 1
            templates.append(
                {"id": len(templates) + 1, "subject": subject + 1, "role": role, "media": media}
            )
    return templates


def write_mini_ijb(root: str | Path, target: str = "ijbc", spec: MiniIJB | None = None) -> Path:
    """Write `<root>/<IJBx>/{loose_crop,meta}` for `target` (ijbb | ijbc); returns root."""
    spec = spec or MiniIJB()
    folder, galleries = VARIANTS[target]
    rng = np.random.default_rng([spec.seed, 7])
    templates = _plan(spec, rng)
    io.atomic_directory(
        Path(root) / folder,
        lambda staging: _write(staging, target, galleries, templates, spec, rng),
    )
    return Path(root)


def _write(
    staging: Path,
    target: str,
    galleries: tuple[str, str],
    templates: list[dict],
    spec: MiniIJB,
    rng,
) -> None:
    crops, meta = staging / "loose_crop", staging / "meta"
    crops.mkdir()
    meta.mkdir()
    media_rows, landmark_rows, image = [], [], 0
    for template in templates:
        for media, frames in template["media"]:
            for _ in range(frames):
                image += 1
                face = render_image(
                    spec.seed, template["subject"], image, spec.diversity, spec.similarity
                )
                crop, landmarks = _loose_crop(face, rng, spec.crop)
                (crops / f"{image}.jpg").write_bytes(encode_jpeg(crop, quality=95))
                media_rows.append(f"{image}.jpg {template['id']} {media}")
                points = " ".join(f"{value:.3f}" for value in landmarks.reshape(-1))
                landmark_rows.append(f"{image}.jpg {points} {rng.uniform(0.3, 1.0):.3f}")
    _lines(meta / f"{target}_face_tid_mid.txt", media_rows)
    _lines(meta / f"{target}_name_5pts_score.txt", landmark_rows)
    pairs = [
        f"{a['id']} {b['id']} {int(a['subject'] == b['subject'])}"
        for index, a in enumerate(templates)
        for b in templates[index + 1 :]
    ]
    _lines(meta / f"{target}_template_pair_label.txt", pairs)
    half = spec.subjects // 2
    for number, name in enumerate(galleries):
        members = [
            t
            for t in templates
            if t["role"] == "gallery" and (t["subject"] <= half) == (number == 0)
        ]
        _subject_csv(meta / f"{target}_1N_gallery_{name}.csv", members)
    _subject_csv(
        meta / f"{target}_1N_probe_mixed.csv", [t for t in templates if t["role"] == "probe"]
    )


def _subject_csv(path: Path, templates: list[dict]) -> None:
    # One row per media, as the real CSVs list one row per image/media of a template.
    rows = ["TEMPLATE_ID,SUBJECT_ID,FILENAME"]
    rows += [
        f"{t['id']},{t['subject']},media/{media}" for t in templates for media, _ in t["media"]
    ]
    _lines(path, rows)


def _lines(path: Path, rows: list[str]) -> None:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
