"""Dataset label maps: class names, colours and the raw-id -> training-id lookup table.

The tables themselves are data, kept in ``schemas/label_maps/<name>.json`` (one file per dataset); this
module loads them into a frozen :class:`LabelMap` that ingestion, losses, metric names and report colours
all share. It depends on numpy only.

Every label-map file has the same JSON layout::

    {
      "name": "cityscapes",                 # must equal the file stem
      "description": "...", "source": "...",  # documentation only
      "ignore_label": 255,                  # training id of pixels excluded from losses and metrics
      "ignore_color": [0, 0, 0],            # colour drawn for the ignore label
      "labels": [                           # every raw label of the dataset, in the official order
        {"name": "road", "id": 7, "train_id": 0, "color": [128, 64, 128],
         "category": "flat", "category_id": 1, "has_instances": false, "ignore_in_eval": false},
        ...
      ]
    }

``id`` is the value stored in the dataset's raw mask files (``-1``: never stored, as Cityscapes'
``license plate``). ``train_id`` is the class the model learns: training classes use each id of
``0 .. num_classes - 1`` exactly once; ``train_id`` equal to ``ignore_label`` (or ``-1``) marks a label
that is ignored in training. ``category``, ``category_id``, ``has_instances`` and ``ignore_in_eval`` are
optional (Cityscapes has them, VOC does not). Raw mask values that no label lists map to the ignore label.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import pathlib
from typing import Any, Mapping

import numpy as np

RGB = tuple[int, int, int]

NUM_MASK_VALUES = 256
"""Raw masks are 8-bit images, so lookup tables and palettes have 256 entries."""

NO_ID = -1
"""``id``/``train_id`` value of a label that never appears in mask files (Cityscapes' license plate)."""

IGNORE_LABEL = 255
"""The ignore label of every shipped label map (VOC void, Cityscapes trainId 255; a test checks the JSON
files agree). Code that holds a :class:`LabelMap` reads ``label_map.ignore_label``; this constant is only
the default of functions that take the ignore label as an argument."""

_MAX_COLORS_IN_ERROR = 10
_LABEL_MAP_KEYS = frozenset({"name", "description", "source", "ignore_label", "ignore_color", "labels"})


def schemas_dir() -> pathlib.Path:
    """Returns the folder of the ``schemas`` package: the raw-example schema and the label maps.

    ``schemas`` ships as package data (see ``pyproject.toml``), so this works from a source checkout,
    an editable install and a wheel alike (the Kubeflow image installs the wheel).
    """
    folder = importlib.resources.files("schemas")
    if not isinstance(folder, pathlib.Path):  # a zipped install: TFX's ImportSchemaGen needs real files
        raise RuntimeError(f"the schemas package must be installed as files, not inside {folder}")
    return folder


def label_maps_dir() -> pathlib.Path:
    """Returns the folder holding the label-map JSON files."""
    return schemas_dir() / "label_maps"


def available_label_maps() -> tuple[str, ...]:
    """Returns the names of all label maps shipped in ``schemas/label_maps``, sorted."""
    return tuple(sorted(path.stem for path in label_maps_dir().glob("*.json")))


def bitwise_colormap(num_entries: int = NUM_MASK_VALUES) -> np.ndarray:
    """Builds the PASCAL VOC bitwise colormap (VOCdevkit ``VOClabelcolormap.m``).

    Bit ``3k + c`` of an index sets bit ``7 - k`` of colour channel ``c`` (0 = red, 1 = green, 2 = blue).

    Args:
        num_entries: Number of palette entries to build.

    Returns:
        A ``(num_entries, 3)`` uint8 array; row ``i`` is the colour of index ``i``.
    """
    indices = np.arange(num_entries)
    colormap = np.zeros((num_entries, 3), dtype=np.int64)
    for bit in range(8):
        for channel in range(3):
            colormap[:, channel] |= ((indices >> (3 * bit + channel)) & 1) << (7 - bit)
    return colormap.astype(np.uint8)


def _as_rgb(value: Any, what: str) -> RGB:
    """Validates and normalises a colour given as three integers in 0..255."""
    color = tuple(int(channel) for channel in value)
    if len(color) != 3 or not all(0 <= channel <= 255 for channel in color):
        raise ValueError(f"{what} must be three integers in 0..255, got {value!r}")
    return color  # type: ignore[return-value]


def _check_integer_mask(mask: np.ndarray, what: str) -> None:
    """Raises unless ``mask`` is an integer array whose values index a 256-entry table."""
    if not np.issubdtype(mask.dtype, np.integer):
        raise TypeError(f"{what} must have an integer dtype, got {mask.dtype}")
    if mask.dtype != np.uint8 and mask.size and (mask.min() < 0 or mask.max() >= NUM_MASK_VALUES):
        raise ValueError(
            f"{what} values must lie in 0..{NUM_MASK_VALUES - 1}, got range {mask.min()}..{mask.max()}"
        )


def _check_keys(mapping: Mapping[str, Any], known: set[str], required: set[str], where: str) -> None:
    """Raises ValueError naming the unknown or missing keys of a parsed JSON object."""
    unknown_keys = set(mapping) - known
    if unknown_keys:
        raise ValueError(f"unknown keys {sorted(unknown_keys)} {where}")
    missing_keys = required - set(mapping)
    if missing_keys:
        raise ValueError(f"missing keys {sorted(missing_keys)} {where}")


@dataclasses.dataclass(frozen=True)
class Label:
    """One raw label of a dataset, as listed in its label-map file.

    Attributes:
        name: Official label name, e.g. ``"traffic light"``.
        id: Value stored in raw mask files; ``NO_ID`` (-1) if never stored.
        train_id: Training class id, or the map's ignore label (or ``NO_ID``) when ignored in training.
        color: Official RGB colour.
        category: Optional coarse category name (Cityscapes).
        category_id: Optional coarse category id (Cityscapes).
        has_instances: Optional flag: the label separates instances (Cityscapes).
        ignore_in_eval: Optional flag: the official evaluation ignores the label (Cityscapes).
    """

    name: str
    id: int
    train_id: int
    color: RGB
    category: str | None = None
    category_id: int | None = None
    has_instances: bool | None = None
    ignore_in_eval: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "color", _as_rgb(self.color, f"colour of label {self.name!r}"))
        for field_name in ("id", "train_id"):
            value = getattr(self, field_name)
            if not NO_ID <= value < NUM_MASK_VALUES:
                raise ValueError(f"{field_name} of label {self.name!r} must lie in -1..255, got {value}")

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> Label:
        """Builds a label from one entry of a label-map file's ``labels`` list.

        Raises:
            ValueError: If keys are missing or unknown, or a value is out of range.
        """
        _check_keys(entry, known={field.name for field in dataclasses.fields(cls)},
                    required={"name", "id", "train_id", "color"}, where=f"in label entry {dict(entry)!r}")
        return cls(**entry)


