"""Dataset layouts: one module per on-disk layout, and the lookup from a format name to its layout.

* :mod:`~components.core.datasets.voc` (PASCAL VOC 2012) and :mod:`~components.core.datasets.cityscapes`
  each hold everything segpipe knows about that layout: the format names users type, the dataset and
  label-map names, folder names and file suffixes, how to find the root, how to list a split's
  image/mask pairs, which files TFX fingerprints, and where ``segpipe score`` finds ground truth.
  Ingestion, scoring and the synthetic generator all read them; no other module spells a folder name.
* :mod:`~components.core.datasets.splits`: what listing a split produces (:class:`PairCandidate`,
  :class:`SplitPlan`, :class:`SkippedSplit`) and :class:`IngestionError`.
* :mod:`~components.core.datasets.files`: listing files through ``tf.io.gfile`` (local or ``gs://``).
* Here: :func:`layout_of` (format name -> layout module), :func:`dataset_name`, :func:`label_map_name`,
  and the per-format steps that start ingestion:

  1. :func:`resolve_dataset_root` finds the dataset root in the folder a user names, or fails with an
     :class:`IngestionError` saying which layout was expected (and which one the folder has).
  2. :func:`partition_splits` sets aside the splits never ingested (Cityscapes ``test``); when no split
     is named, :func:`default_splits` picks those of :data:`DEFAULT_SPLITS` the dataset has.
  3. :func:`plan_split` lists one split's pairs (ids and paths, no pixels); problems visible in the
     listing are attached to the pairs, a missing list file or split folder is an immediate error.

:func:`check_run_splits` is what a pipeline run checks before it starts: the root, and a training and an
evaluation split that exist and list pairs.

Reading and validating the pairs, quarantine and the ingestion report are
:mod:`components.core.ingestion`; the Beam pipeline around them is :mod:`components.example_gen.ingest`.

Framework-free: importing the package loads no TensorFlow (listing files does, on first use).
To add a layout, write a module providing what :class:`DatasetLayout` lists and add it to :data:`LAYOUTS`.
"""

from __future__ import annotations

import os
import pathlib
from typing import Mapping, Protocol, Sequence

from components.core.datasets import cityscapes, files, voc
from components.core.datasets.splits import (
    IngestionError,
    SkippedSplit,
    SplitPlan,
    available,
    check_split_name,
    empty_split_reason,
)


class DatasetLayout(Protocol):
    """What a layout module provides (:mod:`~components.core.datasets.voc` documents each name)."""

    NAME: str
    TITLE: str
    FORMATS: tuple[str, ...]
    LABEL_MAP: str
    ROOT_EXPECTED: str
    UNLABELLED_SPLITS: Mapping[str, str]
    SPLITS_LISTED_IN_FILES: bool
    COLOUR_MASKS: bool
    MASK_KINDS: str
    HAS_CITIES: bool
    GROUND_TRUTH_AT_ANY_DEPTH: bool
    GROUND_TRUTH_SUFFIX: str

    def find_root(self, data_dir: str) -> str | None: ...

    def partial_root_problem(self, data_dir: str) -> tuple[str, str] | None: ...

    def available_splits(self, root: str) -> list[str]: ...

    def split_source(self, root: str, split: str) -> str: ...

    def plan_split(self, root: str, split: str) -> SplitPlan: ...

    def split_file_pattern(self, split: str) -> str: ...

    def ground_truth_folder(self, folder: pathlib.Path) -> pathlib.Path: ...


LAYOUTS: tuple[DatasetLayout, ...] = (voc, cityscapes)
"""Every layout segpipe reads."""

DEFAULT_SPLITS = ("train", "val")
"""The splits ingested when none are named: those of them the dataset has (:func:`default_splits`)."""

FORMATS = tuple(layout.FORMATS[0] for layout in LAYOUTS)
"""The format names the command line offers, one per layout: ``("voc", "cityscapes")``."""

_LAYOUT_OF_FORMAT = {dataset_format: layout for layout in LAYOUTS for dataset_format in layout.FORMATS}


def layout_of(dataset_format: str) -> DatasetLayout:
    """Returns the layout module of a dataset format as users spell it (``voc``, ``pascal_voc``, ``cityscapes``).

    Raises:
        ValueError: If the format is unknown.
    """
    try:
        return _LAYOUT_OF_FORMAT[dataset_format.lower()]
    except KeyError:
        expected = " or ".join(repr(name) for name in FORMATS)
        raise ValueError(f"unknown dataset format {dataset_format!r}; expected {expected}") from None


def dataset_name(dataset_format: str) -> str:
    """Maps a dataset format (``voc``, ``pascal_voc``, ``cityscapes``) to its canonical dataset name
    (``pascal_voc`` or ``cityscapes``: the ``dataset`` feature of its examples).

    Raises:
        ValueError: If the format is unknown.
    """
    return layout_of(dataset_format).NAME


