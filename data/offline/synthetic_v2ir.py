"""Procedural paired visible / long-wave-infrared street scenes.

This is the framework's built-in default dataset: it needs no download, is bit-identical
for a given seed, and is fast enough to build on a laptop CPU.

Each scene is a street or campus seen from about human height (like KAIST): sky,
buildings with windows, a road with lane markings, sidewalks, grass, trees, street
lights, cars, people and *decoys* (boxes, signs, banners, bins, posters) painted in the
same colours as clothing and car bodies.  Both images are rendered from one shared
material map:

* visible: textured albedo, Lambertian sun + sky light, cast shadows, night lighting
  (street-light pools, headlights, lit windows), haze, camera noise and gamma;
* infrared: per-pixel temperature (sun/shade, day/night, engines, body heat) and
  emissivity, grey-body radiance with reflected sky/environment, heat diffusion, optics
  blur, automatic gain, vignetting, column fixed-pattern and temporal noise.

The visible->infrared mapping therefore needs context: a shirt and a decoy of the same
colour typically differ by 5-30 degC, sunlit asphalt is up to ~25 degC warmer than the
same asphalt in shadow, and night windows are warm whether or not they are lit.

:func:`generate_dataset` writes pix2pix "aligned" images: infrared (A, grey replicated
to RGB) on the left, visible (B) on the right.
"""
from __future__ import annotations

import enum
import json
import logging
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
METADATA_FILENAME = "synthetic_v2ir.json"
SPLITS = ("train", "val", "test")  # a split's position here is its id in the per-image seed


class Label(enum.IntEnum):
    """Semantic class id of every pixel in :attr:`SceneSample.labels`."""

    SKY = 0
    ROAD = 1
    LANE_MARKING = 2
    SIDEWALK = 3
    GRASS = 4
    VEGETATION = 5
    TREE_TRUNK = 6
    BUILDING_WALL = 7
    WINDOW = 8
    CAR_BODY = 9
    CAR_WINDOW = 10
    TYRE = 11
    CAR_LIGHT = 12
    PERSON_SKIN = 13
    PERSON_CLOTHING = 14
    PERSON_HAIR = 15
    DECOY = 16
    POLE = 17
    LAMP = 18


CLASS_NAMES: tuple[str, ...] = tuple(label.name.lower() for label in Label)
PERSON_LABELS = (Label.PERSON_SKIN, Label.PERSON_CLOTHING, Label.PERSON_HAIR)
_GROUND_LABELS = (Label.ROAD, Label.LANE_MARKING, Label.SIDEWALK, Label.GRASS)


def _per_label(values: dict[Label, float], default: float) -> np.ndarray:
    table = np.full(len(Label), default, np.float32)
    for label, value in values.items():
        table[label] = value
    return table


# LWIR emissivity.  Glass and bare metal get lower (effective) values so they mirror the cold sky.
_EMISSIVITY = _per_label(
    {Label.SKY: 1.0, Label.ROAD: 0.95, Label.LANE_MARKING: 0.9, Label.GRASS: 0.98,
     Label.VEGETATION: 0.97, Label.WINDOW: 0.8, Label.CAR_BODY: 0.9, Label.CAR_WINDOW: 0.75,
     Label.CAR_LIGHT: 0.8, Label.PERSON_SKIN: 0.98, Label.POLE: 0.35},
    default=0.93,
)
# Fraction of the reflected hemisphere that is (cold) sky rather than (ambient) surroundings.
_SKY_VIEW = _per_label(
    {Label.ROAD: 1.0, Label.LANE_MARKING: 1.0, Label.SIDEWALK: 1.0, Label.GRASS: 1.0,
     Label.WINDOW: 0.9, Label.CAR_WINDOW: 0.9, Label.VEGETATION: 0.6},
    default=0.5,
)


def _linear_rgb(*srgb: tuple[int, int, int]) -> np.ndarray:
    return (np.asarray(srgb, np.float32) / 255.0) ** 2.2


# One palette for clothing, car bodies and decoys: colour alone must not reveal temperature.
_PAINT_PALETTE = _linear_rgb(
    (200, 30, 35), (120, 20, 30), (25, 40, 110), (40, 90, 190), (120, 170, 220), (40, 130, 60),
    (30, 70, 40), (230, 200, 40), (230, 120, 30), (235, 235, 230), (170, 170, 175),
    (80, 80, 85), (25, 25, 28), (200, 180, 140), (110, 70, 40), (110, 50, 140), (230, 140, 170),
)
_SKIN_TONES = _linear_rgb((240, 200, 170), (220, 170, 130), (180, 125, 90), (120, 80, 55), (80, 55, 40))
_HAIR_COLOURS = _linear_rgb((20, 15, 12), (60, 40, 25), (120, 85, 50), (200, 170, 110), (150, 150, 150))
_WALL_COLOURS = {
    "brick": _linear_rgb((150, 70, 50), (130, 85, 65), (170, 100, 70)),
    "concrete": _linear_rgb((150, 150, 145), (120, 120, 118), (175, 170, 160)),
    "painted": _linear_rgb((220, 210, 185), (200, 200, 205), (215, 190, 160), (180, 200, 190)),
    "glass": _linear_rgb((90, 100, 110), (70, 85, 95)),
}

_FACING_CAMERA = np.array([0.0, 0.0, -1.0], np.float32)  # normal towards the viewer
_UP = np.array([0.0, 1.0, 0.0], np.float32)
_CELSIUS_TO_KELVIN = 273.15


@dataclass
class SceneSample:
    """One rendered scene: pixel-aligned visible and infrared images with class labels."""

    visible: np.ndarray  # H x W x 3 uint8, sRGB
    infrared: np.ndarray  # H x W uint8, automatic-gain LWIR
    labels: np.ndarray  # H x W uint8, ids into CLASS_NAMES
    is_night: bool


# --------------------------------------------------------------------------- scene geometry


@dataclass(frozen=True)
class _Spot:
    """A point on the ground: metric position (lateral, depth) and its image projection."""

    lateral_m: float
    depth_m: float
    x: float  # image column of the point
    y: float  # image row of the point
    px_per_m: float  # image scale of objects standing here


@dataclass
class _LightPool:
    """Night lighting on the ground: a Gaussian pool in ground metres."""

    lateral_m: float
    depth_m: float
    sigma_lateral_m: float
    sigma_depth_m: float
    colour: np.ndarray


@dataclass
class _Scene:
    """Camera, weather and layout shared by everything painted in one scene."""

    size: int
    is_night: bool
    air_c: float
    sun: np.ndarray | None  # unit vector towards the sun (x right, y up, z away); None at night
    sun_strength: float
    cloud_cover: float
    horizon_y: float
    vanish_x: float
    focal_px: float
    camera_height_m: float
    road_centre_m: float
    road_width_m: float
    sidewalk_width_m: float
    building_depth_m: float
    noise: tuple[np.ndarray, np.ndarray, np.ndarray]  # smooth image-space noise fields in ~[-1, 1]
    lights: list[_LightPool] = field(default_factory=list)

    @property
    def pixel_scale(self) -> float:
        """Blur radii and line widths are tuned for 256 px and scale with the image."""
        return self.size / 256.0

    def project(self, lateral_m, depth_m):
        """Image (x, y) of ground points; works on floats and arrays alike."""
        px_per_m = self.focal_px / depth_m
        return self.vanish_x + lateral_m * px_per_m, self.horizon_y + self.camera_height_m * px_per_m

    def spot(self, lateral_m: float, depth_m: float) -> _Spot:
        x, y = self.project(lateral_m, depth_m)
        return _Spot(lateral_m, depth_m, x, y, self.focal_px / depth_m)

    def lateral_zones(self, kind: str) -> list[tuple[float, float]]:
        """Lateral intervals (metres) of road lanes, sidewalks or grass verges."""
        half = self.road_width_m / 2
        centre, walk = self.road_centre_m, self.sidewalk_width_m
        if kind == "road":
            return [(centre - half + 0.9, centre + half - 0.9)]
        if kind == "sidewalk":
            return [(centre - half - walk, centre - half), (centre + half, centre + half + walk)]
        return [(centre - half - walk - 12, centre - half - walk), (centre + half + walk, centre + half + walk + 12)]


