"""Synthetic PASCAL VOC 2012 and Cityscapes datasets in the official on-disk layouts.

The scenes are small but carry the difficulties of real ones, so that a model cannot solve them
perfectly and two models can be told apart, while a small network trained briefly still scores well:

* **scale**: objects from a few pixels (VOC's birds, far Cityscapes people and signs) to more than half
  the frame;
* **thin structures**: bicycle frames and wheels, limbs, tails, wires and poles three pixels wide or less;
* **occlusion**: objects overlap and later ones hide earlier ones (the mask shows what is visible);
* **class imbalance**: some classes (VOC's birds and bicycles, Cityscapes' poles, signs and people)
  cover under 2% of the pixels of a dataset;
* **texture and colour overlap**: every class is a colour *distribution* (several base colours, a random
  shift per object) modulated by a texture, a shading gradient and grain, over a background of two
  textured regions crossed by wires; some colours are shared (teal bicycles and cyan screens, dark
  tyres, monitor frames and wires, white aeroplanes and pale skies, slate birds and grey ground), so
  texture, shape and context decide as much as colour;
* **lighting**: a per-image brightness, contrast, colour cast and illumination gradient, then lens
  blur and sensor noise;
* **compression**: pictures go through JPEG at :data:`JPEG_QUALITY` (VOC's are stored as JPEG,
  Cityscapes' as PNG, as in the real layouts, with the JPEG artefacts kept); masks stay lossless PNG.

Everything is deterministic for a given seed, and image ``i`` does not depend on how many images are
written. Only numpy, OpenCV and Pillow are used.

Layouts written (``out_dir`` relative), with the folder and file names of the dataset layouts in
:mod:`components.core.datasets.voc` and :mod:`components.core.datasets.cityscapes`, which ingestion
and scoring read:

* VOC: ``VOCdevkit/VOC2012/JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` (palette PNG of class
  indices with a void band of 255 along every object boundary, as in the official masks; where the band
  would swallow most of a thin or tiny object, the object keeps its pixels and the band lies around it)
  and ``ImageSets/Segmentation/{train,val,trainval}.txt``.
* Cityscapes: ``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and, beside it under
  ``gtFine/``, ``..._gtFine_labelIds.png`` (raw label ids) and ``..._gtFine_labelTrainIds.png``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pathlib
import shutil
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw

from components.core import datasets
from components.core.datasets import cityscapes, voc
from components.core.label_maps import load_label_map

Pattern = Callable[[tuple[int, int], np.random.Generator, float], np.ndarray]
"""Draws a texture of the given (height, width) with values roughly in -1..1; the float is the scale
(image pixels per pixel of a 64-pixel frame), so that textures keep their look at every image size."""

Box = tuple[int, int, int, int]
"""(left, top, right, bottom) pixel box, inclusive."""

ShapeDrawer = Callable[[ImageDraw.ImageDraw, Box, np.random.Generator], None]
"""Fills one shape inside a box on an 'L' canvas."""

Color = tuple[float, float, float]

SENSOR_NOISE_STD = 5.0
"""Standard deviation (grey levels) of the noise added to every finished picture, before JPEG."""

JPEG_QUALITY = 75
"""JPEG quality every picture goes through (moderate: visible blocking and chroma bleeding)."""

VOC_JPEG_QUALITY = JPEG_QUALITY
"""JPEG quality of the VOC pictures (the official ones are JPEGs too)."""

VOC_VOID_RADIUS = 1
"""Pixels within this distance of a label change become void (255): a band two pixels wide."""

LIGHTING = {"gain": (0.8, 1.15), "contrast": (0.85, 1.1), "cast": 0.06, "gradient": 0.2, "blur": 0.5}
"""Per-image lighting ranges: brightness gain, contrast around the mean, per-channel colour cast
(+-), strength of a linear illumination gradient (+-) in a random direction, and the lens blur's sigma
in pixels of a 64-pixel frame."""

CITYSCAPES_CITIES: Mapping[str, tuple[str, ...]] = {
    "train": ("aachen", "bochum"),
    "val": ("frankfurt", "lindau"),
}
"""Default cities per split; all are real Cityscapes cities of that split."""


# --------------------------------------------------------------------------------------------------
# Textures and appearance
# --------------------------------------------------------------------------------------------------


def _flat(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """No texture."""
    return np.zeros(shape)


def _speckle(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """Fine per-pixel grain (fur, foliage, asphalt), slightly clumped at large scales."""
    grain = rng.standard_normal(shape)
    if scale > 1.5:
        grain = cv2.GaussianBlur(grain, (0, 0), 0.4 * scale) * max(1.0, 0.6 * scale)
    return np.clip(grain / 2.0, -1.0, 1.0)


def _smooth_noise(shape: tuple[int, int], rng: np.random.Generator, scale: float, cell: float = 10.0) -> np.ndarray:
    """Smooth random field: a coarse grid of random values (one per ``cell`` pixels) upsampled cubically."""
    cell = max(cell * scale, 2.0)
    coarse = rng.uniform(-1.0, 1.0, size=(int(shape[0] / cell) + 3, int(shape[1] / cell) + 3))
    field = cv2.resize(coarse, None, fx=cell, fy=cell, interpolation=cv2.INTER_CUBIC)
    top, left = (int(rng.integers(0, int(cell) + 1)) for _ in range(2))
    return np.clip(field[top:top + shape[0], left:left + shape[1]], -1.0, 1.0)


def _blotches(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """Soft low-frequency mottling (walls, ground, clouds)."""
    return _smooth_noise(shape, rng, scale, cell=12.0)


def _mottled(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """Blotches at a finer scale with grain on top (feathers, foliage, coarse fur)."""
    return 0.6 * _smooth_noise(shape, rng, scale, cell=4.0) + 0.4 * _speckle(shape, rng, scale)


def _stripes(period: float, vertical: bool = False) -> Pattern:
    """Returns a pattern of hard-edged stripes ``period`` pixels (of a 64-pixel frame) apart, at a random phase."""

    def pattern(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
        step = max(period * scale, 2.0)
        position = (cols if vertical else rows) + rng.uniform(0.0, step)
        return np.where(position % step < step / 2, 1.0, -1.0)

    return pattern


def _checker(period: float) -> Pattern:
    """Returns a checkerboard pattern of squares ``period / 2`` pixels wide, at a random phase."""

    def pattern(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
        half = max(period * scale / 2.0, 1.0)
        cells = ((rows + rng.uniform(0.0, 2 * half)) // half) + ((cols + rng.uniform(0.0, 2 * half)) // half)
        return np.where(cells % 2 == 0, 1.0, -1.0)

    return pattern


def _grid(period: float) -> Pattern:
    """Returns dark grid lines every ``period`` pixels (windows, paving tiles)."""

    def pattern(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
        step = max(int(round(period * scale)), 2)
        on_row_line = (rows + rng.integers(step)) % step == 0
        on_column_line = (cols + rng.integers(step)) % step == 0
        return np.where(on_row_line | on_column_line, -1.0, 0.3)

    return pattern


def _vertical_gradient(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """Brightens towards the top of the picture (sky)."""
    return np.repeat(np.linspace(1.0, -1.0, shape[0])[:, None], shape[1], axis=1)


def _linear_ramp(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A linear ramp from -1 to 1 across the picture in a random direction."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ramp = np.cos(angle) * cols / max(shape[1] - 1, 1) + np.sin(angle) * rows / max(shape[0] - 1, 1)
    return 2.0 * (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9) - 1.0


@dataclasses.dataclass(frozen=True)
class _Look:
    """The appearance of one class or part: a colour distribution modulated by a texture and shading.

    Attributes:
        colors: Base RGB colours; each painted region picks one.
        pattern: Texture drawn over the base colour.
        amplitude: Strength of the texture in grey levels.
        jitter: Standard deviation of the per-region random shift of the base colour, in grey levels
            (a brightness shift shared by the channels plus a smaller per-channel one).
        shading: Strength (fraction of the colour, +-) of a linear shading gradient across the region.
        grain: Standard deviation of extra per-pixel noise, in grey levels.
    """

    colors: tuple[Color, ...]
    pattern: Pattern
    amplitude: float
    jitter: float = 12.0
    shading: float = 0.15
    grain: float = 4.0

    def render(self, shape: tuple[int, int], rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
        """Renders this look over a whole (height, width) canvas as a float RGB array."""
        color = np.asarray(self.colors[int(rng.integers(len(self.colors)))], dtype=np.float64)
        color = color + rng.normal(0.0, self.jitter) + rng.normal(0.0, self.jitter / 2.0, size=3)
        shading = 1.0 + self.shading * rng.uniform(0.3, 1.0) * _linear_ramp(shape, rng)
        texture = self.amplitude * self.pattern(shape, rng, scale)
        grain = rng.normal(0.0, self.grain, size=shape) if self.grain else 0.0
        return color * shading[..., None] + (texture + grain)[..., None]


@dataclasses.dataclass
class _Canvas:
    """A picture and its label mask being painted region by region."""

    image: np.ndarray
    labels: np.ndarray
    scale: float = 1.0

    @classmethod
    def blank(cls, height: int, width: int, fill_label: int) -> _Canvas:
        """Creates a black picture whose mask holds ``fill_label`` everywhere."""
        return cls(np.zeros((height, width, 3)), np.full((height, width), fill_label, dtype=np.uint8),
                   scale=min(height, width) / 64.0)

    def paint(self, region: np.ndarray, label: int | None, look: _Look, rng: np.random.Generator) -> None:
        """Paints ``look`` over the boolean ``region``; writes ``label`` into the mask there unless None."""
        if not region.any():
            return
        rows, cols = np.nonzero(region)
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        window = region[top:bottom, left:right]
        self.image[top:bottom, left:right][window] = look.render(window.shape, rng, self.scale)[window]
        if label is not None:
            self.labels[region] = label

    def exposed_image(self, rng: np.random.Generator) -> np.ndarray:
        """Returns the picture under this image's lighting, with lens blur and sensor noise, as uint8 RGB."""
        return _light_and_expose(self.image, rng, self.scale)

    def finished_image(self, rng: np.random.Generator) -> np.ndarray:
        """Returns :meth:`exposed_image` with the artefacts of JPEG at :data:`JPEG_QUALITY`."""
        return _jpeg_round_trip(self.exposed_image(rng), JPEG_QUALITY)


