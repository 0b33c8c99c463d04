"""The Cityscapes layout: everything segpipe knows about a Cityscapes folder on disk.

Its names (:data:`NAME`, the format name users type, the label map), its folder names and file
suffixes, how to recognise the root, how to list a split's image/mask pairs (ingestion), which files
TFX fingerprints, and where ``segpipe score`` finds ground-truth masks. Ingestion, scoring and the
synthetic generator all read these; :func:`components.core.datasets.layout_of` finds this module
from a format name.

Layout (``root`` is the folder a user names)::

    leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png        raw label ids 0-33
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png   training ids (cityscapesScripts)

The raw label ids are mapped to the 19 training ids, everything else to 255 (the ``cityscapes`` label
map). The ``test`` split has no usable labels and is never ingested.

Framework-free: files are listed through :mod:`components.core.datasets.files` (TensorFlow on first
call), ground truth for scoring through :mod:`pathlib`.
"""

from __future__ import annotations

import os
import pathlib
from typing import Mapping

from components.core.datasets import files
from components.core.datasets.splits import IngestionError, PairCandidate, SplitPlan, available, check_split_name

NAME = "cityscapes"
"""Canonical dataset name: the ``dataset`` feature of every example and the label-map name."""

TITLE = "Cityscapes"
"""The dataset's name in messages."""

FORMATS = ("cityscapes",)
"""Format names users may type; the first is the one the command line offers."""

LABEL_MAP = "cityscapes"
"""Name of the label map (``schemas/label_maps/cityscapes.json``)."""

IMAGE_DIR = "leftImg8bit"
LABEL_DIR = "gtFine"
EXTENSION = ".png"
"""Every image and ground-truth file is a PNG named ``<frame id><suffix>.png``, a suffix below."""
IMAGE_SUFFIX = "_leftImg8bit"
MASK_SUFFIX = "_gtFine_labelIds"
TRAIN_ID_MASK_SUFFIX = "_gtFine_labelTrainIds"

ANNOTATED_FRAME = 19
"""Cityscapes annotates the 20th frame of each sequence, so gtFine file names end in ``_000019``."""

ROOT_EXPECTED = f"{IMAGE_DIR}/ and {LABEL_DIR}/ in it"
"""What a root must look like, for the error raised when it is not one."""

UNLABELLED_SPLITS: Mapping[str, str] = {
    "test": "the Cityscapes test split has no usable labels (its public gtFine masks are blank)",
}
"""Splits never ingested, with the reason."""

SPLITS_LISTED_IN_FILES = False
"""A split is a folder (``leftImg8bit/<split>``), not a list file."""

COLOUR_MASKS = False
"""Masks must hold raw label ids; ``gtFine_color`` files are not ingested."""

MASK_KINDS = "a greyscale labelIds PNG"
"""The mask files accepted, for error messages."""

HAS_CITIES = True
"""Every example belongs to a city (an evaluation slice)."""

GROUND_TRUTH_AT_ANY_DEPTH = True
"""Scoring reads ground truth at any depth below the folder named (e.g. ``gtFine/val`` and its cities)."""

GROUND_TRUTH_SUFFIX = MASK_SUFFIX
"""Scoring reads the ``*_gtFine_labelIds.png`` files; their key is the stem without this suffix."""


# --------------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------------


def frame_id(city: str, sequence: int, frame: int = ANNOTATED_FRAME) -> str:
    """The id of a frame, ``<city>_<sequence:06d>_<frame:06d>``, e.g. ``aachen_000000_000019``."""
    return f"{city}_{sequence:06d}_{frame:06d}"


def file_name(frame: str, suffix: str) -> str:
    """The file name of a frame's image or mask: ``<frame><suffix>.png``."""
    return frame + suffix + EXTENSION


def image_path(root: str, split: str, city: str, frame: str) -> str:
    """The image file of a frame."""
    return files.join(root, IMAGE_DIR, split, city, file_name(frame, IMAGE_SUFFIX))


