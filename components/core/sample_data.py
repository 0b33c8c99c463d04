"""Synthetic PASCAL VOC 2012 and Cityscapes datasets in the official on-disk layouts.

The generated scenes are small but learnable: filled ellipses, rectangles and triangles (VOC) or a
street layout of sky, buildings, road, sidewalks, cars, people and poles (Cityscapes), where every class
has its own colour and texture drawn over a noisy background, so a small network trained briefly
scores well above chance. Everything is deterministic for a given seed, and image ``i`` does not depend
on how many images are written. Only numpy and Pillow are used.

Layouts written (``out_dir`` relative), with the folder and file names of the dataset layouts in
:mod:`components.core.datasets.voc` and :mod:`components.core.datasets.cityscapes`, which ingestion
and scoring read:

* VOC: ``VOCdevkit/VOC2012/JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` (palette PNG of class
  indices with a void band of 255 along every object boundary, as in the official masks) and
  ``ImageSets/Segmentation/{train,val,trainval}.txt``.
* Cityscapes: ``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and, beside it under
  ``gtFine/``, ``..._gtFine_labelIds.png`` (raw label ids) and ``..._gtFine_labelTrainIds.png``.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
from typing import Callable, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from components.core import datasets
from components.core.datasets import cityscapes, voc
from components.core.label_maps import load_label_map

Pattern = Callable[[tuple[int, int], np.random.Generator], np.ndarray]
"""Draws a texture of the given (height, width) with values roughly in -1..1."""

Box = tuple[int, int, int, int]
"""(left, top, right, bottom) pixel box, inclusive."""

ShapeDrawer = Callable[[ImageDraw.ImageDraw, Box, np.random.Generator], None]
"""Fills one shape inside a box on an 'L' canvas."""

SENSOR_NOISE_STD = 6.0
"""Standard deviation (grey levels) of the noise added to every finished picture."""

VOC_VOID_RADIUS = 1
"""Pixels within this distance of a label change become void (255): a band two pixels wide."""

VOC_JPEG_QUALITY = 90
"""JPEG quality of the VOC pictures (the official ones are JPEGs too)."""

CITYSCAPES_CITIES: Mapping[str, tuple[str, ...]] = {
    "train": ("aachen", "bochum"),
    "val": ("frankfurt", "lindau"),
}
"""Default cities per split; all are real Cityscapes cities of that split."""


# --------------------------------------------------------------------------------------------------
# Textures and appearance
# --------------------------------------------------------------------------------------------------


def _flat(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """No texture."""
    return np.zeros(shape)


def _speckle(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Fine per-pixel grain (fur, foliage, asphalt)."""
    return np.clip(rng.standard_normal(shape) / 2.0, -1.0, 1.0)