def _smooth_noise(rng: np.random.Generator, size: int, cell_px: float, octaves: int) -> np.ndarray:
    """Fractal value noise, roughly in [-1, 1], from bicubically upsampled random grids."""
    total = np.zeros((size, size), np.float32)
    weight_sum = 0.0
    for octave in range(octaves):
        cells = max(2, int(round(size / (cell_px / 2**octave))))
        grid = rng.standard_normal((cells, cells), np.float32)
        layer = np.asarray(Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC))
        total += layer * 0.5**octave
        weight_sum += 0.5**octave
    return np.clip(total / weight_sum / 0.8, -1.5, 1.5)


def _sample_scene(rng: np.random.Generator, size: int) -> _Scene:
    is_night = bool(rng.random() < 1 / 3)
    if is_night:
        sun, air_c = None, rng.uniform(2.0, 18.0)
    else:
        # Air stays below ~26 degC so clothing (28-31 degC) is warmer than ambient decoys.
        air_c = rng.uniform(10.0, 26.0)
        azimuth, elevation = rng.uniform(-np.pi, np.pi), np.radians(rng.uniform(25.0, 65.0))
        sun = np.array([np.cos(elevation) * np.sin(azimuth), np.sin(elevation),
                        np.cos(elevation) * np.cos(azimuth)], np.float32)
    road_width = rng.uniform(6.0, 14.0)
    noise_fields = (_smooth_noise(rng, size, 48 * size / 256, 3), _smooth_noise(rng, size, 12 * size / 256, 2),
                    _smooth_noise(rng, size, 6 * size / 256, 2))
    return _Scene(
        size=size, is_night=is_night, air_c=air_c, sun=sun,
        sun_strength=0.0 if is_night else rng.uniform(0.6, 1.0),
        cloud_cover=rng.uniform(0.0, 0.8),
        horizon_y=size * rng.uniform(0.36, 0.48), vanish_x=size * rng.uniform(0.3, 0.7),
        focal_px=size * rng.uniform(0.8, 1.1), camera_height_m=rng.uniform(1.3, 1.8),
        road_centre_m=rng.uniform(-road_width / 2 - 3.0, road_width / 2 + 3.0), road_width_m=road_width,
        sidewalk_width_m=rng.uniform(2.0, 4.5), building_depth_m=rng.uniform(35.0, 80.0), noise=noise_fields,
    )


# --------------------------------------------------------------------------- material canvas


@dataclass
class _Canvas:
    """Per-pixel material maps from which both images are rendered."""

    label: np.ndarray  # H x W uint8
    albedo: np.ndarray  # H x W x 3, linear
    glow: np.ndarray  # H x W x 3, emitted visible light (sky, lamps, lit windows)
    normal: np.ndarray  # H x W x 3, unit surface normal
    temp_shade_c: np.ndarray  # H x W, temperature out of the sun
    temp_sun_c: np.ndarray  # H x W, temperature under full, perpendicular sun
    anchor: np.ndarray  # H x W x 2, ground (lateral, depth) in metres whose lighting the pixel gets

    @classmethod
    def blank(cls, size: int) -> _Canvas:
        def zeros(*channels: int) -> np.ndarray:
            return np.zeros((size, size, *channels), np.float32)

        anchor = np.full((size, size, 2), np.nan, np.float32)
        return cls(np.zeros((size, size), np.uint8), zeros(3), zeros(3), zeros(3), zeros(), zeros(), anchor)

    def paint(self, rows: slice, cols: slice, mask: np.ndarray | None, label: Label, albedo, temp_shade_c,
              temp_sun_c=None, normal=None, glow=None, anchor=None) -> None:
        """Write one material into the masked pixels of the window ``[rows, cols]``.

        ``mask=None`` paints the whole window.  Values are constants, colours/vectors or arrays
        that broadcast to the window; ``normal``, ``glow`` and ``anchor`` (a (lateral, depth)
        pair) keep the pixels' current values when left as None.
        """
        temp_sun_c = temp_shade_c if temp_sun_c is None else temp_sun_c
        anchor = None if anchor is None else np.stack(np.broadcast_arrays(*anchor), -1)
        for target, value in ((self.label, label), (self.albedo, albedo), (self.glow, glow), (self.normal, normal),
                              (self.temp_shade_c, temp_shade_c), (self.temp_sun_c, temp_sun_c), (self.anchor, anchor)):
            if value is None:
                continue
            window = target[rows, cols]
            if mask is None:
                window[...] = value
            else:
                np.copyto(window, value, casting="unsafe", where=mask if window.ndim == 2 else mask[..., None])


class _Stamp:
    """The pixel window of one object standing on ``spot``, with metric coordinates.

    ``u`` (lateral, right positive) and ``h`` (height above the ground) are in metres
    relative to the spot, so shapes are described in metres and come out in perspective.
    """

    def __init__(self, canvas: _Canvas, scene: _Scene, spot: _Spot,
                 u_range: tuple[float, float], h_range: tuple[float, float]) -> None:
        size = canvas.label.shape[0]
        x0, x1 = (spot.x + u * spot.px_per_m for u in u_range)
        y0, y1 = (spot.y - h * spot.px_per_m for h in reversed(h_range))
        # Pixels whose centres fall inside the box.
        col0, col1 = max(0, int(np.ceil(x0 - 0.5))), min(size, int(np.ceil(x1 - 0.5)))
        row0, row1 = max(0, int(np.ceil(y0 - 0.5))), min(size, int(np.ceil(y1 - 0.5)))
        self.canvas, self.scene, self.spot = canvas, scene, spot
        self.rows, self.cols = slice(row0, max(row0, row1)), slice(col0, max(col0, col1))
        self.u = ((np.arange(col0, max(col0, col1)) + 0.5 - spot.x) / spot.px_per_m)[None, :].astype(np.float32)
        self.h = ((spot.y - np.arange(row0, max(row0, row1)) - 0.5) / spot.px_per_m)[:, None].astype(np.float32)
        self.silhouette = np.zeros((self.h.shape[0], self.u.shape[1]), bool)

    @property
    def empty(self) -> bool:
        return self.silhouette.size == 0

    def noise(self, index: int) -> np.ndarray:
        return self.scene.noise[index][self.rows, self.cols]

    def box(self, u0: float, u1: float, h0: float, h1: float) -> np.ndarray:
        return (self.u >= u0) & (self.u < u1) & (self.h >= h0) & (self.h < h1)

    def ellipse(self, centre_u: float, centre_h: float, radius_u: float, radius_h: float) -> np.ndarray:
        return ((self.u - centre_u) / radius_u) ** 2 + ((self.h - centre_h) / radius_h) ** 2 <= 1.0

    def trapezoid(self, h0: float, h1: float, half_width0: float, half_width1: float,
                  centre_u: float = 0.0) -> np.ndarray:
        """Slab between heights ``h0`` and ``h1`` whose half-width changes linearly from one to the other."""
        half_width = half_width0 + (half_width1 - half_width0) * (self.h - h0) / (h1 - h0)
        return (np.abs(self.u - centre_u) <= half_width) & (self.h >= h0) & (self.h < h1)

    def capsule(self, start: tuple[float, float], end: tuple[float, float], radius: float) -> np.ndarray:
        """Points within ``radius`` of the segment ``start``-``end`` (limbs, torsos)."""
        (u0, h0), (u1, h1) = start, end
        du, dh = u1 - u0, h1 - h0
        t = np.clip(((self.u - u0) * du + (self.h - h0) * dh) / max(du * du + dh * dh, 1e-9), 0.0, 1.0)
        return (self.u - u0 - t * du) ** 2 + (self.h - h0 - t * dh) ** 2 <= radius * radius

    def cylinder_normal(self, centre_u: float, radius: float, tilt_up: float = 0.0) -> np.ndarray:
        """Normals of a vertical cylinder around ``centre_u`` (rounds off people, trees, bins)."""
        across = np.clip((self.u - centre_u) / radius, -0.95, 0.95) + np.zeros_like(self.h)
        normal = np.stack([across, np.full_like(across, tilt_up), -np.sqrt(1.0 - across**2)], axis=-1)
        return normal / np.linalg.norm(normal, axis=-1, keepdims=True)

    def paint(self, mask: np.ndarray, label: Label, albedo, temp_shade_c, temp_sun_c=None,
              normal=_FACING_CAMERA, glow=0.0) -> None:
        """Paint a part of the object; every part gets the lighting of the object's ground spot."""
        self.silhouette |= mask
        self.canvas.paint(self.rows, self.cols, mask, label, albedo, temp_shade_c, temp_sun_c, normal, glow,
                          (self.spot.lateral_m, self.spot.depth_m))


