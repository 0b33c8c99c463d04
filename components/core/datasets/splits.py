"""What listing a dataset split produces, whatever the layout: :class:`PairCandidate` and
:class:`SplitPlan` (ids and paths, no pixels), :class:`SkippedSplit`, the split-name check, and
:class:`IngestionError`, raised for a folder, split or pair that cannot be ingested (by the layouts
while finding a root or listing a split, by :mod:`components.core.ingestion` while reading a pair).

Framework-free: no TensorFlow, and nothing here touches the filesystem.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


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
        root: The dataset root the pairs' paths start with.
    """

    dataset: str
    name: str
    source: str
    candidates: tuple[PairCandidate, ...]
    root: str = ""

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


def check_split_name(name: str) -> str:
    """Returns ``name`` if it is usable as a split name (letters, digits, ``_`` and ``-``).

    Raises:
        ValueError: Otherwise (split names become folder and file names).
    """
    if not isinstance(name, str) or not _SPLIT_NAME.match(name):
        raise ValueError(f"invalid split name {name!r}: use letters, digits, '_' and '-' only")
    return name


def empty_split_reason(name: str, source: str) -> str:
    """Describes an empty split in the words of the report and of the strict-mode error."""
    return f"split {name!r} is empty: nothing listed in {source}"


def available(names: Iterable[str]) -> str:
    """Lists names for an error message ("available lists: ..."): sorted, comma-separated, or ``none``."""
    names = sorted(names)
    return ", ".join(names) if names else "none"