def _blotches(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Soft low-frequency shading made of a few random plane waves."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    texture = np.zeros(shape)
    for _ in range(3):
        frequency_y, frequency_x = rng.uniform(-0.15, 0.15, size=2)
        texture += np.sin(frequency_y * rows + frequency_x * cols + rng.uniform(0.0, 2.0 * np.pi))
    return texture / 3.0


def _stripes(period: int, vertical: bool = False) -> Pattern:
    """Returns a pattern of hard-edged stripes ``period`` pixels apart, at a random phase."""

    def pattern(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
        position = (cols if vertical else rows) + rng.integers(period)
        return np.where(position % period < period / 2, 1.0, -1.0)

    return pattern


def _checker(period: int) -> Pattern:
    """Returns a checkerboard pattern of squares ``period // 2`` pixels wide, at a random phase."""

    def pattern(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
        half = max(period // 2, 1)
        cells = (rows + rng.integers(period)) // half + (cols + rng.integers(period)) // half
        return np.where(cells % 2 == 0, 1.0, -1.0)

    return pattern


def _grid(period: int) -> Pattern:
    """Returns dark grid lines every ``period`` pixels (windows, paving tiles)."""

    def pattern(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
        on_row_line = (rows + rng.integers(period)) % period == 0
        on_column_line = (cols + rng.integers(period)) % period == 0
        return np.where(on_row_line | on_column_line, -1.0, 0.3)

    return pattern


def _vertical_gradient(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Brightens towards the top of the picture (sky)."""
    return np.repeat(np.linspace(1.0, -1.0, shape[0])[:, None], shape[1], axis=1)


@dataclasses.dataclass(frozen=True)
class _Look:
    """The characteristic appearance of one class: a base colour modulated by a texture.

    Attributes:
        color: Base RGB colour.
        pattern: Texture drawn over the base colour.
        amplitude: Strength of the texture in grey levels.
        jitter: Maximum random shift of the base colour per painted region, in grey levels.
    """

    color: tuple[int, int, int]
    pattern: Pattern
    amplitude: float
    jitter: float = 12.0

    def render(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Renders this look over a whole (height, width) canvas as a float RGB array."""
        color = np.asarray(self.color, dtype=np.float64) + rng.uniform(-self.jitter, self.jitter, size=3)
        return color + self.amplitude * self.pattern(shape, rng)[..., None]


@dataclasses.dataclass
class _Canvas:
    """A picture and its label mask being painted region by region."""

    image: np.ndarray
    labels: np.ndarray

    @classmethod
    def blank(cls, height: int, width: int, fill_label: int) -> _Canvas:
        """Creates a black picture whose mask holds ``fill_label`` everywhere."""
        return cls(np.zeros((height, width, 3)), np.full((height, width), fill_label, dtype=np.uint8))

    def paint(self, region: np.ndarray, label: int, look: _Look, rng: np.random.Generator) -> None:
        """Paints ``look`` over the boolean ``region`` and writes ``label`` into the mask there."""
        self.image[region] = look.render(self.labels.shape, rng)[region]
        self.labels[region] = label

    def finished_image(self, rng: np.random.Generator) -> np.ndarray:
        """Returns the picture with sensor noise added, as uint8 RGB."""
        noisy = self.image + rng.normal(0.0, SENSOR_NOISE_STD, size=self.image.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


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

_VOC_BACKGROUND_LOOK = _Look((110, 120, 100), _blotches, amplitude=25.0, jitter=15.0)

_VOC_LOOKS: Mapping[str, _Look] = {
    "aeroplane": _Look((205, 215, 240), _stripes(8), amplitude=10.0),
    "car": _Look((200, 40, 40), _stripes(4), amplitude=35.0),
    "cat": _Look((225, 145, 50), _speckle, amplitude=30.0),
    "person": _Look((50, 70, 190), _checker(4), amplitude=30.0),
    "tvmonitor": _Look((40, 40, 50), _stripes(4, vertical=True), amplitude=20.0),
}
"""VOC classes drawn by :func:`write_voc_dataset` and their appearance."""


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


def _voc_scene(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws one VOC-style picture with one to three objects.

    Returns:
        The uint8 RGB picture and its uint8 class-index mask, void band included.
    """
    voc_map = load_label_map(voc.LABEL_MAP)
    background = voc_map.class_names.index("background")
    canvas = _Canvas.blank(height, width, background)
    canvas.paint(np.ones((height, width), dtype=bool), background, _VOC_BACKGROUND_LOOK, rng)
    class_names = list(_VOC_LOOKS)
    for _ in range(int(rng.integers(1, 4))):
        class_name = class_names[int(rng.integers(len(class_names)))]
        box_height = int(height * rng.uniform(0.3, 0.6))
        box_width = int(width * rng.uniform(0.3, 0.6))
        box = _random_box(rng, height, width, box_height, box_width)
        drawer = _SHAPE_DRAWERS[int(rng.integers(len(_SHAPE_DRAWERS)))]
        region = _shape_region(height, width, box, drawer, rng)
        canvas.paint(region, voc_map.class_names.index(class_name), _VOC_LOOKS[class_name], rng)
    mask = canvas.labels.copy()
    mask[_label_boundary_band(canvas.labels, VOC_VOID_RADIUS)] = voc_map.ignore_label
    return canvas.finished_image(rng), mask


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
    "unlabeled": _Look((20, 20, 20), _speckle, amplitude=10.0),
    "ego vehicle": _Look((30, 32, 38), _blotches, amplitude=8.0),
    "rectification border": _Look((0, 0, 0), _flat, amplitude=0.0, jitter=0.0),
    "static": _Look((140, 100, 60), _speckle, amplitude=20.0),
    "road": _Look((95, 85, 100), _speckle, amplitude=12.0),
    "sidewalk": _Look((200, 160, 190), _grid(5), amplitude=25.0),
    "building": _Look((90, 90, 90), _grid(4), amplitude=30.0),
    "pole": _Look((175, 175, 175), _flat, amplitude=0.0),
    "traffic sign": _Look((230, 220, 20), _flat, amplitude=0.0),
    "vegetation": _Look((70, 140, 40), _speckle, amplitude=35.0),
    "sky": _Look((110, 170, 225), _vertical_gradient, amplitude=20.0),
    "person": _Look((220, 30, 70), _stripes(3), amplitude=25.0),
    "car": _Look((20, 30, 160), _blotches, amplitude=20.0),
}
"""Cityscapes labels drawn by :func:`write_cityscapes_dataset` and their appearance."""


class _StreetPainter:
    """Paints Cityscapes labels by name onto a canvas, looking their raw ids up in the label map."""

    def __init__(self, canvas: _Canvas, rng: np.random.Generator):
        self.canvas = canvas
        self.rng = rng
        self.label_ids = {label.name: label.id for label in load_label_map(cityscapes.LABEL_MAP).labels}

    def paint(self, region: np.ndarray, label_name: str) -> None:
        """Paints ``region`` with the look and raw id of ``label_name``."""
        self.canvas.paint(region, self.label_ids[label_name], _CITYSCAPES_LOOKS[label_name], self.rng)


def _cityscapes_scene(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws one street scene: sky, buildings and trees, road and sidewalks, poles, people, cars.

    Returns:
        The uint8 RGB picture and its uint8 mask of raw Cityscapes label ids.
    """
    painter = _StreetPainter(_Canvas.blank(height, width, fill_label=0), rng)
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

    for _ in range(int(rng.integers(1, 3))):
        tree = _random_box(rng, height, width, int(0.25 * height), int(0.15 * width),
                           top_range=(horizon - int(0.3 * height), horizon - int(0.15 * height)))
        painter.paint(_shape_region(height, width, tree, _draw_ellipse, rng), "vegetation")

    pole_foot_rows = (horizon + (height - horizon) // 2, height - 1)
    for _ in range(int(rng.integers(1, 3))):
        pole_left = int(rng.integers(0, width - 2))
        pole_bottom = int(rng.integers(*pole_foot_rows))
        pole_top = int(0.15 * height)
        pole = (cols >= pole_left) & (cols < pole_left + 2) & (rows >= pole_top) & (rows <= pole_bottom)
        painter.paint(pole, "pole")
        sign = (pole_left - 3, pole_top - 4, pole_left + 4, pole_top + 3)
        painter.paint(_shape_region(height, width, sign, _draw_triangle, rng), "traffic sign")

    static_box = _random_box(rng, height, width, int(0.08 * height) + 2, int(0.05 * width) + 2,
                             top_range=(horizon, height - 1))
    painter.paint(_shape_region(height, width, static_box, _draw_rectangle, rng), "static")

    for _ in range(int(rng.integers(1, 4))):
        person = _random_box(rng, height, width, int(0.25 * height), max(int(0.04 * width), 3),
                             top_range=(horizon - int(0.15 * height), horizon + int(0.1 * height)))
        painter.paint(_shape_region(height, width, person, _draw_ellipse, rng), "person")

    for _ in range(int(rng.integers(1, 4))):
        car_depth = rng.uniform(0.2, 0.8)
        car_height = int((0.1 + 0.2 * car_depth) * height)
        car_bottom = horizon + int(car_depth * (height - horizon))
        car = _random_box(rng, height, width, car_height, int(car_height * rng.uniform(1.4, 2.0)),
                          top_range=(car_bottom - car_height, car_bottom - car_height))
        drawer = (_draw_ellipse, _draw_rectangle)[int(rng.integers(2))]
        painter.paint(_shape_region(height, width, car, drawer, rng), "car")

    unlabeled = _random_box(rng, height, width, int(0.06 * height) + 2, int(0.06 * width) + 2)
    painter.paint(_shape_region(height, width, unlabeled, _draw_ellipse, rng), "unlabeled")
    hood = (int(0.1 * width), height - int(0.1 * height), int(0.9 * width), height + int(0.1 * height))
    painter.paint(_shape_region(height, width, hood, _draw_ellipse, rng), "ego vehicle")
    painter.paint((cols < 2) | (cols >= width - 2), "rectification border")
    return painter.canvas.finished_image(rng), painter.canvas.labels


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
        _save_png(image, pathlib.Path(cityscapes.image_path(root, split, city, frame_name)))
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