def _textured(colour: np.ndarray, noise: np.ndarray, amount: float) -> np.ndarray:
    """Albedo varied by a noise field: ``colour * (1 + amount * noise)``, kept non-negative."""
    return np.maximum(colour * (1.0 + amount * noise[..., None]), 0.0, dtype=np.float32)


def _jitter(rng: np.random.Generator, colour: np.ndarray, amount: float = 0.06) -> np.ndarray:
    return np.clip(colour * rng.uniform(1 - amount, 1 + amount, 3), 0.0, 1.0).astype(np.float32)


def _luminance(colour: np.ndarray) -> float:
    return float(colour @ np.array([0.2126, 0.7152, 0.0722], np.float32))


# --------------------------------------------------------------------------- sky and ground


def _paint_sky(canvas: _Canvas, scene: _Scene, rng: np.random.Generator) -> np.ndarray:
    """Paint the whole canvas as sky; returns the horizon colour (for haze)."""
    size = scene.size
    # 0 at the top of the image, 1 at the horizon.
    towards_horizon = np.clip((np.arange(size) + 0.5) / scene.horizon_y, 0.0, 1.0)[:, None, None]
    clouds = np.clip((scene.noise[0] + 0.45 * scene.noise[1] - (1.0 - 2.0 * scene.cloud_cover)) * 1.5, 0, 1)
    if scene.is_night:
        zenith, horizon = np.array([0.002, 0.003, 0.008]), np.array([0.03, 0.022, 0.015])  # light pollution
        cloud_colour = np.array([0.02, 0.016, 0.012])
    else:
        zenith = np.array([0.06, 0.14, 0.45]) * rng.uniform(0.8, 1.2)
        horizon = np.array([0.55, 0.62, 0.75]) * rng.uniform(0.85, 1.1)
        cloud_colour = np.full(3, 0.85) * rng.uniform(0.7, 1.0)
    colour = zenith + (horizon - zenith) * towards_horizon**1.5
    colour = colour + (cloud_colour - colour) * clouds[..., None] * 0.9
    # Clear sky radiates like a body 30-45 degC below the air; clouds and the horizon are warmer.
    zenith_c = scene.air_c - rng.uniform(32.0, 45.0)
    sky_c = zenith_c + (scene.air_c - 8.0 - zenith_c) * towards_horizon[..., 0] ** 2 + 12.0 * clouds
    canvas.paint(slice(None), slice(None), None, Label.SKY, 0.0, sky_c, glow=colour, anchor=(np.nan, np.nan))
    return (horizon + (cloud_colour - horizon) * 0.9 * float(clouds.mean())).astype(np.float32)


def _ground_texture(rng: np.random.Generator, lateral: np.ndarray, depth: np.ndarray, cell_m: float) -> np.ndarray:
    """Perspective-correct value noise in ~[-1, 1]: sampled at ground coordinates."""
    grid = rng.standard_normal((64, 64), np.float32)
    coords = np.stack([depth / cell_m, lateral / cell_m])
    return ndimage.map_coordinates(grid, coords, order=1, mode="grid-wrap").astype(np.float32) / 0.7


def _periodic_band(coordinate: np.ndarray, period: float, duty: float) -> np.ndarray:
    cycles = coordinate / period
    return cycles - np.floor(cycles) < duty  # faster than np.mod


def _paint_ground(canvas: _Canvas, scene: _Scene, rng: np.random.Generator) -> None:
    size, scale = scene.size, scene.pixel_scale
    first_row = int(np.floor(scene.horizon_y + 0.5))  # first row whose centre lies below the horizon
    rows = slice(first_row, size)
    row_centres = (np.arange(first_row, size) + 0.5)[:, None]
    px_per_m = (row_centres - scene.horizon_y) / scene.camera_height_m
    depth = np.broadcast_to(scene.focal_px / px_per_m, (size - first_row, size)).astype(np.float32)
    lateral = (((np.arange(size) + 0.5)[None, :] - scene.vanish_x) / px_per_m).astype(np.float32)
    from_centre = np.abs(lateral - scene.road_centre_m)
    half = scene.road_width_m / 2
    road = from_centre < half
    sidewalk = (from_centre >= half) & (from_centre < half + scene.sidewalk_width_m)

    # Markings narrower than ~0.4 px are dropped rather than aliased near the horizon.
    resolvable = px_per_m * 0.12 > 0.4 * scale
    edge_lines = road & (from_centre > half - 0.35) & (from_centre < half - 0.2)
    centre_dashes = (from_centre < 0.07) & _periodic_band(depth, rng.uniform(6.0, 12.0), 0.45)
    markings = edge_lines | centre_dashes
    if rng.random() < 0.35:  # zebra crossing
        start = rng.uniform(6.0, 25.0)
        markings |= road & (depth > start) & (depth < start + 4.0) & _periodic_band(lateral, 1.0, 0.5)
    markings &= road & resolvable

    coarse = _ground_texture(rng, lateral, depth, 1.5)
    fine = _ground_texture(rng, lateral, depth, 0.15)
    grain = rng.standard_normal(depth.shape, np.float32) * 0.5
    air, night = scene.air_c, scene.is_night
    cols = slice(None)

    # Grass covers the whole window first and sets what all ground shares: normal, no glow, position.
    dry = np.clip(coarse, 0, 1)[..., None]  # dry, browner patches
    turf = _linear_rgb((70, 110, 45)) * (1 - dry) + _linear_rgb((120, 110, 70)) * dry
    grass_albedo = _textured(turf * rng.uniform(0.8, 1.15), 0.4 * fine + 0.4 * grain, 0.5)
    grass_temp = air - (4.0 if night else 2.0) + 0.4 * fine + 0.4 * coarse  # evaporative / radiative cooling
    canvas.paint(rows, cols, None, Label.GRASS, grass_albedo, grass_temp, grass_temp + (0 if night else 9.0),
                 normal=_UP, glow=0.0, anchor=(lateral, depth))

    asphalt = _linear_rgb((75, 75, 78)) * rng.uniform(0.6, 1.3)
    road_albedo = _textured(asphalt, 0.25 * coarse + 0.15 * fine + 0.3 * grain, 0.6)
    road_temp = air + (rng.uniform(3.0, 6.0) if night else 2.0) + 0.8 * coarse
    road_sun_temp = road_temp + (0 if night else rng.uniform(12.0, 26.0))
    canvas.paint(rows, cols, road, Label.ROAD, road_albedo, road_temp, road_sun_temp)

    paint_colour = _linear_rgb((235, 235, 230)) if rng.random() < 0.7 else _linear_rgb((235, 190, 40))
    canvas.paint(rows, cols, markings, Label.LANE_MARKING, _textured(paint_colour, grain, 0.15),
                 air + (2.0 if night else 1.0), air + (2.0 if night else 10.0))

    slab_m = rng.uniform(0.4, 1.0)  # paving slab size; joints only where they span pixels
    joints = _periodic_band(lateral, slab_m, 0.08) | _periodic_band(depth, slab_m, 0.08)
    joints &= px_per_m * slab_m > 6 * scale
    paving = _linear_rgb((175, 170, 160)) if rng.random() < 0.6 else _linear_rgb((165, 95, 80))
    walk_albedo = _textured(paving * rng.uniform(0.8, 1.1), 0.2 * coarse + 0.3 * grain - 0.5 * joints, 0.5)
    walk_temp = air + (2.0 if night else 1.0) + 0.5 * coarse
    canvas.paint(rows, cols, sidewalk, Label.SIDEWALK, walk_albedo, walk_temp, walk_temp + (0 if night else 14.0))


# --------------------------------------------------------------------------- objects


