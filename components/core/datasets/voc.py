"""The PASCAL VOC 2012 layout: everything segpipe knows about a VOC folder on disk.

Its names (:data:`NAME`, the format names users type, the label map), its folder and file names, how
to find the root in the folder a user names, how to list a split's image/mask pairs (ingestion), which
files TFX fingerprints, and where ``segpipe score`` finds ground-truth masks. Ingestion, scoring and the
synthetic generator all read these; :func:`components.core.datasets.layout_of` finds this module
from a format name.

Layout (``root`` is the ``VOC2012`` folder, usually ``VOCdevkit/VOC2012``)::

    JPEGImages/<id>.jpg
    SegmentationClass/<id>.png          palette PNG of class indices 0-20, 255 = void (the ignore label)
    SegmentationClassAug/<id>.png       optional: masks of the SBD-augmented list train_aug
    ImageSets/Segmentation/<split>.txt  one id a line: train, val, trainval, train_aug...

A mask stored as RGB colours is decoded with the VOC colour map.

Framework-free: files are listed through :mod:`components.core.datasets.files` (TensorFlow on first
call), ground truth for scoring through :mod:`pathlib`.
"""

from __future__ import annotations

import pathlib
import re
from typing import Mapping

from components.core.datasets import files
from components.core.datasets.splits import IngestionError, PairCandidate, SplitPlan, available

NAME = "pascal_voc"
"""Canonical dataset name: the ``dataset`` feature of every example and the label-map name."""

TITLE = "PASCAL VOC 2012"
"""The dataset's name in messages."""

FORMATS = ("voc", "pascal_voc")
"""Format names users may type; the first is the one the command line offers."""

LABEL_MAP = "pascal_voc"
"""Name of the label map (``schemas/label_maps/pascal_voc.json``)."""

DEVKIT_ROOT = ("VOCdevkit", "VOC2012")
"""Where the official archive unpacks the root, below the folder it is unpacked in."""

ROOT_PLACES = (DEVKIT_ROOT, ("VOC2012",), ())
"""Where the root may lie below the folder a user names (``VOCdevkit/VOC2012``, ``VOC2012``, itself),
in the order ingestion tries them; scoring tries them the other way round (nearest first)."""

IMAGE_DIR = "JPEGImages"
IMAGE_EXTENSION = ".jpg"
MASK_DIR = "SegmentationClass"
MASK_EXTENSION = ".png"
AUGMENTED_MASK_DIR = "SegmentationClassAug"
LIST_DIR = "ImageSets/Segmentation"
AUGMENTED_LIST = "train_aug"
"""The SBD-augmented training list; its masks live in :data:`AUGMENTED_MASK_DIR` when that exists."""

ROOT_EXPECTED = (
    "VOCdevkit/VOC2012, VOC2012 or the VOC2012 folder itself, "
    f"holding {IMAGE_DIR}/ and {LIST_DIR}/"
)
"""What a root must look like, for the error raised when none is found."""

UNLABELLED_SPLITS: Mapping[str, str] = {}
"""Splits never ingested, with the reason: none for VOC."""

SPLITS_LISTED_IN_FILES = True
"""A split is a list file (``ImageSets/Segmentation/<split>.txt``), whose contents key caches."""

COLOUR_MASKS = True
"""Masks stored as RGB colours are accepted and decoded with the label map's colour map."""

MASK_KINDS = "a palette or greyscale PNG of class indices, or RGB VOC colours"
"""The mask files accepted, for error messages."""

SPLIT_FILE_PATTERN = "[IJS]*/*"
"""Glob (under the root) TFX fingerprints for every split: all of ``JPEGImages/``, ``SegmentationClass/``
(and ``SegmentationClassAug/``, ``SegmentationObject/``) and the entries of ``ImageSets/``."""

HAS_CITIES = False
"""Examples have no city (their ``city`` feature is empty)."""

GROUND_TRUTH_AT_ANY_DEPTH = False
"""Scoring reads the ``*.png`` directly in the ground-truth folder (:func:`ground_truth_folder`)."""

GROUND_TRUTH_SUFFIX = ""
"""Ground-truth file stems are the image ids, with no suffix."""


# --------------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------------


def image_path(root: str, example_id: str) -> str:
    """The image file of ``example_id``."""
    return files.join(root, IMAGE_DIR, example_id + IMAGE_EXTENSION)


def mask_path(root: str, example_id: str, mask_dir: str = MASK_DIR) -> str:
    """The mask file of ``example_id`` (in ``mask_dir``: :data:`MASK_DIR` or :data:`AUGMENTED_MASK_DIR`)."""
    return files.join(root, mask_dir, example_id + MASK_EXTENSION)


def list_path(root: str, split: str) -> str:
    """The list file of ``split``."""
    return files.join(root, LIST_DIR, f"{split}.txt")


def split_source(root: str, split: str) -> str:
    """Where a split is read from: its list file."""
    return list_path(root, split)