def _light_and_expose(image: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Applies a random per-image lighting (:data:`LIGHTING`), lens blur and sensor noise; uint8 RGB out."""
    mean = image.mean(axis=(0, 1), keepdims=True)
    lit = (image - mean) * rng.uniform(*LIGHTING["contrast"]) + mean
    cast = 1.0 + rng.uniform(-LIGHTING["cast"], LIGHTING["cast"], size=3)
    gradient = 1.0 + rng.uniform(-LIGHTING["gradient"], LIGHTING["gradient"]) * _linear_ramp(image.shape[:2], rng)
    lit = lit * rng.uniform(*LIGHTING["gain"]) * cast * gradient[..., None]
    lit = cv2.GaussianBlur(lit, (0, 0), LIGHTING["blur"] * scale)
    noisy = lit + rng.normal(0.0, SENSOR_NOISE_STD, size=lit.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """Returns ``image`` as it reads back after JPEG compression at ``quality`` (Pillow, 4:2:0)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.array(decoded.convert("RGB"))


# --------------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------------


def _draw_ellipse(draw: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator) -> None:
    """Fills the ellipse inscribed in ``box``."""
    draw.ellipse(box, fill=1)


def _draw_rectangle(draw: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator) -> None:
    """Fills ``box``."""
    draw.rectangle(box, fill=1)


def _draw_triangle(draw: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator) -> None:
    """Fills a triangle with its base on one horizontal side of ``box`` and its apex on the other."""
    left, top, right, bottom = box
    apex_x = int(rng.integers(left, right + 1))
    if rng.random() < 0.5:
        draw.polygon([(apex_x, top), (left, bottom), (right, bottom)], fill=1)
    else:
        draw.polygon([(apex_x, bottom), (left, top), (right, top)], fill=1)


_SHAPE_DRAWERS: tuple[ShapeDrawer, ...] = (_draw_ellipse, _draw_rectangle, _draw_triangle)


def _shape_region(
    height: int, width: int, box: Box, drawer: ShapeDrawer, rng: np.random.Generator
) -> np.ndarray:
    """Returns the boolean (height, width) region covered by one shape drawn inside ``box``."""
    canvas = Image.new("L", (width, height), 0)
    drawer(ImageDraw.Draw(canvas), box, rng)
    return np.asarray(canvas, dtype=bool)


class _Sketch:
    """Boolean regions drawn with OpenCV in float coordinates (rounded to pixels) on a (height, width) frame."""

    def __init__(self, height: int, width: int):
        self.shape = (height, width)
        self.scale = min(height, width) / 64.0

    def _new(self) -> np.ndarray:
        return np.zeros(self.shape, dtype=np.uint8)

    def ellipse(self, center: tuple[float, float], axes: tuple[float, float], angle: float = 0.0,
                thickness: int = -1) -> np.ndarray:
        """A filled (or outlined, ``thickness`` > 0) ellipse; ``center`` is (x, y), ``axes`` half-lengths."""
        canvas = self._new()
        cv2.ellipse(canvas, (int(round(center[0])), int(round(center[1]))),
                    (max(int(round(axes[0])), 0), max(int(round(axes[1])), 0)), angle, 0, 360, 1, thickness)
        return canvas.astype(bool)

    def polygon(self, points: Sequence[tuple[float, float]]) -> np.ndarray:
        """A filled polygon of (x, y) points."""
        canvas = self._new()
        cv2.fillPoly(canvas, [np.rint(np.asarray(points)).astype(np.int32)], 1)
        return canvas.astype(bool)

    def rectangle(self, left: float, top: float, right: float, bottom: float) -> np.ndarray:
        """A filled axis-aligned rectangle, inclusive corners."""
        canvas = self._new()
        cv2.rectangle(canvas, (int(round(left)), int(round(top))), (int(round(right)), int(round(bottom))), 1, -1)
        return canvas.astype(bool)

    def line(self, start: tuple[float, float], end: tuple[float, float], thickness: int) -> np.ndarray:
        """A straight segment ``thickness`` pixels wide."""
        canvas = self._new()
        cv2.line(canvas, (int(round(start[0])), int(round(start[1]))), (int(round(end[0])), int(round(end[1]))),
                 1, max(int(thickness), 1))
        return canvas.astype(bool)


def _random_box(
    rng: np.random.Generator, height: int, width: int, box_height: int, box_width: int,
    top_range: tuple[int, int] | None = None,
) -> Box:
    """Places a ``box_width`` x ``box_height`` box at a random position.

    Args:
        rng: Random generator.
        height: Picture height.
        width: Picture width.
        box_height: Box height, clipped to the picture.
        box_width: Box width, clipped to the picture.
        top_range: Optional inclusive (lowest, highest) rows for the box's top edge; the highest row is
            lowered so that the box fits in the picture when it can. Without it the box lies inside.

    Returns:
        The box as (left, top, right, bottom), inclusive coordinates.
    """
    box_height, box_width = min(max(box_height, 1), height), min(max(box_width, 1), width)
    lowest_top, highest_top = top_range if top_range else (0, height - box_height)
    top = int(rng.integers(lowest_top, max(lowest_top, min(highest_top, height - box_height)) + 1))
    left = int(rng.integers(0, width - box_width + 1))
    return left, top, left + box_width - 1, top + box_height - 1


def _label_boundary_band(labels: np.ndarray, radius: int) -> np.ndarray:
    """Marks pixels that have a differently labelled pixel within ``radius`` (Chebyshev distance)."""
    height, width = labels.shape
    padded = np.pad(labels, radius, mode="edge")
    band = np.zeros(labels.shape, dtype=bool)
    for shift_y in range(-radius, radius + 1):
        for shift_x in range(-radius, radius + 1):
            rows = slice(radius + shift_y, radius + shift_y + height)
            cols = slice(radius + shift_x, radius + shift_x + width)
            band |= padded[rows, cols] != labels
    return band


def _void_band_mask(labels: np.ndarray, radius: int, ignore_label: int, background: int) -> np.ndarray:
    """The VOC void band: ``labels`` with pixels near a label change set to ``ignore_label``.

    A connected object part (8-connectivity, any class but ``background``) that the band would leave with
    less than half of its pixels (a bicycle frame, a tail, a far bird) keeps all its pixels; the band
    then lies around it only. Wherever two different classes would still touch, both pixels become void,
    so that no two classes are ever adjacent without void between them.
    """
    band = _label_boundary_band(labels, radius)
    keep = np.zeros_like(band)
    for label in np.unique(labels):
        if label == background:
            continue
        count, components = cv2.connectedComponents((labels == label).astype(np.uint8), connectivity=8)
        for component in range(1, count):
            part = components == component
            if np.count_nonzero(part & ~band) * 2 < np.count_nonzero(part):
                keep |= part
    mask = np.where(band & ~keep, ignore_label, labels).astype(np.uint8)
    padded = np.pad(mask, 1, mode="edge")
    height, width = mask.shape
    clash = np.zeros_like(band)
    for shift_y in (-1, 0, 1):
        for shift_x in (-1, 0, 1):
            neighbour = padded[1 + shift_y:1 + shift_y + height, 1 + shift_x:1 + shift_x + width]
            clash |= (neighbour != mask) & (neighbour != ignore_label)
    mask[clash & (mask != ignore_label)] = ignore_label
    return mask


def _check_image_size(image_size: Sequence[int]) -> tuple[int, int]:
    """Validates a (height, width) pair and returns it."""
    height, width = (int(value) for value in image_size)
    if width < 16 or height < 16:
        raise ValueError(f"image_size must be (height, width) with both >= 16, got {tuple(image_size)}")
    return height, width


def _image_rng(seed: int, index: int) -> np.random.Generator:
    """Returns the generator for image ``index``, independent of how many images are written."""
    return np.random.default_rng([seed, index])


def _save_png(array: np.ndarray, path: pathlib.Path, palette: list[int] | None = None) -> None:
    """Writes a uint8 array as PNG: RGB for (H, W, 3), else 'L', or 'P' when a palette is given."""
    image = Image.fromarray(array)
    if palette is not None:
        image.putpalette(palette)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


# --------------------------------------------------------------------------------------------------
# PASCAL VOC 2012
# --------------------------------------------------------------------------------------------------

_PAINTS: tuple[Color, ...] = ((195, 45, 40), (45, 75, 175))
"""Car paints."""

_CLOTHES: tuple[Color, ...] = ((150, 50, 140), (200, 70, 150))
"""People's clothes."""

_FUR: tuple[Color, ...] = ((215, 140, 60), (150, 100, 60))
"""Cats' fur."""

_FEATHERS: tuple[Color, ...] = ((55, 60, 80), (95, 100, 120))
"""Birds (slate, close to grey ground)."""

_DARK: tuple[Color, ...] = ((35, 35, 40), (55, 50, 50))
"""Tyres, monitor frames and wires: shared by two classes and the background."""

_VOC_BACKGROUND_LOOKS: tuple[_Look, ...] = (
    _Look(((125, 170, 215), (150, 185, 225)), _blotches, amplitude=14.0, jitter=12.0, shading=0.3),
    _Look(((90, 125, 60), (70, 100, 55)), _mottled, amplitude=24.0, jitter=12.0),
    _Look(((190, 175, 150), (175, 165, 140)), _blotches, amplitude=14.0, jitter=12.0, shading=0.3),
    _Look(((110, 110, 110), (95, 90, 85)), _speckle, amplitude=20.0, jitter=12.0),
)
"""Sky, vegetation, walls and ground: the upper and lower part of each VOC background pick one each."""

Part = tuple[np.ndarray, _Look]
PartsDrawer = Callable[[_Sketch, float, float, float, np.random.Generator], list[Part]]
"""Draws one object centred on (x, y) of the given size in pixels; returns its (region, look) parts, in
painting order. All parts carry the object's class."""


def _thickness(size: float, fraction: float, sketch_scale: float) -> int:
    """Line thickness: ``fraction`` of the object size, at least 1 pixel (2 on frames of 48 pixels or more)."""
    return max(int(round(size * fraction)), 2 if sketch_scale >= 0.75 else 1)


def _aeroplane(sketch: _Sketch, x: float, y: float, size: float, rng: np.random.Generator) -> list[Part]:
    heading = rng.choice((-1.0, 1.0))
    angle = rng.uniform(-15.0, 15.0)
    sweep = heading * rng.uniform(15.0, 35.0)
    rear = (x - heading * 0.42 * size * np.cos(np.radians(angle)), y - heading * 0.42 * size * np.sin(np.radians(angle)))
    body = (sketch.ellipse((x, y), (size / 2, max(size / 7, 1.0)), angle)
            | sketch.ellipse((x - heading * 0.05 * size, y), (max(size / 8, 1.0), size * 0.42), angle + sweep)
            | sketch.ellipse(rear, (max(size / 12, 1.0), size * 0.18), angle + sweep))
    look = _Look(((228, 230, 235), (205, 210, 215)), _stripes(5), amplitude=16.0, jitter=10.0, shading=0.25)
    return [(body, look)]


def _bicycle(sketch: _Sketch, x: float, y: float, size: float, rng: np.random.Generator) -> list[Part]:
    thickness = _thickness(size, 0.06, sketch.scale)
    radius = size * rng.uniform(0.25, 0.32)
    rear, front = (x - size / 2, y), (x + size / 2, y)
    seat, handle, crank = (x - 0.12 * size, y - 0.45 * size), (x + 0.35 * size, y - 0.5 * size), (x, y)
    frame = np.zeros(sketch.shape, dtype=bool)
    for start, end in ((rear, crank), (crank, seat), (seat, rear), (seat, handle), (handle, front), (crank, handle)):
        frame |= sketch.line(start, end, thickness)
    wheels = (sketch.ellipse(rear, (radius, radius), thickness=thickness)
              | sketch.ellipse(front, (radius, radius), thickness=thickness))
    return [(frame | wheels, _Look(((40, 160, 160), (60, 190, 120)), _flat, amplitude=0.0, jitter=12.0, shading=0.2))]


def _bird(sketch: _Sketch, x: float, y: float, size: float, rng: np.random.Generator) -> list[Part]:
    heading = rng.choice((-1.0, 1.0))
    angle = rng.uniform(-30.0, 30.0)
    body = sketch.ellipse((x, y), (size / 2, max(size / 3.2, 1.0)), angle)
    head = sketch.ellipse((x + heading * 0.45 * size, y - 0.15 * size), (max(size / 6, 1.0),) * 2)
    wing = sketch.polygon([(x - 0.2 * size, y), (x + 0.2 * size, y),
                           (x - heading * 0.1 * size, y - rng.uniform(0.3, 0.6) * size)])
    return [(body | head | wing, _Look(_FEATHERS, _mottled, amplitude=22.0, jitter=14.0))]


def _car(sketch: _Sketch, x: float, y: float, size: float, rng: np.random.Generator) -> list[Part]:
    height = size * rng.uniform(0.38, 0.48)
    heading = rng.choice((-1.0, 1.0))
    body = sketch.rectangle(x - size / 2, y - 0.1 * height, x + size / 2, y + 0.45 * height)
    cabin_points = [(x - 0.32 * size * heading, y - 0.1 * height), (x + 0.28 * size * heading, y - 0.1 * height),
                    (x + 0.15 * size * heading, y - 0.6 * height), (x - 0.22 * size * heading, y - 0.6 * height)]
    cabin = sketch.polygon(cabin_points)
    window = sketch.polygon([(x + (px - x) * 0.75, y - 0.1 * height + (py - y + 0.1 * height) * 0.8)
                             for px, py in cabin_points])
    wheel_radius = max(0.22 * height, 1.0)
    wheels = (sketch.ellipse((x - 0.3 * size, y + 0.45 * height), (wheel_radius, wheel_radius))
              | sketch.ellipse((x + 0.3 * size, y + 0.45 * height), (wheel_radius, wheel_radius)))
    return [(body | cabin, _Look(_PAINTS, _stripes(4), amplitude=12.0, jitter=16.0, shading=0.35)),
            (window & cabin, _Look(((150, 170, 185), (70, 80, 95)), _blotches, amplitude=15.0, jitter=12.0)),
            (wheels, _Look(_DARK, _flat, amplitude=0.0, jitter=8.0))]


def _cat(sketch: _Sketch, x: float, y: float, size: float, rng: np.random.Generator) -> list[Part]:
    heading = rng.choice((-1.0, 1.0))
    angle = rng.uniform(-20.0, 20.0)
    body = sketch.ellipse((x, y), (size / 2, size / 3.4), angle)
    head_x, head_y, head_r = x + heading * 0.45 * size, y - 0.22 * size, max(0.19 * size, 1.0)
    head = sketch.ellipse((head_x, head_y), (head_r, head_r))
    ears = (sketch.polygon([(head_x - head_r, head_y - 0.3 * head_r), (head_x - 0.2 * head_r, head_y - 0.7 * head_r),
                            (head_x - 0.8 * head_r, head_y - 1.7 * head_r)])
            | sketch.polygon([(head_x + head_r, head_y - 0.3 * head_r), (head_x + 0.2 * head_r, head_y - 0.7 * head_r),
                              (head_x + 0.8 * head_r, head_y - 1.7 * head_r)]))
    tail = sketch.line((x - heading * 0.45 * size, y), (x - heading * 0.7 * size, y - 0.35 * size),
                       _thickness(size, 0.07, sketch.scale))
    return [(body | head | ears | tail, _Look(_FUR, _speckle, amplitude=32.0, jitter=14.0))]


def _person(sketch: _Sketch, x: float, y: float, size: float, rng: np.random.Generator) -> list[Part]:
    limb = _thickness(size, 0.08, sketch.scale)
    head = sketch.ellipse((x, y - 0.4 * size), (max(0.1 * size, 1.0),) * 2)
    torso = sketch.ellipse((x, y - 0.12 * size), (max(0.14 * size, 1.0), 0.22 * size))
    arms = (sketch.line((x - 0.12 * size, y - 0.25 * size), (x - 0.22 * size, y + 0.02 * size), limb)
            | sketch.line((x + 0.12 * size, y - 0.25 * size), (x + 0.22 * size, y + 0.02 * size), limb))
    legs = (sketch.line((x - 0.06 * size, y + 0.05 * size), (x - 0.1 * size, y + 0.5 * size), limb)
            | sketch.line((x + 0.06 * size, y + 0.05 * size), (x + 0.1 * size, y + 0.5 * size), limb))
    return [(legs, _Look(((40, 45, 90), (30, 35, 60)), _flat, amplitude=0.0, jitter=10.0)),
            (torso | arms, _Look(_CLOTHES, _checker(4), amplitude=24.0, jitter=16.0)),
            (head, _Look(((225, 180, 150), (165, 115, 85), (95, 65, 45)), _speckle, amplitude=8.0, jitter=10.0))]


def _tvmonitor(sketch: _Sketch, x: float, y: float, size: float, rng: np.random.Generator) -> list[Part]:
    height = size * rng.uniform(0.6, 0.8)
    inset = _thickness(size, 0.08, sketch.scale)
    frame = sketch.rectangle(x - size / 2, y - height / 2, x + size / 2, y + height / 2)
    screen = sketch.rectangle(x - size / 2 + inset, y - height / 2 + inset, x + size / 2 - inset, y + height / 2 - inset)
    stand = sketch.rectangle(x - 0.08 * size, y + height / 2, x + 0.08 * size, y + height / 2 + 0.12 * size)
    screen_look = _Look(((90, 195, 200), (110, 215, 230)), _stripes(2.5), amplitude=10.0, jitter=20.0, shading=0.45)
    return [(frame | stand, _Look(_DARK, _flat, amplitude=0.0, jitter=10.0)),
            (screen, screen_look)]


@dataclasses.dataclass(frozen=True)
class _VocClass:
    """How one VOC class appears in the synthetic scenes.

    Attributes:
        weight: Relative frequency of the class among the objects.
        size: (smallest, largest) object size as a fraction of the shorter picture side, drawn
            log-uniformly.
        rows: Range of the object centre's row as a fraction of the height (context: birds and planes
            fly, cars stand on the ground).
        draw: Draws the object's parts.
        flock: Largest number of copies drawn close together when the class is picked.
    """

    weight: float
    size: tuple[float, float]
    rows: tuple[float, float]
    draw: PartsDrawer
    flock: int = 1


_VOC_CLASSES: Mapping[str, _VocClass] = {
    "aeroplane": _VocClass(0.11, (0.35, 0.8), (0.1, 0.55), _aeroplane),
    "bicycle": _VocClass(0.11, (0.25, 0.45), (0.45, 0.85), _bicycle),
    "bird": _VocClass(0.14, (0.22, 0.36), (0.05, 0.6), _bird, flock=2),
    "car": _VocClass(0.18, (0.3, 0.7), (0.5, 0.9), _car),
    "cat": _VocClass(0.16, (0.3, 0.6), (0.45, 0.9), _cat),
    "person": _VocClass(0.19, (0.3, 0.8), (0.35, 0.8), _person),
    "tvmonitor": _VocClass(0.12, (0.3, 0.5), (0.25, 0.75), _tvmonitor),
}
"""VOC classes drawn by :func:`write_voc_dataset`: frequency, scale, context and shape."""

VOC_OBJECTS_PER_IMAGE = (2, 4)
"""Inclusive range of the number of objects (flocks count once) per VOC picture."""

VOC_WIRES = 2
"""Most wires (thin dark lines labelled background) per VOC picture."""

VOC_OCCLUSION_PROBABILITY = 0.5
"""Chance that an object after the first is placed over an earlier one (partly hiding or hidden)."""


def voc_image_ids(num_images: int) -> list[str]:
    """Returns ``num_images`` distinct VOC-style image ids (``<year>_<number:06d>``), sorted.

    Args:
        num_images: Number of ids.

    Returns:
        Ids spread over the VOC years 2007-2012, e.g. ``2007_000032``.
    """
    years = range(2007, 2013)
    return sorted(
        f"{years[index % len(years)]}_{32 + 7 * (index // len(years)):06d}" for index in range(num_images)
    )


def _split_counts(num_images: int, val_fraction: float) -> tuple[int, int]:
    """Splits ``num_images`` into (train, val) counts, both non-empty when there are two or more images."""
    if num_images < 2:
        return num_images, 0
    num_val = min(max(round(num_images * val_fraction), 1), num_images - 1)
    return num_images - num_val, num_val


def _voc_background(canvas: _Canvas, sketch: _Sketch, rng: np.random.Generator) -> None:
    """Paints a two-part background (e.g. sky over grass, wall over floor) crossed by wires, all labelled background."""
    height, width = canvas.labels.shape
    looks = _VOC_BACKGROUND_LOOKS
    horizon = height * rng.uniform(0.3, 0.7)
    tilt = rng.uniform(-0.25, 0.25) * height
    upper = sketch.polygon([(0, 0), (width - 1, 0), (width - 1, horizon + tilt / 2), (0, horizon - tilt / 2)])
    canvas.paint(np.ones((height, width), dtype=bool), None, looks[int(rng.integers(len(looks)))], rng)
    canvas.paint(upper, None, looks[int(rng.integers(len(looks)))], rng)
    side = min(height, width)
    for _ in range(int(rng.integers(0, VOC_WIRES + 1))):
        start = (rng.uniform(-0.2, 0.3) * width, rng.uniform(0, height))
        end = (rng.uniform(0.7, 1.2) * width, rng.uniform(0, height))
        wire = sketch.line(start, end, _thickness(side, 0.02, sketch.scale))
        canvas.paint(wire, None, _Look(_DARK, _flat, amplitude=0.0, jitter=12.0), rng)


def _voc_scene(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws one VOC-style picture: a textured background and :data:`VOC_OBJECTS_PER_IMAGE` objects.

    Objects are drawn in turn, later ones on top; the first lies well inside the picture, the others
    anywhere (cut by the frame) or, with :data:`VOC_OCCLUSION_PROBABILITY`, over an earlier one.

    Returns:
        The uint8 RGB picture (lit and exposed, not yet compressed) and its uint8 class-index mask, void
        band included.
    """
    voc_map = load_label_map(voc.LABEL_MAP)
    background = voc_map.class_names.index("background")
    canvas = _Canvas.blank(height, width, background)
    sketch = _Sketch(height, width)
    _voc_background(canvas, sketch, rng)
    names = list(_VOC_CLASSES)
    weights = np.asarray([_VOC_CLASSES[name].weight for name in names])
    side = min(height, width)
    centres: list[tuple[float, float, float]] = []
    for index in range(int(rng.integers(VOC_OBJECTS_PER_IMAGE[0], VOC_OBJECTS_PER_IMAGE[1] + 1))):
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        spec = _VOC_CLASSES[name]
        size = max(side * np.exp(rng.uniform(*np.log(spec.size))), 3.0)
        if index == 0:
            x = width * rng.uniform(0.3, 0.7)
            y = height * float(np.clip(rng.uniform(*spec.rows), 0.3, 0.7))
        elif rng.random() < VOC_OCCLUSION_PROBABILITY:
            previous_x, previous_y, previous_size = centres[int(rng.integers(len(centres)))]
            x, y = rng.normal((previous_x, previous_y), 0.35 * previous_size)
        else:
            x, y = width * rng.uniform(0.0, 1.0), height * rng.uniform(*spec.rows)
        centres.append((x, y, size))
        label = voc_map.class_names.index(name)
        for member in range(int(rng.integers(1, spec.flock + 1))):
            offset = rng.normal(0.0, 1.5 * size, size=2) if member else np.zeros(2)
            for region, look in spec.draw(sketch, x + offset[0], y + offset[1], size, rng):
                canvas.paint(region, label, look, rng)
    mask = _void_band_mask(canvas.labels, VOC_VOID_RADIUS, voc_map.ignore_label, background)
    return canvas.exposed_image(rng), mask


def write_voc_dataset(
    out_dir: str | pathlib.Path,
    num_images: int = 24,
    image_size: tuple[int, int] = (64, 64),
    seed: int = 0,
    val_fraction: float = 0.25,
) -> dict:
    """Writes a synthetic PASCAL VOC 2012 segmentation dataset in the official layout.

    Args:
        out_dir: Folder that receives ``VOCdevkit/VOC2012``; created if missing.
        num_images: Number of image/mask pairs (>= 1).
        image_size: Picture size as (height, width), each >= 16.
        seed: Random seed; the same seed writes the same files.
        val_fraction: Share of images listed in ``val.txt`` (0 < val_fraction < 1); train and val both get
            at least one image when ``num_images >= 2``.

    Returns:
        A JSON-able summary: ``root`` (the ``VOC2012`` folder, str), ``splits`` (split -> sorted ids),
        ``counts`` (split -> number of ids) and ``classes`` (names of the classes present, in training-id
        order, background included).

    Raises:
        ValueError: If an argument is out of range.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    height, width = _check_image_size(image_size)
    voc_map = load_label_map(voc.LABEL_MAP)
    root = str(pathlib.Path(out_dir).joinpath(*voc.DEVKIT_ROOT))
    pathlib.Path(root, voc.IMAGE_DIR).mkdir(parents=True, exist_ok=True)

    image_ids = voc_image_ids(num_images)
    present = np.zeros(voc_map.num_classes, dtype=bool)
    for index, image_id in enumerate(image_ids):
        image, mask = _voc_scene(_image_rng(seed, index), width, height)
        Image.fromarray(image).save(voc.image_path(root, image_id), quality=VOC_JPEG_QUALITY)
        _save_png(mask, pathlib.Path(voc.mask_path(root, image_id)), palette=voc_map.palette())
        present[np.unique(mask[mask != voc_map.ignore_label])] = True

    num_train, _ = _split_counts(num_images, val_fraction)
    shuffled = np.random.default_rng(seed).permutation(image_ids).tolist()
    splits = {"train": sorted(shuffled[:num_train]), "val": sorted(shuffled[num_train:])}
    splits["trainval"] = sorted(splits["train"] + splits["val"])
    for split, ids in splits.items():
        list_path = pathlib.Path(voc.list_path(root, split))
        list_path.parent.mkdir(parents=True, exist_ok=True)
        list_path.write_text("".join(f"{image_id}\n" for image_id in ids))

    return {
        "root": root,
        "splits": splits,
        "counts": {split: len(ids) for split, ids in splits.items()},
        "classes": [name for name, used in zip(voc_map.class_names, present) if used],
    }


# --------------------------------------------------------------------------------------------------
# Cityscapes
# --------------------------------------------------------------------------------------------------

_CITYSCAPES_LOOKS: Mapping[str, _Look] = {
    "unlabeled": _Look(((20, 20, 20), (60, 55, 50)), _speckle, amplitude=10.0),
    "ego vehicle": _Look(((30, 32, 38), (60, 60, 66)), _blotches, amplitude=8.0),
    "rectification border": _Look(((0, 0, 0),), _flat, amplitude=0.0, jitter=0.0, shading=0.0, grain=0.0),
    "static": _Look(_PAINTS + _DARK + ((140, 100, 60),), _speckle, amplitude=16.0, jitter=14.0),
    "road": _Look(((95, 88, 100), (80, 80, 84), (110, 105, 100)), _speckle, amplitude=14.0, jitter=12.0, shading=0.25),
    "sidewalk": _Look(((160, 140, 150), (140, 135, 130), (175, 165, 150)), _grid(5), amplitude=18.0, jitter=14.0),
    "building": _Look(((90, 90, 92), (150, 130, 110), (175, 165, 155), (120, 80, 65)), _grid(4), amplitude=26.0,
                      jitter=14.0, shading=0.25),
    "pole": _Look(((150, 150, 150), (90, 90, 95), (60, 70, 60)), _flat, amplitude=0.0, jitter=14.0, shading=0.3),
    "traffic sign": _Look(((225, 205, 40), (200, 45, 40), (45, 75, 175), (220, 220, 220)), _flat, amplitude=0.0,
                          jitter=12.0),
    "vegetation": _Look(((70, 140, 40), (95, 120, 60), (60, 95, 50)), _mottled, amplitude=35.0, jitter=14.0),
    "sky": _Look(((110, 170, 225), (195, 200, 205), (160, 180, 200)), _vertical_gradient, amplitude=20.0,
                 jitter=12.0, grain=2.0),
    "lane marking": _Look(((225, 225, 215), (210, 200, 120)), _flat, amplitude=0.0, jitter=10.0),
}
"""Appearance of the Cityscapes labels drawn by :func:`write_cityscapes_dataset` as plain regions (lane
markings are painted on the road and labelled road; people and cars are drawn in parts, as in VOC)."""


class _StreetPainter:
    """Paints Cityscapes labels by name onto a canvas, looking their raw ids up in the label map."""

    def __init__(self, canvas: _Canvas, rng: np.random.Generator):
        self.canvas = canvas
        self.rng = rng
        self.sketch = _Sketch(*canvas.labels.shape)
        self.label_ids = {label.name: label.id for label in load_label_map(cityscapes.LABEL_MAP).labels}

    def paint(self, region: np.ndarray, label_name: str, look: str | None = None) -> None:
        """Paints ``region`` with the look of ``look`` (default: the label's) and the raw id of ``label_name``."""
        self.canvas.paint(region, self.label_ids[label_name], _CITYSCAPES_LOOKS[look or label_name], self.rng)

    def paint_parts(self, parts: list[Part], label_name: str) -> None:
        """Paints an object drawn in parts, all with the raw id of ``label_name``."""
        for region, look in parts:
            self.canvas.paint(region, self.label_ids[label_name], look, self.rng)


def _cityscapes_scene(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws one street scene: sky, buildings and trees, road and sidewalks, poles and signs, people, cars.

    People and cars shrink with their distance (from a few pixels near the horizon to a third of the
    height), poles are one or two pixels wide, and nearer things are drawn over farther ones.

    Returns:
        The uint8 RGB picture (lit and exposed, not yet compressed) and its uint8 mask of raw Cityscapes
        label ids.
    """
    painter = _StreetPainter(_Canvas.blank(height, width, fill_label=0), rng)
    sketch = painter.sketch
    rows, cols = np.mgrid[0:height, 0:width]
    horizon = int(height * rng.uniform(0.4, 0.55))

    painter.paint(rows < horizon, "sky")
    left = 0
    while left < width:
        block_width = int(rng.integers(max(width // 8, 2), max(width // 3, 3)))
        roof = int(rng.integers(int(0.05 * height), max(int(0.6 * horizon), int(0.05 * height) + 1)))
        block = (cols >= left) & (cols < left + block_width) & (rows >= roof) & (rows < horizon)
        painter.paint(block, "vegetation" if rng.random() < 0.25 else "building")
        left += block_width

    depth = np.clip((rows - horizon) / max(height - horizon, 1), 0.0, 1.0)
    vanishing_x = width * rng.uniform(0.4, 0.6)
    road_left = vanishing_x - depth * width * rng.uniform(0.35, 0.55)
    road_right = vanishing_x + depth * width * rng.uniform(0.35, 0.55)
    ground = rows >= horizon
    road = ground & (cols >= road_left) & (cols <= road_right)
    painter.paint(ground & ~road, "sidewalk")
    painter.paint(road, "road")
    lane_x = (road_left + road_right) / 2
    dashes = (np.abs(cols - lane_x) <= 0.5 + 1.5 * depth * painter.canvas.scale) & road
    dashes &= ((rows - horizon) // max(int(4 * painter.canvas.scale), 2)) % 2 == 0
    painter.paint(dashes & (rng.random() < 0.7), "road", look="lane marking")

    for _ in range(int(rng.integers(1, 3))):
        tree = _random_box(rng, height, width, int(0.25 * height), int(0.15 * width),
                           top_range=(horizon - int(0.3 * height), horizon - int(0.15 * height)))
        painter.paint(_shape_region(height, width, tree, _draw_ellipse, rng), "vegetation")

    def ground_row(distance: float) -> float:
        """The row of a point on the ground at ``distance`` (0 = horizon, 1 = bottom of the picture)."""
        return horizon + distance * (height - 1 - horizon)

    for _ in range(int(rng.integers(1, 5))):
        distance = rng.uniform(0.15, 1.0)
        foot = ground_row(distance)
        pole_height = (0.25 + 0.45 * distance) * height
        pole_width = max(1, int(round(painter.canvas.scale * (0.5 + distance))))
        pole_left = int(rng.integers(0, width - pole_width))
        top = foot - pole_height
        painter.paint(sketch.rectangle(pole_left, top, pole_left + pole_width - 1, foot), "pole")
        if rng.random() < 0.7:
            sign_size = max(2.0, (1.5 + 3.0 * distance) * painter.canvas.scale)
            centre = (pole_left + pole_width / 2, top + sign_size)
            sign = (sketch.ellipse(centre, (sign_size, sign_size)) if rng.random() < 0.5 else
                    sketch.rectangle(centre[0] - sign_size, centre[1] - sign_size, centre[0] + sign_size,
                                     centre[1] + sign_size))
            painter.paint(sign, "traffic sign")

    static_box = _random_box(rng, height, width, int(0.08 * height) + 2, int(0.05 * width) + 2,
                             top_range=(horizon, height - 1))
    painter.paint(_shape_region(height, width, static_box, _draw_rectangle, rng), "static")

    things = [("person", rng.uniform(0.0, 1.0)) for _ in range(int(rng.integers(1, 5)))]
    things += [("car", rng.uniform(0.1, 1.0)) for _ in range(int(rng.integers(1, 4)))]
    for name, distance in sorted(things, key=lambda thing: thing[1]):  # far to near: near ones on top
        foot = ground_row(distance)
        if name == "person":
            size = (0.08 + 0.3 * distance) * height
            x = rng.uniform(0.0, width)
            painter.paint_parts(_person(sketch, x, foot - 0.5 * size, size, rng), "person")
        else:
            size = (0.12 + 0.45 * distance) * height * rng.uniform(1.4, 1.9)
            row = int(foot)
            x = rng.uniform(road_left[row, 0], road_right[row, 0])
            painter.paint_parts(_car(sketch, x, foot - 0.29 * size, size, rng), "car")

    unlabeled = _random_box(rng, height, width, int(0.06 * height) + 2, int(0.06 * width) + 2)
    painter.paint(_shape_region(height, width, unlabeled, _draw_ellipse, rng), "unlabeled")
    hood = (int(0.1 * width), height - int(0.1 * height), int(0.9 * width), height + int(0.1 * height))
    painter.paint(_shape_region(height, width, hood, _draw_ellipse, rng), "ego vehicle")
    painter.paint((cols < 2) | (cols >= width - 2), "rectification border")
    return painter.canvas.exposed_image(rng), painter.canvas.labels


def write_cityscapes_dataset(
    out_dir: str | pathlib.Path,
    num_images: int = 6,
    image_size: tuple[int, int] = (64, 128),
    seed: int = 0,
    cities: Mapping[str, Sequence[str]] | None = None,
) -> dict:
    """Writes a synthetic Cityscapes dataset (``leftImg8bit`` and ``gtFine``) in the official layout.

    A third of the frames (at least one when ``num_images >= 2``) go to ``val``, the rest to ``train``;
    frames are dealt to the split's cities in turn. ``_gtFine_labelTrainIds.png`` is the Cityscapes
    lookup table applied to ``_gtFine_labelIds.png``, as cityscapesScripts' ``createTrainIdLabelImgs``
    writes it.

    Args:
        out_dir: Dataset root (the folder holding ``leftImg8bit`` and ``gtFine``); created if missing.
        num_images: Number of frames (>= 1).
        image_size: Picture size as (height, width), each >= 16.
        seed: Random seed; the same seed writes the same files.
        cities: City names per split, keys ``"train"`` and ``"val"``; defaults to
            :data:`CITYSCAPES_CITIES`.

    Returns:
        A JSON-able summary: ``root`` (str), ``splits`` (split -> sorted frame names such as
        ``aachen_000000_000019``), ``counts`` (split -> number of frames), ``cities`` (split -> cities
        used), ``label_ids`` (raw ids present) and ``classes`` (training classes present, in training-id
        order).

    Raises:
        ValueError: If an argument is out of range or a split has no city.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    height, width = _check_image_size(image_size)
    cities = CITYSCAPES_CITIES if cities is None else cities
    if set(cities) != {"train", "val"} or not all(cities[split] for split in cities):
        raise ValueError(f"cities must name at least one city for each of 'train' and 'val', got {cities!r}")
    cityscapes_map = load_label_map(cityscapes.LABEL_MAP)
    root = str(pathlib.Path(out_dir))

    num_train, num_val = _split_counts(num_images, 1 / 3)
    split_of_frame = ["train"] * num_train + ["val"] * num_val
    frames_per_city: dict[str, int] = {}
    splits: dict[str, list[str]] = {"train": [], "val": []}
    cities_used: dict[str, set[str]] = {"train": set(), "val": set()}
    present_ids = np.zeros(256, dtype=bool)
    for index, split in enumerate(split_of_frame):
        position_in_split = len(splits[split])
        city = cities[split][position_in_split % len(cities[split])]
        sequence = frames_per_city.get(city, 0)
        frames_per_city[city] = sequence + 1
        frame_name = cityscapes.frame_id(city, sequence)
        splits[split].append(frame_name)
        cities_used[split].add(city)

        image, label_ids = _cityscapes_scene(_image_rng(seed, index), width, height)
        _save_png(_jpeg_round_trip(image, JPEG_QUALITY),
                  pathlib.Path(cityscapes.image_path(root, split, city, frame_name)))
        _save_png(label_ids, pathlib.Path(cityscapes.mask_path(root, split, city, frame_name)))
        _save_png(cityscapes_map.to_train_ids(label_ids), pathlib.Path(
            cityscapes.mask_path(root, split, city, frame_name, cityscapes.TRAIN_ID_MASK_SUFFIX)))
        present_ids[np.unique(label_ids)] = True

    present_train_ids = set(cityscapes_map.id_to_train_id[present_ids].tolist())
    return {
        "root": root,
        "splits": {split: sorted(names) for split, names in splits.items()},
        "counts": {split: len(names) for split, names in splits.items()},
        "cities": {split: sorted(names) for split, names in cities_used.items()},
        "label_ids": np.flatnonzero(present_ids).tolist(),
        "classes": [
            name for train_id, name in enumerate(cityscapes_map.class_names) if train_id in present_train_ids
        ],
    }


def write_dataset(
    dataset_format: str,
    out_dir: str | pathlib.Path,
    num_images: int | None = None,
    image_size: tuple[int, int] | None = None,
    seed: int = 0,
) -> dict:
    """Writes the synthetic dataset of one layout, ``"voc"`` or ``"cityscapes"``.

    Args:
        dataset_format: ``"voc"``/``"pascal_voc"`` (:func:`write_voc_dataset`) or ``"cityscapes"``
            (:func:`write_cityscapes_dataset`), as :func:`components.core.datasets.layout_of` reads it.
        out_dir: Output folder.
        num_images: Number of images; None keeps that writer's default.
        image_size: (height, width); None keeps that writer's default.
        seed: Seed of the generator.

    Returns:
        The writer's summary.

    Raises:
        ValueError: If the format is unknown.
    """
    writers = {voc.NAME: write_voc_dataset, cityscapes.NAME: write_cityscapes_dataset}
    writer = writers[datasets.dataset_name(dataset_format)]
    options = {"seed": seed}
    if num_images is not None:
        options["num_images"] = num_images
    if image_size is not None:
        options["image_size"] = tuple(image_size)
    return writer(out_dir, **options)


COMPLETE_MARKER = "sample_data.json"
"""Written last into a folder of :func:`write_dataset_once`: the settings and the writer's summary. A folder
without it is an interrupted generation."""


def dataset_folder_name(dataset_format: str, num_images: int | None = None,
                        image_size: tuple[int, int] | None = None, seed: int = 0) -> str:
    """The folder :func:`write_dataset_once` uses for these settings, e.g. ``pascal_voc-24-64x64-seed0``
    (``default`` for a setting left to the writer)."""
    size = f"{image_size[0]}x{image_size[1]}" if image_size is not None else "default"
    images = num_images if num_images is not None else "default"
    return f"{datasets.dataset_name(dataset_format)}-{images}-{size}-seed{seed}"


def write_dataset_once(
    dataset_format: str,
    parent: str | pathlib.Path,
    num_images: int | None = None,
    image_size: tuple[int, int] | None = None,
    seed: int = 0,
) -> tuple[dict, bool]:
    """Writes the synthetic dataset of these settings under ``parent/<dataset_folder_name(...)>``, unless a
    complete one is already there, which is left untouched (same bytes, same modification times, so a
    pipeline that fingerprints its input files finds them unchanged).

    An incomplete folder (no :data:`COMPLETE_MARKER`: a generation that was interrupted) is written again.

    Returns:
        (the writer's summary, whether it was written now).
    """
    folder = pathlib.Path(parent) / dataset_folder_name(dataset_format, num_images, image_size, seed)
    marker = folder / COMPLETE_MARKER
    settings = {"format": datasets.dataset_name(dataset_format), "num_images": num_images,
                "image_size": list(image_size) if image_size is not None else None, "seed": seed}
    if marker.is_file():
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        if recorded.get("settings") == settings:
            return {**recorded["summary"], "root": str(folder / recorded["root"])}, False
    if folder.exists():
        shutil.rmtree(folder)
    summary = write_dataset(dataset_format, folder, num_images=num_images, image_size=image_size, seed=seed)
    root = pathlib.Path(summary["root"]).resolve().relative_to(folder.resolve())
    marker.write_text(json.dumps({"settings": settings, "root": str(root),
                                  "summary": {key: value for key, value in summary.items() if key != "root"}},
                                 indent=2, default=str) + "\n", encoding="utf-8")
    return summary, True