def _paint_tree_line(canvas: _Canvas, scene: _Scene, rng: np.random.Generator) -> None:
    """A band of distant trees on the horizon just behind the buildings."""
    depth = scene.building_depth_m + 15.0
    spot = scene.spot(0.0, depth)
    lateral = ((np.arange(scene.size) + 0.5) - scene.vanish_x) / spot.px_per_m
    # The skyline is the upper envelope of a row of rounded crowns (3-7 m radius).
    crowns = int((lateral[-1] - lateral[0]) / 4.0) + 2
    centres = rng.uniform(lateral[0] - 4.0, lateral[-1] + 4.0, (crowns, 1))
    radii = rng.uniform(3.0, 7.0, (crowns, 1))
    trunk_heights = rng.uniform(0.0, 5.0, (crowns, 1)) * (rng.random((crowns, 1)) < 0.8)  # gaps between groves
    dome = np.sqrt(np.clip(1.0 - ((lateral - centres) / radii) ** 2, 0.0, None))
    crown_height_m = np.max(np.where(dome > 0, trunk_heights + radii * dome, 0.0), axis=0)
    top = spot.y - crown_height_m * spot.px_per_m
    rows = slice(max(0, int(top.min())), min(scene.size, int(np.ceil(spot.y))))
    row_centres = (np.arange(rows.start, rows.stop) + 0.5)[:, None]
    band = (row_centres >= top[None, :]) & (row_centres < spot.y)
    foliage = _linear_rgb((45, 70, 40)) * rng.uniform(0.7, 1.2)
    temp = scene.air_c - 1.5
    canvas.paint(rows, slice(None), band, Label.VEGETATION, _textured(foliage, scene.noise[2][rows], 0.5),
                 temp, temp + (0 if scene.is_night else 4.0), _FACING_CAMERA, 0.0, (lateral, depth))


def _paint_building(canvas: _Canvas, scene: _Scene, spot: _Spot, rng: np.random.Generator,
                    width_m: float, height_m: float) -> _Stamp:
    stamp = _Stamp(canvas, scene, spot, (-width_m / 2, width_m / 2), (0.0, height_m))
    if stamp.empty:
        return stamp
    style = str(rng.choice(list(_WALL_COLOURS)))
    palette = _WALL_COLOURS[style]
    wall_colour = _jitter(rng, palette[rng.integers(len(palette))], 0.1)
    facing = np.array([rng.uniform(-0.5, 0.5), 0.0, -1.0], np.float32)
    facing /= np.linalg.norm(facing)
    air, night = scene.air_c, scene.is_night

    floor_m, bay_m = rng.uniform(3.0, 3.8), rng.uniform(2.4, 4.0)
    glazed = style == "glass"
    window_w = bay_m * (0.85 if glazed else rng.uniform(0.35, 0.7))
    window_h = floor_m * (0.75 if glazed else rng.uniform(0.4, 0.6))
    sill_m = (floor_m - window_h) / 2
    bays = max(1, int(width_m / bay_m))
    bay_pos = (stamp.u + bays * bay_m / 2) / bay_m  # whole bays, centred on the facade
    floor_pos = stamp.h / floor_m
    in_bay = np.abs(np.mod(bay_pos, 1.0) - 0.5) * bay_m < window_w / 2
    in_floor = np.abs(np.mod(floor_pos, 1.0) * floor_m - sill_m - window_h / 2) < window_h / 2
    windows = (in_bay & in_floor & (bay_pos >= 0) & (bay_pos < bays)
               & (stamp.h >= floor_m * 0.9) & (stamp.h < height_m - 0.8))

    wall_texture = 0.6 * stamp.noise(1) + 0.4 * stamp.noise(2)
    if style == "brick" and spot.px_per_m * 0.25 > 2.5 * scene.pixel_scale:
        wall_texture = wall_texture - 1.2 * _periodic_band(stamp.h, 0.25, 0.2)  # mortar courses
    wall_temp = air + (2.0 if night else 1.0)
    wall_sun_temp = wall_temp + (0 if night else 5.0 + 8.0 * (1 - _luminance(wall_colour)))
    stamp.paint(stamp.box(-width_m, width_m, 0.0, height_m), Label.BUILDING_WALL,
                _textured(wall_colour, wall_texture, 0.15), wall_temp, wall_sun_temp, facing)

    # One random draw per window decides whether it is lit (night) or how bright its reflection is.
    per_window = rng.random((int(height_m / floor_m) + 2, bays + 1))
    window_value = per_window[np.clip(floor_pos.astype(int), 0, per_window.shape[0] - 1),
                              np.clip(bay_pos.astype(int), 0, per_window.shape[1] - 1)]
    if night:
        lit = window_value < rng.uniform(0.2, 0.6)
        glow = np.where(lit[..., None], np.array([1.0, 0.75, 0.4], np.float32) * rng.uniform(0.25, 0.6), 0.0)
        # Heated rooms: glass is warm enough at night to outshine the sky it mirrors, lit rooms more so.
        window_temp = air + rng.uniform(8.0, 12.0) + np.where(lit, 5.0, 0.0)
        stamp.paint(windows, Label.WINDOW, np.full(3, 0.03, np.float32), window_temp, normal=facing,
                    glow=glow.astype(np.float32))
    else:
        reflection = np.array([0.25, 0.3, 0.38], np.float32) * (0.3 + 0.7 * window_value)[..., None]
        stamp.paint(windows, Label.WINDOW, np.full(3, 0.04, np.float32), air + 1.0, air + 3.0, facing,
                    glow=reflection.astype(np.float32))

    if rng.random() < 0.6:  # posters: decoys at wall temperature on the ground floor
        for _ in range(rng.integers(1, 4)):
            poster_w, poster_h = rng.uniform(0.8, 2.5), rng.uniform(1.0, 2.2)
            centre = rng.uniform(-width_m / 2 + poster_w, width_m / 2 - poster_w)
            poster = stamp.box(centre - poster_w / 2, centre + poster_w / 2, 0.5, 0.5 + poster_h)
            colour = _jitter(rng, _PAINT_PALETTE[rng.integers(len(_PAINT_PALETTE))])
            stamp.paint(poster, Label.DECOY, _textured(colour, stamp.noise(2), 0.08), wall_temp, wall_sun_temp, facing)
    return stamp


def _paint_tree(canvas: _Canvas, scene: _Scene, spot: _Spot, rng: np.random.Generator) -> _Stamp:
    height = rng.uniform(4.0, 9.0)
    crown_radius = height * rng.uniform(0.22, 0.35)
    crown_centre = height - crown_radius
    stamp = _Stamp(canvas, scene, spot, (-1.6 * crown_radius, 1.6 * crown_radius), (0.0, height + 0.3))
    if stamp.empty:
        return stamp
    air, night = scene.air_c, scene.is_night
    trunk_half = rng.uniform(0.12, 0.25)
    trunk = stamp.trapezoid(0.0, crown_centre, trunk_half * 1.3, trunk_half * 0.7)
    stamp.paint(trunk, Label.TREE_TRUNK, _textured(_linear_rgb((85, 65, 50)), stamp.noise(2), 0.3),
                air, air + (0 if night else 6.0), stamp.cylinder_normal(0.0, trunk_half))

    # The crown is a union of blobs with a noisy edge.
    crown = np.zeros_like(stamp.silhouette)
    for _ in range(rng.integers(3, 7)):
        cu = rng.uniform(-0.6, 0.6) * crown_radius
        ch = crown_centre + rng.uniform(-0.5, 0.4) * crown_radius
        r = crown_radius * rng.uniform(0.5, 0.8)
        distance = ((stamp.u - cu) ** 2 + (stamp.h - ch) ** 2) / r**2
        crown |= distance < 1.0 + 0.35 * stamp.noise(2)
    leaves = _linear_rgb((55, 95, 40), (40, 80, 45), (80, 110, 50), (190, 110, 40))
    leaf = leaves[rng.choice(len(leaves), p=[0.35, 0.3, 0.25, 0.1])]  # some autumn trees
    bulge = np.clip((stamp.h - crown_centre) / crown_radius, -1, 1)
    normal = stamp.cylinder_normal(0.0, 1.3 * crown_radius) + bulge[..., None] * _UP
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    leaf_temp = air - (2.0 if night else 1.0) + 0.5 * stamp.noise(2)
    leaf_albedo = _textured(_jitter(rng, leaf, 0.15), stamp.noise(2) + 0.5 * stamp.noise(1), 0.6)
    stamp.paint(crown, Label.VEGETATION, leaf_albedo, leaf_temp, leaf_temp + (0 if night else 3.0), normal)
    return stamp