def split_file_pattern(split: str) -> str:
    """The files TFX fingerprints for ``split``, relative to the root: the same for every split."""
    return SPLIT_FILE_PATTERN


# --------------------------------------------------------------------------------------------------
# Finding the root and listing a split (ingestion)
# --------------------------------------------------------------------------------------------------


def is_root(path: str) -> bool:
    """Whether ``path`` is a VOC2012 folder: it holds ``JPEGImages/`` and ``ImageSets/Segmentation/``."""
    return files.isdir(files.join(path, IMAGE_DIR)) and files.isdir(files.join(path, LIST_DIR))


def find_root(data_dir: str) -> str | None:
    """The first of ``data_dir/VOCdevkit/VOC2012``, ``data_dir/VOC2012`` and ``data_dir`` that is a root, else None."""
    for place in ROOT_PLACES:
        candidate = files.join(data_dir, *place) if place else data_dir
        if is_root(candidate):
            return candidate
    return None


def partial_root_problem(data_dir: str) -> tuple[str, str] | None:
    """Says what is missing when ``data_dir`` is almost a VOC folder: a place holding ``JPEGImages/``
    but not ``ImageSets/Segmentation/``. Returns ``(missing folder, reason)``, or None."""
    for place in ROOT_PLACES:
        candidate = files.join(data_dir, *place) if place else data_dir
        if files.isdir(files.join(candidate, IMAGE_DIR)) and not files.isdir(files.join(candidate, LIST_DIR)):
            return files.join(candidate, LIST_DIR), (
                f"folder of split lists not found (a {TITLE} folder holds {IMAGE_DIR}/ and {LIST_DIR}/)")
    return None


def available_splits(root: str) -> list[str]:
    """The splits a root offers: the names of the list files in ``ImageSets/Segmentation``, sorted."""
    return sorted(name[: -len(".txt")] for name in files.listdir(files.join(root, LIST_DIR)) if name.endswith(".txt"))


def _id_problem(example_id: str) -> str | None:
    """Says why a listed id cannot name files inside the dataset root, or returns None if it can."""
    parts = re.split(r"[\\/]", example_id)
    if example_id.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", example_id) or "://" in example_id:
        return f"id {example_id!r} is an absolute path, reaching outside the dataset root"
    if ".." in parts:
        return f"id {example_id!r} reaches outside the dataset root"
    if len(parts) > 1:
        return f"id {example_id!r} contains a path separator"
    if example_id == "." or re.search(r"\s", example_id):
        return f"id {example_id!r} is not a single image id"
    return None


def plan_split(root: str, split: str) -> SplitPlan:
    """Lists the pairs of ``ImageSets/Segmentation/<split>.txt``, in list order (no image is opened).

    Ids that cannot name a file inside the root, and ids listed again, are kept as candidates whose
    ``problem`` says why (attributed to the list file). ``train_aug`` reads its masks from
    ``SegmentationClassAug/`` when that folder exists.

    Raises:
        IngestionError: If the list file does not exist (the message names the lists available).
    """
    source = list_path(root, split)
    if not files.exists(source):
        raise IngestionError(source, f"split list file not found (available lists: {available(available_splits(root))})")
    mask_dir = MASK_DIR
    if split == AUGMENTED_LIST and files.isdir(files.join(root, AUGMENTED_MASK_DIR)):
        mask_dir = AUGMENTED_MASK_DIR
    seen: set[str] = set()
    candidates = []
    for line in files.read_lines(source):
        example_id = line.strip()
        if not example_id:
            continue
        problem = _id_problem(example_id)
        if problem is None and example_id in seen:
            problem = f"id {example_id!r} listed more than once"
        seen.add(example_id)
        if problem is not None:
            candidates.append(PairCandidate(NAME, split, example_id, "", "", problem=problem, problem_path=source))
        else:
            candidates.append(PairCandidate(
                NAME, split, example_id,
                image_path=image_path(root, example_id),
                mask_path=mask_path(root, example_id, mask_dir),
            ))
    return SplitPlan(NAME, split, source, tuple(candidates), root=root)


# --------------------------------------------------------------------------------------------------
# Ground truth for scoring (local folders)
# --------------------------------------------------------------------------------------------------


def ground_truth_folder(folder: pathlib.Path) -> pathlib.Path:
    """Finds the ``SegmentationClass`` folder from the (existing) folder a user names.

    Args:
        folder: ``SegmentationClass`` itself, ``VOC2012``, ``VOCdevkit`` or the folder holding ``VOCdevkit``.

    Returns:
        The first of ``folder/SegmentationClass``, ``folder/VOC2012/SegmentationClass`` and
        ``folder/VOCdevkit/VOC2012/SegmentationClass`` that exists, else ``folder`` itself.
    """
    for place in reversed(ROOT_PLACES):
        candidate = folder.joinpath(*place, MASK_DIR)
        if candidate.is_dir():
            return candidate
    return folder