@dataclasses.dataclass(frozen=True)
class LabelMap:
    """A dataset's labels and everything derived from them.

    Only ``name``, ``labels``, ``ignore_label`` and ``ignore_color`` are given; the other attributes are
    derived (and validated) on construction. Use :func:`load_label_map` for the shipped datasets.

    Attributes:
        name: Dataset name, e.g. ``"pascal_voc"`` or ``"cityscapes"``.
        labels: Every raw label of the dataset, in the official order.
        ignore_label: Training id of ignored pixels (255).
        ignore_color: RGB colour drawn for the ignore label.
        class_names: Names of the training classes, indexed by training id.
        colors: RGB colours of the training classes, indexed by training id.
        id_to_train_id: Read-only uint8 lookup table of 256 entries: raw mask value -> training id.
        valid_raw_values: Read-only boolean table of 256 entries: which raw mask values are label ids
            of the dataset or the ignore label (anything else in a label file is an error).
    """

    name: str
    labels: tuple[Label, ...]
    ignore_label: int = IGNORE_LABEL
    ignore_color: RGB = (0, 0, 0)
    class_names: tuple[str, ...] = dataclasses.field(init=False)
    colors: tuple[RGB, ...] = dataclasses.field(init=False)
    id_to_train_id: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    valid_raw_values: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    _palette: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    _color_to_train_id: Mapping[int, int] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "ignore_color", _as_rgb(self.ignore_color, "ignore_color"))
        if not 0 <= self.ignore_label < NUM_MASK_VALUES:
            raise ValueError(f"ignore_label must lie in 0..255, got {self.ignore_label}")

        raw_ids = [label.id for label in labels if label.id != NO_ID]
        duplicate_ids = sorted({raw_id for raw_id in raw_ids if raw_ids.count(raw_id) > 1})
        if duplicate_ids:
            raise ValueError(f"label map {self.name!r}: raw ids listed more than once: {duplicate_ids}")

        training_labels = sorted(
            (label for label in labels if self._is_training(label)), key=lambda label: label.train_id
        )
        train_ids = [label.train_id for label in training_labels]
        if not train_ids or train_ids != list(range(len(train_ids))):
            raise ValueError(
                f"label map {self.name!r}: training ids must be 0..N-1 (N >= 1), each used once; "
                f"got {train_ids}"
            )
        class_colors = [label.color for label in training_labels]
        if len(set(class_colors)) != len(class_colors):
            raise ValueError(f"label map {self.name!r}: two training classes share a colour")

        object.__setattr__(self, "class_names", tuple(label.name for label in training_labels))
        object.__setattr__(self, "colors", tuple(class_colors))
        object.__setattr__(self, "id_to_train_id", self._build_lookup_table())
        object.__setattr__(self, "valid_raw_values", self._build_valid_raw_values())
        object.__setattr__(self, "_palette", self._build_palette())
        object.__setattr__(self, "_color_to_train_id", self._build_color_table())

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> LabelMap:
        """Builds a label map from the parsed JSON of a label-map file (layout in the module docstring).

        Raises:
            ValueError: If the document has missing or unknown keys or inconsistent labels.
        """
        _check_keys(document, known=_LABEL_MAP_KEYS, required={"name", "ignore_label", "ignore_color", "labels"},
                    where="in label map document")
        return cls(
            name=document["name"],
            labels=tuple(Label.from_dict(entry) for entry in document["labels"]),
            ignore_label=int(document["ignore_label"]),
            ignore_color=document["ignore_color"],
        )

    @property
    def num_classes(self) -> int:
        """Number of training classes (ignore label excluded)."""
        return len(self.class_names)

    def to_train_ids(self, mask: np.ndarray) -> np.ndarray:
        """Maps a raw mask (values as stored in the dataset's label files) to training ids.

        Args:
            mask: Integer array of raw label ids in 0..255, any shape.

        Returns:
            A uint8 array of the same shape holding training ids, with ``ignore_label`` for every raw
            value that is not a training class.

        Raises:
            TypeError: If ``mask`` is not an integer array.
            ValueError: If a value lies outside 0..255.
        """
        mask = np.asarray(mask)
        _check_integer_mask(mask, "raw mask")
        return self.id_to_train_id[mask]

    def palette(self) -> list[int]:
        """Returns a flat 768-entry palette (R, G, B per index) for Pillow ``'P'`` images of training ids.

        Training ids get their class colours and the ignore label its ignore colour; every other index
        keeps the VOC bitwise colormap colour, so the PASCAL VOC palette equals the official one exactly.
        """
        return self._palette.reshape(-1).tolist()

    def colorize(self, train_id_mask: np.ndarray) -> np.ndarray:
        """Renders a mask of training ids in the palette's colours.

        Args:
            train_id_mask: Integer array of training ids (or the ignore label) in 0..255, shape ``(H, W)``.

        Returns:
            A uint8 array of shape ``(H, W, 3)``.

        Raises:
            TypeError: If the mask is not an integer array.
            ValueError: If a value lies outside 0..255.
        """
        train_id_mask = np.asarray(train_id_mask)
        _check_integer_mask(train_id_mask, "training-id mask")
        return self._palette[train_id_mask]

    def rgb_to_train_ids(self, rgb: np.ndarray) -> np.ndarray:
        """Decodes a colour-coded mask (such as Cityscapes' ``gtFine_color``) into training ids.

        Each colour maps to the training id of the label that has it; the ignore colour and colours of
        ignored labels map to ``ignore_label``. Where a training class shares its colour with ignored
        labels (Cityscapes: pole/polegroup, car/license plate) the training class wins.

        Args:
            rgb: uint8-range integer array of shape ``(H, W, 3)``, or ``(H, W, 4)`` whose alpha is ignored.

        Returns:
            A uint8 array of shape ``(H, W)`` holding training ids.

        Raises:
            ValueError: If the array does not have 3 or 4 channels, or holds colours absent from the
                label map (the message names them).
        """
        rgb = np.asarray(rgb)
        if rgb.ndim < 1 or rgb.shape[-1] not in (3, 4):
            raise ValueError(f"expected an RGB(A) array of shape (..., 3) or (..., 4), got {rgb.shape}")
        _check_integer_mask(rgb, "RGB mask")
        channels = rgb[..., :3].astype(np.int64)
        packed = (channels[..., 0] << 16) | (channels[..., 1] << 8) | channels[..., 2]
        unique_colors, inverse = np.unique(packed, return_inverse=True)
        unique_train_ids = np.array(
            [self._color_to_train_id.get(int(color), NO_ID) for color in unique_colors], dtype=np.int64
        )
        unknown = unique_colors[unique_train_ids == NO_ID]
        if unknown.size:
            shown = ", ".join(str(_unpack_rgb(int(color))) for color in unknown[:_MAX_COLORS_IN_ERROR])
            hidden = unknown.size - _MAX_COLORS_IN_ERROR
            more = f" and {hidden} more" if hidden > 0 else ""
            raise ValueError(f"colour(s) not in the {self.name} label map: {shown}{more}")
        return unique_train_ids[inverse].reshape(packed.shape).astype(np.uint8)

    def _is_training(self, label: Label) -> bool:
        """Whether ``label`` is a training class (not ignored)."""
        return label.train_id not in (NO_ID, self.ignore_label)

    def _build_lookup_table(self) -> np.ndarray:
        """Builds the read-only raw-id -> training-id table; unlisted raw values map to the ignore label."""
        table = np.full(NUM_MASK_VALUES, self.ignore_label, dtype=np.uint8)
        for label in self.labels:
            if label.id != NO_ID:
                table[label.id] = label.train_id if self._is_training(label) else self.ignore_label
        table.flags.writeable = False
        return table

    def _build_valid_raw_values(self) -> np.ndarray:
        """Builds the read-only table behind ``valid_raw_values``."""
        valid = np.zeros(NUM_MASK_VALUES, dtype=bool)
        valid[[label.id for label in self.labels if label.id != NO_ID]] = True
        valid[self.ignore_label] = True
        valid.flags.writeable = False
        return valid

    def _build_palette(self) -> np.ndarray:
        """Builds the read-only ``(256, 3)`` uint8 palette behind :meth:`palette` and :meth:`colorize`."""
        palette = bitwise_colormap(NUM_MASK_VALUES)
        palette[: self.num_classes] = self.colors
        palette[self.ignore_label] = self.ignore_color
        palette.flags.writeable = False
        return palette

    def _build_color_table(self) -> dict[int, int]:
        """Builds the packed-colour -> training-id table used by :meth:`rgb_to_train_ids`."""
        table = {_pack_rgb(self.ignore_color): self.ignore_label}
        for label in self.labels:
            if not self._is_training(label):
                table.setdefault(_pack_rgb(label.color), self.ignore_label)
        for train_id, color in enumerate(self.colors):
            table[_pack_rgb(color)] = train_id
        return table


def _pack_rgb(color: RGB) -> int:
    """Packs an RGB triple into one integer (``0xRRGGBB``)."""
    red, green, blue = color
    return (red << 16) | (green << 8) | blue


def _unpack_rgb(packed: int) -> RGB:
    """Inverse of :func:`_pack_rgb`."""
    return (packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF


@functools.cache
def load_label_map(name: str) -> LabelMap:
    """Loads (once per process) the label map ``schemas/label_maps/<name>.json``.

    Args:
        name: Dataset name, one of :func:`available_label_maps` (``"pascal_voc"``, ``"cityscapes"``).

    Returns:
        The validated, immutable label map.

    Raises:
        ValueError: If ``name`` is not a shipped label map (the message lists the known ones), or the
            file is inconsistent.
    """
    known_names = available_label_maps()
    if name not in known_names:
        raise ValueError(f"unknown label map {name!r}; known label maps: {', '.join(known_names)}")
    path = label_maps_dir() / f"{name}.json"
    label_map = LabelMap.from_dict(json.loads(path.read_text(encoding="utf-8")))
    if label_map.name != name:
        raise ValueError(f"{path} declares name {label_map.name!r}; expected {name!r}")
    return label_map