def _paint_street_light(canvas: _Canvas, scene: _Scene, spot: _Spot, rng: np.random.Generator) -> _Stamp:
    height = rng.uniform(5.0, 9.0)
    arm = 1.3 * (1 if spot.lateral_m < scene.road_centre_m else -1)  # the lamp leans over the road
    stamp = _Stamp(canvas, scene, spot, (min(0.0, arm) - 0.4, max(0.0, arm) + 0.4), (0.0, height + 0.1))
    if stamp.empty:
        return stamp
    air, night = scene.air_c, scene.is_night
    metal = _linear_rgb((110, 112, 115)) * rng.uniform(0.6, 1.2)
    pole = stamp.box(-0.07, 0.07, 0.0, height) | stamp.box(min(0.0, arm), max(0.0, arm), height - 0.12, height)
    stamp.paint(pole, Label.POLE, metal, air, air + (0 if night else 8.0), stamp.cylinder_normal(0.0, 0.07))
    lamp = stamp.box(arm - 0.25, arm + 0.25, height - 0.3, height - 0.05)
    colour = np.array([1.0, 0.62, 0.3] if rng.random() < 0.5 else [0.9, 0.95, 1.0], np.float32)
    if night:
        stamp.paint(lamp, Label.LAMP, np.full(3, 0.5, np.float32), air + 45.0, glow=colour * 6.0)
        scene.lights.append(_LightPool(spot.lateral_m + arm, spot.depth_m, 0.55 * height, 0.55 * height,
                                       colour * rng.uniform(0.25, 0.45)))
    else:
        stamp.paint(lamp, Label.LAMP, np.full(3, 0.6, np.float32), air, air + 6.0)
    return stamp


def _paint_person(canvas: _Canvas, scene: _Scene, spot: _Spot, rng: np.random.Generator) -> _Stamp:
    height = rng.uniform(1.5, 1.9)
    stamp = _Stamp(canvas, scene, spot, (-0.35 * height, 0.35 * height), (0.0, height))
    if stamp.empty:
        return stamp
    shirt = _jitter(rng, _PAINT_PALETTE[rng.integers(len(_PAINT_PALETTE))])
    trousers = _jitter(rng, _PAINT_PALETTE[rng.integers(len(_PAINT_PALETTE))])
    skin = _jitter(rng, _SKIN_TONES[rng.integers(len(_SKIN_TONES))])
    hair = _jitter(rng, _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))])
    # Body heat fixes these whatever the weather or the colour of the fabric.
    skin_c, clothing_c, hair_c = rng.uniform(33.0, 35.0), rng.uniform(28.0, 31.0), rng.uniform(30.0, 32.0)
    sun_gain = 0.0 if scene.is_night else 1.5

    h = height
    shoulder = 0.12 * h * rng.uniform(0.75, 1.0)  # narrower when seen side-on
    stride, swing = rng.uniform(-0.08, 0.08) * h, rng.uniform(-0.06, 0.06) * h
    short_sleeves = rng.random() < 0.5
    normal = stamp.cylinder_normal(0.0, 0.2 * h)
    fabric = stamp.noise(2) * 0.5

    def put(mask: np.ndarray, label: Label, colour: np.ndarray, temp_c: float) -> None:
        stamp.paint(mask, label, _textured(colour, fabric, 0.2), temp_c, temp_c + sun_gain, normal)

    legs = (stamp.capsule((-0.05 * h, 0.48 * h), (-0.06 * h - stride, 0.03 * h), 0.055 * h)
            | stamp.capsule((0.05 * h, 0.48 * h), (0.06 * h + stride, 0.03 * h), 0.055 * h))
    put(legs, Label.PERSON_CLOTHING, trousers, clothing_c)
    shoes = (stamp.ellipse(-0.08 * h - stride, 0.02 * h, 0.06 * h, 0.025 * h)
             | stamp.ellipse(0.08 * h + stride, 0.02 * h, 0.06 * h, 0.025 * h))
    put(shoes, Label.PERSON_CLOTHING, _PAINT_PALETTE[12], clothing_c - 1.0)
    for side, arm_swing in ((-1, swing), (1, -swing)):
        shoulder_joint = (side * shoulder, 0.8 * h)
        elbow = (side * (shoulder + 0.02 * h) + arm_swing * 0.5, 0.64 * h)
        hand = (side * (shoulder + 0.03 * h) + arm_swing, 0.48 * h)
        put(stamp.capsule(shoulder_joint, elbow, 0.035 * h), Label.PERSON_CLOTHING, shirt, clothing_c)
        forearm = stamp.capsule(elbow, hand, 0.03 * h)
        if short_sleeves:
            put(forearm, Label.PERSON_SKIN, skin, skin_c)
        else:
            put(forearm, Label.PERSON_CLOTHING, shirt, clothing_c)
            put(stamp.ellipse(hand[0], hand[1] - 0.01 * h, 0.025 * h, 0.03 * h), Label.PERSON_SKIN, skin, skin_c)
    put(stamp.capsule((0.0, 0.55 * h), (0.0, 0.77 * h), shoulder), Label.PERSON_CLOTHING, shirt, clothing_c)
    put(stamp.box(-0.025 * h, 0.025 * h, 0.8 * h, 0.87 * h), Label.PERSON_SKIN, skin, skin_c)
    put(stamp.ellipse(0.0, 0.925 * h, 0.055 * h, 0.07 * h), Label.PERSON_SKIN, skin, skin_c)
    put(stamp.ellipse(0.0, 0.95 * h, 0.058 * h, 0.05 * h) & (stamp.h > 0.94 * h), Label.PERSON_HAIR, hair, hair_c)
    return stamp