def label_map_name(dataset_format: str) -> str:
    """Maps a dataset format (``voc``, ``pascal_voc``, ``cityscapes``) to the name of its label map,
    for :func:`components.core.label_maps.load_label_map`.

    Raises:
        ValueError: If the format is unknown.
    """
    return layout_of(dataset_format).LABEL_MAP


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
        IngestionError: If the folder does not exist or is not in the expected layout (the message names
            the folder missing from an almost complete layout, or says what was expected, and which layout
            the folder has if it is another one).
        ValueError: If the format is unknown.
    """
    layout = layout_of(dataset_format)
    data_dir = str(data_dir).rstrip("/") or "/"
    if not files.isdir(data_dir):
        raise IngestionError(data_dir, "dataset folder not found")
    root = layout.find_root(data_dir)
    if root is not None:
        return root
    partial = layout.partial_root_problem(data_dir)
    if partial is not None:
        raise IngestionError(*partial)
    hints = "".join(
        f"; it looks like a {other.TITLE} folder (use format {other.FORMATS[0]!r})"
        for other in LAYOUTS
        if other is not layout and other.find_root(data_dir) is not None
    )
    raise IngestionError(data_dir, f"not a {layout.TITLE} folder: expected {layout.ROOT_EXPECTED}{hints}")


def default_splits(dataset_format: str, root: str) -> tuple[list[str], list[SkippedSplit]]:
    """The splits to ingest when none are named: those of :data:`DEFAULT_SPLITS` the dataset has.

    Args:
        dataset_format: ``voc``/``pascal_voc`` or ``cityscapes``.
        root: The dataset root, as :func:`resolve_dataset_root` returns it.

    Returns:
        ``(present, missing)``: the default splits found, in order, and the others as skipped splits
        whose reason names where they were looked for.

    Raises:
        IngestionError: If the dataset has none of them (the message names the splits it has).
    """
    layout = layout_of(dataset_format)
    found = layout.available_splits(root)
    present = [name for name in DEFAULT_SPLITS if name in found]
    missing = [SkippedSplit(name, f"{layout.split_source(root, name)} not found (no splits were named, "
                                  "so only the default splits found are ingested)")
               for name in DEFAULT_SPLITS if name not in found]
    if not present:
        where = layout.split_source(root, DEFAULT_SPLITS[0])
        raise IngestionError(os.path.dirname(where), f"none of the default splits {', '.join(DEFAULT_SPLITS)} found "
                                                     f"(available splits: {available(found)}); name the splits to ingest")
    return present, missing


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
    layout = layout_of(dataset_format)
    if isinstance(splits, str) or not splits:
        raise ValueError(f"splits must be a non-empty list of split names, got {splits!r}")
    names = [check_split_name(name) for name in splits]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"splits requested more than once: {repeated}")
    kept, skipped = [], []
    for name in names:
        if name in layout.UNLABELLED_SPLITS:
            skipped.append(SkippedSplit(name, layout.UNLABELLED_SPLITS[name]))
        else:
            kept.append(name)
    return kept, skipped


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
    layout = layout_of(dataset_format)
    check_split_name(split)
    plan = layout.plan_split(root, split)
    if strict:
        for candidate in plan.candidates:
            if candidate.problem is not None:
                raise IngestionError(candidate.problem_path, candidate.problem, split=split,
                                     example_id=candidate.example_id)
        if not plan.candidates:
            raise IngestionError(plan.source, empty_split_reason(plan.name, plan.source))
    return plan


def check_run_splits(dataset_format: str, data_dir: str, train_split: str, eval_split: str) -> str:
    """Checks, before a pipeline run starts, that its training and evaluation splits exist and list pairs.

    Args:
        dataset_format: ``voc``/``pascal_voc`` or ``cityscapes``.
        data_dir: The folder the user names.
        train_split: The split the run trains on (``data.splits[0]``).
        eval_split: The split it evaluates on (``data.splits[1]``).

    Returns:
        The dataset root.

    Raises:
        IngestionError: If the folder is not in the layout, or a split is missing or lists nothing (the
            message names the list file or split folder, and the split's role).
    """
    root = resolve_dataset_root(dataset_format, data_dir)
    for role, split in (("training", train_split), ("evaluation", eval_split)):
        try:
            plan = plan_split(dataset_format, root, split)
        except IngestionError as error:
            raise IngestionError(error.path, f"{error.reason}; it is the run's {role} split (data.splits)") from None
        if not plan.listed:
            raise IngestionError(plan.source, f"the {role} split {split!r} is empty: nothing is listed "
                                              "(data.splits names the training and evaluation splits)")
    return root
