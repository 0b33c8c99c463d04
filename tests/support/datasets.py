"""Helpers shared by the tests of the dataset layouts and of ingestion."""

from __future__ import annotations

from pathlib import Path


def first_train_id(voc_root: Path) -> str:
    """The first id listed in a VOC2012 root's ``train.txt``."""
    return (voc_root / "ImageSets" / "Segmentation" / "train.txt").read_text().split()[0]
