"""Scoring a folder of predicted masks against a folder of ground truth, with the pipeline's own metrics.

``segpipe score`` and anyone holding predictions made outside the pipeline (another framework, an
exported TFLite model, a published checkpoint) use :func:`score_folders`; the numbers come from the
same :class:`~components.core.metrics.SegmentationEvaluator` that the pipeline's evaluation uses, so
they can be compared directly. Framework-free: numpy and Pillow (and OpenCV through the metrics).

Predictions are PNGs of class indices (training ids), one per ground-truth file, single channel
(mode ``L``, ``P``, ``I`` or ``I;16``; a palette PNG gives its indices, not its colours). Images are
read and scored one pair at a time, so memory does not grow with the number of images.

Ground-truth formats (``fmt``):

* ``voc``: PASCAL VOC ``SegmentationClass`` PNGs (palette PNGs whose indices are class ids 0-20, 255 =
  void/ignore). ``gt_dir`` may be ``SegmentationClass`` itself, the ``VOC2012`` folder,
  ``VOCdevkit`` or the folder holding ``VOCdevkit``. Every ``*.png`` directly in ``SegmentationClass``
  is scored. A mask stored as RGB colours is decoded with the VOC colour map.
* ``cityscapes``: every ``*_gtFine_labelIds.png`` under ``gt_dir`` (at any depth, e.g. ``gtFine/val``
  with its city folders) holds raw label ids, mapped to the 19 training ids by the official table of
  the ``cityscapes`` label map (ids that are ignored in evaluation become 255).
* ``trainids``: every ``*.png`` under ``gt_dir`` (at any depth) already holds training ids, 255 =
  ignore. ``num_classes`` is required; classes are named ``class_0``, ``class_1``, ...

Matching rule: each ground-truth file has a *key*: its file stem, except that Cityscapes suffixes
are dropped (``frankfurt_000000_000294_gtFine_labelIds`` -> ``frankfurt_000000_000294``; likewise
``_gtFine_labelTrainIds`` in ``trainids`` folders). A prediction is any ``*.png`` under ``pred_dir``
(at any depth); it belongs to the key equal to its stem or, failing that, to the longest key that is
a prefix of its stem followed by ``_``. So ``2011_000003.png``, ``2011_000003_pred.png``,
``frankfurt_000000_000294_leftImg8bit.png`` and ``frankfurt_000000_000294.png`` all match, while
``2011_0000031.png`` does not match ``2011_000003``. This is the rule of the official Cityscapes
script (``{city}_{seq}_{frame}*.png`` anywhere under the results folder), made strict about the
``_`` separator. Predictions that match no ground truth are counted (``unmatched_predictions``)
and otherwise ignored.

Symbolic links are followed, to files and folders at any depth (datasets and predictions on shared
storage are often linked in); files reached through one are logged with their real path.

Errors (:class:`ScoringError`, a ``ValueError`` whose message starts with the file at fault): a
ground-truth file without a prediction, two predictions for one ground truth, two ground-truth files
with the same key, a file that is not a readable single-channel PNG, and an id outside the classes
(or, in ground truth, the ignore label).

Sizes: scores are computed at the ground truth's resolution. A prediction of another size (a model run
at its own input size) is resized to it with nearest neighbour on class ids, as mmsegmentation and the
pipeline's Evaluator do (:func:`~components.core.metrics.resize_nearest`: half-pixel centres, the
convention of ``tf.image.resize(method="nearest")``); how many were resized is logged.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
from typing import Container, Iterable

import numpy as np
from PIL import Image

from components.core import datasets
from components.core.class_maps import InvalidClassMapError
from components.core.datasets import cityscapes
from components.core.label_maps import IGNORE_LABEL, NO_ID, LabelMap, load_label_map
from components.core.metrics import SegmentationEvaluator, resize_nearest

logger = logging.getLogger(__name__)

FORMATS = datasets.FORMATS + ("trainids",)
"""Ground-truth formats accepted by :func:`score_folders`: the dataset layouts' and ``trainids``."""

_LABEL_MAP_OF_FORMAT = {fmt: None if fmt == "trainids" else datasets.label_map_name(fmt) for fmt in FORMATS}

CLASS_ID_MODES = frozenset({"L", "P", "I", "I;16"})
"""Pillow modes of single-channel images whose pixel values are ids."""

_COLOUR_MODES = frozenset({"RGB", "RGBA"})
_MAX_UNMATCHED_IN_LOG = 5