def mask_path(root: str, split: str, city: str, frame: str, suffix: str = MASK_SUFFIX) -> str:
    """A ground-truth file of a frame: raw label ids by default, or ``suffix`` (:data:`TRAIN_ID_MASK_SUFFIX`)."""
    return files.join(root, LABEL_DIR, split, city, file_name(frame, suffix))


def split_source(root: str, split: str) -> str:
    """Where a split is read from: its ``leftImg8bit/<split>`` folder."""
    return files.join(root, IMAGE_DIR, split)


def split_file_pattern(split: str) -> str:
    """The files TFX fingerprints for ``split``, relative to the root: its images and ``gtFine`` files."""
    return f"*/{check_split_name(split)}/*/*"


# --------------------------------------------------------------------------------------------------
# Finding the root and listing a split (ingestion)
# --------------------------------------------------------------------------------------------------


def is_root(path: str) -> bool:
    """Whether ``path`` is a Cityscapes root: it holds ``leftImg8bit/`` and ``gtFine/``."""
    return files.isdir(files.join(path, IMAGE_DIR)) and files.isdir(files.join(path, LABEL_DIR))


def find_root(data_dir: str) -> str | None:
    """``data_dir`` if it is a root (the root is always the folder named), else None."""
    return data_dir if is_root(data_dir) else None


def partial_root_problem(data_dir: str) -> tuple[str, str] | None:
    """Says what is missing when ``data_dir`` is almost a Cityscapes root (one of ``leftImg8bit/`` and
    ``gtFine/`` but not the other). Returns ``(missing folder, reason)``, or None."""
    has_images, has_labels = (files.isdir(files.join(data_dir, name)) for name in (IMAGE_DIR, LABEL_DIR))
    if has_images != has_labels:
        missing = LABEL_DIR if has_images else IMAGE_DIR
        return files.join(data_dir, missing), f"folder not found (a {TITLE} folder holds {IMAGE_DIR}/ and {LABEL_DIR}/)"
    return None


def available_splits(root: str) -> list[str]:
    """The splits a root offers: the folders in ``leftImg8bit/``, sorted."""
    image_root = files.join(root, IMAGE_DIR)
    return sorted(name.rstrip("/") for name in files.listdir(image_root)
                  if files.isdir(files.join(image_root, name.rstrip("/"))))


def _frames_in(folder: str, suffix: str) -> dict[tuple[str, str], str]:
    """Maps (city, frame id) to path for every ``<folder>/<city>/*<suffix>.png`` file."""
    ending = suffix + EXTENSION
    frames = {}
    for path in files.glob(files.join(folder, "*", f"*{ending}")):
        city = os.path.basename(os.path.dirname(path))
        frames[(city, os.path.basename(path)[: -len(ending)])] = path
    return frames


def plan_split(root: str, split: str) -> SplitPlan:
    """Lists a split's pairs: the union of its images and its labelIds masks, sorted by city and frame.

    An image without a mask, or a mask without an image, is listed too (with the missing file's path),
    so that ingestion quarantines it by name.

    Raises:
        IngestionError: If ``leftImg8bit/<split>`` does not exist (the message names the splits available).
    """
    image_dir = split_source(root, split)
    label_dir = files.join(root, LABEL_DIR, split)
    if not files.isdir(image_dir):
        raise IngestionError(image_dir, f"split folder not found (available splits: {available(available_splits(root))})")
    images = _frames_in(image_dir, IMAGE_SUFFIX)
    masks = _frames_in(label_dir, MASK_SUFFIX) if files.isdir(label_dir) else {}
    candidates = []
    for city, frame in sorted(set(images) | set(masks)):
        candidates.append(PairCandidate(
            NAME, split, frame,
            image_path=images.get((city, frame)) or image_path(root, split, city, frame),
            mask_path=masks.get((city, frame)) or mask_path(root, split, city, frame),
            city=city,
        ))
    return SplitPlan(NAME, split, image_dir, tuple(candidates), root=root)


# --------------------------------------------------------------------------------------------------
# Ground truth for scoring (local folders)
# --------------------------------------------------------------------------------------------------


def ground_truth_folder(folder: pathlib.Path) -> pathlib.Path:
    """The folder scoring searches for ground truth: the (existing) folder a user names, as is."""
    return folder