def _paint_car(canvas: _Canvas, scene: _Scene, spot: _Spot, rng: np.random.Generator) -> _Stamp:
    """A car seen from behind, from the front or side-on; running cars have hot engines and tyres."""
    view = str(rng.choice(["rear", "front", "side"], p=[0.4, 0.35, 0.25]))
    half_len = (rng.uniform(2.0, 2.4) if view == "side" else rng.uniform(0.85, 0.95))
    roof = rng.uniform(1.35, 1.6)
    stamp = _Stamp(canvas, scene, spot, (-half_len, half_len), (0.0, roof))
    if stamp.empty:
        return stamp
    air, night = scene.air_c, scene.is_night
    running = rng.random() < 0.7
    paint = _jitter(rng, _PAINT_PALETTE[rng.integers(len(_PAINT_PALETTE))])
    body_temp = air + 1.0
    body_sun_temp = body_temp + (0 if night else 6.0 + 10.0 * (1 - _luminance(paint)))
    body_normal = stamp.cylinder_normal(0.0, 1.6 * half_len)
    roof_normal = stamp.cylinder_normal(0.0, 1.6 * half_len, tilt_up=0.8)
    glass = np.array([0.03, 0.035, 0.045], np.float32)
    sky_glint = np.array([0.1, 0.12, 0.15], np.float32) * (0.0 if night else 1.0)
    tyre_temp = air + (rng.uniform(10.0, 18.0) if running else 1.0)
    rubber = np.full(3, 0.03, np.float32)
    belt = 0.8 * roof / 1.45  # where the cabin starts

    if view == "side":
        forward = 1 if rng.random() < 0.5 else -1
        wheel_r = 0.32
        cabin = stamp.trapezoid(belt, roof, 0.55 * half_len, 0.32 * half_len, centre_u=-0.12 * forward * half_len)
        stamp.paint(cabin, Label.CAR_BODY, paint, body_temp, body_sun_temp, roof_normal)
        side_glass = stamp.trapezoid(belt + 0.05, roof - 0.07, 0.5 * half_len, 0.28 * half_len,
                                     centre_u=-0.12 * forward * half_len)
        stamp.paint(side_glass, Label.CAR_WINDOW, glass, air + 1.0, air + 3.0, roof_normal, sky_glint)
        lower = stamp.box(-half_len, half_len, 0.22, belt) & stamp.ellipse(0.0, belt - 0.3, half_len * 1.02, 0.62)
        stamp.paint(lower, Label.CAR_BODY, paint, body_temp, body_sun_temp, body_normal)
        bonnet = lower & (stamp.u * forward > 0.45 * half_len)
        if running:
            stamp.paint(bonnet, Label.CAR_BODY, paint, air + rng.uniform(20.0, 30.0), normal=body_normal)
        for wheel_u in (-0.65 * half_len, 0.65 * half_len):
            stamp.paint(stamp.ellipse(wheel_u, wheel_r, wheel_r, wheel_r), Label.TYRE, rubber, tyre_temp)
            stamp.paint(stamp.ellipse(wheel_u, wheel_r, 0.45 * wheel_r, 0.45 * wheel_r), Label.TYRE,
                        np.full(3, 0.35, np.float32), tyre_temp)
        lamp_u = forward * (half_len - 0.08)
        lamp_mask = stamp.box(lamp_u - 0.08, lamp_u + 0.08, belt - 0.22, belt - 0.08)
        stamp.paint(lamp_mask, Label.CAR_LIGHT, np.array([0.8, 0.8, 0.7], np.float32),
                    air + (8.0 if running and night else 0.0), glow=np.array([2.0, 1.9, 1.6]) * (running and night))
        return stamp

    cabin = stamp.trapezoid(belt, roof, 0.92 * half_len, 0.72 * half_len)
    stamp.paint(cabin, Label.CAR_BODY, paint, body_temp, body_sun_temp, roof_normal)
    screen = stamp.trapezoid(belt + 0.05, roof - 0.07, 0.84 * half_len, 0.66 * half_len)
    stamp.paint(screen, Label.CAR_WINDOW, glass, air + 1.0, air + 3.0, roof_normal, sky_glint)
    for side in (-1, 1):
        wheel = stamp.box(side * half_len * 0.98 - 0.12, side * half_len * 0.98 + 0.12, 0.0, 0.4)
        stamp.paint(wheel, Label.TYRE, rubber, tyre_temp)
    lower = stamp.box(-half_len, half_len, 0.18, belt)
    stamp.paint(lower, Label.CAR_BODY, paint, body_temp, body_sun_temp, body_normal)
    stamp.paint(stamp.box(-0.22, 0.22, 0.3, 0.42), Label.CAR_BODY, np.full(3, 0.7, np.float32), body_temp)  # plate
    lamp_h = (belt - 0.28, belt - 0.1)
    lamps = stamp.box(-half_len + 0.05, -half_len + 0.3, *lamp_h) | stamp.box(half_len - 0.3, half_len - 0.05, *lamp_h)
    lit = running and night
    if view == "front":
        if running:  # warm grille and bonnet edge
            grille = stamp.box(-0.5, 0.5, 0.3, belt - 0.05) & ~lamps
            stamp.paint(grille, Label.CAR_BODY, paint * 0.4, air + rng.uniform(20.0, 30.0), normal=body_normal)
        stamp.paint(lamps, Label.CAR_LIGHT, np.array([0.8, 0.8, 0.75], np.float32), air + (10.0 if lit else 0.0),
                    glow=np.array([3.0, 2.9, 2.5], np.float32) * lit)
        if lit:  # headlight beam on the road in front of the car (towards the camera)
            scene.lights.append(_LightPool(spot.lateral_m, spot.depth_m - 6.0, 1.6, 5.0,
                                           np.array([0.5, 0.48, 0.42], np.float32)))
    else:
        stamp.paint(lamps, Label.CAR_LIGHT, np.array([0.5, 0.04, 0.03], np.float32), air + (6.0 if lit else 0.0),
                    glow=np.array([1.2, 0.05, 0.03], np.float32) * lit)
        if running:  # exhaust pipe
            exhaust_u = 0.55 * half_len * (1 if rng.random() < 0.5 else -1)
            stamp.paint(stamp.ellipse(exhaust_u, 0.2, 0.06, 0.045), Label.CAR_BODY, np.full(3, 0.05, np.float32),
                        rng.uniform(50.0, 90.0))
    return stamp


def _paint_decoy(canvas: _Canvas, scene: _Scene, spot: _Spot, rng: np.random.Generator) -> _Stamp:
    """Boxes, bins, signs, banners and kiosks in clothing/car colours but at air temperature."""
    kind = str(rng.choice(["box", "bin", "sign", "banner", "kiosk"]))
    (min_width, max_width), (min_height, max_height) = {
        "box": ((0.4, 1.0), (0.3, 0.9)), "bin": ((0.5, 0.8), (0.9, 1.2)), "sign": ((0.6, 1.2), (2.0, 2.6)),
        "banner": ((0.5, 0.9), (1.5, 2.0)), "kiosk": ((0.8, 1.3), (1.6, 2.0)),
    }[kind]
    width, height = rng.uniform(min_width, max_width), rng.uniform(min_height, max_height)
    stamp = _Stamp(canvas, scene, spot, (-width / 2, width / 2), (0.0, height))
    if stamp.empty:
        return stamp
    main, accent = (_jitter(rng, _PAINT_PALETTE[i]) for i in rng.integers(len(_PAINT_PALETTE), size=2))
    # Ambient whatever the colour: sunlight warms it by the same small amount for every paint.
    temp = scene.air_c + rng.uniform(-1.0, 1.5)
    sun_temp = temp + (0.0 if scene.is_night else 1.5)
    texture = 0.4 * stamp.noise(2)
    normal = stamp.cylinder_normal(0.0, width) if kind in ("bin", "banner") else _FACING_CAMERA

    def put(mask: np.ndarray, colour: np.ndarray, label: Label = Label.DECOY, surface_normal=normal) -> None:
        stamp.paint(mask, label, _textured(colour, texture, 0.15), temp, sun_temp, surface_normal)

    half = width / 2
    if kind == "sign":
        pole = stamp.box(-0.04, 0.04, 0.0, height)
        put(pole, _linear_rgb((120, 120, 125)), Label.POLE)
        put(stamp.box(-half, half, height - 0.9 * width, height), main)
        put(stamp.box(-half * 0.8, half * 0.8, height - 0.55 * width, height - 0.35 * width), accent)
        return stamp
    body = stamp.box(-half, half, 0.0, height)
    if kind == "bin":
        body &= stamp.ellipse(0.0, height * 0.5, half * 1.1, height * 0.6)
    put(body, main)
    if kind in ("box", "kiosk"):  # lit top face and a contrasting stripe
        put(stamp.box(-half, half, height - 0.12 * height, height), main * 1.15, surface_normal=_UP)
    put(stamp.box(-half, half, 0.45 * height, 0.6 * height) & body, accent)
    return stamp


# --------------------------------------------------------------------------- layout


def _sample_spot(scene: _Scene, rng: np.random.Generator, zone_kinds: tuple[str, ...],
                 depth_range: tuple[float, float]) -> _Spot | None:
    """A ground spot in one of the given zones, at a log-uniform depth, visible in the image."""
    nearest = scene.focal_px * scene.camera_height_m / (scene.size - scene.horizon_y)  # ground at the bottom edge
    low, high = max(depth_range[0], 0.9 * nearest), min(depth_range[1], scene.building_depth_m - 3.0)
    if low >= high:
        return None
    zones = [zone for kind in zone_kinds for zone in scene.lateral_zones(kind)]
    for _ in range(10):
        depth = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        px_per_m = scene.focal_px / depth
        visible = (-scene.vanish_x / px_per_m, (scene.size - scene.vanish_x) / px_per_m)
        zone = zones[rng.integers(len(zones))]
        left, right = max(zone[0], visible[0]), min(zone[1], visible[1])
        if left < right:
            return scene.spot(float(rng.uniform(left, right)), depth)
    return None


