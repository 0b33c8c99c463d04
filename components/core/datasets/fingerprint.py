"""A dataset's fingerprint before ingestion: per split, the pairs listed and a digest of their ids and file sizes.

A run records it (MLflow dataset inputs and tags) so that two runs can be told apart by the data they saw
without reading a pixel: any added, removed or renamed pair, and any image or mask whose size changed,
changes the digest.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Sequence

from components.core.datasets import dataset_name, files, plan_split, resolve_dataset_root


@dataclasses.dataclass(frozen=True)
class SplitFingerprint:
    """One split: its name, where it is listed, how many pairs it lists, and their digest (16 hex digits)."""

    name: str
    source: str
    listed: int
    digest: str


@dataclasses.dataclass(frozen=True)
class DatasetFingerprint:
    """A dataset's name (``pascal_voc``, ``cityscapes``), root and splits; `digest` covers every split."""

    name: str
    root: str
    splits: tuple[SplitFingerprint, ...]

    @property
    def digest(self) -> str:
        """16 hex digits over the splits' names, counts and digests."""
        text = "\n".join(f"{split.name} {split.listed} {split.digest}" for split in self.splits)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def split(self, name: str) -> SplitFingerprint:
        """The fingerprint of split `name`."""
        return next(split for split in self.splits if split.name == name)


def fingerprint_dataset(dataset_format: str, data_dir: str, splits: Sequence[str]) -> DatasetFingerprint:
    """Lists `splits` of the dataset in `data_dir` and hashes each pair's id and image and mask sizes.

    Raises:
        IngestionError: the folder is not in the layout, or a split's list file or folder is missing.
    """
    root = resolve_dataset_root(dataset_format, data_dir)
    fingerprints = []
    for name in splits:
        plan = plan_split(dataset_format, root, name)
        digest = hashlib.sha256()
        for pair in plan.candidates:
            sizes = [files.size(path) if path else -1 for path in (pair.image_path, pair.mask_path)]
            digest.update(f"{pair.example_id}\t{sizes[0]}\t{sizes[1]}\n".encode("utf-8"))
        fingerprints.append(SplitFingerprint(name=name, source=plan.source, listed=plan.listed,
                                             digest=digest.hexdigest()[:16]))
    return DatasetFingerprint(name=dataset_name(dataset_format), root=root, splits=tuple(fingerprints))
