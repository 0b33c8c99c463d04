"""Finding, pairing and validating the image/mask files of PASCAL VOC 2012 and Cityscapes folders.

Framework-free (no tfx, apache_beam or mlflow): the Beam transforms in
:mod:`components.example_gen.ingest` only call the functions below. Files are listed and read through
``tf.io.gfile``, so dataset roots may be local folders or any filesystem TensorFlow knows (``gs://``...);
local files' bytes are read with Python's ``open``, which lets parallel Beam threads overlap.

Ingestion happens in three steps, each a function here:

1. :func:`resolve_dataset_root` finds the dataset root in the folder a user names, or fails with an
   :class:`IngestionError` saying which layout was expected.
2. :func:`plan_split` lists one split's pairs as :class:`PairCandidate` s (ids and paths only, no pixels).
   A VOC split comes from ``ImageSets/Segmentation/<split>.txt``; a Cityscapes split from the union of
   ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and ``gtFine/<split>/<city>/*_gtFine_labelIds.png``.
   Problems visible in the listing (an id reaching outside the root, an id listed twice) are attached to
   the candidate; a missing list file or split folder is an immediate error.
3. :func:`load_pair` reads, validates and converts one candidate into a
   :class:`~components.core.examples.SegmentationExample`, or raises an :class:`IngestionError` naming
   the file at fault and the reason. Callers quarantine that pair, or stop in strict mode.

:func:`build_report` turns the per-split outcomes into the JSON-able ingestion report, whose counts
reconcile: for every split, pairs listed = examples written + pairs quarantined.

Layouts (``root`` is the folder :func:`resolve_dataset_root` returns):

* PASCAL VOC 2012: ``root = VOCdevkit/VOC2012``; ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png``
  (palette PNG of class indices 0-20, 255 = void, kept as the ignore label) and
  ``ImageSets/Segmentation/{train,val,trainval}.txt``. The SBD-augmented list ``train_aug.txt`` is
  read like any other list; its masks come from ``SegmentationClassAug/`` when that folder exists.
  A mask stored as RGB colours is decoded with the VOC colour map.
* Cityscapes: ``root`` holds ``leftImg8bit/`` and ``gtFine/``; raw label ids 0-33 are mapped to the
  19 training ids, everything else to 255. The ``test`` split has no usable labels and is skipped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import posixpath
import re
from typing import Any, Iterable, Mapping, Sequence

import cv2
import numpy as np
import tensorflow as tf
from PIL import Image

from components.core import examples
from components.core.label_maps import LabelMap

VOC = "pascal_voc"
CITYSCAPES = "cityscapes"
DATASET_NAMES = (VOC, CITYSCAPES)
"""Canonical dataset names (also the label-map names and the ``dataset`` feature values)."""

_DATASET_OF_FORMAT = {"voc": VOC, "pascal_voc": VOC, "cityscapes": CITYSCAPES}

VOC_IMAGE_DIR = "JPEGImages"
VOC_MASK_DIR = "SegmentationClass"
VOC_AUGMENTED_MASK_DIR = "SegmentationClassAug"
VOC_LIST_DIR = "ImageSets/Segmentation"
VOC_AUGMENTED_LIST = "train_aug"
"""The SBD-augmented training list; its masks live in ``VOC_AUGMENTED_MASK_DIR`` when that exists."""

CITYSCAPES_IMAGE_DIR = "leftImg8bit"
CITYSCAPES_LABEL_DIR = "gtFine"
CITYSCAPES_IMAGE_SUFFIX = "_leftImg8bit.png"
CITYSCAPES_MASK_SUFFIX = "_gtFine_labelIds.png"
CITYSCAPES_UNLABELLED_SPLITS = ("test",)
"""Cityscapes splits whose public ground truth is blank: never ingested."""

_CITYSCAPES_TEST_REASON = "the Cityscapes test split has no usable labels (its public gtFine masks are blank)"
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_IMAGE_MODES = frozenset({"RGB", "RGBA", "L", "P"})
_MAX_VALUES_IN_MESSAGE = 10


class IngestionError(Exception):
    """A dataset folder, split or image/mask pair that cannot be ingested.

    The message always starts with the file (or folder) at fault, then the reason.

    Attributes:
        path: The file or folder at fault.
        reason: Why it cannot be ingested.
        split: Split of the pair, when the error concerns one pair.
        example_id: Id of the pair, when the error concerns one pair.
    """

    def __init__(self, path: str, reason: str, *, split: str | None = None, example_id: str | None = None):
        self.path = str(path)
        self.reason = reason
        self.split = split
        self.example_id = example_id
        context = f" (split {split!r}, id {example_id!r})" if split is not None and example_id is not None else ""
        super().__init__(f"{self.path}: {reason}{context}")

    def __reduce__(self):
        return _rebuild_ingestion_error, (self.path, self.reason, self.split, self.example_id)


def _rebuild_ingestion_error(path, reason, split, example_id) -> IngestionError:
    """Unpickles an :class:`IngestionError` (its constructor takes keyword-only arguments)."""
    return IngestionError(path, reason, split=split, example_id=example_id)


@dataclasses.dataclass(frozen=True)
class PairCandidate:
    """One listed image/mask pair, before any pixel is read.

    Attributes:
        dataset: ``"pascal_voc"`` or ``"cityscapes"``.
        split: Split the pair is listed in.
        example_id: The id written to ``image/id``.
        image_path: Full path of the image file ("" when the id is unusable).
        mask_path: Full path of the mask file ("" when the id is unusable).
        city: Cityscapes city; "" for VOC.
        problem: Reason the pair is unusable, when the listing already shows it (else None).
        problem_path: File the problem is attributed to (the list file), when ``problem`` is set.
    """

    dataset: str
    split: str
    example_id: str
    image_path: str
    mask_path: str
    city: str = ""
    problem: str | None = None
    problem_path: str | None = None


@dataclasses.dataclass(frozen=True)
class SplitPlan:
    """The pairs of one split, in listing order.

    Attributes:
        dataset: ``"pascal_voc"`` or ``"cityscapes"``.
        name: Split name (also the output split name and the ``split`` feature).
        source: The list file (VOC) or image folder (Cityscapes) the split was read from.
        candidates: The listed pairs.
    """

    dataset: str
    name: str
    source: str
    candidates: tuple[PairCandidate, ...]

    @property
    def listed(self) -> int:
        """Number of pairs listed (every one ends up written or quarantined)."""
        return len(self.candidates)


@dataclasses.dataclass(frozen=True)
class SkippedSplit:
    """A requested split that is deliberately not ingested.

    Attributes:
        name: Split name.
        reason: Why it is skipped.
    """

    name: str
    reason: str


@dataclasses.dataclass(frozen=True)
class SplitOutcome:
    """What ingesting one split produced, as the report states it.

    Attributes:
        name: Split name.
        source: The list file or image folder the split was read from.
        listed: Number of pairs listed.
        written: Number of examples written.
        quarantined: One record per quarantined pair (see :func:`quarantine_record`).
    """

    name: str
    source: str
    listed: int
    written: int
    quarantined: tuple[Mapping[str, str], ...] = ()


def dataset_name(dataset_format: str) -> str:
    """Maps a dataset format as users spell it (``voc``, ``pascal_voc``, ``cityscapes``) to its canonical name.

    Raises:
        ValueError: If the format is unknown.
    """
    try:
        return _DATASET_OF_FORMAT[dataset_format.lower()]
    except KeyError:
        raise ValueError(f"unknown dataset format {dataset_format!r}; expected 'voc' or 'cityscapes'") from None


def check_split_name(name: str) -> str:
    """Returns ``name`` if it is usable as a split name (letters, digits, ``_`` and ``-``).

    Raises:
        ValueError: Otherwise (split names become folder and file names).
    """
    if not isinstance(name, str) or not _SPLIT_NAME.match(name):
        raise ValueError(f"invalid split name {name!r}: use letters, digits, '_' and '-' only")
    return name


def _join(*parts: str) -> str:
    """Joins path parts with '/', which works for local paths and URLs alike."""
    return posixpath.join(*parts) if "://" in parts[0] else os.path.join(*parts)


def _is_voc_root(path: str) -> bool:
    return tf.io.gfile.isdir(_join(path, VOC_IMAGE_DIR)) and tf.io.gfile.isdir(_join(path, VOC_LIST_DIR))


def _is_cityscapes_root(path: str) -> bool:
    return tf.io.gfile.isdir(_join(path, CITYSCAPES_IMAGE_DIR)) and tf.io.gfile.isdir(_join(path, CITYSCAPES_LABEL_DIR))


def _voc_root_candidates(data_dir: str) -> list[str]:
    """Folders that may be the VOC2012 root when a user names ``data_dir``: its parent, VOCdevkit or itself."""
    return [_join(data_dir, "VOCdevkit", "VOC2012"), _join(data_dir, "VOC2012"), data_dir]


def resolve_dataset_root(dataset_format: str, data_dir: str) -> str:
    """Finds the dataset root inside the folder a user names.

    For VOC, ``data_dir`` may be the folder holding ``VOCdevkit``, ``VOCdevkit`` itself or ``VOC2012``;
    the root returned is the ``VOC2012`` folder. For Cityscapes, ``data_dir`` must hold ``leftImg8bit``
    and ``gtFine`` and is returned as is.

    Args:
        dataset_format: ``voc``/``pascal_voc`` or ``cityscapes``.
        data_dir: The folder to look in.

    Returns:
        The dataset root.

    Raises:
        IngestionError: If the folder does not exist or is not in the expected layout (the message says
            what was expected, and which layout the folder has if it is the other one).
        ValueError: If the format is unknown.
    """
    dataset = dataset_name(dataset_format)
    data_dir = str(data_dir).rstrip("/") or "/"
    if not tf.io.gfile.isdir(data_dir):
        raise IngestionError(data_dir, "dataset folder not found")
    if dataset == VOC:
        for candidate in _voc_root_candidates(data_dir):
            if _is_voc_root(candidate):
                return candidate
        expected = (
            "not a PASCAL VOC 2012 folder: expected VOCdevkit/VOC2012, VOC2012 or the VOC2012 folder itself, "
            f"holding {VOC_IMAGE_DIR}/ and {VOC_LIST_DIR}/"
        )
        hint = "; it looks like a Cityscapes folder (use format 'cityscapes')" if _is_cityscapes_root(data_dir) else ""
        raise IngestionError(data_dir, expected + hint)
    if _is_cityscapes_root(data_dir):
        return data_dir
    expected = f"not a Cityscapes folder: expected {CITYSCAPES_IMAGE_DIR}/ and {CITYSCAPES_LABEL_DIR}/ in it"
    looks_like_voc = any(_is_voc_root(candidate) for candidate in _voc_root_candidates(data_dir))
    hint = "; it looks like a PASCAL VOC 2012 folder (use format 'voc')" if looks_like_voc else ""
    raise IngestionError(data_dir, expected + hint)


def partition_splits(dataset_format: str, splits: Sequence[str]) -> tuple[list[str], list[SkippedSplit]]:
    """Separates the requested splits into those to ingest and those skipped on purpose.

    Args:
        dataset_format: ``voc``/``pascal_voc`` or ``cityscapes``.
        splits: Requested split names.

    Returns:
        ``(kept, skipped)``: kept names in request order, and the skipped ones with their reason
        (Cityscapes ``test``: no usable labels).

    Raises:
        ValueError: If a name is invalid or repeated, or no split is requested.
    """
    dataset = dataset_name(dataset_format)
    if isinstance(splits, str) or not splits:
        raise ValueError(f"splits must be a non-empty list of split names, got {splits!r}")
    names = [check_split_name(name) for name in splits]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"splits requested more than once: {repeated}")
    kept, skipped = [], []
    for name in names:
        if dataset == CITYSCAPES and name in CITYSCAPES_UNLABELLED_SPLITS:
            skipped.append(SkippedSplit(name, _CITYSCAPES_TEST_REASON))
        else:
            kept.append(name)
    return kept, skipped


def split_source(dataset_format: str, root: str, split: str) -> str:
    """Returns where a split is read from: the VOC list file, or the Cityscapes ``leftImg8bit/<split>`` folder."""
    if dataset_name(dataset_format) == VOC:
        return _join(root, VOC_LIST_DIR, f"{split}.txt")
    return _join(root, CITYSCAPES_IMAGE_DIR, split)


def list_file_digest(path: str) -> str:
    """Returns the SHA-256 hex digest of a file's bytes (used to key caches on VOC list contents)."""
    with tf.io.gfile.GFile(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _available(names: Iterable[str]) -> str:
    names = sorted(names)
    return ", ".join(names) if names else "none"


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


def _plan_voc_split(root: str, split: str) -> SplitPlan:
    list_path = split_source(VOC, root, split)
    if not tf.io.gfile.exists(list_path):
        lists_dir = _join(root, VOC_LIST_DIR)
        lists = [name[: -len(".txt")] for name in tf.io.gfile.listdir(lists_dir) if name.endswith(".txt")]
        raise IngestionError(list_path, f"split list file not found (available lists: {_available(lists)})")
    mask_dir = VOC_MASK_DIR
    if split == VOC_AUGMENTED_LIST and tf.io.gfile.isdir(_join(root, VOC_AUGMENTED_MASK_DIR)):
        mask_dir = VOC_AUGMENTED_MASK_DIR
    with tf.io.gfile.GFile(list_path, "r") as handle:
        lines = handle.read().splitlines()
    seen: set[str] = set()
    candidates = []
    for line in lines:
        example_id = line.strip()
        if not example_id:
            continue
        problem = _id_problem(example_id)
        if problem is None and example_id in seen:
            problem = f"id {example_id!r} listed more than once"
        seen.add(example_id)
        if problem is not None:
            candidates.append(PairCandidate(VOC, split, example_id, "", "", problem=problem, problem_path=list_path))
        else:
            candidates.append(PairCandidate(
                VOC, split, example_id,
                image_path=_join(root, VOC_IMAGE_DIR, f"{example_id}.jpg"),
                mask_path=_join(root, mask_dir, f"{example_id}.png"),
            ))
    return SplitPlan(VOC, split, list_path, tuple(candidates))


def _frames_in(folder: str, suffix: str) -> dict[tuple[str, str], str]:
    """Maps (city, frame id) to path for every ``<folder>/<city>/*<suffix>`` file."""
    frames = {}
    for path in tf.io.gfile.glob(_join(folder, "*", f"*{suffix}")):
        city = os.path.basename(os.path.dirname(path))
        frames[(city, os.path.basename(path)[: -len(suffix)])] = path
    return frames


def _plan_cityscapes_split(root: str, split: str) -> SplitPlan:
    image_dir = split_source(CITYSCAPES, root, split)
    label_dir = _join(root, CITYSCAPES_LABEL_DIR, split)
    if not tf.io.gfile.isdir(image_dir):
        available = tf.io.gfile.listdir(_join(root, CITYSCAPES_IMAGE_DIR))
        available_splits = _available(name.rstrip("/") for name in available)
        raise IngestionError(image_dir, f"split folder not found (available splits: {available_splits})")
    images = _frames_in(image_dir, CITYSCAPES_IMAGE_SUFFIX)
    masks = _frames_in(label_dir, CITYSCAPES_MASK_SUFFIX) if tf.io.gfile.isdir(label_dir) else {}
    candidates = []
    for city, frame in sorted(set(images) | set(masks)):
        candidates.append(PairCandidate(
            CITYSCAPES, split, frame,
            image_path=images.get((city, frame)) or _join(image_dir, city, frame + CITYSCAPES_IMAGE_SUFFIX),
            mask_path=masks.get((city, frame)) or _join(label_dir, city, frame + CITYSCAPES_MASK_SUFFIX),
            city=city,
        ))
    return SplitPlan(CITYSCAPES, split, image_dir, tuple(candidates))


def plan_split(dataset_format: str, root: str, split: str, strict: bool = False) -> SplitPlan:
    """Lists the pairs of one split (ids and paths; no image is opened).

    Args:
        dataset_format: ``voc``/``pascal_voc`` or ``cityscapes``.
        root: The dataset root, as :func:`resolve_dataset_root` returns it.
        split: Split name: a VOC list (``train``, ``val``, ``trainval``, ``train_aug``...) or a Cityscapes
            folder (``train``, ``val``...).
        strict: Raise on the first problem the listing shows, and on an empty split.

    Returns:
        The split's pairs in listing order (VOC) or sorted by city and frame (Cityscapes).

    Raises:
        IngestionError: If the list file or split folder is missing; in strict mode also if an id is
            unusable (reaches outside the root, is listed twice) or the split lists nothing.
        ValueError: If the format or split name is invalid.
    """
    dataset = dataset_name(dataset_format)
    check_split_name(split)
    plan = _plan_voc_split(root, split) if dataset == VOC else _plan_cityscapes_split(root, split)
    if strict:
        for candidate in plan.candidates:
            if candidate.problem is not None:
                raise IngestionError(candidate.problem_path, candidate.problem, split=split,
                                     example_id=candidate.example_id)
        if not plan.candidates:
            raise IngestionError(plan.source, empty_split_reason(plan))
    return plan


def empty_split_reason(plan: SplitPlan) -> str:
    """Describes an empty split in the words of the report and of the strict-mode error."""
    return f"split {plan.name!r} is empty: nothing listed in {plan.source}"


# ---------------------------------------------------------------------------------------------------
# Reading and validating one pair
# ---------------------------------------------------------------------------------------------------

def _read_bytes(path: str, what: str, candidate: PairCandidate) -> bytes:
    """Reads a whole file; local paths with Python's ``open`` (it releases the GIL while reading,
    ``tf.io.gfile`` does not, which serialised parallel ingestion threads), others with ``tf.io.gfile``."""
    try:
        if "://" not in path:
            with open(path, "rb") as handle:
                return handle.read()
        with tf.io.gfile.GFile(path, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, tf.errors.NotFoundError):
        raise IngestionError(path, f"{what} file not found", split=candidate.split,
                             example_id=candidate.example_id) from None


def _open_image(data: bytes, path: str, what: str, candidate: PairCandidate) -> tuple[Image.Image, tuple[int, int]]:
    """Decodes all of an image's data with Pillow, so that truncated or corrupt files fail here.

    A JPEG is decoded at 1/8 scale (``Image.draft``): libjpeg still entropy-decodes every block, which
    is where truncation and corrupt data show, but skips most of the inverse DCT (0.48 instead of
    0.77 ms for a 500x375 picture). Other formats are decoded at full size.

    Returns:
        The decoded image and the file's full ``(width, height)``.
    """
    if examples.sniff_image_format(data) is None:
        raise IngestionError(path, f"{what} is not a JPEG or PNG file", split=candidate.split,
                             example_id=candidate.example_id)
    try:
        image = Image.open(io.BytesIO(data))
        full_size = image.size
        if image.format == "JPEG":
            image.draft(image.mode, (max(1, full_size[0] // 8), max(1, full_size[1] // 8)))
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise IngestionError(
            path, f"corrupt or truncated {what} ({error})", split=candidate.split, example_id=candidate.example_id
        ) from None
    return image, full_size


def _describe_values(values: Iterable[int]) -> str:
    """Writes sorted integers as compact ranges, e.g. ``0-20`` or ``0-3, 7``."""
    values = sorted(values)
    ranges: list[str] = []
    start = previous = None
    for value in values + [None]:
        if start is not None and (value is None or value != previous + 1):
            ranges.append(str(start) if start == previous else f"{start}-{previous}")
            start = None
        if start is None:
            start = value
        previous = value
    return ", ".join(ranges)


def mask_to_train_ids(
    mask_image: Image.Image, label_map: LabelMap, path: str, candidate: PairCandidate
) -> tuple[np.ndarray, list[int]]:
    """Converts a decoded mask image to training ids, validating every value.

    Index masks ('P' or 'L' mode) hold raw label ids; each must be a label id of the dataset or the
    ignore label. A VOC mask saved as RGB(A) colours is decoded with the VOC colour map.

    Args:
        mask_image: The decoded mask.
        label_map: The dataset's label map.
        path: Mask path, for error messages.
        candidate: The pair, for error messages.

    Returns:
        ``(train_ids, classes_present)``: a uint8 array of training ids, shape ``(height, width)``, and
        the sorted training ids it holds, the ignore label excluded.

    Raises:
        IngestionError: On an unsupported mode, a value that is neither a label id nor the ignore label,
            or a colour that is not in the colour map.
    """
    context = {"split": candidate.split, "example_id": candidate.example_id}
    if mask_image.mode in ("P", "L"):
        # Pillow's histogram counts the stored indices (not palette colours), without a numpy pass.
        raw_values = np.flatnonzero(np.asarray(mask_image.histogram()[:256]))
        invalid = raw_values[~label_map.valid_raw_values[raw_values]]
        if invalid.size:
            shown = ", ".join(str(value) for value in invalid[:_MAX_VALUES_IN_MESSAGE])
            more = f" and {invalid.size - _MAX_VALUES_IN_MESSAGE} more" if invalid.size > _MAX_VALUES_IN_MESSAGE else ""
            label_ids = [label.id for label in label_map.labels if label.id >= 0]
            raise IngestionError(
                path,
                f"mask value(s) {shown}{more} are neither label ids of {label_map.name} "
                f"({_describe_values(label_ids)}) nor the ignore label {label_map.ignore_label}",
                **context,
            )
        raw = np.asarray(mask_image, dtype=np.uint8)
        lookup = label_map.id_to_train_id
        train_values = lookup[raw_values]
        # VOC stores training ids already: skip the per-pixel lookup when it changes no present value.
        train_ids = raw if (train_values == raw_values).all() else cv2.LUT(raw, lookup)
        present = np.unique(train_values[train_values != label_map.ignore_label])
        return train_ids, present.tolist()
    if mask_image.mode in ("RGB", "RGBA") and label_map.name == VOC:
        try:
            train_ids = label_map.rgb_to_train_ids(np.asarray(mask_image))
        except ValueError as error:
            raise IngestionError(path, f"RGB mask: {error}", **context) from None
        return train_ids, examples.classes_present(train_ids)
    expected = "a palette or greyscale PNG of class indices, or RGB VOC colours" if label_map.name == VOC else \
        "a greyscale labelIds PNG"
    raise IngestionError(path, f"unsupported mask mode {mask_image.mode!r} (expected {expected})", **context)


def load_pair(candidate: PairCandidate, label_map: LabelMap) -> examples.SegmentationExample:
    """Reads, validates and converts one listed pair.

    Checks, in order: problems the listing showed, both files exist, the image decodes fully (JPEG or PNG),
    the mask decodes fully (PNG), both have the same size, every mask value is valid.

    Args:
        candidate: The pair.
        label_map: The dataset's label map.

    Returns:
        The example: the original image bytes and the mask as training ids.

    Raises:
        IngestionError: Naming the file at fault and the reason, if the pair cannot be ingested.
    """
    context = {"split": candidate.split, "example_id": candidate.example_id}
    if candidate.problem is not None:
        raise IngestionError(candidate.problem_path or "", candidate.problem, **context)
    image_bytes = _read_bytes(candidate.image_path, "image", candidate)
    mask_bytes = _read_bytes(candidate.mask_path, "mask", candidate)

    image, image_size = _open_image(image_bytes, candidate.image_path, "image", candidate)
    if image.mode not in _IMAGE_MODES:
        raise IngestionError(
            candidate.image_path, f"unsupported image mode {image.mode!r} (expected RGB or greyscale)", **context
        )
    mask_image, mask_size = _open_image(mask_bytes, candidate.mask_path, "mask", candidate)
    if mask_image.format != "PNG":
        raise IngestionError(candidate.mask_path, f"mask is {mask_image.format}, not a lossless PNG", **context)
    if mask_size != image_size:
        raise IngestionError(
            candidate.mask_path,
            f"mask size {mask_size[0]}x{mask_size[1]} differs from image size "
            f"{image_size[0]}x{image_size[1]} ({candidate.image_path})",
            **context,
        )
    train_ids, present = mask_to_train_ids(mask_image, label_map, candidate.mask_path, candidate)
    width, height = image_size
    return examples.SegmentationExample(
        example_id=candidate.example_id,
        dataset=candidate.dataset,
        split=candidate.split,
        image_encoded=image_bytes,
        image_format=examples.sniff_image_format(image_bytes),
        height=height,
        width=width,
        mask=train_ids,
        city=candidate.city,
        classes_present=present,
    )


# ---------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------

def quarantine_record(error: IngestionError, candidate: PairCandidate) -> dict[str, str]:
    """The report entry of one quarantined pair: ``split``, ``id``, ``file`` (at fault) and ``reason``."""
    return {"split": candidate.split, "id": candidate.example_id, "file": error.path, "reason": error.reason}


def error_from_record(record: Mapping[str, str]) -> IngestionError:
    """Rebuilds the :class:`IngestionError` a quarantine record stands for (strict mode raises it)."""
    return IngestionError(record["file"], record["reason"], split=record["split"], example_id=record["id"])


def build_report(
    dataset_format: str,
    root: str,
    outcomes: Sequence[SplitOutcome],
    skipped: Sequence[SkippedSplit] = (),
    strict: bool = False,
) -> dict[str, Any]:
    """Builds the JSON-able ingestion report.

    Args:
        dataset_format: ``voc``/``pascal_voc`` or ``cityscapes``.
        root: The dataset root.
        outcomes: One outcome per ingested split, in request order.
        skipped: Splits deliberately not ingested.
        strict: Whether the run was strict.

    Returns:
        ``{"dataset", "dataset_root", "strict", "splits": {name: {"source", "listed", "written",
        "quarantined", "empty"}}, "skipped_splits": [{"split", "reason"}], "quarantine": [{"split", "id",
        "file", "reason"}] (sorted by split order, then id), "warnings": [...], "totals": {"listed",
        "written", "quarantined"}, "reconciled": bool}``. ``reconciled`` says whether, for every split,
        listed = written + quarantined.
    """
    splits: dict[str, dict[str, Any]] = {}
    quarantine: list[dict[str, str]] = []
    warnings: list[str] = []
    reconciled = True
    for outcome in outcomes:
        records = sorted((dict(record) for record in outcome.quarantined),
                         key=lambda record: (record["id"], record["file"], record["reason"]))
        quarantine.extend(records)
        splits[outcome.name] = {
            "source": outcome.source,
            "listed": outcome.listed,
            "written": outcome.written,
            "quarantined": len(records),
            "empty": outcome.written == 0,
        }
        reconciled &= outcome.listed == outcome.written + len(records)
        if outcome.listed == 0:
            warnings.append(f"split {outcome.name!r} is empty: nothing listed in {outcome.source}")
        elif outcome.written == 0:
            warnings.append(f"split {outcome.name!r} is empty: all {outcome.listed} listed pairs were quarantined")
    for skipped_split in skipped:
        warnings.append(f"split {skipped_split.name!r} skipped: {skipped_split.reason}")
    return {
        "dataset": dataset_name(dataset_format),
        "dataset_root": str(root),
        "strict": bool(strict),
        "splits": splits,
        "skipped_splits": [{"split": item.name, "reason": item.reason} for item in skipped],
        "quarantine": quarantine,
        "warnings": warnings,
        "totals": {
            "listed": sum(outcome.listed for outcome in outcomes),
            "written": sum(outcome.written for outcome in outcomes),
            "quarantined": len(quarantine),
        },
        "reconciled": reconciled,
    }