def _plan_buildings(scene: _Scene, rng: np.random.Generator) -> list[tuple[_Spot, float, float]]:
    """(spot, width, height) of buildings along the far building line, leaving the street open."""
    depth = scene.building_depth_m
    px_per_m = scene.focal_px / depth
    street = (scene.road_centre_m - scene.road_width_m / 2 - scene.sidewalk_width_m - 2.0,
              scene.road_centre_m + scene.road_width_m / 2 + scene.sidewalk_width_m + 2.0)
    left_edge, right_edge = -scene.vanish_x / px_per_m, (scene.size - scene.vanish_x) / px_per_m
    buildings = []
    cursor = left_edge - rng.uniform(0.0, 15.0)
    while cursor < right_edge:
        width = rng.uniform(10.0, 35.0)
        start, end = cursor, cursor + width
        if end > street[0] and start < street[1]:
            cursor = street[1] + rng.uniform(0.0, 6.0)
            continue
        if rng.random() < 0.85:
            spot = scene.spot((start + end) / 2, depth + rng.uniform(0.0, 10.0))
            buildings.append((spot, width, rng.uniform(7.0, 30.0)))
        cursor = end + rng.uniform(0.0, 8.0)
    return buildings


def _cast_shadow(scene: _Scene, stamp: _Stamp, shadow: np.ndarray, thickness_m: float) -> None:
    """Project the object's silhouette along the sun onto the ground and mark it in ``shadow``.

    Each silhouette pixel (oversampled so stretched shadows stay solid) sits at some
    height above the object's ground spot; following the sun ray down from there lands
    on the ground, which is projected back into the image.
    """
    rows, cols = np.nonzero(stamp.silhouette)
    if rows.size == 0:
        return
    spot, sun = stamp.spot, scene.sun
    per_m_lateral, per_m_depth = -sun[0] / sun[1], -sun[2] / sun[1]  # shadow offset per metre of height
    oversample = 2
    offsets = (np.arange(oversample) + 0.5) / oversample
    sub_rows = (rows[:, None, None] + stamp.rows.start + offsets[None, :, None]).ravel()
    sub_cols = (cols[:, None, None] + stamp.cols.start + offsets[None, None, :]).ravel()
    height = (spot.y - sub_rows) / spot.px_per_m
    lateral = spot.lateral_m + (sub_cols - spot.x) / spot.px_per_m + height * per_m_lateral
    hits = []
    for depth_offset in np.linspace(0.0, thickness_m, max(1, int(np.ceil(thickness_m / 0.5))) + 1):
        depth = spot.depth_m + depth_offset + height * per_m_depth
        ahead = (depth > 1.0) & (height > 0)
        x, y = scene.project(lateral[ahead], depth[ahead])
        hits.append(np.stack([y, x]))
    points = np.floor(np.concatenate(hits, axis=1)).astype(np.int64)
    inside = np.all((points >= 0) & (points < scene.size), axis=0)
    if not inside.any():
        return
    points = points[:, inside]
    low, high = points.min(axis=1) - 2, points.max(axis=1) + 3
    local = np.zeros(high - low, bool)
    local[points[0] - low[0], points[1] - low[1]] = True
    local = ndimage.binary_closing(local, np.ones((3, 3), bool))  # close gaps between splatted samples
    top, left = np.maximum(low, 0)
    bottom, right = np.minimum(high, scene.size)
    shadow[top:bottom, left:right] |= local[top - low[0]:bottom - low[0], left - low[1]:right - low[1]]


# Thickness along the view direction, so shadows with the sun from the side are not slivers.
_THICKNESS_M = {_paint_person: 0.3, _paint_car: 3.0, _paint_tree: 1.5, _paint_decoy: 0.5, _paint_street_light: 0.1}


def _paint_objects(canvas: _Canvas, scene: _Scene, rng: np.random.Generator) -> np.ndarray:
    """Place and paint everything standing on the ground, far to near; returns the cast-shadow mask."""
    placements = []  # (spot, painter)
    counts_zones_depths = (
        (_paint_person, rng.integers(2, 8), ("sidewalk", "sidewalk", "grass", "road"), (3.0, 35.0)),
        (_paint_decoy, rng.integers(2, 7), ("sidewalk", "grass"), (3.0, 35.0)),
        (_paint_car, rng.integers(0, 5), ("road",), (5.0, 60.0)),
        (_paint_tree, rng.integers(1, 6), ("grass", "sidewalk"), (6.0, 60.0)),
        (_paint_street_light, rng.integers(1, 5), ("sidewalk",), (6.0, 60.0)),
    )
    for painter, count, zones, depths in counts_zones_depths:
        for index in range(count):
            # The first person is kept fairly close so every scene has a clearly visible one.
            near_depths = (3.0, 12.0) if painter is _paint_person and index == 0 else depths
            spot = _sample_spot(scene, rng, zones, near_depths)
            if spot is not None:
                placements.append((spot, painter))

    shadow = np.zeros((scene.size, scene.size), bool)
    _paint_tree_line(canvas, scene, rng)
    for spot, width, height in sorted(_plan_buildings(scene, rng), key=lambda building: -building[0].depth_m):
        stamp = _paint_building(canvas, scene, spot, rng, width, height)
        if scene.sun is not None and not stamp.empty:
            _cast_shadow(scene, stamp, shadow, 0.0)
    for spot, painter in sorted(placements, key=lambda placement: -placement[0].depth_m):
        stamp = painter(canvas, scene, spot, rng)
        if scene.sun is not None and not stamp.empty:
            _cast_shadow(scene, stamp, shadow, _THICKNESS_M[painter])
    return shadow


# --------------------------------------------------------------------------- cameras


def _ground_mask(canvas: _Canvas) -> np.ndarray:
    return np.isin(canvas.label, np.asarray(_GROUND_LABELS, np.uint8))


def _sun_exposure(canvas: _Canvas, scene: _Scene, shadow: np.ndarray, shadow_blur_px: float) -> np.ndarray:
    """Direct-sun irradiance factor per pixel: cosine law, minus cast shadows on the ground."""
    if scene.sun is None:
        return np.zeros(canvas.label.shape, np.float32)
    cosine = np.clip(canvas.normal @ scene.sun, 0.0, 1.0)
    cast = ndimage.gaussian_filter(shadow.astype(np.float32), shadow_blur_px) * _ground_mask(canvas)
    return (scene.sun_strength * cosine * (1.0 - cast)).astype(np.float32)


