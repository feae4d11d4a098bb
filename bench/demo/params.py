"""Parameters of the procedural demo faces: identity vectors, generator knobs, per-image nuisances.

An identity is a vector of standard-normal numbers `z` (one per row of IDENTITY_TABLE); the knob
`similarity` shrinks it toward the shared mean face (z = 0). Each image of an identity draws a
Nuisance (pose, light, expression, blur, noise, occlusion ...) whose spread scales with the knob
`diversity`. Every draw comes from a numpy Generator seeded by np.random.SeedSequence, so any
identity or image can be made on its own, in any order, in any process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.core.errors import DatasetError

# Knobs a demo entry's `params:` may set, with their defaults.
KNOBS: dict[str, float] = {
    "diversity": 0.5,  # scales every nuisance (0 = nearly identical images of an identity)
    "similarity": 0.3,  # shrinks identities toward the mean face (1 = all identical)
    "lookalike_distance": 0.35,  # eval `lookalike`: how far a look-alike's z is from the original
    "pose_yaw": 40.0,  # eval `pose`: yaw in degrees of the turned image of a pair
}

# Identity parameters: name -> (mean, spread); value = mean + spread * z. Lengths are pixels of
# the 112x112 canonical frame (origin at the image centre, y down), angles radians.
IDENTITY_TABLE: dict[str, tuple[float, float]] = {
    "head_w": (40.0, 2.5),
    "head_h": (57.0, 3.0),
    "head_y": (2.0, 1.5),
    "jaw": (0.24, 0.08),
    "skin_tone": (0.45, 0.25),
    "skin_warm": (0.0, 1.0),
    "hair_light": (0.3, 0.3),
    "hair_red": (0.0, 1.0),
    "hair_grey": (0.0, 1.0),
    "hair_top": (-31.0, 5.0),
    "hair_volume": (4.0, 2.5),
    "hair_length": (0.0, 28.0),
    "hair_part": (0.0, 9.0),
    "hair_curve": (9.0, 5.0),
    "eye_y": (-4.0, 1.8),
    "eye_dx": (17.5, 1.4),
    "eye_w": (6.8, 0.8),
    "eye_h": (3.0, 0.5),
    "eye_tilt": (0.0, 0.08),
    "iris_r": (2.6, 0.3),
    "iris_hue": (0.3, 0.3),
    "brow_gap": (7.5, 1.3),
    "brow_w": (8.5, 1.3),
    "brow_thick": (1.7, 0.45),
    "brow_tilt": (0.0, 0.1),
    "brow_arch": (1.3, 0.8),
    "nose_len": (19.0, 2.5),
    "nose_w": (5.5, 1.0),
    "nose_depth": (12.0, 3.0),
    "mouth_y": (36.5, 2.5),
    "mouth_w": (13.5, 1.8),
    "lip_upper": (2.2, 0.5),
    "lip_lower": (3.0, 0.6),
    "lip_red": (0.5, 0.25),
    "ear_size": (1.0, 0.15),
    "cheek": (0.25, 0.2),
    "glasses": (0.0, 1.0),
    "glasses_dark": (0.5, 0.3),
    "beard": (0.0, 1.0),
    "mole": (0.0, 1.0),
    "mole_x": (0.0, 18.0),
    "mole_y": (10.0, 15.0),
}
IDENTITY_NAMES: tuple[str, ...] = tuple(IDENTITY_TABLE)
IDENTITY_DIM = len(IDENTITY_NAMES)
Z_CLIP = 2.5  # keeps tail draws from producing absurd faces

# SeedSequence tags: keep the streams of identities, look-alikes, images and pairings apart.
TAG_IDENTITY, TAG_IMAGE, TAG_PAIRS, TAG_LOOKALIKE = 0, 1, 2, 3


def check_knobs(params: dict, where: str) -> dict[str, float]:
    """Defaults filled in; an unknown knob or a value out of range is a DatasetError."""
    unknown = sorted(set(params) - set(KNOBS))
    if unknown:
        raise DatasetError(
            f"{where}: unknown demo param(s) {', '.join(unknown)}; known: {', '.join(KNOBS)}"
        )
    knobs = {**KNOBS, **{key: float(value) for key, value in params.items()}}
    if not 0.0 <= knobs["similarity"] <= 1.0:
        raise DatasetError(f"{where}: params.similarity must lie in [0, 1]")
    if not 0.0 <= knobs["diversity"] <= 3.0:
        raise DatasetError(f"{where}: params.diversity must lie in [0, 3]")
    return knobs


def identity_vector(seed: int, identity: int, similarity: float) -> np.ndarray:
    """The parameter vector z (float64, IDENTITY_DIM) of identity `identity` of a set seeded `seed`."""
    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, TAG_IDENTITY, identity]))
    )
    z = np.clip(rng.standard_normal(IDENTITY_DIM), -Z_CLIP, Z_CLIP)
    return z * (1.0 - similarity)


def lookalike_vector(z: np.ndarray, seed: int, identity: int, distance: float) -> np.ndarray:
    """A look-alike of identity vector `z`: the same face, every parameter nudged by `distance`."""
    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, TAG_LOOKALIKE, identity]))
    )
    return np.clip(z + distance * rng.standard_normal(IDENTITY_DIM), -Z_CLIP, Z_CLIP)


def image_rng(seed: int, identity: int, image: int) -> np.random.Generator:
    """The generator of image `image` of identity `identity` (independent of all other images)."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, TAG_IMAGE, identity, image]))
    )


