"""Procedural face-like identity renderer for the demo data (112x112 RGB, vectorised numpy).

A face is drawn in a canonical 112x112 frame (origin at the image centre, y down) as soft-edged
shapes: background, hair, shoulders, ears, head, eyes, brows, nose, mouth, extras; a per-image
similarity transform (roll, scale, shift) maps the pixel grid into that frame, and yaw/pitch are
modelled by wrapping the facial features around a cylinder (features slide and foreshorten, the
nose, which protrudes, slides further). Then shading, illumination, occlusion, blur and noise.

Only IEEE-exact array operations (+ - * / sqrt, min/max) touch float pixels; trigonometry is done
on scalars with `math`, resampling by Pillow's integer code. So a seed gives the same pixels on any
machine with the same numpy and Pillow.
Small features are computed in their own bounding windows, which keeps one image near a millisecond.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from bench.demo.colours import darker, hair_colour, mix, ramp, skin_colour
from bench.demo.params import (
    OCCLUDERS,
    Nuisance,
    face_params,
    identity_vector,
    image_rng,
    sample_nuisance,
)
from bench.demo.shapes import Frame, clamp, ellipse, inside, paint, step

SIZE = 112


def render_face(face: dict[str, float], nuisance: Nuisance, rng: np.random.Generator) -> np.ndarray:
    """Render one image: identity `face` (see face_params) under `nuisance`; uint8 112x112x3 RGB."""
    frame = Frame(face, nuisance, SIZE)
    image = _background(frame, nuisance)
    skin = skin_colour(face)
    hair = hair_colour(face)
    _back_hair(image, frame, face, hair)
    _body(image, frame, face, nuisance, skin)
    head, covered = _head(image, frame, face, skin)
    _front_hair(image, frame, face, nuisance, hair, covered)
    _beard(image, frame, face, hair, head)
    _eyes(image, frame, face, nuisance, skin)
    _brows(image, frame, face, nuisance, hair, skin)
    _nose(image, frame, face, nuisance, skin)
    _mouth(image, frame, face, nuisance, skin)
    _extras(image, frame, face, skin)
    if nuisance.occluder >= 0:
        _occlude(image, frame, face, nuisance)
    _light(image, frame, face, nuisance, head)
    if nuisance.noise > 0.0:  # sensor-like grain, the same in every channel
        image += rng.standard_normal(image.shape[1:], dtype=np.float32) * np.float32(nuisance.noise)
    pixels = np.rint(clamp(image, 0.0, 255.0)).astype(np.uint8).transpose(1, 2, 0)
    pixels = np.ascontiguousarray(pixels)
    if nuisance.blur > 0.3:  # low resolution: down- and up-sampled by Pillow's integer C code
        side = int(round(SIZE / (1.0 + 0.6 * nuisance.blur)))
        small = Image.fromarray(pixels).resize((side, side), Image.BILINEAR, reducing_gap=None)
        pixels = np.asarray(small.resize((SIZE, SIZE), Image.BILINEAR))
    return pixels


def render_image(
    seed: int, identity: int, image: int, diversity: float, similarity: float
) -> np.ndarray:
    """Image `image` of identity `identity` of the set seeded `seed` (independent of all others)."""
    face = face_params(identity_vector(seed, identity, similarity))
    rng = image_rng(seed, identity, image)
    return render_face(face, sample_nuisance(rng, diversity), rng)


def paint_face(image: np.ndarray, frame: Frame, window, alpha: np.ndarray, colour) -> None:
    """paint() restricted to the head: a feature turned past the silhouette is not drawn."""
    paint(image, window, alpha * frame.face[window], colour)


# ---------------------------------------------------------------------------------------------
# Colours


# ---------------------------------------------------------------------------------------------
# Layers (painter's order)


def _background(frame: Frame, nuisance: Nuisance) -> np.ndarray:
    bg = nuisance.background
    angle = bg[6]
    # t runs 0 -> 1 across the image along a random direction: a two-colour gradient backdrop.
    t = clamp(0.5 + (frame.px * math.cos(angle) + frame.py * math.sin(angle)) / SIZE, 0.0, 1.0)
    first = np.asarray(bg[0:3], np.float32)[:, None, None]
    second = np.asarray(bg[3:6], np.float32)[:, None, None]
    return first + t * (second - first)  # channels first: (3, H, W)


def _back_hair(image: np.ndarray, frame: Frame, face: dict, hair: tuple) -> None:
    if face["hair_top"] < -50.0:  # bald: no hair mass behind the head either
        return
    limit = max(face["hair_length"], face["eye_y"] + 2.0)
    rows = frame.rows_where(limit, below=False)
    if rows is None:
        return
    volume = face["hair_volume"]
    # The back of the head slides opposite to the face when it turns.
    x = frame.X[rows] + np.float32(0.35 * face["head_w"] * math.sin(frame.yaw))
    y = frame.Y[rows]
    alpha = ellipse(
        x, y - face["head_y"] + 1.0, face["head_w"] + volume, face["head_h"] + volume, frame.k
    )
    if face["hair_length"] > 5.0:  # long hair falls beside the face down to `hair_length`
        side = step(face["head_w"] + volume + 3.0 - np.abs(x), frame.k)
        side *= step(y - face["head_y"], frame.k)
        alpha = np.maximum(alpha, side)
    alpha *= step(limit - y, frame.k)
    paint(image, (rows, slice(None)), alpha, hair)


def _body(image: np.ndarray, frame: Frame, face: dict, nuisance: Nuisance, skin: tuple) -> None:
    rows = frame.rows_where(face["head_y"] + 10.0, below=True)
    if rows is not None:
        x, y = frame.X[rows], frame.Y[rows]
        neck = step(face["head_w"] * 0.55 - np.abs(x), frame.k)
        paint(image, (rows, slice(None)), neck, darker(skin, 0.78))
        shoulders = step(y - (62.0 - 0.01 * x * x), frame.k)
        paint(image, (rows, slice(None)), shoulders, nuisance.clothes)
    size = face["ear_size"]
    cy = face["eye_y"] + 8.0
    for sign in (-1.0, 1.0):  # ears sit at the silhouette, behind the head layer
        cx = sign * (face["head_w"] - 1.0) * math.cos(frame.yaw * 0.6)
        window = frame.window_xy(cx, cy, 9.0 * size)
        if window is not None:
            alpha = ellipse(
                frame.X[window] - cx, frame.Y[window] - cy, 4.5 * size, 8.5 * size, frame.k
            )
            paint(image, window, alpha, darker(skin, 0.9))


def _head(image: np.ndarray, frame: Frame, face: dict, skin: tuple):
    """Paint the head; returns its alpha and a 1.5-pixel grown alpha (what hair may cover)."""
    dy = frame.Y - face["head_y"]
    narrowing = 1.0 - face["jaw"] * clamp(dy / face["head_h"], 0.0, 1.0)
    x, y = frame.X / (narrowing * face["head_w"]), dy * (1.0 / face["head_h"])
    inside = (1.0 - np.sqrt(x * x + y * y)) * min(face["head_w"], face["head_h"])
    alpha = step(inside, frame.k)
    paint(image, (slice(None), slice(None)), alpha, skin)
    frame.face = alpha  # facial features are clipped to the head (see paint_face)
    return alpha, step(inside + 1.5, frame.k)


def _front_hair(image, frame: Frame, face: dict, nuisance: Nuisance, hair: tuple, head) -> None:
    u = (frame.U - face["hair_part"]) / face["head_w"]
    hairline = face["hair_top"] + nuisance.hair_jitter + face["hair_curve"] * u * u
    alpha = step(hairline - frame.V, frame.k)
    # Temples: hair comes down the sides of the head to about the eyes.
    sides = step(np.abs(frame.U) - 0.83 * face["head_w"], frame.k)
    sides *= step(face["eye_y"] - 2.0 - frame.V, frame.k)
    if face["hair_top"] < -50.0:
        sides *= 0.0
    paint(image, (slice(None), slice(None)), np.maximum(alpha, sides) * head, hair)


def _beard(image, frame: Frame, face: dict, hair: tuple, head: np.ndarray) -> None:
    if face["beard_density"] <= 0.0:
        return
    tip = face["eye_y"] + face["nose_len"]
    # From the sideburns (|u| = head_w) down to the moustache just under the nose.
    edge = tip + 4.0 - (tip - face["eye_y"] - 4.0) * np.abs(frame.U) / face["head_w"]
    alpha = step(frame.V - edge, frame.k * 0.3) * head * (0.25 + 0.6 * face["beard_density"])
    paint(image, (slice(None), slice(None)), alpha, darker(hair, 0.9))


def _eyes(image, frame: Frame, face: dict, nuisance: Nuisance, skin: tuple) -> None:
    width = face["eye_w"]
    height = face["eye_h"] * max(1.0 - 0.55 * nuisance.squint, 0.25)
    iris_colour = ramp(
        [
            (50, 30, 20),
            (95, 60, 30),
            (110, 100, 50),
            (70, 110, 80),
            (70, 110, 160),
            (120, 135, 150),
        ],
        face["iris_hue"],
    )
    k = frame.k
    for sign in (-1.0, 1.0):
        cu, cv = sign * face["eye_dx"], face["eye_y"]
        window = frame.window_uv(cu, cv, width + 5.0)
        if window is None:
            continue
        du, dv = frame.rotated(window, cu, cv, sign * face["eye_tilt"])
        depth = inside(du, dv, width, height)
        paint_face(
            image, frame, window, step(depth + 4.0, k * 0.25) * 0.4, darker(skin, 0.8)
        )  # socket
        sclera = step(depth, k)
        lid = (step(depth + 1.0, k) - sclera) * step(0.5 - dv, k)  # the upper lid line
        paint_face(image, frame, window, lid, (45, 30, 28))
        paint_face(image, frame, window, sclera, (236, 232, 226))
        gu, gv = du - np.float32(nuisance.gaze_x), dv - np.float32(nuisance.gaze_y)
        distance = np.sqrt(gu * gu + gv * gv)
        radius = face["iris_r"]
        paint_face(image, frame, window, step(radius - distance, k) * sclera, iris_colour)
        paint_face(image, frame, window, step(0.45 * radius - distance, k) * sclera, (12, 10, 10))


def _brows(image, frame: Frame, face: dict, nuisance: Nuisance, hair: tuple, skin: tuple) -> None:
    colour = mix(darker(hair, 0.8), darker(skin, 0.5), 0.25)
    for sign in (-1.0, 1.0):
        cu = sign * (face["eye_dx"] + 1.0)
        cv = face["eye_y"] - face["brow_gap"] - nuisance.brow_raise
        window = frame.window_uv(cu, cv, face["brow_w"] + 4.0)
        if window is None:
            continue
        du, dv = frame.rotated(window, cu, cv, -sign * face["brow_tilt"])
        t = clamp(du / face["brow_w"], -1.0, 1.0)
        centre = -face["brow_arch"] * (1.0 - t * t)
        # Thick at the inner end, thin at the outer end.
        half = face["brow_thick"] * (1.0 - 0.35 * (sign * t + 1.0) * 0.5)
        alpha = step(half - np.abs(dv - centre), frame.k)
        alpha *= step(face["brow_w"] - np.abs(du), frame.k)
        paint_face(image, frame, window, alpha * 0.9, colour)


def _nose(image, frame: Frame, face: dict, nuisance: Nuisance, skin: tuple) -> None:
    tip_v = face["eye_y"] + face["nose_len"]
    slide_u = face["nose_depth"] * math.sin(frame.yaw)  # it protrudes, so it slides further
    slide_v = face["nose_depth"] * math.sin(frame.pitch)
    cu = slide_u
    width = face["nose_w"]
    window = frame.window_uv(cu, tip_v - 6.0, face["nose_len"] * 0.6 + width)
    if window is None:
        return
    du = frame.U[window] - cu
    dv = frame.V[window] - tip_v - slide_v
    # Side of the nose away from the light is darker: a soft vertical band from bridge to tip.
    side = 1.0 if math.cos(nuisance.light_angle) < 0 else -1.0
    length = face["nose_len"] * 0.8
    t = clamp((dv + length) / length, 0.0, 1.0)
    band = step(1.2 - np.abs(du - side * width * (0.35 + 0.45 * t)), frame.k * 0.6)
    band *= step(dv + length, frame.k) * step(1.0 - dv, frame.k)
    paint_face(image, frame, window, band * 0.35, darker(skin, 0.72))
    tip = ellipse(du, dv - 0.5, width * 0.75, 3.0, frame.k * 0.5)
    paint_face(image, frame, window, tip * 0.3, mix(skin, (255, 240, 230), 0.3))
    for sign in (-1.0, 1.0):
        nostril = ellipse(du - sign * width * 0.55, dv - 1.2, 1.6, 1.0, frame.k)
        paint_face(image, frame, window, nostril * 0.8, darker(skin, 0.45))
    under = ellipse(du, dv - 3.6, width * 0.9, 1.2, frame.k * 0.5)
    paint_face(image, frame, window, under * 0.3, darker(skin, 0.7))


def _mouth(image, frame: Frame, face: dict, nuisance: Nuisance, skin: tuple) -> None:
    width = face["mouth_w"] * (1.0 + 0.12 * nuisance.smile)
    cv = face["mouth_y"]
    cu = 0.4 * face["nose_depth"] * math.sin(frame.yaw)
    window = frame.window_uv(cu, cv, width + 5.0)
    if window is None:
        return
    du = frame.U[window] - cu
    dv = frame.V[window] - cv
    t = clamp(du / width, -1.0, 1.0)
    profile = np.sqrt(1.0 - t * t)  # lips thin toward the corners
    line = -3.0 * nuisance.smile * (t * t - 0.3)  # the corners rise with a smile
    opening = 4.0 * nuisance.mouth_open
    inside = step(width - np.abs(du), frame.k)
    lip = mix(skin, (175, 60, 70), 0.25 + 0.45 * face["lip_red"])
    upper = step(face["lip_upper"] * profile + opening * 0.5 * profile - (line - dv), frame.k)
    upper *= step(line - dv + 0.2, frame.k)
    lower = step(face["lip_lower"] * profile + opening * 0.5 * profile - (dv - line), frame.k)
    lower *= step(dv - line + 0.2, frame.k)
    paint_face(image, frame, window, np.maximum(upper, lower) * inside, lip)
    gap = step(opening * 0.5 * profile + 0.45 - np.abs(dv - line), frame.k) * inside
    paint_face(image, frame, window, gap, (70, 25, 30))
    if opening > 1.0 and nuisance.smile > 0.0:  # teeth show in an open smile
        teeth = gap * step(line - dv + 0.2, frame.k) * step(0.8 * width - np.abs(du), frame.k)
        paint_face(image, frame, window, teeth * 0.85, (235, 230, 220))


def _extras(image, frame: Frame, face: dict, skin: tuple) -> None:
    for sign in (-1.0, 1.0):
        cu, cv = sign * (face["eye_dx"] + 4.0), face["eye_y"] + 17.0
        window = frame.window_uv(cu, cv, 10.0)
        if window is not None and face["cheek"] > 0.05:
            du, dv = frame.U[window] - cu, frame.V[window] - cv
            blush = clamp(1.0 - (du * du + dv * dv) / 80.0, 0.0, 1.0) * face["cheek"] * 0.2
            paint_face(image, frame, window, blush, (215, 95, 95))
    if face["has_mole"]:
        cu, cv = face["mole_x"], face["mole_y"]
        window = frame.window_uv(cu, cv, 3.0)
        if window is not None:
            mole = ellipse(frame.U[window] - cu, frame.V[window] - cv, 1.1, 1.1, frame.k)
            paint_face(image, frame, window, mole * 0.85, darker(skin, 0.4))
    if face["has_glasses"]:
        _glasses(image, frame, face)


def _glasses(image, frame: Frame, face: dict) -> None:
    colour = mix((25, 22, 20), (150, 120, 70), face["glasses_dark"])
    radius = face["eye_w"] + 3.0
    for sign in (-1.0, 1.0):
        cu, cv = sign * face["eye_dx"], face["eye_y"] + 0.5
        window = frame.window_uv(cu, cv, radius + 3.0)
        if window is None:
            continue
        du, dv = frame.U[window] - cu, frame.V[window] - cv
        outer = ellipse(du, dv, radius + 1.1, radius * 0.75 + 1.1, frame.k)
        inner = ellipse(du, dv, radius, radius * 0.75, frame.k)
        paint_face(image, frame, window, outer - inner, colour)
        paint_face(image, frame, window, inner * 0.12, (200, 220, 235))
    window = frame.window_uv(0.0, face["eye_y"] - 1.0, 6.0)
    if window is not None:
        du, dv = frame.U[window], frame.V[window] - face["eye_y"] + 1.0
        bridge = step(0.7 - np.abs(dv), frame.k)
        bridge *= step(face["eye_dx"] - radius + 0.5 - np.abs(du), frame.k)
        paint_face(image, frame, window, bridge, colour)


def _occlude(image, frame: Frame, face: dict, nuisance: Nuisance) -> None:
    p = nuisance.occluder_params
    kind = OCCLUDERS[nuisance.occluder]
    everywhere = (slice(None), slice(None))
    if kind == "sunglasses":
        for sign in (-1.0, 1.0):
            du, dv = frame.U - sign * face["eye_dx"], frame.V - face["eye_y"]
            lens = ellipse(du, dv, face["eye_w"] + 4.0, face["eye_h"] + 4.0, frame.k)
            paint(image, everywhere, lens, (20 + 40 * p[0], 20 + 30 * p[1], 25 + 30 * p[2]))
    elif kind == "hand":
        cx, cy = -35.0 + 70.0 * p[0], 15.0 + 35.0 * p[1]
        angle = math.pi * p[2]
        dx, dy = frame.X - cx, frame.Y - cy
        du = dx * math.cos(angle) + dy * math.sin(angle)
        dv = -dx * math.sin(angle) + dy * math.cos(angle)
        tone = ramp([(240, 205, 185), (190, 135, 100), (95, 62, 45)], p[3])
        paint(image, everywhere, ellipse(du, dv, 11.0 + 6 * p[4], 18.0 + 8 * p[5], frame.k), tone)
    elif kind == "mask":
        top = face["eye_y"] + face["nose_len"] - 4.0
        alpha = step(frame.V - top, frame.k) * step(face["head_w"] + 2.0 - np.abs(frame.X), frame.k)
        colour = ramp([(235, 235, 235), (150, 190, 220), (40, 40, 45)], p[0])
        paint(image, everywhere, alpha, colour)
    else:  # patch: random erasing, a rectangle of flat colour anywhere on the image
        half_w, half_h = 8.0 + 14.0 * p[0], 8.0 + 14.0 * p[1]
        cx, cy = (p[2] - 0.5) * 70.0, (p[3] - 0.5) * 70.0
        alpha = step(half_w - np.abs(frame.px - cx), 1.0) * step(
            half_h - np.abs(frame.py - cy), 1.0
        )
        paint(image, everywhere, alpha, (255 * p[4], 255 * p[5], 255 * p[0]))


def _light(image, frame: Frame, face: dict, nuisance: Nuisance, head: np.ndarray) -> None:
    angle = nuisance.light_angle
    lx, ly, lz = 0.75 * math.cos(angle), 0.75 * math.sin(angle), 0.66
    # Lambert on the head's ellipsoid normal; the face turns with yaw, so the normal field does.
    centre_x = face["head_w"] * math.sin(frame.yaw) * 0.3
    nx = clamp((frame.X - centre_x) * np.float32(1.0 / (face["head_w"] * 1.2)), -1.0, 1.0)
    ny = clamp((frame.Y - face["head_y"]) * np.float32(1.0 / (face["head_h"] * 1.25)), -1.0, 1.0)
    nz = np.sqrt(np.maximum(1.0 - nx * nx - ny * ny, 0.0))
    lambert = clamp(nx * lx + ny * ly + nz * lz, 0.0, 1.0)
    factor = 1.0 + head * (nuisance.shading * (lambert - 0.8))
    # A global illumination gradient, the brightness and contrast and a colour cast, all in one
    # multiply-add: out = (in * factor * gain - 128) * contrast + 128.
    factor *= 1.0 + nuisance.light_strength * (frame.px * lx + frame.py * ly) / 75.0
    gain = [nuisance.brightness * nuisance.contrast * (1.0 + c) for c in nuisance.cast]
    image *= factor * np.asarray(gain, np.float32)[:, None, None]
    image += np.float32(128.0 * (1.0 - nuisance.contrast))
