"""Colours of the demo renderer's faces: skin and hair ramps driven by the identity parameters.

Tuples of floats (0-255 RGB); the renderer clips when it paints."""

from __future__ import annotations


def mix(a: tuple, b: tuple, t: float) -> tuple[float, float, float]:
    return tuple(x + (y - x) * t for x, y in zip(a, b, strict=True))


def ramp(stops: list[tuple], t: float) -> tuple[float, float, float]:
    """Piecewise-linear colour ramp over equally spaced stops, t in [0, 1]."""
    position = min(max(t, 0.0), 1.0) * (len(stops) - 1)
    index = min(int(position), len(stops) - 2)
    return mix(stops[index], stops[index + 1], position - index)


def skin_colour(face: dict) -> tuple[float, float, float]:
    stops = [(245, 214, 196), (222, 176, 145), (190, 135, 100), (140, 92, 64), (88, 58, 42)]
    r, g, b = ramp(stops, face["skin_tone"])
    warm = 10.0 * face["skin_warm"]
    return (r + warm, g, b - warm)


def hair_colour(face: dict) -> tuple[float, float, float]:
    stops = [(22, 18, 18), (62, 42, 30), (115, 78, 48), (170, 130, 80), (222, 196, 140)]
    colour = ramp(stops, face["hair_light"])
    red = max(face["hair_red"] - 1.0, 0.0)
    colour = (colour[0] + 55 * red, colour[1] + 5 * red, colour[2] - 15 * red)
    return mix(colour, (172, 170, 168), 0.85) if face["is_grey"] else colour


def darker(colour: tuple, factor: float) -> tuple[float, float, float]:
    return tuple(c * factor for c in colour)