def face_params(z: np.ndarray) -> dict[str, float]:
    """Identity vector -> named face parameters (pixels, radians, [0,1] tones)."""
    values = {
        name: mean + spread * float(z[i])
        for i, (name, (mean, spread)) in enumerate(IDENTITY_TABLE.items())
    }
    for name in ("skin_tone", "hair_light", "iris_hue", "glasses_dark", "lip_red", "cheek"):
        values[name] = min(max(values[name], 0.0), 1.0)
    values["hair_volume"] = max(values["hair_volume"], 0.0)
    # Rare attributes: a threshold on their z, so shrinking toward the mean face removes them too.
    values["has_glasses"] = float(values["glasses"] > 1.3)
    values["beard_density"] = min(max(values["beard"] - 0.9, 0.0), 0.8)
    values["has_mole"] = float(values["mole"] > 0.9)
    values["is_grey"] = float(values["hair_grey"] > 1.6)
    return values


@dataclass(frozen=True)
class Nuisance:
    """What changes from one image of an identity to the next (angles in radians)."""

    yaw: float
    pitch: float
    roll: float
    scale: float
    shift_x: float
    shift_y: float
    light_angle: float
    light_strength: float
    shading: float
    brightness: float
    contrast: float
    cast: tuple[float, float, float]
    smile: float
    mouth_open: float
    squint: float
    brow_raise: float
    gaze_x: float
    gaze_y: float
    hair_jitter: float
    blur: float
    noise: float
    occluder: int  # -1 none, else an index into OCCLUDERS
    occluder_params: tuple[float, ...]
    background: tuple[float, ...]  # two RGB colours + gradient angle
    clothes: tuple[float, float, float]


OCCLUDERS = ("sunglasses", "hand", "mask", "patch")


def sample_nuisance(rng: np.random.Generator, diversity: float) -> Nuisance:
    """Draw one image's nuisances; every spread grows linearly with `diversity`."""
    # One vector draw each (scalar draws cost more than the rest of this function).
    normals = iter(rng.standard_normal(32).tolist())
    uniforms = iter(rng.random(16).tolist())

    def normal(spread: float, limit: float) -> float:
        return min(max(next(normals) * spread * diversity, -limit), limit)

    deg = math.pi / 180.0
    occlusion_probability = min(0.3 * diversity, 0.6)
    occluder_pick = next(uniforms)
    occluder = int(next(uniforms) * len(OCCLUDERS)) if occluder_pick < occlusion_probability else -1
    # Background variety has a floor: even "consistent" photos are not taken against one wall.
    spread_bg = min(0.25 + 0.75 * diversity, 1.0) * 45.0
    grey = 60.0 + 140.0 * next(uniforms)
    background = tuple(min(max(grey + spread_bg * next(normals), 0.0), 255.0) for _ in range(6)) + (
        2 * math.pi * next(uniforms),
    )
    return Nuisance(
        yaw=normal(18.0 * deg, 50.0 * deg),
        pitch=normal(8.0 * deg, 25.0 * deg),
        roll=normal(8.0 * deg, 30.0 * deg),
        scale=math.exp(normal(0.06, 0.25)),
        shift_x=normal(3.0, 10.0),
        shift_y=normal(3.0, 10.0),
        light_angle=2 * math.pi * next(uniforms),
        light_strength=abs(normal(0.35, 0.8)),
        shading=0.15 + abs(normal(0.3, 0.6)),
        brightness=math.exp(normal(0.15, 0.5)),
        contrast=math.exp(normal(0.12, 0.4)),
        cast=(normal(0.05, 0.15), normal(0.05, 0.15), normal(0.05, 0.15)),
        smile=normal(0.5, 1.0),
        mouth_open=abs(normal(0.35, 1.0)),
        squint=abs(normal(0.35, 0.8)),
        brow_raise=normal(1.2, 3.0),
        gaze_x=normal(0.8, 1.5),
        gaze_y=normal(0.4, 1.0),
        hair_jitter=normal(2.0, 5.0),
        blur=abs(normal(0.7, 2.0)),
        noise=abs(normal(4.0, 12.0)),
        occluder=occluder,
        occluder_params=tuple(next(uniforms) for _ in range(6)),
        background=background,
        clothes=tuple(20.0 + 210.0 * next(uniforms) for _ in range(3)),
    )