def _render_visible(canvas: _Canvas, scene: _Scene, shadow: np.ndarray, haze_colour: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    scale = scene.pixel_scale
    if scene.is_night:
        light = np.broadcast_to(np.array([0.012, 0.013, 0.02], np.float32), canvas.albedo.shape).copy()
        lateral, depth = canvas.anchor[..., 0], canvas.anchor[..., 1]
        for pool in scene.lights:
            weight = np.exp(-0.5 * (((lateral - pool.lateral_m) / pool.sigma_lateral_m) ** 2
                                    + ((depth - pool.depth_m) / pool.sigma_depth_m) ** 2))
            light += np.nan_to_num(weight)[..., None] * pool.colour
        exposure = rng.uniform(2.5, 4.5)
    else:
        sky_light = np.array([0.55, 0.62, 0.8], np.float32) * rng.uniform(0.25, 0.4) * (1 + 0.5 * scene.cloud_cover)
        sun_colour = np.array([1.0, 0.95, 0.85], np.float32) * 1.1
        skylight_share = 0.6 + 0.4 * canvas.normal[..., 1:2]  # surfaces facing up see more sky
        light = sky_light * skylight_share + sun_colour * _sun_exposure(canvas, scene, shadow, 0.6 * scale)[..., None]
        exposure = rng.uniform(0.85, 1.15)
    linear = canvas.albedo * light + canvas.glow
    if scene.is_night:  # blooming around lamps and headlights
        linear += 0.3 * ndimage.gaussian_filter(canvas.glow, (3 * scale, 3 * scale, 0))
    # Aerial perspective: distant surfaces fade towards the horizon colour.
    depth = np.nan_to_num(canvas.anchor[..., 1], nan=0.0)
    clarity = np.exp(-depth / (rng.uniform(150.0, 400.0) if not scene.is_night else 300.0))[..., None]
    linear = linear * clarity + haze_colour * (1 - clarity)
    linear = ndimage.gaussian_filter(linear * exposure, (0.5 * scale, 0.5 * scale, 0))
    srgb = np.clip(linear, 0.0, 1.0) ** (1 / 2.2) * 255.0
    srgb += (3.5 if scene.is_night else 1.5) * rng.standard_normal(srgb.shape, np.float32)  # sensor noise
    return np.clip(np.round(srgb), 0, 255).astype(np.uint8)


def _plateau_equalise(signal: np.ndarray, strength: float) -> np.ndarray:
    """Blend a linear [0, 1] image with its plateau-limited histogram equalisation.

    Thermal cameras do this so that a cold sky or a hot road does not squeeze the rest of
    the scene into a few grey levels; the plateau stops large flat areas from taking over.
    """
    counts, edges = np.histogram(signal, bins=256, range=(0.0, 1.0))
    counts = np.minimum(counts, 4.0 * counts.mean())
    cdf = np.cumsum(counts) / counts.sum()
    equalised = np.interp(signal, edges[1:], cdf).astype(np.float32)
    return (1.0 - strength) * signal + strength * equalised


def _render_infrared(canvas: _Canvas, scene: _Scene, shadow: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    scale = scene.pixel_scale
    size = scene.size
    # Shadows in LWIR are soft: the ground cools slowly after the shade arrives.
    exposure = _sun_exposure(canvas, scene, shadow, 2.5 * scale)
    temp_c = canvas.temp_shade_c + (canvas.temp_sun_c - canvas.temp_shade_c) * exposure

    # Heat diffusion inside solid surfaces (normalised so the sky does not bleed into them).
    solid = (canvas.label != Label.SKY).astype(np.float32)
    blur = 1.2 * scale
    diffused = ndimage.gaussian_filter(temp_c * solid, blur) / np.maximum(ndimage.gaussian_filter(solid, blur), 1e-3)
    temp_c = np.where(solid > 0, diffused, temp_c)

    # Grey-body radiance, Stefan-Boltzmann T^4 scaled by 1e-9: emitted + reflected sky/surroundings.
    emissivity, sky_view = _EMISSIVITY[canvas.label], _SKY_VIEW[canvas.label]
    sky_k, air_k = scene.air_c - 30.0 + _CELSIUS_TO_KELVIN, scene.air_c + _CELSIUS_TO_KELVIN
    reflected = sky_view * sky_k**4 + (1 - sky_view) * air_k**4
    radiance = (emissivity * (temp_c + _CELSIUS_TO_KELVIN) ** 4 + (1 - emissivity) * reflected) / 1e9
    radiance = ndimage.gaussian_filter(radiance, 0.8 * scale)  # optics

    # Automatic gain control from robust percentiles, then the detector's imperfections.
    low, high = np.percentile(radiance, [rng.uniform(0.5, 2.0), rng.uniform(99.0, 99.8)])
    signal = np.clip((radiance - low) / max(high - low, 1e-6), 0.0, 1.0)
    signal = _plateau_equalise(signal, rng.uniform(0.4, 0.75))
    y, x = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
    signal *= 1.0 - rng.uniform(0.05, 0.15) * (x**2 + y**2) / 2  # vignetting
    signal += 0.006 * rng.standard_normal((1, size), np.float32)  # fixed-pattern column offsets
    signal += 0.008 * rng.standard_normal(signal.shape, np.float32)  # temporal noise
    return np.clip(np.round(signal * 255.0), 0, 255).astype(np.uint8)


def render_scene(rng: np.random.Generator, size: int = 256) -> SceneSample:
    """Render one random street scene as pixel-aligned visible and infrared images.

    Everything random is drawn from ``rng``, so a generator seeded the same way always
    gives the same images.
    """
    scene = _sample_scene(rng, size)
    canvas = _Canvas.blank(size)
    haze_colour = _paint_sky(canvas, scene, rng)
    _paint_ground(canvas, scene, rng)
    shadow = _paint_objects(canvas, scene, rng)
    visible = _render_visible(canvas, scene, shadow, haze_colour, rng)
    infrared = _render_infrared(canvas, scene, shadow, rng)
    return SceneSample(visible=visible, infrared=infrared, labels=canvas.label.copy(), is_night=scene.is_night)


# --------------------------------------------------------------------------- dataset files


def _image_seed(seed: int, split: str, index: int) -> list[int]:
    """Entropy for one image: independent of how many images or workers are used."""
    return [seed, SPLITS.index(split), index]


def _aligned_ab(sample: SceneSample) -> np.ndarray:
    """pix2pix aligned layout: infrared (A, grey as RGB) left, visible (B) right."""
    infrared_rgb = np.repeat(sample.infrared[..., None], 3, axis=2)
    return np.concatenate([infrared_rgb, sample.visible], axis=1)


def _write_png_atomically(image: np.ndarray, path: Path) -> None:
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    # These noisy images compress only ~15% better at the default level 6, which is 3x slower.
    Image.fromarray(image).save(temporary, format="PNG", compress_level=1)
    os.replace(temporary, path)


def _render_to_file(job: tuple[int, str, int, int, Path]) -> None:
    seed, split, index, size, path = job
    sample = render_scene(np.random.default_rng(_image_seed(seed, split, index)), size)
    _write_png_atomically(_aligned_ab(sample), path)


def _metadata(seed: int, size: int, counts: dict[str, int]) -> dict:
    return {"generator": "synthetic_v2ir", "version": GENERATOR_VERSION, "seed": seed, "size": size,
            "counts": counts, "layout": "aligned AB: A=infrared (left), B=visible (right)"}


def generate_dataset(root: str | Path, seed: int = 0, num_train: int = 200, num_val: int = 20, num_test: int = 40,
                     size: int = 256, workers: int = 1) -> Path:
    """Write ``root/{train,val,test}/NNNNN.png`` aligned infrared|visible pairs.

    Image ``i`` of a split is seeded from ``(seed, split, i)`` alone, so the output is
    bit-identical across runs and worker counts, and a larger dataset extends a smaller
    one.  ``root/synthetic_v2ir.json`` is removed first and written last, so its presence
    marks a complete dataset.  Returns ``root`` as a :class:`~pathlib.Path`.
    """
    root = Path(root)
    counts = {"train": num_train, "val": num_val, "test": num_test}
    if size < 32 or any(count < 0 for count in counts.values()):
        raise ValueError(f"need size >= 32 and non-negative counts, got size={size}, counts={counts}")
    root.mkdir(parents=True, exist_ok=True)
    (root / METADATA_FILENAME).unlink(missing_ok=True)
    jobs = []
    for split, count in counts.items():
        split_dir = root / split
        split_dir.mkdir(exist_ok=True)
        for stale in split_dir.iterdir():  # from an earlier, larger dataset or an interrupted run
            if (re.fullmatch(r"\d+\.png", stale.name) and int(stale.stem) >= count) or ".png.tmp-" in stale.name:
                stale.unlink()
        jobs += [(seed, split, index, size, split_dir / f"{index:05d}.png") for index in range(count)]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_render_to_file, jobs, chunksize=4))
    else:
        for job in jobs:
            _render_to_file(job)
    temporary = root / f"{METADATA_FILENAME}.tmp-{os.getpid()}"
    temporary.write_text(json.dumps(_metadata(seed, size, counts), indent=2) + "\n")
    os.replace(temporary, root / METADATA_FILENAME)
    return root


def ensure_synthetic_dataset(root: str | Path, seed: int = 0, *, num_train: int = 200, num_val: int = 20,
                             num_test: int = 40, size: int = 256, workers: int = 1) -> Path:
    """Generate the dataset at ``root`` unless a complete one with these parameters is already there."""
    root = Path(root)
    counts = {"train": num_train, "val": num_val, "test": num_test}
    metadata_path = root / METADATA_FILENAME
    if metadata_path.is_file():
        try:
            found = json.loads(metadata_path.read_text())
        except json.JSONDecodeError:
            found = None
        expected = (root / split / f"{index:05d}.png" for split, count in counts.items() for index in range(count))
        if found == _metadata(seed, size, counts) and all(path.is_file() for path in expected):
            return root
    logger.info("Generating synthetic visible/infrared dataset in %s (seed=%d, size=%d, train/val/test=%d/%d/%d)",
                root, seed, size, num_train, num_val, num_test)
    return generate_dataset(root, seed, num_train, num_val, num_test, size, workers)
