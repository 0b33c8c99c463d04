"""Reading, validating and converting one listed image/mask pair, quarantine records and the ingestion report.

Framework-free (no tfx, apache_beam or mlflow): the Beam transforms in
:mod:`components.example_gen.ingest` only call the functions below. Local files' bytes are read with
Python's ``open``, which lets parallel Beam threads overlap; other paths (``gs://``...) with ``tf.io.gfile``.

Which pairs a split has comes first, from the dataset layouts in :mod:`components.core.datasets`
(finding the root, listing a split as :class:`~components.core.datasets.splits.PairCandidate` s). Then:

1. :func:`load_pair` reads, validates and converts one candidate into a
   :class:`~components.core.examples.SegmentationExample`, or raises an
   :class:`~components.core.datasets.splits.IngestionError` naming the file at fault and the reason.
   Callers quarantine that pair (:func:`quarantine_record`), or stop in strict mode.
2. :func:`build_report` turns the per-split outcomes into the JSON-able ingestion report, whose counts
   reconcile: for every split, pairs listed = examples written + pairs quarantined.

Symbolic links are followed wherever they lead (a linked image, mask or folder is read like any other);
:func:`followed_links` says which files of a pair were reached through one, with their real path, and
the report gathers them. A broken link is quarantined as such. The report also counts the ids listed in
two splits (:func:`split_overlaps`).

Masks are converted to training ids with the dataset's label map (VOC: class indices 0-20 kept, 255 =
void kept as the ignore label; Cityscapes: raw label ids 0-33 mapped to the 19 training ids, everything
else to the ignore label).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import os
from typing import Any, Iterable, Mapping, Sequence

import cv2
import numpy as np
import tensorflow as tf
from PIL import Image

from components.core import datasets, examples
from components.core.datasets.splits import IngestionError, PairCandidate, SkippedSplit, empty_split_reason
from components.core.label_maps import LabelMap

_IMAGE_MODES = frozenset({"RGB", "RGBA", "L", "P"})
_MAX_VALUES_IN_MESSAGE = 10
_MAX_EXAMPLES_IN_REPORT = 10


@dataclasses.dataclass(frozen=True)
class SplitOutcome:
    """What ingesting one split produced, as the report states it.

    Attributes:
        name: Split name.
        source: The list file or image folder the split was read from.
        listed: Number of pairs listed.
        written: Number of examples written.
        quarantined: One record per quarantined pair (see :func:`quarantine_record`).
        ids: The ids listed, in listing order.
        links: Files reached through a symbolic link (see :func:`followed_links`).
    """

    name: str
    source: str
    listed: int
    written: int
    quarantined: tuple[Mapping[str, str], ...] = ()
    ids: tuple[str, ...] = ()
    links: tuple[Mapping[str, str], ...] = ()


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
        reason = f"{what} file not found"
        if "://" not in path and os.path.islink(path):
            reason = f"{what} file is a broken symbolic link (to {os.path.realpath(path)}, which does not exist)"
        raise IngestionError(path, reason, split=candidate.split, example_id=candidate.example_id) from None


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
    ignore label. A mask saved as RGB(A) colours is decoded with the label map's colour map, in the
    layouts that allow it (VOC: ``COLOUR_MASKS``).

    Args:
        mask_image: The decoded mask.
        label_map: The dataset's label map.
        path: Mask path, for error messages.
        candidate: The pair (its dataset says which mask files are allowed), for error messages.

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
    layout = datasets.layout_of(candidate.dataset)
    if mask_image.mode in ("RGB", "RGBA") and layout.COLOUR_MASKS:
        try:
            train_ids = label_map.rgb_to_train_ids(np.asarray(mask_image))
        except ValueError as error:
            raise IngestionError(path, f"RGB mask: {error}", **context) from None
        return train_ids, examples.classes_present(train_ids, label_map.ignore_label)
    raise IngestionError(
        path, f"unsupported mask mode {mask_image.mode!r} (expected {layout.MASK_KINDS})", **context)


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

def followed_links(candidate: PairCandidate, root: str, real_root: str) -> list[dict[str, str]]:
    """The files of a pair reached through a symbolic link (the file itself, or a folder below the root).

    Symbolic links are followed, wherever they lead (datasets on shared storage are often linked in);
    the report names each linked file with its real path. Remote paths (``gs://``...) have no links.

    Args:
        candidate: The pair.
        root: The dataset root, as the pair's paths start with it.
        real_root: ``os.path.realpath(root)``.

    Returns:
        ``[{"file", "real_path"}]`` for the image and the mask when linked; existing files only.
    """
    if not root or "://" in root:
        return []
    links = []
    for path in (candidate.image_path, candidate.mask_path):
        if not path or not os.path.exists(path):
            continue
        real_path = os.path.realpath(path)
        if real_path != os.path.join(real_root, os.path.relpath(path, root)):
            links.append({"file": path, "real_path": real_path})
    return links


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
        "file", "reason"}] (sorted by split order, then id), "warnings": [...], "overlaps": (see
        :func:`split_overlaps`), "symbolic_links": {"policy": "followed", "dataset_real_root",
        "linked_files", "examples": [{"file", "real_path"}]}, "totals": {"listed", "written",
        "quarantined", "overlapping_ids"}, "reconciled": bool}``. ``reconciled`` says whether, for every
        split, listed = written + quarantined.
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
            warnings.append(empty_split_reason(outcome.name, outcome.source))
        elif outcome.written == 0:
            warnings.append(f"split {outcome.name!r} is empty: all {outcome.listed} listed pairs were quarantined")
    for skipped_split in skipped:
        warnings.append(f"split {skipped_split.name!r} skipped: {skipped_split.reason}")
    overlaps = split_overlaps(outcomes)
    for overlap in overlaps:
        first, second = overlap["splits"]
        shown = ", ".join(overlap["examples"]) + (", ..." if overlap["count"] > len(overlap["examples"]) else "")
        warnings.append(f"{overlap['count']} id(s) listed in both split {first!r} and split {second!r} ({shown}): "
                        "a model trained on one is scored on examples it has seen")
    links = sorted({(link["file"], link["real_path"]) for outcome in outcomes for link in outcome.links})
    return {
        "dataset": datasets.dataset_name(dataset_format),
        "dataset_root": str(root),
        "strict": bool(strict),
        "splits": splits,
        "skipped_splits": [{"split": item.name, "reason": item.reason} for item in skipped],
        "quarantine": quarantine,
        "warnings": warnings,
        "overlaps": overlaps,
        "symbolic_links": {
            "policy": "followed",
            "dataset_real_root": os.path.realpath(root) if "://" not in str(root) else str(root),
            "linked_files": len(links),
            "examples": [{"file": file, "real_path": real_path}
                         for file, real_path in links[:_MAX_EXAMPLES_IN_REPORT]],
        },
        "totals": {
            "listed": sum(outcome.listed for outcome in outcomes),
            "written": sum(outcome.written for outcome in outcomes),
            "quarantined": len(quarantine),
            "overlapping_ids": sum(overlap["count"] for overlap in overlaps),
        },
        "reconciled": reconciled,
    }


def split_overlaps(outcomes: Sequence[SplitOutcome]) -> list[dict[str, Any]]:
    """The ids listed in two splits, for every pair of splits that share any.

    Returns:
        ``[{"splits": [first, second], "count": n, "examples": [the first ids, sorted]}]`` in split order.
    """
    overlaps = []
    for first, second in itertools.combinations(outcomes, 2):
        shared = sorted(set(first.ids) & set(second.ids))
        if shared:
            overlaps.append({"splits": [first.name, second.name], "count": len(shared),
                             "examples": shared[:_MAX_EXAMPLES_IN_REPORT]})
    return overlaps