class ScoringError(ValueError):
    """A file or folder that cannot be scored; the message starts with its path, then the reason.

    Attributes:
        path: The file or folder at fault.
        reason: What is wrong with it.
    """

    def __init__(self, path: str | pathlib.Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        return type(self), (self.path, self.reason)


@dataclasses.dataclass(frozen=True)
class ScoringPair:
    """One ground-truth file and the prediction matched to it.

    Attributes:
        key: The matching key (ground-truth stem without Cityscapes suffixes).
        gt_path: The ground-truth file.
        pred_path: The prediction file.
    """

    key: str
    gt_path: pathlib.Path
    pred_path: pathlib.Path


@dataclasses.dataclass(frozen=True)
class PairListing:
    """The outcome of matching a prediction folder to a ground-truth folder.

    Attributes:
        pairs: One pair per ground-truth file, sorted by key.
        unmatched_predictions: Prediction files that match no ground truth, sorted.
    """

    pairs: tuple[ScoringPair, ...]
    unmatched_predictions: tuple[pathlib.Path, ...]


# --------------------------------------------------------------------------------------------------
# Finding and matching files
# --------------------------------------------------------------------------------------------------


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown ground-truth format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def _existing_folder(path: str | pathlib.Path, role: str) -> pathlib.Path:
    folder = pathlib.Path(path)
    if not folder.is_dir():
        raise ScoringError(folder, f"{role} folder not found")
    return folder


def _pngs(folder: pathlib.Path, recursive: bool) -> list[pathlib.Path]:
    """The ``*.png`` files (any case) in ``folder``, optionally at any depth, sorted.

    Symbolic links are followed, to files and to folders (each real folder is read once, so a link
    loop ends); files reached through a link are logged with their real path.
    """
    if recursive:
        candidates, seen = [], set()
        for directory, subdirectories, names in os.walk(folder, followlinks=True):
            real_directory = os.path.realpath(directory)
            if real_directory in seen:
                subdirectories[:] = []
                continue
            seen.add(real_directory)
            candidates += [pathlib.Path(directory, name) for name in names]
    else:
        candidates = list(folder.iterdir())
    pngs = sorted(path for path in candidates if path.suffix.lower() == ".png" and path.is_file())
    real_folder = os.path.realpath(folder)
    linked = [(path, real) for path in pngs
              if (real := os.path.realpath(path)) != os.path.join(real_folder, os.path.relpath(path, folder))]
    if linked:
        logger.info("%s: %d file(s) reached through symbolic links, followed (e.g. %s -> %s)",
                    folder, len(linked), *linked[0])
    return pngs


def _ground_truth_files(gt_dir: str | pathlib.Path, fmt: str) -> dict[str, pathlib.Path]:
    """Maps each ground-truth key to its file (see the module docstring for the rules).

    Where a dataset's ground truth lies, and which file names it has, is its layout's to say
    (:func:`components.core.datasets.layout_of`).
    """
    folder = _existing_folder(gt_dir, "ground-truth")
    if fmt == "trainids":
        at_any_depth, suffix, key_suffixes = True, "", (cityscapes.TRAIN_ID_MASK_SUFFIX,)
    else:
        layout = datasets.layout_of(fmt)
        folder = layout.ground_truth_folder(folder)
        at_any_depth, suffix = layout.GROUND_TRUTH_AT_ANY_DEPTH, layout.GROUND_TRUTH_SUFFIX
        key_suffixes = (suffix,) if suffix else ()
    files = [path for path in _pngs(folder, recursive=at_any_depth) if path.stem.endswith(suffix)]
    pattern = f"*{suffix}.png" + (" at any depth" if at_any_depth else "")
    if not files:
        raise ScoringError(folder, f"no ground-truth files ({pattern}) found for format {fmt!r}")

    by_key: dict[str, pathlib.Path] = {}
    for path in files:
        key = _ground_truth_key(path.stem, key_suffixes)
        if key in by_key:
            raise ScoringError(path, f"ground truth for {key!r} is also given by {by_key[key]}")
        by_key[key] = path
    return by_key


def _ground_truth_key(stem: str, suffixes: Iterable[str]) -> str:
    """A ground-truth file's key: its stem without the first of ``suffixes`` it ends with."""
    for suffix in suffixes:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def _key_of_prediction(stem: str, keys: Container[str]) -> str | None:
    """The key a prediction stem belongs to: the stem itself, else its longest ``_``-delimited prefix that is a key."""
    parts = stem.split("_")
    for length in range(len(parts), 0, -1):
        candidate = "_".join(parts[:length])
        if candidate in keys:
            return candidate
    return None


def match_predictions(pred_dir: str | pathlib.Path, gt_dir: str | pathlib.Path, fmt: str) -> PairListing:
    """Pairs every ground-truth file with its prediction (no image is opened).

    Args:
        pred_dir: Folder of predicted PNGs (searched at any depth).
        gt_dir: Ground-truth folder, laid out as ``fmt`` says (see the module docstring).
        fmt: One of :data:`FORMATS`.

    Returns:
        The pairs, sorted by key, and the predictions that match no ground truth.

    Raises:
        ScoringError: If a folder is missing, holds no ground truth, a ground-truth file has no
            prediction or two, or two ground-truth files share a key (the message names the file).
        ValueError: If ``fmt`` is unknown.
    """
    fmt = _check_format(fmt)
    gt_by_key = _ground_truth_files(gt_dir, fmt)
    pred_folder = _existing_folder(pred_dir, "prediction")

    pred_by_key: dict[str, pathlib.Path] = {}
    unmatched = []
    for path in _pngs(pred_folder, recursive=True):
        key = _key_of_prediction(path.stem, gt_by_key)
        if key is None:
            unmatched.append(path)
        elif key in pred_by_key:
            raise ScoringError(
                path, f"a second prediction for ground truth {gt_by_key[key]} (the first is {pred_by_key[key]})"
            )
        else:
            pred_by_key[key] = path

    pairs = []
    for key, gt_path in sorted(gt_by_key.items()):
        if key not in pred_by_key:
            raise ScoringError(
                gt_path, f"no prediction found in {pred_folder} (expected {key}.png or {key}_<suffix>.png)"
            )
        pairs.append(ScoringPair(key, gt_path, pred_by_key[key]))
    return PairListing(tuple(pairs), tuple(unmatched))


# --------------------------------------------------------------------------------------------------
# Reading masks
# --------------------------------------------------------------------------------------------------


def read_png(path: str | pathlib.Path, allow_colour: bool = False) -> np.ndarray:
    """Reads a PNG's pixel values: palette indices for ``P`` images, the stored values otherwise.

    Args:
        path: The PNG file.
        allow_colour: Accept ``RGB``/``RGBA`` images too (returned as ``(H, W, 3|4)`` arrays).

    Returns:
        The pixel array: ``(H, W)`` for single-channel images.

    Raises:
        ScoringError: If the file is not a readable PNG, or not single-channel (unless ``allow_colour``).
    """
    allowed_modes = CLASS_ID_MODES | _COLOUR_MODES if allow_colour else CLASS_ID_MODES
    try:
        image = Image.open(path)
    except (OSError, SyntaxError, ValueError) as error:  # Pillow's errors for unknown or corrupt files
        raise ScoringError(path, f"cannot read the image: {error}") from None
    with image:
        if image.format != "PNG":
            raise ScoringError(path, f"not a PNG file (Pillow reads it as {image.format})")
        if image.mode not in allowed_modes:
            raise ScoringError(
                path,
                f"expected a single-channel PNG of class ids (mode {', '.join(sorted(CLASS_ID_MODES))}), "
                f"got mode {image.mode}",
            )
        try:
            return np.array(image)  # pixels are decoded here
        except (OSError, SyntaxError, ValueError) as error:
            raise ScoringError(path, f"cannot decode the image: {error}") from None


def _read_ground_truth(path: pathlib.Path, fmt: str, label_map: LabelMap | None) -> np.ndarray:
    """Reads one ground-truth file as a map of training ids (ignore label included)."""
    if fmt == "voc":
        values = read_png(path, allow_colour=True)
        if values.ndim == 3:  # a colour-coded mask
            try:
                return label_map.rgb_to_train_ids(values)
            except ValueError as error:
                raise ScoringError(path, str(error)) from None
        return values
    values = read_png(path)
    if fmt == "trainids":
        return values
    known_ids = [label.id for label in label_map.labels if label.id != NO_ID]
    unknown_ids = np.setdiff1d(np.unique(values), known_ids)
    if unknown_ids.size:
        raise ScoringError(path, f"holds label ids unknown to the cityscapes label map: {unknown_ids.tolist()[:10]}")
    return label_map.to_train_ids(values)


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------


def _classes(fmt: str, num_classes: int | None) -> tuple[LabelMap | None, list[str], int]:
    """The label map (None for ``trainids``), class names and ignore label of a format."""
    label_map_name = _LABEL_MAP_OF_FORMAT[fmt]
    if label_map_name is None:
        if num_classes is None:
            raise ValueError("format 'trainids' needs the number of classes (--num-classes N)")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 1 <= num_classes <= IGNORE_LABEL:
            raise ValueError(f"the number of classes must be an integer in 1..{IGNORE_LABEL}, got {num_classes!r}")
        return None, [f"class_{class_id}" for class_id in range(num_classes)], IGNORE_LABEL
    label_map = load_label_map(label_map_name)
    if num_classes is not None and num_classes != label_map.num_classes:
        raise ValueError(
            f"format {fmt!r} has {label_map.num_classes} classes ({label_map.name} label map), "
            f"but {num_classes} were requested"
        )
    return label_map, list(label_map.class_names), label_map.ignore_label


def _score_pair(evaluator: SegmentationEvaluator, pair: ScoringPair, gt: np.ndarray, pred: np.ndarray) -> bool:
    """Adds one pair to the evaluator, turning its errors into ScoringErrors that name the file at fault.

    A prediction of another size is first resized to the ground truth's with nearest neighbour on class
    ids (:func:`~components.core.metrics.resize_nearest`, as the pipeline's Evaluator does).

    Returns:
        Whether the prediction was resized.
    """
    resized = pred.shape != gt.shape
    if resized:
        pred = resize_nearest(pred, gt.shape)
    try:
        evaluator.add(gt, pred)
    except InvalidClassMapError as error:
        at_fault = pair.pred_path if error.side == "pred" else pair.gt_path
        other = pair.gt_path if at_fault == pair.pred_path else pair.pred_path
        raise ScoringError(at_fault, f"{error} (paired with {other})") from None
    return resized


def score_folders(
    pred_dir: str | pathlib.Path,
    gt_dir: str | pathlib.Path,
    fmt: str,
    num_classes: int | None = None,
    hausdorff: bool = True,
) -> dict:
    """Scores every ground-truth file against its prediction, one pair at a time.

    The scores are those of :meth:`SegmentationEvaluator.result
    <components.core.metrics.SegmentationEvaluator.result>`: one confusion matrix over the whole folder
    (ignore-label pixels excluded) for IoU, Dice and pixel accuracy, and Hausdorff distances per
    (image, class) pair with both masks non-empty, averaged over those pairs.

    Args:
        pred_dir: Folder of predicted PNGs of training ids (at any depth); matching rule in the module docstring.
        gt_dir: Ground-truth folder in the layout of ``fmt``.
        fmt: ``"voc"``, ``"cityscapes"`` or ``"trainids"`` (see the module docstring).
        num_classes: Number of classes; required for ``trainids``, and for the other formats, if
            given, it must equal the label map's.
        hausdorff: Whether to compute the (slower) boundary distances; when False their entries are null.

    Returns:
        The JSON-able :meth:`EvaluationResult.to_dict
        <components.core.evaluation_result.EvaluationResult.to_dict>` of the evaluation: ``miou``,
        ``per_class_iou`` ({class name: value or None}), ``pixel_accuracy``, ``mean_dice``,
        ``per_class_dice``, ``evaluated_pixels``, ``classes_in_mean``, ``hd``, ``hd95`` (means over
        pairs), ``per_class_hd``, ``per_class_hd95``, ``hd_pairs``, ``per_class_hd_pairs``,
        ``hd_one_empty``, ``per_class_hd_one_empty``, plus ``format``, ``class_names``, ``num_images``,
        ``unmatched_predictions`` (a count) and ``confusion_matrix`` (rows ground truth, columns
        prediction, as lists of ints).

    Raises:
        ScoringError: On a missing, ambiguous, unreadable or out-of-range file (the message starts with
            the file at fault).
        ValueError: If ``fmt`` is unknown or ``num_classes`` is missing or inconsistent.
    """
    fmt = _check_format(fmt)
    label_map, class_names, ignore_label = _classes(fmt, num_classes)
    listing = match_predictions(pred_dir, gt_dir, fmt)
    if listing.unmatched_predictions:
        shown = ", ".join(str(path) for path in listing.unmatched_predictions[:_MAX_UNMATCHED_IN_LOG])
        logger.warning("%d prediction(s) match no ground truth and are ignored: %s%s",
                       len(listing.unmatched_predictions), shown,
                       " ..." if len(listing.unmatched_predictions) > _MAX_UNMATCHED_IN_LOG else "")

    evaluator = SegmentationEvaluator(len(class_names), ignore_label=ignore_label, compute_hausdorff=hausdorff)
    resized = []
    for pair in listing.pairs:
        gt = _read_ground_truth(pair.gt_path, fmt, label_map)
        pred = read_png(pair.pred_path)
        if _score_pair(evaluator, pair, gt, pred):
            resized.append(pair.pred_path)
    if resized:
        logger.info("%d prediction(s) resized to their ground truth's size with nearest neighbour (e.g. %s)",
                    len(resized), resized[0])

    result = dataclasses.replace(evaluator.result(class_names), format=fmt, num_images=len(listing.pairs),
                                 unmatched_predictions=len(listing.unmatched_predictions))
    return result.to_dict()
